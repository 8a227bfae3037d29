//! Port handoff in the rollout (`x-berth.handoff`): which replicas berth's proxy sends a
//! service's traffic to, and the switch that moves it from an old container to its candidate.
//!
//! Pure. The proxy's routes file is the write-ahead record of who receives traffic: the
//! planner reads the service's listeners from it ([`super::Input::routes`]), each replica's
//! step changes the backends it will have ([`Routing`]), and [`finish`] turns a difference
//! into one [`Action::Route`] step that the executor writes. A replica's switch goes: the
//! candidate passed its gate → routes with the candidate in and its old container out
//! (written this round, `Slot::switched_at` recorded) → the old container drains for the
//! drain timeout → it is stopped (kept or removed as without handoff) and the candidate takes
//! the canonical name. A revert is the same switch back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::containers::retired_name;
use super::{Input, Output};
use crate::desired::model::Handoff;
use crate::engine::RunState;
use crate::proxy::routes::{Listener, service_listeners};
use crate::reconcile::action::Action;
use crate::reconcile::observed::ObservedContainer;
use crate::reconcile::reason::ReplicaWait;
use crate::store::{ServiceRecord, Slot};

/// The backends of one service with handoff: name → address.
pub(super) type Backends = BTreeMap<String, IpAddr>;

/// The service's backends as the routes file has them, and as this round leaves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Routing {
    /// In the routes file now.
    pub(super) now: Backends,
    /// After this round's switches.
    pub(super) next: Backends,
}

impl Routing {
    /// The routes file's backends of the service (its first listener's: every listener of a
    /// service has the same replicas).
    pub(super) fn read(input: &Input<'_>) -> Self {
        let now: Backends = input
            .routes
            .first()
            .map(|l| {
                l.backends
                    .iter()
                    .map(|b| (b.name.clone(), b.addr.ip()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            next: now.clone(),
            now,
        }
    }
}

/// The name a container has in the routes: `<canonical>-<hash12>`, the same for a candidate
/// beside its old container, after it took the canonical name, and once it is kept.
pub(super) fn backend_name(canonical: &str, c: &ObservedContainer) -> String {
    retired_name(canonical, c)
}

/// The address the proxy reaches `c` at: its IPv4 address on its first network.
pub(super) fn address(c: &ObservedContainer) -> Option<IpAddr> {
    c.actual
        .as_ref()
        .and_then(|a| a.addresses.values().next().copied())
}

/// How long an old container drains after a switch, in whole seconds as the record counts
/// them: the drain timeout rounded up, plus one (a switch at the end of a second still
/// drains its full timeout, and the proxy, which reads the routes every 200 ms, has applied
/// the switch before anything stops).
pub(super) fn drain_secs(h: &Handoff) -> u64 {
    h.drain_timeout.as_millis().div_ceil(1000) as u64 + 1
}

/// What a replica's switch decided.
pub(super) enum Switch {
    /// Routed to the candidate and drained: the old containers may go.
    Done,
    /// Not yet.
    Waiting(ReplicaWait),
}

/// Replica switch of `tc` (its candidate, which passed) against `olds`: routes the candidate
/// in and the old containers out, then waits out the drain.
pub(super) fn switch(
    input: &Input<'_>,
    routing: &mut Routing,
    h: &Handoff,
    canonical: &str,
    tc: &ObservedContainer,
    olds: &[&ObservedContainer],
    slot: &mut Slot,
) -> Switch {
    let now = input.now;
    if tc.state != RunState::Running {
        // Exited after passing: self-heal's business, nothing to route to.
        return Switch::Done;
    }
    let Some(ip) = address(tc) else {
        return Switch::Waiting(ReplicaWait::NoAddress);
    };
    let name = backend_name(canonical, tc);
    // A candidate whose failure was tolerated replaces its old container without handoff
    // too; it is not sent traffic.
    if slot.failed {
        routing.next.remove(&name);
    } else {
        routing.next.insert(name.clone(), ip);
    }
    for o in olds {
        routing.next.remove(&backend_name(canonical, o));
    }
    let routed = match slot.failed {
        true => !routing.now.contains_key(&name),
        false => routing.now.get(&name) == Some(&ip),
    };
    let in_file = routed
        && olds
            .iter()
            .all(|o| !routing.now.contains_key(&backend_name(canonical, o)));
    if !in_file {
        // Written this round: the drain starts now (again, if an earlier write was lost).
        slot.switched_at = Some(now);
        return Switch::Waiting(ReplicaWait::Switching);
    }
    let Some(at) = slot.switched_at else {
        // The file already routed it and not its old containers: nothing to drain.
        return Switch::Done;
    };
    let until = at + drain_secs(h);
    if now < until && olds.iter().any(|o| o.state == RunState::Running) {
        return Switch::Waiting(ReplicaWait::Draining {
            seconds: until - now,
        });
    }
    Switch::Done
}

/// A replica that goes outside a rollout (a scale-down) and is routed: it leaves the routes
/// first (written this round, the time kept in `ServiceRecord::unrouted`), drains, and only
/// then may be removed (`None`).
pub(super) fn leave(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    routing: &mut Routing,
    c: &ObservedContainer,
) -> Option<ReplicaWait> {
    let h = input.svc.berth.handoff.as_ref()?;
    let canonical = crate::reconcile::container_spec::canonical_name(
        input.project,
        input.svc,
        c.identity.number,
    );
    let name = backend_name(&canonical, c);
    routing.next.remove(&name);
    if routing.now.contains_key(&name) {
        rec.unrouted.insert(name, input.now);
        return Some(ReplicaWait::Leaving);
    }
    let until = rec.unrouted.get(&name).map(|at| at + drain_secs(h))?;
    if input.now < until && c.state == RunState::Running {
        return Some(ReplicaWait::Draining {
            seconds: until - input.now,
        });
    }
    rec.unrouted.remove(&name);
    None
}

/// Forgets the scale-down drains of replicas that are gone.
pub(super) fn forget_gone(input: &Input<'_>, rec: &mut ServiceRecord) {
    if rec.unrouted.is_empty() {
        return;
    }
    let names: Vec<String> = super::containers::replicas(input)
        .into_iter()
        .map(|c| {
            let canonical = crate::reconcile::container_spec::canonical_name(
                input.project,
                input.svc,
                c.identity.number,
            );
            backend_name(&canonical, c)
        })
        .collect();
    rec.unrouted.retain(|name, _| names.contains(name));
}

/// Steady state (no rollout): the running replicas of the established revision receive the
/// traffic; one that stopped or was recreated (a new address) is routed again as it is.
pub(super) fn steady(input: &Input<'_>, hash: &str, routing: &mut Routing) {
    routing.next = super::containers::replicas(input)
        .into_iter()
        .filter(|c| {
            c.identity.spec_hash == hash
                && c.identity.number <= input.svc.replicas
                && c.state == RunState::Running
        })
        .filter_map(|c| {
            let canonical = crate::reconcile::container_spec::canonical_name(
                input.project,
                input.svc,
                c.identity.number,
            );
            Some((backend_name(&canonical, c), address(c)?))
        })
        .collect();
}

/// The service's listeners as this round leaves them; a step when they differ from the
/// routes file. A service without handoff whose listeners are still in the file has them
/// removed (its ports released) first.
pub(super) fn finish(input: &Input<'_>, routing: Option<&Routing>, out: &mut Output) {
    let (project, service) = (&input.project.name, &input.svc.name);
    let want: Vec<Listener> = match (&input.svc.berth.handoff, routing) {
        (Some(h), Some(r)) => {
            let backends: Vec<(String, IpAddr)> =
                r.next.iter().map(|(n, ip)| (n.clone(), *ip)).collect();
            service_listeners(project, service, h, &backends)
        }
        // Handoff, but nothing decided its backends this round (held, paused): as it is.
        (Some(_), None) => return,
        (None, _) => Vec::new(),
    };
    let have: Vec<&Listener> = input.routes.clone();
    if want.len() == have.len() && want.iter().zip(&have).all(|(w, h)| w == *h) {
        return;
    }
    let cause = match routing {
        Some(r) => change_words(r, input.svc.berth.handoff.as_ref()),
        None => "the service no longer hands off its ports: the proxy releases them".into(),
    };
    let step = (
        Action::Route {
            project: project.clone(),
            service: service.clone(),
            listeners: want,
        },
        cause,
    );
    if input.svc.berth.handoff.is_none() {
        // The proxy must let go of the ports before a container binds them.
        out.steps.insert(0, step);
    } else {
        out.steps.push(step);
    }
}

fn change_words(r: &Routing, h: Option<&Handoff>) -> String {
    let added: Vec<&str> = r
        .next
        .iter()
        .filter(|(n, ip)| r.now.get(*n) != Some(ip))
        .map(|(n, _)| n.as_str())
        .collect();
    let removed: Vec<&str> = r
        .now
        .keys()
        .filter(|n| !r.next.contains_key(*n))
        .map(String::as_str)
        .collect();
    let mut words = Vec::new();
    if !added.is_empty() {
        words.push(format!("traffic to {} (passed its gate)", added.join(", ")));
    }
    if !removed.is_empty() {
        let drain = h.map_or(String::new(), |h| {
            format!(", which drains up to {}s", h.drain_timeout.as_secs_f64())
        });
        words.push(format!("none to {}{drain}", removed.join(", ")));
    }
    if words.is_empty() {
        "the proxy's listeners follow x-berth.handoff".into()
    } else {
        format!("handoff: {}", words.join("; "))
    }
}
