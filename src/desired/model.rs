//! The typed, validated desired state: what every later stage (plan, rollout, status) reads.
//!
//! Pure data, built by `convert` from the merged and interpolated YAML tree and checked by
//! `validate`. Collections are ordered maps so that iteration, hashing and printing are
//! deterministic. Field names follow the Compose Specification; berth's own policy is in
//! [`BerthPolicy`] and [`RolloutPolicy`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::diag::Loc;

/// Every project found under the desired-state root, by project name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DesiredState {
    /// Projects by name.
    pub projects: BTreeMap<String, Project>,
    /// The fleet this state belongs to, when the root has a hosts file (`berth-hosts.yaml`):
    /// the hosts, their waves, where each project lands and which host loaded it.
    pub fleet: Option<Fleet>,
}

/// One Compose project: a directory with a Compose file (plus its override).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// Project name, by compose's precedence (see [`NameSource`]).
    pub name: String,
    /// Where the name came from (a takeover warns when compose containers of this working
    /// directory run under another name).
    pub name_source: NameSource,
    /// The project directory, absolute.
    pub dir: PathBuf,
    /// The Compose files read, in merge order, relative to the desired-state root.
    pub files: Vec<String>,
    /// Active services (inactive profiles are left out), by name.
    pub services: BTreeMap<String, Service>,
    /// Services skipped because none of their profiles is active.
    pub inactive_services: Vec<String>,
    /// Top-level networks; `default` is always present.
    pub networks: BTreeMap<String, Network>,
    /// Top-level named volumes.
    pub volumes: BTreeMap<String, Volume>,
    /// Top-level secrets.
    pub secrets: BTreeMap<String, FileObject>,
    /// Top-level configs.
    pub configs: BTreeMap<String, FileObject>,
    /// `x-berth.placement`: which hosts of the fleet run this project.
    pub placement: Option<Placement>,
}

/// A project's `x-berth.placement`: the hosts named, plus every host carrying all the labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Hosts by name, each with where it was written.
    pub hosts: Vec<(String, Loc)>,
    /// Label selector: a host matches when it has every pair.
    pub labels: BTreeMap<String, String>,
    /// Where `labels:` was written (for "matches no host").
    pub labels_loc: Option<Loc>,
    /// Where `placement:` was written.
    pub loc: Loc,
}

/// The hosts file (`berth-hosts.yaml` at the desired-state root): the fleet's hosts, the order
/// in which they take a new revision, and how long a wave soaks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostsFile {
    /// The file, relative to the root (for diagnostics).
    pub file: String,
    /// Hosts by name.
    pub hosts: BTreeMap<String, Host>,
    /// Waves in order, each a list of host names; every host is in exactly one. Empty: no
    /// waves declared (every host rolls out on its own, at once).
    pub waves: Vec<Vec<String>>,
    /// How long every host of earlier waves must report a revision ready before a later wave
    /// starts it.
    pub soak: Duration,
}

impl HostsFile {
    /// The wave `host` is in (0 first); `None` when no waves are declared or it is in none.
    pub fn wave_of(&self, host: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.iter().any(|h| h == host))
    }
}

/// One host of the hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Its name (what `--host` gives).
    pub name: String,
    /// Labels that placements select on.
    pub labels: BTreeMap<String, String>,
    /// Its berth's status API base URL (`http://10.0.0.2:9469`), which peers read.
    pub status_url: Option<String>,
    /// Projects listed under the host (`projects:`), each with where it was written.
    pub projects: Vec<(String, Loc)>,
    /// Where the host's entry was written.
    pub loc: Loc,
}

/// The fleet view of a loaded desired state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fleet {
    /// The hosts file.
    pub hosts: HostsFile,
    /// Every project of the repository with the hosts it lands on (in the hosts file's
    /// order), including projects not loaded for this host.
    pub placement: BTreeMap<String, Vec<String>>,
    /// The host this state was loaded for (`--host`, or the machine's name); `None`: every
    /// host (`--all-hosts`), nothing filtered.
    pub this_host: Option<String>,
}

/// `pull_policy:` of a service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// `missing` / `if_not_present` (compose's default): pull when the image is absent.
    #[default]
    Missing,
    /// `always`: pull before every rollout of the service, even when present.
    Always,
    /// `never`: never pull; the image must be on the host (built or loaded).
    Never,
    /// `build`: build the image (needs `build:`), never pull it.
    Build,
    /// `daily` / `weekly` / `every_<duration>`: pull when present but older than this.
    Every(Duration),
}

/// Where a project's name came from, in compose's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// `COMPOSE_PROJECT_NAME` in berth's environment (only when the root is one project).
    Environment,
    /// `COMPOSE_PROJECT_NAME` in the project's `.env`.
    DotEnv,
    /// The top-level `name:`.
    NameKey,
    /// The project directory's name, normalised.
    Directory,
}

/// One service of a project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Where the service is defined (its key), for later diagnostics.
    pub loc: Loc,
    /// Where each of the service's keys has its value, for diagnostics about a field.
    #[serde(skip)]
    pub field_locs: BTreeMap<String, Loc>,
    /// The image reference as written (after interpolation).
    pub image: Option<String>,
    /// `build:`: the image is built from the repository.
    pub build: Option<Build>,
    /// Overrides the image's CMD.
    pub command: Option<Vec<String>>,
    /// Overrides the image's ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// Environment after `env_file`, `environment` and `--env-dir`, by name.
    pub environment: BTreeMap<String, EnvValue>,
    /// Published ports.
    pub ports: Vec<Port>,
    /// Exposed container ports (`expose:`), as written (`80`, `8000-8010/udp`).
    pub expose: Vec<String>,
    /// Mounts.
    pub volumes: Vec<Mount>,
    /// Networks the service joins, by network key.
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// `network_mode:` (`host`, `none`, `bridge`, `service:x`, `container:x`).
    pub network_mode: Option<String>,
    /// Dependencies by service name, explicit and implicit.
    pub depends_on: BTreeMap<String, Dependency>,
    /// Docker healthcheck.
    pub healthcheck: Option<Healthcheck>,
    /// Container restart policy (`restart:`, or `deploy.restart_policy`).
    pub restart: Restart,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// `user:`.
    pub user: Option<String>,
    /// `working_dir:`.
    pub working_dir: Option<String>,
    /// `hostname:`.
    pub hostname: Option<String>,
    /// `extra_hosts:` as `host:ip` pairs.
    pub extra_hosts: Vec<(String, String)>,
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
    /// `tmpfs:` mount points (with options after `:`).
    pub tmpfs: Vec<String>,
    /// `ulimits:` by name.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `logging:`.
    pub logging: Option<Logging>,
    /// `stop_grace_period:`; Docker's default (10 s) when unset.
    pub stop_grace_period: Option<Duration>,
    /// `stop_signal:`.
    pub stop_signal: Option<String>,
    /// `init:`.
    pub init: Option<bool>,
    /// `platform:` (`linux/arm64`): which image variant to pull and run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `runtime:` (`runc`, `nvidia`…): HostConfig.Runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `security_opt:` (`no-new-privileges:true`, `seccomp=…`): HostConfig.SecurityOpt.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `pull_policy:`: when the image is pulled.
    pub pull_policy: PullPolicy,
    /// `shm_size:` in bytes.
    pub shm_size: Option<u64>,
    /// `sysctls:`.
    pub sysctls: BTreeMap<String, String>,
    /// Secrets mounted into the container.
    pub secrets: Vec<FileMount>,
    /// Configs mounted into the container.
    pub configs: Vec<FileMount>,
    /// `profiles:`.
    pub profiles: Vec<String>,
    /// `container_name:`.
    pub container_name: Option<String>,
    /// `deploy.replicas` (default 1).
    pub replicas: u32,
    /// `deploy.resources.limits`.
    pub limits: Limits,
    /// How a new revision replaces the running one (`deploy.update_config` + `x-berth`).
    pub rollout: RolloutPolicy,
    /// How a revert is carried out (`deploy.rollback_config`).
    pub rollback: UpdatePolicy,
    /// berth's own policy (`x-berth`, project defaults merged under the service's).
    pub berth: BerthPolicy,
    /// A one-shot job: `restart: "no"` and some dependent waits for
    /// `service_completed_successfully`. Jobs run once per revision.
    pub job: bool,
    /// The revision identity: see `hash.rs` for what is in and out.
    pub spec_hash: String,
}

/// An environment value; `secret` values came from an env file, `.env` or `--env-dir` and are
/// never printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvValue {
    /// The value.
    #[serde(skip)]
    pub value: String,
    /// True when the value must never appear in output.
    pub secret: bool,
}

/// `build:`: how berth builds the service's image from the desired-state repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// Build context, as written.
    pub context: String,
    /// The context directory where it is read (absolute, symlinks resolved; inside the
    /// desired-state root). In a git source: inside the checked-out commit.
    pub context_dir: PathBuf,
    /// Dockerfile path relative to the context, as written (`Dockerfile` when unset).
    pub dockerfile: Option<String>,
    /// `dockerfile_inline`: the Dockerfile's text (wins over `dockerfile`). Also the text of
    /// a `dockerfile` that lies outside the context (inside the root): the engine only sees
    /// the context, so such a Dockerfile is sent by its text.
    pub dockerfile_inline: Option<String>,
    /// Build arguments (`args`); a key without a value takes it from the variables.
    pub args: BTreeMap<String, String>,
    /// Target stage.
    pub target: Option<String>,
    /// Labels set on the built image.
    pub labels: BTreeMap<String, String>,
    /// Network mode for `RUN` steps.
    pub network: Option<String>,
    /// `/etc/hosts` entries for `RUN` steps, as (host, ip).
    pub extra_hosts: Vec<(String, String)>,
    /// `/dev/shm` size for `RUN` steps, in bytes.
    pub shm_size: Option<u64>,
    /// The content hash of the context after `.dockerignore`, the Dockerfile, args, target,
    /// labels and the `image:` name (64 hex digits; empty for inline documents, which have no
    /// files). See [`crate::desired::context`].
    pub content_hash: String,
    /// Digests of the parts of that hash, to say what changed between two builds.
    pub parts: BuildParts,
}

/// Digests (16 hex digits each) of the three parts of a build's identity: what `berth plan`
/// compares with the running revision's to say why an image is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BuildParts {
    /// The Dockerfile: its path and text (or `dockerfile_inline`).
    pub dockerfile: String,
    /// Every path the context sends (after `.dockerignore`): names, modes, contents.
    pub files: String,
    /// Build args, target, labels and the `image:` name.
    pub settings: String,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// One published or container port mapping. Ranges are expanded to one entry per port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Port {
    /// Host IP to bind (`127.0.0.1`, `::1`); `None` = all addresses.
    pub host_ip: Option<String>,
    /// Host port; `None` = not published on a fixed port (ephemeral).
    pub published: Option<u16>,
    /// The last host port of a host range published onto one container port
    /// (`8000-8010:80`: the engine picks a free one); `published` is the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_end: Option<u16>,
    /// Container port.
    pub target: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Where it was written.
    #[serde(skip)]
    pub loc: Loc,
}

/// Kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// Host path.
    Bind,
    /// Named or anonymous volume.
    Volume,
    /// tmpfs.
    Tmpfs,
}

/// One mount (`volumes:` entry, short or long syntax, normalised).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Mount {
    /// Kind.
    pub kind: MountKind,
    /// Volume name or host path (absolute after resolution); `None` for anonymous volumes
    /// and tmpfs.
    pub source: Option<String>,
    /// Path inside the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Bind propagation or SELinux relabel options, volume `nocopy`, tmpfs size/mode, as
    /// `key=value` strings in a fixed order.
    pub options: Vec<String>,
}

/// How a service joins one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceNetwork {
    /// Extra DNS names on that network.
    pub aliases: Vec<String>,
    /// Static IPv4 address.
    pub ipv4_address: Option<String>,
    /// Static IPv6 address.
    pub ipv6_address: Option<String>,
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers are running.
    ServiceStarted,
    /// The dependency is healthy (Docker healthcheck).
    ServiceHealthy,
    /// The dependency (a job) exited 0.
    ServiceCompletedSuccessfully,
}

/// One `depends_on` edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The condition to wait for.
    pub condition: Condition,
    /// `required: false` lets the dependent start when the dependency is absent.
    pub required: bool,
    /// `restart: true` restarts the dependent when the dependency is updated.
    pub restart: bool,
    /// Derived from `links`, `volumes_from` or `network_mode: service:x`.
    pub implicit: bool,
    /// Where it was written.
    #[serde(skip)]
    pub loc: Loc,
}

/// A Docker healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// The test: `["CMD", ...]`, `["CMD-SHELL", "..."]` (a string is CMD-SHELL), or
    /// `["NONE"]` when disabled.
    pub test: Vec<String>,
    /// Interval between checks.
    pub interval: Option<Duration>,
    /// Timeout of one check.
    pub timeout: Option<Duration>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<u32>,
    /// Grace period after start.
    pub start_period: Option<Duration>,
    /// Interval during the start period.
    pub start_interval: Option<Duration>,
}

impl Healthcheck {
    /// True when the image's healthcheck is switched off (`disable: true` or `test: ["NONE"]`).
    pub fn disabled(&self) -> bool {
        self.test.first().is_some_and(|t| t == "NONE")
    }
}

/// Container restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Never restart (`"no"`): jobs.
    No,
    /// Always.
    Always,
    /// On non-zero exit, up to `max` times.
    OnFailure {
        /// Maximum retries; `None` = unlimited.
        max: Option<u32>,
    },
    /// Always, unless stopped by hand.
    UnlessStopped,
}

/// A ulimit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ulimit {
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// `logging:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logging {
    /// Driver name.
    pub driver: Option<String>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

/// A secret or config mounted into a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMount {
    /// The top-level secret/config name.
    pub source: String,
    /// Path in the container (secrets default to `/run/secrets/<source>`, configs to `/<source>`).
    pub target: String,
    /// Owner uid.
    pub uid: Option<String>,
    /// Owner gid.
    pub gid: Option<String>,
    /// File mode.
    pub mode: Option<u32>,
}

/// A top-level secret or config: berth supports `file:`, `environment:` and (configs)
/// `content:`; `external:` ones only while no service uses them (berth has no Swarm store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileObject {
    /// Absolute host path, for `file:`.
    pub file: Option<PathBuf>,
    /// Environment variable name, for `environment:`.
    pub environment: Option<String>,
    /// The text itself, for a config's `content:` (interpolated). The executor writes it to
    /// a file under the data directory and mounts that, as compose does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `external: true`: declared for Swarm; a service that uses it is refused.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

/// `deploy.resources.limits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Limits {
    /// CPUs (fractional).
    pub cpus: Option<f64>,
    /// Memory in bytes.
    pub memory: Option<u64>,
    /// Maximum number of processes.
    pub pids: Option<i64>,
}

/// Replacement order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// New container beside the old one, then swap.
    StartFirst,
    /// Old container stopped (and kept) first.
    StopFirst,
}

/// What to do when a new revision does not become ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// Revert to the previous stable revision (berth's default).
    Rollback,
    /// Stop rolling further replicas; leave things as they are.
    Pause,
    /// Carry on regardless.
    Continue,
}

/// `deploy.update_config` / `deploy.rollback_config`, as berth reads them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UpdatePolicy {
    /// Replicas replaced at a time.
    pub parallelism: u32,
    /// Pause between batches.
    pub delay: Duration,
    /// Explicit order; `None` = berth chooses (docs/rollouts.md#one-rollout-step-by-step).
    pub order: Option<Order>,
    /// On failure.
    pub failure_action: FailureAction,
    /// Failed-replica share tolerated before the action applies.
    pub max_failure_ratio: f64,
}

/// The rollout policy of a service: `update_config` plus the readiness window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RolloutPolicy {
    /// Batching, order and failure action.
    pub update: UpdatePolicy,
    /// Must stay ready this long (`x-berth.min_ready`, else `update_config.monitor`).
    pub min_ready: Duration,
    /// Not ready by then = failed.
    pub progress_deadline: Duration,
}

/// berth's own per-service policy (`x-berth`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BerthPolicy {
    /// Readiness probe run by berth.
    pub readiness: Option<Probe>,
    /// Liveness probe run by berth after the rollout.
    pub liveness: Option<Probe>,
    /// Revert automatically on failure (`x-berth.auto_revert`, or
    /// `update_config.failure_action: rollback`).
    pub auto_revert: bool,
    /// One-shot gate after the service is ready.
    pub smoke: Option<Smoke>,
    /// One-shot gate before the first replacement of a revision (e.g. a database backup).
    pub pre_deploy: Option<Smoke>,
    /// Keep the service exactly as it runs now.
    pub hold: bool,
    /// The limit of one build of the service's image (`build:`); a build that takes longer
    /// fails.
    pub build_timeout: Duration,
    /// Image update automation (`x-berth.update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<crate::update::spec::UpdateSpec>,
    /// Port handoff (`x-berth.handoff`): the published ports are held by berth's proxy, not by
    /// the containers, so the service can be replaced start-first and run several replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
}

/// `x-berth.handoff`: which published ports berth's proxy holds, and how it hands them over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handoff {
    /// One entry per published port the proxy holds (in the service's `ports:` order).
    pub ports: Vec<HandoffPort>,
    /// How long an old replica's connections may take to finish after the switch before they
    /// are closed (`drain_timeout`, default `stop_grace_period`, else 10 s).
    pub drain_timeout: Duration,
}

/// One published port held by the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffPort {
    /// Host IP the proxy binds (`None` = all addresses), as in `ports:`.
    pub host_ip: Option<String>,
    /// Host port the proxy binds.
    pub published: u16,
    /// Container port the proxy forwards to.
    pub target: u16,
    /// HTTP (per request) or TCP (per connection).
    pub mode: HandoffMode,
    /// TCP mode: send a PROXY protocol v2 header so the backend sees the client address.
    pub proxy_protocol: bool,
}

/// How the proxy forwards one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandoffMode {
    /// HTTP/1.1 reverse proxy: each request to a ready replica, keep-alive kept across a
    /// switch, WebSocket upgrades, `X-Forwarded-*` and `Forwarded`.
    Http,
    /// TCP: each new connection to a ready replica; old connections drain.
    Tcp,
}

impl HandoffMode {
    /// Stable label (`http`, `tcp`) for metrics, routes and docs; never parsed from prose.
    pub fn as_label(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Tcp => "tcp",
        }
    }
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeCheck {
    /// HTTP GET.
    Http {
        /// Container port.
        port: u16,
        /// Request path.
        path: String,
        /// Accepted status codes, inclusive.
        status: (u16, u16),
        /// Required substring of the body.
        body_contains: Option<String>,
    },
    /// TCP connect.
    Tcp {
        /// Container port.
        port: u16,
    },
    /// Command run in the container (Docker exec API).
    Exec {
        /// argv.
        command: Vec<String>,
    },
}

/// A berth probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Probe {
    /// The check.
    pub check: ProbeCheck,
    /// Time between checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive successes to count as passing.
    pub success_threshold: u32,
    /// Consecutive failures to count as failing.
    pub failure_threshold: u32,
}

/// `x-berth.smoke` / `x-berth.pre_deploy`: a one-shot gate container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Smoke {
    /// Image (defaults to the service's own).
    pub image: Option<String>,
    /// Command.
    pub command: Vec<String>,
    /// Time limit.
    pub timeout: Duration,
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Network {
    /// Engine-side name (`<project>_<key>` unless `name:` or external).
    pub name: String,
    /// Driver.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Created outside berth; never created or removed by it.
    pub external: bool,
    /// No outside connectivity.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `ipam:` (driver, config subnets): what a network create sends as IPAM.
    pub ipam: Option<Ipam>,
    /// `enable_ipv6: true`.
    pub enable_ipv6: bool,
    /// `attachable: true`.
    pub attachable: bool,
}

/// A network's `ipam:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ipam {
    /// `driver:` (engine default when unset).
    pub driver: Option<String>,
    /// `config:` pools.
    pub config: Vec<IpamPool>,
    /// `options:`.
    pub options: BTreeMap<String, String>,
}

/// One `ipam.config` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpamPool {
    /// `subnet:` (CIDR).
    pub subnet: Option<String>,
    /// `ip_range:`.
    pub ip_range: Option<String>,
    /// `gateway:`.
    pub gateway: Option<String>,
    /// `aux_addresses:`.
    pub aux_addresses: BTreeMap<String, String>,
}

/// A top-level named volume. berth never deletes volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Engine-side name (`<project>_<key>` unless `name:` or external).
    pub name: String,
    /// Driver.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Created outside berth.
    pub external: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}
