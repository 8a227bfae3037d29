//! The observed state: what berth-managed (and compose-made) objects exist on the engine.
//!
//! Pure data plus a pure constructor from the engine's list results; `observe.rs` makes the
//! calls. Containers are always listed (one call); networks, volumes and images only when the
//! planner needs them (`Inventory`), so that a no-op reconcile costs one engine call.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::probe::ProbeStatus;
use crate::engine::labels::{self, Identity};
use crate::engine::{
    Attachments, ContainerSummary, Health, ImageSummary, NetworkAttach, NetworkSummary, RunState,
    VolumeSummary,
};

/// One container berth manages or will take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Engine ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Who it belongs to.
    pub identity: Identity,
    /// State.
    pub state: RunState,
    /// Health.
    pub health: Health,
    /// Exit code when exited.
    pub exit_code: Option<i64>,
    /// Image ID.
    pub image_id: String,
    /// Attached networks.
    pub networks: Vec<String>,
    /// Its published ports and mounts as the engine reports them (`None`: not reported);
    /// compared with its spec by [`super::drift`].
    pub actual: Option<Attachments>,
}

/// Networks, volumes and images: listed only when something has to be created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Network names.
    pub networks: BTreeSet<String>,
    /// The networks berth created (`berth.managed`), name → project (`berth.project`).
    pub managed_networks: BTreeMap<String, String>,
    /// Volume names.
    pub volumes: BTreeSet<String>,
    /// The volumes berth created (`berth.managed`), name → project (`berth.project`).
    pub managed_volumes: BTreeMap<String, String>,
    /// Image reference (normalised, see [`normalize_reference`]) → image ID.
    pub images: BTreeMap<String, String>,
}

/// Everything berth sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedState {
    /// Managed and compose-made containers.
    pub containers: Vec<ObservedContainer>,
    /// `None` when not listed (nothing needed it).
    pub inventory: Option<Inventory>,
    /// berth's probe verdicts by container ID (from the prober, for running containers of
    /// services with probes).
    pub probes: BTreeMap<String, ProbeVerdicts>,
    /// Docker restart counts by container ID, inspected for containers under a readiness
    /// gate only (see `Plan::inspect`).
    pub restart_counts: BTreeMap<String, u32>,
    /// What the engine answered when the previous round's create or start of a service
    /// (`project/service`) failed: a rollout fails on it at once instead of at its deadline.
    pub step_errors: BTreeMap<String, String>,
    /// Builds that failed in the previous round, by image reference: the engine's error and
    /// the build's last log lines. The revision that needed the image is quarantined.
    pub build_failures: BTreeMap<String, BuildFailure>,
    /// Replicas that lack something their revision's spec asks for (a network, a published
    /// port, a mount), by container ID: never promoted; repaired or replaced first (see
    /// [`super::drift`]).
    pub drift: BTreeMap<String, Vec<Drift>>,
    /// The engine did not answer between the previous round that observed it and this one
    /// (it may have restarted, stopping every container).
    pub engine_lost: bool,
    /// Effective configurations of compose containers a takeover may adopt, by container ID
    /// (read only for those [`super::adopt::wanted`] names).
    pub configs: BTreeMap<String, crate::engine::effective::EffectiveConfig>,
    /// The fleet's wave rule per project, from the peers' status (see `fleet::wave`); empty
    /// outside a fleet with waves.
    pub waves: BTreeMap<String, crate::fleet::wave::Decision>,
    /// berth's proxy routes file (`DATA_DIR/proxy/routes.json`) as the round read it: who
    /// receives the traffic of services with port handoff (empty without a data dir).
    pub routes: crate::proxy::routes::Routes,
}

/// What the previous round learnt besides the engine lists: probe verdicts and step errors.
#[derive(Debug, Clone, Default)]
pub struct Feedback {
    /// berth's probe verdicts by container ID.
    pub probes: BTreeMap<String, ProbeVerdicts>,
    /// Failed create/start steps by `project/service`.
    pub step_errors: BTreeMap<String, String>,
    /// Failed builds by image reference (see [`ObservedState::build_failures`]).
    pub build_failures: BTreeMap<String, BuildFailure>,
}

/// A build that ran and failed: what the engine said, and the build's last output lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFailure {
    /// Why, without the "failed to build image REF" that the event says in its own words.
    pub summary: String,
    /// The build's last output lines, when there were any.
    pub log: Option<String>,
}

/// berth's probe verdicts for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeVerdicts {
    /// Readiness (`None`: not probed yet or no readiness probe).
    pub readiness: Option<ProbeStatus>,
    /// Liveness (`None`: not probed yet or no liveness probe).
    pub liveness: Option<ProbeStatus>,
    /// What the last readiness check saw when it failed (`HTTP 404 from …/health, want
    /// 200-399`): the reason a failed rollout gives.
    pub readiness_detail: Option<String>,
}

impl ObservedState {
    /// Builds the state from list results; containers that belong to neither berth nor compose
    /// are dropped here, so nothing downstream can touch them.
    pub fn from_lists(containers: Vec<ContainerSummary>) -> Self {
        let containers = containers
            .into_iter()
            .filter_map(|c| {
                let identity = labels::identity(&c.labels)?;
                Some(ObservedContainer {
                    id: c.id,
                    name: c.name,
                    identity,
                    state: c.state,
                    health: c.health,
                    exit_code: c.exit_code,
                    image_id: c.image_id,
                    networks: c.networks,
                    actual: c.actual,
                })
            })
            .collect();
        ObservedState {
            containers,
            ..ObservedState::default()
        }
    }

    /// Adds the inventory lists.
    pub fn with_inventory(
        mut self,
        networks: Vec<NetworkSummary>,
        volumes: Vec<VolumeSummary>,
        images: Vec<ImageSummary>,
    ) -> Self {
        let managed_networks = networks
            .iter()
            .filter(|n| n.labels.get(labels::MANAGED).is_some_and(|v| v == "true"))
            .filter_map(|n| Some((n.name.clone(), n.labels.get(labels::PROJECT)?.clone())))
            .collect();
        let managed_volumes = volumes
            .iter()
            .filter(|v| v.labels.get(labels::MANAGED).is_some_and(|v| v == "true"))
            .filter_map(|v| Some((v.name.clone(), v.labels.get(labels::PROJECT)?.clone())))
            .collect();
        let mut inv = Inventory {
            managed_networks,
            managed_volumes,
            networks: networks.into_iter().map(|n| n.name).collect(),
            volumes: volumes.into_iter().map(|v| v.name).collect(),
            images: BTreeMap::new(),
        };
        for img in images {
            for r in img.tags.iter().chain(img.digests.iter()) {
                inv.images.insert(normalize_reference(r), img.id.clone());
            }
        }
        self.inventory = Some(inv);
        self
    }

    /// Containers of one project and service.
    pub fn service<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
    ) -> impl Iterator<Item = &'a ObservedContainer> + 'a {
        self.containers
            .iter()
            .filter(move |c| c.identity.project == project && c.identity.service == service)
    }
}

/// `nginx:1.25`, `docker.io/library/nginx:1.25` and `library/nginx:1.25` name one image;
/// an untagged reference means `:latest`.
pub fn normalize_reference(r: &str) -> String {
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    let r = r.strip_prefix("library/").unwrap_or(r);
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        return format!("{name}@{d}");
    }
    // A ':' after the last '/' is a tag; one before it belongs to a registry port.
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// One thing a container lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// Not attached to this network (as the spec attaches it: engine-side name, aliases).
    MissingNetwork(NetworkAttach),
    /// This published port is not bound.
    MissingPort {
        /// Container port.
        target: u16,
        /// `tcp`, `udp` or `sctp`.
        protocol: String,
        /// Host port (`None`: an ephemeral one).
        published: Option<u16>,
    },
    /// This mount is not there.
    MissingMount {
        /// `bind` or `volume`.
        kind: String,
        /// Path in the container.
        target: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::MissingNetwork(n) => write!(f, "not on network {}", n.network),
            Drift::MissingPort {
                target,
                protocol,
                published: Some(p),
            } => write!(f, "port {p}:{target}/{protocol} not published"),
            Drift::MissingPort {
                target,
                protocol,
                published: None,
            } => write!(f, "port {target}/{protocol} not published"),
            Drift::MissingMount { kind, target } => write!(f, "{kind} mount {target} missing"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_docker() {
        assert_eq!(
            normalize_reference("docker.io/library/nginx:1.25"),
            "nginx:1.25"
        );
        assert_eq!(normalize_reference("nginx"), "nginx:latest");
        assert_eq!(
            normalize_reference("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_reference("localhost:5000/app:2"),
            "localhost:5000/app:2"
        );
        assert_eq!(normalize_reference("app@sha256:ab"), "app@sha256:ab");
    }
}
