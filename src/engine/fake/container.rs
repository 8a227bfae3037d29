//! What one fake container answers: its networks, published ports, details and summary.

use std::collections::BTreeMap;

use super::FakeContainer;
use super::state::rfc3339;
use crate::engine::{Attachments, ContainerDetails, ContainerSummary, Health, RunState};

impl FakeContainer {
    /// What `container_config` returns: the spec it was created from (images have no defaults
    /// here).
    pub(super) fn effective(&self) -> crate::engine::effective::EffectiveConfig {
        let mut container = self.spec.clone();
        container.name = self.name.clone();
        crate::engine::effective::EffectiveConfig {
            container,
            image: crate::engine::effective::ImageDefaults::default(),
        }
    }

    pub(super) fn networks(&self) -> Vec<String> {
        let mut networks: Vec<String> = match self.spec.network_mode.as_deref() {
            Some(mode) if mode.starts_with("container:") => Vec::new(),
            Some(mode) => vec![mode.to_owned()],
            None if self.spec.networks.is_empty() => vec!["bridge".to_owned()],
            None => self
                .spec
                .networks
                .iter()
                .map(|n| n.network.clone())
                .filter(|n| !self.detached.contains(n))
                .collect(),
        };
        networks.sort();
        networks
    }

    /// The host port a published port is bound to: its own, or an ephemeral `32768 + N`.
    pub(super) fn host_port(&self, p: &crate::engine::PortBinding) -> u16 {
        p.published
            .unwrap_or_else(|| 32768 + u16::try_from(self.seq() % 28000).unwrap_or(0))
    }

    /// What the list call reports it has: its published ports while it runs, its mounts.
    pub(super) fn attachments(&self) -> Attachments {
        Attachments {
            ports: (self.state == RunState::Running).then(|| {
                self.spec
                    .ports
                    .iter()
                    .filter(|_| !self.unbound)
                    .map(|p| (p.target, p.protocol.clone(), self.host_port(p)))
                    .collect()
            }),
            mounts: self
                .spec
                .mounts
                .iter()
                .map(|m| (m.kind.clone(), m.target.clone()))
                .collect(),
            addresses: self
                .addresses()
                .into_iter()
                .filter_map(|(n, ip)| Some((n, ip.parse().ok()?)))
                .collect(),
        }
    }

    /// Its sequence number (from its ID), which its fake IPs and ephemeral ports derive from.
    pub(super) fn seq(&self) -> u64 {
        self.id[1..].parse().unwrap_or(0)
    }

    /// What inspect shows. While it runs: `172.(20+k).0.N` on its k-th network (N from its ID;
    /// none in `host`, `none` or `container:` mode) and its published ports, an ephemeral one
    /// as `32768 + N`; a stopped container has neither, as with Docker.
    /// Network → its address while it runs (none in `host`, `none` or `container:` mode).
    fn addresses(&self) -> BTreeMap<String, String> {
        let seq = self.seq();
        let mut ip_addresses = BTreeMap::new();
        if self.state == RunState::Running && self.spec.network_mode.is_none() {
            for (k, network) in self.networks().into_iter().enumerate() {
                // A static `ipv4_address` is what the engine gives, as Docker does.
                let fixed = self
                    .spec
                    .networks
                    .iter()
                    .find(|n| n.network == network)
                    .and_then(|n| n.ipv4_address.clone());
                let ip = fixed
                    .unwrap_or_else(|| format!("172.{}.{}.{}", 20 + k, seq / 250, seq % 250 + 2));
                ip_addresses.insert(network, ip);
            }
        }
        ip_addresses
    }

    pub(super) fn details(&self) -> ContainerDetails {
        let running = self.state == RunState::Running;
        let ip_addresses = self.addresses();
        let mut ports: Vec<(u16, String, Option<String>, u16)> = if running {
            self.spec
                .ports
                .iter()
                .map(|p| {
                    (
                        p.target,
                        p.protocol.clone(),
                        p.host_ip.clone(),
                        self.host_port(p),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        ports.sort();
        let summary = self.summary();
        ContainerDetails {
            restart_count: self.restart_count,
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            health: summary.health,
            exit_code: summary.exit_code,
            started_at: self.started.map(rfc3339),
            network_mode: self
                .spec
                .network_mode
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            ip_addresses,
            ports,
            image_id: self.spec.image.clone(),
        }
    }

    pub(super) fn has_healthcheck(&self) -> bool {
        self.spec
            .healthcheck
            .as_ref()
            .is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE"))
    }

    pub(super) fn summary(&self) -> ContainerSummary {
        ContainerSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            image_id: self.spec.image.clone(),
            labels: self.spec.labels.clone(),
            state: self.state,
            health: if self.state == RunState::Running {
                self.health
            } else {
                Health::None
            },
            exit_code: (self.state == RunState::Exited)
                .then_some(self.exit_code)
                .flatten(),
            networks: self.networks(),
            created: self.created,
            actual: Some(self.attachments()),
        }
    }
}
