//! Engine tier: `berth proxy` (the binary, following its routes file) in front of real
//! containers, reached from the host by their bridge addresses as the design has it
//! (docs/architecture.md#port-handoff-issue-16). A sampler on loopback sends HTTP requests
//! (new connection each) and opens TCP connections through the proxy while the routes switch
//! from a berth-demo:1 container to a berth-demo:2 one and the old one is stopped, then back
//! (a revert): no failed request, no refused connection.
//!
//! Not yet here (rollouts do not drive the proxy): berth run switching it itself, and a
//! controller kill mid-update. Host ports 41210-41219 (h16's range).

mod support {
    pub mod tier;
    pub mod world;
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth::desired::model::HandoffMode;
use berth::proxy::routes::{Backend, FORMAT, Listener, Routes};
use support::world::{berth_command, docker, inspect, remove_project};

const HTTP_PORT: u16 = 41210;
const TCP_PORT: u16 = 41211;
const ADMIN_PORT: u16 = 41212;

struct Guard {
    project: String,
    proxy: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        remove_project(&self.project);
    }
}

fn run_container(project: &str, name: &str, image: &str) -> SocketAddr {
    let id = docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--label",
        &format!("com.docker.compose.project={project}"),
        image,
    ]);
    assert!(!id.trim().is_empty(), "docker run {image} failed");
    let ip = inspect(
        name,
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    let addr: SocketAddr = format!("{ip}:8080").parse().expect("a bridge address");
    // Bounded: the demo answers within a second or two of starting.
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
        assert!(Instant::now() < until, "{name} never listened on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    addr
}

fn routes(backend: (&str, SocketAddr)) -> Routes {
    let listener = |name: &str, port: u16, mode| Listener {
        name: name.into(),
        bind: SocketAddr::from(([127, 0, 0, 1], port)),
        mode,
        proxy_protocol: false,
        drain_timeout_ms: 5000,
        backends: vec![Backend {
            name: backend.0.into(),
            addr: backend.1,
        }],
    };
    Routes {
        format: FORMAT,
        listeners: vec![
            listener("h16/web:http", HTTP_PORT, HandoffMode::Http),
            listener("h16/web:tcp", TCP_PORT, HandoffMode::Tcp),
        ],
    }
}

/// Writes the routes file as berth does: a temp file, then a rename.
fn write_routes(path: &std::path::Path, r: &Routes) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, r.to_json()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One GET through the proxy on a new connection: the body, or why it failed.
fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: h16\r\nconnection: close\r\n\r\n"
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

/// Until `stop`: HTTP GETs and TCP connects through the proxy; the failures with their reason.
fn sampler(stop: Arc<AtomicBool>) -> (u32, Vec<String>) {
    let (mut ok, mut failed) = (0, Vec::new());
    let until = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        match get(HTTP_PORT, "/version") {
            Ok(_) => ok += 1,
            Err(e) => failed.push(format!("http: {e}")),
        }
        match TcpStream::connect(("127.0.0.1", TCP_PORT)) {
            Ok(mut s) => {
                // The demo answers HTTP; over the TCP listener too.
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let _ =
                    s.write_all(b"GET /version HTTP/1.1\r\nhost: h16\r\nconnection: close\r\n\r\n");
                let mut out = String::new();
                match s.read_to_string(&mut out) {
                    Ok(_) if out.starts_with("HTTP/1.1 200") => ok += 1,
                    r => failed.push(format!("tcp: {r:?} {:?}", out.lines().next())),
                }
            }
            Err(e) => failed.push(format!("tcp connect: {e}")),
        }
    }
    (ok, failed)
}

fn wait_for_version(want: &str, log: &std::path::Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while get(HTTP_PORT, "/version").as_deref() != Ok(want) {
        assert!(
            Instant::now() < until,
            "the proxy never served version {want} (last answer {:?}); its log:\n{}",
            get(HTTP_PORT, "/version"),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_switch_and_a_revert_through_berth_proxy_fail_no_request() {
    support::tier::require_engine();
    for image in ["berth-demo:1", "berth-demo:2"] {
        assert!(
            !docker(&["image", "inspect", "-f", "{{.Id}}", image])
                .trim()
                .is_empty(),
            "engine tier: image {image} is missing; scripts/build-images builds it"
        );
    }
    let project = format!("h16handoff{}", std::process::id());
    let mut guard = Guard {
        project: project.clone(),
        proxy: None,
    };
    let v1 = run_container(&project, &format!("{project}-web-1"), "berth-demo:1");
    let v2 = run_container(&project, &format!("{project}-web-2"), "berth-demo:2");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.json");
    write_routes(&path, &routes(("web-1", v1)));
    let proxy = berth_command(&format!("{project}-claim"))
        .args(["proxy", "--routes"])
        .arg(&path)
        .args(["--admin", &format!("127.0.0.1:{ADMIN_PORT}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("proxy.log")).unwrap())
        .spawn()
        .expect("spawn berth proxy");
    guard.proxy = Some(proxy);
    wait_for_version("1", &dir.path().join("proxy.log"));

    let stop = Arc::new(AtomicBool::new(false));
    let sampling = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || sampler(stop))
    };
    std::thread::sleep(Duration::from_millis(500));
    // The update: web-2 is ready, the switch, then web-1 stops (its drain is instant here).
    write_routes(&path, &routes(("web-2", v2)));
    wait_for_version("2", &dir.path().join("proxy.log"));
    docker(&["stop", "-t", "5", &format!("{project}-web-1")]);
    std::thread::sleep(Duration::from_millis(500));
    // The revert: web-1 starts again (same address on the default bridge is not promised).
    docker(&["start", &format!("{project}-web-1")]);
    let ip = inspect(
        &format!("{project}-web-1"),
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    );
    let v1 = format!("{ip}:8080").parse().unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&v1, Duration::from_millis(500)).is_err() {
        assert!(Instant::now() < until, "web-1 never listened again");
        std::thread::sleep(Duration::from_millis(100));
    }
    write_routes(&path, &routes(("web-1", v1)));
    wait_for_version("1", &dir.path().join("proxy.log"));
    docker(&["stop", "-t", "5", &format!("{project}-web-2")]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = sampling.join().unwrap();
    eprintln!("through berth proxy: {ok} ok, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok > 20, "only {ok} requests were sent");

    let state = get(ADMIN_PORT, "/state").expect("admin /state");
    assert!(state.contains("\"name\": \"web-1\""), "{state}");
    let metrics = get(ADMIN_PORT, "/metrics").expect("admin /metrics");
    assert!(
        metrics.contains("berth_proxy_requests_total{listener=\"h16/web:http\",backend=\"web-1\"}"),
        "{metrics}"
    );
}
