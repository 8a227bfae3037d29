//! One pass to convergence (`berth apply`): observe → plan → execute, round after round,
//! until nothing is left to do, something fails, something is blocked, or time runs out.
//!
//! The loop (IO) lives here; every decision is the pure planner's. Rounds are needed because
//! dependencies are level-triggered: a dependent is planned only once its dependency is in
//! the required condition on the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::desired::DesiredState;
use crate::engine::{Engine, EngineError};
use crate::reconcile::event::Event;
use crate::reconcile::execute::{self, Failure};
use crate::reconcile::observe::observe_and_plan;
use crate::reconcile::observed::{Feedback, ObservedState};
use crate::reconcile::plan::{Action, Note, Plan, PlanOptions, Records, record_jobs};
use crate::reconcile::prober::Prober;
use crate::store::{Store, StoreError};

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
    /// Projects no longer desired (kept without `--prune`).
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
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The engine failed in a way that is not a step failure (observing).
    #[error("failed to observe the engine")]
    Engine(#[from] EngineError),
    /// berth's records could not be read or written.
    #[error("failed to use berth's records")]
    Store(#[from] StoreError),
    /// The desired state is empty while managed containers run.
    #[error(
        "the desired state has no services, but {0} berth-managed container(s) run; refusing to remove them all (use --allow-empty if that is really what you want)"
    )]
    Empty(usize),
}

/// Refuses an empty desired state while managed containers run (a mistake, not a wish).
pub fn check_not_empty(
    desired: &DesiredState,
    observed: &ObservedState,
    allow_empty: bool,
) -> Result<(), ApplyError> {
    let services: usize = desired.projects.values().map(|p| p.services.len()).sum();
    let managed = observed
        .containers
        .iter()
        .filter(|c| c.identity.managed)
        .count();
    if services == 0 && managed > 0 && !allow_empty {
        return Err(ApplyError::Empty(managed));
    }
    Ok(())
}

/// The records of every desired service (missing files read as empty records), and of
/// services no longer desired that still hold image pins.
pub fn load_records(store: &Store, desired: &DesiredState) -> Result<Records, StoreError> {
    let mut records = Records::new();
    for p in desired.projects.values() {
        for s in p.services.keys() {
            records.insert((p.name.clone(), s.clone()), store.load(&p.name, s)?);
        }
    }
    // Services no longer desired still hold pins until their containers are gone.
    for (p, s) in store.services()? {
        if let std::collections::btree_map::Entry::Vacant(e) = records.entry((p, s)) {
            let rec = store.load(&e.key().0, &e.key().1)?;
            if rec.revisions.iter().any(|r| r.pin.is_some()) {
                e.insert(rec);
            }
        }
    }
    Ok(records)
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Records finished job runs seen in `observed` and saves what changed.
pub fn update_records(
    store: Option<&Store>,
    records: &mut Records,
    desired: &DesiredState,
    observed: &ObservedState,
) -> Result<(), StoreError> {
    for key in record_jobs(records, desired, observed, unix_now()) {
        if let (Some(store), Some(rec)) = (store, records.get(&key)) {
            store.save(&key.0, &key.1, rec)?;
        }
    }
    Ok(())
}

/// Converges once. `stop` ends it between steps. `store` keeps berth's records (job runs);
/// without one, nothing outlives the process.
pub async fn apply<E: Engine>(
    engine: &Arc<E>,
    desired: &DesiredState,
    opts: ApplyOptions,
    stop: &Arc<AtomicBool>,
    store: Option<&Store>,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<ApplyReport, ApplyError> {
    let deadline = Instant::now() + opts.timeout;
    let mut report = ApplyReport::default();
    let mut records = match store {
        Some(s) => load_records(s, desired)?,
        None => Records::new(),
    };
    let prober = Prober::new(None);
    let mut step_errors = std::collections::BTreeMap::new();
    let mut build_failures = std::collections::BTreeMap::new();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break Ok(());
        }
        let now = unix_now();
        let (observed, plan) = match observe_and_plan(
            engine.as_ref(),
            desired,
            &records,
            opts.plan,
            now,
            &Feedback {
                probes: prober.verdicts(),
                step_errors: std::mem::take(&mut step_errors),
                build_failures: std::mem::take(&mut build_failures),
            },
        )
        .await
        {
            Ok(r) => r,
            Err(e) => break Err(e.into()),
        };
        prober.sync(engine, desired, &observed);
        if let Err(e) = update_records(store, &mut records, desired, &observed) {
            break Err(e.into());
        }
        // A job that just finished changes what may run: plan again with the new record.
        let plan = if plan.is_empty() {
            crate::reconcile::plan::plan(desired, &observed, &records, opts.plan, now)
        } else {
            plan
        };
        if let Err(e) = check_not_empty(desired, &observed, opts.allow_empty) {
            break Err(e);
        }
        report.orphans = plan
            .notes
            .iter()
            .filter(|n| matches!(n, Note::Orphan { .. }))
            .cloned()
            .collect();
        let waiting = plan.waits().next().is_some();
        if plan.is_empty() {
            if waiting {
                if Instant::now() >= deadline {
                    report.waiting = plan.waits().cloned().collect();
                    break Ok(());
                }
                tokio::time::sleep(opts.poll).await;
                continue;
            }
            for n in plan.blocks() {
                let logs = job_logs(engine.as_ref(), &observed, n).await;
                report.blocked.push((n.clone(), logs));
            }
            report.converged = report.blocked.is_empty();
            break Ok(());
        }
        if !plan.steps.is_empty() {
            report.rounds += 1;
            progress(Progress::Executing(&plan));
        }
        let out = execute::execute(engine, &plan, opts.parallelism, stop, store).await;
        step_errors = out.step_errors();
        build_failures = out.build_failures.clone();
        for (k, r) in &plan.records {
            records.insert(k.clone(), r.clone());
        }
        report.steps += out.done.len();
        let pull_failed = out.pull_failed();
        for e in &out.events {
            progress(Progress::Event(e));
        }
        report.events.extend(out.events);
        for f in &out.failed {
            progress(Progress::Failed(f));
        }
        let failed = !out.failed.is_empty();
        report.failures.extend(out.failed);
        // A failed pull changed nothing: report it now. Other failures inside a rollout are
        // the rollout's to resolve (its deadline, then a revert): keep going.
        if pull_failed || (failed && !waiting) {
            break Ok(());
        }
        if Instant::now() >= deadline {
            report.waiting = plan.waits().cloned().collect();
            break Ok(());
        }
        if waiting
            && !plan
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
