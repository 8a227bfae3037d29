//! Does a container have what its spec asks for? Compares what the engine's list says a
//! container has (networks, published ports, mounts) with the container template its revision
//! recorded, so that a container that lacks something is never promoted (issue 14, bug 1).
//!
//! Pure: a function of the observed state and the records, run by `observe` after the list
//! call; [`mend`] gives the steps `plan` takes for a container found wanting before its
//! rollout moves: connect its missing networks, or replace it. The typical
//! cause is a crash between the create call and a network connect (the engine joins a
//! container to its first network at create and to the others in separate calls): the container
//! starts, passes its probe on the network it has, and without this check would be promoted
//! while its other networks (and the ports published through them) are missing.
//!
//! What is compared, and why no more:
//! - networks: each network of the spec must be attached (extra ones are the operator's);
//! - published ports: each port of the spec must be bound, only while the container runs
//!   (Docker binds them at start) and only outside `network_mode`;
//! - mounts: each bind and volume mount of the spec must be there, by kind and path in the
//!   container (sources are left out: Docker reports resolved paths);
//! - DNS aliases are not in the list call's answer; they are set in the same engine call as
//!   their network (create or connect), so a container that has a network has its aliases.

use std::collections::BTreeMap;
use std::time::Duration;

use super::action::Action;
pub use super::observed::Drift;
use super::observed::{ObservedContainer, ObservedState};
use crate::desired::model::Service;
use crate::engine::labels::Role;
use crate::engine::{Attachments, ContainerCreate, NetworkAttach, RunState};
use crate::store::Records;

/// What `spec` asks for that a container with `networks` and `actual` lacks (empty: it
/// matches).
pub fn compare(spec: &ContainerCreate, networks: &[String], actual: &Attachments) -> Vec<Drift> {
    let mut out = Vec::new();
    if spec.network_mode.is_none() {
        for n in &spec.networks {
            if !networks.contains(&n.network) {
                out.push(Drift::MissingNetwork(n.clone()));
            }
        }
        if let Some(bound) = &actual.ports {
            for p in &spec.ports {
                let found = bound.iter().any(|(target, protocol, host)| {
                    *target == p.target
                        && *protocol == p.protocol
                        // A range (`8000-8010:80`) is bound on one host port of it.
                        && p.published.is_none_or(|want| {
                            (want..=p.published_end.unwrap_or(want)).contains(host)
                        })
                });
                if !found {
                    out.push(Drift::MissingPort {
                        target: p.target,
                        protocol: p.protocol.clone(),
                        published: p.published,
                    });
                }
            }
        }
    }
    for m in &spec.mounts {
        if !matches!(m.kind.as_str(), "bind" | "volume") {
            continue;
        }
        if !actual
            .mounts
            .iter()
            .any(|(kind, target)| *kind == m.kind && *target == m.target)
        {
            out.push(Drift::MissingMount {
                kind: m.kind.clone(),
                target: m.target.clone(),
            });
        }
    }
    out.dedup();
    out
}

/// Every replica berth created whose revision's recorded template it does not match, by
/// container ID. Containers without a recorded template (adopted, or from before templates
/// were recorded) and containers the engine said nothing about are left out: never guessed.
pub fn survey(observed: &ObservedState, records: &Records) -> BTreeMap<String, Vec<Drift>> {
    observed
        .containers
        .iter()
        .filter_map(|c| {
            let drift = check(c, records)?;
            (!drift.is_empty()).then(|| (c.id.clone(), drift))
        })
        .collect()
}

fn check(c: &ObservedContainer, records: &Records) -> Option<Vec<Drift>> {
    if !c.identity.managed || c.identity.role != Role::Replica || c.identity.spec_hash.is_empty() {
        return None;
    }
    let actual = c.actual.as_ref()?;
    let record = records.get(&(c.identity.project.clone(), c.identity.service.clone()))?;
    let template = record
        .revisions
        .iter()
        .find(|r| r.spec_hash == c.identity.spec_hash)?
        .template
        .as_ref()?;
    Some(compare(template, &c.networks, actual))
}

/// The networks to connect when they are all a container lacks (a running container can
/// join a network; a missing port or mount needs a new container): `None` otherwise.
pub fn repairs(drift: &[Drift]) -> Option<Vec<&NetworkAttach>> {
    drift
        .iter()
        .map(|d| match d {
            Drift::MissingNetwork(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// The steps that mend `c`, a replica of `svc` that lacks `drift`: connect the networks it
/// lacks, or (when it lacks a port or a mount) stop and remove it so that its rollout or
/// self-heal creates it again. Each step's cause names what was missing.
pub fn mend(c: &ObservedContainer, drift: &[Drift], svc: &Service) -> Vec<(Action, String)> {
    let cause = cause(drift);
    if let Some(networks) = repairs(drift) {
        return networks
            .into_iter()
            .map(|attach| {
                let action = Action::Connect {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    attach: attach.clone(),
                };
                (action, cause.clone())
            })
            .collect();
    }
    let mut steps = Vec::new();
    if matches!(c.state, RunState::Running | RunState::Paused) {
        let stop = Action::Stop {
            id: c.id.clone(),
            name: c.name.clone(),
            grace: svc.stop_grace_period.unwrap_or(Duration::from_secs(10)),
            signal: svc.stop_signal.clone(),
        };
        steps.push((stop, cause.clone()));
    }
    let remove = Action::Remove {
        id: c.id.clone(),
        name: c.name.clone(),
    };
    steps.push((remove, cause));
    steps
}

/// A step cause naming what `drift` lacks and what is done about it.
pub fn cause(drift: &[Drift]) -> String {
    let what: Vec<String> = drift.iter().map(ToString::to_string).collect();
    let fix = if repairs(drift).is_some() {
        "repair"
    } else {
        "replace"
    };
    format!(
        "{fix}: the container does not match its spec ({})",
        what.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{MountSpec, NetworkAttach, PortBinding};

    fn spec() -> ContainerCreate {
        let attach = |n: &str| NetworkAttach {
            network: n.into(),
            aliases: vec!["web".into()],
            ipv4_address: None,
            ipv6_address: None,
        };
        ContainerCreate {
            networks: vec![attach("shop_front"), attach("shop_back")],
            ports: vec![
                PortBinding {
                    target: 80,
                    protocol: "tcp".into(),
                    host_ip: Some("127.0.0.1".into()),
                    published: Some(8080),
                    published_end: None,
                },
                PortBinding {
                    target: 9000,
                    protocol: "tcp".into(),
                    host_ip: None,
                    published: None,
                    published_end: None,
                },
            ],
            mounts: vec![
                MountSpec {
                    kind: "volume".into(),
                    source: Some("shop_data".into()),
                    target: "/data".into(),
                    read_only: false,
                    options: Vec::new(),
                },
                MountSpec {
                    kind: "tmpfs".into(),
                    source: None,
                    target: "/tmp".into(),
                    read_only: false,
                    options: Vec::new(),
                },
            ],
            ..ContainerCreate::default()
        }
    }

    fn nets(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn full() -> Attachments {
        Attachments {
            ports: Some(vec![(80, "tcp".into(), 8080), (9000, "tcp".into(), 32771)]),
            mounts: vec![("volume".into(), "/data".into())],
            addresses: Default::default(),
        }
    }

    #[test]
    fn a_container_with_everything_matches() {
        assert_eq!(
            compare(&spec(), &nets(&["shop_back", "shop_front"]), &full()),
            []
        );
    }

    #[test]
    fn a_create_cut_short_lacks_its_second_network() {
        let d = compare(&spec(), &nets(&["shop_front"]), &full());
        assert_eq!(d, [Drift::MissingNetwork(spec().networks[1].clone())]);
        assert_eq!(
            cause(&d),
            "repair: the container does not match its spec (not on network shop_back)"
        );
        let fix = repairs(&d).expect("a missing network is repaired");
        assert_eq!(fix[0].aliases, ["web"]);
    }

    #[test]
    fn ports_count_only_while_running_and_must_be_the_asked_host_port() {
        let mut stopped = full();
        stopped.ports = None;
        assert_eq!(
            compare(&spec(), &nets(&["shop_back", "shop_front"]), &stopped),
            []
        );
        let mut other = full();
        other.ports = Some(vec![(80, "tcp".into(), 8081), (9000, "tcp".into(), 1)]);
        assert_eq!(
            compare(&spec(), &nets(&["shop_back", "shop_front"]), &other),
            [Drift::MissingPort {
                target: 80,
                protocol: "tcp".into(),
                published: Some(8080)
            }]
        );
    }

    #[test]
    fn a_missing_volume_is_drift_and_tmpfs_is_not_compared() {
        let mut bare = full();
        bare.mounts.clear();
        let d = compare(&spec(), &nets(&["shop_front"]), &bare);
        assert_eq!(
            d,
            [
                Drift::MissingNetwork(spec().networks[1].clone()),
                Drift::MissingMount {
                    kind: "volume".into(),
                    target: "/data".into()
                }
            ]
        );
        assert_eq!(repairs(&d), None, "a missing mount needs a new container");
        assert!(cause(&d).starts_with("replace: "));
    }

    #[test]
    fn network_mode_skips_networks_and_ports() {
        let mut s = spec();
        s.network_mode = Some("host".into());
        let mut a = full();
        a.ports = Some(Vec::new());
        assert_eq!(compare(&s, &nets(&["host"]), &a), []);
    }
}
