//! `berth run`'s observability: the telemetry hub (`--notify`), its HTTP server (`--listen`:
//! metrics, health, status and events API, the git webhook), and the source as it reports it.

use std::sync::Arc;
use std::time::Duration;

use berth::controller::RoundObserver;
use berth::engine::docker::DockerEngine;
use berth::engine::liveness::Liveness;
use berth::http_client::{Client, tls};
use berth::telemetry::http::{GitHook, Server, ServerOptions};
use berth::telemetry::status::SourceInfo;
use berth::telemetry::{Telemetry, TelemetryOptions};

use super::args::TelemetryArgs;

/// The hub and its server while `berth run` runs.
pub struct Running {
    /// The hub (give it to the controller as its observer; the git source sets its revision).
    pub telemetry: Arc<Telemetry>,
    server: Option<Server>,
}

impl Running {
    /// The hub as the controller's observer.
    pub fn observer(&self) -> Arc<dyn RoundObserver> {
        self.telemetry.clone()
    }

    /// Stops the server gracefully and delivers what is queued, each within a few seconds.
    pub async fn stop(self) {
        if let Some(s) = self.server {
            s.shutdown(Duration::from_secs(5)).await;
        }
        self.telemetry.shutdown(Duration::from_secs(5)).await;
    }
}

/// Starts the hub (events in `data_dir`, notifications) and the HTTP server (with the git
/// webhook when given). A server that cannot bind is logged loudly and left out: berth keeps
/// reconciling (Prometheus's BerthDown alert says the rest).
pub async fn start(
    args: &TelemetryArgs,
    data_dir: &std::path::Path,
    source: SourceInfo,
    engine: &Arc<DockerEngine>,
    git_hook: Option<GitHook>,
    fleet_token: Option<berth::fleet::peers::FleetToken>,
    proxy: Option<berth::proxy::look::ProxyWatch>,
) -> anyhow::Result<Running> {
    let notify_client = notify_client(args)?;
    let telemetry = Telemetry::new(TelemetryOptions {
        data_dir: Some(data_dir.to_path_buf()),
        source,
        notify: args.notify.clone(),
        notify_client,
        ..TelemetryOptions::default()
    });
    let counted = engine.clone();
    telemetry.set_engine_errors(Box::new(move || counted.api_errors()));
    let server = match args.listen.0 {
        None => None,
        Some(addr) => {
            let opts = ServerOptions {
                git_hook,
                token: fleet_token,
                proxy,
                engine_check: Some(Arc::new(Liveness::watch_docker((**engine).clone())).check()),
                ..ServerOptions::default()
            };
            match Server::bind(addr, telemetry.clone(), opts).await {
                Ok(s) => {
                    tracing::info!(listen = %s.local_addr(), "serving the dashboard (/), /metrics, /healthz, /readyz, /api/v1/status, /api/v1/events");
                    Some(s)
                }
                Err(e) => {
                    tracing::error!(listen = %addr, error = %e, "failed to listen; berth keeps reconciling without its HTTP server (no metrics, status API or webhook)");
                    None
                }
            }
        }
    };
    for t in &args.notify {
        tracing::info!(target = %t, "notifications on");
    }
    Ok(Running { telemetry, server })
}

/// The client notifications go through: with TLS when a receiver is `https://` or a CA file
/// is given (a CA file that cannot be read stops berth at start-up, not at the first alert).
fn notify_client(args: &TelemetryArgs) -> anyhow::Result<Client> {
    if args.notify_ca.is_none() && !args.notify.iter().any(|t| t.url.tls) {
        return Ok(Client::plain());
    }
    let (config, roots) = tls::client_config(args.notify_ca.as_deref())?;
    tracing::debug!(
        system = roots.system,
        bundled = roots.bundled,
        extra = roots.extra,
        "trusted roots for https:// receivers"
    );
    Ok(Client::with_tls(config))
}

/// The telemetry's view of the source: kind, location, and the revision applied (the newest
/// valid one: a commit, or a directory's content fingerprint).
pub fn source_info(s: &berth::source::SourceStatus) -> SourceInfo {
    SourceInfo {
        kind: s.kind.as_str().to_string(),
        location: s.location.clone(),
        revision: s
            .good
            .as_ref()
            .or(s.revision.as_ref())
            .map(|r| r.short().to_string()),
    }
}
