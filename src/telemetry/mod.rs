//! Observability (docs/observability.md): what berth tells people and machines about what it does.
//!
//! [`Telemetry`] is the hub, shared as an `Arc`: the controller calls it after every round
//! ([`RoundObserver`]) and it updates, under one short lock and without IO:
//! - the status model (`status`: per service desired/running/ready/phase/conditions, the
//!   source's validity), served at `/api/v1/status` and printed by `berth status`;
//! - the metrics (`metrics`, prometheus-client), served at `/metrics`;
//! - the event log (`events`: a bounded ring plus `events.jsonl` in the data dir, written by
//!   its own thread), served at `/api/v1/events`, read by `berth events`;
//! - notifications (`notify`): meaningful transitions handed to bounded per-receiver queues
//!   that their own tasks deliver, so a slow or dead receiver never delays a round.
//!
//! `http` is the server (hyper 1) for all of it, plus the `POST /hooks/git` route for the
//! git source's webhook ([`http::GitHook`]). `time` formats timestamps. For `/metrics` and
//! `/api/v1/status` the server also looks at the port-handoff proxy (`proxy::look`, bounded
//! by a short timeout): its series join the metrics, and `traffic` puts who receives traffic
//! and what drains into the status.
//!
//! Events come from two places: the rollout events of the round (`reconcile::event`, already
//! logged by the executor) and transitions this hub notices itself — the desired state turned
//! invalid or valid again, a round failed to reach the engine or succeeded again, a service
//! left `Degraded` or became `Blocked` (those are logged here).

pub mod dashboard;
pub mod events;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod status;
pub mod time;
pub mod traffic;
pub mod updates;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::controller::{RoundObserver, RoundReport, RoundResult};
use crate::reconcile::event::{Event, EventKind, Severity};
use crate::reconcile::probe::ProbeStatus;
use crate::reconcile::reason::EventReason;
use events::{EventLog, EventRecord, NewEvent, Since};
use metrics::Metrics;
use notify::{Notifier, NotifyOptions};
pub use status::SourceInfo;
use status::{Phase, RoundInfo, Status, StatusInput, WaveGate};

/// How the hub is set up.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// Where `events.jsonl` lives (`None`: events in memory only).
    pub data_dir: Option<PathBuf>,
    /// The desired-state source.
    pub source: SourceInfo,
    /// Events kept in memory.
    pub event_capacity: usize,
    /// Size at which `events.jsonl` is rotated.
    pub event_file_limit: u64,
    /// Notification receivers.
    pub notify: Vec<notify::Target>,
    /// Delivery settings.
    pub notify_options: NotifyOptions,
    /// The HTTP client notifications go through (with TLS for `https://` receivers).
    pub notify_client: crate::http_client::Client,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        TelemetryOptions {
            data_dir: None,
            source: SourceInfo::default(),
            event_capacity: events::DEFAULT_CAPACITY,
            event_file_limit: events::DEFAULT_FILE_LIMIT,
            notify: Vec::new(),
            notify_options: NotifyOptions::default(),
            notify_client: crate::http_client::Client::plain(),
        }
    }
}

/// Running totals of failed engine calls by operation (see `DockerEngine::api_errors`).
pub type ErrorTotals = Box<dyn Fn() -> Vec<(crate::engine::EngineOp, u64)> + Send + Sync>;

/// What the hub remembers between rounds.
struct State {
    source: SourceInfo,
    status: Option<Status>,
    ready: Result<(), String>,
    last_valid: Option<bool>,
    last_error: Option<String>,
    /// Last probe verdicts by (container ID, probe kind).
    probes: HashMap<(String, &'static str), ProbeStatus>,
    /// When the rollout in progress of (project, service) started.
    rollout_started: HashMap<(String, String), u64>,
    /// The failing pull last announced per (project, service), until it is Idle again.
    pull_failing: HashMap<(String, String), String>,
    /// The last update check and what was announced of it per (project, service) (see
    /// `updates`).
    updates: HashMap<(String, String), updates::UpdateMemory>,
}

/// The observability hub.
pub struct Telemetry {
    state: Mutex<State>,
    metrics: Metrics,
    events: EventLog,
    notifier: Option<Notifier>,
    engine_errors: Mutex<Option<ErrorTotals>>,
}

impl Telemetry {
    /// A hub; with notification targets it must be created inside a tokio runtime (their
    /// delivery tasks start here).
    pub fn new(opts: TelemetryOptions) -> Arc<Telemetry> {
        let events = match &opts.data_dir {
            Some(dir) => EventLog::open(dir, opts.event_capacity, opts.event_file_limit),
            None => EventLog::in_memory(opts.event_capacity),
        };
        let notifier = (!opts.notify.is_empty()).then(|| {
            Notifier::start(
                opts.notify.clone(),
                opts.notify_options,
                opts.notify_client.clone(),
            )
        });
        Arc::new(Telemetry {
            state: Mutex::new(State {
                source: opts.source,
                status: None,
                ready: Err("no reconcile round has finished yet".into()),
                last_valid: None,
                last_error: None,
                probes: HashMap::new(),
                rollout_started: HashMap::new(),
                pull_failing: HashMap::new(),
                updates: HashMap::new(),
            }),
            metrics: Metrics::new(),
            events,
            notifier,
            engine_errors: Mutex::new(None),
        })
    }

    /// The source changed (e.g. the git source checked out a new commit); the next round's
    /// status and `desired_state_info` carry it.
    pub fn set_source(&self, source: SourceInfo) {
        self.lock().source = source;
    }

    /// Where `docker_api_errors_total` comes from.
    pub fn set_engine_errors(&self, totals: ErrorTotals) {
        *self.engine_errors.lock().unwrap_or_else(|p| p.into_inner()) = Some(totals);
    }

    /// The status after the last round (`None` before the first).
    pub fn status(&self) -> Option<Status> {
        self.lock().status.clone()
    }

    /// Ready: a valid desired state is loaded and the engine answered at the last round.
    pub fn readiness(&self) -> Result<(), String> {
        self.lock().ready.clone()
    }

    /// Events admitted by `since`, oldest first, at most `limit`.
    pub fn events_since(&self, since: Since, limit: usize) -> Vec<EventRecord> {
        self.events.since(since, limit)
    }

    /// The sequence number the next event gets (a client's next `since`).
    pub fn next_event_seq(&self) -> u64 {
        self.events.next_seq()
    }

    /// What berth's look at its port-handoff proxy found, for the next metrics text.
    pub fn set_proxy(&self, seen: crate::proxy::metrics::Seen) {
        self.metrics.proxy(seen);
    }

    /// The metrics as OpenMetrics text, or as Prometheus text 0.0.4.
    pub fn metrics_text(&self, openmetrics: bool) -> String {
        let totals = self
            .engine_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|f| f());
        if let Some(t) = totals {
            self.metrics.docker_errors(&t);
        }
        // A label value (an image reference) may hold a host secret (see `redact`).
        let text = if openmetrics {
            self.metrics.openmetrics()
        } else {
            self.metrics.prometheus_text()
        };
        crate::redact::owned(&text)
    }

    /// Delivers what is queued (notifications, event file lines) within `limit`.
    pub async fn shutdown(&self, limit: Duration) {
        if let Some(n) = &self.notifier
            && !n.flush(limit).await
        {
            tracing::warn!("some notifications were not delivered before the stop");
        }
        self.events.flush(Duration::from_secs(1));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in one round at `now` (unix seconds).
    pub fn observe(&self, r: &RoundReport<'_>, now: u64) {
        let _span = tracing::info_span!("reconcile", round = r.round).entered();
        let (result, error) = match &r.result {
            RoundResult::Settled => ("settled", None),
            RoundResult::Progressing => ("progressing", None),
            RoundResult::Failed => ("failed", None),
            RoundResult::Error(e) => ("error", Some(e.clone())),
            RoundResult::NoDesiredState => ("no_desired_state", None),
        };
        let valid = !r.loaded.diagnostics.has_errors();
        let mut out: Vec<NewEvent> = Vec::new();
        let mut st = self.lock();
        let input = StatusInput {
            now,
            round: Some(RoundInfo {
                number: r.round,
                duration: r.duration,
                result,
                error: error.clone(),
            }),
            source: &st.source,
            diagnostics: &r.loaded.diagnostics,
            desired: r.desired,
            observed: r.observed,
            records: r.records,
            plan: r.plan,
            failures: r.failures,
            probes_tracked: true,
        };
        let mut status = status::build(&input, st.status.as_ref());
        self.overlay_updates(&mut st, &mut status, r.desired);

        // The desired state's validity.
        if st.last_valid != Some(valid) {
            if !valid {
                let first = r
                    .loaded
                    .diagnostics
                    .sorted()
                    .into_iter()
                    .find(|d| d.severity == crate::desired::Severity::Error)
                    .map(|d| format!(" (first: {d})"))
                    .unwrap_or_default();
                out.push(berth_event(
                    "desired_state_invalid",
                    "load_errors",
                    format!(
                        "the desired state has {} error(s){first}; {}",
                        r.loaded.diagnostics.errors(),
                        if r.desired.is_some() {
                            "the last good one keeps being applied"
                        } else {
                            "nothing is applied until it is fixed"
                        }
                    ),
                    "error",
                ));
            } else if st.last_valid == Some(false) {
                out.push(berth_event(
                    "recovered",
                    "desired_state_valid",
                    "the desired state is valid again and is applied".into(),
                    "info",
                ));
            }
            st.last_valid = Some(valid);
        }
        // Whether berth could do its job.
        match (&error, &st.last_error) {
            (Some(e), None) => {
                out.push(berth_event(
                    "reconcile_error",
                    "reconcile_failed",
                    format!("berth cannot reconcile: {e}"),
                    "error",
                ));
                st.last_error = Some(e.clone());
            }
            (None, Some(_)) if r.observed.is_some() => {
                out.push(berth_event(
                    "recovered",
                    "reconcile_ok",
                    "berth reconciles again: the engine answered".into(),
                    "info",
                ));
                st.last_error = None;
            }
            _ => {}
        }
        // A failing pull: once per distinct error, not at every retry (nor again after a
        // round that did not try it); forgotten once the service is Idle.
        for s in &status.services {
            let key = (s.project.clone(), s.service.clone());
            match s.phase {
                Phase::Failing if st.pull_failing.get(&key) != Some(&s.reason) => {
                    out.push(service_event(
                        &s.project,
                        &s.service,
                        "pull_failed",
                        "pull_failed",
                        s.reason.clone(),
                        s.desired.revision,
                        "error",
                    ));
                    st.pull_failing.insert(key, s.reason.clone());
                }
                Phase::Idle => {
                    st.pull_failing.remove(&key);
                }
                _ => {}
            }
        }
        // Service transitions the rollout events do not cover.
        if let Some(prev) = &st.status {
            let before: BTreeMap<(&str, &str), Phase> = prev
                .services
                .iter()
                .map(|s| ((s.project.as_str(), s.service.as_str()), s.phase))
                .collect();
            for s in &status.services {
                let Some(&was) = before.get(&(s.project.as_str(), s.service.as_str())) else {
                    continue;
                };
                if was == Phase::Degraded && s.phase != Phase::Degraded {
                    out.push(service_event(
                        &s.project,
                        &s.service,
                        "recovered",
                        "service_recovered",
                        format!("no longer degraded: {}", s.phase.as_str()),
                        s.desired.revision,
                        "info",
                    ));
                }
                if was != Phase::Blocked && s.phase == Phase::Blocked {
                    out.push(service_event(
                        &s.project,
                        &s.service,
                        "blocked",
                        "blocked",
                        s.reason.clone(),
                        s.desired.revision,
                        "warning",
                    ));
                }
            }
        }
        // The fleet's wave gates, announced when a project's gate changes (its state, reason
        // or host; not the seconds of soak left).
        {
            let before = st
                .status
                .as_ref()
                .map(|p| p.wave_gates())
                .unwrap_or_default();
            let now_gates = status.wave_gates();
            let desired = |p: &str| r.desired.is_some_and(|d| d.projects.contains_key(p));
            out.extend(wave_events(&before, &now_gates, &desired));
        }
        for e in &out {
            log_event(e);
        }
        // A project that left the desired state (the controller logged it when it loaded).
        if let (Some(prev), Some(desired)) = (&st.status, r.desired) {
            let gone: BTreeSet<&str> = prev
                .services
                .iter()
                .map(|s| s.project.as_str())
                .filter(|p| !desired.projects.contains_key(*p))
                .collect();
            for project in gone {
                let orphan = status.orphans.iter().find(|o| o.project == project);
                let pruning = r
                    .plan
                    .is_some_and(|p| p.steps.iter().any(|s| s.project == project));
                let what = match (orphan, pruning) {
                    (Some(o), _) => format!(
                        "its {} container(s) keep running until berth runs with --prune",
                        o.containers
                    ),
                    (None, true) => "--prune removes its containers".to_string(),
                    (None, false) => "nothing of it runs".to_string(),
                };
                out.push(service_event(
                    project,
                    "",
                    "project_removed",
                    "project_removed",
                    format!("project {project} removed from the desired state; {what}"),
                    None,
                    "warning",
                ));
            }
        }
        // The round's rollout events (the executor logged them).
        for e in r.events {
            out.push(self.rollout_event(&mut st, e, now));
        }
        // Probe verdicts that turned failing.
        if let Some(obs) = r.observed {
            let owner: HashMap<&str, (&str, &str)> = obs
                .containers
                .iter()
                .map(|c| {
                    (
                        c.id.as_str(),
                        (c.identity.project.as_str(), c.identity.service.as_str()),
                    )
                })
                .collect();
            let mut seen = HashMap::new();
            for (id, v) in &obs.probes {
                for (kind, verdict) in [("readiness", v.readiness), ("liveness", v.liveness)] {
                    let Some(verdict) = verdict else { continue };
                    let key = (id.clone(), kind);
                    let was = st.probes.get(&key).copied();
                    if verdict == ProbeStatus::Failing
                        && was != Some(ProbeStatus::Failing)
                        && let Some((p, s)) = owner.get(id.as_str())
                    {
                        self.metrics.probe_failure(p, s, kind);
                    }
                    seen.insert(key, verdict);
                }
            }
            st.probes = seen;
        }

        // Metrics.
        self.metrics.round(
            result,
            r.duration,
            (r.result == RoundResult::Settled).then_some(now),
        );
        self.metrics.source(
            valid,
            &status.source.kind,
            status.source.revision.as_deref(),
        );
        self.metrics.fleet(
            status.host.as_deref(),
            &status
                .wave_gates()
                .into_iter()
                .map(|(p, g)| (p.to_string(), g.reason.clone()))
                .collect(),
        );
        if let (Some(desired), Some(_)) = (r.desired, r.observed) {
            let probes: BTreeMap<(String, String), BTreeSet<&'static str>> = desired
                .projects
                .values()
                .flat_map(|p| p.services.values().map(move |s| (p, s)))
                .map(|(p, s)| {
                    let mut kinds = BTreeSet::new();
                    if s.berth.readiness.is_some() {
                        kinds.insert("readiness");
                    }
                    if s.berth.liveness.is_some() {
                        kinds.insert("liveness");
                    }
                    ((p.name.clone(), s.name.clone()), kinds)
                })
                .collect();
            self.metrics.services(&status.services, &probes);
        }

        st.ready = match (&r.result, r.desired) {
            (RoundResult::Error(e), _) => Err(format!("the last round failed: {e}")),
            (_, None) => Err("no valid desired state has been loaded".into()),
            _ if !valid => Err(format!(
                "the desired state is invalid ({} error(s)); the last good one keeps being applied",
                r.loaded.diagnostics.errors()
            )),
            _ => Ok(()),
        };
        st.status = Some(status);
        drop(st);

        for e in out {
            let rec = self.events.push(e, now);
            if let Some(n) = &self.notifier {
                n.send(&rec);
            }
        }
    }

    /// A rollout event as an event record; updates the rollout metrics.
    fn rollout_event(&self, st: &mut State, e: &Event, now: u64) -> NewEvent {
        let key = (e.project.clone(), e.service.clone());
        let took = |st: &mut State| {
            st.rollout_started
                .remove(&key)
                .map(|t| Duration::from_secs(now.saturating_sub(t)))
        };
        match e.kind {
            EventKind::RolloutStarted => {
                st.rollout_started.insert(key.clone(), now);
            }
            EventKind::RolloutSucceeded => {
                let d = took(st);
                self.metrics.rollout(&e.project, &e.service, "succeeded", d);
            }
            EventKind::RolloutFailed if matches!(e.reason, EventReason::Tolerated(_)) => {}
            EventKind::RolloutFailed | EventKind::RolloutPaused => {
                let d = took(st);
                self.metrics.rollout(&e.project, &e.service, "failed", d);
            }
            EventKind::Reverted => {
                st.rollout_started.remove(&key);
                self.metrics
                    .rollout(&e.project, &e.service, "reverted", None);
            }
            EventKind::Degraded => {
                st.rollout_started.remove(&key);
            }
            EventKind::SelfHeal => {
                self.metrics
                    .self_heal(&e.project, &e.service, e.reason.label());
            }
            EventKind::QuarantineLifted => {}
        }
        NewEvent {
            project: e.project.clone(),
            service: e.service.clone(),
            kind: e.kind.as_str().to_string(),
            reason: e.reason.label().to_string(),
            message: e.message.clone(),
            revision: e.revision,
            severity: match e.kind.severity() {
                Severity::Info => "info",
                Severity::Warning => "warning",
                Severity::Error => "error",
            },
            // A container's log may print anything its environment holds (secrets): it stays in
            // berth's own log. A failed build's output is the repository's, and travels on.
            logs: e
                .logs
                .clone()
                .filter(|l| e.logs_of.is_none() && !l.trim().is_empty()),
        }
    }
}

impl RoundObserver for Telemetry {
    fn round(&self, report: &RoundReport<'_>) {
        self.observe(report, crate::util::time::unix_now());
    }
}

/// The wave events between two rounds' gates: `wave_waiting` when a project's gate appears
/// or its reason or host changes, `wave_held` when it becomes a hold, `wave_released` when
/// it is gone (the revision may start) and the project is still desired.
fn wave_events(
    before: &BTreeMap<&str, &WaveGate>,
    now: &BTreeMap<&str, &WaveGate>,
    still_desired: &dyn Fn(&str) -> bool,
) -> Vec<NewEvent> {
    let same =
        |a: &WaveGate, b: &WaveGate| a.state == b.state && a.reason == b.reason && a.host == b.host;
    let mut out = Vec::new();
    for (project, gate) in now {
        if before.get(project).is_some_and(|b| same(b, gate)) {
            continue;
        }
        let (kind, severity) = if gate.state == "held" {
            ("wave_held", "warning")
        } else {
            ("wave_waiting", "info")
        };
        out.push(service_event(
            project,
            "",
            kind,
            &gate.reason,
            gate.message.clone(),
            None,
            severity,
        ));
    }
    for (project, gate) in before {
        if !now.contains_key(project) && still_desired(project) {
            out.push(service_event(
                project,
                "",
                "wave_released",
                "wave_go",
                format!(
                    "earlier waves are ready: the new revision may start (was {} for host {})",
                    gate.state, gate.host
                ),
                None,
                "info",
            ));
        }
    }
    out
}

fn berth_event(kind: &str, reason: &str, message: String, severity: &'static str) -> NewEvent {
    service_event("", "", kind, reason, message, None, severity)
}

fn service_event(
    project: &str,
    service: &str,
    kind: &str,
    reason: &str,
    message: String,
    revision: Option<u64>,
    severity: &'static str,
) -> NewEvent {
    NewEvent {
        project: project.to_string(),
        service: service.to_string(),
        kind: kind.to_string(),
        reason: reason.to_string(),
        message,
        revision,
        severity,
        logs: None,
    }
}

fn log_event(e: &NewEvent) {
    let scope = if e.project.is_empty() {
        "berth".to_string()
    } else {
        format!("{}/{}", e.project, e.service)
    };
    match e.severity {
        "error" => {
            tracing::error!(kind = %e.kind, reason = %e.reason, "{scope} {}: {}", e.kind, e.message)
        }
        "warning" => {
            tracing::warn!(kind = %e.kind, reason = %e.reason, "{scope} {}: {}", e.kind, e.message)
        }
        _ => {
            tracing::info!(kind = %e.kind, reason = %e.reason, "{scope} {}: {}", e.kind, e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(state: &str, reason: &str, host: &str, message: &str) -> WaveGate {
        WaveGate {
            state: state.into(),
            reason: reason.into(),
            host: host.into(),
            message: message.into(),
        }
    }

    fn kinds(events: &[NewEvent]) -> Vec<(String, String, String)> {
        events
            .iter()
            .map(|e| (e.project.clone(), e.kind.clone(), e.reason.clone()))
            .collect()
    }

    #[test]
    fn a_wave_gate_is_announced_once_per_change_not_as_the_soak_counts_down() {
        let soak42 = gate("waiting", "wave_soaking", "canary", "soaking 42s more");
        let soak37 = gate("waiting", "wave_soaking", "canary", "soaking 37s more");
        let held = gate("held", "wave_failed_earlier", "canary", "failed on canary");
        let none = BTreeMap::new();
        let first = wave_events(&none, &BTreeMap::from([("shop", &soak42)]), &|_| true);
        assert_eq!(
            kinds(&first),
            [("shop".into(), "wave_waiting".into(), "wave_soaking".into())]
        );
        let again = wave_events(
            &BTreeMap::from([("shop", &soak42)]),
            &BTreeMap::from([("shop", &soak37)]),
            &|_| true,
        );
        assert!(again.is_empty(), "{again:?}");
        let hold = wave_events(
            &BTreeMap::from([("shop", &soak37)]),
            &BTreeMap::from([("shop", &held)]),
            &|_| true,
        );
        assert_eq!(
            kinds(&hold),
            [(
                "shop".into(),
                "wave_held".into(),
                "wave_failed_earlier".into()
            )]
        );
        assert_eq!(hold[0].severity, "warning");
    }

    #[test]
    fn a_gate_that_goes_is_released_unless_the_project_left() {
        let soak = gate("waiting", "wave_soaking", "canary", "soaking 1s more");
        let left = wave_events(
            &BTreeMap::from([("shop", &soak)]),
            &BTreeMap::new(),
            &|_| false,
        );
        assert!(left.is_empty(), "{left:?}");
        let released = wave_events(&BTreeMap::from([("shop", &soak)]), &BTreeMap::new(), &|p| {
            p == "shop"
        });
        assert_eq!(
            kinds(&released),
            [("shop".into(), "wave_released".into(), "wave_go".into())]
        );
    }
}
