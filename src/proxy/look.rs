//! berth's look at its proxy: the routes file it wrote and the proxy's `GET /state`, for its
//! own `/metrics` and `/api/v1/status`.
//!
//! IO, called by berth's HTTP server (`telemetry::http`) at each scrape and status request:
//! one file read and one request through the one HTTP client, bounded by a short timeout so
//! that a proxy that does not answer never holds a scrape for long. What it finds is data
//! ([`Look`]); `metrics` encodes it and `telemetry::traffic` puts it in the status.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::admin::State;
use super::metrics::Seen;
use super::routes::Routes;
use crate::http_client::{Client, HttpUrl, Request};

/// How long berth waits for the proxy's `/state`.
pub const TIMEOUT: Duration = Duration::from_millis(500);

/// Largest `/state` read.
const MAX_STATE: usize = 4 << 20;

/// Where berth's proxy is: its routes file and its admin endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyWatch {
    /// `DATA_DIR/proxy/routes.json`.
    pub routes: PathBuf,
    /// The proxy's admin address (`--proxy-admin`).
    pub admin: SocketAddr,
}

/// What one look found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Look {
    /// The routes berth asked for (empty: no service hands off, or the file is unreadable).
    pub routes: Routes,
    /// What the proxy said ([`Seen::Absent`] when no service hands off a port).
    pub seen: Seen,
}

impl ProxyWatch {
    /// The proxy of berth's data directory, at `admin`.
    pub fn new(data_dir: &std::path::Path, admin: SocketAddr) -> Self {
        Self {
            routes: super::file::path(data_dir),
            admin,
        }
    }

    /// Reads the routes file and, when it has listeners, asks the proxy for its state
    /// (at most [`TIMEOUT`]). A proxy that does not answer, or answers something that is not
    /// a state, is [`Seen::NotAnswering`]; the reason is logged at debug level.
    pub async fn look(&self) -> Look {
        let path = self.routes.clone();
        let routes = match tokio::task::spawn_blocking(move || super::file::read(&path)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(error = %crate::errors::chain(&e), "no routes for the status");
                Routes::default()
            }
            Err(_) => Routes::default(),
        };
        if routes.listeners.is_empty() {
            return Look {
                routes,
                seen: Seen::Absent,
            };
        }
        let seen = match self.state().await {
            Ok(state) => Seen::Answered(state),
            Err(why) => {
                tracing::debug!(admin = %self.admin, error = %why, "the port-handoff proxy did not answer");
                Seen::NotAnswering
            }
        };
        Look { routes, seen }
    }

    async fn state(&self) -> Result<State, String> {
        let url: HttpUrl = format!("http://{}/state", self.admin).parse()?;
        let req = Request {
            method: "GET",
            headers: &[("Accept", "application/json")],
            body: None,
        };
        let r = Client::plain()
            .timeout(TIMEOUT)
            .send(&url, req, MAX_STATE)
            .await
            .map_err(|e| crate::errors::chain(&e))?;
        if r.status != 200 || r.truncated {
            return Err(format!("answered {} to GET /state", r.status));
        }
        serde_json::from_slice(&r.body).map_err(|e| format!("failed to parse its /state: {e}"))
    }
}
