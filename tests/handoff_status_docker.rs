//! Engine tier: what an operator sees of port handoff (issue 16). `berth run` (the binary,
//! with its HTTP server) rolls a service with `x-berth.handoff` from one image to another
//! while a client holds a TCP connection through the proxy open on the old replica. Proven:
//! berth's own `/metrics` carries the proxy's per-backend series (`berth_proxy_up 1`,
//! requests, active connections by state); `/api/v1/status` and `berth status --server` name
//! the routed replica, and during the update the old one draining with its one connection;
//! after the update the new replica is routed, also in `berth status DIR` (no server asked).
//!
//! Names: project `h16m-hs<pid>`, claim container `h16m-claim-<pid>`, host ports
//! 41290-41293 (this file's range) on 127.0.0.1. A guard kills the `berth run` it started,
//! stops the proxy that berth started (by the PID it wrote) and removes the project, whatever
//! the outcome. Every wait is bounded.

mod support {
    pub mod tier;
    pub mod world;
}

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth::telemetry::status::{PortTraffic, Status};
use support::world::{berth_command, docker, ensure_images, remove_project};

const HTTP_PORT: u16 = 41290;
const TCP_PORT: u16 = 41291;
const ADMIN_PORT: u16 = 41292;
const BERTH_PORT: u16 = 41293;

const COMPOSE: &str = r#"services:
  web:
    image: berth-demo:${TAG:-1}
    ports: ["127.0.0.1:41290:8080", "127.0.0.1:41291:8080"]
    stop_grace_period: 2s
    x-berth:
      readiness: {http: {port: 8080, path: /health}, interval: 300ms}
      min_ready: 1s
      progress_deadline: 20s
      handoff:
        mode: http
        ports: {41291: tcp}
        drain_timeout: 15s
"#;

struct Guard {
    project: String,
    claim: String,
    data: PathBuf,
    berth: Option<Child>,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut b) = self.berth.take() {
            let _ = b.kill();
            let _ = b.wait();
        }
        // Only the proxy this test's berth started: its PID file in this test's data dir.
        if let Ok(pid) = std::fs::read_to_string(self.data.join("proxy/proxy.pid")) {
            let pid = pid.trim();
            if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        if std::thread::panicking() {
            let tail = |p: &Path| {
                let t = std::fs::read_to_string(p).unwrap_or_default();
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(60)..].join("\n")
            };
            eprintln!("--- berth run log ---\n{}", tail(&self.log));
            eprintln!(
                "--- proxy log ---\n{}",
                tail(&self.data.join("proxy/proxy.log"))
            );
        }
        docker(&["rm", "-f", &self.claim]);
        remove_project(&self.project);
    }
}

/// One GET on a new connection: (status, body), or why it failed.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: h16m\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

fn version() -> String {
    get(HTTP_PORT, "/version")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default()
}

fn metrics() -> String {
    get(BERTH_PORT, "/metrics")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

fn status() -> Option<Status> {
    let (code, body) = get(BERTH_PORT, "/api/v1/status").ok()?;
    if code != 200 {
        return None;
    }
    Some(serde_json::from_str(&body).expect("a status"))
}

/// The web service's traffic on `port` in berth's `/api/v1/status`.
fn traffic(project: &str, port: u16) -> Option<PortTraffic> {
    let s = status()?;
    let web = s
        .services
        .iter()
        .find(|s| s.project == project && s.service == "web")?;
    web.traffic
        .iter()
        .find(|t| t.listener == format!("{project}/web:{port}"))
        .cloned()
}

/// `berth status --server` (the table).
fn status_table() -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["status", "--server"])
        .arg(format!("http://127.0.0.1:{BERTH_PORT}"))
        .output()
        .expect("run berth status");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Polls `f` every 100 ms for at most `limit`; panics naming `what` if it never held.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection through the TCP listener kept open (a request head sent a line a second,
/// which the demo app keeps reading) until `stop`, at most 90 s.
fn held_connection(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", TCP_PORT)) else {
            return;
        };
        let _ = s.write_all(b"GET /version HTTP/1.1\r\nhost: h16m\r\n");
        let until = Instant::now() + Duration::from_secs(90);
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            if s.write_all(b"x-held: 1\r\n").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

#[test]
fn metrics_and_status_show_the_routed_replica_and_the_draining_one() {
    support::tier::require_engine();
    ensure_images();
    let tmp = tempfile::tempdir().unwrap();
    let project = format!("h16m-hs{}", std::process::id());
    let dir = tmp.path().join(&project);
    let data = tmp.path().join("data");
    let log = tmp.path().join("berth.log");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), COMPOSE).unwrap();
    std::fs::write(dir.join(".env"), "TAG=1\n").unwrap();
    let mut guard = Guard {
        project: project.clone(),
        claim: format!("h16m-claim-{}", std::process::id()),
        data: data.clone(),
        berth: None,
        log: log.clone(),
        _tmp: tmp,
    };
    let log_file = std::fs::File::create(&log).unwrap();
    guard.berth = Some(
        berth_command(&guard.claim)
            .args([
                "-v",
                "run",
                "--debounce",
                "100ms",
                "--resync",
                "5s",
                "--listen",
            ])
            .arg(format!("127.0.0.1:{BERTH_PORT}"))
            .arg("--proxy-admin")
            .arg(format!("127.0.0.1:{ADMIN_PORT}"))
            .arg("--dir")
            .arg(&dir)
            .arg("--data-dir")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start berth run"),
    );
    wait_for(
        "version 1 through the proxy",
        Duration::from_secs(60),
        || (version() == "1").then_some(()),
    );
    let http = format!("{project}/web:{HTTP_PORT}");
    let tcp = format!("{project}/web:{TCP_PORT}");

    // Before: the one replica is routed, in the status and in berth's metrics.
    let before = wait_for(
        "the status to name the routed replica",
        Duration::from_secs(30),
        || traffic(&project, HTTP_PORT).filter(|t| t.proxy_up && t.routed.len() == 1),
    );
    let old = before.routed[0].clone();
    let m = metrics();
    assert!(m.contains("\nberth_proxy_up 1\n"), "{m}");
    let requests = format!("berth_proxy_requests_total{{listener=\"{http}\",backend=\"{old}\"}} ");
    let served: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix(&requests))
        .unwrap_or_else(|| panic!("no {requests} in\n{m}"))
        .parse()
        .unwrap();
    assert!(served >= 1, "{m}");
    let table = status_table();
    assert!(
        table.contains(&format!("{http}: traffic to {old} (")),
        "{table}"
    );

    // During: a connection held on the old replica through the TCP listener, then an update.
    let stop = Arc::new(AtomicBool::new(false));
    let holder = held_connection(Arc::clone(&stop));
    wait_for(
        "the held connection to be active",
        Duration::from_secs(10),
        || traffic(&project, TCP_PORT).filter(|t| t.active >= 1),
    );
    std::fs::write(dir.join(".env"), "TAG=2\n").unwrap();
    let during = wait_for(
        "the old replica to drain its connection",
        Duration::from_secs(60),
        || {
            traffic(&project, TCP_PORT)
                .filter(|t| !t.routed.contains(&old) && t.draining.iter().any(|d| d.replica == old))
        },
    );
    eprintln!("during the update: {during:?}");
    assert_eq!(during.draining[0].connections, 1, "{during:?}");
    let m = metrics();
    let draining = format!(
        "berth_proxy_active_connections{{listener=\"{tcp}\",backend=\"{old}\",state=\"draining\"}} 1"
    );
    assert!(m.contains(&draining), "no {draining} in\n{m}");
    let table = status_table();
    assert!(
        table.contains(&format!("; draining {old} (1 connection)")),
        "{table}"
    );

    // After: the held connection closes, the new replica serves and is the one routed.
    stop.store(true, Ordering::Relaxed);
    holder.join().unwrap();
    wait_for(
        "version 2 through the proxy",
        Duration::from_secs(60),
        || (version() == "2").then_some(()),
    );
    let after = wait_for(
        "the status to route the new replica only",
        Duration::from_secs(30),
        || traffic(&project, HTTP_PORT).filter(|t| t.routed.len() == 1 && !t.routed.contains(&old)),
    );
    let new = &after.routed[0];
    let m = wait_for(
        "berth's metrics to count the new replica",
        Duration::from_secs(10),
        || {
            let _ = version();
            let m = metrics();
            m.contains(&format!(
            "berth_proxy_active_connections{{listener=\"{http}\",backend=\"{new}\",state=\"routed\"}}"
        ))
        .then_some(m)
        },
    );
    assert!(
        m.contains(&format!(
            "berth_proxy_requests_total{{listener=\"{http}\",backend=\"{new}\"}}"
        )),
        "{m}"
    );
    let table = status_table();
    assert!(
        table.contains(&format!("{http}: traffic to {new} (")),
        "{table}"
    );
    // `berth status DIR`, without asking the running berth: the same from the data dir and
    // the proxy.
    let o = berth_command(&guard.claim)
        .arg("status")
        .arg(&dir)
        .arg("--data-dir")
        .arg(&data)
        .arg("--proxy-admin")
        .arg(format!("127.0.0.1:{ADMIN_PORT}"))
        .output()
        .expect("run berth status DIR");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains(&format!("{http}: traffic to {new} (")),
        "{table}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    drop(guard);
}
