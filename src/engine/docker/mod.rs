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
//!
//! Layout: this file holds the client (lazy connection, deadlines, call counting) and the
//! [`Engine`] impl, which hands each call to the file of its object kind: `containers`,
//! `create_body` (a container spec → Docker's create body, pure), `images` (pull, build,
//! tag), `networks` (networks and volumes), `system` (version, ping, events) and `errors`
//! (bollard's errors → [`EngineError`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use tokio::sync::{OnceCell, mpsc};

use super::auth::Auth;
use super::{
    BuildSpec, ContainerCreate, ContainerDetails, ContainerSummary, Engine, EngineError,
    EngineEvent, EngineInfo, EngineOp, EngineResult, ExecOutcome, ImageSummary, NetworkCreate,
    NetworkSummary, VolumeCreate, VolumeSummary,
};

mod containers;
mod create_body;
mod errors;
mod images;
mod networks;
mod system;

use errors::outcome;
#[cfg(test)]
mod tests;

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

impl Engine for DockerEngine {
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

    async fn pull_image(&self, reference: &str, platform: Option<&str>) -> EngineResult<String> {
        images::pull_image(self, reference, platform).await
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
        grace: Duration,
        signal: Option<&str>,
    ) -> EngineResult<()> {
        containers::stop_container(self, id, grace, signal).await
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
    ) -> EngineResult<mpsc::Receiver<EngineResult<super::logs::LogLine>>> {
        let docker = self.client(EngineOp::ReadLogs).await?;
        let (engine, target) = (self.clone(), id.to_owned());
        Ok(super::logs::docker_stream(docker, id, req, move |e| {
            engine.classify(EngineOp::ReadLogs, &target, e)
        }))
    }

    async fn container_config(&self, id: &str) -> EngineResult<super::effective::EffectiveConfig> {
        containers::container_config(self, id).await
    }

    async fn exec(&self, id: &str, cmd: &[String], timeout: Duration) -> EngineResult<ExecOutcome> {
        containers::exec(self, id, cmd, timeout).await
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
