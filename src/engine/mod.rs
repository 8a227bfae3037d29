//! The Docker boundary: one [`Engine`] trait, its data types and its errors.
//!
//! IO lives behind this trait only. `docker` implements it with bollard for production; `fake`
//! is an in-memory engine for planner/executor unit tests. Everything above this module
//! (observe, plan, execute) speaks these engine-neutral types, never bollard's.

pub mod auth;
pub mod claim;
pub mod docker;
pub mod effective;
pub mod fake;
pub mod labels;
pub mod liveness;
pub mod logs;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// What the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Server version, e.g. `20.10.24`.
    pub version: String,
    /// API version negotiated, e.g. `1.41`.
    pub api_version: String,
    /// Where it was reached (`unix:///var/run/docker.sock`).
    pub endpoint: String,
}

/// Container state as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunState {
    /// Created, never started.
    Created,
    /// Running (includes restarting).
    Running,
    /// Paused.
    Paused,
    /// Exited or dead.
    Exited,
    /// Being removed.
    Removing,
}

/// Docker healthcheck status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    /// No healthcheck.
    None,
    /// In the start period or not yet decided.
    Starting,
    /// Passing.
    Healthy,
    /// Failing.
    Unhealthy,
}

/// One container as the list call returns it (no inspect needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Container ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image ID (`sha256:...`) it runs.
    pub image_id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// State.
    pub state: RunState,
    /// Health, parsed from the list call's status text (`(healthy)`, `(unhealthy)`,
    /// `(health: starting)`).
    pub health: Health,
    /// Exit code, parsed from the status text for exited containers (`Exited (0) ...`).
    pub exit_code: Option<i64>,
    /// Names of the networks it is attached to.
    pub networks: Vec<String>,
    /// Created, seconds since the epoch.
    pub created: i64,
    /// What the container actually has besides its networks (published ports, mounts), as
    /// the list call reports it; `None` when the source did not say (the comparison with the
    /// spec is then skipped, never guessed).
    pub actual: Option<Attachments>,
}

/// What a container actually has, as the list call reports it: compared with its spec by
/// `reconcile::drift` (a container that does not match is never promoted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachments {
    /// Published ports bound now as (container port, protocol, host port); `None` unless the
    /// container is running (Docker binds them at start and reports none before, nor while it
    /// restarts).
    pub ports: Option<Vec<(u16, String, u16)>>,
    /// Mounts as (kind: `bind`, `volume`, `tmpfs`…, path in the container).
    pub mounts: Vec<(String, String)>,
    /// Network name → its IPv4 address there, while it runs (what the handoff proxy
    /// forwards to; networks without an address, such as `host`, are left out).
    pub addresses: BTreeMap<String, std::net::IpAddr>,
}

/// One container as inspect returns it: what probes and readiness checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDetails {
    /// Container ID.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// State.
    pub state: RunState,
    /// Docker healthcheck status (`None` without a healthcheck).
    pub health: Health,
    /// Exit code of the last run; `None` while it never ran or runs.
    pub exit_code: Option<i64>,
    /// When it was last started (RFC 3339); `None` if it never was.
    pub started_at: Option<String>,
    /// `HostConfig.NetworkMode` as given at create: `host`, `none`, `container:<id>`, ...;
    /// `default` for a container created without one (berth's, on their compose networks).
    pub network_mode: String,
    /// Network name → the container's IPv4 address on it (networks where it has none, such as
    /// `host`, and stopped containers' networks are left out).
    pub ip_addresses: BTreeMap<String, String>,
    /// Published ports as bound now: (container port, protocol, host IP, host port). The host IP
    /// is `None` when Docker reports none or the empty string.
    pub ports: Vec<(u16, String, Option<String>, u16)>,
    /// Image ID (`sha256:...`) it runs.
    pub image_id: String,
    /// How often Docker's restart policy restarted it.
    pub restart_count: u32,
}

/// What one command run in a container (`Engine::exec`) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The command's exit code.
    pub exit_code: i64,
    /// The tail of its output (stdout and stderr interleaved), at most [`EXEC_OUTPUT_LIMIT`]
    /// bytes (cut at a character boundary).
    pub output: String,
}

/// How much of an exec's output [`ExecOutcome::output`] keeps (its end).
pub const EXEC_OUTPUT_LIMIT: usize = 4096;

/// The last `limit` bytes of `bytes` as text (lossy UTF-8; a character cut by the limit is
/// dropped rather than shown as a replacement character).
pub fn output_tail(bytes: &[u8], limit: usize) -> String {
    let mut start = bytes.len().saturating_sub(limit);
    // Skip UTF-8 continuation bytes so the tail starts on a character boundary.
    while start < bytes.len() && start > 0 && (bytes[start] & 0xC0) == 0x80 {
        start += 1;
    }
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSummary {
    /// ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSummary {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// One local image: its ID and the tags pointing at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Image ID (`sha256:...`).
    pub id: String,
    /// `repo:tag` references.
    pub tags: Vec<String>,
    /// `repo@sha256:...` references.
    pub digests: Vec<String>,
}

/// A network to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkCreate {
    /// Engine-side name.
    pub name: String,
    /// Driver (`bridge` when `None`).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// No outside connectivity.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `ipam:` (`None`: the engine's default driver picks a subnet).
    pub ipam: Option<IpamSpec>,
    /// `enable_ipv6: true`.
    pub enable_ipv6: bool,
    /// `attachable: true` (meaningful for overlay networks; sent as given).
    pub attachable: bool,
}

/// A network's IPAM settings, engine-neutral.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamSpec {
    /// IPAM driver (`None`: `default`).
    pub driver: Option<String>,
    /// Address pools.
    pub pools: Vec<IpamPoolSpec>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

/// One IPAM address pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamPoolSpec {
    /// Subnet (CIDR).
    pub subnet: Option<String>,
    /// Range containers get addresses from (CIDR).
    pub ip_range: Option<String>,
    /// Gateway address.
    pub gateway: Option<String>,
    /// Addresses the driver must not hand out, by host name.
    pub aux_addresses: BTreeMap<String, String>,
}

/// A volume to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeCreate {
    /// Engine-side name.
    pub name: String,
    /// Driver (`local` when `None`).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A published port binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PortBinding {
    /// Container port.
    pub target: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Host IP (`None` = all).
    pub host_ip: Option<String>,
    /// Host port (`None` = ephemeral); the first of a range when `published_end` is set.
    pub published: Option<u16>,
    /// The last host port of a range published onto one container port (`8000-8010:80`):
    /// the engine binds one free port of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_end: Option<u16>,
}

/// A mount, engine-neutral.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Host path or engine-side volume name; `None` for tmpfs/anonymous.
    pub source: Option<String>,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
    /// `nocopy`, `propagation=rshared`, `size=...`, `mode=...`, `subpath=...`,
    /// `create_host_path=...`, `selinux=z|Z` as in the model.
    pub options: Vec<String>,
}

/// The network a container joins, with its DNS aliases.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkAttach {
    /// Engine-side network name.
    pub network: String,
    /// Aliases on that network (the service name is always one).
    pub aliases: Vec<String>,
    /// Static IPv4 address.
    pub ipv4_address: Option<String>,
    /// Static IPv6 address.
    pub ipv6_address: Option<String>,
}

/// Docker healthcheck for create (durations as given; `None` = image default).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthcheckSpec {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Interval.
    pub interval: Option<Duration>,
    /// Timeout.
    pub timeout: Option<Duration>,
    /// Retries.
    pub retries: Option<u32>,
    /// Start period.
    pub start_period: Option<Duration>,
    /// Start interval (API ≥ 1.44; ignored by older engines).
    pub start_interval: Option<Duration>,
}

/// Everything needed to create one container. Built purely from the desired model
/// (`reconcile::container_spec`); the engine implementation only translates it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerCreate {
    /// Container name.
    pub name: String,
    /// Image to run: an image ID (`sha256:...`), never a moving tag.
    pub image: String,
    /// CMD override.
    pub command: Option<Vec<String>>,
    /// ENTRYPOINT override.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries, sorted.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `user:`.
    pub user: Option<String>,
    /// `working_dir:`.
    pub working_dir: Option<String>,
    /// `hostname:`.
    pub hostname: Option<String>,
    /// Exposed ports (`80/tcp`), including published targets.
    pub exposed: Vec<String>,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// Mounts.
    pub mounts: Vec<MountSpec>,
    /// Networks; the first is joined at create, the rest connected before start.
    pub networks: Vec<NetworkAttach>,
    /// `network_mode:` already resolved (`host`, `none`, `container:<id>`); when set,
    /// `networks` is empty.
    pub network_mode: Option<String>,
    /// Restart policy: `no`, `always`, `unless-stopped`, `on-failure`.
    pub restart: String,
    /// Max retries for `on-failure`.
    pub restart_max: Option<u32>,
    /// Healthcheck.
    pub healthcheck: Option<HealthcheckSpec>,
    /// `extra_hosts` as `host:ip`.
    pub extra_hosts: Vec<String>,
    /// `dns:`.
    pub dns: Vec<String>,
    /// `cap_add:`.
    pub cap_add: Vec<String>,
    /// `cap_drop:`.
    pub cap_drop: Vec<String>,
    /// `privileged:`.
    pub privileged: bool,
    /// `read_only:`.
    pub read_only: bool,
    /// `tmpfs:` as `path[:options]`.
    pub tmpfs: Vec<String>,
    /// `ulimits:` name → (soft, hard).
    pub ulimits: BTreeMap<String, (i64, i64)>,
    /// Log driver and options.
    pub log_driver: Option<String>,
    /// Log options.
    pub log_options: BTreeMap<String, String>,
    /// `stop_signal:`.
    pub stop_signal: Option<String>,
    /// `stop_grace_period:` in whole seconds.
    pub stop_timeout: Option<i64>,
    /// `init:`.
    pub init: Option<bool>,
    /// `shm_size:` bytes.
    pub shm_size: Option<i64>,
    /// `sysctls:`.
    pub sysctls: BTreeMap<String, String>,
    /// CPU limit in nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// PIDs limit.
    pub pids_limit: Option<i64>,
    /// `platform:` (`linux/arm64`): the image variant to run (create's `platform` query).
    #[serde(default)]
    pub platform: Option<String>,
    /// `runtime:` (`runc`, `nvidia`…): HostConfig.Runtime.
    #[serde(default)]
    pub runtime: Option<String>,
    /// `security_opt:` as given (`no-new-privileges:true`, `seccomp=…`).
    #[serde(default)]
    pub security_opt: Vec<String>,
}

impl Default for ContainerCreate {
    /// An empty spec (no name, no image) with restart `no`: a base for `..Default::default()`.
    fn default() -> Self {
        ContainerCreate {
            name: String::new(),
            image: String::new(),
            command: None,
            entrypoint: None,
            env: Vec::new(),
            labels: BTreeMap::new(),
            user: None,
            working_dir: None,
            hostname: None,
            exposed: Vec::new(),
            ports: Vec::new(),
            mounts: Vec::new(),
            networks: Vec::new(),
            network_mode: None,
            restart: "no".into(),
            restart_max: None,
            healthcheck: None,
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            read_only: false,
            tmpfs: Vec::new(),
            ulimits: BTreeMap::new(),
            log_driver: None,
            log_options: BTreeMap::new(),
            stop_signal: None,
            stop_timeout: None,
            init: None,
            shm_size: None,
            sysctls: BTreeMap::new(),
            nano_cpus: None,
            memory: None,
            pids_limit: None,
            platform: None,
            runtime: None,
            security_opt: Vec::new(),
        }
    }
}

/// Kind of engine event berth reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    /// `container`, `network`, ...
    pub kind: String,
    /// `die`, `destroy`, `stop`, `health_status: healthy`, ...
    pub action: String,
    /// Object ID.
    pub id: String,
    /// Labels/attributes of the object.
    pub attributes: BTreeMap<String, String>,
    /// Unix time (seconds) of the event.
    pub time: i64,
}

/// One image build (`build_image`): what `build:` asks for, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The context directory (absolute); sent as a tar stream of the files `.dockerignore`
    /// lets through.
    pub context_dir: std::path::PathBuf,
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    /// `dockerfile_inline`: sent in the tar under a name of its own instead of `dockerfile`.
    pub dockerfile_inline: Option<String>,
    /// The reference the built image is tagged with (`repo:tag`).
    pub tag: String,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
    /// Labels set on the image.
    pub labels: BTreeMap<String, String>,
    /// Network mode for `RUN` steps.
    pub network: Option<String>,
    /// `/etc/hosts` entries for `RUN` steps, as (host, ip).
    pub extra_hosts: Vec<(String, String)>,
    /// `/dev/shm` size for `RUN` steps, in bytes.
    pub shm_size: Option<u64>,
    /// The whole build's limit.
    pub timeout: Duration,
}

/// How many of a failed build's last log lines its error carries.
pub const BUILD_LOG_TAIL: usize = 20;

/// One kind of engine call: what an [`EngineError`] says failed, and the `op` label of
/// `berth_docker_api_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineOp {
    /// `connect`.
    Connect,
    /// `negotiate API version`.
    NegotiateApiVersion,
    /// `version`.
    Version,
    /// `list containers`.
    ListContainers,
    /// `list networks`.
    ListNetworks,
    /// `list volumes`.
    ListVolumes,
    /// `list images`.
    ListImages,
    /// `pull image`.
    PullImage,
    /// `inspect image`.
    InspectImage,
    /// `build image`.
    BuildImage,
    /// `tag image`.
    TagImage,
    /// `remove image tag`.
    RemoveImageTag,
    /// `create network`.
    CreateNetwork,
    /// `connect network`.
    ConnectNetwork,
    /// `remove network`.
    RemoveNetwork,
    /// `create volume`.
    CreateVolume,
    /// `remove volume`.
    RemoveVolume,
    /// `create container`.
    CreateContainer,
    /// `start container`.
    StartContainer,
    /// `stop container`.
    StopContainer,
    /// `kill container`.
    KillContainer,
    /// `wait container`.
    WaitContainer,
    /// `remove container`.
    RemoveContainer,
    /// `rename container`.
    RenameContainer,
    /// `inspect container`.
    InspectContainer,
    /// `read logs`.
    ReadLogs,
    /// `exec in container`.
    ExecInContainer,
    /// `watch events`.
    WatchEvents,
    /// `ping` (the liveness check).
    Ping,
}

impl EngineOp {
    /// Every operation, in declaration order.
    pub const ALL: [EngineOp; 29] = [
        EngineOp::Connect,
        EngineOp::NegotiateApiVersion,
        EngineOp::Version,
        EngineOp::ListContainers,
        EngineOp::ListNetworks,
        EngineOp::ListVolumes,
        EngineOp::ListImages,
        EngineOp::PullImage,
        EngineOp::InspectImage,
        EngineOp::BuildImage,
        EngineOp::TagImage,
        EngineOp::RemoveImageTag,
        EngineOp::CreateNetwork,
        EngineOp::ConnectNetwork,
        EngineOp::RemoveNetwork,
        EngineOp::CreateVolume,
        EngineOp::RemoveVolume,
        EngineOp::CreateContainer,
        EngineOp::StartContainer,
        EngineOp::StopContainer,
        EngineOp::KillContainer,
        EngineOp::WaitContainer,
        EngineOp::RemoveContainer,
        EngineOp::RenameContainer,
        EngineOp::InspectContainer,
        EngineOp::ReadLogs,
        EngineOp::ExecInContainer,
        EngineOp::WatchEvents,
        EngineOp::Ping,
    ];

    /// Stable label for metrics (`op="create container"`); never parsed back.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineOp::Connect => "connect",
            EngineOp::NegotiateApiVersion => "negotiate API version",
            EngineOp::Version => "version",
            EngineOp::ListContainers => "list containers",
            EngineOp::ListNetworks => "list networks",
            EngineOp::ListVolumes => "list volumes",
            EngineOp::ListImages => "list images",
            EngineOp::PullImage => "pull image",
            EngineOp::InspectImage => "inspect image",
            EngineOp::BuildImage => "build image",
            EngineOp::TagImage => "tag image",
            EngineOp::RemoveImageTag => "remove image tag",
            EngineOp::CreateNetwork => "create network",
            EngineOp::ConnectNetwork => "connect network",
            EngineOp::RemoveNetwork => "remove network",
            EngineOp::CreateVolume => "create volume",
            EngineOp::RemoveVolume => "remove volume",
            EngineOp::CreateContainer => "create container",
            EngineOp::StartContainer => "start container",
            EngineOp::StopContainer => "stop container",
            EngineOp::KillContainer => "kill container",
            EngineOp::WaitContainer => "wait container",
            EngineOp::RemoveContainer => "remove container",
            EngineOp::RenameContainer => "rename container",
            EngineOp::InspectContainer => "inspect container",
            EngineOp::ReadLogs => "read logs",
            EngineOp::ExecInContainer => "exec in container",
            EngineOp::WatchEvents => "watch events",
            EngineOp::Ping => "ping",
        }
    }

    /// True for calls that create something (a 404 then names what the create needs, never
    /// the object itself).
    pub fn creates(self) -> bool {
        matches!(
            self,
            EngineOp::CreateNetwork
                | EngineOp::CreateVolume
                | EngineOp::CreateContainer
                | EngineOp::ConnectNetwork
        )
    }

    /// True for calls on one container (a 404 is "no such container" only when Docker says so).
    pub fn on_container(self) -> bool {
        matches!(
            self,
            EngineOp::StartContainer
                | EngineOp::StopContainer
                | EngineOp::KillContainer
                | EngineOp::WaitContainer
                | EngineOp::RemoveContainer
                | EngineOp::RenameContainer
                | EngineOp::InspectContainer
                | EngineOp::ExecInContainer
                | EngineOp::ReadLogs
        )
    }
}

impl fmt::Display for EngineOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an engine call failed, classified so callers can treat idempotent outcomes as done.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404: the object does not exist (a remove or stop of it is done).
    #[error("failed to {op} {target}: not found")]
    NotFound {
        /// The operation, e.g. `remove container`.
        op: EngineOp,
        /// The object.
        target: String,
    },
    /// 409: conflict (the name is taken, the object is in use).
    #[error("failed to {op} {target}: conflict: {message}")]
    Conflict {
        /// The operation.
        op: EngineOp,
        /// The object.
        target: String,
        /// The engine's message.
        message: String,
    },
    /// 304: nothing to do (already started or stopped).
    #[error("failed to {op} {target}: not modified")]
    NotModified {
        /// The operation.
        op: EngineOp,
        /// The object.
        target: String,
    },
    /// The engine could not be reached at all (socket missing, refused, timed out).
    #[error("failed to {op}: engine unreachable at {endpoint}")]
    Unreachable {
        /// The operation.
        op: EngineOp,
        /// Where it was tried.
        endpoint: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The call took longer than its timeout.
    #[error("failed to {op} {target}: timed out after {after:?}")]
    Timeout {
        /// The operation.
        op: EngineOp,
        /// The object.
        target: String,
        /// The limit.
        after: Duration,
    },
    /// A build ran and failed (the Dockerfile, a `RUN` step): the engine's message and the
    /// build's last log lines.
    #[error("failed to build image {target}: {message}{}", log_lines(.log))]
    BuildFailed {
        /// The tag being built.
        target: String,
        /// The engine's (or the builder's) message.
        message: String,
        /// The build's last [`BUILD_LOG_TAIL`] output lines, when there were any.
        log: Option<String>,
    },
    /// Anything else the engine refused (bad request, server error).
    #[error("failed to {op} {target}: {message}")]
    Failed {
        /// The operation.
        op: EngineOp,
        /// The object.
        target: String,
        /// The engine's message.
        message: String,
    },
}

impl EngineError {
    /// True for outcomes that mean "already done" for an idempotent step: removing or stopping
    /// something that is gone (404), starting something running or stopping something stopped
    /// (304), creating something that exists (409 on network/volume create).
    pub fn is_already_done(&self) -> bool {
        matches!(
            self,
            EngineError::NotFound { .. } | EngineError::NotModified { .. }
        )
    }

    /// The operation, for the `docker_api_errors_total{op}` metric.
    pub fn op(&self) -> EngineOp {
        match self {
            EngineError::NotFound { op, .. }
            | EngineError::Conflict { op, .. }
            | EngineError::NotModified { op, .. }
            | EngineError::Unreachable { op, .. }
            | EngineError::Timeout { op, .. }
            | EngineError::Failed { op, .. } => *op,
            EngineError::BuildFailed { .. } => EngineOp::BuildImage,
        }
    }

    /// What went wrong, without the operation and its object (the message after
    /// `failed to <op> <target>: `), for a sentence that names them itself.
    pub fn detail(&self) -> String {
        match self {
            EngineError::NotFound { .. } => "not found".into(),
            EngineError::Conflict { message, .. } => format!("conflict: {message}"),
            EngineError::NotModified { .. } => "not modified".into(),
            EngineError::Unreachable { endpoint, .. } => {
                format!("engine unreachable at {endpoint}")
            }
            EngineError::Timeout { after, .. } => format!("timed out after {after:?}"),
            EngineError::Failed { message, .. } | EngineError::BuildFailed { message, .. } => {
                message.clone()
            }
        }
    }

    /// A failed build's last output lines.
    pub fn build_log(&self) -> Option<&str> {
        match self {
            EngineError::BuildFailed { log, .. } => log.as_deref(),
            _ => None,
        }
    }
}

/// The build log as the display of [`EngineError::BuildFailed`] appends it: on lines of its own.
fn log_lines(log: &Option<String>) -> String {
    log.as_deref().map(|l| format!("\n{l}")).unwrap_or_default()
}

/// Result of an engine call.
pub type EngineResult<T> = Result<T, EngineError>;

/// The Docker engine, as berth uses it. One method = one API call. Implementations must be
/// cheap to clone-share (`Arc`) and safe to call concurrently.
pub trait Engine: Send + Sync + 'static {
    /// Version and endpoint.
    fn info(&self) -> impl Future<Output = EngineResult<EngineInfo>> + Send;
    /// All containers (running or not) with at least one of the label filters
    /// (`key=value`), e.g. `berth.managed=true`, `com.docker.compose.project=shop`.
    fn list_containers(
        &self,
        label_filters: &[String],
    ) -> impl Future<Output = EngineResult<Vec<ContainerSummary>>> + Send;
    /// All networks.
    fn list_networks(&self) -> impl Future<Output = EngineResult<Vec<NetworkSummary>>> + Send;
    /// All volumes.
    fn list_volumes(&self) -> impl Future<Output = EngineResult<Vec<VolumeSummary>>> + Send;
    /// All local images.
    fn list_images(&self) -> impl Future<Output = EngineResult<Vec<ImageSummary>>> + Send;
    /// Pulls `reference` (`repo:tag` or `repo@digest`), the variant for `platform`
    /// (`linux/arm64`; `None`: the engine's own), and returns the local image ID.
    fn pull_image(
        &self,
        reference: &str,
        platform: Option<&str>,
    ) -> impl Future<Output = EngineResult<String>> + Send;
    /// Builds an image from `spec` (the context tarred in-process and streamed) and tags it
    /// `spec.tag`; returns the image ID. Build output goes to the logs at debug level; a failed
    /// build's `Failed` message ends with its last [`BUILD_LOG_TAIL`] log lines.
    fn build_image(&self, spec: &BuildSpec) -> impl Future<Output = EngineResult<String>> + Send;
    /// Creates a network; returns its ID.
    fn create_network(
        &self,
        spec: &NetworkCreate,
    ) -> impl Future<Output = EngineResult<String>> + Send;
    /// Creates a volume.
    fn create_volume(&self, spec: &VolumeCreate) -> impl Future<Output = EngineResult<()>> + Send;
    /// Creates a container (joined to its first network; the others are connected too
    /// before this returns); returns its ID.
    fn create_container(
        &self,
        spec: &ContainerCreate,
    ) -> impl Future<Output = EngineResult<String>> + Send;
    /// Connects an existing container to one more network, with that attachment's aliases
    /// and addresses (what a create does for every network after the first).
    fn connect_network(
        &self,
        id: &str,
        attach: &NetworkAttach,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Starts a container.
    fn start_container(&self, id: &str) -> impl Future<Output = EngineResult<()>> + Send;
    /// Stops a container: `signal` (default SIGTERM), then SIGKILL after `grace`.
    fn stop_container(
        &self,
        id: &str,
        grace: Duration,
        signal: Option<&str>,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Removes a stopped container (never its volumes).
    fn remove_container(&self, id: &str) -> impl Future<Output = EngineResult<()>> + Send;
    /// Removes a network (refused while a container is attached).
    fn remove_network(&self, name: &str) -> impl Future<Output = EngineResult<()>> + Send;
    /// Removes a volume and its data (refused while a container uses it; `berth prune
    /// --volumes` only).
    fn remove_volume(&self, name: &str) -> impl Future<Output = EngineResult<()>> + Send;
    /// Renames a container.
    fn rename_container(
        &self,
        id: &str,
        new_name: &str,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// The last `lines` lines of a container's output (stdout and stderr interleaved).
    fn logs_tail(
        &self,
        id: &str,
        lines: usize,
    ) -> impl Future<Output = EngineResult<String>> + Send;
    /// A container's output line by line (`berth logs`): what `req` asks for, and with
    /// `follow` more until the container stops or the receiver is dropped.
    fn logs(
        &self,
        id: &str,
        req: &logs::LogsRequest,
    ) -> impl Future<Output = EngineResult<tokio::sync::mpsc::Receiver<EngineResult<logs::LogLine>>>>
    + Send;
    /// Everything inspect says about one container that probes and readiness need.
    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = EngineResult<ContainerDetails>> + Send;
    /// A container's effective configuration and its image's defaults (inspect of both), to
    /// decide whether a container docker compose made can be adopted (`reconcile::adopt`).
    fn container_config(
        &self,
        id: &str,
    ) -> impl Future<Output = EngineResult<effective::EffectiveConfig>> + Send;
    /// Runs `cmd` (argv, no shell) in the running container `id` through Docker's exec API and
    /// waits for it: its exit code and output tail. Past `timeout` this fails with
    /// [`EngineError::Timeout`]; the process itself may live on in the container (Docker has
    /// no call to kill an exec). A stopped container is a `Conflict`.
    fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> impl Future<Output = EngineResult<ExecOutcome>> + Send;
    /// Tags the image `image_id` as `repo:tag` (moving the tag if it named another image).
    /// berth pins a previous revision's image this way, so that `docker image prune -a` (which
    /// only removes images without tags and without containers) cannot take it away.
    fn tag_image(
        &self,
        image_id: &str,
        repo: &str,
        tag: &str,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Removes the tag `reference` (`repo:tag`), never forcing: an image with other references
    /// keeps them and stays; when it was the image's last reference, the image is deleted too
    /// unless a container (even a stopped one) uses it, which is a `Conflict` and leaves the
    /// tag in place; a deleted built image takes its untagged build parents along, as
    /// `docker rmi` does. A missing tag is `NotFound` (already done).
    fn remove_image_tag(&self, reference: &str) -> impl Future<Output = EngineResult<()>> + Send;
    /// Engine events since `since` (unix seconds) for containers carrying `label_filter`;
    /// the stream ends when the connection drops.
    fn events(
        &self,
        since: i64,
        label_filter: &str,
    ) -> impl Future<Output = EngineResult<tokio::sync::mpsc::Receiver<EngineResult<EngineEvent>>>> + Send;
}
