//! The rollout's order (start-first or stop-first, and the words saying why) and the policy a
//! rollout kind runs under.
//!
//! Pure; asked by `begin` (for the event's words) and `replica` (for each replica's step).

use std::time::Duration;

use crate::desired::model::{Order, RolloutPolicy, Service};
use crate::store::RolloutKind;

/// The order and the words saying why.
pub(super) fn order(svc: &Service) -> (Order, String) {
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

pub(super) fn policy(svc: &Service, kind: RolloutKind) -> RolloutPolicy {
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
