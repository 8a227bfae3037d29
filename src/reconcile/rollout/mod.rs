//! Rollout state machine of one long-running service (docs/rollouts.md): which revision it should
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

mod advance;
mod begin;
mod complete;
mod containers;
mod gates;
mod handoff;
mod heal;
mod housekeeping;
mod phase;
mod pins;
mod policy;
mod replica;
mod revert;
mod scale;
mod target;

use std::collections::BTreeMap;

use super::action::{Action, short};
use super::event::{Event, EventKind};
use super::observed::{BuildFailure, ObservedContainer, ProbeVerdicts};
use super::reason::{BlockReason, EventReason, HeldReason, WaitReason};
use crate::desired::model::{Project, Service};
use crate::fleet::wave::Decision;
use crate::store::{RolloutKind, ServiceRecord, UnknownRevision};

use advance::*;
use begin::*;
use heal::*;
use housekeeping::*;
use scale::scale_down;
use target::*;

pub use phase::{HeldBy, Phase, phase};
pub use pins::PIN_REPOSITORY_PREFIX;

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
    /// The engine did not answer at some point between the last round and this one (it may
    /// have restarted and stopped every container): an exit seen now is no verdict.
    pub engine_lost: bool,
    /// The fleet's wave rule for the project on this host (`None`: not in a fleet with
    /// waves); consulted only before an update begins.
    pub wave: Option<&'a Decision>,
    /// Port handoff: the service's listeners in the proxy's routes file as it is now (empty
    /// when it has none, or the file was not read); see `handoff`.
    pub routes: Vec<&'a crate::proxy::routes::Listener>,
    /// Now, unix seconds.
    pub now: u64,
}

/// What to wait for or why nothing moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A later round continues (gate, batch, backoff, pull).
    Wait(WaitReason),
    /// Nothing changes until the desired state does or an operator acts.
    Blocked(BlockReason),
    /// Held by `x-berth.hold` or `berth hold`/`berth rollback`: informational.
    Held(HeldReason),
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
    let mut routing = None;
    for _ in 0..4 {
        let mark = out.steps.len();
        routing = None;
        match pass(input, &mut rec, &mut out, &mut routing) {
            Flow::Done => break,
            Flow::Again => out.steps.truncate(mark),
        }
    }
    handoff::finish(input, routing.as_ref(), &mut out);
    if rec != *input.record {
        out.record = Some(rec);
    }
    out
}

enum Flow {
    Done,
    Again,
}

fn pass(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    out: &mut Output,
    routing: &mut Option<handoff::Routing>,
) -> Flow {
    let svc = input.svc;
    // The phase decides whether anything may change; a rollback (held, but moving) and every
    // other phase go on below.
    let stop = match phase(svc, rec) {
        Phase::Held(HeldBy::Compose) => Some(Hold::Held(HeldReason::Compose)),
        Phase::Held(HeldBy::Operator { .. }) => Some(Hold::Held(HeldReason::Operator)),
        Phase::Degraded(g) => Some(Hold::Blocked(BlockReason::Degraded(g.reason.clone()))),
        Phase::Paused { reason, .. } => Some(Hold::Blocked(BlockReason::Paused(reason.into()))),
        Phase::Held(HeldBy::Rollback { .. })
        | Phase::Rolling(_)
        | Phase::Quarantined(_)
        | Phase::Steady => None,
    };
    if let Some(hold) = stop {
        out.holds.push(hold);
        return Flow::Done;
    }
    let Some(target) = target(input, rec, out) else {
        return Flow::Done;
    };
    if svc.berth.handoff.is_some() {
        *routing = Some(handoff::Routing::read(input));
    }
    scale_down(input, rec, routing.as_mut(), out);
    let matching = rec.active.as_ref().is_some_and(|a| {
        a.kind == target.kind
            && match target.revision {
                Some(n) => a.revision == n,
                None => false,
            }
    });
    let flow = if matching {
        advance(input, rec, out, routing)
    } else if established(rec, &target) {
        rec.active = None;
        if let Some(r) = routing.as_mut() {
            handoff::steady(input, &target.hash, r);
        }
        self_heal(input, rec, &target, out)
    } else if let Some(hold) = wave_gate(input, &target) {
        // The fleet's earlier waves have not taken this revision (or it failed there): it
        // does not begin here. An update already under way towards an earlier revision is
        // finished from that revision's recorded template rather than left half done.
        out.holds.push(hold);
        if finishes_under_gate(rec) {
            advance(input, rec, out, routing)
        } else {
            Flow::Done
        }
    } else {
        match begin(input, rec, &target, out) {
            Begin::Started => advance(input, rec, out, routing),
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
        out.holds.push(Hold::Blocked(BlockReason::Quarantined {
            revision: short(&svc.spec_hash).to_string(),
            reason: why,
        }));
    }
    flow
}

/// The wave rule's answer before an update to a new revision begins: `None` to go on.
fn wave_gate(input: &Input<'_>, target: &Target) -> Option<Hold> {
    if target.kind != RolloutKind::Update {
        return None;
    }
    match input.wave? {
        Decision::Go => None,
        Decision::Wait(w) => Some(Hold::Wait(WaitReason::Wave(w.clone()))),
        Decision::Hold(h) => Some(Hold::Blocked(BlockReason::WaveHold(h.clone()))),
    }
}

/// A rollout is under way towards a revision other than the desired one and can be finished
/// while the desired one waits: a revert or rollback (they never build from the service), or an
/// update whose revision's container template is recorded.
fn finishes_under_gate(rec: &ServiceRecord) -> bool {
    rec.active.as_ref().is_some_and(|a| {
        a.kind != RolloutKind::Update
            || rec
                .revision(a.revision)
                .is_some_and(|r| r.template.is_some())
    })
}

/// Keeps a record transition's error: it names a revision the record lacks (a bug or a
/// hand-edited file). The planner reports it; the decision goes on with what the record has.
fn settle(out: &mut Output, r: Result<(), UnknownRevision>) {
    if let Err(e) = r {
        out.record_errors.push(e);
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
