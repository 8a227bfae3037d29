//! The proxy's admin endpoint (loopback): `GET /state` (JSON: per listener its backends,
//! which receive traffic, active and draining connections), `GET /metrics` (OpenMetrics text,
//! encoded by `metrics`: requests, errors, active connections per backend) and `GET /healthz`.
//!
//! IO (hyper) around two pure renderings (the `State` JSON, `metrics::openmetrics`). berth
//! reads `/state` at each scrape of its own `/metrics` and each `/api/v1/status`, and shows
//! the per-backend series and who receives traffic there.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::Proxy;
use super::table::BackendStats;
use crate::desired::model::HandoffMode;

/// One listener as `/state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerState {
    /// `project/service:published`.
    pub name: String,
    /// Address bound (the real port when the routes asked for port 0).
    pub bind: Option<std::net::SocketAddr>,
    /// Mode.
    pub mode: HandoffMode,
    /// Routed backends first, then draining ones that still hold connections.
    pub backends: Vec<BackendStats>,
    /// Requests or connections no backend took.
    pub unserved: u64,
    /// Why the listener is not bound (the port is taken, …), if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole of `/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// SHA-256 prefix of the routes file's text last applied (empty before the first).
    pub routes: String,
    /// Listeners in the routes' order.
    pub listeners: Vec<ListenerState>,
}

/// Serves the admin endpoint on `listener` forever.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let proxy = Arc::clone(&proxy);
                async move { Ok::<_, Infallible>(answer(req.uri().path(), &proxy)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn answer(path: &str, proxy: &Proxy) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match path {
        "/state" => (
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&proxy.state()).unwrap_or_default() + "\n",
        ),
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::metrics::openmetrics(&proxy.state()),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".into()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}
