//! A failed rollout: the revision is quarantined and, as its policy says, the service reverts to
//! its last stable revision or pauses; a failed revert or rollback degrades the service.
//!
//! Pure; every failure of the state machine ends here.

use std::collections::BTreeMap;

use super::{Flow, Input, Output, event, settle};
use crate::desired::model::FailureAction;
use crate::reconcile::action::short;
use crate::reconcile::event::{Event, EventKind};
use crate::reconcile::reason::{EventReason, FailReason};
use crate::store::{Degraded, Rollout, RolloutKind, ServiceRecord};

/// A rollout (or revert) failed: tolerate, pause, revert or degrade.
pub(super) fn fail(
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

pub(super) fn push_event(
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
