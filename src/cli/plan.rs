//! `berth plan`: one round against the engine that is planned, printed and not executed;
//! berth's records are read, never written. `--all-hosts`: the fleet's placement table
//! instead, from the repository alone.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use berth::reconcile::plan::PlanOptions;
use berth::reconcile::round;
use berth::reconcile::round::unix_now;

use super::args::PlanArgs;
use super::setup::{connect, load, load_all_hosts, records_read_only, runtime};

/// Runs `berth plan`: exit 2 with --exit-code when the plan has steps.
pub fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    if args.all_hosts {
        return placement_table(&args);
    }
    let Some(desired) = load(&args.source, Some(&args.data_dir))? else {
        return Ok(ExitCode::from(1));
    };
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Arc::new(connect(&args.engine).await?);
        let records = records_read_only(&args.data_dir, &desired)?;
        let opts = PlanOptions { prune: args.prune };
        let plan = round::plan_only(
            &engine,
            &desired,
            records,
            opts,
            Some(&args.data_dir),
            unix_now(),
        )
        .await?
        .plan;
        let mut out = berth::redact::stdout();
        if plan.is_empty() && plan.notes.is_empty() {
            writeln!(out, "No changes: the engine is in the desired state.")?;
        } else {
            write!(out, "{plan}")?;
        }
        Ok(if args.exit_code && !plan.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// `berth plan --all-hosts`: which project lands on which host, from the repository alone.
fn placement_table(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let Some(desired) = load_all_hosts(&args.source)? else {
        return Ok(ExitCode::from(1));
    };
    let mut out = berth::redact::stdout();
    match &desired.fleet {
        Some(fleet) => write!(out, "{}", berth::desired::placement::table(fleet))?,
        None => writeln!(
            out,
            "No {} at the root: every project runs on this one host.",
            berth::desired::hosts::HOSTS_FILE
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
