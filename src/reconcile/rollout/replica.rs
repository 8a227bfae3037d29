//! One replica's step of an active rollout: from the state of its slot (not begun, begun but
//! not created, created, passed) and its containers, the engine actions that move it towards
//! the target revision, and whether it passed, waits or failed.
//!
//! Pure; `advance` calls [`step`] for replicas 1..=N every round and acts on the result.

use std::collections::BTreeSet;

use super::containers::{
    Fate, create_start, dedupe_olds, make_room, rename, split_slot, start, start_as, swap,
};
use super::handoff::{self, Routing, Switch};
use super::target::Target;
use super::{Input, Output, event};
use crate::desired::model::{FailureAction, Order, RolloutPolicy};
use crate::engine::RunState;
use crate::reconcile::action::short;
use crate::reconcile::event::{Event, EventKind};
use crate::reconcile::gate::{self, Candidate, GateMemory, Verdict};
use crate::reconcile::observed::ObservedContainer;
use crate::reconcile::probe::ProbeStatus;
use crate::reconcile::reason::{EventReason, FailReason, HealReason, ReplicaWait};
use crate::store::{Rollout, RolloutKind, Slot};

/// What one replica's step decided.
pub(super) enum ReplicaStep {
    /// Nothing to wait for on it this round: it passed (or its failure is tolerated).
    Done,
    /// It is on its way; why, for the service's wait note.
    Waiting(ReplicaWait),
    /// It failed: the rollout fails with this.
    Failed {
        /// The container whose last log lines belong in the event.
        logs_of: Option<String>,
        /// Why, typed.
        kind: FailReason,
        /// Why, in words.
        reason: String,
    },
}

/// What every replica's step shares in one round of one rollout.
pub(super) struct Batch<'b, 'a> {
    pub(super) input: &'b Input<'a>,
    pub(super) target: &'b Target,
    /// The revision rolled to.
    pub(super) revision: u64,
    pub(super) kind: RolloutKind,
    pub(super) pol: RolloutPolicy,
    pub(super) order: Order,
    /// The words saying why this order.
    pub(super) why: String,
    pub(super) parallelism: usize,
    /// Replicas whose replacement began and has not passed yet.
    pub(super) in_flight: usize,
    /// The delay since the last batch passed is over.
    pub(super) batch_open: bool,
    /// The spec hash of the revision a revert comes back from.
    pub(super) failed_hash: Option<String>,
    /// Spec hashes of stable revisions: their containers are kept for a revert.
    pub(super) stable: BTreeSet<String>,
    /// The service's replica containers.
    pub(super) mine: Vec<&'a ObservedContainer>,
    /// Port handoff: the service's backends in the proxy's routes (`None` without handoff).
    pub(super) routing: Option<Routing>,
}

impl Batch<'_, '_> {
    /// What becomes of an old container when its replica is replaced.
    pub(super) fn fate(&self, c: &ObservedContainer) -> Fate {
        if Some(&c.identity.spec_hash) == self.failed_hash.as_ref() {
            Fate::Discard
        } else if self.stable.contains(&c.identity.spec_hash) {
            Fate::Keep
        } else {
            Fate::Remove
        }
    }

    /// Start-first: the candidate starts beside a running old container (under a temporary
    /// name) and the old one stays until the candidate passed. Only updates do this; a revert
    /// or a rollback frees the name first — except with port handoff, where the old
    /// container serves until the proxy's routes leave it, whichever way the switch goes.
    fn beside(&self, olds: &[&ObservedContainer]) -> bool {
        self.order == Order::StartFirst
            && (self.kind == RolloutKind::Update || self.routing.is_some())
            && olds.iter().any(|o| o.state == RunState::Running)
    }

    /// The candidate `tc` of replica `r` passed: without handoff its old containers go at
    /// once ([`swap`]); with it, once the proxy's routes were switched and the old ones
    /// drained (`Some`: what it waits for).
    fn hand_over(
        &mut self,
        a: &mut Rollout,
        out: &mut Output,
        r: &Replica<'_, '_>,
        tc: Option<&ObservedContainer>,
    ) -> Option<ReplicaWait> {
        if let (Some(h), Some(c), Some(routing)) = (
            self.input.svc.berth.handoff.as_ref(),
            tc,
            self.routing.as_mut(),
        ) {
            let mut slot = a.slots.get(&r.n).copied().unwrap_or_default();
            let sw = handoff::switch(self.input, routing, h, r.canonical, c, r.olds, &mut slot);
            a.slots.insert(r.n, slot);
            if let Switch::Waiting(w) = sw {
                return Some(w);
            }
        }
        swap(
            out,
            self.input.svc,
            tc,
            r.olds,
            r.canonical,
            &|c| self.fate(c),
            r.cause,
        );
        None
    }

    /// The batch has room for one more replacement.
    fn room(&self) -> bool {
        self.in_flight < self.parallelism && self.batch_open
    }

    fn waits_for_batch(&self) -> ReplicaStep {
        ReplicaStep::Waiting(ReplicaWait::Batch {
            parallelism: self.parallelism,
        })
    }

    /// The cause every step of replica `n` carries.
    fn cause(&self, n: u32, olds: &[&ObservedContainer]) -> String {
        let r = self.revision;
        match self.kind {
            RolloutKind::Update if olds.is_empty() => format!("r{r} replica {n}"),
            RolloutKind::Update if olds.iter().any(|c| !c.identity.managed) => format!(
                "r{r} replica {n}: taking over from docker compose, {}",
                self.why
            ),
            // The order and its reason are said once per service, by the rollout's start
            // (see `rollout::begin` and the plan's rendering), not on every step.
            RolloutKind::Update => format!("r{r} replica {n}"),
            RolloutKind::Revert { failed } => {
                format!("revert to r{r} (r{failed} failed) replica {n}")
            }
            RolloutKind::Rollback => format!("rollback to r{r} replica {n}"),
        }
    }
}

/// Replica `n`'s step this round; updates its slot in `a`.
pub(super) fn step(
    b: &mut Batch<'_, '_>,
    a: &mut Rollout,
    out: &mut Output,
    n: u32,
) -> ReplicaStep {
    let svc = b.input.svc;
    let canonical = b.target.canonical(b.input, n);
    let (tc, olds) = split_slot(out, svc, &b.mine, &b.target.hash, n, &canonical);
    let olds = dedupe_olds(out, svc, olds, &|c| b.fate(c));
    let slot = a.slots.get(&n).copied();
    let cause = b.cause(n, &olds);
    if let (Some(err), Some(s)) = (b.input.step_error, slot)
        && s.passed_at.is_none()
    {
        return ReplicaStep::Failed {
            logs_of: tc.map(|c| c.id.clone()),
            kind: FailReason::Failed,
            reason: format!("replica {n}'s new container could not be started: {err}"),
        };
    }
    let r = Replica {
        n,
        olds: &olds,
        canonical: &canonical,
        cause: &cause,
    };
    match (tc, slot) {
        (_, Some(s)) if s.passed_at.is_some() => passed(b, a, out, &r, tc),
        (None, Some(s)) => not_created(b, out, &r, s),
        (None, None) => begin_new(b, a, out, &r),
        (Some(c), None) => begin_existing(b, a, out, &r, c),
        (Some(c), Some(s)) => candidate(b, a, out, &r, c, s),
    }
}

/// Replica `n` of this round: its old containers, its canonical name, its steps' cause.
struct Replica<'r, 'a> {
    n: u32,
    olds: &'r [&'a ObservedContainer],
    canonical: &'r str,
    cause: &'r str,
}

/// Passed: finish the swap; a passed replica that died is self-heal territory.
fn passed(
    b: &mut Batch<'_, '_>,
    a: &mut Rollout,
    out: &mut Output,
    r: &Replica<'_, '_>,
    tc: Option<&ObservedContainer>,
) -> ReplicaStep {
    if let Some(w) = b.hand_over(a, out, r, tc) {
        return ReplicaStep::Waiting(w);
    }
    match tc {
        None => create_start(out, b.target, b.input, r.n, r.canonical, r.cause),
        // `swap` gave it the canonical name.
        Some(c) if matches!(c.state, RunState::Exited | RunState::Created) => out.steps.push((
            start_as(c, r.canonical),
            format!("{}: exited after passing; restarting", r.cause),
        )),
        _ => {}
    }
    ReplicaStep::Done
}

/// Begun, but its container is not there (its create or start failed, or berth stopped in
/// between): create it again until the deadline.
fn not_created(b: &Batch<'_, '_>, out: &mut Output, r: &Replica<'_, '_>, s: Slot) -> ReplicaStep {
    let n = r.n;
    if b.input.now >= s.started_at + b.pol.progress_deadline.as_secs() {
        return ReplicaStep::Failed {
            logs_of: None,
            kind: FailReason::Failed,
            reason: format!(
                "replica {n}'s new container could not be created or started (see the failed steps)"
            ),
        };
    }
    if b.routing.is_some() && b.beside(r.olds) {
        let temp = format!("{}-{}", r.canonical, short(&b.target.hash));
        create_start(out, b.target, b.input, n, &temp, r.cause);
    } else {
        create_in_place(b, out, r);
    }
    ReplicaStep::Waiting(ReplicaWait::Starting)
}

/// Frees the replica's canonical name: its old containers go as the batch decides
/// ([`make_room`]).
fn free_name(b: &Batch<'_, '_>, out: &mut Output, r: &Replica<'_, '_>) {
    make_room(
        out,
        b.input.svc,
        r.olds,
        r.canonical,
        &|c| b.fate(c),
        r.cause,
    );
}

/// Creates and starts the replica's new container under its canonical name, in the old
/// one's place.
fn create_in_place(b: &Batch<'_, '_>, out: &mut Output, r: &Replica<'_, '_>) {
    free_name(b, out, r);
    create_start(out, b.target, b.input, r.n, r.canonical, r.cause);
}

/// Not begun and no container of the target: create one, beside the old one (start-first) or
/// in its place, when the batch has room.
fn begin_new(
    b: &mut Batch<'_, '_>,
    a: &mut Rollout,
    out: &mut Output,
    r: &Replica<'_, '_>,
) -> ReplicaStep {
    let n = r.n;
    let fresh = r.olds.is_empty();
    if !fresh && !b.room() {
        return b.waits_for_batch();
    }
    if !fresh {
        b.in_flight += 1;
    }
    a.slots.insert(
        n,
        Slot {
            started_at: b.input.now,
            ..Slot::default()
        },
    );
    if b.beside(r.olds) {
        let temp = format!("{}-{}", r.canonical, short(&b.target.hash));
        create_start(out, b.target, b.input, n, &temp, r.cause);
    } else {
        create_in_place(b, out, r);
    }
    ReplicaStep::Waiting(ReplicaWait::Starting)
}

/// Not begun, but the target's container exists: a kept container (revert, rollback) or one
/// that was already there.
fn begin_existing(
    b: &mut Batch<'_, '_>,
    a: &mut Rollout,
    out: &mut Output,
    r: &Replica<'_, '_>,
    c: &ObservedContainer,
) -> ReplicaStep {
    let n = r.n;
    let fresh = r.olds.is_empty();
    if !fresh && c.state != RunState::Running && !b.room() {
        return b.waits_for_batch();
    }
    let mut slot = Slot {
        started_at: b.input.now,
        ..Slot::default()
    };
    if c.state == RunState::Running {
        if matches!(b.kind, RolloutKind::Revert { .. }) {
            // It never stopped: nothing to verify.
            slot.passed_at = Some(b.input.now);
            a.slots.insert(n, slot);
            return match b.hand_over(a, out, r, Some(c)) {
                Some(w) => ReplicaStep::Waiting(w),
                None => ReplicaStep::Done,
            };
        }
    } else {
        if !fresh {
            b.in_flight += 1;
        }
        start_in_place(b, out, r, c, r.cause.to_string());
    }
    a.slots.insert(n, slot);
    ReplicaStep::Waiting(ReplicaWait::Starting)
}

/// Starts the target's existing container `c`: in the old one's place (its name freed first)
/// unless it starts beside it.
fn start_in_place(
    b: &Batch<'_, '_>,
    out: &mut Output,
    r: &Replica<'_, '_>,
    c: &ObservedContainer,
    cause: String,
) {
    if b.beside(r.olds) {
        out.steps.push((start(c), cause));
        return;
    }
    free_name(b, out, r);
    if c.name != r.canonical {
        out.steps
            .push((rename(c, r.canonical), r.cause.to_string()));
    }
    // Named as it is when the start runs: after the rename.
    out.steps.push((start_as(c, r.canonical), cause));
}

/// Begun and its container exists: start it if it never ran, else judge it by the gate.
fn candidate(
    b: &mut Batch<'_, '_>,
    a: &mut Rollout,
    out: &mut Output,
    r: &Replica<'_, '_>,
    c: &ObservedContainer,
    mut s: Slot,
) -> ReplicaStep {
    let (n, input, now) = (r.n, b.input, b.input.now);
    if c.state == RunState::Created {
        out.steps
            .push((start(c), format!("{}: created, not started", r.cause)));
        return ReplicaStep::Waiting(ReplicaWait::Starting);
    }
    let mut mem = GateMemory {
        started_at: s.started_at,
        ready_since: s.ready_since,
        watched_at: s.watched_at,
        unwatched: s.unwatched,
    };
    // Time berth was not watching (it was down, or the engine was) is no verdict.
    let look = gate::look(&b.pol, &mut mem, now, input.engine_lost);
    let stop_code = matches!(c.exit_code, None | Some(0 | 137 | 143));
    // Stopped before it ever ran here: berth's own start did not happen (a crash between the
    // record and the step) — start it again rather than judge it. Stopped while berth was not
    // watching: the engine stopped it (an engine restart stops every container with a stop's
    // code) — start it again on a fresh clock. An exit code other than a stop's means it ran
    // and failed.
    if c.state == RunState::Exited && stop_code {
        let unstarted = !s.seen_running && now < s.started_at + b.pol.progress_deadline.as_secs();
        let unwatched = matches!(look, gate::Look::AfterGap { .. });
        if unstarted || unwatched {
            if unwatched {
                a.slots.insert(
                    n,
                    Slot {
                        started_at: now,
                        ..Slot::default()
                    },
                );
                out.events.push(event(
                    input,
                    EventKind::SelfHeal,
                    EventReason::Heal(HealReason::StoppedUnwatched),
                    Some(b.revision),
                    format!(
                        "replica {n} of r{} was stopped while berth was not watching (engine or berth restarted; exit code {}); starting it again, its gate starts over",
                        b.revision,
                        c.exit_code.map_or("unknown".to_string(), |c| c.to_string())
                    ),
                ));
            }
            start_in_place(b, out, r, c, format!("{}: start again", r.cause));
            return ReplicaStep::Waiting(ReplicaWait::Starting);
        }
    }
    s.watched_at = mem.watched_at;
    s.unwatched = mem.unwatched;
    s.ready_since = mem.ready_since;
    if c.state == RunState::Running && !s.seen_running {
        s.seen_running = true;
        a.slots.insert(n, s);
    }
    let probe = input.svc.berth.readiness.as_ref().map(|_| {
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
    let verdict = gate::evaluate(&b.pol, &candidate, &mut mem, now);
    s.ready_since = mem.ready_since;
    match verdict {
        Verdict::Ready => {
            s.passed_at = Some(now);
            a.slots.insert(n, s);
            match b.hand_over(a, out, r, Some(c)) {
                Some(w) => ReplicaStep::Waiting(w),
                None => ReplicaStep::Done,
            }
        }
        Verdict::Progressing { reason } => {
            a.slots.insert(n, s);
            ReplicaStep::Waiting(ReplicaWait::Gate(reason))
        }
        Verdict::Failed { kind, reason } => {
            let failed = a.slots.values().filter(|s| s.failed).count() as u32 + 1;
            let ratio = f64::from(failed) / f64::from(input.svc.replicas.max(1));
            let tolerated = b.kind == RolloutKind::Update
                && (b.pol.update.failure_action == FailureAction::Continue
                    || ratio <= b.pol.update.max_failure_ratio);
            // A failing readiness probe's own words say why ("HTTP 404 from …/health").
            let reason = match input.probes.get(&c.id) {
                Some(v) if probe == Some(ProbeStatus::Failing) => match &v.readiness_detail {
                    Some(d) => format!("{reason} (last check: {d})"),
                    None => reason,
                },
                _ => reason,
            };
            if !tolerated {
                return ReplicaStep::Failed {
                    logs_of: Some(c.id.clone()),
                    kind,
                    reason: format!("replica {n}: {reason}"),
                };
            }
            s.failed = true;
            s.passed_at = Some(now);
            a.slots.insert(n, s);
            out.events.push(Event {
                logs_of: Some(c.id.clone()),
                ..event(
                    input,
                    EventKind::RolloutFailed,
                    EventReason::Tolerated(kind),
                    Some(b.revision),
                    format!(
                        "replica {n} of r{} failed ({reason}); tolerated by failure_action/max_failure_ratio, the rollout goes on",
                        b.revision
                    ),
                )
            });
            ReplicaStep::Done
        }
    }
}
