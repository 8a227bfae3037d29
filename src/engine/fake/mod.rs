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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{
    BuildSpec, ContainerCreate, ContainerDetails, ContainerSummary, Engine, EngineError,
    EngineEvent, EngineInfo, EngineOp, EngineResult, ExecOutcome, Health, ImageSummary,
    NetworkCreate, NetworkSummary, RunState, VolumeCreate, VolumeSummary,
};

mod container;
mod containers;
mod control;
mod images;
mod networks;
mod state;
mod system;
#[cfg(test)]
mod tests;

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
            "remove_volume" => EngineOp::RemoveVolume,
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

impl Engine for FakeEngine {
    async fn info(&self) -> EngineResult<EngineInfo> {
        system::info(self).await
    }

    async fn list_containers(
        &self,
        label_filters: &[String],
    ) -> EngineResult<Vec<ContainerSummary>> {
        containers::list_containers(self, label_filters).await
    }

    async fn list_networks(&self) -> EngineResult<Vec<NetworkSummary>> {
        networks::list_networks(self).await
    }

    async fn list_volumes(&self) -> EngineResult<Vec<VolumeSummary>> {
        networks::list_volumes(self).await
    }

    async fn list_images(&self) -> EngineResult<Vec<ImageSummary>> {
        images::list_images(self).await
    }

    async fn pull_image(&self, reference: &str, _platform: Option<&str>) -> EngineResult<String> {
        images::pull_image(self, reference, _platform).await
    }

    async fn build_image(&self, spec: &BuildSpec) -> EngineResult<String> {
        images::build_image(self, spec).await
    }

    async fn create_network(&self, spec: &NetworkCreate) -> EngineResult<String> {
        networks::create_network(self, spec).await
    }

    async fn create_volume(&self, spec: &VolumeCreate) -> EngineResult<()> {
        networks::create_volume(self, spec).await
    }

    async fn create_container(&self, spec: &ContainerCreate) -> EngineResult<String> {
        containers::create_container(self, spec).await
    }

    async fn connect_network(&self, id: &str, attach: &super::NetworkAttach) -> EngineResult<()> {
        networks::connect_network(self, id, attach).await
    }

    async fn start_container(&self, id: &str) -> EngineResult<()> {
        containers::start_container(self, id).await
    }

    async fn stop_container(
        &self,
        id: &str,
        _grace: Duration,
        _signal: Option<&str>,
    ) -> EngineResult<()> {
        containers::stop_container(self, id, _grace, _signal).await
    }

    async fn remove_container(&self, id: &str) -> EngineResult<()> {
        containers::remove_container(self, id).await
    }

    async fn remove_network(&self, name: &str) -> EngineResult<()> {
        networks::remove_network(self, name).await
    }

    async fn remove_volume(&self, name: &str) -> EngineResult<()> {
        networks::remove_volume(self, name).await
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> EngineResult<()> {
        containers::rename_container(self, id, new_name).await
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> EngineResult<String> {
        containers::logs_tail(self, id, lines).await
    }

    async fn inspect_container(&self, id: &str) -> EngineResult<ContainerDetails> {
        containers::inspect_container(self, id).await
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

    async fn container_config(&self, id: &str) -> EngineResult<super::effective::EffectiveConfig> {
        containers::container_config(self, id).await
    }

    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        _timeout: Duration,
    ) -> EngineResult<ExecOutcome> {
        containers::exec(self, id, cmd, _timeout).await
    }

    async fn tag_image(&self, image_id: &str, repo: &str, tag: &str) -> EngineResult<()> {
        images::tag_image(self, image_id, repo, tag).await
    }

    async fn remove_image_tag(&self, reference: &str) -> EngineResult<()> {
        images::remove_image_tag(self, reference).await
    }

    async fn events(
        &self,
        since: i64,
        label_filter: &str,
    ) -> EngineResult<mpsc::Receiver<EngineResult<EngineEvent>>> {
        system::events(self, since, label_filter).await
    }
}
