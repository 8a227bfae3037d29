//! Start-of-round housekeeping of a service's record: lifts quarantines and degradations that
//! the desired state or `berth retry` ended, forgets self-heal restarts that left the window.
//!
//! Pure; runs once per round before the state machine's passes.

use super::heal::HEAL_WINDOW;
use super::{Input, Output, event};
use crate::reconcile::action::short;
use crate::reconcile::event::EventKind;
use crate::reconcile::reason::EventReason;
use crate::store::ServiceRecord;

/// Lifts quarantines and degradations the desired state or `berth retry` ended; drops
/// self-heal restarts that left the window.
pub(super) fn housekeeping(input: &Input<'_>, rec: &mut ServiceRecord, out: &mut Output) {
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
