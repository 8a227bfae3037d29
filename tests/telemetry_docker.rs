//! Observability against the real engine and real clients: a real Prometheus (Debian's
//! `prometheus`, on 127.0.0.1 with a temporary config and storage) scrapes a real `berth run`
//! and a PromQL query finds the test service ready; `promtool check metrics` accepts a real
//! scrape; `berth status` (from the server and from the engine) and `berth events` show the
//! service; notifications follow a bad update that is reverted, an invalid desired state and
//! its repair, while a silent and a dead receiver do not hold anything up. Each test has its
//! own project, data dir and ports, a guard that removes what it created, and bounded waits.

mod support {
    pub mod receiver;
    pub mod tier;
    pub mod world;
}

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::receiver::{Behaviour, Receiver};
use support::world::{TestProject, docker, free_port, http_get};

const BIN: &str = env!("CARGO_BIN_EXE_berth");
const HEALTH: &str = "healthcheck: {test: [CMD, berth-demo, probe, 'http://127.0.0.1:8080/health'], interval: 1s, timeout: 1s, retries: 2}";

/// A child process killed (and reaped) on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn data_dir(p: &TestProject) -> PathBuf {
    p.dir.parent().unwrap().join("data")
}

/// `berth run` on the project, serving on `port`, with extra arguments; its log goes to a file
/// next to the data dir (kept for the failure message).
fn berth_run(p: &TestProject, port: u16, extra: &[String]) -> Running {
    let log = std::fs::File::create(p.dir.parent().unwrap().join("berth.log")).unwrap();
    let child = p
        .berth()
        .args(["run", "--resync", "2s", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--dir")
        .arg(&p.dir)
        .arg("--data-dir")
        .arg(data_dir(p))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Running(child)
}

fn berth_log(p: &TestProject) -> String {
    std::fs::read_to_string(p.dir.parent().unwrap().join("berth.log")).unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, p: &TestProject, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out after {limit:?} waiting for {what}; berth's log:\n{}",
        berth_log(p)
    );
}

/// The service's entry in `/api/v1/status`.
fn service_status(port: u16, service: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get(port, "/api/v1/status", 2000)?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["services"]
        .as_array()?
        .iter()
        .find(|s| s["service"] == service)
        .cloned()
}

/// GET with an Accept header; the body.
fn scrape(port: u16, accept: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn cli(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A Prometheus on 127.0.0.1 scraping `target` every second; killed on drop.
fn prometheus(dir: &Path, target: u16) -> (Running, u16) {
    support::tier::require_tool("prometheus", "prometheus");
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: berth\n    static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prometheus");
    (Running(child), port)
}

/// `%`-encodes a PromQL expression for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_scrapes_berth_and_the_cli_shows_what_runs() {
    support::tier::require_tool("prometheus", "prometheus");
    support::tier::require_tool("promtool", "prometheus");
    let p = TestProject::new(
        "obs",
        "services:\n  web:\n    image: berth-test-busybox:1\n",
    );
    let port = free_port();
    let mut run = berth_run(&p, port, &[]);
    wait_until(
        "the service ready in the status",
        Duration::from_secs(60),
        &p,
        || service_status(port, "web").is_some_and(|s| s["phase"] == "Idle" && s["ready"] == 1),
    );
    assert_eq!(http_get(port, "/readyz", 2000).unwrap().0, 200);
    assert_eq!(http_get(port, "/healthz", 2000).unwrap().0, 200);

    // promtool lints a real scrape as `curl …/metrics | promtool check metrics` makes it
    // (curl accepts anything: the classic text format comes back, what promtool reads).
    let text = scrape(port, "*/*");
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // No container IDs or digests in any label.
    let om = scrape(port, "application/openmetrics-text;version=1.0.0");
    assert!(om.ends_with("# EOF\n"));
    for id in docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=com.docker.compose.project={}", p.name),
    ])
    .split_whitespace()
    {
        assert!(!om.contains(&id[..12]), "container ID {id} in the metrics");
    }
    assert!(!om.contains("sha256"), "a digest in the metrics");
    assert!(om.contains(&format!(
        "berth_rollouts_total{{project=\"{}\",service=\"web\",result=\"failed\"}} 0",
        p.name
    )));

    // A real Prometheus scrapes berth; PromQL finds the service ready.
    let tmp = tempfile::tempdir().unwrap();
    let (_prom, prom_port) = prometheus(tmp.path(), port);
    let query = format!(
        "/api/v1/query?query={}",
        encode(&format!(
            "berth_service_ready{{project=\"{}\",service=\"web\"}}",
            p.name
        ))
    );
    let mut last = String::new();
    wait_until(
        "PromQL to return berth_service_ready",
        Duration::from_secs(90),
        &p,
        || {
            let Some((200, body)) = http_get(prom_port, &query, 2000) else {
                return false;
            };
            last = body.clone();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            v["data"]["result"]
                .as_array()
                .and_then(|r| r.first())
                .is_some_and(|s| s["value"][1] == "1" && s["metric"]["job"] == "berth")
        },
    );

    // berth status from the server: the table and the JSON.
    let server = format!("http://127.0.0.1:{port}");
    let table = stdout(&cli(&["status", "--server", &server]));
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{}/web ", p.name)))
        .unwrap_or_else(|| panic!("no row for the service:\n{table}"));
    assert!(
        row.contains("berth-test-busybox:1") && row.contains("1/1") && row.contains("Idle"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&cli(&["status", "--json", "--server", &server]).stdout).unwrap();
    assert_eq!(json["source"]["valid"], true);
    assert_eq!(json["engine_reachable"], true);

    // berth status without a server: from the engine and the data dir, the same row.
    let offline = cli(&[
        "status",
        p.dir.to_str().unwrap(),
        "--data-dir",
        data_dir(&p).to_str().unwrap(),
    ]);
    let offline_text = stdout(&offline);
    assert!(offline.status.success(), "{offline:?}");
    assert!(
        offline_text.contains("built by observing the engine now"),
        "{offline_text}"
    );
    let offline_row = offline_text
        .lines()
        .find(|l| l.starts_with(&format!("{}/web ", p.name)))
        .unwrap_or_else(|| panic!("{offline_text}"));
    assert!(
        offline_row.contains("r1 berth-test-busybox:1") && offline_row.contains("Idle"),
        "{offline_text}"
    );

    // berth events from the data dir and from the server.
    let events = stdout(&cli(&[
        "events",
        "--data-dir",
        data_dir(&p).to_str().unwrap(),
    ]));
    assert!(
        events.contains(&format!("{}/web  rollout_succeeded r1 (ready)", p.name)),
        "{events}"
    );
    let served = stdout(&cli(&[
        "events", "--json", "--since", "0", "--server", &server,
    ]));
    let kinds: Vec<String> = served
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["rollout_started", "rollout_succeeded"], "{served}");

    // SIGTERM: berth stops, the server with it.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(run.0.id() as libc::pid_t, libc::SIGTERM) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = run.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "berth did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}\n{}", berth_log(&p));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let _ = last;
}

fn kinds_at(r: &Receiver, path: &str) -> Vec<String> {
    r.received()
        .iter()
        .filter(|x| x.path == path)
        .map(|x| {
            serde_json::from_str::<serde_json::Value>(&x.body).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn notifications_follow_a_revert_and_an_invalid_state_while_bad_receivers_wait() {
    let good = Receiver::start(Behaviour::Answer, &[200], Duration::ZERO);
    let silent = Receiver::start(Behaviour::Silent, &[], Duration::ZERO);
    let dead = free_port();
    let yaml = format!(
        "services:\n  web:\n    image: ${{IMAGE}}\n    {HEALTH}\n    x-berth: {{min_ready: 1s, progress_deadline: 15s}}\n"
    );
    let p = TestProject::new("notify", &yaml);
    std::fs::write(p.dir.join(".env"), "IMAGE=berth-demo:1\n").unwrap();
    let port = free_port();
    let notify = |url: String| ["--notify".to_string(), url];
    let args: Vec<String> = [
        notify(format!("http://127.0.0.1:{}/json", good.port)),
        notify(format!("slack+http://127.0.0.1:{}/slack", good.port)),
        notify(format!("http://127.0.0.1:{}/silent", silent.port)),
        notify(format!("http://127.0.0.1:{dead}/dead")),
    ]
    .concat();
    let _run = berth_run(&p, port, &args);
    let limit = Duration::from_secs(90);
    wait_until("rollout_succeeded notified", limit, &p, || {
        kinds_at(&good, "/json") == ["rollout_succeeded"]
    });
    good.wait_for("the Slack message", limit, |r| {
        r.iter().any(|x| {
            x.path == "/slack"
                && x.body
                    .contains(&format!("*{}/web* rollout succeeded", p.name))
        })
    });

    // A bad update: it fails its gate and is reverted; both are notified.
    std::fs::write(p.dir.join(".env"), "IMAGE=berth-demo:bad\n").unwrap();
    wait_until("the revert notified", limit, &p, || {
        kinds_at(&good, "/json") == ["rollout_succeeded", "rollout_failed", "reverted"]
    });
    let st = service_status(port, "web").unwrap();
    assert_eq!(st["phase"], "Reverted", "{st:#}");
    assert_eq!(st["running"][0]["revision"], 1, "{st:#}");

    // An invalid desired state, then its repair.
    p.write("services:\n  web:\n    image: [\n");
    wait_until("desired_state_invalid notified", limit, &p, || {
        kinds_at(&good, "/json").last().map(String::as_str) == Some("desired_state_invalid")
    });
    assert_eq!(
        http_get(port, "/readyz", 2000).unwrap().0,
        503,
        "the last good state keeps running, but what is desired is invalid: not ready"
    );
    p.write(&yaml);
    wait_until("recovered notified", limit, &p, || {
        kinds_at(&good, "/json").last().map(String::as_str) == Some("recovered")
    });
    // Only meaningful transitions were sent (no rollout_started, no self-heal).
    assert_eq!(
        kinds_at(&good, "/json"),
        [
            "rollout_succeeded",
            "rollout_failed",
            "reverted",
            "desired_state_invalid",
            "recovered"
        ]
    );
    // The silent receiver got its first message and holds it; nothing waited for it.
    assert!(!silent.received().is_empty());
    let events = stdout(&cli(&[
        "events",
        "--data-dir",
        data_dir(&p).to_str().unwrap(),
    ]));
    assert!(events.contains("reverted r1"), "{events}");
}
