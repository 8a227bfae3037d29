//! The rollout's order (start-first or stop-first, and the words saying why: an explicit
//! `update_config.order`, a published host port, a `container_name`, a named volume mounted
//! read-write) and the policy a rollout kind runs under.
//!
//! `x-berth.handoff` makes a port-publishing service start-first (the proxy holds the port).
//!
//! Pure; asked by `begin` (for the event's words) and `advance` (for each replica's step).

use std::time::Duration;

use super::Input;
use crate::desired::model::{MountKind, Order, RolloutPolicy, Service};
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
    if let Some(h) = &svc.berth.handoff {
        let ports: Vec<String> = h.ports.iter().map(|p| p.published.to_string()).collect();
        return (
            Order::StartFirst,
            format!(
                "start-first (x-berth.handoff: berth's proxy holds host port {} and switches it to the new container once ready)",
                ports.join(", ")
            ),
        );
    }
    if let Some(p) = svc.ports.iter().find_map(|p| p.published) {
        return (
            Order::StopFirst,
            format!(
                "stop-first (publishes host port {p}, which cannot be bound twice; x-berth.handoff: http or tcp lets berth's proxy hold it and makes updates start-first)"
            ),
        );
    }
    if svc.container_name.is_some() {
        return (
            Order::StopFirst,
            "stop-first (container_name cannot exist twice)".into(),
        );
    }
    // Two containers writing one data directory (PostgreSQL, MySQL…) can corrupt it: the old
    // one stops before the new one starts, as in a takeover from compose and every update.
    if let Some(v) = svc
        .volumes
        .iter()
        .find(|m| m.kind == MountKind::Volume && m.source.is_some() && !m.read_only)
    {
        return (
            Order::StopFirst,
            format!(
                "stop-first (mounts named volume {} read-write, which two containers must not share; update_config.order: start-first overrides)",
                v.source.as_deref().unwrap_or_default()
            ),
        );
    }
    (Order::StartFirst, "start-first (new beside old)".into())
}

/// The order of this round's replacements: [`order`], except that the first rollout of a
/// service that just took up handoff is stop-first once — its old container still publishes
/// the port itself, so the proxy can bind it only once that container stopped.
pub(super) fn order_in(input: &Input<'_>) -> (Order, String) {
    let svc = input.svc;
    if let Some(h) = &svc.berth.handoff
        && svc.rollout.update.order.is_none()
        && let Some(port) = h.ports.iter().find_map(|p| {
            input
                .containers
                .iter()
                .filter_map(|c| c.actual.as_ref()?.ports.as_ref())
                .flatten()
                .any(|(_, _, host)| *host == p.published)
                .then_some(p.published)
        })
    {
        return (
            Order::StopFirst,
            format!(
                "stop-first this once (the old container still publishes host port {port} itself; from now on berth's proxy holds it and updates are start-first)"
            ),
        );
    }
    order(svc)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};

    fn order_of(yaml: &str) -> (Order, String) {
        let l = load_inline(yaml, &LoadOptions::default());
        let state = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
        let project = state.projects.into_values().next().unwrap();
        order(&project.services["db"])
    }

    #[test]
    fn a_named_volume_mounted_read_write_makes_the_service_stop_first() {
        let (o, why) = order_of(
            "services:\n  db: {image: postgres:16, volumes: ['pgdata:/var/lib/postgresql/data']}\n\
             volumes:\n  pgdata: {}\n",
        );
        assert_eq!(o, Order::StopFirst);
        assert_eq!(
            why,
            "stop-first (mounts named volume pgdata read-write, which two containers must not share; update_config.order: start-first overrides)"
        );
    }

    #[test]
    fn an_explicit_start_first_overrides_the_volume_rule() {
        let (o, why) = order_of(
            "services:\n  db:\n    image: postgres:16\n    volumes: ['pgdata:/data']\n    \
             deploy: {update_config: {order: start-first}}\nvolumes:\n  pgdata: {}\n",
        );
        assert_eq!(
            (o, why.as_str()),
            (Order::StartFirst, "start-first (update_config.order)")
        );
    }

    #[test]
    fn a_published_port_is_named_before_the_volume() {
        let (o, why) = order_of(
            "services:\n  db: {image: app:1, ports: ['8083:8080'], volumes: ['cache:/c']}\n\
             volumes:\n  cache: {}\n",
        );
        assert_eq!(o, Order::StopFirst);
        assert!(
            why.starts_with("stop-first (publishes host port 8083"),
            "{why}"
        );
    }

    #[test]
    fn read_only_named_volumes_anonymous_volumes_and_binds_stay_start_first() {
        let (o, _) = order_of(
            "services:\n  db:\n    image: app:1\n    \
             volumes: ['shared:/srv:ro', '/cache', './conf:/etc/app']\nvolumes:\n  shared: {}\n",
        );
        assert_eq!(o, Order::StartFirst);
    }
}
