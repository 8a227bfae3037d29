//! `DockerEngine` against the real Docker engine on this machine.
//!
//! Each test works in its own [`Scope`]: objects named `berthtest-<pid>-<n>-...` and labelled
//! `berthtest.scope=<that prefix>`, all removed by the scope's `Drop` through the docker CLI
//! (containers with `rm -f`, then networks and volumes). Every wait has a deadline. Images
//! are built locally (`support/images.rs`); the pull test runs its own `docker-registry`
//! (`support/registry.rs`). Engine tier: each test fails, saying why, when no engine answers.
//!
//! What Docker 20.10 (API 1.41) does, as these tests pin it:
//! - starting a running container and stopping a stopped one answer 304, which bollard passes
//!   on as success: `Ok(())`;
//! - removing a removed container, starting, stopping or reading logs of an unknown one, pulling
//!   a tag the registry lacks: 404 → `NotFound`;
//! - a taken container name (create or rename), removing a running container, a taken network
//!   name (with `CheckDuplicate`): 409 → `Conflict`;
//! - creating from a missing image (404 "No such image"), starting a container whose network
//!   is gone (404 "network ... not found"; the create and a connect of a created container
//!   both succeed): `Failed`, never `NotFound`, so nobody takes them for "already done";
//! - creating an existing volume: success, the volume is left as it was;
//! - events of a container started then stopped: `create`, `start`, `kill`, `die` (then `stop`).
//! - exec: the command's own exit code comes back (a `sh -c 'exit 3'` is 3); an exec in a
//!   stopped container is 409 → `Conflict`; a command outliving its timeout → `Timeout`.
//! - removing a tag (`force=false`, `noprune=true`) of an image with other tags only untags it;
//!   removing the last tag of an image a container (even a stopped one) uses is 409 →
//!   `Conflict` and keeps the tag; with no container, it deletes the image.
//! - `docker image prune -a` removes tagged images too when no container uses them: a berth pin
//!   tag alone does not keep an image, the kept (stopped) previous container does. (Tried with a
//!   prune filtered to the test's own label, never a host-wide one.)
//! - the host reaches containers at their bridge-network address (berth's probes rely on it).

#[path = "support/images.rs"]
mod images;
mod support {
    pub mod registry;
    pub mod tier;
    pub mod world;
}

use std::collections::BTreeMap;
use std::future::Future;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth::desired::model::{Probe, ProbeCheck};
use berth::engine::docker::DockerEngine;
use berth::engine::{
    ContainerCreate, ContainerSummary, Engine, EngineError, Health, HealthcheckSpec, MountSpec,
    NetworkAttach, NetworkCreate, PortBinding, RunState, VolumeCreate,
};
use berth::reconcile::probe;

const SCOPE_LABEL: &str = "berthtest.scope";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One test's objects, removed when it ends however it ends.
struct Scope {
    prefix: String,
    networks: Mutex<Vec<String>>,
    volumes: Mutex<Vec<String>>,
    /// Image references (tags) this test made; untagged at the end.
    images: Mutex<Vec<String>>,
}

impl Scope {
    fn new() -> Self {
        support::tier::require_engine();
        Scope {
            prefix: format!(
                "berthtest-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            networks: Mutex::new(Vec::new()),
            volumes: Mutex::new(Vec::new()),
            images: Mutex::new(Vec::new()),
        }
    }

    /// A container name in this scope (containers are found by label at cleanup).
    fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `berthtest.scope=<prefix>`.
    fn filter(&self) -> String {
        format!("{SCOPE_LABEL}={}", self.prefix)
    }

    fn network(&self, name: &str) -> String {
        let n = self.name(name);
        self.networks.lock().unwrap().push(n.clone());
        n
    }

    fn volume(&self, name: &str) -> String {
        let n = self.name(name);
        self.volumes.lock().unwrap().push(n.clone());
        n
    }

    /// A tag reference in this scope: `berth-pin/test:<prefix>-<name>`.
    fn image_tag(&self, name: &str) -> String {
        let r = format!("berth-pin/test:{}", self.name(name));
        self.images.lock().unwrap().push(r.clone());
        r
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (SCOPE_LABEL.to_owned(), self.prefix.clone()),
            ("berth.managed".to_owned(), "true".to_owned()),
        ])
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let ids = docker(&["ps", "-aq", "--filter", &format!("label={}", self.filter())]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            docker(&[&["rm", "-f"], ids.as_slice()].concat());
        }
        // A failed create may leave networks taken by several same-named objects: remove all.
        for n in self.networks.lock().unwrap().iter() {
            let ids = docker(&["network", "ls", "-q", "--filter", &format!("name=^{n}$")]);
            for id in ids.split_whitespace() {
                docker(&["network", "rm", id]);
            }
        }
        for v in self.volumes.lock().unwrap().iter() {
            docker(&["volume", "rm", "-f", v]);
        }
        // Without -f: a tag of an image with other tags only goes away, and an image only this
        // test tagged is deleted with its last tag.
        for r in self.images.lock().unwrap().iter() {
            docker(&["image", "rm", r]);
        }
    }
}

/// Runs the docker CLI; its stdout (failures are the caller's to notice).
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn inspect(id: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, id])
}

fn engine() -> DockerEngine {
    support::tier::require_engine();
    DockerEngine::connect(None).expect("docker endpoint")
}

/// Polls `check` until it yields a value; panics with `what` after `limit`.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find(engine: &DockerEngine, scope: &Scope, name: &str) -> Option<ContainerSummary> {
    engine
        .list_containers(&[scope.filter()])
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal container of the busybox image running `script` under `sh -c`.
fn container(scope: &Scope, name: &str, image: &str, script: &str) -> ContainerCreate {
    ContainerCreate {
        name: scope.name(name),
        image: image.to_owned(),
        command: Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ]),
        entrypoint: None,
        env: Vec::new(),
        labels: scope.labels(),
        ..ContainerCreate::default()
    }
}

fn network_spec(scope: &Scope, name: &str) -> NetworkCreate {
    NetworkCreate {
        name: scope.network(name),
        driver: None,
        driver_opts: BTreeMap::new(),
        internal: false,
        labels: scope.labels(),
        ipam: None,
        enable_ipv6: false,
        attachable: false,
    }
}

fn attach(network: &str, aliases: &[&str]) -> NetworkAttach {
    NetworkAttach {
        network: network.to_owned(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ipv4_address: None,
        ipv6_address: None,
    }
}

/// Stays up, says hello on stdout and stderr, and exits 3 on SIGTERM.
const POLITE: &str = "echo hello; echo world >&2; trap 'exit 3' TERM; \
                      while true; do /bin/busybox sleep 0.2; done";

#[tokio::test]
async fn connects_and_negotiates_the_engine_api_version() {
    let info = engine().info().await.unwrap();
    let server_api = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(info.api_version, server_api, "{info:?}");
    assert_eq!(
        info.version,
        docker(&["version", "--format", "{{.Server.Version}}"])
    );
    if std::env::var_os("DOCKER_HOST").is_none() {
        assert_eq!(info.endpoint, "unix:///var/run/docker.sock");
    }
}

#[tokio::test]
async fn created_container_carries_the_whole_spec() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let front = engine
        .create_network(&network_spec(&scope, "front"))
        .await
        .unwrap();
    let back = scope.network("back");
    engine
        .create_network(&NetworkCreate {
            name: back.clone(),
            driver: Some("bridge".into()),
            driver_opts: BTreeMap::from([(
                "com.docker.network.bridge.enable_icc".into(),
                "true".into(),
            )]),
            internal: true,
            labels: scope.labels(),
            ipam: None,
            enable_ipv6: false,
            attachable: false,
        })
        .await
        .unwrap();
    let volume = scope.volume("data");
    engine
        .create_volume(&VolumeCreate {
            name: volume.clone(),
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: scope.labels(),
        })
        .await
        .unwrap();
    let host_dir = tempfile::tempdir().unwrap();
    let missing_host_dir = host_dir.path().join("made/by/docker");
    let port = free_port();

    let mut spec = container(&scope, "web", &image, POLITE);
    spec.env = vec!["A=1".into(), "B=two words".into()];
    spec.labels.insert("app".into(), "web".into());
    spec.user = Some("1000:1000".into());
    spec.working_dir = Some("/srv".into());
    spec.hostname = Some("webhost".into());
    spec.exposed = vec!["80/tcp".into(), "9000/udp".into()];
    spec.ports = vec![PortBinding {
        target: 80,
        protocol: "tcp".into(),
        host_ip: Some("127.0.0.1".into()),
        published: Some(port),
        published_end: None,
    }];
    spec.mounts = vec![
        MountSpec {
            kind: "volume".into(),
            source: Some(volume.clone()),
            target: "/data".into(),
            read_only: false,
            options: vec!["nocopy".into()],
        },
        MountSpec {
            kind: "bind".into(),
            source: Some(missing_host_dir.display().to_string()),
            target: "/host".into(),
            read_only: true,
            options: Vec::new(),
        },
        MountSpec {
            kind: "tmpfs".into(),
            source: None,
            target: "/scratch".into(),
            read_only: false,
            options: vec!["size=1048576".into(), "mode=1777".into()],
        },
    ];
    spec.networks = vec![
        attach(&scope.name("front"), &["web", "www"]),
        attach(&back, &["web"]),
    ];
    spec.restart = "on-failure".into();
    spec.restart_max = Some(3);
    spec.healthcheck = Some(HealthcheckSpec {
        test: vec!["CMD".into(), "/bin/busybox".into(), "true".into()],
        interval: Some(Duration::from_millis(500)),
        timeout: Some(Duration::from_secs(2)),
        retries: Some(3),
        start_period: Some(Duration::from_secs(1)),
        start_interval: None,
    });
    spec.extra_hosts = vec!["db.example:10.1.2.3".into()];
    spec.dns = vec!["10.0.0.53".into()];
    spec.cap_add = vec!["NET_ADMIN".into()];
    spec.cap_drop = vec!["MKNOD".into()];
    spec.tmpfs = vec!["/run:size=65536".into()];
    spec.ulimits = BTreeMap::from([("nofile".into(), (1024, 2048))]);
    spec.log_driver = Some("json-file".into());
    spec.log_options = BTreeMap::from([("max-size".into(), "1m".into())]);
    spec.stop_signal = Some("SIGTERM".into());
    spec.stop_timeout = Some(7);
    spec.init = Some(true);
    spec.shm_size = Some(32 * 1024 * 1024);
    spec.sysctls = BTreeMap::from([("net.ipv4.ip_unprivileged_port_start".into(), "80".into())]);
    spec.nano_cpus = Some(500_000_000);
    spec.memory = Some(64 * 1024 * 1024);
    spec.pids_limit = Some(64);

    let id = engine.create_container(&spec).await.unwrap();
    let is = |format: &str| inspect(&id, format);
    assert_eq!(is("{{.Config.Image}}"), image);
    let env = is("{{json .Config.Env}}");
    assert!(env.starts_with(r#"["A=1","B=two words""#), "{env}");
    assert_eq!(
        is("{{.Config.User}} {{.Config.WorkingDir}} {{.Config.Hostname}}"),
        "1000:1000 /srv webhost"
    );
    assert_eq!(
        is("{{json .Config.ExposedPorts}}"),
        r#"{"80/tcp":{},"9000/udp":{}}"#
    );
    assert_eq!(
        is("{{json .HostConfig.PortBindings}}"),
        format!(r#"{{"80/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{port}"}}]}}"#)
    );
    assert_eq!(
        is("{{json .HostConfig.Binds}}"),
        format!(r#"["{}:/host:ro"]"#, missing_host_dir.display())
    );
    assert_eq!(
        is("{{range .HostConfig.Mounts}}{{.Type}}:{{.Target}} {{end}}"),
        "volume:/data tmpfs:/scratch"
    );
    assert_eq!(
        is(
            "{{range .HostConfig.Mounts}}{{if .VolumeOptions}}{{.VolumeOptions.NoCopy}}{{end}}{{if .TmpfsOptions}}{{.TmpfsOptions.SizeBytes}} {{printf \"%o\" .TmpfsOptions.Mode}}{{end}} {{end}}"
        ),
        "true 1048576 1777"
    );
    assert_eq!(
        is("{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"),
        "on-failure 3"
    );
    assert_eq!(
        is("{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD","/bin/busybox","true"],"Interval":500000000,"Timeout":2000000000,"StartPeriod":1000000000,"Retries":3}"#
    );
    assert_eq!(
        is(
            "{{json .HostConfig.ExtraHosts}} {{json .HostConfig.Dns}} {{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}"
        ),
        r#"["db.example:10.1.2.3"] ["10.0.0.53"] ["NET_ADMIN"] ["MKNOD"]"#
    );
    assert_eq!(is("{{json .HostConfig.Tmpfs}}"), r#"{"/run":"size=65536"}"#);
    assert_eq!(
        is("{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}"),
        "nofile=1024:2048"
    );
    // The daemon adds its own default log options (max-file here) to ours.
    assert_eq!(
        is("{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}"),
        "json-file 1m"
    );
    assert_eq!(
        is(
            "{{.Config.StopSignal}} {{.Config.StopTimeout}} {{.HostConfig.Init}} {{.HostConfig.ShmSize}}"
        ),
        "SIGTERM 7 true 33554432"
    );
    assert_eq!(
        is(
            "{{json .HostConfig.Sysctls}} {{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"
        ),
        r#"{"net.ipv4.ip_unprivileged_port_start":"80"} 500000000 67108864 64"#
    );
    // A connect adds the short ID and the hostname to our aliases; a create does not (yet).
    let aliases = |network: &str| {
        is(&format!(
            "{{{{json (index .NetworkSettings.Networks \"{network}\").Aliases}}}}"
        ))
    };
    assert_eq!(aliases(&scope.name("front")), r#"["web","www"]"#);
    assert!(
        aliases(&back).starts_with(r#"["web","#),
        "{}",
        aliases(&back)
    );

    let listed = find(&engine, &scope, &spec.name).await.unwrap();
    assert_eq!(listed.id, id);
    assert_eq!(listed.image_id, image);
    assert_eq!(listed.state, RunState::Created);
    assert_eq!(listed.labels["app"], "web");
    assert_eq!(listed.networks, [back.clone(), scope.name("front")]);
    assert!(!front.is_empty());

    engine.start_container(&id).await.unwrap();
    assert!(
        missing_host_dir.is_dir(),
        "the bind's host path was created"
    );
    let healthy = until("healthy", Duration::from_secs(20), || async {
        find(&engine, &scope, &spec.name)
            .await
            .filter(|c| c.health == Health::Healthy)
    })
    .await;
    assert_eq!(healthy.state, RunState::Running);
    assert_eq!(healthy.exit_code, None);
}

#[tokio::test]
async fn lifecycle_answers_are_classified() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let spec = container(&scope, "app", &image, POLITE);
    let id = engine.create_container(&spec).await.unwrap();

    let err = engine.create_container(&spec).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err:?}");

    engine.start_container(&id).await.unwrap();
    // Docker answers 304; bollard hands that on as success.
    engine.start_container(&spec.name).await.unwrap();
    let err = engine.remove_container(&id).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err:?}");

    let logs = until("two lines of output", Duration::from_secs(10), || async {
        let logs = engine.logs_tail(&id, 10).await.unwrap();
        (logs.contains("hello") && logs.contains("world")).then_some(logs)
    })
    .await;
    // stdout and stderr are interleaved in whatever order the engine captured them.
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort();
    assert_eq!(lines, ["hello", "world"]);
    assert_eq!(engine.logs_tail(&id, 1).await.unwrap().lines().count(), 1);

    engine
        .stop_container(&id, Duration::from_secs(10), None)
        .await
        .unwrap();
    let stopped = find(&engine, &scope, &spec.name).await.unwrap();
    assert_eq!(
        (stopped.state, stopped.exit_code),
        (RunState::Exited, Some(3))
    );
    // 304 again.
    engine
        .stop_container(&id, Duration::from_secs(10), None)
        .await
        .unwrap();

    let other = container(&scope, "other", &image, POLITE);
    engine.create_container(&other).await.unwrap();
    let err = engine.rename_container(&id, &other.name).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err:?}");
    let renamed = scope.name("app-old");
    engine.rename_container(&spec.name, &renamed).await.unwrap();
    assert!(find(&engine, &scope, &spec.name).await.is_none());
    assert_eq!(find(&engine, &scope, &renamed).await.unwrap().id, id);

    engine.remove_container(&id).await.unwrap();
    let err = engine.remove_container(&id).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    assert!(err.is_already_done());
    let err = engine.start_container(&id).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    let err = engine
        .stop_container(&id, Duration::from_secs(1), None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    let err = engine.logs_tail(&id, 5).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn stop_kills_after_the_grace_period() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    // PID 1 without a TERM handler ignores SIGTERM: only the SIGKILL ends it.
    let mut spec = container(&scope, "stubborn", &image, "");
    spec.command = None;
    let id = engine.create_container(&spec).await.unwrap();
    engine.start_container(&id).await.unwrap();
    let started = Instant::now();
    engine
        .stop_container(&id, Duration::from_secs(1), None)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    let stopped = find(&engine, &scope, &spec.name).await.unwrap();
    assert_eq!(
        (stopped.state, stopped.exit_code),
        (RunState::Exited, Some(137))
    );
}

#[tokio::test]
async fn stop_sends_the_requested_signal() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let spec = container(
        &scope,
        "usr1",
        &image,
        "trap 'exit 7' USR1; trap '' TERM; while true; do /bin/busybox sleep 0.2; done",
    );
    let id = engine.create_container(&spec).await.unwrap();
    engine.start_container(&id).await.unwrap();
    until("the trap to be set", Duration::from_secs(10), || async {
        find(&engine, &scope, &spec.name)
            .await
            .filter(|c| c.state == RunState::Running)
    })
    .await;
    // Give the shell its first loop turn so the traps are installed before the signal.
    until("the shell to loop", Duration::from_secs(10), || async {
        let top = docker(&["top", &id]);
        top.contains("sleep").then_some(())
    })
    .await;
    engine
        .stop_container(&id, Duration::from_secs(20), Some("SIGUSR1"))
        .await
        .unwrap();
    let stopped = find(&engine, &scope, &spec.name).await.unwrap();
    assert_eq!(
        (stopped.state, stopped.exit_code),
        (RunState::Exited, Some(7))
    );
    // Stopping a stopped container with a signal is done, too.
    engine
        .stop_container(&id, Duration::from_secs(1), Some("SIGUSR1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn network_names_and_volumes_are_not_duplicated() {
    let scope = Scope::new();
    let engine = engine();
    let spec = network_spec(&scope, "net");
    engine.create_network(&spec).await.unwrap();
    let err = engine.create_network(&spec).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err:?}");
    let networks = engine.list_networks().await.unwrap();
    let same: Vec<_> = networks.iter().filter(|n| n.name == spec.name).collect();
    assert_eq!(same.len(), 1);
    assert_eq!(same[0].labels[SCOPE_LABEL], scope.prefix);

    let volume = VolumeCreate {
        name: scope.volume("vol"),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: scope.labels(),
    };
    engine.create_volume(&volume).await.unwrap();
    let relabelled = VolumeCreate {
        labels: BTreeMap::from([("other".into(), "x".into())]),
        ..volume.clone()
    };
    engine.create_volume(&relabelled).await.unwrap();
    let volumes = engine.list_volumes().await.unwrap();
    let found = volumes.iter().find(|v| v.name == volume.name).unwrap();
    assert_eq!(
        found.labels,
        scope.labels(),
        "the first create's labels stay"
    );
}

#[tokio::test]
async fn a_failed_network_connect_leaves_no_container() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let net = network_spec(&scope, "net");
    engine.create_network(&net).await.unwrap();
    let mut spec = container(&scope, "half", &image, POLITE);
    // Docker refuses to join a container to `host` on top of another network.
    spec.networks = vec![attach(&net.name, &["half"]), attach("host", &[])];
    let err = engine.create_container(&spec).await.unwrap_err();
    assert!(matches!(err, EngineError::Failed { .. }), "{err:?}");
    assert_eq!(err.op().as_str(), "connect network");
    assert!(find(&engine, &scope, &spec.name).await.is_none());
}

#[tokio::test]
async fn a_missing_network_fails_the_start_not_the_create() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let mut spec = container(&scope, "lost", &image, POLITE);
    spec.networks = vec![attach(&scope.network("missing"), &[])];
    // Docker 20.10 accepts the create and finds the network missing only at start (404).
    let id = engine.create_container(&spec).await.unwrap();
    let err = engine.start_container(&id).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Failed { message, .. } if message.contains("not found")),
        "{err:?}"
    );
    assert!(!err.is_already_done());
}

#[tokio::test]
async fn create_refuses_what_docker_cannot_do() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();

    let mut unknown_image = container(&scope, "noimage", &image, POLITE);
    unknown_image.image = format!("sha256:{}", "0".repeat(64));
    let err = engine.create_container(&unknown_image).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Failed { message, .. } if message.contains("No such image")),
        "{err:?}"
    );
    assert!(!err.is_already_done());

    let host_dir = tempfile::tempdir().unwrap();
    let mut strict = container(&scope, "strict", &image, POLITE);
    strict.mounts = vec![MountSpec {
        kind: "bind".into(),
        source: Some(host_dir.path().join("absent").display().to_string()),
        target: "/x".into(),
        read_only: false,
        options: vec!["create_host_path=false".into()],
    }];
    let err = engine.create_container(&strict).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Failed { message, .. } if message.contains("does not exist")),
        "{err:?}"
    );

    let mut subpath = container(&scope, "subpath", &image, POLITE);
    subpath.mounts = vec![MountSpec {
        kind: "volume".into(),
        source: Some("v".into()),
        target: "/x".into(),
        read_only: false,
        options: vec!["subpath=a".into()],
    }];
    let err = engine.create_container(&subpath).await.unwrap_err();
    let api = engine.info().await.unwrap().api_version;
    if api.as_str() < "1.45" {
        assert!(matches!(err, EngineError::Failed { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn list_filters_match_any_label() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let mut a = container(&scope, "a", &image, POLITE);
    a.labels.insert("berthtest.kind".into(), "a".into());
    let mut b = container(&scope, "b", &image, POLITE);
    b.labels.insert("berthtest.kind".into(), "b".into());
    engine.create_container(&a).await.unwrap();
    engine.create_container(&b).await.unwrap();
    let both = engine
        .list_containers(&["berthtest.kind=a".to_owned(), "berthtest.kind=b".to_owned()])
        .await
        .unwrap();
    let mut names: Vec<String> = both
        .into_iter()
        .filter(|c| c.labels.get(SCOPE_LABEL) == Some(&scope.prefix))
        .map(|c| c.name)
        .collect();
    names.sort();
    assert_eq!(names, [a.name.clone(), b.name.clone()]);
    let only_a = engine
        .list_containers(&[scope.filter(), "berthtest.kind=a".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        only_a.len(),
        2,
        "either label matches: both carry the scope"
    );
}

#[tokio::test]
async fn events_report_start_and_die_for_the_filtered_label() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut events = engine.events(since, &scope.filter()).await.unwrap();
    let spec = container(&scope, "evented", &image, POLITE);
    let id = engine.create_container(&spec).await.unwrap();
    engine.start_container(&id).await.unwrap();
    engine
        .stop_container(&id, Duration::from_secs(10), None)
        .await
        .unwrap();

    let mut actions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !actions.iter().any(|a| a == "die") {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no die event within 15 s; saw {actions:?}"))
            .expect("stream open")
            .expect("event");
        assert_eq!(event.kind, "container");
        assert_eq!(event.id, id);
        assert_eq!(event.attributes[SCOPE_LABEL], scope.prefix);
        assert_eq!(event.attributes["name"], spec.name);
        assert!(event.time >= since);
        actions.push(event.action);
    }
    assert_eq!(actions, ["create", "start", "kill", "die"]);
}

#[tokio::test]
async fn images_list_with_their_tags() {
    let engine = engine();
    let id = images::busybox();
    let listed = engine.list_images().await.unwrap();
    let busybox = listed.iter().find(|i| i.id == id).unwrap();
    assert!(
        busybox.tags.iter().any(|t| t == images::BUSYBOX),
        "{busybox:?}"
    );
}

#[tokio::test]
async fn pulling_an_unknown_image_fails() {
    let engine = engine();
    let port = free_port();
    let err = engine
        .pull_image(&format!("127.0.0.1:{port}/nothing:1"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Failed { .. }), "{err:?}");
    assert_eq!(err.op().as_str(), "pull image");
}

#[tokio::test]
async fn pull_fetches_from_a_registry_and_returns_the_image_id() {
    let registry = support::registry::Registry::start();
    let engine = engine();
    let id = images::busybox();
    let name = format!("berthtest-{}/busybox:1", std::process::id());
    assert_eq!(registry.push(images::BUSYBOX, &name), id);
    let remote = registry.reference(&name);
    assert!(images::image_id(&remote).is_none());

    assert_eq!(engine.pull_image(&remote, None).await.unwrap(), id);
    let listed = engine.list_images().await.unwrap();
    let image = listed.iter().find(|i| i.id == id).unwrap();
    assert!(image.tags.contains(&remote), "{image:?}");
    let digest = image
        .digests
        .iter()
        .find(|d| d.starts_with(&registry.host()))
        .unwrap_or_else(|| panic!("no digest from the registry: {image:?}"))
        .clone();

    // By digest, and a tag the registry does not have. The registry's guard untags both.
    assert_eq!(engine.pull_image(&digest, None).await.unwrap(), id);
    let missing = format!("{}2", remote.trim_end_matches('1'));
    let err = engine.pull_image(&missing, None).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
}

/// The ID of one of the demo images `scripts/build-images` builds.
fn demo_image(tag: &str) -> String {
    images::image_id(tag)
        .unwrap_or_else(|| panic!("{tag} is missing: run scripts/build-images first"))
}

/// A demo-app container (`berth-demo` serving on 8080) on `network`.
fn demo(scope: &Scope, name: &str, image: &str, network: &str) -> ContainerCreate {
    ContainerCreate {
        name: scope.name(name),
        image: image.to_owned(),
        labels: scope.labels(),
        networks: vec![attach(network, &[name])],
        ..ContainerCreate::default()
    }
}

#[tokio::test]
async fn inspect_shows_the_address_on_its_network_and_published_ports() {
    let scope = Scope::new();
    let engine = engine();
    let image = demo_image("berth-demo:1");
    let net = network_spec(&scope, "net");
    engine.create_network(&net).await.unwrap();
    let port = free_port();
    let mut spec = demo(&scope, "web", &image, &net.name);
    spec.exposed = vec!["8080/tcp".into()];
    spec.ports = vec![PortBinding {
        target: 8080,
        protocol: "tcp".into(),
        host_ip: Some("127.0.0.1".into()),
        published: Some(port),
        published_end: None,
    }];
    let id = engine.create_container(&spec).await.unwrap();
    let created = engine.inspect_container(&id).await.unwrap();
    assert_eq!(
        (
            created.state,
            created.exit_code,
            created.started_at.as_deref()
        ),
        (RunState::Created, None, None)
    );
    assert!(created.ports.is_empty(), "{created:?}");

    engine.start_container(&id).await.unwrap();
    let d = engine.inspect_container(&spec.name).await.unwrap();
    assert_eq!(
        (d.id.as_str(), d.name.as_str()),
        (id.as_str(), spec.name.as_str())
    );
    assert_eq!(
        (d.state, d.health, d.exit_code),
        (RunState::Running, Health::None, None)
    );
    assert_eq!(d.image_id, image);
    // Created with a NetworkingConfig and no network mode: Docker says `default`.
    assert_eq!(d.network_mode, "default");
    let ip = &d.ip_addresses[&net.name];
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{d:?}");
    assert_eq!(
        ip,
        &inspect(
            &id,
            &format!(
                "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
                net.name
            )
        )
    );
    assert_eq!(d.ip_addresses.len(), 1, "{d:?}");
    assert_eq!(
        d.ports,
        [(8080, "tcp".to_owned(), Some("127.0.0.1".to_owned()), port)]
    );
    let started = d.started_at.clone().expect("started_at");
    assert_eq!(started, inspect(&id, "{{.State.StartedAt}}"));

    engine
        .stop_container(&id, Duration::from_secs(10), None)
        .await
        .unwrap();
    let stopped = engine.inspect_container(&id).await.unwrap();
    assert_eq!(stopped.state, RunState::Exited);
    assert!(stopped.exit_code.is_some(), "{stopped:?}");
    assert!(stopped.ip_addresses.is_empty(), "{stopped:?}");
    let err = engine
        .inspect_container(&scope.name("nope"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn exec_returns_the_exit_code_and_output_and_times_out() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let spec = container(&scope, "box", &image, POLITE);
    let id = engine.create_container(&spec).await.unwrap();
    let argv = |a: &[&str]| -> Vec<String> { a.iter().map(|s| s.to_string()).collect() };
    let limit = Duration::from_secs(10);

    let err = engine
        .exec(&id, &argv(&["/bin/busybox", "true"]), limit)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Conflict { .. }),
        "exec in a created container: {err:?}"
    );

    engine.start_container(&id).await.unwrap();
    let out = engine
        .exec(
            &id,
            &argv(&["/bin/busybox", "sh", "-c", "echo hi; exit 3"]),
            limit,
        )
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.output.as_str()), (3, "hi\n"));
    let out = engine
        .exec(
            &id,
            &argv(&["/bin/busybox", "sh", "-c", "echo oops >&2; true"]),
            limit,
        )
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.output.as_str()), (0, "oops\n"));
    // Long output keeps its end.
    let out = engine
        .exec(
            &id,
            &argv(&[
                "/bin/busybox",
                "sh",
                "-c",
                "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done",
            ]),
            limit,
        )
        .await
        .unwrap();
    assert!(
        out.output.len() <= berth::engine::EXEC_OUTPUT_LIMIT,
        "{}",
        out.output.len()
    );
    assert!(
        out.output.ends_with("line1999\n"),
        "{}",
        &out.output[out.output.len() - 40..]
    );
    // A command that cannot start is the engine's exit code for that (126/127), not an error.
    let out = engine
        .exec(&id, &argv(&["/nonexistent"]), limit)
        .await
        .unwrap();
    assert_ne!(out.exit_code, 0, "{out:?}");

    let started = Instant::now();
    let err = engine
        .exec(
            &id,
            &argv(&["/bin/busybox", "sleep", "30"]),
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = engine
        .exec(&scope.name("nope"), &argv(&["/bin/busybox", "true"]), limit)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_pin_tag_names_the_image_and_untagging_leaves_its_other_tags() {
    let scope = Scope::new();
    let engine = engine();
    let image = images::busybox();
    let pin = scope.image_tag("pin");
    let (repo, tag) = pin.rsplit_once(':').unwrap();
    engine.tag_image(&image, repo, tag).await.unwrap();
    assert_eq!(images::image_id(&pin).as_deref(), Some(image.as_str()));

    engine.remove_image_tag(&pin).await.unwrap();
    assert_eq!(images::image_id(&pin), None);
    assert_eq!(
        images::image_id(images::BUSYBOX).as_deref(),
        Some(image.as_str())
    );
    let err = engine.remove_image_tag(&pin).await.unwrap_err();
    assert!(err.is_already_done(), "{err:?}");
    let err = engine
        .tag_image(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            repo,
            tag,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn only_a_container_keeps_a_pinned_image_from_prune_all() {
    let scope = Scope::new();
    let engine = engine();
    let busybox = images::busybox();
    // An image only this test tags, labelled so that a prune can be limited to it.
    let base = engine
        .create_container(&container(&scope, "base", &busybox, "true"))
        .await
        .unwrap();
    let pin = scope.image_tag("only");
    let label = format!("LABEL {}", scope.filter());
    let out = Command::new("docker")
        .args(["commit", "--change", &label, &base, &pin])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = images::image_id(&pin).unwrap();
    let prune = || {
        docker(&[
            "image",
            "prune",
            "-a",
            "-f",
            "--filter",
            &format!("label={}", scope.filter()),
        ])
    };

    // Used by a stopped container: the last tag stays (409), and a prune keeps the image.
    let user = engine
        .create_container(&container(&scope, "user", &image, "true"))
        .await
        .unwrap();
    let err = engine.remove_image_tag(&pin).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err:?}");
    prune();
    assert_eq!(images::image_id(&pin).as_deref(), Some(image.as_str()));

    // Tagged but unused: prune -a removes it all the same.
    engine.remove_container(&user).await.unwrap();
    prune();
    assert_eq!(
        images::image_id(&image),
        None,
        "prune -a kept a tagged, unused image"
    );
}

fn probe_of(check: ProbeCheck) -> Probe {
    Probe {
        check,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        success_threshold: 1,
        failure_threshold: 1,
    }
}

fn http_health() -> ProbeCheck {
    ProbeCheck::Http {
        port: 8080,
        path: "/health".into(),
        status: (200, 399),
        body_contains: Some("ok".into()),
    }
}

#[tokio::test]
async fn probes_reach_the_container_at_its_network_address() {
    let scope = Scope::new();
    let engine = engine();
    let net = network_spec(&scope, "net");
    engine.create_network(&net).await.unwrap();
    let good = engine
        .create_container(&demo(
            &scope,
            "good",
            &demo_image("berth-demo:1"),
            &net.name,
        ))
        .await
        .unwrap();
    let bad = engine
        .create_container(&demo(
            &scope,
            "bad",
            &demo_image("berth-demo:bad"),
            &net.name,
        ))
        .await
        .unwrap();
    engine.start_container(&good).await.unwrap();
    engine.start_container(&bad).await.unwrap();
    let good = engine.inspect_container(&good).await.unwrap();
    let bad = engine.inspect_container(&bad).await.unwrap();
    // Only addresses of the containers this test made.
    let good_ip = good.ip_addresses[&net.name].clone();
    assert_eq!(
        probe::address(&good, 8080).unwrap().to_string(),
        format!("{good_ip}:8080")
    );

    let http = probe_of(http_health());
    let passed = until(
        "the ready app's HTTP probe to pass",
        Duration::from_secs(15),
        || async {
            let r = probe::check(&engine, &good, &http).await;
            r.ok.then_some(r)
        },
    )
    .await;
    assert_eq!(
        passed.detail,
        format!("HTTP 200 from {good_ip}:8080/health")
    );
    let failed = until(
        "the never-ready app to answer 503",
        Duration::from_secs(15),
        || async {
            let r = probe::check(&engine, &bad, &http).await;
            assert!(!r.ok, "{r:?}");
            r.detail.contains("HTTP 503").then_some(r)
        },
    )
    .await;
    assert!(failed.detail.ends_with("want 200-399"), "{failed:?}");
    let wrong_body = probe_of(ProbeCheck::Http {
        port: 8080,
        path: "health".into(),
        status: (200, 200),
        body_contains: Some("ok 2".into()),
    });
    let r = probe::check(&engine, &good, &wrong_body).await;
    assert!(!r.ok && r.detail.contains("lacks \"ok 2\""), "{r:?}");

    let tcp = probe_of(ProbeCheck::Tcp { port: 8080 });
    assert!(probe::check(&engine, &good, &tcp).await.ok);
    assert!(probe::check(&engine, &bad, &tcp).await.ok);
    let closed = probe_of(ProbeCheck::Tcp { port: 8081 });
    let started = Instant::now();
    let r = probe::check(&engine, &good, &closed).await;
    assert!(!r.ok, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused connect took {:?}",
        started.elapsed()
    );

    // Exec probes need a container with a shell-free tool: busybox's `true` and `false`.
    let boxed = engine
        .create_container(&container(&scope, "box", &images::busybox(), POLITE))
        .await
        .unwrap();
    engine.start_container(&boxed).await.unwrap();
    let boxed = engine.inspect_container(&boxed).await.unwrap();
    let exec = |argv: &[&str]| {
        probe_of(ProbeCheck::Exec {
            command: argv.iter().map(|a| a.to_string()).collect(),
        })
    };
    assert!(
        probe::check(&engine, &boxed, &exec(&["/bin/busybox", "true"]))
            .await
            .ok
    );
    let r = probe::check(
        &engine,
        &boxed,
        &exec(&["/bin/busybox", "sh", "-c", "echo down; exit 4"]),
    )
    .await;
    assert!(!r.ok && r.detail.ends_with("exited 4: down"), "{r:?}");

    // A stopped container fails at once, without a connection attempt.
    engine
        .stop_container(&bad.id, Duration::from_secs(10), None)
        .await
        .unwrap();
    let stopped = engine.inspect_container(&bad.id).await.unwrap();
    let r = probe::check(&engine, &stopped, &http).await;
    assert!(!r.ok && r.detail.contains("not running"), "{r:?}");
}
