//! `berth prune PROJECT DIR`: removes one project that left the desired state
//! (`berth::prune`), holding the data dir's lock and the engine's claim like `apply`; shows
//! what it will remove and asks on a terminal (`--yes` off one), then prints each round's
//! plan and a closing line.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use berth::lock::DataDirLock;
use berth::prune::{self, PruneError, PruneReport, Watch};
use berth::reconcile::plan::{Plan, Preview, PruneOptions, check_prune};
use berth::redact;
use berth::store::Store;

use super::args::PruneArgs;
use super::setup::{claimed, connect, load, runtime};

/// Runs `berth prune`: exit 0 when nothing of the project is left.
pub fn run(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let Some(desired) = load(&args.source, None)? else {
        return Ok(ExitCode::from(1));
    };
    let opts = PruneOptions {
        force: args.force,
        volumes: args.volumes,
    };
    // Refused before the lock and the engine: a desired project is never touched.
    if let Err(refusal) = check_prune(&args.project, &desired, opts) {
        let _ = writeln!(redact::stderr(), "berth: {refusal}");
        return Ok(ExitCode::from(1));
    }
    let _lock = DataDirLock::acquire(&args.data_dir, "berth prune")?;
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Arc::new(connect(&args.engine).await?);
        claimed(&engine, &args.data_dir, async {
            let stop = Arc::new(AtomicBool::new(false));
            let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
            let mut watch = Terminal {
                yes: args.yes,
                stop: stop.clone(),
            };
            let report = match prune::prune(
                &engine,
                &desired,
                &args.project,
                opts,
                Some(&store),
                &stop,
                &mut watch,
            )
            .await
            {
                Ok(r) => r,
                Err(PruneError::Refused(r)) => {
                    let _ = writeln!(redact::stderr(), "berth: {r}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            Ok(print_report(&args.project, &report))
        })
        .await
    })
}

/// The person at the terminal (or `--yes` off one).
struct Terminal {
    yes: bool,
    stop: Arc<AtomicBool>,
}

impl Watch for Terminal {
    fn confirm(&mut self, preview: &Preview) -> bool {
        let _ = write!(redact::stdout(), "{preview}");
        let go = if self.yes {
            true
        } else if std::io::stdin().is_terminal() {
            ask()
        } else {
            let _ = writeln!(
                redact::stderr(),
                "berth: standard input is not a terminal: pass --yes to remove these"
            );
            false
        };
        if go {
            // Ctrl-C during the question ends berth at once; from here on, it finishes the
            // current steps first.
            let on_signal = self.stop.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("berth: interrupted; finishing the current steps");
                on_signal.store(true, Ordering::Relaxed);
            });
        }
        go
    }

    fn plan(&mut self, plan: &Plan) {
        let _ = write!(redact::stdout(), "{plan}");
    }
}

/// Asks on the terminal; only `y` or `yes` goes on.
fn ask() -> bool {
    let mut err = std::io::stderr();
    let _ = write!(err, "Remove them? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The closing lines; a closed pipe is not an error worth reporting here.
fn print_report(project: &str, r: &PruneReport) -> ExitCode {
    let (mut out, mut err) = (redact::stdout(), redact::stderr());
    for f in &r.failures {
        // `StepError`'s `Display` is its whole cause chain.
        let _ = writeln!(err, "failed: {}: {}", f.step, f.error);
    }
    if r.declined {
        let _ = writeln!(err, "berth: nothing removed");
        return ExitCode::from(1);
    }
    if r.nothing() {
        let _ = writeln!(
            err,
            "berth: nothing of {project} found (no container, network, pin or record of it)"
        );
        return ExitCode::from(1);
    }
    if r.interrupted {
        let _ = writeln!(err, "interrupted after {} step(s)", r.steps.len());
    } else if r.unsettled {
        let _ = writeln!(
            err,
            "{project} is not entirely removed: steps were still left after {} step(s); run it again",
            r.steps.len()
        );
    } else if r.ok() {
        let _ = writeln!(
            out,
            "Pruned {project}: {} step(s), {} record(s) forgotten.",
            r.steps.len(),
            r.forgotten.len()
        );
        return ExitCode::SUCCESS;
    } else {
        let _ = writeln!(
            err,
            "{project} is not entirely removed: {} step(s) done, {} failed; its records are kept",
            r.steps.len(),
            r.failures.len()
        );
    }
    ExitCode::from(1)
}
