//! berth as a container (issue 7): an image built here without any registry
//! (`deploy/build-scratch-image`: FROM scratch, the test's berth binary and the libraries it
//! links) runs berth, which manages sibling containers through the mounted Docker socket —
//! once with `berth apply`, and as the controller started from the shipped
//! `deploy/compose.yaml` by docker-compose. Everything is checked from outside with the docker
//! CLI. Each test has its own project, data dir and container names, a guard that removes
//! what it created (the image last, when no test uses it any more), and bounded waits; traffic
//! goes to 127.0.0.1 and to the test's own containers only.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::world::{TestProject, docker, free_port, http_get};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The tiny project: busybox that sleeps, and the demo app gated on berth's HTTP probe (which
/// berth, in its container, must reach through the host's network).
const PROJECT: &str = "\
services:
  app:
    image: berth-test-busybox:1
    x-berth: {min_ready: 0s}
  web:
    image: berth-demo:1
    x-berth:
      readiness: {http: {port: 8080, path: /health}, interval: 500ms}
      min_ready: 1s
      progress_deadline: 60s
";

/// The berth image: built on first use, removed when its last user is done.
static IMAGE: Mutex<usize> = Mutex::new(0);

struct BerthImage {
    tag: String,
}

impl BerthImage {
    fn acquire() -> BerthImage {
        support::tier::require_engine();
        let tag = format!("berth-ship-test:{}", std::process::id());
        let mut users = IMAGE.lock().unwrap_or_else(|e| e.into_inner());
        if *users == 0 {
            let out = Command::new(Path::new(ROOT).join("deploy/build-scratch-image"))
                .arg(env!("CARGO_BIN_EXE_berth"))
                .arg(&tag)
                .output()
                .expect("run deploy/build-scratch-image");
            assert!(
                out.status.success(),
                "deploy/build-scratch-image failed:\n{}",
                text(&out)
            );
        }
        *users += 1;
        BerthImage { tag }
    }
}

impl Drop for BerthImage {
    fn drop(&mut self) {
        let mut users = IMAGE.lock().unwrap_or_else(|e| e.into_inner());
        *users -= 1;
        if *users == 0 {
            docker(&["rmi", "-f", &self.tag]);
        }
    }
}

/// Removes a container by name when dropped (berth's own container).
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// The state directory holding the project (the project's parent) and a fresh data dir
/// beside it; both are mounted at the same path inside berth's container.
fn dirs(p: &TestProject) -> (PathBuf, PathBuf) {
    let state = p.dir.parent().unwrap().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let moved = state.join(&p.name);
    std::fs::rename(&p.dir, &moved).unwrap();
    let data = p.dir.parent().unwrap().join("data");
    std::fs::create_dir_all(&data).unwrap();
    (state, data)
}

fn label(container: &str, key: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
        container,
    ])
    .trim()
    .to_string()
}

#[test]
fn berth_in_a_container_applies_a_project_through_the_socket() {
    let image = BerthImage::acquire();
    let p = TestProject::new("shipap", PROJECT);
    let (state, data) = dirs(&p);
    let name = format!("berth-{}", p.name);
    let _berth = ContainerGuard(name.clone());
    let mount = |d: &Path| format!("{0}:{0}", d.display());
    let out = Command::new("docker")
        .args(["run", "--name", &name, "--network", "host", "-e"])
        .arg(format!("{}={}", berth::engine::claim::CLAIM_ENV, p.claim))
        .arg("-v")
        .arg("/var/run/docker.sock:/var/run/docker.sock")
        .arg("-v")
        .arg(mount(&state) + ":ro")
        .arg("-v")
        .arg(mount(&data))
        .arg(&image.tag)
        .args(["apply", "--timeout", "120s", "--data-dir"])
        .arg(&data)
        .arg(state.join(&p.name))
        .output()
        .expect("docker run berth apply");
    let log = text(&out);
    assert!(out.status.success(), "berth apply in a container:\n{log}");
    assert!(log.contains("Converged:"), "{log}");

    // Seen from outside: both services run, created and labelled by berth.
    assert_eq!(p.states(), ["app-1=running", "web-1=running"]);
    let web = format!("{}-web-1", p.name);
    assert_eq!(label(&web, "berth.managed"), "true");
    assert_eq!(label(&web, "com.docker.compose.project"), p.name);
    // The records it wrote are on the host, readable by the host's berth.
    let history = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["history", &format!("{}/web", p.name), "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(history.status.success(), "{}", text(&history));
    assert!(text(&history).contains("succeeded"), "{}", text(&history));
}

#[test]
fn deploy_compose_runs_berth_which_keeps_sibling_containers_running() {
    support::tier::require_tool("docker-compose", "docker-compose");
    let image = BerthImage::acquire();
    let p = TestProject::new("shiprun", PROJECT);
    let (state, data) = dirs(&p);
    let config = p.dir.parent().unwrap().join("etc");
    std::fs::create_dir_all(config.join("env")).unwrap();
    let port = free_port();
    let container = format!("berth-{}", p.name);
    let compose_project = format!("{}berth", p.name);
    let compose = |args: &[&str]| {
        Command::new("docker-compose")
            .args(["-p", &compose_project, "-f"])
            .arg(Path::new(ROOT).join("deploy/compose.yaml"))
            .args(args)
            .env("BERTH_IMAGE", &image.tag)
            .env("BERTH_STATE_DIR", &state)
            .env("BERTH_SOURCE", format!("--dir {}", state.display()))
            .env("BERTH_DATA_DIR", &data)
            .env("BERTH_CONFIG_DIR", &config)
            .env("BERTH_METRICS_PORT", port.to_string())
            .env("BERTH_CONTAINER_NAME", &container)
            .env(berth::engine::claim::CLAIM_ENV, &p.claim)
            .output()
            .expect("run docker-compose")
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            (self.0)(&["down", "--timeout", "20"]);
        }
    }
    let _down = Down(&compose);
    let _berth = ContainerGuard(container.clone());

    let up = compose(&["up", "-d", "--no-build"]);
    assert!(up.status.success(), "docker-compose up:\n{}", text(&up));

    let logs = || {
        Command::new("docker")
            .args(["logs", "--tail", "60", &container])
            .output()
            .map(|o| text(&o))
            .unwrap_or_default()
    };
    let web = format!("{}-web-1", p.name);
    // Settled: both run, and berth's own status (from the container, on the host's
    // loopback) says both services are Idle: ready, nothing left to do.
    let idle = || {
        let Some((200, body)) = http_get(port, "/api/v1/status", 2_000) else {
            return 0;
        };
        let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        status["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["project"] == p.name.as_str() && s["phase"] == "Idle")
            .count()
    };
    let settled = || p.states() == ["app-1=running", "web-1=running"] && idle() == 2;
    let deadline = Duration::from_secs(120);
    let start = Instant::now();
    while !settled() {
        assert!(
            start.elapsed() < deadline,
            "berth in its container did not converge the project within {deadline:?}: {:?}\n{}",
            p.states(),
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(label(&web, "berth.managed"), "true");

    // The listener is on the host's loopback (network_mode: host), as the file promises.
    let (code, body) = http_get(port, "/healthz", 5_000).expect("GET /healthz");
    assert_eq!((code, body.trim()), (200, "ok"));
    let (_, metrics) = http_get(port, "/metrics", 5_000).expect("GET /metrics");
    assert!(metrics.contains("berth_service_ready"), "{metrics}");

    // The controller in the container reacts to the engine: a sibling removed by hand comes
    // back.
    let before = docker(&["inspect", "-f", "{{.Id}}", &web]);
    docker(&["rm", "-f", &web]);
    wait_until("web-1 recreated by berth", Duration::from_secs(90), || {
        let now = docker(&["inspect", "-f", "{{.Id}} {{.State.Running}}", &web]);
        !now.is_empty() && !now.starts_with(before.trim()) && now.trim().ends_with("true")
    });

    // Operators reach it with `docker exec`; BERTH_DATA_DIR points the CLI at its data dir.
    let history = Command::new("docker")
        .args([
            "exec",
            &container,
            "berth",
            "history",
            &format!("{}/app", p.name),
        ])
        .output()
        .unwrap();
    assert!(history.status.success(), "{}", text(&history));
    assert!(
        text(&history).contains("berth-test-busybox:1"),
        "{}",
        text(&history)
    );

    // Stopping it is clean: SIGTERM finishes the step and exits 0, the stack keeps running.
    let stop = Command::new("docker")
        .args(["stop", "-t", "60", &container])
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", text(&stop));
    let exit = docker(&["inspect", "-f", "{{.State.ExitCode}}", &container]);
    assert_eq!(exit.trim(), "0", "{}", logs());
    assert_eq!(p.states(), ["app-1=running", "web-1=running"]);
}
