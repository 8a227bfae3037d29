//! An in-memory [`Engine`] for planner, executor and controller unit tests.
//!
//! It behaves like Docker where berth's decisions depend on it: a taken name is a `Conflict`,
//! removing a running container is a `Conflict`, starting a running one or stopping a stopped
//! one is `NotModified`, an unknown name or ID is `NotFound` (names and IDs are accepted
//! everywhere, as Docker does), and a container can only be created from an existing image ID
//! on existing networks (else `Failed`: what a create lacks is not its target missing; Docker
//! itself finds a missing network only at start). Containers move created → running → exited.
//!
//! Inspect gives running containers made-up addresses (`172.(20+k).0.N` on their k-th network)
//! and their published ports; exec answers what [`FakeEngine::set_exec`] set (else exit 0) and
//! needs a running container; tags move as Docker's do, and removing an image's last tag deletes
//! it unless a container uses it (`Conflict`).
//!
//! Tests play the outside world through [`FakeEngine::kill`], [`FakeEngine::remove_by_hand`],
//! [`FakeEngine::detach_network`], [`FakeEngine::unbind_ports`] and [`FakeEngine::set_health`], make the next call of an op fail with [`FakeEngine::fail_next`],
//! and read back every call in order from [`FakeEngine::calls`] (`"create_container shop-web-1"`).
//!
//! What a container does once started is the test's to say, before or after: by default it
//! runs, and reports [`Health::Starting`] when it has a healthcheck ([`FakeEngine::set_start_health`]
//! changes that); [`FakeEngine::on_start`] makes containers of an image, a name or a label exit,
//! turn unhealthy or count restarts as soon as they start. [`FakeEngine::set_build_result`]
//! decides what building a tag gives (an image ID, or a failure with Docker's message), and
//! [`FakeEngine::insert_container`] puts a container someone else made (compose, a person) in
//! place.
//!
//! What it does not do: restart policies, pausing, healthchecks running by themselves (health
//! changes only through `set_health` and the start rules), ports clashing. A clean stop exits 0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::util::time::Civil;

use super::{
    Attachments, BuildSpec, ContainerCreate, ContainerDetails, ContainerSummary, EXEC_OUTPUT_LIMIT,
    Engine, EngineError, EngineEvent, EngineInfo, EngineOp, EngineResult, ExecOutcome, Health,
    ImageSummary, NetworkCreate, NetworkSummary, RunState, VolumeCreate, VolumeSummary,
};

/// The error [`FakeEngine::fail_next`] makes a call fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 404.
    NotFound,
    /// 409 with this message.
    Conflict(String),
    /// 304.
    NotModified,
    /// The engine went away.
    Unreachable,
    /// The call ran out of time.
    Timeout,
    /// Any other refusal, with this message.
    Failed(String),
    /// A build that ran and failed: the message and the build's last output lines.
    BuildFailed(String, Option<String>),
}

impl Fault {
    /// The error, with `op` named as [`DockerEngine`](super::docker::DockerEngine) names it.
    fn error(&self, method: &str, target: &str) -> EngineError {
        let op = match method {
            "info" => EngineOp::Version,
            "list_containers" => EngineOp::ListContainers,
            "list_networks" => EngineOp::ListNetworks,
            "list_volumes" => EngineOp::ListVolumes,
            "list_images" => EngineOp::ListImages,
            "pull_image" => EngineOp::PullImage,
            "build_image" => EngineOp::BuildImage,
            "create_network" => EngineOp::CreateNetwork,
            "create_volume" => EngineOp::CreateVolume,
            "create_container" => EngineOp::CreateContainer,
            "start_container" => EngineOp::StartContainer,
            "stop_container" => EngineOp::StopContainer,
            "remove_container" => EngineOp::RemoveContainer,
            "remove_network" => EngineOp::RemoveNetwork,
            "rename_container" => EngineOp::RenameContainer,
            "logs_tail" => EngineOp::ReadLogs,
            "inspect_container" => EngineOp::InspectContainer,
            "exec" => EngineOp::ExecInContainer,
            "tag_image" => EngineOp::TagImage,
            "remove_image_tag" => EngineOp::RemoveImageTag,
            _ => EngineOp::WatchEvents,
        };
        let target = target.to_owned();
        match self {
            Fault::NotFound => EngineError::NotFound { op, target },
            Fault::Conflict(message) => EngineError::Conflict {
                op,
                target,
                message: message.clone(),
            },
            Fault::NotModified => EngineError::NotModified { op, target },
            Fault::Unreachable => EngineError::Unreachable {
                op,
                endpoint: FakeEngine::ENDPOINT.into(),
                source: "injected fault: engine unreachable".into(),
            },
            Fault::Timeout => EngineError::Timeout {
                op,
                target,
                after: Duration::from_secs(30),
            },
            Fault::Failed(message) => EngineError::Failed {
                op,
                target,
                message: message.clone(),
            },
            Fault::BuildFailed(message, log) => EngineError::BuildFailed {
                target,
                message: message.clone(),
                log: log.clone(),
            },
        }
    }
}

/// What a container does by itself as soon as it starts ([`FakeEngine::on_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStart {
    /// Keeps running; its health is what [`FakeEngine::set_start_health`] says when it has a
    /// healthcheck, else none.
    Runs,
    /// Exits at once with this code (a crash, or a one-shot container that finished).
    Exits(i64),
    /// Keeps running, and Docker reports this health for it, healthcheck or not.
    Reports(Health),
    /// Keeps running, after Docker's restart policy restarted it this many times.
    Restarted(u32),
}

/// Which started containers an [`OnStart`] rule is for. When several rules match, a label
/// rule wins over a name rule, which wins over an image rule; among rules of one kind, the
/// first set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// Containers carrying this label (`key=value`, or a bare `key`).
    Label(String),
    /// The container of this (current) name.
    Name(String),
    /// Containers of this image ID.
    Image(String),
}

/// One container as the fake keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeContainer {
    /// ID.
    pub id: String,
    /// Current name (renames change it; `spec.name` keeps the one it was created with).
    pub name: String,
    /// What it was created from.
    pub spec: ContainerCreate,
    /// State.
    pub state: RunState,
    /// Health.
    pub health: Health,
    /// Exit code of the last run.
    pub exit_code: Option<i64>,
    /// Created, seconds since the epoch (the fake's clock).
    pub created: i64,
    /// What `logs_tail` returns (set with [`FakeEngine::set_logs`]).
    pub logs: String,
    /// What `exec` returns (set with [`FakeEngine::set_exec`]); `None`: exit 0, no output.
    pub exec: Option<ExecOutcome>,
    /// When it was last started (the fake's clock), if ever.
    pub started: Option<i64>,
    /// Restarts by the (simulated) restart policy; set with [`FakeEngine::set_restart_count`].
    pub restart_count: u32,
    /// Networks of its spec it is not on (set with [`FakeEngine::detach_network`]: a create
    /// cut short between the create call and a network connect).
    pub detached: Vec<String>,
    /// Its published ports are not bound although it runs (set with
    /// [`FakeEngine::unbind_ports`]).
    pub unbound: bool,
}

impl FakeContainer {
    fn networks(&self) -> Vec<String> {
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
    fn host_port(&self, p: &super::PortBinding) -> u16 {
        p.published
            .unwrap_or_else(|| 32768 + u16::try_from(self.seq() % 28000).unwrap_or(0))
    }

    /// What the list call reports it has: its published ports while it runs, its mounts.
    fn attachments(&self) -> Attachments {
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
        }
    }

    /// Its sequence number (from its ID), which its fake IPs and ephemeral ports derive from.
    fn seq(&self) -> u64 {
        self.id[1..].parse().unwrap_or(0)
    }

    /// What inspect shows. While it runs: `172.(20+k).0.N` on its k-th network (N from its ID;
    /// none in `host`, `none` or `container:` mode) and its published ports, an ephemeral one
    /// as `32768 + N`; a stopped container has neither, as with Docker.
    fn details(&self) -> ContainerDetails {
        let running = self.state == RunState::Running;
        let seq = self.seq();
        let mut ip_addresses = BTreeMap::new();
        if running && self.spec.network_mode.is_none() {
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

    fn has_healthcheck(&self) -> bool {
        self.spec
            .healthcheck
            .as_ref()
            .is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE"))
    }

    fn summary(&self) -> ContainerSummary {
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

#[derive(Clone)]
struct Subscriber {
    label: String,
    tx: mpsc::Sender<EngineResult<EngineEvent>>,
}

#[derive(Default, Clone)]
struct State {
    now: i64,
    next_id: u64,
    containers: Vec<FakeContainer>,
    networks: Vec<(NetworkSummary, NetworkCreate)>,
    volumes: Vec<VolumeSummary>,
    images: Vec<ImageSummary>,
    /// What a pull can fetch: reference → image ID.
    registry: BTreeMap<String, String>,
    calls: Vec<String>,
    faults: Vec<(String, Fault)>,
    events: Vec<EngineEvent>,
    subscribers: Vec<Subscriber>,
    /// How long a build takes.
    build_time: std::time::Duration,
    /// Builds under way now, and the most there ever were at once.
    builds_running: usize,
    builds_peak: usize,
    /// What started containers do, by rule.
    on_start: Vec<(Started, OnStart)>,
    /// The health a container with a healthcheck reports when it starts.
    start_health: Option<Health>,
    /// What building a tag gives, when a test said so: an image ID, or a failure's message.
    build_results: BTreeMap<String, Result<String, String>>,
}

impl State {
    /// What the container at `i` does now that it started: the most specific matching rule.
    fn start_rule(&self, i: usize) -> OnStart {
        let c = &self.containers[i];
        let rank = |which: &Started| match which {
            Started::Label(l) => label_matches(&c.spec.labels, l).then_some(0),
            Started::Name(n) => (*n == c.name).then_some(1),
            Started::Image(id) => (*id == c.spec.image).then_some(2),
        };
        self.on_start
            .iter()
            .filter_map(|(which, what)| rank(which).map(|r| (r, *what)))
            .min_by_key(|(r, _)| *r)
            .map_or(OnStart::Runs, |(_, what)| what)
    }

    fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    fn new_id(&mut self, kind: char) -> String {
        self.next_id += 1;
        format!("{kind}{:063}", self.next_id)
    }

    /// Logs the call and returns the injected fault for it, if any.
    fn enter(&mut self, op: &str, target: Option<&str>) -> EngineResult<()> {
        let line = match target {
            Some(t) => format!("{op} {t}"),
            None => op.to_owned(),
        };
        let fault = self
            .faults
            .iter()
            .position(|(prefix, _)| line.starts_with(prefix.as_str()))
            .map(|i| self.faults.remove(i).1);
        self.calls.push(line);
        match fault {
            Some(f) => Err(f.error(op, target.unwrap_or_default())),
            None => Ok(()),
        }
    }

    /// Index of the container `key` names: its ID, its name, or a unique ID prefix.
    fn find(&self, key: &str) -> Option<usize> {
        let key = key.trim_start_matches('/');
        if let Some(i) = self
            .containers
            .iter()
            .position(|c| c.id == key || c.name == key)
        {
            return Some(i);
        }
        let mut prefixed = self
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !key.is_empty() && c.id.starts_with(key));
        match (prefixed.next(), prefixed.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The name to log for a container argument: its current name when known.
    fn display(&self, key: &str) -> String {
        self.find(key)
            .map_or_else(|| key.to_owned(), |i| self.containers[i].name.clone())
    }

    fn container(&self, op: EngineOp, key: &str) -> EngineResult<usize> {
        self.find(key).ok_or_else(|| EngineError::NotFound {
            op,
            target: key.into(),
        })
    }

    fn network_exists(&self, key: &str) -> bool {
        self.networks
            .iter()
            .any(|(n, _)| n.name == key || n.id == key)
            || matches!(key, "bridge" | "host" | "none")
    }

    fn emit(&mut self, action: &str, i: usize) {
        self.emit_with(action, i, None);
    }

    /// Records a container event (attributes: its labels, `name`, `image`, plus `extra`) and
    /// sends it to the subscribers whose label it carries.
    fn emit_with(&mut self, action: &str, i: usize, extra: Option<(&str, String)>) {
        let time = self.tick();
        let c = &self.containers[i];
        let mut attributes = c.spec.labels.clone();
        attributes.insert("name".into(), c.name.clone());
        attributes.insert("image".into(), c.spec.image.clone());
        if let Some((k, v)) = extra {
            attributes.insert(k.into(), v);
        }
        let event = EngineEvent {
            kind: "container".into(),
            action: action.into(),
            id: c.id.clone(),
            attributes,
            time,
        };
        self.subscribers.retain(|s| {
            if !label_matches(&event.attributes, &s.label) {
                return !s.tx.is_closed();
            }
            // A full channel loses the event, as a slow reader of Docker's stream would.
            !matches!(
                s.tx.try_send(Ok(event.clone())),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
        self.events.push(event);
    }
}

/// The fake's clock (unix seconds) as RFC 3339 UTC (`2023-11-14T22:13:20Z`).
fn rfc3339(secs: i64) -> String {
    let c = Civil::from_unix(u64::try_from(secs).unwrap_or(0));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `key=value` matches that label; a bare `key` matches any value.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// The in-memory engine. Clones share one state.
#[derive(Clone)]
pub struct FakeEngine {
    state: Arc<Mutex<State>>,
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeEngine {
    /// What `info` reports as the endpoint.
    pub const ENDPOINT: &str = "fake://engine";

    /// An empty engine whose clock starts at 1 700 000 000 and ticks once per change.
    pub fn new() -> Self {
        FakeEngine {
            state: Arc::new(Mutex::new(State {
                now: 1_700_000_000,
                ..State::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `reference` a local image with ID `id` (added to its tags if the ID exists), and
    /// pullable too.
    pub fn add_image(&self, reference: &str, id: &str) {
        let mut s = self.lock();
        s.registry.insert(reference.to_owned(), id.to_owned());
        add_local_image(&mut s, reference, id);
    }

    /// Makes `reference` pullable as image `id` without making it local.
    pub fn add_remote_image(&self, reference: &str, id: &str) {
        self.lock()
            .registry
            .insert(reference.to_owned(), id.to_owned());
    }

    /// Makes every build take `time` (to see how many run at once).
    pub fn set_build_time(&self, time: std::time::Duration) {
        self.lock().build_time = time;
    }

    /// From now on, containers `which` selects do `what` as soon as they start (replacing an
    /// earlier rule for the same `which`).
    pub fn on_start(&self, which: Started, what: OnStart) {
        let mut s = self.lock();
        match s.on_start.iter_mut().find(|(w, _)| *w == which) {
            Some(rule) => rule.1 = what,
            None => s.on_start.push((which, what)),
        }
    }

    /// An independent copy of the engine as it is now (containers, images, rules, clock, the
    /// calls so far), without its event subscribers: a world to try something on and drop.
    pub fn snapshot(&self) -> FakeEngine {
        let mut copy = self.lock().clone();
        copy.subscribers.clear();
        FakeEngine {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// Forgets every [`FakeEngine::on_start`] rule: started containers run.
    pub fn clear_start_rules(&self) {
        self.lock().on_start.clear();
    }

    /// The health a container with a healthcheck reports once started (default:
    /// [`Health::Starting`], until a test calls [`FakeEngine::set_health`]).
    pub fn set_start_health(&self, health: Health) {
        self.lock().start_health = Some(health);
    }

    /// What building `tag` gives from now on: `Ok(image ID)`, or `Err(message)`, a failed
    /// build whose `Failed` error carries that message. Without one, a build makes a new ID.
    pub fn set_build_result(&self, tag: &str, result: Result<String, String>) {
        self.lock().build_results.insert(tag.to_owned(), result);
    }

    /// What building `tag` gives, if a test said ([`FakeEngine::set_build_result`]).
    pub fn build_result(&self, tag: &str) -> Option<Result<String, String>> {
        self.lock().build_results.get(tag).cloned()
    }

    /// The outside world: a container someone else created (compose, a person), as the list
    /// call shows it. Its ID and name are the summary's; its networks need not exist here, and
    /// its image is added (untagged) when missing, as Docker keeps an image a container uses.
    pub fn insert_container(&self, c: ContainerSummary) {
        let mut s = self.lock();
        if !s.images.iter().any(|i| i.id == c.image_id) {
            s.images.push(ImageSummary {
                id: c.image_id.clone(),
                tags: Vec::new(),
                digests: Vec::new(),
            });
        }
        let networks = c
            .networks
            .iter()
            .map(|n| super::NetworkAttach {
                network: n.clone(),
                aliases: Vec::new(),
                ipv4_address: None,
                ipv6_address: None,
            })
            .collect();
        let running = c.state == RunState::Running;
        s.containers.push(FakeContainer {
            id: c.id,
            name: c.name.clone(),
            spec: ContainerCreate {
                name: c.name,
                image: c.image_id,
                labels: c.labels,
                networks,
                ..ContainerCreate::default()
            },
            state: c.state,
            health: c.health,
            exit_code: c.exit_code,
            created: c.created,
            logs: String::new(),
            exec: None,
            started: running.then_some(c.created),
            restart_count: 0,
            detached: Vec::new(),
            unbound: false,
        });
    }

    /// The most builds that ever ran at once.
    pub fn builds_peak(&self) -> usize {
        self.lock().builds_peak
    }

    /// Makes the next call whose log line starts with `op_prefix` (`"start_container"`,
    /// `"create_container shop-web-1"`) fail with `fault`. Faults are used once, in order.
    pub fn fail_next(&self, op_prefix: &str, fault: Fault) {
        self.lock().faults.push((op_prefix.to_owned(), fault));
    }

    /// Every call so far, in order: `"list_containers"`, `"create_container shop-web-1"`,
    /// `"start_container shop-web-1"` (containers by their current name).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Every event so far.
    pub fn events_so_far(&self) -> Vec<EngineEvent> {
        self.lock().events.clone()
    }

    /// The container `key` (name or ID) as the fake keeps it.
    pub fn container(&self, key: &str) -> Option<FakeContainer> {
        let s = self.lock();
        s.find(key).map(|i| s.containers[i].clone())
    }

    /// All containers, oldest first.
    pub fn containers(&self) -> Vec<FakeContainer> {
        self.lock().containers.clone()
    }

    /// What a network was created with.
    pub fn network(&self, name: &str) -> Option<NetworkCreate> {
        self.lock()
            .networks
            .iter()
            .find(|(n, _)| n.name == name)
            .map(|(_, spec)| spec.clone())
    }

    /// The outside world: the container's process exits with `exit_code`.
    pub fn kill(&self, key: &str, exit_code: i64) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        if s.containers[i].state == RunState::Running {
            let c = &mut s.containers[i];
            c.state = RunState::Exited;
            c.exit_code = Some(exit_code);
            c.health = Health::None;
            s.emit("die", i);
        }
    }

    /// The outside world: someone ran `docker rm -f` on the container.
    pub fn remove_by_hand(&self, key: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        if s.containers[i].state == RunState::Running {
            s.containers[i].state = RunState::Exited;
            s.containers[i].exit_code = Some(137);
            s.emit("die", i);
        }
        s.emit("destroy", i);
        s.containers.remove(i);
    }

    /// The outside world: the container is not on `network` although its spec asks for it, as
    /// when berth was killed between creating it and connecting its other networks.
    pub fn detach_network(&self, key: &str, network: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].detached.push(network.to_owned());
    }

    /// The outside world: the container runs without its published ports bound.
    pub fn unbind_ports(&self, key: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].unbound = true;
    }

    /// The outside world: Docker's restart policy restarted the container `count` times.
    pub fn set_restart_count(&self, key: &str, count: u32) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].restart_count = count;
    }

    /// The outside world: the container's healthcheck reports `health`.
    pub fn set_health(&self, key: &str, health: Health) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        if s.containers[i].health != health {
            s.containers[i].health = health;
            let action = match health {
                Health::Healthy => Some("health_status: healthy"),
                Health::Unhealthy => Some("health_status: unhealthy"),
                Health::Starting | Health::None => None,
            };
            if let Some(action) = action {
                s.emit(action, i);
            }
        }
    }

    /// Sets what `exec` returns for the container, whatever the command (a timeout is
    /// `fail_next("exec", Fault::Timeout)`). The output is kept to its last
    /// [`EXEC_OUTPUT_LIMIT`] bytes, as the real engine's is.
    pub fn set_exec(&self, key: &str, exit_code: i64, output: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].exec = Some(ExecOutcome {
            exit_code,
            output: super::output_tail(output.as_bytes(), EXEC_OUTPUT_LIMIT),
        });
    }

    /// Sets what `logs_tail` returns for the container.
    pub fn set_logs(&self, key: &str, logs: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].logs = logs.to_owned();
    }
}

fn add_local_image(s: &mut State, reference: &str, id: &str) {
    let is_digest = reference.contains('@');
    if let Some(image) = s.images.iter_mut().find(|i| i.id == id) {
        let refs = if is_digest {
            &mut image.digests
        } else {
            &mut image.tags
        };
        if !refs.iter().any(|r| r == reference) {
            refs.push(reference.to_owned());
        }
    } else {
        s.images.push(ImageSummary {
            id: id.to_owned(),
            tags: (!is_digest)
                .then(|| reference.to_owned())
                .into_iter()
                .collect(),
            digests: is_digest
                .then(|| reference.to_owned())
                .into_iter()
                .collect(),
        });
    }
    // A tag names one image: moving it takes it off the previous one.
    for image in s.images.iter_mut().filter(|i| i.id != id) {
        image.tags.retain(|t| t != reference);
    }
}

impl Engine for FakeEngine {
    async fn info(&self) -> EngineResult<EngineInfo> {
        self.lock().enter("info", None)?;
        Ok(EngineInfo {
            version: "fake".into(),
            api_version: "1.41".into(),
            endpoint: Self::ENDPOINT.into(),
        })
    }

    async fn list_containers(
        &self,
        label_filters: &[String],
    ) -> EngineResult<Vec<ContainerSummary>> {
        let mut s = self.lock();
        s.enter("list_containers", None)?;
        Ok(s.containers
            .iter()
            .filter(|c| {
                label_filters.is_empty()
                    || label_filters
                        .iter()
                        .any(|f| label_matches(&c.spec.labels, f))
            })
            .map(FakeContainer::summary)
            .collect())
    }

    async fn list_networks(&self) -> EngineResult<Vec<NetworkSummary>> {
        let mut s = self.lock();
        s.enter("list_networks", None)?;
        Ok(s.networks.iter().map(|(n, _)| n.clone()).collect())
    }

    async fn list_volumes(&self) -> EngineResult<Vec<VolumeSummary>> {
        let mut s = self.lock();
        s.enter("list_volumes", None)?;
        Ok(s.volumes.clone())
    }

    async fn list_images(&self) -> EngineResult<Vec<ImageSummary>> {
        let mut s = self.lock();
        s.enter("list_images", None)?;
        Ok(s.images.clone())
    }

    async fn pull_image(&self, reference: &str, _platform: Option<&str>) -> EngineResult<String> {
        let mut s = self.lock();
        s.enter("pull_image", Some(reference))?;
        let id = s
            .registry
            .get(reference)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                op: EngineOp::PullImage,
                target: reference.into(),
            })?;
        add_local_image(&mut s, reference, &id);
        Ok(id)
    }

    async fn build_image(&self, spec: &BuildSpec) -> EngineResult<String> {
        let time = {
            let mut s = self.lock();
            s.enter("build_image", Some(&spec.tag))?;
            s.builds_running += 1;
            s.builds_peak = s.builds_peak.max(s.builds_running);
            s.build_time
        };
        if !time.is_zero() {
            tokio::time::sleep(time).await;
        }
        let mut s = self.lock();
        s.builds_running -= 1;
        let id = match s.build_results.get(&spec.tag).cloned() {
            // The first line is the builder's error, the rest its last output lines.
            Some(Err(message)) => {
                let (message, log) = match message.split_once('\n') {
                    Some((m, l)) => (m.to_owned(), Some(l.to_owned())),
                    None => (message, None),
                };
                return Err(EngineError::BuildFailed {
                    target: spec.tag.clone(),
                    message,
                    log,
                });
            }
            Some(Ok(id)) => id,
            None => s.new_id('i'),
        };
        add_local_image(&mut s, &spec.tag, &id);
        Ok(id)
    }

    async fn create_network(&self, spec: &NetworkCreate) -> EngineResult<String> {
        let mut s = self.lock();
        s.enter("create_network", Some(&spec.name))?;
        if s.network_exists(&spec.name) {
            return Err(EngineError::Conflict {
                op: EngineOp::CreateNetwork,
                target: spec.name.clone(),
                message: format!("network with name {} already exists", spec.name),
            });
        }
        let id = s.new_id('n');
        s.networks.push((
            NetworkSummary {
                id: id.clone(),
                name: spec.name.clone(),
                labels: spec.labels.clone(),
            },
            spec.clone(),
        ));
        Ok(id)
    }

    async fn create_volume(&self, spec: &VolumeCreate) -> EngineResult<()> {
        let mut s = self.lock();
        s.enter("create_volume", Some(&spec.name))?;
        // Docker answers a create of an existing volume with that volume, not an error.
        if !s.volumes.iter().any(|v| v.name == spec.name) {
            s.volumes.push(VolumeSummary {
                name: spec.name.clone(),
                labels: spec.labels.clone(),
            });
        }
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerCreate) -> EngineResult<String> {
        let mut s = self.lock();
        s.enter("create_container", Some(&spec.name))?;
        let op = EngineOp::CreateContainer;
        if let Some(i) = s.containers.iter().position(|c| c.name == spec.name) {
            return Err(EngineError::Conflict {
                op,
                target: spec.name.clone(),
                message: format!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{}\". \
                     You have to remove (or rename) that container to be able to reuse that name.",
                    spec.name, s.containers[i].id
                ),
            });
        }
        // What a create needs but lacks is a failure of the create, not a missing target.
        let failed = |message: String| EngineError::Failed {
            op,
            target: spec.name.clone(),
            message,
        };
        if !s.images.iter().any(|i| i.id == spec.image) {
            return Err(failed(format!("No such image: {}", spec.image)));
        }
        if let Some(missing) = spec.networks.iter().find(|n| !s.network_exists(&n.network)) {
            return Err(failed(format!("network {} not found", missing.network)));
        }
        if let Some(other) = spec
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("container:"))
            .filter(|other| s.find(other).is_none())
        {
            return Err(failed(format!("No such container: {other}")));
        }
        let id = s.new_id('c');
        let created = s.tick();
        s.containers.push(FakeContainer {
            id: id.clone(),
            name: spec.name.clone(),
            spec: spec.clone(),
            state: RunState::Created,
            health: Health::None,
            exit_code: None,
            restart_count: 0,
            created,
            logs: String::new(),
            exec: None,
            started: None,
            detached: Vec::new(),
            unbound: false,
        });
        let i = s.containers.len() - 1;
        s.emit("create", i);
        Ok(id)
    }

    async fn connect_network(&self, id: &str, attach: &super::NetworkAttach) -> EngineResult<()> {
        let mut s = self.lock();
        let shown = format!("{} to {}", s.display(id), attach.network);
        s.enter("connect_network", Some(&shown))?;
        let i = s.container(EngineOp::ConnectNetwork, id)?;
        if !s.network_exists(&attach.network) {
            return Err(EngineError::NotFound {
                op: EngineOp::ConnectNetwork,
                target: attach.network.clone(),
            });
        }
        let c = &mut s.containers[i];
        c.detached.retain(|n| *n != attach.network);
        if !c.spec.networks.iter().any(|n| n.network == attach.network) {
            c.spec.networks.push(attach.clone());
        }
        Ok(())
    }

    async fn start_container(&self, id: &str) -> EngineResult<()> {
        let mut s = self.lock();
        let shown = s.display(id);
        s.enter("start_container", Some(&shown))?;
        let i = s.container(EngineOp::StartContainer, id)?;
        let now = s.now;
        let state = s.containers[i].state;
        match state {
            RunState::Running => Err(EngineError::NotModified {
                op: EngineOp::StartContainer,
                target: id.into(),
            }),
            RunState::Paused | RunState::Removing => Err(EngineError::Conflict {
                op: EngineOp::StartContainer,
                target: id.into(),
                message: format!("container {} is {state:?}", s.containers[i].name),
            }),
            RunState::Created | RunState::Exited => {
                let start_health = s.start_health.unwrap_or(Health::Starting);
                let rule = s.start_rule(i);
                let c = &mut s.containers[i];
                c.state = RunState::Running;
                c.started = Some(now);
                c.exit_code = None;
                c.health = if c.has_healthcheck() {
                    start_health
                } else {
                    Health::None
                };
                s.emit("start", i);
                let c = &mut s.containers[i];
                match rule {
                    OnStart::Runs => {}
                    OnStart::Reports(health) => c.health = health,
                    OnStart::Restarted(count) => c.restart_count = count,
                    OnStart::Exits(code) => {
                        c.state = RunState::Exited;
                        c.exit_code = Some(code);
                        c.health = Health::None;
                        s.emit("die", i);
                    }
                }
                Ok(())
            }
        }
    }

    async fn stop_container(
        &self,
        id: &str,
        _grace: Duration,
        _signal: Option<&str>,
    ) -> EngineResult<()> {
        let mut s = self.lock();
        let shown = s.display(id);
        s.enter("stop_container", Some(&shown))?;
        let i = s.container(EngineOp::StopContainer, id)?;
        if s.containers[i].state != RunState::Running {
            return Err(EngineError::NotModified {
                op: EngineOp::StopContainer,
                target: id.into(),
            });
        }
        let c = &mut s.containers[i];
        c.state = RunState::Exited;
        c.exit_code = Some(0);
        c.health = Health::None;
        s.emit("kill", i);
        s.emit("die", i);
        s.emit("stop", i);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> EngineResult<()> {
        let mut s = self.lock();
        let shown = s.display(id);
        s.enter("remove_container", Some(&shown))?;
        let i = s.container(EngineOp::RemoveContainer, id)?;
        if s.containers[i].state == RunState::Running {
            return Err(EngineError::Conflict {
                op: EngineOp::RemoveContainer,
                target: id.into(),
                message: format!(
                    "You cannot remove a running container {}. Stop the container before \
                     attempting removal or force remove",
                    s.containers[i].id
                ),
            });
        }
        s.emit("destroy", i);
        s.containers.remove(i);
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> EngineResult<()> {
        let mut s = self.lock();
        s.enter("remove_network", Some(name))?;
        let Some(i) = s
            .networks
            .iter()
            .position(|(n, _)| n.name == name || n.id == name)
        else {
            return Err(EngineError::NotFound {
                op: EngineOp::RemoveNetwork,
                target: name.into(),
            });
        };
        let attached = s
            .containers
            .iter()
            .any(|c| c.networks().iter().any(|n| n == name));
        if attached {
            // Docker: 403 "error while removing network: network NAME has active endpoints".
            return Err(EngineError::Failed {
                op: EngineOp::RemoveNetwork,
                target: name.into(),
                message: format!(
                    "error while removing network: network {name} has active endpoints"
                ),
            });
        }
        s.networks.remove(i);
        Ok(())
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> EngineResult<()> {
        let mut s = self.lock();
        let shown = format!("{} {new_name}", s.display(id));
        s.enter("rename_container", Some(&shown))?;
        let i = s.container(EngineOp::RenameContainer, id)?;
        if let Some(j) = s.containers.iter().position(|c| c.name == new_name) {
            return Err(EngineError::Conflict {
                op: EngineOp::RenameContainer,
                target: id.into(),
                message: format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\".",
                    s.containers[j].id
                ),
            });
        }
        let old = std::mem::replace(&mut s.containers[i].name, new_name.to_owned());
        s.emit_with("rename", i, Some(("oldName", format!("/{old}"))));
        Ok(())
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> EngineResult<String> {
        let mut s = self.lock();
        let shown = s.display(id);
        s.enter("logs_tail", Some(&shown))?;
        let i = s.container(EngineOp::ReadLogs, id)?;
        let logs = &s.containers[i].logs;
        let all: Vec<&str> = logs.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        Ok(tail.iter().map(|l| format!("{l}\n")).collect())
    }

    async fn logs(
        &self,
        id: &str,
        req: &super::logs::LogsRequest,
    ) -> EngineResult<tokio::sync::mpsc::Receiver<EngineResult<super::logs::LogLine>>> {
        let text = self.logs_tail(id, usize::MAX).await?;
        let lines = super::logs::lines_of(&text, super::logs::Stream::Stdout, req.tail);
        let (tx, rx) = tokio::sync::mpsc::channel(lines.len().max(1));
        for l in lines {
            let _ = tx.try_send(Ok(l));
        }
        Ok(rx)
    }

    async fn inspect_container(&self, id: &str) -> EngineResult<ContainerDetails> {
        let mut s = self.lock();
        let shown = s.display(id);
        s.enter("inspect_container", Some(&shown))?;
        let i = s.container(EngineOp::InspectContainer, id)?;
        Ok(s.containers[i].details())
    }

    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        _timeout: Duration,
    ) -> EngineResult<ExecOutcome> {
        let mut s = self.lock();
        let shown = format!("{} {}", s.display(id), cmd.join(" "));
        s.enter("exec", Some(&shown))?;
        let i = s.container(EngineOp::ExecInContainer, id)?;
        let c = &s.containers[i];
        if c.state != RunState::Running {
            return Err(EngineError::Conflict {
                op: EngineOp::ExecInContainer,
                target: id.into(),
                message: format!("Container {} is not running", c.id),
            });
        }
        Ok(c.exec.clone().unwrap_or(ExecOutcome {
            exit_code: 0,
            output: String::new(),
        }))
    }

    async fn tag_image(&self, image_id: &str, repo: &str, tag: &str) -> EngineResult<()> {
        let mut s = self.lock();
        let reference = format!("{repo}:{tag}");
        s.enter("tag_image", Some(&format!("{image_id} {reference}")))?;
        // Docker resolves the source like any image reference: an ID or a tag naming one.
        let Some(id) = s
            .images
            .iter()
            .find(|i| i.id == image_id || i.tags.iter().any(|t| t == image_id))
            .map(|i| i.id.clone())
        else {
            return Err(EngineError::NotFound {
                op: EngineOp::TagImage,
                target: format!("{image_id} as {reference}"),
            });
        };
        add_local_image(&mut s, &reference, &id);
        Ok(())
    }

    async fn remove_image_tag(&self, reference: &str) -> EngineResult<()> {
        let mut s = self.lock();
        s.enter("remove_image_tag", Some(reference))?;
        let not_found = || EngineError::NotFound {
            op: EngineOp::RemoveImageTag,
            target: reference.into(),
        };
        let i = s
            .images
            .iter()
            .position(|i| i.tags.iter().any(|t| t == reference))
            .ok_or_else(not_found)?;
        let image = &s.images[i];
        if image.tags.len() + image.digests.len() > 1 {
            s.images[i].tags.retain(|t| t != reference);
            return Ok(());
        }
        // The last reference: the image goes too, unless a container uses it.
        if let Some(c) = s.containers.iter().find(|c| c.spec.image == image.id) {
            return Err(EngineError::Conflict {
                op: EngineOp::RemoveImageTag,
                target: reference.into(),
                message: format!(
                    "conflict: unable to remove repository reference \"{reference}\" (must \
                     force) - container {} is using its referenced image {}",
                    crate::util::id::short(&c.id),
                    &image.id
                ),
            });
        }
        s.images.remove(i);
        Ok(())
    }

    async fn events(
        &self,
        since: i64,
        label_filter: &str,
    ) -> EngineResult<mpsc::Receiver<EngineResult<EngineEvent>>> {
        let mut s = self.lock();
        s.enter("events", Some(label_filter))?;
        let (tx, rx) = mpsc::channel(256);
        for event in s
            .events
            .iter()
            .filter(|e| e.time >= since && label_matches(&e.attributes, label_filter))
        {
            // Replayed history beyond the channel's capacity is lost, as with a slow reader.
            let _ = tx.try_send(Ok(event.clone()));
        }
        s.subscribers.push(Subscriber {
            label: label_filter.to_owned(),
            tx,
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{HealthcheckSpec, NetworkAttach};

    const IMAGE: &str = "sha256:aaaa";

    fn spec(name: &str) -> ContainerCreate {
        ContainerCreate {
            name: name.into(),
            image: IMAGE.into(),
            command: None,
            entrypoint: None,
            env: Vec::new(),
            labels: BTreeMap::from([
                ("berth.managed".into(), "true".into()),
                ("berth.project".into(), "shop".into()),
            ]),
            ..ContainerCreate::default()
        }
    }

    fn engine() -> FakeEngine {
        let e = FakeEngine::new();
        e.add_image("app:1", IMAGE);
        e
    }

    fn network(name: &str) -> NetworkCreate {
        NetworkCreate {
            name: name.into(),
            driver: None,
            driver_opts: BTreeMap::new(),
            internal: false,
            labels: BTreeMap::new(),
            ipam: None,
            enable_ipv6: false,
            attachable: false,
        }
    }

    const GRACE: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn containers_move_from_created_to_running_to_exited() {
        let e = engine();
        let id = e.create_container(&spec("shop-web-1")).await.unwrap();
        assert_eq!(e.container(&id).unwrap().state, RunState::Created);
        e.start_container("shop-web-1").await.unwrap();
        assert_eq!(e.container(&id).unwrap().state, RunState::Running);
        e.stop_container(&id, GRACE, None).await.unwrap();
        let listed = e.list_containers(&[]).await.unwrap();
        assert_eq!(listed[0].state, RunState::Exited);
        assert_eq!(listed[0].exit_code, Some(0));
        assert_eq!(listed[0].networks, ["bridge"]);
        e.remove_container(&id).await.unwrap();
        assert!(e.list_containers(&[]).await.unwrap().is_empty());
        assert_eq!(
            e.calls(),
            [
                "create_container shop-web-1",
                "start_container shop-web-1",
                "stop_container shop-web-1",
                "list_containers",
                "remove_container shop-web-1",
                "list_containers",
            ]
        );
    }

    #[tokio::test]
    async fn a_taken_name_is_a_conflict() {
        let e = engine();
        e.create_container(&spec("shop-web-1")).await.unwrap();
        let err = e.create_container(&spec("shop-web-1")).await.unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
        e.create_container(&spec("shop-web-2")).await.unwrap();
        let err = e
            .rename_container("shop-web-2", "shop-web-1")
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    }

    #[tokio::test]
    async fn removing_a_running_container_is_a_conflict() {
        let e = engine();
        e.create_container(&spec("shop-web-1")).await.unwrap();
        e.start_container("shop-web-1").await.unwrap();
        let err = e.remove_container("shop-web-1").await.unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
        assert!(!err.is_already_done());
    }

    #[tokio::test]
    async fn repeated_starts_and_stops_are_not_modified() {
        let e = engine();
        e.create_container(&spec("shop-web-1")).await.unwrap();
        let err = e
            .stop_container("shop-web-1", GRACE, None)
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::NotModified { .. }), "{err}");
        e.start_container("shop-web-1").await.unwrap();
        let err = e.start_container("shop-web-1").await.unwrap_err();
        assert!(matches!(err, EngineError::NotModified { .. }), "{err}");
        assert!(err.is_already_done());
        e.stop_container("shop-web-1", GRACE, None).await.unwrap();
        let err = e
            .stop_container("shop-web-1", GRACE, None)
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::NotModified { .. }), "{err}");
    }

    #[tokio::test]
    async fn unknown_containers_are_not_found_by_name_id_or_prefix() {
        let e = engine();
        let id = e.create_container(&spec("shop-web-1")).await.unwrap();
        for op in ["start", "remove", "logs"] {
            let err = match op {
                "start" => e.start_container("nope").await.unwrap_err(),
                "remove" => e.remove_container("nope").await.unwrap_err(),
                _ => e.logs_tail("nope", 5).await.unwrap_err(),
            };
            assert!(matches!(err, EngineError::NotFound { .. }), "{op}: {err}");
        }
        e.start_container(&id[..12]).await.unwrap();
        e.stop_container(&id, GRACE, None).await.unwrap();
        e.remove_container("/shop-web-1").await.unwrap();
        let err = e.remove_container(&id).await.unwrap_err();
        assert!(err.is_already_done(), "{err}");
    }

    #[tokio::test]
    async fn create_needs_an_existing_image_id_and_networks() {
        let e = engine();
        let mut by_tag = spec("a");
        by_tag.image = "app:1".into();
        let err = e.create_container(&by_tag).await.unwrap_err();
        assert!(matches!(err, EngineError::Failed { .. }), "{err}");
        assert!(!err.is_already_done());

        let mut on_net = spec("b");
        on_net.networks = vec![NetworkAttach {
            network: "shop_default".into(),
            aliases: vec!["web".into()],
            ipv4_address: None,
            ipv6_address: None,
        }];
        let err = e.create_container(&on_net).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create container b: network shop_default not found"
        );
        e.create_network(&network("shop_default")).await.unwrap();
        e.create_container(&on_net).await.unwrap();
        let listed = e.list_containers(&[]).await.unwrap();
        assert_eq!(listed[0].networks, ["shop_default"]);
    }

    #[tokio::test]
    async fn networks_conflict_by_name_and_volumes_are_idempotent() {
        let e = engine();
        e.create_network(&network("shop_default")).await.unwrap();
        let err = e
            .create_network(&network("shop_default"))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
        let volume = VolumeCreate {
            name: "shop_db".into(),
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        };
        e.create_volume(&volume).await.unwrap();
        e.create_volume(&volume).await.unwrap();
        assert_eq!(e.list_volumes().await.unwrap().len(), 1);
        assert_eq!(e.list_networks().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn label_filters_match_any_of_them() {
        let e = engine();
        e.create_container(&spec("shop-web-1")).await.unwrap();
        let mut other = spec("other");
        other.labels = BTreeMap::from([("com.docker.compose.project".into(), "shop".into())]);
        e.create_container(&other).await.unwrap();
        let mut stranger = spec("stranger");
        stranger.labels = BTreeMap::new();
        e.create_container(&stranger).await.unwrap();

        let names = |list: Vec<ContainerSummary>| -> Vec<String> {
            list.into_iter().map(|c| c.name).collect()
        };
        let managed = e
            .list_containers(&["berth.managed=true".into()])
            .await
            .unwrap();
        assert_eq!(names(managed), ["shop-web-1"]);
        let either = e
            .list_containers(&[
                "berth.managed=true".into(),
                "com.docker.compose.project".into(),
            ])
            .await
            .unwrap();
        assert_eq!(names(either), ["shop-web-1", "other"]);
    }

    #[tokio::test]
    async fn the_outside_world_kills_removes_and_reports_health() {
        let e = engine();
        let mut checked = spec("shop-web-1");
        checked.healthcheck = Some(HealthcheckSpec {
            test: vec!["CMD".into(), "true".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            start_interval: None,
        });
        e.create_container(&checked).await.unwrap();
        e.start_container("shop-web-1").await.unwrap();
        let health = |e: &FakeEngine| e.container("shop-web-1").unwrap().summary().health;
        assert_eq!(health(&e), Health::Starting);
        e.set_health("shop-web-1", Health::Healthy);
        assert_eq!(health(&e), Health::Healthy);
        e.kill("shop-web-1", 137);
        let c = e.container("shop-web-1").unwrap().summary();
        assert_eq!(
            (c.state, c.exit_code, c.health),
            (RunState::Exited, Some(137), Health::None)
        );
        e.remove_by_hand("shop-web-1");
        assert!(e.container("shop-web-1").is_none());
        let actions: Vec<String> = e.events_so_far().into_iter().map(|ev| ev.action).collect();
        assert_eq!(
            actions,
            [
                "create",
                "start",
                "health_status: healthy",
                "die",
                "destroy"
            ]
        );
    }

    #[tokio::test]
    async fn injected_faults_fail_the_next_matching_call_once() {
        let e = engine();
        e.fail_next(
            "create_container shop-web-2",
            Fault::Failed("no space".into()),
        );
        e.fail_next("list_containers", Fault::Unreachable);
        e.create_container(&spec("shop-web-1")).await.unwrap();
        let err = e.create_container(&spec("shop-web-2")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to create container shop-web-2: no space"
        );
        assert!(e.container("shop-web-2").is_none());
        let err = e.list_containers(&[]).await.unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err}");
        assert_eq!(err.op().as_str(), "list containers");
        assert_eq!(e.list_containers(&[]).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn pulls_fetch_only_what_the_registry_has() {
        let e = FakeEngine::new();
        e.add_remote_image("app:2", "sha256:bbbb");
        let err = e.pull_image("app:3", None).await.unwrap_err();
        assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
        assert!(e.list_images().await.unwrap().is_empty());
        assert_eq!(e.pull_image("app:2", None).await.unwrap(), "sha256:bbbb");
        let images = e.list_images().await.unwrap();
        assert_eq!(images[0].tags, ["app:2"]);
    }

    #[tokio::test]
    async fn events_replay_since_and_follow_with_the_label() {
        let e = engine();
        e.create_container(&spec("shop-web-1")).await.unwrap();
        let mut stranger = spec("stranger");
        stranger.labels = BTreeMap::new();
        e.create_container(&stranger).await.unwrap();
        let mut rx = e.events(0, "berth.managed=true").await.unwrap();
        e.start_container("stranger").await.unwrap();
        e.start_container("shop-web-1").await.unwrap();
        let first = rx.recv().await.unwrap().unwrap();
        let second = rx.recv().await.unwrap().unwrap();
        assert_eq!(
            (first.action.as_str(), second.action.as_str()),
            ("create", "start")
        );
        assert_eq!(second.attributes["name"], "shop-web-1");
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn inspect_shows_addresses_and_ports_only_while_running() {
        let e = engine();
        e.create_network(&network("shop_default")).await.unwrap();
        let mut web = spec("shop-web-1");
        web.networks = vec![NetworkAttach {
            network: "shop_default".into(),
            aliases: vec!["web".into()],
            ipv4_address: None,
            ipv6_address: None,
        }];
        web.ports = vec![crate::engine::PortBinding {
            target: 8080,
            protocol: "tcp".into(),
            host_ip: Some("127.0.0.1".into()),
            published: Some(18080),
            published_end: None,
        }];
        let id = e.create_container(&web).await.unwrap();
        let created = e.inspect_container(&id).await.unwrap();
        assert_eq!(
            (created.state, created.started_at.as_deref()),
            (RunState::Created, None)
        );
        assert!(created.ip_addresses.is_empty() && created.ports.is_empty());
        e.start_container(&id).await.unwrap();
        let d = e.inspect_container("shop-web-1").await.unwrap();
        assert_eq!(d.ip_addresses["shop_default"], "172.20.0.4");
        assert_eq!(
            d.ports,
            [(8080, "tcp".to_owned(), Some("127.0.0.1".to_owned()), 18080)]
        );
        assert_eq!(d.started_at.as_deref(), Some("2023-11-14T22:13:22Z"));
        assert_eq!(
            (d.image_id.as_str(), d.network_mode.as_str()),
            (IMAGE, "default")
        );
        e.kill(&id, 3);
        let d = e.inspect_container(&id).await.unwrap();
        assert_eq!((d.state, d.exit_code), (RunState::Exited, Some(3)));
        assert!(d.ip_addresses.is_empty());
        let err = e.inspect_container("nope").await.unwrap_err();
        assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn exec_answers_what_set_exec_says_in_running_containers() {
        let e = engine();
        let id = e.create_container(&spec("shop-web-1")).await.unwrap();
        let cmd = vec!["check".to_owned()];
        let err = e.exec(&id, &cmd, GRACE).await.unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
        e.start_container(&id).await.unwrap();
        let ok = e.exec(&id, &cmd, GRACE).await.unwrap();
        assert_eq!((ok.exit_code, ok.output.as_str()), (0, ""));
        e.set_exec(&id, 3, &"x".repeat(10_000));
        let out = e.exec(&id, &cmd, GRACE).await.unwrap();
        assert_eq!((out.exit_code, out.output.len()), (3, EXEC_OUTPUT_LIMIT));
        e.fail_next("exec", Fault::Timeout);
        let err = e.exec(&id, &cmd, GRACE).await.unwrap_err();
        assert!(matches!(err, EngineError::Timeout { .. }), "{err}");
        assert_eq!(err.op().as_str(), "exec in container");
        assert!(e.calls().contains(&"exec shop-web-1 check".to_owned()));
    }

    #[tokio::test]
    async fn pin_tags_keep_an_image_and_untagging_leaves_the_other_tags() {
        let e = engine();
        e.tag_image(IMAGE, "berth-pin/shop-web", "r1")
            .await
            .unwrap();
        let tags = |e: &FakeEngine| e.lock().images[0].tags.clone();
        assert_eq!(tags(&e), ["app:1", "berth-pin/shop-web:r1"]);
        let err = e.tag_image("sha256:none", "x", "y").await.unwrap_err();
        assert!(matches!(err, EngineError::NotFound { .. }), "{err}");

        e.remove_image_tag("app:1").await.unwrap();
        assert_eq!(tags(&e), ["berth-pin/shop-web:r1"]);
        let err = e.remove_image_tag("app:1").await.unwrap_err();
        assert!(err.is_already_done(), "{err}");
        // The last reference of an image a container uses stays.
        e.create_container(&spec("shop-web-1")).await.unwrap();
        let err = e
            .remove_image_tag("berth-pin/shop-web:r1")
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
        e.remove_container("shop-web-1").await.unwrap();
        e.remove_image_tag("berth-pin/shop-web:r1").await.unwrap();
        assert!(e.list_images().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn logs_tail_returns_the_last_lines() {
        let e = engine();
        e.create_container(&spec("shop-web-1")).await.unwrap();
        e.set_logs("shop-web-1", "one\ntwo\nthree\n");
        assert_eq!(e.logs_tail("shop-web-1", 2).await.unwrap(), "two\nthree\n");
    }

    #[tokio::test]
    async fn start_rules_go_by_label_then_name_then_image() {
        let e = engine();
        e.set_start_health(Health::Healthy);
        e.on_start(Started::Image(IMAGE.into()), OnStart::Exits(1));
        e.on_start(Started::Name("shop-web-2".into()), OnStart::Restarted(2));
        e.on_start(Started::Label("berth.role=smoke".into()), OnStart::Exits(3));
        let mut checked = spec("shop-web-1");
        checked.healthcheck = Some(HealthcheckSpec {
            test: vec!["CMD".into(), "true".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
            start_interval: None,
        });
        let mut smoke = spec("shop-web-2");
        smoke.labels.insert("berth.role".into(), "smoke".into());
        for s in [&checked, &smoke] {
            e.create_container(s).await.unwrap();
            e.start_container(&s.name).await.unwrap();
        }
        let c = e.container("shop-web-1").unwrap();
        assert_eq!((c.state, c.exit_code), (RunState::Exited, Some(1)));
        let c = e.container("shop-web-2").unwrap();
        assert_eq!((c.state, c.exit_code), (RunState::Exited, Some(3)));

        e.on_start(Started::Image(IMAGE.into()), OnStart::Runs);
        e.start_container("shop-web-1").await.unwrap();
        let c = e.container("shop-web-1").unwrap();
        assert_eq!((c.state, c.health), (RunState::Running, Health::Healthy));
        e.clear_start_rules();
        e.on_start(
            Started::Name("shop-web-2".into()),
            OnStart::Reports(Health::Unhealthy),
        );
        e.start_container("shop-web-2").await.unwrap();
        let c = e.container("shop-web-2").unwrap();
        assert_eq!((c.state, c.health), (RunState::Running, Health::Unhealthy));
    }

    #[tokio::test]
    async fn build_results_give_the_set_id_or_fail_with_the_message() {
        let e = FakeEngine::new();
        let spec = |tag: &str| BuildSpec {
            context_dir: std::path::PathBuf::from("/nonexistent"),
            dockerfile: "Dockerfile".into(),
            dockerfile_inline: None,
            tag: tag.into(),
            args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
            network: None,
            extra_hosts: Vec::new(),
            shm_size: None,
            timeout: GRACE,
        };
        e.set_build_result("app:1", Ok("sha256:app1".into()));
        e.set_build_result("app:2", Err("step 2/3: exit code 1".into()));
        assert_eq!(e.build_image(&spec("app:1")).await.unwrap(), "sha256:app1");
        let err = e.build_image(&spec("app:2")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to build image app:2: step 2/3: exit code 1"
        );
        assert!(
            e.build_image(&spec("app:3"))
                .await
                .unwrap()
                .starts_with('i')
        );
        let tags: Vec<String> = e
            .list_images()
            .await
            .unwrap()
            .into_iter()
            .flat_map(|i| i.tags)
            .collect();
        assert_eq!(tags, ["app:1", "app:3"]);
    }

    #[tokio::test]
    async fn inserted_containers_are_listed_as_given_and_snapshots_diverge() {
        let e = engine();
        let made = ContainerSummary {
            id: "compose-made".into(),
            name: "shop-web-1".into(),
            image_id: "sha256:other".into(),
            labels: BTreeMap::from([("com.docker.compose.project".into(), "shop".into())]),
            state: RunState::Running,
            health: Health::Healthy,
            exit_code: None,
            networks: vec!["shop_default".into()],
            created: 7,
            actual: None,
        };
        e.insert_container(made.clone());
        // Listed as given, plus what it actually has (no ports, no mounts).
        let listed = ContainerSummary {
            actual: Some(Attachments {
                ports: Some(Vec::new()),
                mounts: Vec::new(),
            }),
            ..made
        };
        assert_eq!(e.list_containers(&[]).await.unwrap(), [listed]);
        let copy = e.snapshot();
        copy.kill("shop-web-1", 137);
        assert_eq!(e.container("shop-web-1").unwrap().state, RunState::Running);
        assert_eq!(
            copy.container("shop-web-1").unwrap().state,
            RunState::Exited
        );
        e.stop_container("compose-made", GRACE, None).await.unwrap();
        e.remove_container("shop-web-1").await.unwrap();
        assert!(e.list_containers(&[]).await.unwrap().is_empty());
    }
}
