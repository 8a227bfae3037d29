//! The proxy's admin endpoint (loopback): `GET /state` (JSON: per listener its backends,
//! which receive traffic, active and draining connections), `GET /metrics` (Prometheus text:
//! requests, errors, active connections per backend) and `GET /healthz`.
//!
//! IO (hyper) around two pure renderings (`state_json`, `metrics_text`). berth reads
//! `/state` back after a restart and joins `/metrics` into its own.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;

use super::Proxy;
use super::table::BackendStats;
use crate::desired::model::HandoffMode;

/// One listener as `/state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole of `/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct State {
    /// SHA-256 prefix of the routes file's text last applied (empty before the first).
    pub routes: String,
    /// Listeners in the routes' order.
    pub listeners: Vec<ListenerState>,
}

/// Prometheus text for `state`.
pub fn metrics_text(state: &State) -> String {
    let mut out = String::new();
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let metric = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    metric(
        &mut out,
        "berth_proxy_requests_total",
        "counter",
        "Requests (http) or connections (tcp) handed to a backend.",
    );
    for l in &state.listeners {
        for b in &l.backends {
            let _ = writeln!(
                out,
                "berth_proxy_requests_total{{listener=\"{}\",backend=\"{}\"}} {}",
                esc(&l.name),
                esc(&b.name),
                b.requests
            );
        }
    }
    metric(
        &mut out,
        "berth_proxy_errors_total",
        "counter",
        "Failures talking to a backend (refused, reset, no answer).",
    );
    for l in &state.listeners {
        for b in &l.backends {
            let _ = writeln!(
                out,
                "berth_proxy_errors_total{{listener=\"{}\",backend=\"{}\"}} {}",
                esc(&l.name),
                esc(&b.name),
                b.errors
            );
        }
    }
    metric(
        &mut out,
        "berth_proxy_active_connections",
        "gauge",
        "Requests or connections in progress per backend; state=draining for backends switched away.",
    );
    for l in &state.listeners {
        for b in &l.backends {
            let st = if b.routed { "routed" } else { "draining" };
            let _ = writeln!(
                out,
                "berth_proxy_active_connections{{listener=\"{}\",backend=\"{}\",state=\"{st}\"}} {}",
                esc(&l.name),
                esc(&b.name),
                b.active
            );
        }
    }
    metric(
        &mut out,
        "berth_proxy_unserved_total",
        "counter",
        "Requests or connections no backend could take.",
    );
    for l in &state.listeners {
        let _ = writeln!(
            out,
            "berth_proxy_unserved_total{{listener=\"{}\"}} {}",
            esc(&l.name),
            l.unserved
        );
    }
    out
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
            "text/plain; version=0.0.4; charset=utf-8",
            metrics_text(&proxy.state()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_show_requests_errors_and_draining_connections_per_backend() {
        let s = State {
            routes: "abc".into(),
            listeners: vec![ListenerState {
                name: "shop/web:80".into(),
                bind: None,
                mode: HandoffMode::Http,
                backends: vec![
                    BackendStats {
                        name: "shop-web-2".into(),
                        addr: "10.0.0.2:80".parse().unwrap(),
                        routed: true,
                        active: 3,
                        requests: 10,
                        errors: 0,
                    },
                    BackendStats {
                        name: "shop-web-1".into(),
                        addr: "10.0.0.1:80".parse().unwrap(),
                        routed: false,
                        active: 1,
                        requests: 90,
                        errors: 2,
                    },
                ],
                unserved: 0,
                error: None,
            }],
        };
        let m = metrics_text(&s);
        assert!(
            m.contains(
                "berth_proxy_requests_total{listener=\"shop/web:80\",backend=\"shop-web-1\"} 90\n"
            ),
            "{m}"
        );
        assert!(
            m.contains(
                "berth_proxy_errors_total{listener=\"shop/web:80\",backend=\"shop-web-1\"} 2\n"
            ),
            "{m}"
        );
        assert!(m.contains("berth_proxy_active_connections{listener=\"shop/web:80\",backend=\"shop-web-1\",state=\"draining\"} 1\n"), "{m}");
        assert!(m.contains("berth_proxy_active_connections{listener=\"shop/web:80\",backend=\"shop-web-2\",state=\"routed\"} 3\n"), "{m}");
    }
}
