//! The phase of a long-running service: held, degraded, paused, rolling, quarantined or
//! steady, as its desired service and its record say.
//!
//! Pure, and computed here only: the driver (`mod.rs`) acts on it — a held, degraded or
//! paused service changes nothing — and the status model (`telemetry::status`) shows it. Both
//! read the same value, so a service in two conditions at once (degraded *and* held) is in
//! the same phase for the state machine and on the status page. The order of the checks is
//! the order in which they decide: a hold first, then a degradation, then a paused rollout.

use crate::desired::model::Service;
use crate::store::{Degraded, Quarantine, Rollout, ServiceRecord};

/// Who holds a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBy {
    /// `x-berth.hold` in the Compose file.
    Compose,
    /// `berth hold`, since then (unix seconds).
    Operator {
        /// When the hold began.
        since: u64,
    },
    /// `berth rollback`: the service moves to revision `to` and is held there.
    Rollback {
        /// The revision rolled back to.
        to: u64,
    },
}

/// Where a long-running service stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase<'a> {
    /// Held: nothing changes (a rollback still moves the service to its revision first).
    Held(HeldBy),
    /// berth gave up (a revert or rollback failed, or self-heal hit its limit): it keeps what
    /// runs and waits for a person.
    Degraded(&'a Degraded),
    /// A failed rollout stopped where it was (`failure_action: pause`, `auto_revert: false`).
    Paused {
        /// The rollout.
        rollout: &'a Rollout,
        /// Why it failed.
        reason: &'a str,
    },
    /// A rollout (update, revert or rollback) is under way.
    Rolling(&'a Rollout),
    /// The desired revision failed and is quarantined (what ran before runs, if anything).
    Quarantined(&'a Quarantine),
    /// None of the above: the desired revision runs, or a new one is about to begin.
    Steady,
}

/// The phase of `svc` by its record.
pub fn phase<'a>(svc: &Service, rec: &'a ServiceRecord) -> Phase<'a> {
    if svc.berth.hold {
        return Phase::Held(HeldBy::Compose);
    }
    if let (Some(since), None) = (rec.control.hold, rec.control.rollback_to) {
        return Phase::Held(HeldBy::Operator { since });
    }
    if let Some(g) = &rec.degraded {
        return Phase::Degraded(g);
    }
    if let Some(a) = &rec.active
        && let Some(reason) = &a.paused
    {
        return Phase::Paused { rollout: a, reason };
    }
    if let Some(to) = rec.control.rollback_to {
        return Phase::Held(HeldBy::Rollback { to });
    }
    if let Some(a) = &rec.active {
        return Phase::Rolling(a);
    }
    match rec
        .quarantined
        .iter()
        .find(|q| q.spec_hash == svc.spec_hash)
    {
        Some(q) => Phase::Quarantined(q),
        None => Phase::Steady,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};
    use crate::store::RolloutKind;

    fn service(hold: bool) -> Service {
        let extra = if hold {
            "\n    x-berth: {hold: true}"
        } else {
            ""
        };
        let yaml = format!("name: shop\nservices:\n  web:\n    image: app:1{extra}\n");
        let l = load_inline(&yaml, &LoadOptions::default());
        let d = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
        d.projects["shop"].services["web"].clone()
    }

    fn rollout(paused: bool) -> Rollout {
        Rollout {
            revision: 2,
            kind: RolloutKind::Update,
            started_at: 10,
            slots: Default::default(),
            pre_deploy: None,
            smoke: None,
            paused: paused.then(|| "replica 1: exited".to_string()),
        }
    }

    #[test]
    fn a_hold_comes_first_then_degraded_then_paused_then_a_rollback() {
        let degraded = Degraded {
            since: 5,
            reason: "gave up".into(),
            spec_hash: String::new(),
        };
        let mut rec = ServiceRecord {
            degraded: Some(degraded.clone()),
            active: Some(rollout(true)),
            ..ServiceRecord::default()
        };
        rec.control.hold = Some(7);
        assert_eq!(
            phase(&service(false), &rec),
            Phase::Held(HeldBy::Operator { since: 7 })
        );
        assert_eq!(phase(&service(true), &rec), Phase::Held(HeldBy::Compose));
        // A rollback lifts the operator's plain hold, but not a degradation or a pause.
        rec.control.rollback_to = Some(1);
        assert_eq!(phase(&service(false), &rec), Phase::Degraded(&degraded));
        rec.degraded = None;
        assert!(matches!(
            phase(&service(false), &rec),
            Phase::Paused {
                reason: "replica 1: exited",
                ..
            }
        ));
        rec.active = Some(rollout(false));
        assert_eq!(
            phase(&service(false), &rec),
            Phase::Held(HeldBy::Rollback { to: 1 })
        );
        rec.control = Default::default();
        assert!(matches!(phase(&service(false), &rec), Phase::Rolling(_)));
        rec.active = None;
        assert_eq!(phase(&service(false), &rec), Phase::Steady);
    }
}
