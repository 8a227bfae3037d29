//! Engine tier: rollouts that drive the port-handoff proxy (issue 16). A service with
//! `x-berth.handoff` publishes a loopback port; `berth apply` (the binary) starts `berth proxy`
//! itself, rolls several good updates and one bad one (reverted), switching the proxy's routes
//! and draining the old containers. A client on loopback sends requests the whole time, each
//! on a new connection, through the HTTP listener, and opens connections through a TCP one:
//! no failed request, no refused connection.
//!
//! The same with `berth run` killed (SIGKILL) twice in the middle of an update — while the
//! candidate is gated, and right after the switch while the old container drains — and
//! started again: the proxy the first `berth run` started keeps serving, and the next one
//! picks the rollout up from its record and the routes file.
//!
//! And two replicas behind one published port: both receive requests, and an update of both
//! fails none.
//!
//! Names: projects `h16r-ho<pid>`, `h16r-hk<pid>`, `h16r-hm<pid>`, claim containers
//! `h16r-claim-…`, host ports 41260-41268 (this file's range) on 127.0.0.1. A guard removes the project and its
//! pins and stops the proxy this test's berth started (by the PID berth wrote), whatever the
//! outcome.

mod support {
    pub mod tier;
    pub mod world;
}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth::proxy::routes::Routes;
use support::world::{berth_command, docker, ensure_images, remove_project};

const HTTP_PORT: u16 = 41260;
const TCP_PORT: u16 = 41261;
const ADMIN_PORT: u16 = 41262;

const COMPOSE: &str = r#"services:
  web:
    image: berth-demo:${TAG:-1}
    environment: {GENERATION: "${GEN:-0}"}
    ports: ["127.0.0.1:HTTP:8080", "127.0.0.1:TCP:8080"]
    stop_grace_period: 2s
    x-berth:
      readiness: {http: {port: 8080, path: /health}, interval: 300ms}
      min_ready: 1s
      progress_deadline: 8s
      handoff:
        mode: http
        ports: {TCP: tcp}
        drain_timeout: 1s
"#;

struct Guard {
    project: String,
    claim: String,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Only the proxy this test's berth started: its PID file in this test's data dir.
        if let Ok(pid) = std::fs::read_to_string(self.data.join("proxy/proxy.pid")) {
            let pid = pid.trim();
            if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- proxy log ---\n{}",
                std::fs::read_to_string(self.data.join("proxy/proxy.log")).unwrap_or_default()
            );
        }
        docker(&["rm", "-f", &self.claim]);
        remove_project(&self.project);
    }
}

fn apply(dir: &Path, data: &Path, claim: &str, env: &str) -> (bool, String) {
    apply_with(dir, data, claim, env, ADMIN_PORT)
}

fn apply_with(dir: &Path, data: &Path, claim: &str, env: &str, admin: u16) -> (bool, String) {
    std::fs::write(dir.join(".env"), env).unwrap();
    let o = berth_command(claim)
        .args(["apply", "--timeout", "60s", "--proxy-admin"])
        .arg(format!("127.0.0.1:{admin}"))
        .arg("--data-dir")
        .arg(data)
        .arg(dir)
        .output()
        .expect("run berth apply");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// One GET through the HTTP listener on a new connection: the body, or why it failed.
fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: h16r\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    if !out.starts_with("HTTP/1.1 200") {
        return Err(out.lines().next().unwrap_or("empty answer").to_string());
    }
    Ok(out
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// What the client saw: successes, failures (with why), and the versions served, in order of
/// first appearance.
#[derive(Default, Debug)]
struct Seen {
    ok: u32,
    failed: Vec<String>,
    versions: Vec<String>,
}

/// The project's compose.yaml with its HTTP and TCP ports.
fn compose(http: u16, tcp: u16) -> String {
    COMPOSE
        .replace("HTTP", &http.to_string())
        .replace("TCP", &tcp.to_string())
}

/// Until `stop` (at most 5 minutes): a GET through the HTTP listener and a request through
/// the TCP listener, each on a new connection, back to back.
fn client(stop: Arc<AtomicBool>) -> Seen {
    client_of(stop, HTTP_PORT, TCP_PORT)
}

fn client_of(stop: Arc<AtomicBool>, http: u16, tcp: u16) -> Seen {
    let mut seen = Seen::default();
    let until = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        match get(http, "/version") {
            Ok(v) => {
                seen.ok += 1;
                if seen.versions.last() != Some(&v) {
                    seen.versions.push(v);
                }
            }
            Err(e) => seen.failed.push(format!("http: {e}")),
        }
        match get(tcp, "/version") {
            Ok(_) => seen.ok += 1,
            Err(e) => seen.failed.push(format!("tcp: {e}")),
        }
    }
    seen
}

fn routes(data: &Path) -> Routes {
    berth::proxy::file::read(&berth::proxy::file::path(data)).expect("the routes file")
}

#[test]
fn updates_and_a_revert_through_the_handoff_proxy_fail_no_request() {
    support::tier::require_engine();
    ensure_images();
    let tmp = tempfile::tempdir().unwrap();
    let project = format!("h16r-ho{}", std::process::id());
    let dir = tmp.path().join(&project);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose(HTTP_PORT, TCP_PORT)).unwrap();
    let guard = Guard {
        project: project.clone(),
        claim: format!("h16r-claim-{}", std::process::id()),
        data: data.clone(),
        _tmp: tmp,
    };
    let (ok, out) = apply(&dir, &data, &guard.claim, "TAG=1\nGEN=0\n");
    assert!(ok, "first apply failed:\n{out}");
    // berth started the proxy; the container publishes nothing itself.
    let until = Instant::now() + Duration::from_secs(20);
    while get(HTTP_PORT, "/version").as_deref() != Ok("1") {
        assert!(Instant::now() < until, "the proxy never served version 1");
        std::thread::sleep(Duration::from_millis(100));
    }
    let web = format!("{project}-web-1");
    let published = docker(&["port", &web]);
    assert!(published.trim().is_empty(), "{web} publishes {published}");

    let stop = Arc::new(AtomicBool::new(false));
    let sampling = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || client(stop))
    };
    std::thread::sleep(Duration::from_millis(300));
    // Good updates: the image and the environment change in turn.
    let goods = [("2", "1"), ("1", "2"), ("2", "3")];
    for (tag, generation) in goods {
        let (ok, out) = apply(
            &dir,
            &data,
            &guard.claim,
            &format!("TAG={tag}\nGEN={generation}\n"),
        );
        assert!(ok, "update to {tag}/{generation} failed:\n{out}");
        assert!(
            out.contains("start-first (x-berth.handoff"),
            "not start-first:\n{out}"
        );
        assert!(out.contains("route "), "no route step:\n{out}");
    }
    // A bad update: never ready, reverted; its candidate never receives traffic.
    let (ok, out) = apply(&dir, &data, &guard.claim, "TAG=bad\nGEN=4\n");
    assert!(!ok, "the bad update converged:\n{out}");
    assert!(out.contains("reverting to"), "no revert:\n{out}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = sampling.join().unwrap();
    eprintln!(
        "through the handoff proxy during {} updates and a revert: {} ok, {} failed, versions {:?}",
        goods.len(),
        seen.ok,
        seen.failed.len(),
        seen.versions
    );
    assert!(
        seen.failed.is_empty(),
        "{} failed: {:?}",
        seen.failed.len(),
        &seen.failed[..seen.failed.len().min(5)]
    );
    assert!(seen.ok > 50, "only {} requests were sent", seen.ok);
    assert_eq!(seen.versions, ["1", "2", "1", "2"], "{seen:?}");
    assert!(!seen.versions.iter().any(|v| v == "bad"));

    // What runs: the last good revision, routed, one container.
    let r = routes(&data);
    let names: Vec<&str> = r.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{project}/web:41260").as_str(),
            format!("{project}/web:41261").as_str()
        ]
    );
    assert_eq!(r.listeners[0].backends.len(), 1, "{r:?}");
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &web,
    ]);
    assert_eq!(r.listeners[0].backends[0].addr.ip().to_string(), ip.trim());
    assert_eq!(get(HTTP_PORT, "/version").as_deref(), Ok("2"));
    let state = get(ADMIN_PORT, "/state").expect("the proxy's /state");
    assert!(state.contains(&format!("{project}/web:41260")), "{state}");
    drop(guard);
}

const KILL_HTTP: u16 = 41263;
const KILL_TCP: u16 = 41264;
const KILL_ADMIN: u16 = 41265;

/// `berth run` on `dir`, its log in `log`; killed by the test.
fn berth_run(dir: &Path, data: &Path, claim: &str, log: &Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    berth_command(claim)
        .args([
            "-v",
            "run",
            "--listen",
            "off",
            "--debounce",
            "100ms",
            "--dir",
        ])
        .arg(dir)
        .arg("--data-dir")
        .arg(data)
        .arg("--proxy-admin")
        .arg(format!("127.0.0.1:{KILL_ADMIN}"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start berth run")
}

/// The backends of the HTTP listener in the routes file (empty while there is none).
fn backends(data: &Path, listener: &str) -> Vec<String> {
    berth::proxy::file::read(&berth::proxy::file::path(data))
        .ok()
        .and_then(|r| {
            r.listener(listener)
                .map(|l| l.backends.iter().map(|b| b.name.clone()).collect())
        })
        .unwrap_or_default()
}

/// Polls `f` every 50 ms for at most `limit`; whether it held.
fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn killing_berth_run_mid_update_twice_fails_no_request() {
    support::tier::require_engine();
    ensure_images();
    let tmp = tempfile::tempdir().unwrap();
    let project = format!("h16r-hk{}", std::process::id());
    let dir = tmp.path().join(&project);
    let data = tmp.path().join("data");
    let log = tmp.path().join("berth-run.log");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose(KILL_HTTP, KILL_TCP)).unwrap();
    std::fs::write(dir.join(".env"), "TAG=1\nGEN=0\n").unwrap();
    let guard = Guard {
        project: project.clone(),
        claim: format!("h16r-claim-k{}", std::process::id()),
        data: data.clone(),
        _tmp: tmp,
    };
    let say_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut run = berth_run(&dir, &data, &guard.claim, &log);
    assert!(
        poll(Duration::from_secs(60), || get(KILL_HTTP, "/version")
            .as_deref()
            == Ok("1")),
        "version 1 was never served; berth run's log:\n{}",
        say_log()
    );
    let listener = format!("{project}/web:{KILL_HTTP}");
    let before = backends(&data, &listener);
    assert_eq!(before.len(), 1, "{before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let sampling = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || client_of(stop, KILL_HTTP, KILL_TCP))
    };
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.join(".env"), "TAG=2\nGEN=1\n").unwrap();
    // Kill 1: the candidate runs beside the old container, under its gate.
    let candidate = format!("{project}-web-1-");
    let gated = poll(Duration::from_secs(30), || {
        docker(&[
            "ps",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("name={candidate}"),
        ])
        .lines()
        .any(|n| n.starts_with(&candidate))
    });
    assert!(
        gated,
        "no candidate beside the old one; log:\n{}",
        say_log()
    );
    run.kill().unwrap();
    run.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Kill 2: right after the switch, while the old container drains.
    run = berth_run(&dir, &data, &guard.claim, &log);
    let switched = poll(Duration::from_secs(30), || {
        let now = backends(&data, &listener);
        !now.is_empty() && now != before
    });
    assert!(switched, "the routes never switched; log:\n{}", say_log());
    let old_running = docker(&["ps", "-q", "--filter", &format!("name=^{project}-web-1$")]);
    run.kill().unwrap();
    run.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    run = berth_run(&dir, &data, &guard.claim, &log);
    let done = poll(Duration::from_secs(60), || {
        let names = docker(&[
            "ps",
            "-a",
            "--format",
            "{{.Names}}",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ]);
        get(KILL_HTTP, "/version").as_deref() == Ok("2")
            && names.split_whitespace().collect::<Vec<_>>() == [format!("{project}-web-1")]
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = sampling.join().unwrap();
    let _ = run.kill();
    let _ = run.wait();
    assert!(done, "the update never finished; log:\n{}", say_log());
    eprintln!(
        "berth run killed twice mid-update (the second time {} the old container stopped): {} ok, {} failed, versions {:?}",
        if old_running.trim().is_empty() {
            "after"
        } else {
            "before"
        },
        seen.ok,
        seen.failed.len(),
        seen.versions
    );
    assert!(
        seen.failed.is_empty(),
        "{} failed: {:?}",
        seen.failed.len(),
        &seen.failed[..seen.failed.len().min(5)]
    );
    assert!(seen.ok > 50, "only {} requests were sent", seen.ok);
    assert_eq!(seen.versions, ["1", "2"], "{seen:?}");
    drop(guard);
}

const MULTI_HTTP: u16 = 41266;
const MULTI_TCP: u16 = 41267;
const MULTI_ADMIN: u16 = 41268;

#[test]
fn two_replicas_behind_one_handed_off_port_share_it_and_update_without_a_failure() {
    support::tier::require_engine();
    ensure_images();
    let tmp = tempfile::tempdir().unwrap();
    let project = format!("h16r-hm{}", std::process::id());
    let dir = tmp.path().join(&project);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = compose(MULTI_HTTP, MULTI_TCP)
        .replace("    image:", "    deploy: {replicas: 2}\n    image:");
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    let guard = Guard {
        project: project.clone(),
        claim: format!("h16r-claim-m{}", std::process::id()),
        data: data.clone(),
        _tmp: tmp,
    };
    let (ok, out) = apply_with(&dir, &data, &guard.claim, "TAG=1\nGEN=0\n", MULTI_ADMIN);
    assert!(ok, "first apply failed:\n{out}");
    let listener = format!("{project}/web:{MULTI_HTTP}");
    assert_eq!(backends(&data, &listener).len(), 2);
    // Round robin: `/` names the container's host name; both answer within a few requests.
    let mut hosts = std::collections::BTreeSet::new();
    assert!(
        poll(Duration::from_secs(20), || {
            if let Ok(body) = get(MULTI_HTTP, "/") {
                hosts.insert(body.rsplit(' ').next().unwrap_or_default().to_string());
            }
            hosts.len() == 2
        }),
        "one replica only: {hosts:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sampling = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || client_of(stop, MULTI_HTTP, MULTI_TCP))
    };
    std::thread::sleep(Duration::from_millis(300));
    let (ok, out) = apply_with(&dir, &data, &guard.claim, "TAG=2\nGEN=1\n", MULTI_ADMIN);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let seen = sampling.join().unwrap();
    assert!(ok, "the update failed:\n{out}");
    // While the two replicas are on different versions, answers alternate between them.
    eprintln!(
        "two replicas behind one port, updated: {} ok, {} failed, {} changes of version seen",
        seen.ok,
        seen.failed.len(),
        seen.versions.len() - 1
    );
    assert!(
        seen.failed.is_empty(),
        "{} failed: {:?}",
        seen.failed.len(),
        &seen.failed[..seen.failed.len().min(5)]
    );
    assert_eq!(seen.versions.first().map(String::as_str), Some("1"));
    assert_eq!(seen.versions.last().map(String::as_str), Some("2"));
    let now = backends(&data, &listener);
    assert_eq!(now.len(), 2, "{now:?}");
    drop(guard);
}
