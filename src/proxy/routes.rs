//! The routes file (`DATA_DIR/proxy/routes.json`): what berth asks the proxy to serve.
//!
//! Pure: the model, its JSON form and its rules. berth writes the file (atomically, as its
//! records); `berth proxy` reads it (`watch`) and applies each valid version as a whole. The
//! file is also the write-ahead record of who receives traffic: a berth that starts again
//! reads it back.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::desired::model::HandoffMode;

/// Version of the file's format; a proxy refuses a file of another version.
pub const FORMAT: u32 = 1;

/// Everything the proxy serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// [`FORMAT`].
    pub format: u32,
    /// One per published port.
    pub listeners: Vec<Listener>,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            format: FORMAT,
            listeners: Vec::new(),
        }
    }
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// Stable name for metrics and status: `project/service:published`.
    pub name: String,
    /// Address the proxy binds (`0.0.0.0:80`).
    pub bind: SocketAddr,
    /// HTTP (per request) or TCP (per connection).
    pub mode: HandoffMode,
    /// TCP: send a PROXY protocol v2 header to the backend.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// How long a removed backend's connections may finish before they are closed.
    pub drain_timeout_ms: u64,
    /// The replicas that receive new requests/connections, balanced round-robin.
    pub backends: Vec<Backend>,
}

impl Listener {
    /// [`Listener::drain_timeout_ms`] as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// One replica behind a listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Backend {
    /// The container's name (`shop-web-1`).
    pub name: String,
    /// Its address and container port (`172.18.0.5:8080`).
    pub addr: SocketAddr,
}

/// A routes file the proxy refuses (it keeps serving its last routes).
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    /// Not JSON of the expected shape.
    #[error("failed to parse the routes file")]
    Parse(#[source] serde_json::Error),
    /// Written by a berth with another format.
    #[error("routes file format {found} is not {FORMAT}, the one this proxy reads")]
    Format {
        /// The file's format.
        found: u32,
    },
    /// Two listeners bind the same address.
    #[error("two listeners bind {0}")]
    DuplicateBind(SocketAddr),
    /// Two listeners share a name.
    #[error("two listeners are named {0:?}")]
    DuplicateName(String),
    /// One backend name twice in a listener.
    #[error("listener {listener:?} names backend {backend:?} twice")]
    DuplicateBackend {
        /// The listener.
        listener: String,
        /// The backend.
        backend: String,
    },
    /// PROXY protocol asked for on an HTTP listener.
    #[error("listener {0:?}: proxy_protocol applies to tcp listeners only")]
    ProxyProtocolOnHttp(String),
}

impl Routes {
    /// Parses and checks a routes file's text.
    pub fn parse(text: &str) -> Result<Self, RoutesError> {
        let r: Routes = serde_json::from_str(text).map_err(RoutesError::Parse)?;
        r.check()?;
        Ok(r)
    }

    /// The file's text (stable: pretty JSON, listeners as given).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The rules [`Routes::parse`] enforces.
    pub fn check(&self) -> Result<(), RoutesError> {
        if self.format != FORMAT {
            return Err(RoutesError::Format { found: self.format });
        }
        let mut binds = BTreeSet::new();
        let mut names = BTreeSet::new();
        for l in &self.listeners {
            // Port 0 (tests) binds an ephemeral port each time: never a clash.
            if l.bind.port() != 0 && !binds.insert(l.bind) {
                return Err(RoutesError::DuplicateBind(l.bind));
            }
            if !names.insert(&l.name) {
                return Err(RoutesError::DuplicateName(l.name.clone()));
            }
            if l.proxy_protocol && l.mode == HandoffMode::Http {
                return Err(RoutesError::ProxyProtocolOnHttp(l.name.clone()));
            }
            let mut seen = BTreeSet::new();
            for b in &l.backends {
                if !seen.insert(&b.name) {
                    return Err(RoutesError::DuplicateBackend {
                        listener: l.name.clone(),
                        backend: b.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The listener named `name`.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
}

/// The listeners of one service with handoff, as berth will write them: one per handed-off
/// port, named `project/service:published`, bound where `ports:` says (all IPv4 addresses
/// when it names none), forwarding to `replicas` (container name, address on its network)
/// on the port's container port. Pure: which replicas receive traffic is the rollout's
/// decision.
pub fn service_listeners(
    project: &str,
    service: &str,
    handoff: &crate::desired::model::Handoff,
    replicas: &[(String, std::net::IpAddr)],
) -> Vec<Listener> {
    handoff
        .ports
        .iter()
        .map(|p| {
            let ip = p
                .host_ip
                .as_deref()
                .and_then(|h| h.trim_matches(['[', ']']).parse().ok())
                .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            Listener {
                name: format!("{project}/{service}:{}", p.published),
                bind: SocketAddr::new(ip, p.published),
                mode: p.mode,
                proxy_protocol: p.proxy_protocol,
                drain_timeout_ms: u64::try_from(handoff.drain_timeout.as_millis())
                    .unwrap_or(u64::MAX),
                backends: replicas
                    .iter()
                    .map(|(name, addr)| Backend {
                        name: name.clone(),
                        addr: SocketAddr::new(*addr, p.target),
                    })
                    .collect(),
            }
        })
        .collect()
}

impl Routes {
    /// The listeners of `project/service` (the same match [`Routes::set_service`] uses).
    pub fn of_service<'a>(
        &'a self,
        project: &str,
        service: &str,
    ) -> impl Iterator<Item = &'a Listener> + 'a {
        let prefix = format!("{project}/{service}:");
        self.listeners
            .iter()
            .filter(move |l| l.name.starts_with(&prefix))
    }

    /// Replaces the listeners of `project/service` with `listeners` (none: the service no
    /// longer hands off), keeping every other service's.
    pub fn set_service(&mut self, project: &str, service: &str, listeners: Vec<Listener>) {
        let prefix = format!("{project}/{service}:");
        self.listeners.retain(|l| !l.name.starts_with(&prefix));
        self.listeners.extend(listeners);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str, bind: &str) -> Listener {
        Listener {
            name: name.into(),
            bind: bind.parse().unwrap(),
            mode: HandoffMode::Http,
            proxy_protocol: false,
            drain_timeout_ms: 10_000,
            backends: vec![Backend {
                name: "shop-web-1".into(),
                addr: "172.18.0.5:8080".parse().unwrap(),
            }],
        }
    }

    #[test]
    fn a_routes_file_round_trips_through_json() {
        let r = Routes {
            format: FORMAT,
            listeners: vec![listener("shop/web:80", "0.0.0.0:80")],
        };
        assert_eq!(Routes::parse(&r.to_json()).unwrap(), r);
        assert!(r.to_json().contains("\"mode\": \"http\""));
    }

    #[test]
    fn a_service_gets_one_listener_per_handed_off_port_with_its_replicas() {
        use crate::desired::model::{Handoff, HandoffPort};
        let h = Handoff {
            ports: vec![
                HandoffPort {
                    host_ip: None,
                    published: 80,
                    target: 8080,
                    mode: HandoffMode::Http,
                    proxy_protocol: false,
                },
                HandoffPort {
                    host_ip: Some("127.0.0.1".into()),
                    published: 5432,
                    target: 5432,
                    mode: HandoffMode::Tcp,
                    proxy_protocol: true,
                },
            ],
            drain_timeout: Duration::from_secs(20),
        };
        let replicas = [
            ("shop-web-1".to_string(), "172.18.0.5".parse().unwrap()),
            ("shop-web-2".to_string(), "172.18.0.6".parse().unwrap()),
        ];
        let l = service_listeners("shop", "web", &h, &replicas);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "shop/web:80");
        assert_eq!(l[0].bind, "0.0.0.0:80".parse().unwrap());
        assert_eq!(l[0].backends[1].addr, "172.18.0.6:8080".parse().unwrap());
        assert_eq!(l[0].drain_timeout_ms, 20_000);
        assert_eq!(l[1].bind, "127.0.0.1:5432".parse().unwrap());
        assert!(l[1].proxy_protocol);

        let mut r = Routes::default();
        r.set_service("shop", "web", l);
        r.set_service(
            "shop",
            "webhooks",
            vec![listener("shop/webhooks:81", "0.0.0.0:81")],
        );
        r.set_service(
            "shop",
            "web",
            service_listeners("shop", "web", &h, &replicas[1..]),
        );
        let names: Vec<_> = r.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["shop/webhooks:81", "shop/web:80", "shop/web:5432"]);
        assert_eq!(r.listeners[1].backends.len(), 1);
        r.check().unwrap();
    }

    #[test]
    fn two_listeners_on_one_address_are_refused() {
        let r = Routes {
            format: FORMAT,
            listeners: vec![
                listener("a/web:80", "0.0.0.0:80"),
                listener("b/web:80", "0.0.0.0:80"),
            ],
        };
        assert_eq!(
            r.check().unwrap_err().to_string(),
            "two listeners bind 0.0.0.0:80"
        );
    }

    #[test]
    fn another_format_and_bad_json_are_refused() {
        let e = Routes::parse(r#"{"format": 2, "listeners": []}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "routes file format 2 is not 1, the one this proxy reads"
        );
        assert!(Routes::parse("{").is_err());
    }

    #[test]
    fn proxy_protocol_on_http_and_duplicate_backends_are_refused() {
        let mut l = listener("a/web:80", "0.0.0.0:80");
        l.proxy_protocol = true;
        let r = Routes {
            format: FORMAT,
            listeners: vec![l.clone()],
        };
        assert!(matches!(
            r.check(),
            Err(RoutesError::ProxyProtocolOnHttp(_))
        ));
        l.proxy_protocol = false;
        l.backends.push(l.backends[0].clone());
        let r = Routes {
            format: FORMAT,
            listeners: vec![l],
        };
        assert!(matches!(
            r.check(),
            Err(RoutesError::DuplicateBackend { .. })
        ));
    }
}
