//! The planner's entry point: a takeover first adopts the compose containers that are what
//! berth would create (`reconcile::adopt`), then the round is planned with them as berth's; the
//! plan carries the adoption records (saved before any step) and says what becomes of each
//! compose container.
//!
//! Pure, part of the planner.

use super::{Note, Plan, PlanOptions, Records, plan_with};
use crate::desired::model::DesiredState;
use crate::reconcile::adopt;
use crate::reconcile::observed::ObservedState;

/// Plans one reconcile round from what is desired, what exists and what berth recorded.
///
/// A takeover first adopts the compose containers that are what berth would create
/// ([`adopt::decide`]); the rest of the plan sees them as berth's, and the records with the
/// adoptions are in the plan (saved before any step).
pub fn plan(
    desired: &DesiredState,
    observed: &ObservedState,
    records: &Records,
    opts: PlanOptions,
    now: u64,
) -> Plan {
    let decision = adopt::decide(desired, observed, records, now);
    let mut plan = if decision.records.is_empty() {
        plan_with(desired, observed, records, opts, now)
    } else {
        let records = decision.apply(records);
        let mut observed = observed.clone();
        adopt::view(&mut observed, &records);
        let mut plan = plan_with(desired, &observed, &records, opts, now);
        for (k, r) in &decision.records {
            // The planner's own change of a record starts from the one with the adoption.
            plan.records.entry(k.clone()).or_insert_with(|| r.clone());
        }
        plan
    };
    plan.read_configs = decision.unread;
    let first = plan
        .notes
        .iter()
        .take_while(|n| matches!(n, Note::ProjectName(_)))
        .count();
    plan.notes.splice(
        first..first,
        decision.verdicts.into_iter().map(Note::Takeover),
    );
    plan
}
