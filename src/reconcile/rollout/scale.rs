//! Scaling down: containers numbered beyond the replica count are removed — with port
//! handoff only once they left the proxy's routes and drained.
//!
//! Pure: appends steps and waits to the [`Output`]. Apart from `containers` (the moves) and
//! `handoff` (the switch), which both serve it.

use super::containers::{removal, replicas};
use super::handoff::{self, Routing};
use super::{Hold, Input, Output};
use crate::reconcile::reason::WaitReason;
use crate::store::ServiceRecord;

/// Containers numbered beyond the replica count go; with port handoff, once they left the
/// proxy's routes and drained (see [`handoff::leave`]).
pub(super) fn scale_down(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    mut routing: Option<&mut Routing>,
    out: &mut Output,
) {
    let n = input.svc.replicas;
    let mut waits = Vec::new();
    handoff::forget_gone(input, rec);
    for c in replicas(input) {
        if c.identity.number > n {
            if let Some(r) = routing.as_deref_mut()
                && let Some(w) = handoff::leave(input, rec, r, c)
            {
                waits.push((c.identity.number, w));
                continue;
            }
            out.scale_down.push(c.id.clone());
            removal(
                out,
                c,
                input.svc,
                &format!("scale down to {n} (removing replica {})", c.identity.number),
            );
        }
    }
    if !waits.is_empty() {
        out.holds.push(Hold::Wait(WaitReason::Replicas(waits)));
    }
}
