//! The controller (`berth run`): keeps the engine converged, level-triggered.
//!
//! IO shell around the pure planner. A trigger only means "reconcile now"; the reason never
//! matters. Triggers: engine events on managed containers (die, destroy, stop, health_status
//! — the stream reconnects with backoff and `since`), a periodic resync, desired-state
//! changes (sent on [`Controller::trigger`] by the source watcher), and waits (a service
//! waiting for a dependency is re-checked shortly). One reconcile runs at a time; engine
//! errors back off; a stop request finishes the current step and exits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::desired::{DesiredState, Loaded};
use crate::engine::{Engine, EngineEvent};
use crate::fleet::peer::PeerView;
use crate::fleet::peers::{self, FleetToken};
use crate::fleet::wave::{self, Decision};
use crate::reconcile::event::Event;
use crate::reconcile::execute::Failure;
use crate::reconcile::observed::ObservedState;
use crate::reconcile::plan::{Plan, PlanOptions, Records};
use crate::reconcile::prober::Prober;
use crate::reconcile::round::{
    self, Carry, Done, Outcome, RecordsAt, Round, RoundError, RoundOptions, unix_now,
};
use crate::store::Store;

/// Events that mean the host may have drifted.
const RELEVANT: &[&str] = &["die", "destroy", "stop", "kill", "oom", "health_status"];

/// How the controller runs.
#[derive(Debug, Clone)]
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
    /// How the fleet's peers are read (a desired state with a hosts file and waves).
    pub fleet: FleetOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            resync: Duration::from_secs(60),
            wait_poll: Duration::from_millis(250),
            plan: PlanOptions::default(),
            allow_empty: false,
            parallelism: 8,
            fleet: FleetOptions::default(),
        }
    }
}

/// How the controller reads its fleet's peers (`fleet::peers`).
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// The HTTP client (HTTPS with the system's roots when set up so).
    pub client: crate::http_client::Client,
    /// The shared token sent to peers.
    pub token: Option<FleetToken>,
    /// One peer's answer at most this long.
    pub timeout: Duration,
    /// Peers are read again at most this often (rounds in between reuse the last answers).
    pub refresh: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            client: crate::http_client::Client::plain(),
            token: None,
            timeout: Duration::from_secs(3),
            refresh: Duration::from_secs(5),
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
    let mut memory = Memory::default();
    let mut failures: u32 = 0;
    let mut round: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let span = tracing::info_span!("reconcile", round);
        let started = SystemTime::now();
        let clock = std::time::Instant::now();
        let mut loaded = span.in_scope(&load);
        match loaded.state.take() {
            Some(s) => {
                if let Some(before) = &last_good {
                    for project in removed_projects(before, &s) {
                        let _in = span.enter();
                        if opts.plan.prune {
                            tracing::warn!(%project, "project removed from the desired state; --prune removes its containers and the networks berth created for it");
                        } else {
                            tracing::warn!(%project, "project removed from the desired state; its containers keep running until berth runs with --prune");
                        }
                    }
                }
                last_good = Some(s);
            }
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
                fleet_gates(desired, &opts.fleet, &mut memory).await;
                let r = reconcile(
                    &engine,
                    desired,
                    &opts,
                    &stop,
                    store.as_ref(),
                    &prober,
                    &mut memory,
                )
                .instrument(span)
                .await;
                if let Some(o) = &observer {
                    let (done, result) = match &r {
                        Ok(d) => (Some(d), round_result(d.outcome)),
                        Err(e) => (None, RoundResult::Error(error_text(e))),
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
                match &r {
                    Ok(d) => next_after(d.outcome, &mut failures, &opts),
                    Err(e) => {
                        failures += 1;
                        tracing::error!(error = %error_text(e), "reconcile failed");
                        error_policy(e, failures)
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

/// Projects in `before` that `after` no longer has (a deleted compose file, a project renamed):
/// berth says so rather than dropping them silently; their containers stay until `--prune`.
pub fn removed_projects(before: &DesiredState, after: &DesiredState) -> Vec<String> {
    before
        .projects
        .keys()
        .filter(|p| !after.projects.contains_key(*p))
        .cloned()
        .collect()
}

/// The next wake-up after a round that did its job, from how it ended; `failures` counts the
/// rounds in a row whose steps failed.
fn next_after(outcome: Outcome, failures: &mut u32, opts: &RunOptions) -> Next {
    match outcome {
        Outcome::Settled => {
            *failures = 0;
            Next::AwaitChange
        }
        // A rollout or a dependency in progress: look again soon, no backoff.
        Outcome::Waiting | Outcome::Progressed | Outcome::Planned => {
            *failures = 0;
            Next::Requeue(opts.wait_poll)
        }
        // Nothing was done: the next round observes what this one missed, at once.
        Outcome::Unobserved => Next::Requeue(Duration::ZERO),
        Outcome::Failed => {
            *failures += 1;
            Next::Requeue(backoff(*failures).max(opts.wait_poll))
        }
    }
}

/// The next wake-up after a round that could not do its job (engine unreachable, unreadable
/// records), `attempt` such rounds or failed ones in a row: back off, at least a second.
pub fn error_policy(_error: &RoundError, attempt: u32) -> Next {
    Next::Requeue(backoff(attempt).max(Duration::from_secs(1)))
}

/// How a round ended, for observers.
fn round_result(outcome: Outcome) -> RoundResult {
    match outcome {
        Outcome::Settled => RoundResult::Settled,
        Outcome::Waiting | Outcome::Progressed | Outcome::Planned | Outcome::Unobserved => {
            RoundResult::Progressing
        }
        Outcome::Failed => RoundResult::Failed,
    }
}

/// A round error as the status API and the log show it.
fn error_text(e: &RoundError) -> String {
    match e {
        RoundError::Engine(e) => crate::errors::chain(e),
        RoundError::Store(e) => crate::errors::chain(e),
        RoundError::Empty(_) => e.to_string(),
    }
}

/// What the controller keeps from one round to the next.
#[derive(Default)]
struct Memory {
    /// The round's own carry-over (records, last errors, scope).
    carry: Carry,
    /// The plan notes already logged (each is logged once per change, not every round).
    noted: BTreeSet<String>,
    /// The peers as last read, and when.
    peers: Option<(std::time::Instant, BTreeMap<String, PeerView>)>,
}

/// Reads the peers this host's waves depend on (at most every `refresh`) and sets the wave
/// decisions for the next round; a change of decision is logged.
async fn fleet_gates(desired: &DesiredState, opts: &FleetOptions, memory: &mut Memory) {
    let Some(fleet) = &desired.fleet else {
        memory.carry.waves.clear();
        return;
    };
    let wanted = wave::peers_to_read(fleet);
    if wanted.is_empty() {
        memory.carry.waves.clear();
        return;
    }
    let fresh = memory.peers.as_ref().is_some_and(|(at, views)| {
        at.elapsed() < opts.refresh && wanted.iter().all(|(h, _)| views.contains_key(h))
    });
    if !fresh {
        let views = peers::read_all(&opts.client, &wanted, opts.token.as_ref(), opts.timeout).await;
        for (host, view) in &views {
            if let PeerView::Unreachable(why) = view {
                tracing::debug!(%host, error = %why, "fleet peer not read");
            }
        }
        memory.peers = Some((std::time::Instant::now(), views));
    }
    let views = memory
        .peers
        .as_ref()
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let gates = wave::gates(desired, &views, unix_now());
    for (project, d) in &gates {
        if memory.carry.waves.get(project) != Some(d) {
            match d {
                Decision::Go => tracing::info!(%project, "wave: {d}"),
                Decision::Wait(_) => tracing::info!(%project, "wave: {d}"),
                Decision::Hold(_) => tracing::warn!(%project, "wave: {d}"),
            }
        }
    }
    memory.carry.waves = gates;
}

/// The notes of this round that the last round did not have (an orphaned project, a wait, a
/// block): a note is logged once when it appears or changes, not every round. `noted` becomes
/// this round's notes.
fn fresh_notes(
    noted: &mut BTreeSet<String>,
    notes: &[crate::reconcile::plan::Note],
) -> Vec<String> {
    let now: BTreeSet<String> = notes.iter().map(ToString::to_string).collect();
    let fresh = now.difference(noted).cloned().collect();
    *noted = now;
    fresh
}

/// One reconcile round of the controller, logged.
async fn reconcile<E: Engine + 'static>(
    engine: &Arc<E>,
    desired: &DesiredState,
    opts: &RunOptions,
    stop: &Arc<AtomicBool>,
    store: Option<&Store>,
    prober: &Prober,
    memory: &mut Memory,
) -> Result<Done, RoundError> {
    let Memory { carry, noted, .. } = memory;
    let round_opts = RoundOptions {
        plan: opts.plan,
        allow_empty: opts.allow_empty,
        parallelism: opts.parallelism,
    };
    // Records are read at each round: cheap (one small file per service), never stale, and
    // they carry the operator's control files (berth hold/rollback/retry).
    let records = match store {
        Some(s) => RecordsAt::Store(s),
        None => RecordsAt::Memory { save: None },
    };
    let round = Round::executing(engine, desired, round_opts, records, prober, stop);
    let mut logged = false;
    let done = round::run(&round, carry, unix_now(), |plan| {
        for n in fresh_notes(noted, &plan.notes) {
            tracing::debug!("{n}");
        }
        for line in plan.to_string().lines() {
            tracing::info!("plan: {line}");
        }
        logged = true;
    })
    .await?;
    if !logged {
        for n in fresh_notes(noted, &done.plan.notes) {
            tracing::debug!("{n}");
        }
    }
    for f in &done.failures {
        tracing::error!(step = %f.step, error = %f.error, "step failed");
    }
    Ok(done)
}

/// Forwards relevant engine events as triggers; reconnects with backoff and `since`.
fn spawn_event_watch<E: Engine>(engine: Arc<E>, tx: mpsc::Sender<()>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut since = i64::try_from(unix_now()).unwrap_or(i64::MAX);
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
    fn an_orphan_note_is_logged_once_per_change() {
        use crate::reconcile::plan::Note;
        let orphan = |n| Note::Orphan {
            project: "old".into(),
            containers: n,
        };
        let mut noted = BTreeSet::new();
        assert_eq!(fresh_notes(&mut noted, &[orphan(2)]).len(), 1);
        assert!(
            fresh_notes(&mut noted, &[orphan(2)]).is_empty(),
            "unchanged: quiet"
        );
        assert_eq!(
            fresh_notes(&mut noted, &[orphan(1)]).len(),
            1,
            "changed: again"
        );
        assert!(fresh_notes(&mut noted, &[]).is_empty());
        assert_eq!(
            fresh_notes(&mut noted, &[orphan(1)]).len(),
            1,
            "back after it left"
        );
    }

    #[test]
    fn a_project_that_left_the_desired_state_is_named() {
        let load = |yaml: &str| {
            let l = crate::desired::load_inline(yaml, &crate::desired::LoadOptions::default());
            l.state.expect("valid")
        };
        let shop = load("name: shop\nservices:\n  web: {image: 'app:1'}\n");
        let other = load("name: other\nservices:\n  web: {image: 'app:1'}\n");
        assert_eq!(removed_projects(&shop, &other), ["shop"]);
        assert!(removed_projects(&shop, &shop).is_empty());
    }

    #[test]
    fn backoff_starts_after_three_rounds_and_caps_at_a_minute() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(2), Duration::ZERO);
        assert_eq!(backoff(3), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(20), Duration::from_secs(60));
    }

    #[test]
    fn the_next_wake_up_follows_how_the_round_ended() {
        let opts = RunOptions::default();
        let mut failures = 5;
        assert_eq!(
            next_after(Outcome::Settled, &mut failures, &opts),
            Next::AwaitChange
        );
        assert_eq!(failures, 0);
        assert_eq!(
            next_after(Outcome::Waiting, &mut failures, &opts),
            Next::Requeue(opts.wait_poll)
        );
        assert_eq!(
            next_after(Outcome::Unobserved, &mut failures, &opts),
            Next::Requeue(Duration::ZERO)
        );
        for _ in 0..4 {
            next_after(Outcome::Failed, &mut failures, &opts);
        }
        assert_eq!(failures, 4);
        assert_eq!(
            next_after(Outcome::Failed, &mut failures, &opts),
            Next::Requeue(backoff(5))
        );
        // An error backs off too, never below a second.
        let e = RoundError::Empty(1);
        assert_eq!(error_policy(&e, 1), Next::Requeue(Duration::from_secs(1)));
        assert_eq!(error_policy(&e, 6), Next::Requeue(backoff(6)));
    }
}
