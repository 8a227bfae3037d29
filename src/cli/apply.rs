//! `berth apply`: converge once and wait for it (`berth::apply`), holding the data dir's
//! lock and the engine's claim (one berth per engine); prints each round's plan, rollout
//! events, live progress (`cli::live`) and a closing report.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use berth::apply::{self, ApplyOptions, ApplyReport, Progress};
use berth::lock::DataDirLock;
use berth::reconcile::plan::PlanOptions;
use berth::redact;
use berth::store::Store;

use super::args::ApplyArgs;
use super::live::Live;
use super::setup::{claimed, connect, load, runtime};

/// Runs `berth apply`: exit 0 when converged.
pub fn run(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    if args.source.git.git.is_some() {
        anyhow::bail!(
            "berth apply reads a directory; for a git repository use `berth run --git` (containers mount files from its checkout, which must outlive the command)"
        );
    }
    let Some(desired) = load(&args.source, None)? else {
        return Ok(ExitCode::from(1));
    };
    let _lock = DataDirLock::acquire(&args.data_dir, "berth apply")?;
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Arc::new(connect(&args.engine).await?);
        claimed(&engine, &args.data_dir, converge(&args, &desired, &engine)).await
    })
}

/// The apply itself, once the engine is claimed: exit 0 when converged.
async fn converge(
    args: &ApplyArgs,
    desired: &berth::desired::DesiredState,
    engine: &Arc<berth::engine::docker::DockerEngine>,
) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("berth: interrupted; finishing the current steps");
        on_signal.store(true, Ordering::Relaxed);
    });
    let opts = ApplyOptions {
        plan: PlanOptions { prune: args.prune },
        allow_empty: args.allow_empty,
        timeout: args.timeout,
        parallelism: args.parallelism,
        ..ApplyOptions::default()
    };
    let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
    // Port handoff: a `berth proxy` of its own serves the routes this apply writes.
    let launcher = super::setup::proxy_launcher(&args.data_dir, args.proxy_admin.0)?;
    let keeping = launcher.clone().map(|l| tokio::spawn(l.keep()));
    let dir = args.source.dir.clone().unwrap_or_default();
    let mut live = Live::new(desired, &dir);
    let report = apply::apply(engine, desired, opts, &stop, Some(&store), |p| match p {
        Progress::Executing(plan) => live.say(&plan.to_string()),
        Progress::Failed(f) => live.warn(&format!("failed: {}: {}\n", f.step, f.error)),
        Progress::Event(e) => live.event(e),
        Progress::Round(done) => live.round(done, apply::unix_now()),
    })
    .await;
    if let Some(k) = keeping {
        k.abort();
    }
    if let Some(l) = launcher
        && let Err(e) = tokio::task::spawn_blocking(move || l.ensure()).await?
    {
        live.warn(&format!(
            "the port-handoff proxy is not running: {}\n",
            berth::errors::chain(&e)
        ));
    }
    let report = report?;
    live.finish();
    print_report(&report);
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The closing report; a closed pipe is not an error worth reporting here.
fn print_report(r: &ApplyReport) {
    let (mut out, mut err) = (redact::stdout(), redact::stderr());
    for n in &r.orphans {
        let _ = writeln!(err, "{n}");
    }
    for (n, logs) in &r.blocked {
        let _ = writeln!(err, "{n}");
        if let Some(logs) = logs.as_deref().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(err, "  last output:");
            for line in logs.lines() {
                let _ = writeln!(err, "    {line}");
            }
        }
    }
    for n in &r.waiting {
        let _ = writeln!(err, "{n} (gave up waiting)");
    }
    if r.interrupted {
        let _ = writeln!(err, "interrupted after {} step(s)", r.steps);
    } else if r.ok() {
        let _ = writeln!(
            out,
            "Converged: {} step(s) in {} round(s).",
            r.steps, r.rounds
        );
    } else {
        let _ = writeln!(
            err,
            "Not converged: {} step(s) done, {} failed.",
            r.steps,
            r.failures.len()
        );
    }
}
