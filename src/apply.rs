//! One pass to convergence (`berth apply`): round after round (see `reconcile::round`) until
//! nothing is left to do, something fails, something is blocked, or time runs out.
//!
//! The loop and its stopping rules live here; every decision is the pure planner's. Rounds
//! are needed because dependencies are level-triggered: a dependent is planned only once its
//! dependency is in the required condition on the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::desired::DesiredState;
use crate::engine::Engine;
use crate::reconcile::event::Event;
use crate::reconcile::execute::Failure;
use crate::reconcile::observed::ObservedState;
use crate::reconcile::plan::{Action, Note, Plan, PlanOptions, Records};
use crate::reconcile::prober::Prober;
/// Unix seconds now (the rounds' clock; kept here for its callers).
pub use crate::reconcile::round::unix_now;
use crate::reconcile::round::{
    self, Carry, Outcome, RecordsAt, Round, RoundError, RoundOptions, load_records,
};
use crate::store::Store;

/// How `apply` runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Planner options (prune).
    pub plan: PlanOptions,
    /// Allow a desired state with no services while managed containers run.
    pub allow_empty: bool,
    /// Give up waiting after this long.
    pub timeout: Duration,
    /// Services worked on at once.
    pub parallelism: usize,
    /// Pause between rounds while waiting for dependencies.
    pub poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            plan: PlanOptions::default(),
            allow_empty: false,
            timeout: Duration::from_secs(300),
            parallelism: 8,
            poll: Duration::from_millis(100),
        }
    }
}

/// What `apply` reports as it goes.
pub enum Progress<'a> {
    /// A round's plan, about to be executed.
    Executing(&'a Plan),
    /// A step failed.
    Failed(&'a Failure),
    /// A rollout event (started, succeeded, failed, reverted, degraded, ...).
    Event(&'a Event),
    /// A round ended (also one that only waited): what it saw, for live progress.
    Round(&'a round::Done),
}

/// How it ended.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Rounds run.
    pub rounds: usize,
    /// Steps done.
    pub steps: usize,
    /// Failed steps.
    pub failures: Vec<Failure>,
    /// Blocked services (failed jobs, missing external objects) with, for failed jobs,
    /// the last lines of their output.
    pub blocked: Vec<(Note, Option<String>)>,
    /// Still waiting when time ran out.
    pub waiting: Vec<Note>,
    /// Projects no longer desired (kept without `--prune`), and containers berth did not
    /// create (left alone).
    pub orphans: Vec<Note>,
    /// Rollout events, in order.
    pub events: Vec<Event>,
    /// Everything desired runs.
    pub converged: bool,
    /// A stop was requested.
    pub interrupted: bool,
}

impl ApplyReport {
    /// True when the host is in the desired state and nothing failed.
    pub fn ok(&self) -> bool {
        self.converged && self.failures.is_empty() && self.blocked.is_empty()
    }
}

/// Why `apply` refused or could not work.
pub type ApplyError = RoundError;

/// Converges once. `stop` ends it between steps. `store` keeps berth's records (job runs);
/// without one, nothing outlives the process.
pub async fn apply<E: Engine + 'static>(
    engine: &Arc<E>,
    desired: &DesiredState,
    opts: ApplyOptions,
    stop: &Arc<AtomicBool>,
    store: Option<&Store>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<ApplyReport, ApplyError> {
    let deadline = Instant::now() + opts.timeout;
    let mut report = ApplyReport::default();
    // Read once: this pass owns the records until it ends.
    let mut carry = Carry::with_records(match store {
        Some(s) => load_records(s, desired)?,
        None => Records::new(),
    });
    let prober = Prober::new(None);
    let round_opts = RoundOptions {
        plan: opts.plan,
        allow_empty: opts.allow_empty,
        parallelism: opts.parallelism,
    };
    let records = RecordsAt::Memory { save: store };
    let round = Round::executing(engine, desired, round_opts, records, &prober, stop);
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break Ok(());
        }
        let done = match round::run(&round, &mut carry, unix_now(), |plan| {
            if !plan.steps.is_empty() {
                report.rounds += 1;
                progress(Progress::Executing(plan));
            }
        })
        .await
        {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        report.orphans = done
            .plan
            .notes
            .iter()
            .filter(|n| matches!(n, Note::Orphan { .. } | Note::NotOurs { .. }))
            .cloned()
            .collect();
        let waiting = done.waiting();
        if done.outcome != Outcome::Unobserved {
            progress(Progress::Round(&done));
        }
        match done.outcome {
            Outcome::Unobserved => continue,
            Outcome::Waiting => {
                if Instant::now() >= deadline {
                    report.waiting = done.plan.waits().cloned().collect();
                    break Ok(());
                }
                tokio::time::sleep(opts.poll).await;
                continue;
            }
            Outcome::Settled => {
                for n in done.plan.blocks() {
                    let logs = job_logs(engine.as_ref(), &done.observed, n).await;
                    report.blocked.push((n.clone(), logs));
                }
                report.converged = report.blocked.is_empty();
                break Ok(());
            }
            Outcome::Progressed | Outcome::Failed | Outcome::Planned => {}
        }
        report.steps += done.steps;
        for e in &done.events {
            progress(Progress::Event(e));
        }
        report.events.extend(done.events);
        for f in &done.failures {
            progress(Progress::Failed(f));
        }
        let pull_failed = done.failures.iter().any(Failure::is_pull);
        let failed = !done.failures.is_empty();
        report.failures.extend(done.failures);
        // A failed pull changed nothing: report it now. Other failures inside a rollout are
        // the rollout's to resolve (its deadline, then a revert): keep going.
        if pull_failed || (failed && !waiting) {
            break Ok(());
        }
        if Instant::now() >= deadline {
            report.waiting = done.plan.waits().cloned().collect();
            break Ok(());
        }
        if waiting
            && !done
                .plan
                .steps
                .iter()
                .any(|s| !matches!(s.action, Action::Pull { .. } | Action::Build { .. }))
        {
            tokio::time::sleep(opts.poll).await;
        }
    };
    prober.shutdown();
    result.map(|()| report)
}

/// The last lines of a failed job's output.
async fn job_logs<E: Engine>(engine: &E, observed: &ObservedState, note: &Note) -> Option<String> {
    let Note::Blocked {
        project,
        service: Some(service),
        reason,
    } = note
    else {
        return None;
    };
    if !matches!(
        reason,
        crate::reconcile::reason::BlockReason::JobFailed { .. }
    ) {
        return None;
    }
    let c = observed
        .service(project, service)
        .find(|c| c.exit_code.is_some_and(|e| e != 0))?;
    engine.logs_tail(&c.id, 20).await.ok()
}
