//! The controller (`berth run`): keeps the engine converged, level-triggered.
//!
//! IO shell around the pure planner. A trigger only means "reconcile now"; the reason never
//! matters. Triggers: engine events on managed containers (die, destroy, stop, health_status
//! — the stream reconnects with backoff and `since`), a periodic resync, desired-state
//! changes (sent on [`Controller::trigger`] by the source watcher), and waits (a service
//! waiting for a dependency is re-checked shortly). One reconcile runs at a time; engine
//! errors back off; a stop request finishes the current step and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::apply::{check_not_empty, load_records, unix_now, update_records};
use crate::desired::{DesiredState, Loaded};
use crate::engine::{Engine, EngineEvent};
use crate::reconcile::event::Event;
use crate::reconcile::execute::{self, Failure};
use crate::reconcile::observe::observe_and_plan;
use crate::reconcile::observed::Feedback;
use crate::reconcile::observed::ObservedState;
use crate::reconcile::plan::Plan;
use crate::reconcile::plan::PlanOptions;
use crate::reconcile::plan::Records;
use crate::reconcile::prober::Prober;
use crate::store::Store;

/// Events that mean the host may have drifted.
const RELEVANT: &[&str] = &["die", "destroy", "stop", "kill", "oom", "health_status"];

/// How the controller runs.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Periodic full reconcile.
    pub resync: Duration,
    /// Re-check interval while a service waits (a dependency, a readiness gate, a backoff).
    pub wait_poll: Duration,
    /// Planner options.
    pub plan: PlanOptions,
    /// Allow an empty desired state while managed containers run.
    pub allow_empty: bool,
    /// Services worked on at once.
    pub parallelism: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            resync: Duration::from_secs(60),
            wait_poll: Duration::from_millis(250),
            plan: PlanOptions::default(),
            allow_empty: false,
            parallelism: 8,
        }
    }
}

/// What the next wake-up should be (decided from the last reconcile's outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Reconcile again after this long unless a trigger comes first.
    Requeue(Duration),
    /// Nothing to do until a trigger or the resync.
    AwaitChange,
}

/// Back-off after `attempt` consecutive failed or unsettled rounds: none for the first three
/// (a rollout legitimately takes a few rounds), then 1 s doubling to 60 s.
pub fn backoff(attempt: u32) -> Duration {
    if attempt < 3 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (attempt - 3).min(6)).min(Duration::from_secs(60))
}

/// A handle to wake the controller: source watchers use it for desired-state changes, the
/// signal handler after setting the stop flag.
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::Sender<()>,
}

impl Controller {
    /// Asks for a reconcile; never blocks (a pending wake-up already covers it).
    pub fn trigger(&self) {
        let _ = self.tx.try_send(());
    }
}

/// The wake-up channel: create it first, hand out [`Wakeups::handle`]s, then give it to [`run`].
pub struct Wakeups {
    tx: mpsc::Sender<()>,
    rx: mpsc::Receiver<()>,
}

impl Wakeups {
    /// A new channel (capacity 1: wake-ups coalesce).
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(1);
        Wakeups { tx, rx }
    }

    /// A handle that wakes the controller.
    pub fn handle(&self) -> Controller {
        Controller {
            tx: self.tx.clone(),
        }
    }
}

impl Default for Wakeups {
    fn default() -> Self {
        Self::new()
    }
}

/// How a round ended, for observers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundResult {
    /// Nothing to do, nothing waiting.
    Settled,
    /// Waiting for a gate, a dependency or a backoff.
    Progressing,
    /// A step failed.
    Failed,
    /// berth could not do its job this round (engine unreachable, unreadable records).
    Error(String),
    /// No valid desired state has been loaded yet.
    NoDesiredState,
}

/// Everything one round saw and did: what the status model, metrics and event log are built
/// from (see `crate::telemetry`).
pub struct RoundReport<'a> {
    /// Round number, from 1.
    pub round: u64,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// What the load said this round: the diagnostics (empty when valid) and whether the
    /// desired state loaded.
    pub loaded: &'a Loaded,
    /// The desired state applied (the last good one).
    pub desired: Option<&'a DesiredState>,
    /// What the engine showed.
    pub observed: Option<&'a ObservedState>,
    /// berth's records after the round.
    pub records: Option<&'a Records>,
    /// The round's plan.
    pub plan: Option<&'a Plan>,
    /// Rollout events, with log lines.
    pub events: &'a [Event],
    /// Failed steps.
    pub failures: &'a [Failure],
    /// How it ended.
    pub result: RoundResult,
}

/// Something that wants to know about every round (telemetry). Called on the controller's
/// task: keep it quick and never block on IO.
pub trait RoundObserver: Send + Sync {
    /// One round finished.
    fn round(&self, report: &RoundReport<'_>);
}

/// Runs until `stop` is set (set it, then wake the controller through a handle). `load`
/// re-reads the desired state at every reconcile; when it is invalid, the last good state
/// keeps being applied. `store` keeps berth's records (job runs) across restarts; `observer`
/// hears about every round.
pub async fn run<E: Engine>(
    engine: Arc<E>,
    load: impl Fn() -> Loaded,
    opts: RunOptions,
    stop: Arc<AtomicBool>,
    wakeups: Wakeups,
    store: Option<Store>,
    observer: Option<Arc<dyn RoundObserver>>,
) {
    let Wakeups { tx, mut rx } = wakeups;
    spawn_event_watch(engine.clone(), tx.clone(), stop.clone());
    let wake_tx = tx.clone();
    let prober = Prober::new(Some(Arc::new(move || {
        let _ = wake_tx.try_send(());
    })));
    let mut last_good: Option<DesiredState> = None;
    let mut memory = Records::new();
    let mut step_errors = std::collections::BTreeMap::new();
    let mut build_failures = std::collections::BTreeMap::new();
    let mut failures: u32 = 0;
    let mut round: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let span = tracing::info_span!("reconcile", round);
        let started = SystemTime::now();
        let clock = std::time::Instant::now();
        let mut loaded = span.in_scope(&load);
        match loaded.state.take() {
            Some(s) => last_good = Some(s),
            None => tracing::error!(
                errors = loaded.diagnostics.errors(),
                "desired state invalid; keeping the last good one:\n{}",
                loaded.diagnostics
            ),
        }
        let next = match &last_good {
            None => {
                if let Some(o) = &observer {
                    o.round(&RoundReport {
                        round,
                        started,
                        duration: clock.elapsed(),
                        loaded: &loaded,
                        desired: None,
                        observed: None,
                        records: None,
                        plan: None,
                        events: &[],
                        failures: &[],
                        result: RoundResult::NoDesiredState,
                    });
                }
                Next::AwaitChange
            }
            Some(desired) => {
                let mut carry = Carry {
                    prober: &prober,
                    memory: &mut memory,
                    step_errors: &mut step_errors,
                    build_failures: &mut build_failures,
                };
                let r = reconcile_once(
                    engine.clone(),
                    desired,
                    &opts,
                    &stop,
                    store.as_ref(),
                    &mut carry,
                )
                .instrument(span)
                .await;
                if let Some(o) = &observer {
                    let (done, result) = match &r {
                        Ok(d) => (Some(d), d.result()),
                        Err(e) => (None, RoundResult::Error(e.clone())),
                    };
                    o.round(&RoundReport {
                        round,
                        started,
                        duration: clock.elapsed(),
                        loaded: &loaded,
                        desired: Some(desired),
                        observed: done.map(|d| &d.observed),
                        records: done.map(|d| &d.records),
                        plan: done.map(|d| &d.plan),
                        events: done.map_or(&[][..], |d| &d.events[..]),
                        failures: done.map_or(&[][..], |d| &d.failures[..]),
                        result,
                    });
                }
                match r.map(|d| d.round) {
                    Ok(Round::Settled) => {
                        failures = 0;
                        Next::AwaitChange
                    }
                    // A rollout or a dependency in progress: look again soon, no backoff.
                    Ok(Round::Progressing) => {
                        failures = 0;
                        Next::Requeue(opts.wait_poll)
                    }
                    Ok(Round::Failed) => {
                        failures += 1;
                        Next::Requeue(backoff(failures).max(opts.wait_poll))
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::error!(error = %e, "reconcile failed");
                        Next::Requeue(backoff(failures).max(Duration::from_secs(1)))
                    }
                }
            }
        };
        let wait = match next {
            Next::Requeue(d) => d.min(opts.resync),
            Next::AwaitChange => opts.resync,
        };
        tokio::select! {
            _ = rx.recv() => {
                // Coalesce a burst of events into one reconcile.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    prober.shutdown();
}

/// What a round did (kept for the observer).
struct Done {
    round: Round,
    observed: ObservedState,
    plan: Plan,
    records: Records,
    events: Vec<Event>,
    failures: Vec<Failure>,
}

impl Done {
    fn result(&self) -> RoundResult {
        match self.round {
            Round::Settled => RoundResult::Settled,
            Round::Progressing => RoundResult::Progressing,
            Round::Failed => RoundResult::Failed,
        }
    }
}

/// How a round ended.
#[derive(Debug, Clone, Copy)]
enum Round {
    /// Nothing to do, nothing waiting.
    Settled,
    /// Waiting for a gate, a dependency or a backoff: look again soon.
    Progressing,
    /// A step failed: back off.
    Failed,
}

/// What one round hands the next: probe verdicts, records (when there is no store), step
/// errors and failed builds.
struct Carry<'a> {
    prober: &'a Prober,
    memory: &'a mut Records,
    step_errors: &'a mut std::collections::BTreeMap<String, String>,
    build_failures:
        &'a mut std::collections::BTreeMap<String, crate::reconcile::observed::BuildFailure>,
}

/// One reconcile round.
async fn reconcile_once<E: Engine + 'static>(
    engine: Arc<E>,
    desired: &DesiredState,
    opts: &RunOptions,
    stop: &Arc<AtomicBool>,
    store: Option<&Store>,
    carry: &mut Carry<'_>,
) -> Result<Done, String> {
    let Carry {
        prober,
        memory,
        step_errors,
        build_failures,
    } = carry;
    // Records are read at each round: cheap (one small file per service), never stale, and
    // they carry the operator's control files (berth hold/rollback/retry).
    let mut records = match store {
        Some(s) => load_records(s, desired).map_err(|e| crate::errors::chain(&e))?,
        None => memory.clone(),
    };
    let now = unix_now();
    let (observed, plan) = observe_and_plan(
        engine.as_ref(),
        desired,
        &records,
        opts.plan,
        now,
        &Feedback {
            probes: prober.verdicts(),
            step_errors: std::mem::take(step_errors),
            build_failures: std::mem::take(build_failures),
        },
    )
    .await
    .map_err(|e| crate::errors::chain(&e))?;
    prober.sync(&engine, desired, &observed);
    update_records(store, &mut records, desired, &observed)
        .map_err(|e| crate::errors::chain(&e))?;
    // A job that just finished changes what may run: plan again with the new record.
    let plan = if plan.is_empty() {
        crate::reconcile::plan::plan(desired, &observed, &records, opts.plan, now)
    } else {
        plan
    };
    if let Err(e) = check_not_empty(desired, &observed, opts.allow_empty) {
        return Err(e.to_string());
    }
    for n in &plan.notes {
        tracing::debug!("{n}");
    }
    let waiting = plan.waits().next().is_some();
    if plan.is_empty() {
        **memory = records.clone();
        return Ok(Done {
            round: if waiting {
                Round::Progressing
            } else {
                Round::Settled
            },
            observed,
            plan,
            records,
            events: Vec::new(),
            failures: Vec::new(),
        });
    }
    for line in plan.to_string().lines() {
        tracing::info!("plan: {line}");
    }
    let out = execute::execute(&engine, &plan, opts.parallelism, stop, store).await;
    **step_errors = out.step_errors();
    **build_failures = out.build_failures.clone();
    for (k, r) in &plan.records {
        records.insert(k.clone(), r.clone());
    }
    **memory = records.clone();
    for f in &out.failed {
        tracing::error!(step = %f.step, error = %f.error, "step failed");
    }
    Ok(Done {
        round: if out.failed.is_empty() {
            Round::Progressing
        } else {
            Round::Failed
        },
        observed,
        plan,
        records,
        events: out.events,
        failures: out.failed,
    })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Forwards relevant engine events as triggers; reconnects with backoff and `since`.
fn spawn_event_watch<E: Engine>(engine: Arc<E>, tx: mpsc::Sender<()>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut since = now_secs();
        let mut failures: u32 = 0;
        while !stop.load(Ordering::Relaxed) {
            match engine.events(since, "berth.managed=true").await {
                Ok(mut rx) => {
                    while let Some(item) = rx.recv().await {
                        match item {
                            Ok(ev) => {
                                failures = 0;
                                since = since.max(ev.time);
                                if relevant(&ev) {
                                    tracing::debug!(action = %ev.action, id = %ev.id, "engine event");
                                    let _ = tx.try_send(());
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "engine event stream ended");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "failed to watch engine events"),
            }
            failures += 1;
            // The resync catches anything missed while disconnected; reconnect with backoff.
            let _ = tx.try_send(());
            tokio::time::sleep(Duration::from_millis(500) * failures.min(60)).await;
        }
    });
}

fn relevant(ev: &EngineEvent) -> bool {
    RELEVANT
        .iter()
        .any(|a| ev.action == *a || ev.action.starts_with(&format!("{a}:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_after_three_rounds_and_caps_at_a_minute() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(2), Duration::ZERO);
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(20), Duration::from_secs(60));
    }
}
