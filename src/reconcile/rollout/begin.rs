//! Beginning a rollout: adopting what runs without a record, recording the revision (once its
//! image is here), pinning what runs now, and a failed build that fails the revision before
//! anything changed.
//!
//! Pure; called by the driver when the target is neither active nor established.

use std::collections::BTreeMap;

use super::containers::replicas;
use super::pins::pin;
use super::policy::order_in;
use super::revert::fail;
use super::target::Target;
use super::{Flow, Hold, Input, Output, event, settle};
use crate::desired::model::PullPolicy;
use crate::engine::labels::Role;
use crate::engine::{Health, RunState};
use crate::reconcile::action::short;
use crate::reconcile::container_spec::container_create;
use crate::reconcile::diff;
use crate::reconcile::event::EventKind;
use crate::reconcile::observed::{BuildFailure, ObservedContainer, normalize_reference};
use crate::reconcile::reason::{BlockReason, EventReason, FailReason, WaitReason};
use crate::store::{Outcome, Rollout, RolloutKind, ServiceRecord};

/// How [`begin`] ended.
pub(super) enum Begin {
    /// The rollout is active: advance it.
    Started,
    /// It cannot start yet (image missing, being looked up), or there was nothing to roll.
    NotYet,
    /// It failed before any container changed (the image build failed): the failure is
    /// recorded and the next pass acts on it.
    Failed,
}

/// Starts a rollout towards `target`.
pub(super) fn begin(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    target: &Target,
    out: &mut Output,
) -> Begin {
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
        // A stable revision taken up again (see `ServiceRecord::reusable`).
        Some(n)
            if target.kind == RolloutKind::Update
                && rec
                    .revision(n)
                    .is_some_and(|r| r.outcome == Outcome::Superseded) =>
        {
            settle(out, rec.resume(n));
            n
        }
        Some(n) => n,
        None => {
            // Update towards a new revision: the image must be here first.
            let reference = svc.image.clone().unwrap_or_default();
            let Some(images) = input.images else {
                out.needs_inventory = true;
                out.holds.push(Hold::Wait(WaitReason::LookingUpImage));
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
                if svc.build.is_none() && svc.pull_policy == PullPolicy::Never {
                    out.holds
                        .push(Hold::Blocked(BlockReason::ImageAbsent { reference }));
                    return Begin::NotYet;
                }
                out.pulls.push(reference.clone());
                out.holds.push(Hold::Wait(WaitReason::Fetching {
                    build: svc.build.is_some(),
                    reference: reference.clone(),
                }));
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
                r.policy = diff::policy_of(svc);
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
        RolloutKind::Update => {
            let changes = match (rec.current(), rec.revision(number)) {
                (Some(old), Some(new)) if old.number != number => {
                    format!(": {}", diff::between(old, new))
                }
                _ => String::new(),
            };
            format!(
                "rolling out r{number} ({}), {}{changes}",
                short(&target.hash),
                order_in(input).1
            )
        }
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
pub(super) fn build_failed(
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
