//! Who receives traffic: joins what berth's look at its port-handoff proxy found (the routes
//! file and the proxy's `/state`, `proxy::look`) into the status, per service and published
//! port ([`PortTraffic`]).
//!
//! Pure: takes the status and the look, returns nothing but the status changed. Called by
//! berth's HTTP server for each `/api/v1/status` (so `berth status` and the dashboard show
//! it), after the round's status was built.

use crate::proxy::admin::State;
use crate::proxy::metrics::Seen;
use crate::proxy::routes::Routes;

use super::status::{Draining, PortTraffic, Status};

/// Sets each service's [`PortTraffic`] from `routes` (its listeners, and who berth routes to)
/// and `seen` (who the proxy routes to, what is active and what drains: the proxy's word
/// wins where it answered). A service without listeners gets none.
pub fn join(status: &mut Status, routes: &Routes, seen: &Seen) {
    let state = match seen {
        Seen::Answered(s) => Some(s),
        Seen::Absent | Seen::NotAnswering => None,
    };
    for s in &mut status.services {
        s.traffic = routes
            .of_service(&s.project, &s.service)
            .map(|l| port(&l.name, l.backends.iter().map(|b| b.name.clone()), state))
            .collect();
    }
}

fn port(
    listener: &str,
    routed: impl Iterator<Item = String>,
    state: Option<&State>,
) -> PortTraffic {
    let routed: Vec<String> = routed.collect();
    let Some(live) = state.and_then(|s| s.listeners.iter().find(|l| l.name == listener)) else {
        return PortTraffic {
            listener: listener.to_string(),
            routed,
            proxy_up: state.is_some(),
            active: 0,
            draining: Vec::new(),
        };
    };
    // The proxy's own view wins: berth's file may be a poll (200 ms) ahead of it.
    PortTraffic {
        listener: listener.to_string(),
        routed: live
            .backends
            .iter()
            .filter(|b| b.routed)
            .map(|b| b.name.clone())
            .collect(),
        proxy_up: true,
        active: live
            .backends
            .iter()
            .filter(|b| b.routed)
            .map(|b| b.active)
            .sum(),
        draining: live
            .backends
            .iter()
            .filter(|b| !b.routed && b.active > 0)
            .map(|b| Draining {
                replica: b.name.clone(),
                connections: b.active,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::HandoffMode;
    use crate::proxy::admin::ListenerState;
    use crate::proxy::routes::{Backend, Listener};
    use crate::proxy::table::BackendStats;
    use crate::telemetry::status::{DesiredRevision, Phase, ServiceStatus, SourceStatus};
    use crate::telemetry::time::Timestamp;

    fn service(name: &str) -> ServiceStatus {
        ServiceStatus {
            project: "shop".into(),
            service: name.into(),
            job: false,
            desired: DesiredRevision {
                hash: "abc".into(),
                image: "app:2".into(),
                revision: Some(2),
            },
            running: vec![],
            ready: 1,
            replicas: 1,
            phase: Phase::Idle,
            since: Timestamp(0),
            reason: String::new(),
            conditions: vec![],
            last_rollout: None,
            update: None,
            traffic: vec![],
            wave: None,
        }
    }

    fn status() -> Status {
        Status {
            generated_at: Timestamp(0),
            round: None,
            source: SourceStatus {
                kind: "dir".into(),
                location: "/srv".into(),
                revision: None,
                valid: true,
                errors: 0,
                warnings: 0,
                diagnostics: vec![],
            },
            engine_reachable: Some(true),
            conditions: vec![],
            services: vec![service("web"), service("db")],
            orphans: vec![],
            not_ours: vec![],
            host: None,
        }
    }

    fn routes() -> Routes {
        Routes {
            listeners: vec![Listener {
                name: "shop/web:8080".into(),
                bind: "0.0.0.0:8080".parse().unwrap(),
                mode: HandoffMode::Http,
                proxy_protocol: false,
                drain_timeout_ms: 10_000,
                backends: vec![Backend {
                    name: "shop-web-2".into(),
                    addr: "10.0.0.2:80".parse().unwrap(),
                }],
            }],
            ..Routes::default()
        }
    }

    fn stats(name: &str, routed: bool, active: u64) -> BackendStats {
        BackendStats {
            name: name.into(),
            addr: "10.0.0.9:80".parse().unwrap(),
            routed,
            active,
            requests: 5,
            errors: 0,
        }
    }

    fn answered(backends: Vec<BackendStats>) -> Seen {
        Seen::Answered(State {
            routes: "abc".into(),
            listeners: vec![ListenerState {
                name: "shop/web:8080".into(),
                bind: None,
                mode: HandoffMode::Http,
                backends,
                unserved: 0,
                error: None,
            }],
        })
    }

    #[test]
    fn the_proxy_names_the_routed_replica_and_counts_what_drains() {
        let mut s = status();
        let seen = answered(vec![
            stats("shop-web-2", true, 3),
            stats("shop-web-1", false, 2),
            stats("shop-web-0", false, 0),
        ]);
        join(&mut s, &routes(), &seen);
        assert_eq!(
            s.services[0].traffic,
            vec![PortTraffic {
                listener: "shop/web:8080".into(),
                routed: vec!["shop-web-2".into()],
                proxy_up: true,
                active: 3,
                draining: vec![Draining {
                    replica: "shop-web-1".into(),
                    connections: 2
                }],
            }]
        );
        assert!(s.services[1].traffic.is_empty(), "db hands off nothing");
    }

    #[test]
    fn a_proxy_that_does_not_answer_leaves_berths_routes_and_says_so() {
        let mut s = status();
        join(&mut s, &routes(), &Seen::NotAnswering);
        let t = &s.services[0].traffic[0];
        assert_eq!(t.routed, vec!["shop-web-2".to_string()]);
        assert!(!t.proxy_up);
        assert!(t.draining.is_empty());
    }

    #[test]
    fn a_service_that_stopped_handing_off_loses_its_traffic() {
        let mut s = status();
        join(&mut s, &routes(), &Seen::NotAnswering);
        join(&mut s, &Routes::default(), &Seen::Absent);
        assert!(s.services[0].traffic.is_empty());
    }

    #[test]
    fn the_table_says_who_receives_traffic_and_what_drains() {
        let mut s = status();
        join(
            &mut s,
            &routes(),
            &answered(vec![
                stats("shop-web-2", true, 3),
                stats("shop-web-1", false, 1),
            ]),
        );
        let t = s.table(0);
        assert!(
            t.contains("\nshop/web:8080: traffic to shop-web-2 (3 active); draining shop-web-1 (1 connection)\n"),
            "{t}"
        );
        join(&mut s, &routes(), &Seen::NotAnswering);
        let t = s.table(0);
        assert!(
            t.contains("\nshop/web:8080: traffic to shop-web-2; the proxy does not answer (connections unknown)\n"),
            "{t}"
        );
    }
}
