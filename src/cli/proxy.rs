//! `berth proxy`: runs the port-handoff proxy (`berth::proxy`) until SIGTERM or SIGINT.

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use super::args::ProxyArgs;
use super::setup;

/// Serves the routes in `args.routes` until a stop signal.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let rt = setup::runtime()?;
    rt.block_on(async {
        let stop = async {
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "failed to listen for SIGTERM; SIGINT stops the proxy");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        };
        berth::proxy::run(args.routes, args.admin.0, stop).await
    })?;
    Ok(ExitCode::SUCCESS)
}
