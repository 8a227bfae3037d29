//! `berth status`: what runs and why — asked of a running berth (`/api/v1/status`), or,
//! given a DIR, built here from one planned round against the engine and the data dir.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use berth::desired;
use berth::reconcile::plan::PlanOptions;
use berth::reconcile::round;
use berth::reconcile::round::unix_now;
use berth::telemetry::status::{self, SourceInfo, Status, StatusInput};

use super::args::{DEFAULT_SERVER, StatusArgs};
use super::client::get;
use super::setup::{connect, load_options, records_read_only, runtime};

/// Runs `berth status`.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    berth::redact::load(&args.data_dir);
    let rt = runtime()?;
    let now = unix_now();
    let status = match &args.dir {
        Some(dir) => {
            let dir = super::setup::project_dir(dir)?;
            rt.block_on(status_from_engine(&args, &dir, now))?
        }
        None => {
            let server = args.server.as_deref().unwrap_or(DEFAULT_SERVER);
            let body = rt
                .block_on(get(server, "/api/v1/status"))
                .with_context(|| {
                    if args.server.is_none() {
                        format!(
                            "no berth run answers at {DEFAULT_SERVER}; give --server URL, or a DIR to build the status from the engine and the data dir"
                        )
                    } else {
                        format!("failed to ask {server} for the status")
                    }
                })?;
            serde_json::from_slice::<Status>(&body)
                .with_context(|| format!("{server} answered with something that is not a status"))?
        }
    };
    let mut out = berth::redact::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &status)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", status.table(now))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The status without a running berth: one planned round, as `berth plan` does.
async fn status_from_engine(
    args: &StatusArgs,
    dir: &std::path::Path,
    now: u64,
) -> anyhow::Result<Status> {
    let loaded = desired::load(
        dir,
        &load_options(&args.profiles, &args.env_dir, &args.age_key_file)?,
    );
    let source = SourceInfo {
        kind: "dir".into(),
        location: dir.display().to_string(),
        revision: None,
    };
    let engine = Arc::new(connect(&args.engine).await?);
    let Some(desired) = &loaded.state else {
        return Ok(status::build(
            &StatusInput {
                now,
                round: None,
                source: &source,
                diagnostics: &loaded.diagnostics,
                desired: None,
                observed: None,
                records: None,
                plan: None,
                failures: &[],
                probes_tracked: false,
            },
            None,
        ));
    };
    // Read-only: without a state dir there are no records (nothing is created).
    let records = records_read_only(&args.data_dir, desired)?;
    let round::Done { observed, plan, .. } = round::plan_only(
        &engine,
        desired,
        records.clone(),
        PlanOptions::default(),
        Some(&args.data_dir),
        now,
    )
    .await?;
    let mut status = status::build(
        &StatusInput {
            now,
            round: None,
            source: &source,
            diagnostics: &loaded.diagnostics,
            desired: Some(desired),
            observed: Some(&observed),
            records: Some(&records),
            plan: Some(&plan),
            failures: &[],
            probes_tracked: false,
        },
        None,
    );
    // Port handoff: the routes file, and the proxy's word when it answers.
    let routes = berth::proxy::file::path(&args.data_dir);
    let look = match args.proxy_admin.0 {
        Some(admin) => {
            berth::proxy::look::ProxyWatch { routes, admin }
                .look()
                .await
        }
        None => berth::proxy::look::Look {
            seen: berth::proxy::metrics::Seen::NotAnswering,
            routes: berth::proxy::file::read(&routes).unwrap_or_default(),
        },
    };
    berth::telemetry::traffic::join(&mut status, &look.routes, &look.seen);
    Ok(status)
}
