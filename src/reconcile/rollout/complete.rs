//! A rollout whose every replica passed: the revision becomes the current one, its image is
//! pinned, kept containers of other revisions go, history beyond the limit is unpinned.
//!
//! Pure; the end of `advance`.

use super::containers::{removal, replicas};
use super::pins::pin;
use super::target::Target;
use super::{Input, Output, event, settle};
use crate::reconcile::action::{Action, short};
use crate::reconcile::event::EventKind;
use crate::reconcile::reason::{EventReason, FailReason};
use crate::store::{DEFAULT_HISTORY_LIMIT, Rollout, RolloutKind, ServiceRecord};

/// Every replica passed: the revision is the current one.
pub(super) fn complete(
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
