//! The production [`Engine`]: Docker's HTTP API through bollard.
//!
//! Only translation lives here: engine-neutral specs become bollard bodies, bollard's answers
//! become engine-neutral summaries, and bollard's errors become classified [`EngineError`]s
//! (404 → `NotFound`, 409 → `Conflict`, 304 → `NotModified`, connection failures →
//! `Unreachable`, our deadline → `Timeout`, anything else → `Failed` with the engine's message).
//!
//! The client is built lazily: [`DockerEngine::connect`] only parses the endpoint, and the first
//! call builds the client and negotiates the API version (Debian's Docker 20.10 speaks 1.41,
//! bollard defaults to something newer). A failed first contact is not cached, so a berth that
//! starts before Docker just sees `Unreachable` until the engine is up.
//!
//! Every API call is bounded by a deadline (30 s by default; `stop` adds the grace period, `pull`
//! has its own, longer one) and logs one `debug` line with its op, target and duration.
//!
//! Where Docker and the trait disagree, this module bends Docker, never the trait:
//! - bollard hands a 304 (start a running container, stop a stopped one) back as success, so
//!   those calls return `Ok(())` here, not `NotModified`; both mean "already done".
//! - Docker ANDs several `label` filters; `list_containers` makes one call per filter and
//!   merges the answers by ID to get the trait's "any of these labels".
//! - Before API 1.42 `stop` takes no signal; with a signal we kill with it, wait up to the
//!   grace period, then SIGKILL (what the engine's stop does itself on newer APIs).
//! - Before API 1.44 Docker creates a second network with a taken name unless the request
//!   says `CheckDuplicate`, which bollard's newer model no longer has; we add it to the body.
//! - `exec` is three API calls (create, start attached, inspect) under one deadline, the
//!   caller's; on timeout the command keeps running in the container (the API cannot kill an
//!   exec) and the call fails with `Timeout`.
//! - Pulls and builds send the registry credentials [`super::auth`] finds (read afresh for
//!   each); a pull or base image the registry refuses fails with a message naming the registry
//!   and where berth looked, never the credentials.
//! - `remove_image_tag` is `DELETE /images/{ref}` with `force=false, noprune=true`: it untags
//!   an image that has other references, deletes one that has none left, and answers 409 when
//!   that last reference belongs to an image a container uses.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerSummaryHealthStatusEnum, ContainerSummaryStateEnum, EndpointIpamConfig,
    EndpointSettings, EventMessage, HealthConfig, HealthStatusEnum, HostConfig,
    HostConfigLogConfig, Ipam, IpamConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType, MountVolumeOptions,
    NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig,
    PortBinding as BollardPortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    RenameContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
    TagImageOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, BollardRequest, ClientVersion, Docker};
use futures_util::StreamExt;
use tokio::sync::{OnceCell, mpsc};

use super::auth::{self, Auth, Lookup};
use super::{
    Attachments, BUILD_LOG_TAIL, BuildSpec, ContainerCreate, ContainerDetails, ContainerSummary,
    EXEC_OUTPUT_LIMIT, Engine, EngineError, EngineEvent, EngineInfo, EngineOp, EngineResult,
    ExecOutcome, Health, ImageSummary, IpamSpec, MountSpec, NetworkCreate, NetworkSummary,
    PortBinding, RunState, VolumeCreate, VolumeSummary,
};

/// Where Docker listens when neither `host` nor `DOCKER_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Deadline of one API call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of one image pull (the whole progress stream).
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// Capacity of the channel `events` forwards into.
pub const EVENT_CHANNEL: usize = 256;

/// bollard's own per-request limit; ours (per call, see above) is the one that matters, so
/// this only has to stay out of its way (a stop can legitimately take its whole grace period).
const BOLLARD_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    /// A unix socket path.
    Unix(String),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

/// Docker through bollard. Cheap to clone; clones share one client.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    endpoint: String,
    transport: Transport,
    timeout: Duration,
    pull_timeout: Duration,
    client: Arc<OnceCell<Docker>>,
    /// API calls made through [`DockerEngine::call`] (benchmarks and metrics read it).
    calls: Arc<std::sync::atomic::AtomicU64>,
    /// Failed calls by operation (`berth_docker_api_errors_total{op}`).
    errors: Arc<std::sync::Mutex<BTreeMap<EngineOp, u64>>>,
    /// Registry credentials for pulls and builds (`None`: no config directory, anonymous).
    auth: Option<Auth>,
}

impl DockerEngine {
    /// Prepares a client for `host` (`unix:///path` or `tcp://host:port`), else `DOCKER_HOST`,
    /// else [`DEFAULT_HOST`]. Nothing is contacted yet: the first call connects and negotiates
    /// the API version. Fails only for endpoints berth cannot speak to (TLS, ssh).
    pub fn connect(host: Option<&str>) -> Result<Self, EngineError> {
        let from_env = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        let host = host
            .map(str::to_owned)
            .or(from_env)
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let unsupported = |why: &str| EngineError::Failed {
            op: EngineOp::Connect,
            target: host.clone(),
            message: why.to_owned(),
        };
        let transport = if let Some(path) = host.strip_prefix("unix://") {
            Transport::Unix(path.to_owned())
        } else if host.starts_with('/') {
            Transport::Unix(host.clone())
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
                return Err(unsupported(
                    "DOCKER_TLS_VERIFY is set, but berth speaks to tcp:// endpoints without TLS only",
                ));
            }
            Transport::Tcp(addr.trim_end_matches('/').to_owned())
        } else {
            return Err(unsupported(
                "unsupported endpoint: use unix:///path/to/docker.sock or tcp://host:port",
            ));
        };
        let endpoint = match &transport {
            Transport::Unix(path) => format!("unix://{path}"),
            Transport::Tcp(addr) => format!("tcp://{addr}"),
        };
        Ok(DockerEngine {
            endpoint,
            transport,
            timeout: DEFAULT_TIMEOUT,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
            client: Arc::new(OnceCell::new()),
            calls: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            errors: Arc::default(),
            auth: Auth::from_env(),
        })
    }

    /// Sets the deadline of one API call (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the deadline of one image pull (default [`DEFAULT_PULL_TIMEOUT`]).
    pub fn with_pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// Takes registry credentials from `auth` instead of the Docker CLI's config directory
    /// (`DOCKER_CONFIG`, `~/.docker`); `None` pulls and builds anonymously.
    pub fn with_auth(mut self, auth: Option<Auth>) -> Self {
        self.auth = auth;
        self
    }

    /// Where the engine is (`unix:///var/run/docker.sock`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The client, built and version-negotiated on first use.
    async fn client(&self, op: EngineOp) -> EngineResult<Docker> {
        let docker = self
            .client
            .get_or_try_init(|| async {
                let started = Instant::now();
                let built = match &self.transport {
                    Transport::Unix(path) => Docker::connect_with_unix(
                        path,
                        BOLLARD_TIMEOUT.as_secs(),
                        API_DEFAULT_VERSION,
                    ),
                    Transport::Tcp(addr) => Docker::connect_with_http(
                        addr,
                        BOLLARD_TIMEOUT.as_secs(),
                        API_DEFAULT_VERSION,
                    ),
                };
                let result = match built {
                    Ok(docker) => {
                        match tokio::time::timeout(self.timeout, docker.negotiate_version()).await {
                            Ok(Ok(docker)) => Ok(docker),
                            Ok(Err(e)) => {
                                Err(self.classify(EngineOp::NegotiateApiVersion, &self.endpoint, e))
                            }
                            Err(_) => Err(EngineError::Timeout {
                                op: EngineOp::NegotiateApiVersion,
                                target: self.endpoint.clone(),
                                after: self.timeout,
                            }),
                        }
                    }
                    Err(e) => Err(self.classify(EngineOp::Connect, &self.endpoint, e)),
                };
                tracing::debug!(
                    op = "negotiate API version",
                    target = %self.endpoint,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    outcome = outcome(&result),
                    "engine call"
                );
                self.count_error(&result);
                result
            })
            .await;
        match docker {
            Ok(d) => Ok(d.clone()),
            // Say which call could not be made; the source keeps the first contact's reason.
            Err(EngineError::Unreachable { source, .. }) => Err(EngineError::Unreachable {
                op,
                endpoint: self.endpoint.clone(),
                source,
            }),
            Err(e) => Err(e),
        }
    }

    /// Pings the engine under `limit` in all (connecting and negotiating the version
    /// included): readiness asks this so a frozen engine shows within seconds. Not counted
    /// in [`Self::calls_made`] nor logged per call (it runs every few seconds).
    pub async fn ping_within(&self, limit: Duration) -> EngineResult<()> {
        let ping = async {
            let docker = self.client(EngineOp::Ping).await?;
            docker
                .ping()
                .await
                .map(|_| ())
                .map_err(|e| self.classify(EngineOp::Ping, &self.endpoint, e))
        };
        tokio::time::timeout(limit, ping).await.unwrap_or_else(|_| {
            Err(EngineError::Timeout {
                op: EngineOp::Ping,
                target: self.endpoint.clone(),
                after: limit,
            })
        })
    }

    /// How many API calls this engine (and its clones) made, not counting the one-time
    /// version negotiation.
    pub fn calls_made(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Failed API calls so far by operation (this engine and its clones), not counting
    /// already-done outcomes (404 on a remove, 304 on a start): running totals for the
    /// `docker_api_errors_total` metric.
    pub fn api_errors(&self) -> Vec<(EngineOp, u64)> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.iter().map(|(op, n)| (*op, *n)).collect()
    }

    fn count_error<T>(&self, result: &EngineResult<T>) {
        if let Err(e) = result
            && !e.is_already_done()
        {
            let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            *errors.entry(e.op()).or_default() += 1;
        }
    }

    /// The negotiated API version (after the first call).
    fn api_version(&self) -> ClientVersion {
        self.client
            .get()
            .map_or(*API_DEFAULT_VERSION, Docker::client_version)
    }

    /// Runs one API call under a deadline, classifies its error and logs it.
    async fn call<T>(
        &self,
        op: EngineOp,
        target: &str,
        limit: Duration,
        fut: impl Future<Output = Result<T, BollardError>>,
    ) -> EngineResult<T> {
        let started = Instant::now();
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(op, target, e)),
            Err(_) => Err(EngineError::Timeout {
                op,
                target: target.to_owned(),
                after: limit,
            }),
        };
        tracing::debug!(
            op = op.as_str(),
            target,
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome = outcome(&result),
            "engine call"
        );
        self.count_error(&result);
        result
    }

    /// Sorts a bollard error into the trait's classes.
    fn classify(&self, op: EngineOp, target: &str, err: BollardError) -> EngineError {
        let target = target.to_owned();
        match err {
            BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            } if missing_target(op, &message) => EngineError::NotFound { op, target },
            BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            } => EngineError::Conflict {
                op,
                target,
                message,
            },
            BollardError::DockerResponseServerError {
                status_code: 304, ..
            } => EngineError::NotModified { op, target },
            BollardError::DockerResponseServerError { message, .. }
            | BollardError::DockerStreamError { error: message } => EngineError::Failed {
                op,
                target,
                message,
            },
            BollardError::RequestTimeoutError => EngineError::Timeout {
                op,
                target,
                after: BOLLARD_TIMEOUT,
            },
            e @ (BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)) => EngineError::Unreachable {
                op,
                endpoint: self.endpoint.clone(),
                source: Box::new(e),
            },
            other => EngineError::Failed {
                op,
                target,
                message: other.to_string(),
            },
        }
    }

    /// Stop for engines before API 1.42, whose stop call takes no signal: kill with `signal`,
    /// wait up to `grace` for the exit, then SIGKILL and wait for that.
    /// `POST /networks/{network}/connect` for container `id` (`name` for errors).
    async fn join_network(
        &self,
        docker: &Docker,
        id: &str,
        name: &str,
        n: &super::NetworkAttach,
    ) -> EngineResult<()> {
        let request = NetworkConnectRequest {
            container: id.to_owned(),
            endpoint_config: Some(endpoint_settings(n)),
        };
        let target = format!("{name} to {}", n.network);
        self.call(
            EngineOp::ConnectNetwork,
            &target,
            self.timeout,
            docker.connect_network(&n.network, request),
        )
        .await
    }

    async fn stop_with_kill(
        &self,
        docker: &Docker,
        id: &str,
        grace: Duration,
        signal: &str,
    ) -> EngineResult<()> {
        let kill = |sig: &str| {
            let options = KillContainerOptionsBuilder::new().signal(sig).build();
            let docker = docker.clone();
            async move { docker.kill_container(id, Some(options)).await }
        };
        match self
            .call(EngineOp::KillContainer, id, self.timeout, kill(signal))
            .await
        {
            Err(EngineError::Conflict { message, .. }) if message.contains("is not running") => {
                return Ok(());
            }
            other => other?,
        }
        if self.wait_not_running(docker, id, grace).await? {
            return Ok(());
        }
        match self
            .call(EngineOp::KillContainer, id, self.timeout, kill("SIGKILL"))
            .await
        {
            Err(EngineError::Conflict { message, .. }) if message.contains("is not running") => {
                return Ok(());
            }
            other => other?,
        }
        if self.wait_not_running(docker, id, self.timeout).await? {
            Ok(())
        } else {
            Err(EngineError::Timeout {
                op: EngineOp::StopContainer,
                target: id.to_owned(),
                after: grace + self.timeout,
            })
        }
    }

    /// Waits until the container is not running; `false` when `limit` passed first.
    async fn wait_not_running(
        &self,
        docker: &Docker,
        id: &str,
        limit: Duration,
    ) -> EngineResult<bool> {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let wait = async {
            match docker.wait_container(id, Some(options)).next().await {
                // A non-zero exit comes back as an error; it is an exit all the same.
                None | Some(Ok(_)) | Some(Err(BollardError::DockerContainerWaitError { .. })) => {
                    Ok(())
                }
                Some(Err(e)) => Err(e),
            }
        };
        match self.call(EngineOp::WaitContainer, id, limit, wait).await {
            Ok(()) | Err(EngineError::NotFound { .. }) => Ok(true),
            Err(EngineError::Timeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether a 404 says the call's own object is missing (then the call's intent may already be
/// met), rather than something it needs: a create's image or network, or the network a start
/// wants to join (Docker 20.10 accepts a create on a missing network and fails the start with
/// 404). Those are `Failed`, so that `is_already_done` never waves them through.
fn missing_target(op: EngineOp, message: &str) -> bool {
    if op.creates() {
        return false;
    }
    if op.on_container() {
        return message.to_ascii_lowercase().contains("no such container");
    }
    true
}

fn outcome<T>(result: &EngineResult<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(EngineError::NotFound { .. }) => "not found",
        Err(EngineError::Conflict { .. }) => "conflict",
        Err(EngineError::NotModified { .. }) => "not modified",
        Err(EngineError::Unreachable { .. }) => "unreachable",
        Err(EngineError::Timeout { .. }) => "timeout",
        Err(EngineError::Failed { .. } | EngineError::BuildFailed { .. }) => "failed",
    }
}

fn btree(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

fn hash(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Seconds for Docker's `t`, rounded up so a grace period is never cut short.
fn whole_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Health from the list call's status text (`Up 3 minutes (healthy)`).
pub(crate) fn health_from_status(status: &str) -> Health {
    if status.contains("(unhealthy)") {
        Health::Unhealthy
    } else if status.contains("(healthy)") {
        Health::Healthy
    } else if status.contains("(health: starting)") {
        Health::Starting
    } else {
        Health::None
    }
}

/// Exit code from the list call's status text (`Exited (137) 2 seconds ago`).
pub(crate) fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

fn run_state(state: Option<ContainerSummaryStateEnum>) -> RunState {
    match state {
        Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
        Some(
            ContainerSummaryStateEnum::RUNNING
            | ContainerSummaryStateEnum::RESTARTING
            | ContainerSummaryStateEnum::STOPPING,
        ) => RunState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => RunState::Paused,
        Some(ContainerSummaryStateEnum::REMOVING) => RunState::Removing,
        Some(
            ContainerSummaryStateEnum::EXITED
            | ContainerSummaryStateEnum::DEAD
            | ContainerSummaryStateEnum::EMPTY,
        )
        | None => RunState::Exited,
    }
}

fn container_summary(c: bollard::models::ContainerSummary) -> ContainerSummary {
    let status = c.status.unwrap_or_default();
    // Newer engines (API 1.52+) report health as a field; older ones only in the status text.
    let health = match c.health.and_then(|h| h.status) {
        Some(ContainerSummaryHealthStatusEnum::STARTING) => Health::Starting,
        Some(ContainerSummaryHealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(ContainerSummaryHealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => health_from_status(&status),
    };
    // Links add names like `/other/alias`; the container's own name has no inner '/'.
    let names = c.names.unwrap_or_default();
    let name = names
        .iter()
        .map(|n| n.trim_start_matches('/'))
        .find(|n| !n.contains('/'))
        .or_else(|| names.first().map(|n| n.trim_start_matches('/')))
        .unwrap_or_default()
        .to_owned();
    let mut networks: Vec<String> = c
        .network_settings
        .and_then(|n| n.networks)
        .map(|n| n.into_keys().collect())
        .unwrap_or_default();
    networks.sort();
    // Docker binds published ports at start and lists them only while the container runs
    // (not while it restarts): before that, nothing can be said about them.
    let running = c.state == Some(ContainerSummaryStateEnum::RUNNING);
    let ports = running.then(|| {
        let mut ports: Vec<(u16, String, u16)> = c
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let proto = p.typ.map_or_else(|| "tcp".to_owned(), |t| t.to_string());
                Some((p.private_port, proto, p.public_port?))
            })
            .collect();
        ports.sort();
        ports.dedup();
        ports
    });
    let mounts = c
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let kind = m.typ?.to_string();
            Some((kind, m.destination?))
        })
        .collect();
    ContainerSummary {
        id: c.id.unwrap_or_default(),
        name,
        image_id: c.image_id.unwrap_or_default(),
        labels: btree(c.labels),
        state: run_state(c.state),
        health,
        exit_code: exit_code_from_status(&status),
        networks,
        created: c.created.unwrap_or_default(),
        actual: Some(Attachments { ports, mounts }),
    }
}

fn inspect_state(state: Option<ContainerStateStatusEnum>) -> RunState {
    match state {
        Some(ContainerStateStatusEnum::CREATED) => RunState::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => RunState::Running,
        Some(ContainerStateStatusEnum::PAUSED) => RunState::Paused,
        Some(ContainerStateStatusEnum::REMOVING) => RunState::Removing,
        Some(
            ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::EMPTY,
        )
        | None => RunState::Exited,
    }
}

/// Docker's "never" for a time (`0001-01-01T00:00:00Z`).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn container_details(c: ContainerInspectResponse) -> ContainerDetails {
    let state = c.state.unwrap_or_default();
    let run_state = inspect_state(state.status);
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::None,
    };
    let settings = c.network_settings.unwrap_or_default();
    let ip_addresses = settings
        .networks
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, endpoint)| {
            endpoint
                .ip_address
                .filter(|ip| !ip.is_empty())
                .map(|ip| (name, ip))
        })
        .collect();
    let mut ports: Vec<(u16, String, Option<String>, u16)> = Vec::new();
    for (key, bindings) in settings.ports.unwrap_or_default() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for b in bindings.unwrap_or_default() {
            let Some(host_port) = b.host_port.and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let host_ip = b.host_ip.filter(|ip| !ip.is_empty());
            ports.push((port, proto.to_owned(), host_ip, host_port));
        }
    }
    ports.sort();
    ContainerDetails {
        restart_count: c.restart_count.unwrap_or(0).max(0) as u32,
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        state: run_state,
        health,
        exit_code: (run_state == RunState::Exited)
            .then_some(state.exit_code)
            .flatten(),
        started_at: state.started_at.filter(|t| !t.is_empty() && t != ZERO_TIME),
        network_mode: c
            .host_config
            .and_then(|h| h.network_mode)
            .unwrap_or_default(),
        ip_addresses,
        ports,
        image_id: c.image.unwrap_or_default(),
    }
}

fn engine_event(e: EventMessage) -> EngineEvent {
    let actor = e.actor.unwrap_or_default();
    EngineEvent {
        kind: e.typ.map(|t| t.to_string()).unwrap_or_default(),
        action: e.action.unwrap_or_default(),
        id: actor.id.unwrap_or_default(),
        attributes: btree(actor.attributes),
        time: e.time.unwrap_or_default(),
    }
}

/// A pull the registry refused (401/403, no credentials) says which registry and where berth
/// looked for credentials (never the credentials); other errors pass unchanged.
fn refused(err: EngineError, lookup: Option<&Lookup>) -> EngineError {
    match err {
        EngineError::Failed {
            op,
            target,
            message,
        } if auth::is_denied(&message) => {
            let looked = match lookup {
                Some(l) => format!("registry {} refused access; {}", l.registry, l.trail),
                None => format!(
                    "registry {} refused access; berth has no Docker config directory to take credentials from (set DOCKER_CONFIG or HOME)",
                    auth::registry_of(&target)
                ),
            };
            EngineError::Failed {
                op,
                target,
                message: format!("{message} ({looked})"),
            }
        }
        other => other,
    }
}

/// `repo` → `repo:latest`, as the docker CLI does: the API pulls every tag of an untagged name.
fn pull_reference(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// What a [`MountSpec`]'s options say, whichever syntax (`rshared` or `propagation=rshared`)
/// they came in.
#[derive(Debug, Default, PartialEq, Eq)]
struct MountOptions {
    read_only: bool,
    propagation: Option<String>,
    selinux: Option<String>,
    create_host_path: Option<bool>,
    nocopy: bool,
    subpath: Option<String>,
    size: Option<i64>,
    mode: Option<i64>,
}

fn mount_options(m: &MountSpec) -> Result<MountOptions, String> {
    const PROPAGATION: [&str; 6] = [
        "private", "rprivate", "shared", "rshared", "slave", "rslave",
    ];
    let mut o = MountOptions {
        read_only: m.read_only,
        ..MountOptions::default()
    };
    for option in &m.options {
        let (key, value) = option.split_once('=').unwrap_or((option.as_str(), ""));
        match (key, value) {
            ("ro", "") | ("readonly", "") => o.read_only = true,
            ("rw", "") | ("cached" | "delegated" | "consistent", "") => {}
            ("nocopy", "") => o.nocopy = true,
            (p, "") if PROPAGATION.contains(&p) => o.propagation = Some(p.to_owned()),
            ("propagation", p) if PROPAGATION.contains(&p) => o.propagation = Some(p.to_owned()),
            (s @ ("z" | "Z"), "") | ("selinux", s @ ("z" | "Z")) => o.selinux = Some(s.to_owned()),
            ("create_host_path", "true") => o.create_host_path = Some(true),
            ("create_host_path", "false") => o.create_host_path = Some(false),
            ("subpath", s) if !s.is_empty() => o.subpath = Some(s.to_owned()),
            ("size", s) => {
                o.size = Some(
                    s.parse()
                        .map_err(|_| format!("mount {}: size {s:?} is not bytes", m.target))?,
                );
            }
            ("mode", s) => {
                o.mode = Some(
                    i64::from_str_radix(s, 8)
                        .map_err(|_| format!("mount {}: mode {s:?} is not octal", m.target))?,
                );
            }
            _ => return Err(format!("mount {}: unknown option {option:?}", m.target)),
        }
    }
    Ok(o)
}

fn propagation(p: &str) -> MountBindOptionsPropagationEnum {
    match p {
        "private" => MountBindOptionsPropagationEnum::PRIVATE,
        "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
        "shared" => MountBindOptionsPropagationEnum::SHARED,
        "rshared" => MountBindOptionsPropagationEnum::RSHARED,
        "slave" => MountBindOptionsPropagationEnum::SLAVE,
        "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
        _ => MountBindOptionsPropagationEnum::EMPTY,
    }
}

/// Mounts as Docker wants them: `HostConfig.Mounts`, except binds that may create their host
/// path or need an SELinux relabel, which only `HostConfig.Binds` can express (moby#43483; compose
/// does the same). A bind creates its missing host directory unless `create_host_path=false`.
fn host_mounts(
    mounts: &[MountSpec],
    api: ClientVersion,
) -> Result<(Vec<String>, Vec<Mount>), String> {
    let mut binds = Vec::new();
    let mut out = Vec::new();
    for m in mounts {
        let o = mount_options(m)?;
        match m.kind.as_str() {
            "bind" => {
                let source = m
                    .source
                    .clone()
                    .ok_or_else(|| format!("bind mount {} has no source", m.target))?;
                if o.create_host_path != Some(false) || o.selinux.is_some() {
                    let mut opts = Vec::new();
                    if o.read_only {
                        opts.push("ro".to_owned());
                    }
                    opts.extend(o.propagation.clone());
                    opts.extend(o.selinux.clone());
                    let mut bind = format!("{source}:{}", m.target);
                    if !opts.is_empty() {
                        bind = format!("{bind}:{}", opts.join(","));
                    }
                    binds.push(bind);
                } else {
                    out.push(Mount {
                        typ: Some(MountType::BIND),
                        source: Some(source),
                        target: Some(m.target.clone()),
                        read_only: Some(o.read_only),
                        bind_options: o.propagation.as_deref().map(|p| MountBindOptions {
                            propagation: Some(propagation(p)),
                            ..MountBindOptions::default()
                        }),
                        ..Mount::default()
                    });
                }
            }
            "volume" => {
                if o.subpath.is_some()
                    && api
                        < (ClientVersion {
                            major_version: 1,
                            minor_version: 45,
                        })
                {
                    return Err(format!(
                        "volume mount {}: subpath needs Docker API 1.45 or newer (engine speaks {api})",
                        m.target
                    ));
                }
                out.push(Mount {
                    typ: Some(MountType::VOLUME),
                    source: m.source.clone(),
                    target: Some(m.target.clone()),
                    read_only: Some(o.read_only),
                    volume_options: (o.nocopy || o.subpath.is_some()).then(|| MountVolumeOptions {
                        no_copy: o.nocopy.then_some(true),
                        subpath: o.subpath.clone(),
                        ..MountVolumeOptions::default()
                    }),
                    ..Mount::default()
                });
            }
            "tmpfs" => out.push(Mount {
                typ: Some(MountType::TMPFS),
                target: Some(m.target.clone()),
                read_only: Some(o.read_only),
                tmpfs_options: (o.size.is_some() || o.mode.is_some()).then_some(
                    MountTmpfsOptions {
                        size_bytes: o.size,
                        mode: o.mode,
                        ..MountTmpfsOptions::default()
                    },
                ),
                ..Mount::default()
            }),
            other => return Err(format!("mount {}: unknown kind {other:?}", m.target)),
        }
    }
    Ok((binds, out))
}

fn port_bindings(ports: &[PortBinding]) -> HashMap<String, Option<Vec<BollardPortBinding>>> {
    let mut map: HashMap<String, Option<Vec<BollardPortBinding>>> = HashMap::new();
    for p in ports {
        map.entry(format!("{}/{}", p.target, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(BollardPortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.published.map(|first| match p.published_end {
                    Some(last) if last > first => format!("{first}-{last}"),
                    _ => first.to_string(),
                }),
            });
    }
    map
}

/// A network's `ipam:` as the create body's `IPAM`.
fn ipam(spec: &IpamSpec) -> Ipam {
    Ipam {
        driver: spec.driver.clone(),
        config: Some(
            spec.pools
                .iter()
                .map(|p| IpamConfig {
                    subnet: p.subnet.clone(),
                    ip_range: p.ip_range.clone(),
                    gateway: p.gateway.clone(),
                    auxiliary_addresses: (!p.aux_addresses.is_empty())
                        .then(|| hash(&p.aux_addresses)),
                })
                .collect(),
        ),
        options: (!spec.options.is_empty()).then(|| hash(&spec.options)),
    }
}

fn endpoint_settings(n: &super::NetworkAttach) -> EndpointSettings {
    EndpointSettings {
        aliases: non_empty(n.aliases.clone()),
        ipam_config: (n.ipv4_address.is_some() || n.ipv6_address.is_some()).then(|| {
            EndpointIpamConfig {
                ipv4_address: n.ipv4_address.clone(),
                ipv6_address: n.ipv6_address.clone(),
                ..EndpointIpamConfig::default()
            }
        }),
        ..EndpointSettings::default()
    }
}

/// The create body for `spec`: everything but networks after the first.
fn create_body(spec: &ContainerCreate, api: ClientVersion) -> Result<ContainerCreateBody, String> {
    let (binds, mounts) = host_mounts(&spec.mounts, api)?;
    let restart = match spec.restart.as_str() {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => return Err(format!("unknown restart policy {other:?}")),
    };
    let tmpfs: HashMap<String, String> = spec
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_owned(), opts.to_owned()),
            None => (t.clone(), String::new()),
        })
        .collect();
    let host_config = HostConfig {
        binds: non_empty(binds),
        mounts: non_empty(mounts),
        port_bindings: (!spec.ports.is_empty()).then(|| port_bindings(&spec.ports)),
        network_mode: spec.network_mode.clone(),
        restart_policy: Some(RestartPolicy {
            name: Some(restart),
            maximum_retry_count: spec.restart_max.map(i64::from),
        }),
        extra_hosts: non_empty(spec.extra_hosts.clone()),
        dns: non_empty(spec.dns.clone()),
        cap_add: non_empty(spec.cap_add.clone()),
        cap_drop: non_empty(spec.cap_drop.clone()),
        privileged: spec.privileged.then_some(true),
        readonly_rootfs: spec.read_only.then_some(true),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        ulimits: non_empty(
            spec.ulimits
                .iter()
                .map(|(name, (soft, hard))| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect(),
        ),
        log_config: (spec.log_driver.is_some() || !spec.log_options.is_empty()).then(|| {
            HostConfigLogConfig {
                typ: spec.log_driver.clone(),
                config: Some(hash(&spec.log_options)),
            }
        }),
        init: spec.init,
        shm_size: spec.shm_size,
        sysctls: (!spec.sysctls.is_empty()).then(|| hash(&spec.sysctls)),
        nano_cpus: spec.nano_cpus,
        memory: spec.memory,
        pids_limit: spec.pids_limit,
        runtime: spec.runtime.clone(),
        security_opt: non_empty(spec.security_opt.clone()),
        ..HostConfig::default()
    };
    let networking_config = spec.networks.first().map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(n.network.clone(), endpoint_settings(n))])),
    });
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: non_empty(spec.env.clone()),
        labels: Some(hash(&spec.labels)),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        exposed_ports: non_empty(spec.exposed.clone()),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: h.interval.map(nanos),
            timeout: h.timeout.map(nanos),
            retries: h.retries.map(i64::from),
            start_period: h.start_period.map(nanos),
            start_interval: h.start_interval.map(nanos),
        }),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec.stop_timeout,
        host_config: Some(host_config),
        networking_config,
        ..ContainerCreateBody::default()
    })
}

impl Engine for DockerEngine {
    async fn info(&self) -> EngineResult<EngineInfo> {
        let docker = self.client(EngineOp::Version).await?;
        let v = self
            .call(
                EngineOp::Version,
                &self.endpoint,
                self.timeout,
                docker.version(),
            )
            .await?;
        Ok(EngineInfo {
            version: v.version.unwrap_or_default(),
            api_version: docker.client_version().to_string(),
            endpoint: self.endpoint.clone(),
        })
    }

    async fn list_containers(
        &self,
        label_filters: &[String],
    ) -> EngineResult<Vec<ContainerSummary>> {
        let docker = self.client(EngineOp::ListContainers).await?;
        // Docker ANDs label filters; the trait wants any of them: one call per filter, merged.
        let per_call: Vec<Option<&String>> = if label_filters.is_empty() {
            vec![None]
        } else {
            label_filters.iter().map(Some).collect()
        };
        let mut out: Vec<ContainerSummary> = Vec::new();
        for filter in per_call {
            let mut options = ListContainersOptionsBuilder::new().all(true);
            if let Some(f) = filter {
                options = options.filters(&HashMap::from([("label", vec![f.as_str()])]));
            }
            let target = filter.map_or("(all)", String::as_str);
            let list = self
                .call(
                    EngineOp::ListContainers,
                    target,
                    self.timeout,
                    docker.list_containers(Some(options.build())),
                )
                .await?;
            for c in list {
                let c = container_summary(c);
                if !out.iter().any(|o| o.id == c.id) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    async fn list_networks(&self) -> EngineResult<Vec<NetworkSummary>> {
        let docker = self.client(EngineOp::ListNetworks).await?;
        let list = self
            .call(
                EngineOp::ListNetworks,
                "(all)",
                self.timeout,
                docker.list_networks(None::<ListNetworksOptions>),
            )
            .await?;
        Ok(list
            .into_iter()
            .map(|n| NetworkSummary {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: btree(n.labels),
            })
            .collect())
    }

    async fn list_volumes(&self) -> EngineResult<Vec<VolumeSummary>> {
        let docker = self.client(EngineOp::ListVolumes).await?;
        let list = self
            .call(
                EngineOp::ListVolumes,
                "(all)",
                self.timeout,
                docker.list_volumes(None::<ListVolumesOptions>),
            )
            .await?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeSummary {
                name: v.name,
                labels: v.labels.into_iter().collect(),
            })
            .collect())
    }

    async fn list_images(&self) -> EngineResult<Vec<ImageSummary>> {
        let docker = self.client(EngineOp::ListImages).await?;
        let list = self
            .call(
                EngineOp::ListImages,
                "(all)",
                self.timeout,
                docker.list_images(None::<ListImagesOptions>),
            )
            .await?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                digests: i
                    .repo_digests
                    .into_iter()
                    .filter(|d| d != "<none>@<none>")
                    .collect(),
            })
            .collect())
    }

    async fn pull_image(&self, reference: &str, platform: Option<&str>) -> EngineResult<String> {
        let docker = self.client(EngineOp::PullImage).await?;
        let reference = pull_reference(reference);
        let mut options = CreateImageOptionsBuilder::new().from_image(&reference);
        if let Some(platform) = platform {
            options = options.platform(platform);
        }
        let options = options.build();
        let lookup = match &self.auth {
            Some(auth) => Some(auth.lookup(&reference).await),
            None => None,
        };
        let credentials = lookup.as_ref().and_then(Lookup::to_bollard);
        let pull = async {
            let mut progress = docker.create_image(Some(options), None, credentials);
            while let Some(item) = progress.next().await {
                item?;
            }
            Ok(())
        };
        self.call(EngineOp::PullImage, &reference, self.pull_timeout, pull)
            .await
            .map_err(|e| refused(e, lookup.as_ref()))?;
        let image = self
            .call(
                EngineOp::InspectImage,
                &reference,
                self.timeout,
                docker.inspect_image(&reference),
            )
            .await?;
        image.id.ok_or_else(|| EngineError::Failed {
            op: EngineOp::InspectImage,
            target: reference,
            message: "the engine returned no image ID".into(),
        })
    }

    async fn build_image(&self, spec: &BuildSpec) -> EngineResult<String> {
        let docker = self.client(EngineOp::BuildImage).await?;
        let (dockerfile, inline) = match &spec.dockerfile_inline {
            Some(text) => (INLINE_DOCKERFILE.to_string(), Some(text.clone())),
            None => (spec.dockerfile.clone(), None),
        };
        let mut options = BuildImageOptionsBuilder::new()
            .dockerfile(&dockerfile)
            .t(&spec.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&spec.args.clone().into_iter().collect())
            .labels(&spec.labels.clone().into_iter().collect());
        if let Some(t) = &spec.target {
            options = options.target(t);
        }
        if let Some(n) = &spec.network {
            options = options.networkmode(n);
        }
        if !spec.extra_hosts.is_empty() {
            let hosts: Vec<String> = spec
                .extra_hosts
                .iter()
                .map(|(h, ip)| format!("{h}:{ip}"))
                .collect();
            options = options.extrahosts(&hosts.join(","));
        }
        if let Some(size) = spec.shm_size {
            options = options.shmsize(i32::try_from(size).unwrap_or(i32::MAX));
        }
        let body = bollard::body_try_stream(tar_stream(
            spec.context_dir.clone(),
            dockerfile.clone(),
            inline,
        ));
        let tag = spec.tag.clone();
        // All of them, as `docker build` sends: base images may come from any registry.
        let (credentials, trail) = match &self.auth {
            Some(auth) => {
                let sent = auth.all().await;
                let credentials = Some(sent.credentials).filter(|c| !c.is_empty());
                (credentials, Some(sent.trail))
            }
            None => (None, None),
        };
        // A base image the registry refused says where berth looked, as a refused pull does.
        let explain = |error: &str| match &trail {
            Some(trail) if auth::is_denied(error) => format!("{} ({trail})", error.trim()),
            _ => error.to_owned(),
        };
        let build = async {
            let mut tail: std::collections::VecDeque<String> = Default::default();
            let mut progress = docker.build_image(options.build(), credentials, Some(body));
            while let Some(item) = progress.next().await {
                let info = match item {
                    Ok(i) => i,
                    Err(BollardError::DockerStreamError { error }) => {
                        return Ok(Err(build_failure(&tag, &explain(&error), &tail)));
                    }
                    Err(e) => return Err(e),
                };
                for line in info.stream.iter().flat_map(|s| s.lines()) {
                    let line = line.trim_end();
                    if line.is_empty() {
                        continue;
                    }
                    tracing::debug!(image = %tag, "build: {line}");
                    if tail.len() == BUILD_LOG_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line.to_string());
                }
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Ok(Err(build_failure(&tag, &explain(&err), &tail)));
                }
            }
            Ok(Ok(()))
        };
        self.call(EngineOp::BuildImage, &spec.tag, spec.timeout, build)
            .await??;
        let image = self
            .call(
                EngineOp::InspectImage,
                &spec.tag,
                self.timeout,
                docker.inspect_image(&spec.tag),
            )
            .await?;
        image.id.ok_or_else(|| EngineError::Failed {
            op: EngineOp::InspectImage,
            target: spec.tag.clone(),
            message: "the engine returned no image ID".into(),
        })
    }

    async fn create_network(&self, spec: &NetworkCreate) -> EngineResult<String> {
        let docker = self.client(EngineOp::CreateNetwork).await?;
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: spec.driver.clone(),
            internal: spec.internal.then_some(true),
            options: (!spec.driver_opts.is_empty()).then(|| hash(&spec.driver_opts)),
            labels: Some(hash(&spec.labels)),
            ipam: spec.ipam.as_ref().map(ipam),
            enable_ipv6: spec.enable_ipv6.then_some(true),
            attachable: spec.attachable.then_some(true),
            ..NetworkCreateRequest::default()
        };
        // Engines before API 1.44 create a second network with a taken name unless asked not
        // to; bollard's model lost that field, so the body is sent with it added.
        let mut body = serde_json::to_value(&request).map_err(|e| EngineError::Failed {
            op: EngineOp::CreateNetwork,
            target: spec.name.clone(),
            message: e.to_string(),
        })?;
        body["CheckDuplicate"] = serde_json::Value::Bool(true);
        let body = body.to_string();
        let docker = docker.with_request_modifier(move |req: BollardRequest| {
            let (parts, _) = req.into_parts();
            BollardRequest::from_parts(parts, bollard::body_full(body.clone().into()))
        });
        let created = self
            .call(
                EngineOp::CreateNetwork,
                &spec.name,
                self.timeout,
                docker.create_network(request),
            )
            .await?;
        Ok(created.id)
    }

    async fn create_volume(&self, spec: &VolumeCreate) -> EngineResult<()> {
        let docker = self.client(EngineOp::CreateVolume).await?;
        let request = VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: spec.driver.clone(),
            driver_opts: (!spec.driver_opts.is_empty()).then(|| hash(&spec.driver_opts)),
            labels: Some(hash(&spec.labels)),
            ..VolumeCreateRequest::default()
        };
        self.call(
            EngineOp::CreateVolume,
            &spec.name,
            self.timeout,
            docker.create_volume(request),
        )
        .await?;
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerCreate) -> EngineResult<String> {
        let docker = self.client(EngineOp::CreateContainer).await?;
        let body =
            create_body(spec, self.api_version()).map_err(|message| EngineError::Failed {
                op: EngineOp::CreateContainer,
                target: spec.name.clone(),
                message,
            })?;
        let mut options = CreateContainerOptionsBuilder::new().name(&spec.name);
        if let Some(platform) = &spec.platform {
            options = options.platform(platform);
        }
        let options = options.build();
        let created = self
            .call(
                EngineOp::CreateContainer,
                &spec.name,
                self.timeout,
                docker.create_container(Some(options), body),
            )
            .await?;
        let id = created.id;
        for n in spec.networks.iter().skip(1) {
            let connected = self.join_network(&docker, &id, &spec.name, n).await;
            if let Err(e) = connected {
                // A container missing a network must not look like a finished create: take
                // it away again (it never ran) and report why.
                let options = RemoveContainerOptionsBuilder::new().force(true).build();
                let _ = self
                    .call(
                        EngineOp::RemoveContainer,
                        &spec.name,
                        self.timeout,
                        docker.remove_container(&id, Some(options)),
                    )
                    .await;
                return Err(e);
            }
        }
        Ok(id)
    }

    async fn connect_network(&self, id: &str, attach: &super::NetworkAttach) -> EngineResult<()> {
        let docker = self.client(EngineOp::ConnectNetwork).await?;
        self.join_network(&docker, id, id, attach).await
    }

    async fn start_container(&self, id: &str) -> EngineResult<()> {
        let docker = self.client(EngineOp::StartContainer).await?;
        self.call(
            EngineOp::StartContainer,
            id,
            self.timeout,
            docker.start_container(id, None::<StartContainerOptions>),
        )
        .await
    }

    async fn stop_container(
        &self,
        id: &str,
        grace: Duration,
        signal: Option<&str>,
    ) -> EngineResult<()> {
        let docker = self.client(EngineOp::StopContainer).await?;
        let stop_signal_api = ClientVersion {
            major_version: 1,
            minor_version: 42,
        };
        match signal {
            Some(signal) if docker.client_version() < stop_signal_api => {
                self.stop_with_kill(&docker, id, grace, signal).await
            }
            _ => {
                let mut options = StopContainerOptionsBuilder::new().t(whole_seconds(grace));
                if let Some(signal) = signal {
                    options = options.signal(signal);
                }
                self.call(
                    EngineOp::StopContainer,
                    id,
                    grace + self.timeout,
                    docker.stop_container(id, Some(options.build())),
                )
                .await
            }
        }
    }

    async fn remove_container(&self, id: &str) -> EngineResult<()> {
        let docker = self.client(EngineOp::RemoveContainer).await?;
        let options = RemoveContainerOptionsBuilder::new()
            .force(false)
            .v(false)
            .build();
        self.call(
            EngineOp::RemoveContainer,
            id,
            self.timeout,
            docker.remove_container(id, Some(options)),
        )
        .await
    }

    async fn remove_network(&self, name: &str) -> EngineResult<()> {
        let docker = self.client(EngineOp::RemoveNetwork).await?;
        self.call(
            EngineOp::RemoveNetwork,
            name,
            self.timeout,
            docker.remove_network(name),
        )
        .await
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> EngineResult<()> {
        let docker = self.client(EngineOp::RenameContainer).await?;
        let options = RenameContainerOptionsBuilder::new().name(new_name).build();
        self.call(
            EngineOp::RenameContainer,
            id,
            self.timeout,
            docker.rename_container(id, options),
        )
        .await
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> EngineResult<String> {
        let docker = self.client(EngineOp::ReadLogs).await?;
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let read = async {
            let mut out = Vec::new();
            let mut stream = docker.logs(id, Some(options));
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(chunk?.as_ref());
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        self.call(EngineOp::ReadLogs, id, self.timeout, read).await
    }

    async fn logs(
        &self,
        id: &str,
        req: &super::logs::LogsRequest,
    ) -> EngineResult<mpsc::Receiver<EngineResult<super::logs::LogLine>>> {
        let docker = self.client(EngineOp::ReadLogs).await?;
        let (engine, target) = (self.clone(), id.to_owned());
        Ok(super::logs::docker_stream(docker, id, req, move |e| {
            engine.classify(EngineOp::ReadLogs, &target, e)
        }))
    }

    async fn inspect_container(&self, id: &str) -> EngineResult<ContainerDetails> {
        let docker = self.client(EngineOp::InspectContainer).await?;
        let inspected = self
            .call(
                EngineOp::InspectContainer,
                id,
                self.timeout,
                docker.inspect_container(id, None::<InspectContainerOptions>),
            )
            .await?;
        Ok(container_details(inspected))
    }

    /// Three API calls under one deadline (`timeout`): create the exec, start it attached and
    /// read its output to the end, then inspect it for the exit code (polled briefly: the
    /// stream can end a moment before Docker records the exit).
    async fn exec(&self, id: &str, cmd: &[String], timeout: Duration) -> EngineResult<ExecOutcome> {
        let docker = self.client(EngineOp::ExecInContainer).await?;
        let run = async {
            let config = CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..CreateExecOptions::default()
            };
            let exec_id = docker.create_exec(id, config).await?.id;
            let mut tail: Vec<u8> = Vec::new();
            let start = StartExecOptions {
                detach: false,
                ..StartExecOptions::default()
            };
            if let StartExecResults::Attached { mut output, .. } =
                docker.start_exec(&exec_id, Some(start)).await?
            {
                while let Some(chunk) = output.next().await {
                    tail.extend_from_slice(chunk?.as_ref());
                    if tail.len() > 2 * EXEC_OUTPUT_LIMIT {
                        tail.drain(..tail.len() - EXEC_OUTPUT_LIMIT);
                    }
                }
            }
            loop {
                let inspected = docker.inspect_exec(&exec_id).await?;
                if inspected.running != Some(true) {
                    return Ok(ExecOutcome {
                        exit_code: inspected.exit_code.unwrap_or(-1),
                        output: super::output_tail(&tail, EXEC_OUTPUT_LIMIT),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        self.call(EngineOp::ExecInContainer, id, timeout, run).await
    }

    async fn tag_image(&self, image_id: &str, repo: &str, tag: &str) -> EngineResult<()> {
        let docker = self.client(EngineOp::TagImage).await?;
        let options = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
        let target = format!("{image_id} as {repo}:{tag}");
        self.call(
            EngineOp::TagImage,
            &target,
            self.timeout,
            docker.tag_image(image_id, Some(options)),
        )
        .await
    }

    async fn remove_image_tag(&self, reference: &str) -> EngineResult<()> {
        let docker = self.client(EngineOp::RemoveImageTag).await?;
        let options = RemoveImageOptionsBuilder::new()
            .force(false)
            // As `docker rmi`: a deleted built image takes its untagged build parents along
            // (the engine keeps any that another image still needs).
            .noprune(false)
            .build();
        self.call(
            EngineOp::RemoveImageTag,
            reference,
            self.timeout,
            docker.remove_image(reference, Some(options), None),
        )
        .await?;
        Ok(())
    }

    async fn events(
        &self,
        since: i64,
        label_filter: &str,
    ) -> EngineResult<mpsc::Receiver<EngineResult<EngineEvent>>> {
        let docker = self.client(EngineOp::WatchEvents).await?;
        let options = EventsOptionsBuilder::new()
            .since(&since.to_string())
            .filters(&HashMap::from([
                ("type", vec!["container"]),
                ("label", vec![label_filter]),
            ]))
            .build();
        let (tx, rx) = mpsc::channel(EVENT_CHANNEL);
        let engine = self.clone();
        let target = label_filter.to_owned();
        tokio::spawn(async move {
            let mut stream = docker.events(Some(options));
            tracing::debug!(op = "watch events", target = %target, "engine stream opened");
            while let Some(item) = stream.next().await {
                let forwarded = match item {
                    Ok(event) => tx.send(Ok(engine_event(event))).await,
                    Err(e) => {
                        let _ = tx
                            .send(Err(engine.classify(EngineOp::WatchEvents, &target, e)))
                            .await;
                        break;
                    }
                };
                if forwarded.is_err() {
                    break;
                }
            }
            tracing::debug!(op = "watch events", target = %target, "engine stream closed");
        });
        Ok(rx)
    }
}

/// The name a `dockerfile_inline` text has in the build's tar stream.
const INLINE_DOCKERFILE: &str = ".berth-inline.Dockerfile";

/// A failed build: the engine's message, then the last lines of the build log.
fn build_failure(tag: &str, error: &str, tail: &std::collections::VecDeque<String>) -> EngineError {
    let log = (!tail.is_empty()).then(|| tail.iter().cloned().collect::<Vec<_>>().join("\n"));
    EngineError::BuildFailed {
        target: tag.to_string(),
        message: error.trim().to_string(),
        log,
    }
}

/// A `Write` that hands 64 KiB chunks to an async receiver (the tar writer runs on a blocking
/// thread; the request body reads the other end), so the context is never all in memory.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<std::io::Result<bytes::Bytes>>,
}

const TAR_CHUNK: usize = 64 * 1024;

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(TAR_CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "build request ended"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= TAR_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The context as a tar stream: the files `.dockerignore` lets through (plus the Dockerfile
/// and `.dockerignore`), symlinks kept as links, and an inline Dockerfile when given.
fn tar_stream(
    dir: std::path::PathBuf,
    dockerfile: String,
    inline: Option<String>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let err_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let write = || -> std::io::Result<()> {
            let w = ChunkWriter {
                buf: Vec::with_capacity(TAR_CHUNK),
                tx,
            };
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Deterministic);
            let always = [dockerfile.as_str(), ".dockerignore"];
            let entries =
                crate::desired::context::entries(&dir, &always).map_err(std::io::Error::other)?;
            for e in entries {
                b.append_path_with_name(dir.join(&e.rel), &e.rel)?;
            }
            if let Some(text) = inline {
                let mut h = tar::Header::new_gnu();
                h.set_size(text.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, &dockerfile, text.as_bytes())?;
            }
            let mut w = b.into_inner()?;
            std::io::Write::flush(&mut w)
        };
        if let Err(e) = write() {
            let _ = err_tx.blocking_send(Err(e));
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V141: ClientVersion = ClientVersion {
        major_version: 1,
        minor_version: 41,
    };

    fn mount(kind: &str, source: Option<&str>, target: &str, options: &[&str]) -> MountSpec {
        MountSpec {
            kind: kind.into(),
            source: source.map(str::to_owned),
            target: target.into(),
            read_only: false,
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn health_and_exit_code_come_from_the_status_text() {
        assert_eq!(
            health_from_status("Up 3 minutes (healthy)"),
            Health::Healthy
        );
        assert_eq!(
            health_from_status("Up 3 minutes (unhealthy)"),
            Health::Unhealthy
        );
        assert_eq!(
            health_from_status("Up 2 seconds (health: starting)"),
            Health::Starting
        );
        assert_eq!(health_from_status("Up 3 minutes"), Health::None);
        assert_eq!(
            exit_code_from_status("Exited (137) 2 seconds ago"),
            Some(137)
        );
        assert_eq!(
            exit_code_from_status("Exited (0) About a minute ago"),
            Some(0)
        );
        assert_eq!(exit_code_from_status("Up 3 minutes"), None);
        assert_eq!(exit_code_from_status("Created"), None);
    }

    #[test]
    fn endpoints_are_unix_or_plain_tcp() {
        let e = DockerEngine::connect(Some("unix:///run/x.sock")).unwrap();
        assert_eq!(e.endpoint(), "unix:///run/x.sock");
        let e = DockerEngine::connect(Some("tcp://10.0.0.1:2375")).unwrap();
        assert_eq!(e.endpoint(), "tcp://10.0.0.1:2375");
        let err = DockerEngine::connect(Some("ssh://me@host")).unwrap_err();
        assert!(err.to_string().contains("unsupported endpoint"), "{err}");
    }

    #[test]
    fn untagged_references_pull_latest_only() {
        assert_eq!(pull_reference("busybox"), "busybox:latest");
        assert_eq!(
            pull_reference("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            pull_reference("localhost:5000/app:1"),
            "localhost:5000/app:1"
        );
        assert_eq!(pull_reference("app@sha256:ab"), "app@sha256:ab");
    }

    #[test]
    fn binds_that_may_create_their_host_path_use_the_binds_list() {
        let mut ro = mount("bind", Some("/srv/conf"), "/conf", &["rshared", "z"]);
        ro.read_only = true;
        let (binds, mounts) = host_mounts(
            &[
                ro,
                mount("bind", Some("/srv/data"), "/data", &[]),
                mount(
                    "bind",
                    Some("/srv/strict"),
                    "/strict",
                    &["create_host_path=false", "propagation=rslave"],
                ),
            ],
            V141,
        )
        .unwrap();
        assert_eq!(binds, ["/srv/conf:/conf:ro,rshared,z", "/srv/data:/data"]);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].typ, Some(MountType::BIND));
        assert_eq!(
            mounts[0].bind_options.as_ref().unwrap().propagation,
            Some(MountBindOptionsPropagationEnum::RSLAVE)
        );
    }

    #[test]
    fn volume_and_tmpfs_options_are_translated() {
        let (binds, mounts) = host_mounts(
            &[
                mount("volume", Some("shop_db"), "/var/lib/db", &["nocopy"]),
                mount("volume", None, "/cache", &[]),
                mount("tmpfs", None, "/run", &["mode=1777", "size=65536"]),
            ],
            V141,
        )
        .unwrap();
        assert!(binds.is_empty());
        assert_eq!(
            mounts[0].volume_options.as_ref().unwrap().no_copy,
            Some(true)
        );
        assert_eq!(mounts[1].source, None);
        let tmpfs = mounts[2].tmpfs_options.as_ref().unwrap();
        assert_eq!((tmpfs.size_bytes, tmpfs.mode), (Some(65536), Some(0o1777)));
    }

    #[test]
    fn volume_subpath_is_refused_by_engines_that_would_ignore_it() {
        let err =
            host_mounts(&[mount("volume", Some("v"), "/x", &["subpath=sub"])], V141).unwrap_err();
        assert!(err.contains("API 1.45"), "{err}");
    }

    #[test]
    fn several_bindings_of_one_port_share_its_key() {
        let map = port_bindings(&[
            PortBinding {
                target: 80,
                protocol: "tcp".into(),
                host_ip: Some("127.0.0.1".into()),
                published: Some(8080),
                published_end: None,
            },
            PortBinding {
                target: 80,
                protocol: "tcp".into(),
                host_ip: None,
                published: None,
                published_end: None,
            },
        ]);
        let bindings = map["80/tcp"].as_ref().unwrap();
        assert_eq!(bindings.len(), 2);
        assert_eq!(bindings[0].host_port.as_deref(), Some("8080"));
        assert_eq!(bindings[1].host_port, None);
    }

    #[test]
    fn a_host_port_range_onto_one_target_is_sent_as_a_range() {
        let map = port_bindings(&[PortBinding {
            target: 80,
            protocol: "tcp".into(),
            host_ip: None,
            published: Some(8000),
            published_end: Some(8010),
        }]);
        let bindings = map["80/tcp"].as_ref().unwrap();
        assert_eq!(bindings[0].host_port.as_deref(), Some("8000-8010"));
    }

    #[test]
    fn runtime_and_security_options_reach_the_host_config() {
        let spec = ContainerCreate {
            runtime: Some("runc".into()),
            security_opt: vec!["no-new-privileges:true".into()],
            ..ContainerCreate::default()
        };
        let host = create_body(&spec, V141).unwrap().host_config.unwrap();
        assert_eq!(host.runtime.as_deref(), Some("runc"));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges:true".to_string()])
        );
    }

    #[test]
    fn ipam_pools_are_sent_with_their_aux_addresses() {
        let body = ipam(&IpamSpec {
            driver: Some("default".into()),
            pools: vec![crate::engine::IpamPoolSpec {
                subnet: Some("172.28.0.0/16".into()),
                ip_range: Some("172.28.5.0/24".into()),
                gateway: Some("172.28.5.254".into()),
                aux_addresses: BTreeMap::from([("host1".into(), "172.28.1.5".into())]),
            }],
            options: BTreeMap::new(),
        });
        let pool = &body.config.unwrap()[0];
        assert_eq!(pool.subnet.as_deref(), Some("172.28.0.0/16"));
        assert_eq!(pool.gateway.as_deref(), Some("172.28.5.254"));
        assert_eq!(
            pool.auxiliary_addresses.as_ref().unwrap()["host1"],
            "172.28.1.5"
        );
        assert_eq!(body.options, None);
    }

    #[test]
    fn grace_periods_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(10)), 10);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
