//! The rollout state machine of one long-running service (DESIGN §4): which revision it should
//! run (the desired one, the previous stable one after a failure, or the one an operator rolled
//! back to), and the next engine calls that move its replicas there through the readiness gate.
//!
//! Pure: a function of (desired service, its observed containers, its record, probe verdicts,
//! `now`). It returns steps, the updated record (saved by the executor *before* the steps run,
//! so a crash never loses a decision), notes and events. The planner calls it once per service
//! and round; rounds repeat while a rollout progresses, so every decision is level-triggered
//! and a restarted berth picks up where the record and the containers say it was.
//!
//! The life of a revision:
//! 1. **Begin**: the image is present (else it is pulled first and nothing else happens), the
//!    running stable revision's image is pinned, a revision is recorded (`InProgress`, with the
//!    container template), then `pre_deploy` runs if configured.
//! 2. **Replicas**, `parallelism` at a time, `delay` between batches. `start-first`: the
//!    candidate starts beside the old container under a temporary name
//!    (`<name>-<hash12>`); once it passes the gate the old one is stopped and renamed away, the
//!    candidate takes the canonical name. `stop-first`: the old container is stopped and renamed
//!    away first (kept), the candidate is created under the canonical name.
//! 3. **Gate**: [`super::gate::evaluate`] on every round. Ready → next batch. Failed → the
//!    failure is tolerated (`continue`, `max_failure_ratio`), or the rollout pauses, or (by
//!    default) the revision is quarantined and a revert to the last stable revision begins at
//!    once: candidates removed, kept containers renamed back and started, verified ready.
//! 4. **Smoke**, then **stable**: the revision becomes the current one, its image is pinned,
//!    the kept containers of earlier revisions are removed and history beyond the limit is
//!    unpinned.
//!
//! Afterwards, self-heal: a replica that exited, vanished or is unhealthy (Docker health or
//! berth's liveness probe) is restarted or recreated with exponential backoff; too many restarts
//! in a window mark the service `Degraded` instead of looping.

use std::collections::BTreeMap;
use std::time::Duration;

use super::container_spec::{canonical_name, container_create};
use super::event::{Event, EventKind};
use super::gate::{self, Candidate, GateMemory, Verdict};
use super::observed::{BuildFailure, ObservedContainer, ProbeVerdicts, normalize_reference};
use super::plan::{Action, ImageSource, short};
use super::probe::ProbeStatus;
use super::reason::{EventReason, FailReason, HealReason};
use crate::desired::model::{FailureAction, Order, Project, RolloutPolicy, Service, Smoke};
use crate::engine::labels::{self, Role};
use crate::engine::{ContainerCreate, Health, RunState};
use crate::store::{
    DEFAULT_HISTORY_LIMIT, Degraded, GateRun, Outcome, Revision, Rollout, RolloutKind,
    ServiceRecord, Slot, UnknownRevision,
};

/// Self-heal restarts allowed within [`HEAL_WINDOW`] before the service is `Degraded`.
pub const HEAL_LIMIT: usize = 5;
/// The self-heal window.
pub const HEAL_WINDOW: Duration = Duration::from_secs(600);
/// Longest pause between two self-heal restarts.
const HEAL_MAX_BACKOFF: u64 = 60;

/// Everything the state machine looks at for one service.
pub struct Input<'a> {
    /// The project.
    pub project: &'a Project,
    /// The service (not a job).
    pub svc: &'a Service,
    /// Its containers (every role).
    pub containers: Vec<&'a ObservedContainer>,
    /// berth's record of it.
    pub record: &'a ServiceRecord,
    /// Local images (normalised reference → ID); `None` when not listed this round.
    pub images: Option<&'a BTreeMap<String, String>>,
    /// Probe verdicts by container ID.
    pub probes: &'a BTreeMap<String, ProbeVerdicts>,
    /// Docker restart counts of gated containers.
    pub restart_counts: &'a BTreeMap<String, u32>,
    /// The engine's answer when this service's create or start failed in the previous round.
    pub step_error: Option<&'a str>,
    /// The engine's error (and the build's last log lines) when the previous round's build of
    /// this service's desired image failed.
    pub build_failure: Option<&'a BuildFailure>,
    /// Jobs this service depends on that already ran, as `name (exit N)`: named in a revert
    /// event (their effects, such as a migration, are not undone).
    pub jobs_ran: Vec<String>,
    /// Now, unix seconds.
    pub now: u64,
}

/// What to wait for or why nothing moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A later round continues (gate, batch, backoff, pull).
    Wait(String),
    /// Nothing changes until the desired state does or an operator acts.
    Blocked(String),
    /// Held by `x-berth.hold` or `berth hold`/`berth rollback`: informational.
    Held(String),
}

/// What the state machine decided.
#[derive(Debug, Default)]
pub struct Output {
    /// Engine calls, in order, with causes.
    pub steps: Vec<(Action, String)>,
    /// The record after this round's decisions, when it changed.
    pub record: Option<ServiceRecord>,
    /// Waits and blocks.
    pub holds: Vec<Hold>,
    /// Events.
    pub events: Vec<Event>,
    /// Images to pull before anything else can happen.
    pub pulls: Vec<String>,
    /// The image list is needed (not listed this round).
    pub needs_inventory: bool,
    /// Containers whose restart count the gate needs (inspected, then planned again).
    pub inspect: Vec<String>,
    /// Record transitions that named a revision the record lacks (see [`UnknownRevision`]).
    pub record_errors: Vec<UnknownRevision>,
    /// Containers (IDs) that go because the replica count went down: their removal depends on
    /// nothing, not even a dependency that is not in its condition.
    pub scale_down: Vec<String>,
}

impl Output {
    /// The service is not in its desired condition yet (its dependents wait).
    pub fn pending(&self) -> bool {
        !self.steps.is_empty()
            || !self.pulls.is_empty()
            || self.needs_inventory
            || self.holds.iter().any(|h| matches!(h, Hold::Wait(_)))
    }
}

/// Plans one round for one long-running service.
pub fn plan_service(input: &Input<'_>) -> Output {
    let mut out = Output::default();
    let mut rec = input.record.clone();
    housekeeping(input, &mut rec, &mut out);
    // A failure decided in a pass changes the record (quarantine, revert begun); the next pass
    // acts on it in the same round, so a revert does not wait for another round.
    for _ in 0..4 {
        let mark = out.steps.len();
        match pass(input, &mut rec, &mut out) {
            Flow::Done => break,
            Flow::Again => out.steps.truncate(mark),
        }
    }
    if rec != *input.record {
        out.record = Some(rec);
    }
    out
}

enum Flow {
    Done,
    Again,
}

/// Lifts quarantines and degradations the desired state or `berth retry` ended; drops
/// self-heal restarts that left the window.
fn housekeeping(input: &Input<'_>, rec: &mut ServiceRecord, out: &mut Output) {
    let d = &input.svc.spec_hash;
    for q in rec.clear_quarantine_unless(d) {
        out.events.push(event(
            input,
            EventKind::QuarantineLifted,
            EventReason::DesiredStateChanged,
            None,
            format!(
                "revision {} may be tried again: the desired state changed",
                short(&q.spec_hash)
            ),
        ));
    }
    if let Some(t) = rec.control.retry_at {
        let before = rec.quarantined.len();
        rec.quarantined.retain(|q| q.since > t);
        if rec.quarantined.len() != before {
            out.events.push(event(
                input,
                EventKind::QuarantineLifted,
                EventReason::Retry,
                None,
                "berth retry: the quarantined revision will be tried again".into(),
            ));
            if rec.active.as_ref().is_some_and(|a| a.paused.is_some()) {
                rec.active = None;
            }
        }
        if rec.degraded.as_ref().is_some_and(|g| g.since <= t) {
            rec.degraded = None;
        }
    }
    if rec.degraded.as_ref().is_some_and(|g| g.spec_hash != *d) {
        rec.degraded = None;
    }
    let horizon = input.now.saturating_sub(HEAL_WINDOW.as_secs());
    rec.restarts.retain(|t| *t > horizon);
}

/// Where the service is going this round.
struct Target {
    hash: String,
    kind: RolloutKind,
    /// The recorded revision, once there is one.
    revision: Option<u64>,
    /// The image ID, when known.
    image_id: Option<String>,
    /// Stored container template (revert, rollback); `None`: built from the desired service.
    template: Option<ContainerCreate>,
}

impl Target {
    fn spec(&self, input: &Input<'_>, n: u32) -> ContainerCreate {
        match &self.template {
            Some(t) => renumber(t, input, n),
            None => container_create(
                input.project,
                input.svc,
                n,
                Role::Replica,
                self.image_id.as_deref().unwrap_or_default(),
            ),
        }
    }

    fn canonical(&self, input: &Input<'_>, n: u32) -> String {
        match &self.template {
            Some(t) if n == 1 => t.name.clone(),
            _ => canonical_name(input.project, input.svc, n),
        }
    }
}

/// The stored template of replica 1, as replica `n`.
fn renumber(t: &ContainerCreate, input: &Input<'_>, n: u32) -> ContainerCreate {
    let mut spec = t.clone();
    if n != 1 {
        spec.name = labels::container_name(&input.project.name, &input.svc.name, n);
    }
    spec.labels
        .insert(labels::compose::NUMBER.into(), n.to_string());
    spec
}

fn pass(input: &Input<'_>, rec: &mut ServiceRecord, out: &mut Output) -> Flow {
    let svc = input.svc;
    if svc.berth.hold {
        out.holds
            .push(Hold::Held("held by x-berth.hold; nothing changes".into()));
        return Flow::Done;
    }
    if rec.control.hold.is_some() && rec.control.rollback_to.is_none() {
        out.holds.push(Hold::Held(
            "held by `berth hold`; `berth release` resumes".into(),
        ));
        return Flow::Done;
    }
    if let Some(g) = &rec.degraded {
        out.holds.push(Hold::Blocked(format!(
            "degraded: {}; berth keeps what runs and changes nothing until the desired state changes or `berth retry`",
            g.reason
        )));
        return Flow::Done;
    }
    if let Some(reason) = rec.active.as_ref().and_then(|a| a.paused.clone()) {
        out.holds.push(Hold::Blocked(format!(
            "rollout paused after a failure: {reason}; change the desired state or `berth retry`"
        )));
        return Flow::Done;
    }
    let Some(target) = target(input, rec, out) else {
        return Flow::Done;
    };
    scale_down(input, out);
    let matching = rec.active.as_ref().is_some_and(|a| {
        a.kind == target.kind
            && match target.revision {
                Some(n) => a.revision == n,
                None => false,
            }
    });
    let flow = if matching {
        advance(input, rec, out)
    } else if established(rec, &target) {
        rec.active = None;
        self_heal(input, rec, &target, out)
    } else {
        match begin(input, rec, &target, out) {
            Begin::Started => advance(input, rec, out),
            Begin::NotYet => Flow::Done,
            Begin::Failed => Flow::Again,
        }
    };
    if matches!(flow, Flow::Done) && rec.is_quarantined(&svc.spec_hash) && rec.active.is_none() {
        let why = rec
            .quarantined
            .iter()
            .find(|q| q.spec_hash == svc.spec_hash)
            .map(|q| q.reason.clone())
            .unwrap_or_default();
        out.holds.push(Hold::Blocked(format!(
            "revision {} failed and is quarantined ({why}); the previous revision runs; change the desired state or `berth retry`",
            short(&svc.spec_hash)
        )));
    }
    flow
}

/// Decides the target revision; `None` (with a hold) when there is nothing to aim for.
fn target(input: &Input<'_>, rec: &ServiceRecord, out: &mut Output) -> Option<Target> {
    let d = &input.svc.spec_hash;
    let stored = |r: &Revision, kind| Target {
        hash: r.spec_hash.clone(),
        kind,
        revision: Some(r.number),
        image_id: Some(r.image_id.clone()),
        template: r.template.clone(),
    };
    if let Some(n) = rec.control.rollback_to {
        return match rec.revision(n) {
            Some(r) => {
                out.holds.push(Hold::Held(format!(
                    "rolled back to r{n} by `berth rollback`; `berth release` returns to the desired state"
                )));
                Some(stored(r, RolloutKind::Rollback))
            }
            None => {
                out.holds.push(Hold::Blocked(format!(
                    "`berth rollback` asked for r{n}, which is not in the history; `berth release` returns to the desired state"
                )));
                None
            }
        };
    }
    if rec.is_quarantined(d) {
        if let Some(a) = &rec.active
            && let (RolloutKind::Revert { .. }, Some(r)) = (a.kind, rec.revision(a.revision))
        {
            return Some(stored(r, a.kind));
        }
        let failed = rec
            .revisions
            .iter()
            .rev()
            .find(|r| r.spec_hash == *d)
            .map_or(0, |r| r.number);
        return match rec.revert_target(d) {
            Some(p) => Some(stored(p, RolloutKind::Revert { failed })),
            None => {
                out.holds.push(Hold::Blocked(format!(
                    "revision {} failed and is quarantined; there is no earlier stable revision to revert to, so what runs is left as is; change the desired state or `berth retry`",
                    short(d)
                )));
                None
            }
        };
    }
    let revision = rec
        .active
        .as_ref()
        .and_then(|a| rec.revision(a.revision))
        .filter(|r| r.spec_hash == *d && r.outcome == Outcome::InProgress)
        .or_else(|| rec.current().filter(|r| r.spec_hash == *d));
    Some(Target {
        hash: d.clone(),
        kind: RolloutKind::Update,
        revision: revision.map(|r| r.number),
        image_id: revision.map(|r| r.image_id.clone()),
        template: None,
    })
}

/// The target runs as the current revision: no rollout, only self-heal.
fn established(rec: &ServiceRecord, target: &Target) -> bool {
    match (target.kind, target.revision) {
        (_, None) => false,
        (RolloutKind::Update, Some(n)) | (RolloutKind::Rollback, Some(n)) => {
            rec.current().is_some_and(|c| c.number == n)
        }
        // A revert is over once it is no longer active (the failed revision's record says
        // Reverted); the target stays the current revision throughout.
        (RolloutKind::Revert { failed }, Some(n)) => {
            rec.current().is_some_and(|c| c.number == n)
                && rec
                    .revision(failed)
                    .is_none_or(|r| r.outcome != Outcome::Failed)
        }
    }
}

fn replicas<'a>(input: &Input<'a>) -> Vec<&'a ObservedContainer> {
    input
        .containers
        .iter()
        .copied()
        .filter(|c| c.identity.role == Role::Replica)
        .collect()
}

/// Containers numbered beyond the replica count go.
fn scale_down(input: &Input<'_>, out: &mut Output) {
    let n = input.svc.replicas;
    for c in replicas(input) {
        if c.identity.number > n {
            out.scale_down.push(c.id.clone());
            removal(
                out,
                c,
                input.svc,
                &format!("scale down to {n} (removing replica {})", c.identity.number),
            );
        }
    }
}

/// How [`begin`] ended.
enum Begin {
    /// The rollout is active: advance it.
    Started,
    /// It cannot start yet (image missing, being looked up), or there was nothing to roll.
    NotYet,
    /// It failed before any container changed (the image build failed): the failure is
    /// recorded and the next pass acts on it.
    Failed,
}

/// Starts a rollout towards `target`.
fn begin(input: &Input<'_>, rec: &mut ServiceRecord, target: &Target, out: &mut Output) -> Begin {
    let svc = input.svc;
    let now = input.now;
    let mine = replicas(input);
    // Adopt what runs when berth has no record of it (containers from before berth kept
    // records, or made by docker compose): it becomes the stable revision a failure reverts
    // to. Its template is unknown, so its container is the only way back: it is kept.
    if rec.current().is_none() {
        // Only what runs and is not known to be bad: not unhealthy or still starting, and
        // not a revision berth recorded (a failed first deploy is no revert target).
        let olds: Vec<&&ObservedContainer> = mine
            .iter()
            .filter(|c| {
                c.identity.spec_hash != target.hash
                    && c.state == RunState::Running
                    && matches!(c.health, Health::Healthy | Health::None)
                    && !rec
                        .revisions
                        .iter()
                        .any(|r| r.spec_hash == c.identity.spec_hash)
            })
            .collect();
        if let Some(o) = olds.first() {
            let hash = o.identity.spec_hash.clone();
            let n = rec.begin(&hash, "", &o.image_id, now).number;
            settle(out, rec.mark_ready(n, now));
            settle(out, rec.mark_stable(n));
        }
    }
    let number = match target.revision {
        Some(n) => n,
        None => {
            // Update towards a new revision: the image must be here first.
            let reference = svc.image.clone().unwrap_or_default();
            let Some(images) = input.images else {
                out.needs_inventory = true;
                out.holds.push(Hold::Wait("looking up the image".into()));
                return Begin::NotYet;
            };
            let Some(id) = images.get(&normalize_reference(&reference)) else {
                if svc.build.is_some()
                    && let Some(error) = input.build_failure
                {
                    return match build_failed(input, rec, target, &reference, error, out) {
                        Flow::Again => Begin::Failed,
                        Flow::Done => Begin::NotYet,
                    };
                }
                out.pulls.push(reference.clone());
                let how = if svc.build.is_some() {
                    "building"
                } else {
                    "pulling"
                };
                out.holds.push(Hold::Wait(format!(
                    "{how} {reference} before anything is stopped"
                )));
                return Begin::NotYet;
            };
            // Containers already running this revision (berth restarted without its record,
            // or adopted): the revision is adopted as stable when all replicas run.
            let all_there = (1..=svc.replicas).all(|n| {
                mine.iter().any(|c| {
                    c.identity.number == n
                        && c.identity.spec_hash == target.hash
                        && c.state == RunState::Running
                })
            });
            let others = mine.iter().any(|c| c.identity.spec_hash != target.hash);
            let n = rec.begin(&target.hash, &reference, id, now).number;
            let template = container_create(input.project, svc, 1, Role::Replica, id);
            if let Some(r) = rec.revision_mut(n) {
                r.template = Some(template);
                r.build = svc.build.as_ref().map(|b| b.parts.clone());
            }
            if all_there && !others {
                settle(out, rec.mark_ready(n, now));
                settle(out, rec.mark_stable(n));
                pin(input, rec, n, out);
                return Begin::NotYet;
            }
            n
        }
    };
    // The revision that runs now is what a failure comes back to: pin its image first.
    if let Some(cur) = rec.current().map(|r| r.number)
        && cur != number
    {
        pin(input, rec, cur, out);
    }
    rec.active = Some(Rollout {
        revision: number,
        kind: target.kind,
        started_at: now,
        slots: BTreeMap::new(),
        pre_deploy: None,
        smoke: None,
        paused: None,
    });
    let what = match target.kind {
        RolloutKind::Update if mine.is_empty() => {
            format!("deploying r{number} ({})", short(&target.hash))
        }
        RolloutKind::Update => format!(
            "rolling out r{number} ({}), {}",
            short(&target.hash),
            order(svc).1
        ),
        RolloutKind::Revert { failed } => {
            format!(
                "reverting to r{number} ({}) after r{failed} failed",
                short(&target.hash)
            )
        }
        RolloutKind::Rollback => format!("rolling back to r{number} ({})", short(&target.hash)),
    };
    let why = match target.kind {
        RolloutKind::Update => EventReason::Update,
        RolloutKind::Revert { .. } => EventReason::Revert,
        RolloutKind::Rollback => EventReason::Rollback,
    };
    out.events.push(event(
        input,
        EventKind::RolloutStarted,
        why,
        Some(number),
        what,
    ));
    Begin::Started
}

/// The build of the desired revision's image failed (in the previous round): nothing ran it
/// yet and nothing running changed. The revision is recorded (so `berth history` shows it)
/// and fails like a rollout: quarantined, and the service goes back to its last stable
/// revision (which usually never stopped) or pauses, as its failure policy says. The event
/// carries the build's last log lines.
fn build_failed(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    target: &Target,
    reference: &str,
    error: &BuildFailure,
    out: &mut Output,
) -> Flow {
    let (summary, tail) = (&error.summary, error.log.clone());
    let n = rec.begin(&target.hash, reference, "", input.now).number;
    if let Some(r) = rec.revision_mut(n) {
        r.build = input.svc.build.as_ref().map(|b| b.parts.clone());
    }
    let mut a = Rollout {
        revision: n,
        kind: RolloutKind::Update,
        started_at: input.now,
        slots: BTreeMap::new(),
        pre_deploy: None,
        smoke: None,
        paused: None,
    };
    let mark = out.events.len();
    let flow = fail(
        input,
        rec,
        &mut a,
        out,
        None,
        FailReason::BuildFailed,
        format!("image build failed: {summary}; nothing running was changed"),
    );
    for e in &mut out.events[mark..] {
        e.logs = tail.clone();
    }
    if let Some(q) = rec
        .quarantined
        .iter_mut()
        .find(|q| q.spec_hash == target.hash)
    {
        q.log = tail;
    }
    flow
}

/// Pins revision `n`'s image with a berth tag (idempotent on the engine).
fn pin(input: &Input<'_>, rec: &mut ServiceRecord, n: u64, out: &mut Output) {
    let Some(r) = rec.revision_mut(n) else { return };
    if r.pin.is_some() || r.image_id.is_empty() {
        return;
    }
    let (repo, tag) = pin_reference(&input.project.name, &input.svc.name, n);
    r.pin = Some(format!("{repo}:{tag}"));
    out.steps.push((
        Action::Pin {
            image_id: r.image_id.clone(),
            repo,
            tag,
        },
        format!("keep r{n}'s image for a revert (docker image prune cannot remove it)"),
    ));
}

/// `berth-pin/<project>/<service>` and `r<N>`; the service name lower-cased and reduced to
/// what a repository path allows.
pub fn pin_reference(project: &str, service: &str, n: u64) -> (String, String) {
    let svc: String = service
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let svc = svc.trim_matches('-');
    let svc = if svc.is_empty() { "service" } else { svc };
    (format!("berth-pin/{project}/{svc}"), format!("r{n}"))
}

/// The order and the words saying why.
fn order(svc: &Service) -> (Order, String) {
    if let Some(o) = svc.rollout.update.order {
        let name = match o {
            Order::StartFirst => "start-first",
            Order::StopFirst => "stop-first",
        };
        return (o, format!("{name} (update_config.order)"));
    }
    if let Some(p) = svc.ports.iter().find_map(|p| p.published) {
        return (
            Order::StopFirst,
            format!("stop-first (publishes host port {p}, which cannot be bound twice)"),
        );
    }
    if svc.container_name.is_some() {
        return (
            Order::StopFirst,
            "stop-first (container_name cannot exist twice)".into(),
        );
    }
    (Order::StartFirst, "start-first (new beside old)".into())
}

fn policy(svc: &Service, kind: RolloutKind) -> RolloutPolicy {
    match kind {
        // The revert target was proven stable before: verify it is up, do not hold it again.
        RolloutKind::Revert { .. } => RolloutPolicy {
            update: svc.rollback,
            min_ready: Duration::ZERO,
            progress_deadline: svc.rollout.progress_deadline,
        },
        _ => svc.rollout,
    }
}

/// Moves the active rollout forward.
fn advance(input: &Input<'_>, rec: &mut ServiceRecord, out: &mut Output) -> Flow {
    let svc = input.svc;
    let now = input.now;
    let Some(mut a) = rec.active.clone() else {
        return Flow::Done;
    };
    let Some(rev) = rec.revision(a.revision).cloned() else {
        rec.active = None;
        return Flow::Again;
    };
    let target = Target {
        hash: rev.spec_hash.clone(),
        kind: a.kind,
        revision: Some(rev.number),
        image_id: Some(rev.image_id.clone()),
        template: match a.kind {
            RolloutKind::Update => None,
            _ => rev.template.clone(),
        },
    };
    if target.kind != RolloutKind::Update && target.template.is_none() {
        // An adopted revision: only its kept containers can bring it back.
        let any = replicas(input)
            .iter()
            .any(|c| c.identity.spec_hash == target.hash);
        if !any {
            return fail(
                input,
                rec,
                &mut a,
                out,
                None,
                FailReason::Failed,
                format!(
                    "r{} has no kept container and no recorded template to recreate it from",
                    rev.number
                ),
            );
        }
    }
    let pol = policy(svc, a.kind);
    let mine = replicas(input);
    if a.kind != RolloutKind::Update {
        remove_gates(input, out, "the rollout it gated is over");
    }
    let replacing = mine.iter().any(|c| c.identity.spec_hash != target.hash);

    // pre_deploy: before the first replacement of an update.
    if a.kind == RolloutKind::Update
        && replacing
        && a.slots.is_empty()
        && let Some(gate) = &svc.berth.pre_deploy
        && let Some(flow) = gate_step(input, rec, &mut a, &target, Role::PreDeploy, gate, out)
    {
        return flow;
    }

    let (ord, why) = order(svc);
    let parallelism = pol.update.parallelism.max(1) as usize;
    let mut in_flight = a.slots.values().filter(|s| s.passed_at.is_none()).count();
    let last_pass = a.slots.values().filter_map(|s| s.passed_at).max();
    let batch_open = last_pass.is_none_or(|t| now >= t + pol.update.delay.as_secs());
    let failed_hash = match a.kind {
        RolloutKind::Revert { failed } => rec.revision(failed).map(|r| r.spec_hash.clone()),
        _ => None,
    };
    let keep = |c: &ObservedContainer| {
        if Some(&c.identity.spec_hash) == failed_hash.as_ref() {
            Fate::Discard
        } else if rec
            .revisions
            .iter()
            .any(|r| r.stable && r.spec_hash == c.identity.spec_hash)
        {
            Fate::Keep
        } else {
            Fate::Remove
        }
    };
    let mut waits: Vec<String> = Vec::new();
    for n in 1..=svc.replicas {
        let canonical = target.canonical(input, n);
        let (tc, olds) = split_slot(out, svc, &mine, &target.hash, n, &canonical);
        let olds = dedupe_olds(out, svc, olds, &keep);
        let slot = a.slots.get(&n).copied();
        let cause = match a.kind {
            RolloutKind::Update if olds.is_empty() => format!("r{} replica {n}", rev.number),
            RolloutKind::Update if olds.iter().any(|c| !c.identity.managed) => format!(
                "r{} replica {n}: taking over from docker compose, {why}",
                rev.number
            ),
            RolloutKind::Update => format!("r{} replica {n}: {why}", rev.number),
            RolloutKind::Revert { failed } => {
                format!("revert to r{} (r{failed} failed) replica {n}", rev.number)
            }
            RolloutKind::Rollback => format!("rollback to r{} replica {n}", rev.number),
        };
        if let (Some(err), Some(s)) = (input.step_error, slot)
            && s.passed_at.is_none()
        {
            return fail(
                input,
                rec,
                &mut a,
                out,
                tc.map(|c| c.id.clone()),
                FailReason::Failed,
                format!("replica {n}'s new container could not be started: {err}"),
            );
        }
        match (tc, slot) {
            (_, Some(s)) if s.passed_at.is_some() => {
                // Passed: finish the swap; a passed replica that died is self-heal territory.
                swap(out, svc, tc, &olds, &canonical, &keep, &cause);
                match tc {
                    None => create_start(out, &target, input, n, &canonical, &cause),
                    Some(c) if matches!(c.state, RunState::Exited | RunState::Created) => {
                        out.steps.push((
                            start(c),
                            format!("{cause}: exited after passing; restarting"),
                        ))
                    }
                    _ => {}
                }
            }
            (None, Some(s)) => {
                let deadline = s.started_at + pol.progress_deadline.as_secs();
                if now >= deadline {
                    return fail(
                        input,
                        rec,
                        &mut a,
                        out,
                        None,
                        FailReason::Failed,
                        format!(
                            "replica {n}'s new container could not be created or started (see the failed steps)"
                        ),
                    );
                }
                make_room(out, svc, &olds, &canonical, &keep, &cause);
                create_start(out, &target, input, n, &canonical, &cause);
                waits.push(format!("replica {n}: starting"));
            }
            (None, None) => {
                let fresh = olds.is_empty();
                if !fresh && (in_flight >= parallelism || !batch_open) {
                    waits.push(format!(
                        "replica {n}: waits for its batch (parallelism {parallelism})"
                    ));
                    continue;
                }
                if !fresh {
                    in_flight += 1;
                }
                a.slots.insert(
                    n,
                    Slot {
                        started_at: now,
                        ..Slot::default()
                    },
                );
                let old_running = olds.iter().any(|c| c.state == RunState::Running);
                if ord == Order::StartFirst && old_running && a.kind == RolloutKind::Update {
                    let temp = format!("{canonical}-{}", short(&target.hash));
                    create_start(out, &target, input, n, &temp, &cause);
                } else {
                    make_room(out, svc, &olds, &canonical, &keep, &cause);
                    create_start(out, &target, input, n, &canonical, &cause);
                }
                waits.push(format!("replica {n}: starting"));
            }
            (Some(c), None) => {
                // The target's container exists before its slot began: a kept container
                // (revert, rollback) or one that was already there.
                let fresh = olds.is_empty();
                if !fresh
                    && c.state != RunState::Running
                    && (in_flight >= parallelism || !batch_open)
                {
                    waits.push(format!(
                        "replica {n}: waits for its batch (parallelism {parallelism})"
                    ));
                    continue;
                }
                let mut slot = Slot {
                    started_at: now,
                    ..Slot::default()
                };
                if c.state == RunState::Running {
                    if matches!(a.kind, RolloutKind::Revert { .. }) {
                        // It never stopped: nothing to verify.
                        slot.passed_at = Some(now);
                        a.slots.insert(n, slot);
                        swap(out, svc, Some(c), &olds, &canonical, &keep, &cause);
                        continue;
                    }
                } else {
                    if !fresh {
                        in_flight += 1;
                    }
                    let old_running = olds.iter().any(|o| o.state == RunState::Running);
                    if !(ord == Order::StartFirst && old_running && a.kind == RolloutKind::Update) {
                        make_room(out, svc, &olds, &canonical, &keep, &cause);
                        if c.name != canonical {
                            out.steps.push((rename(c, &canonical), cause.clone()));
                        }
                    }
                    out.steps.push((start(c), cause.clone()));
                }
                a.slots.insert(n, slot);
                waits.push(format!("replica {n}: starting"));
            }
            (Some(c), Some(mut s)) => {
                if c.state == RunState::Created {
                    out.steps
                        .push((start(c), format!("{cause}: created, not started")));
                    waits.push(format!("replica {n}: starting"));
                    continue;
                }
                // Stopped before it ever ran here: berth's own start did not happen (a crash
                // between the record and the step) — start it again rather than judge it.
                // An exit code other than a stop's means it ran and failed.
                if c.state == RunState::Exited
                    && !s.seen_running
                    && matches!(c.exit_code, None | Some(0 | 137 | 143))
                    && now < s.started_at + pol.progress_deadline.as_secs()
                {
                    let old_running = olds.iter().any(|o| o.state == RunState::Running);
                    if !(ord == Order::StartFirst && old_running && a.kind == RolloutKind::Update) {
                        make_room(out, svc, &olds, &canonical, &keep, &cause);
                        if c.name != canonical {
                            out.steps.push((rename(c, &canonical), cause.clone()));
                        }
                    }
                    out.steps.push((start(c), format!("{cause}: start again")));
                    waits.push(format!("replica {n}: starting"));
                    continue;
                }
                if c.state == RunState::Running && !s.seen_running {
                    s.seen_running = true;
                    a.slots.insert(n, s);
                }
                let probe = svc.berth.readiness.as_ref().map(|_| {
                    input
                        .probes
                        .get(&c.id)
                        .and_then(|p| p.readiness)
                        .unwrap_or(ProbeStatus::Unknown)
                });
                if c.state == RunState::Running && !input.restart_counts.contains_key(&c.id) {
                    out.inspect.push(c.id.clone());
                }
                let candidate = Candidate {
                    state: c.state,
                    exit_code: c.exit_code,
                    health: c.health,
                    probe,
                    restarts: input.restart_counts.get(&c.id).copied().unwrap_or(0),
                };
                let mut mem = GateMemory {
                    started_at: s.started_at,
                    ready_since: s.ready_since,
                };
                let verdict = gate::evaluate(&pol, &candidate, &mut mem, now);
                s.ready_since = mem.ready_since;
                match verdict {
                    Verdict::Ready => {
                        s.passed_at = Some(now);
                        a.slots.insert(n, s);
                        swap(out, svc, Some(c), &olds, &canonical, &keep, &cause);
                    }
                    Verdict::Progressing { reason } => {
                        a.slots.insert(n, s);
                        waits.push(format!("replica {n}: {reason}"));
                    }
                    Verdict::Failed { kind, reason } => {
                        let ratio =
                            f64::from(a.slots.values().filter(|s| s.failed).count() as u32 + 1)
                                / f64::from(svc.replicas.max(1));
                        let tolerated = a.kind == RolloutKind::Update
                            && (pol.update.failure_action == FailureAction::Continue
                                || ratio <= pol.update.max_failure_ratio);
                        if tolerated {
                            s.failed = true;
                            s.passed_at = Some(now);
                            a.slots.insert(n, s);
                            out.events.push(Event {
                                logs_of: Some(c.id.clone()),
                                ..event(
                                    input,
                                    EventKind::RolloutFailed,
                                    EventReason::Tolerated(kind),
                                    Some(rev.number),
                                    format!(
                                        "replica {n} of r{} failed ({reason}); tolerated by failure_action/max_failure_ratio, the rollout goes on",
                                        rev.number
                                    ),
                                )
                            });
                            continue;
                        }
                        return fail(
                            input,
                            rec,
                            &mut a,
                            out,
                            Some(c.id.clone()),
                            kind,
                            format!("replica {n}: {reason}"),
                        );
                    }
                }
            }
        }
    }
    if !waits.is_empty() {
        out.holds.push(Hold::Wait(waits.join("; ")));
        rec.active = Some(a);
        return Flow::Done;
    }
    // Every replica passed. Smoke gate for updates and rollbacks.
    if !matches!(a.kind, RolloutKind::Revert { .. })
        && let Some(gate) = &svc.berth.smoke
        && let Some(flow) = gate_step(input, rec, &mut a, &target, Role::Smoke, gate, out)
    {
        return flow;
    }
    complete(input, rec, a, &target, out);
    Flow::Done
}

/// Replica `n`'s containers: the one of the target revision to keep (running first, then the
/// one with the canonical name; other duplicates are removed) and the others.
fn split_slot<'a>(
    out: &mut Output,
    svc: &Service,
    mine: &[&'a ObservedContainer],
    target_hash: &str,
    n: u32,
    canonical: &str,
) -> (Option<&'a ObservedContainer>, Vec<&'a ObservedContainer>) {
    let (mut tcs, olds): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) = mine
        .iter()
        .copied()
        .filter(|c| c.identity.number == n)
        .partition(|c| c.identity.spec_hash == target_hash);
    tcs.sort_by_key(|c| (c.state != RunState::Running, c.name != canonical));
    for extra in tcs.iter().skip(1) {
        removal(out, extra, svc, &format!("duplicate of replica {n}"));
    }
    (tcs.first().copied(), olds)
}

/// What becomes of an old container when its replica is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// A stable revision's: stopped and kept (renamed away) until the rollout is over.
    Keep,
    /// Stopped (with its grace period) and removed.
    Remove,
    /// The failed revision's: killed and removed at once.
    Discard,
}

/// Keeps at most one container per kept revision in a slot; removes the rest.
fn dedupe_olds<'a>(
    out: &mut Output,
    svc: &Service,
    mut olds: Vec<&'a ObservedContainer>,
    keep: &dyn Fn(&ObservedContainer) -> Fate,
) -> Vec<&'a ObservedContainer> {
    olds.sort_by_key(|c| (c.identity.spec_hash.clone(), c.state != RunState::Running));
    let mut seen = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    for c in olds {
        if keep(c) == Fate::Keep && !seen.insert(c.identity.spec_hash.clone()) {
            removal(out, c, svc, "duplicate of a kept container");
            continue;
        }
        kept.push(c);
    }
    kept
}

/// Frees the canonical name and stops what must not run beside the candidate: kept
/// containers are stopped and renamed away, others stopped and removed.
fn make_room(
    out: &mut Output,
    svc: &Service,
    olds: &[&ObservedContainer],
    canonical: &str,
    keep: &dyn Fn(&ObservedContainer) -> Fate,
    cause: &str,
) {
    for o in olds {
        if keep(o) == Fate::Discard {
            discard(out, o, svc, cause);
        } else if keep(o) == Fate::Keep {
            if matches!(o.state, RunState::Running | RunState::Paused) {
                out.steps
                    .push((stop(o, svc), format!("{cause}: stop (kept for a revert)")));
            }
            if o.name == canonical {
                out.steps.push((
                    rename(o, &retired_name(canonical, o)),
                    format!("{cause}: keep the old container under another name"),
                ));
            }
        } else {
            removal(out, o, svc, cause);
        }
    }
}

/// After a replica passed: the old containers stop (kept ones renamed away), the candidate
/// takes the canonical name.
fn swap(
    out: &mut Output,
    svc: &Service,
    tc: Option<&ObservedContainer>,
    olds: &[&ObservedContainer],
    canonical: &str,
    keep: &dyn Fn(&ObservedContainer) -> Fate,
    cause: &str,
) {
    make_room(out, svc, olds, canonical, keep, cause);
    if let Some(c) = tc
        && c.name != canonical
    {
        out.steps
            .push((rename(c, canonical), format!("{cause}: takes the name")));
    }
}

/// The name a kept container gets: `<canonical>-<hash12>` (or its ID for a compose-made one).
fn retired_name(canonical: &str, c: &ObservedContainer) -> String {
    let tag = if c.identity.spec_hash.is_empty() {
        short(&c.id)
    } else {
        short(&c.identity.spec_hash)
    };
    format!("{canonical}-{tag}")
}

fn create_start(
    out: &mut Output,
    target: &Target,
    input: &Input<'_>,
    n: u32,
    name: &str,
    cause: &str,
) {
    let mut spec = target.spec(input, n);
    spec.name = name.to_string();
    let image = ImageSource::Id(target.image_id.clone().unwrap_or_default());
    out.steps.push((
        Action::Create {
            spec: Box::new(spec),
            image,
        },
        cause.to_string(),
    ));
    out.steps.push((
        Action::Start {
            target: name.to_string(),
            name: name.to_string(),
        },
        cause.to_string(),
    ));
}

/// Runs a one-shot gate of the active rollout `a`; `Some(flow)` when the rollout cannot go on
/// this round (the gate runs, or it failed and `fail` decided what comes next).
fn gate_step(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    a: &mut Rollout,
    target: &Target,
    role: Role,
    gate: &Smoke,
    out: &mut Output,
) -> Option<Flow> {
    match one_shot(input, target, a, role, gate, out) {
        GateState::Passed => None,
        GateState::Waiting => {
            rec.active = Some(a.clone());
            Some(Flow::Done)
        }
        GateState::Failed(reason, id) => {
            let (what, timed_out) = if role == Role::Smoke {
                ("smoke test", FailReason::SmokeFailed)
            } else {
                ("pre_deploy", FailReason::PreDeployFailed)
            };
            let kind = match reason {
                GateFailure::Exited(_) => FailReason::Exited,
                GateFailure::TimedOut(_) => timed_out,
            };
            Some(fail(
                input,
                rec,
                a,
                out,
                id,
                kind,
                format!("{what} {reason}"),
            ))
        }
    }
}

enum GateState {
    Passed,
    Waiting,
    /// Why, and the container whose logs say more.
    Failed(GateFailure, Option<String>),
}

/// How a one-shot gate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateFailure {
    /// Its command exited with this code.
    Exited(i64),
    /// It did not finish within its timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateFailure::Exited(code) => write!(f, "exited with code {code}"),
            GateFailure::TimedOut(t) => write!(
                f,
                "did not finish within its timeout ({})",
                crate::desired::syntax::units::format_duration(*t)
            ),
        }
    }
}

/// Runs a one-shot gate container (`pre_deploy`, `smoke`) once per rollout.
fn one_shot(
    input: &Input<'_>,
    target: &Target,
    a: &mut Rollout,
    role: Role,
    gate: &Smoke,
    out: &mut Output,
) -> GateState {
    let now = input.now;
    let svc = input.svc;
    let (what, run) = match role {
        Role::Smoke => ("smoke", &mut a.smoke),
        _ => ("pre-deploy", &mut a.pre_deploy),
    };
    let name = format!("{}-{}-{what}", input.project.name, svc.name);
    let mine: Vec<&ObservedContainer> = input
        .containers
        .iter()
        .copied()
        .filter(|c| c.identity.role == role)
        .collect();
    let cause = format!("r{} {what} gate", target.revision.unwrap_or(0));
    if let Some(GateRun {
        exit_code: Some(code),
        ..
    }) = run
    {
        for c in &mine {
            removal(out, c, svc, &format!("{cause}: finished"));
        }
        return if *code == 0 {
            GateState::Passed
        } else {
            GateState::Failed(GateFailure::Exited(*code), None)
        };
    }
    let current = mine
        .iter()
        .find(|c| c.identity.spec_hash == target.hash)
        .copied();
    match (run.clone(), current) {
        (Some(r), Some(c)) => {
            if c.state == RunState::Exited {
                let code = c.exit_code.unwrap_or(-1);
                *run = Some(GateRun {
                    started_at: r.started_at,
                    exit_code: Some(code),
                });
                if code == 0 {
                    removal(out, c, svc, &format!("{cause}: passed"));
                    return GateState::Passed;
                }
                // The container stays until the failure is handled: its logs go in the event.
                return GateState::Failed(GateFailure::Exited(code), Some(c.id.clone()));
            }
            if now >= r.started_at + gate.timeout.as_secs() {
                *run = Some(GateRun {
                    started_at: r.started_at,
                    exit_code: Some(-1),
                });
                return GateState::Failed(GateFailure::TimedOut(gate.timeout), Some(c.id.clone()));
            }
            if c.state == RunState::Created {
                out.steps.push((start(c), cause));
            }
            out.holds.push(Hold::Wait(format!("{what} gate running")));
            GateState::Waiting
        }
        (_, _) => {
            for c in mine
                .iter()
                .filter(|c| Some(c.id.as_str()) != current.map(|c| c.id.as_str()))
            {
                removal(out, c, svc, &format!("{cause}: left over"));
            }
            let image = match &gate.image {
                None => target.image_id.clone().unwrap_or_default(),
                Some(reference) => match input
                    .images
                    .and_then(|i| i.get(&normalize_reference(reference)))
                {
                    Some(id) => id.clone(),
                    None if input.images.is_none() => {
                        out.needs_inventory = true;
                        out.holds
                            .push(Hold::Wait(format!("{what} gate: looking up its image")));
                        return GateState::Waiting;
                    }
                    None => {
                        out.pulls.push(reference.clone());
                        out.holds
                            .push(Hold::Wait(format!("{what} gate: pulling {reference}")));
                        return GateState::Waiting;
                    }
                },
            };
            let mut spec = target.spec(input, 1);
            spec.name = name.clone();
            spec.image = image.clone();
            spec.command = Some(gate.command.clone());
            spec.ports.clear();
            // Not under the service's name: its name must resolve to the service only.
            for n in &mut spec.networks {
                n.aliases.clear();
            }
            spec.hostname = None;
            spec.healthcheck = None;
            spec.restart = "no".into();
            spec.restart_max = None;
            spec.labels
                .insert(labels::ROLE.into(), role.as_str().into());
            spec.labels
                .insert(labels::compose::ONEOFF.into(), "True".into());
            if let Some(c) = current {
                removal(out, c, svc, &format!("{cause}: restarting the gate"));
            }
            out.steps.push((
                Action::Create {
                    spec: Box::new(spec),
                    image: ImageSource::Id(image),
                },
                cause.clone(),
            ));
            out.steps.push((
                Action::Start {
                    target: name.clone(),
                    name,
                },
                cause,
            ));
            *run = Some(GateRun {
                started_at: now,
                exit_code: None,
            });
            out.holds.push(Hold::Wait(format!("{what} gate running")));
            GateState::Waiting
        }
    }
}

/// A rollout (or revert) failed: tolerate, pause, revert or degrade.
fn fail(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    a: &mut Rollout,
    out: &mut Output,
    logs_of: Option<String>,
    kind: FailReason,
    reason: String,
) -> Flow {
    let svc = input.svc;
    let now = input.now;
    let why = EventReason::Failure(kind);
    match a.kind {
        RolloutKind::Update => {
            let n = a.revision;
            settle(out, rec.mark_failed(n, &reason, now));
            if let Some(r) = rec.revision_mut(n) {
                r.failure = Some(kind);
            }
            let pol = svc.rollout.update;
            if pol.failure_action == FailureAction::Rollback && svc.berth.auto_revert {
                let target = rec.revert_target(&svc.spec_hash).map(|r| r.number);
                let then = match target {
                    Some(p) => format!("reverting to r{p}"),
                    None => "no earlier stable revision to revert to; left as is".into(),
                };
                push_event(
                    out,
                    input,
                    EventKind::RolloutFailed,
                    why,
                    n,
                    logs_of,
                    format!("r{n} ({}) failed: {reason}; {then}", short(&svc.spec_hash)),
                );
                rec.active = target.map(|p| Rollout {
                    revision: p,
                    kind: RolloutKind::Revert { failed: n },
                    started_at: now,
                    slots: BTreeMap::new(),
                    pre_deploy: None,
                    smoke: None,
                    paused: None,
                });
            } else {
                a.paused = Some(reason.clone());
                rec.active = Some(a.clone());
                push_event(
                    out,
                    input,
                    EventKind::RolloutPaused,
                    why,
                    n,
                    logs_of,
                    format!(
                        "r{n} ({}) failed: {reason}; paused (failure_action {:?}, auto_revert {})",
                        short(&svc.spec_hash),
                        pol.failure_action,
                        svc.berth.auto_revert
                    ),
                );
            }
        }
        RolloutKind::Revert { failed } => {
            rec.degraded = Some(Degraded {
                since: now,
                reason: format!(
                    "r{failed} failed and the revert to r{} failed too: {reason}",
                    a.revision
                ),
                spec_hash: svc.spec_hash.clone(),
            });
            rec.active = None;
            push_event(
                out,
                input,
                EventKind::Degraded,
                why,
                a.revision,
                logs_of,
                format!(
                    "revert to r{} failed: {reason}; DEGRADED — berth keeps what runs and waits for a human",
                    a.revision
                ),
            );
        }
        RolloutKind::Rollback => {
            rec.degraded = Some(Degraded {
                since: now,
                reason: format!("the rollback to r{} failed: {reason}", a.revision),
                spec_hash: svc.spec_hash.clone(),
            });
            rec.active = None;
            push_event(
                out,
                input,
                EventKind::Degraded,
                why,
                a.revision,
                logs_of,
                format!("rollback to r{} failed: {reason}; DEGRADED", a.revision),
            );
        }
    }
    Flow::Again
}

fn push_event(
    out: &mut Output,
    input: &Input<'_>,
    kind: EventKind,
    reason: EventReason,
    revision: u64,
    logs_of: Option<String>,
    message: String,
) {
    out.events.push(Event {
        logs_of,
        ..event(input, kind, reason, Some(revision), message)
    });
}

/// Keeps a record transition's error: it names a revision the record lacks (a bug or a
/// hand-edited file). The planner reports it; the decision goes on with what the record has.
fn settle(out: &mut Output, r: Result<(), UnknownRevision>) {
    if let Err(e) = r {
        out.record_errors.push(e);
    }
}

/// Every replica passed: the revision is the current one.
fn complete(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    a: Rollout,
    target: &Target,
    out: &mut Output,
) {
    let svc = input.svc;
    let now = input.now;
    let n = a.revision;
    let message = match a.kind {
        RolloutKind::Update => {
            let first = a
                .slots
                .values()
                .filter_map(|s| s.passed_at)
                .min()
                .unwrap_or(now);
            settle(out, rec.mark_ready(n, first));
            settle(out, rec.mark_stable(n));
            let failed = a.slots.values().filter(|s| s.failed).count();
            let tolerated = if failed > 0 {
                format!(" ({failed} replica(s) failed, tolerated)")
            } else {
                String::new()
            };
            (
                EventKind::RolloutSucceeded,
                EventReason::Ready,
                format!(
                    "r{n} ({}) is ready and stable{tolerated}",
                    short(&target.hash)
                ),
            )
        }
        RolloutKind::Revert { failed } => {
            settle(out, rec.mark_reverted(failed));
            let reason = rec
                .revision(failed)
                .and_then(|r| r.reason.clone())
                .unwrap_or_default();
            let jobs = if input.jobs_ran.is_empty() {
                String::new()
            } else {
                format!(
                    "; one-shot jobs that already ran and are NOT undone: {}",
                    input.jobs_ran.join(", ")
                )
            };
            // A revision whose image was never built never replaced anything.
            let again = if rec.revision(failed).is_some_and(|r| r.image_id.is_empty()) {
                "still runs"
            } else {
                "runs again"
            };
            let why = rec
                .revision(failed)
                .and_then(|r| r.failure)
                .unwrap_or(FailReason::Failed);
            (
                EventKind::Reverted,
                EventReason::Failure(why),
                format!("r{failed} failed ({reason}); r{n} {again} and is ready{jobs}"),
            )
        }
        RolloutKind::Rollback => {
            settle(out, rec.mark_current(n));
            (
                EventKind::RolloutSucceeded,
                EventReason::Ready,
                format!(
                    "rolled back to r{n} ({}); held there until `berth release`",
                    short(&target.hash)
                ),
            )
        }
    };
    rec.active = None;
    pin(input, rec, n, out);
    let pruned = rec.prune_history(DEFAULT_HISTORY_LIMIT);
    for r in &pruned {
        if let Some(reference) = &r.pin {
            out.steps.push((
                Action::Unpin {
                    reference: reference.clone(),
                },
                format!("r{} left the history", r.number),
            ));
        }
    }
    // The kept containers of other revisions are no longer needed.
    for c in replicas(input) {
        if c.identity.spec_hash != target.hash && c.identity.number <= svc.replicas {
            removal(
                out,
                c,
                svc,
                &format!("r{n} is stable; the old container is no longer needed"),
            );
        }
    }
    // Built images of revisions that left the history go last (after their pins and any
    // container that used them), unless a revision still in the history or the desired
    // state itself uses the same build.
    let mut gone = std::collections::BTreeSet::new();
    for r in &pruned {
        let reference = r.image_ref.as_str();
        let used = svc.image.as_deref() == Some(reference)
            || rec.revisions.iter().any(|k| k.image_ref == reference);
        if crate::desired::hash::is_built_reference(reference) && !used && gone.insert(reference) {
            out.steps.push((
                Action::RemoveImage {
                    reference: reference.to_string(),
                },
                format!("r{}'s built image left the history", r.number),
            ));
        }
    }
    let (kind, why, message) = message;
    out.events.push(event(input, kind, why, Some(n), message));
}

/// The target runs: restart or recreate what died, vanished or is unhealthy; clean leftovers.
fn self_heal(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    target: &Target,
    out: &mut Output,
) -> Flow {
    let svc = input.svc;
    let now = input.now;
    let mine = replicas(input);
    remove_gates(input, out, "the rollout it gated is over");
    let mut heals: Vec<(u32, HealReason, String)> = Vec::new();
    for n in 1..=svc.replicas {
        let canonical = target.canonical(input, n);
        let (tc, olds) = split_slot(out, svc, &mine, &target.hash, n, &canonical);
        // What remains of earlier revisions: the rollout that kept them is over.
        for o in &olds {
            let cause = if o.identity.managed {
                format!("left over from revision {}", short(&o.identity.spec_hash))
            } else {
                "taking over from docker compose".to_string()
            };
            removal(out, o, svc, &cause);
        }
        match tc {
            // Missing (removed by hand, or a scale-up): recreated at once; not a crash, so
            // it neither backs off nor counts towards the restart limit.
            None => {
                let cause = format!("replica {n} is missing; creating it");
                create_start(out, target, input, n, &canonical, &cause);
                out.events.push(event(
                    input,
                    EventKind::SelfHeal,
                    EventReason::Heal(HealReason::Missing),
                    target.revision,
                    cause,
                ));
            }
            Some(c) => {
                if c.name != canonical && !mine.iter().any(|o| o.name == canonical) {
                    out.steps
                        .push((rename(c, &canonical), format!("replica {n} takes its name")));
                }
                let liveness = input.probes.get(&c.id).and_then(|p| p.liveness);
                match c.state {
                    RunState::Created => heals.push((
                        n,
                        HealReason::NotStarted,
                        format!("replica {n} was created but not started"),
                    )),
                    RunState::Exited => heals.push(match c.exit_code {
                        Some(code) => (
                            n,
                            HealReason::Exited,
                            format!("replica {n} exited with code {code}; restarting"),
                        ),
                        None => (
                            n,
                            HealReason::Stopped,
                            format!("replica {n} is stopped; restarting"),
                        ),
                    }),
                    RunState::Running if c.health == Health::Unhealthy => heals.push((
                        n,
                        HealReason::Unhealthy,
                        format!("replica {n} is unhealthy (Docker healthcheck); restarting"),
                    )),
                    RunState::Running
                        if svc.berth.liveness.is_some()
                            && liveness == Some(ProbeStatus::Failing) =>
                    {
                        heals.push((
                            n,
                            HealReason::Liveness,
                            format!("replica {n} fails its liveness probe; restarting"),
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
    if heals.is_empty() {
        return Flow::Done;
    }
    // Exponential backoff between restarts; a limit per window ends in Degraded.
    let k = rec.restarts.len();
    if k >= HEAL_LIMIT {
        let reason = format!(
            "restarted {k} times within {}; giving up on self-heal ({})",
            crate::desired::syntax::units::format_duration(HEAL_WINDOW),
            heals[0].2
        );
        rec.degraded = Some(Degraded {
            since: now,
            reason: reason.clone(),
            spec_hash: svc.spec_hash.clone(),
        });
        out.events.push(event(
            input,
            EventKind::Degraded,
            EventReason::Failure(FailReason::SelfHealLimit),
            target.revision,
            format!("{reason}; DEGRADED"),
        ));
        return Flow::Again;
    }
    if let Some(last) = rec.restarts.last() {
        let wait = (1u64 << (k.min(6) as u32)).min(HEAL_MAX_BACKOFF);
        if now < last + wait {
            out.holds.push(Hold::Wait(format!(
                "self-heal backs off {}s after {k} restart(s): {}",
                last + wait - now,
                heals[0].2
            )));
            return Flow::Done;
        }
    }
    rec.restarts.push(now);
    for (n, why, cause) in heals {
        let canonical = target.canonical(input, n);
        match mine
            .iter()
            .copied()
            .filter(|c| c.identity.number == n && c.identity.spec_hash == target.hash)
            .min_by_key(|c| (c.state != RunState::Running, c.name != canonical))
        {
            None => create_start(out, target, input, n, &canonical, &cause),
            Some(c) => {
                if c.state == RunState::Running {
                    out.steps.push((stop(c, svc), cause.clone()));
                }
                out.steps.push((start(c), cause.clone()));
            }
        }
        out.events.push(event(
            input,
            EventKind::SelfHeal,
            EventReason::Heal(why),
            target.revision,
            cause,
        ));
    }
    Flow::Done
}

/// Removes `pre_deploy` and `smoke` containers (their result is in the record).
fn remove_gates(input: &Input<'_>, out: &mut Output, cause: &str) {
    for c in input
        .containers
        .iter()
        .filter(|c| matches!(c.identity.role, Role::Smoke | Role::PreDeploy))
    {
        removal(out, c, input.svc, cause);
    }
}

fn event(
    input: &Input<'_>,
    kind: EventKind,
    reason: EventReason,
    revision: Option<u64>,
    message: String,
) -> Event {
    Event {
        project: input.project.name.clone(),
        service: input.svc.name.clone(),
        kind,
        reason,
        revision,
        message,
        logs_of: None,
        logs: None,
    }
}

fn start(c: &ObservedContainer) -> Action {
    Action::Start {
        target: c.id.clone(),
        name: c.name.clone(),
    }
}

fn stop(c: &ObservedContainer, svc: &Service) -> Action {
    Action::Stop {
        id: c.id.clone(),
        name: c.name.clone(),
        grace: svc.stop_grace_period.unwrap_or(Duration::from_secs(10)),
        signal: svc.stop_signal.clone(),
    }
}

fn rename(c: &ObservedContainer, to: &str) -> Action {
    Action::Rename {
        id: c.id.clone(),
        name: c.name.clone(),
        to: to.to_string(),
    }
}

fn removal(out: &mut Output, c: &ObservedContainer, svc: &Service, cause: &str) {
    if out
        .steps
        .iter()
        .any(|(a, _)| matches!(a, Action::Remove { id, .. } if *id == c.id))
    {
        return;
    }
    let stopped = out
        .steps
        .iter()
        .any(|(a, _)| matches!(a, Action::Stop { id, .. } if *id == c.id));
    if matches!(c.state, RunState::Running | RunState::Paused) && !stopped {
        out.steps.push((stop(c, svc), cause.to_string()));
    }
    // The name it has by then: a rename earlier in this round may have changed it.
    let name = out
        .steps
        .iter()
        .rev()
        .find_map(|(a, _)| match a {
            Action::Rename { id, to, .. } if *id == c.id => Some(to.clone()),
            _ => None,
        })
        .unwrap_or_else(|| c.name.clone());
    out.steps.push((
        Action::Remove {
            id: c.id.clone(),
            name,
        },
        cause.to_string(),
    ));
}

/// Removes a container that failed its gate: no grace period (it is not serving, and a
/// revert should not wait for it).
fn discard(out: &mut Output, c: &ObservedContainer, svc: &Service, cause: &str) {
    if matches!(c.state, RunState::Running | RunState::Paused) {
        out.steps.push((
            Action::Stop {
                id: c.id.clone(),
                name: c.name.clone(),
                grace: Duration::ZERO,
                signal: None,
            },
            cause.to_string(),
        ));
    }
    removal(out, c, svc, cause);
}
