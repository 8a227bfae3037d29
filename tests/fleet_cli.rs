//! The fleet's placement as a user meets it: `berth-hosts.yaml` and `x-berth.placement`
//! through `validate`, `plan --all-hosts` and `apply --host`; every mistake a positioned
//! error with what to do, and nothing changes without a hosts file.

use std::path::Path;
use std::process::{Command, Output};

use indoc::indoc;

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/berth-h18-fleet.sock")
        .output()
        .expect("run berth")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

const HOSTS: &str = indoc! {"
    hosts:
      canary:
        labels: {env: prod}
        status_url: http://127.0.0.1:19001
      web-1:
        labels: {env: prod, role: web}
        status_url: http://127.0.0.1:19002
      worker-1:
        labels: {env: prod, role: worker}
        projects: [queue]
    waves:
      - [canary]
      - [web-1, worker-1]
    soak: 1m
"};

/// A repository: `shop` on every prod host (labels), `blog` on web-1 (by name), `queue`
/// listed under worker-1 in the hosts file.
fn fleet_repo(hosts: Option<&str>) -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, body: &str| {
        let p = t.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    };
    if let Some(h) = hosts {
        write("berth-hosts.yaml", h);
    }
    write(
        "shop/compose.yaml",
        "services:\n  web:\n    image: nginx:1\nx-berth:\n  placement:\n    labels: {env: prod}\n",
    );
    write(
        "blog/compose.yaml",
        "services:\n  ghost:\n    image: ghost:5\nx-berth:\n  placement:\n    hosts: [web-1]\n",
    );
    write(
        "queue/compose.yaml",
        "services:\n  worker:\n    image: worker:1\n",
    );
    t
}

fn dir(t: &tempfile::TempDir) -> String {
    t.path().display().to_string()
}

#[test]
fn validate_all_hosts_prints_which_project_lands_where() {
    let t = fleet_repo(Some(HOSTS));
    let o = berth(&["validate", &dir(&t), "--all-hosts"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let table = out.split_once("\n\n").map(|(_, t)| t).unwrap_or_default();
    assert_eq!(
        table,
        indoc! {"
            PROJECT  HOSTS
            blog     web-1
            queue    worker-1
            shop     canary, web-1, worker-1

            HOST      WAVE  PROJECTS
            canary    1     shop
            web-1     2     blog, shop
            worker-1  2     queue, shop
        "},
        "{out}"
    );
}

#[test]
fn plan_all_hosts_prints_the_table_without_an_engine() {
    let t = fleet_repo(Some(HOSTS));
    let o = berth(&["plan", &dir(&t), "--all-hosts"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("PROJECT  HOSTS\nblog     web-1\n"));
}

#[test]
fn validate_for_one_host_keeps_only_its_projects() {
    let t = fleet_repo(Some(HOSTS));
    let o = berth(&["validate", &dir(&t), "--host", "web-1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let projects: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(" (").map(|(p, _)| p))
        .collect();
    assert_eq!(projects, ["blog", "shop"], "{out}");
    assert!(
        out.ends_with("host web-1: 2 of 3 projects placed here\n"),
        "{out}"
    );
    let o = berth(&[
        "validate",
        &dir(&t),
        "--host",
        "worker-1",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["fleet"]["host"], "worker-1");
    assert_eq!(v["projects"].as_array().map(Vec::len), Some(2));
}

#[test]
fn an_unknown_host_is_a_positioned_error_and_apply_touches_nothing() {
    let t = fleet_repo(Some(HOSTS));
    let data = tempfile::tempdir().expect("tempdir");
    let o = berth(&[
        "apply",
        &dir(&t),
        "--host",
        "web-2",
        "--data-dir",
        &data.path().display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(
            "berth-hosts.yaml: error: host \"web-2\" (given by --host) is not in berth-hosts.yaml (did you mean \"web-1\"?): add it under hosts:, or give --host with one of: canary, web-1, worker-1\n"
        ),
        "{err}"
    );
    // Stopped at the load: the engine (a socket that does not exist) was never asked.
    assert!(!err.contains("Docker engine"), "{err}");
}

#[test]
fn a_project_placed_on_no_host_is_a_positioned_error() {
    let hosts = HOSTS.replace("    projects: [queue]\n", "");
    let t = fleet_repo(Some(&hosts));
    let o = berth(&["validate", &dir(&t), "--all-hosts"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "queue/compose.yaml:1:1: error: project \"queue\" is placed on no host: add x-berth.placement (hosts: [NAME] or labels: {KEY: VALUE}) to its Compose file, or list it under a host's projects: in berth-hosts.yaml\n\
         /PATH: invalid desired state (1 error, 0 warnings)\n"
            .replace("/PATH", &dir(&t))
    );
}

#[test]
fn names_and_selectors_that_match_no_host_are_positioned_errors() {
    let t = fleet_repo(Some(HOSTS));
    std::fs::write(
        t.path().join("blog/compose.yaml"),
        "services:\n  ghost:\n    image: ghost:5\nx-berth:\n  placement:\n    hosts: [web-11]\n    labels: {env: staging}\n",
    )
    .expect("write");
    let hosts = HOSTS.replace("projects: [queue]", "projects: [queu]");
    std::fs::write(t.path().join("berth-hosts.yaml"), hosts).expect("write");
    let o = berth(&["validate", &dir(&t), "--all-hosts"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "berth-hosts.yaml:10:16: error: hosts.worker-1.projects names \"queu\", which is not a project of this repository (did you mean \"queue\"?)",
            "blog/compose.yaml:6:13: error: x-berth.placement.hosts names \"web-11\", which is not a host in berth-hosts.yaml (did you mean \"web-1\"?)",
            "blog/compose.yaml:7:13: error: x-berth.placement.labels env=staging match no host in berth-hosts.yaml: label a host with them, or change the selector",
            "queue/compose.yaml:1:1: error: project \"queue\" is placed on no host: add x-berth.placement (hosts: [NAME] or labels: {KEY: VALUE}) to its Compose file, or list it under a host's projects: in berth-hosts.yaml",
        ],
        "{err}"
    );
}

#[test]
fn a_malformed_hosts_file_is_a_positioned_error() {
    let t = fleet_repo(Some(
        "hosts:\n  canary: {labels: [prod], status_url: http://10.0.0.1:9469}\nwaves: [[canary], [nope]]\n",
    ));
    let o = berth(&["validate", &dir(&t)]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(
            "berth-hosts.yaml:2:20: error: hosts.canary.labels must be a mapping, found a list\n\
             berth-hosts.yaml:3:20: error: waves[1] names \"nope\", which is not under hosts:\n"
        ),
        "{err}"
    );
    let t = fleet_repo(Some("hosts: [a, b\n"));
    let o = berth(&["validate", &dir(&t)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("berth-hosts.yaml:"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn without_a_hosts_file_placement_and_host_are_errors_and_nothing_else_changes() {
    let t = fleet_repo(None);
    let o = berth(&["validate", &dir(&t)]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("blog/compose.yaml:5:3: error: x-berth.placement needs a hosts file: add berth-hosts.yaml at the root of the desired state, listing the hosts (docs/fleet.md)\n"),
        "{err}"
    );
    // A repository with no placement and no hosts file loads as before, whatever the
    // machine's host name.
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let o = berth(&["validate", &plain.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("host "), "{}", text(&o.stdout));
    let o = berth(&["validate", &plain.display().to_string(), "--host", "web-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("berth-hosts.yaml: error: --host web-1 needs a hosts file, and the desired state has none"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn placement_in_a_service_is_refused() {
    let t = fleet_repo(Some(HOSTS));
    std::fs::write(
        t.path().join("queue/compose.yaml"),
        "services:\n  worker:\n    image: worker:1\n    x-berth:\n      placement: {hosts: [canary]}\n",
    )
    .expect("write");
    let o = berth(&["validate", &dir(&t), "--all-hosts"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("queue/compose.yaml:5:7: error: services.worker.x-berth.placement: placement is per project"),
        "{}",
        text(&o.stderr)
    );
}

/// A fake berth on 127.0.0.1 that answers up to `max` requests with `status` when the request
/// carries `Bearer token`, else 401; returns its base URL and the requests it saw.
fn fake_peer(
    status: berth::telemetry::status::Status,
    max: usize,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let body = serde_json::to_vec(&status).expect("status json");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(max) {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            let mut head = String::new();
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let authorized = head
                .lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: Bearer fleet-secret-1"));
            let _ = tx.send(head);
            let answer = if authorized {
                let mut a = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                a.extend_from_slice(&body);
                a
            } else {
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec()
            };
            let _ = conn.write_all(&answer);
        }
    });
    (url, rx)
}

fn peer_status(host: &str, wave: Option<&str>) -> berth::telemetry::status::Status {
    use berth::telemetry::status::{
        DesiredRevision, Phase, ServiceStatus, SourceStatus, Status, WaveGate,
    };
    use berth::telemetry::time::Timestamp;
    Status {
        generated_at: Timestamp(1_000),
        round: None,
        source: SourceStatus {
            kind: "git".into(),
            location: "https://git.example/ops/fleet.git".into(),
            revision: Some("0a1b2c3d4e5f".into()),
            valid: true,
            errors: 0,
            warnings: 0,
            diagnostics: vec![],
        },
        engine_reachable: Some(true),
        conditions: vec![],
        services: vec![ServiceStatus {
            project: "shop".into(),
            service: "web".into(),
            job: false,
            desired: DesiredRevision {
                hash: "3f9a1c2b4d5e".into(),
                image: "nginx:1".into(),
                revision: Some(2),
            },
            running: vec![],
            ready: u32::from(wave.is_none()),
            replicas: 1,
            phase: if wave.is_none() {
                Phase::Idle
            } else {
                Phase::Progressing
            },
            since: Timestamp(900),
            reason: String::new(),
            conditions: vec![],
            last_rollout: None,
            update: None,
            traffic: vec![],
            wave: wave.map(|reason| WaveGate {
                state: "waiting".into(),
                reason: reason.into(),
                host: "canary".into(),
                message: "waiting for an earlier wave: host canary is ready, soaking 30s more"
                    .into(),
            }),
        }],
        orphans: vec![],
        not_ours: vec![],
        host: Some(host.into()),
    }
}

#[test]
fn fleet_status_shows_every_host_reachable_or_why_not_with_the_token_sent() {
    let (canary, canary_seen) = fake_peer(peer_status("canary", None), 1);
    let (web, _web_seen) = fake_peer(peer_status("web-1", Some("wave_soaking")), 1);
    let hosts = HOSTS
        .replace("http://127.0.0.1:19001", &canary)
        .replace("http://127.0.0.1:19002", &web);
    let t = fleet_repo(Some(&hosts));
    let token = t.path().join("token");
    std::fs::write(&token, "fleet-secret-1\n").expect("token");
    let o = berth(&[
        "fleet",
        "status",
        &dir(&t),
        "--fleet-token-file",
        &token.display().to_string(),
    ]);
    let out = text(&o.stdout);
    // worker-1 has no status_url: not asked, so the exit status says a host was not read.
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert_eq!(
        out,
        indoc! {"
            HOST      WAVE    STATUS                                        SOURCE
            canary    1 of 2  reachable                                     git 0a1b2c3d4e5f
            web-1     2 of 2  reachable                                     git 0a1b2c3d4e5f
            worker-1  2 of 2  not asked: no status_url in berth-hosts.yaml  -

            HOST    SERVICE   PHASE        READY  REVISION         WAVE GATE
            canary  shop/web  Idle         1/1    r2 3f9a1c2b4d5e  -
            web-1   shop/web  Progressing  0/1    r2 3f9a1c2b4d5e  waiting for host canary (wave_soaking)
        "}
    );
    let head = canary_seen.recv().expect("canary was asked");
    assert!(head.starts_with("GET /api/v1/status "), "{head}");
    assert!(!out.contains("fleet-secret-1"));
}

#[test]
fn fleet_status_says_why_a_host_cannot_be_read() {
    let (canary, _seen) = fake_peer(peer_status("canary", None), 1);
    // A port nothing listens on: bound, then closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let hosts = HOSTS
        .replace("http://127.0.0.1:19001", &canary)
        .replace("http://127.0.0.1:19002", &closed);
    let t = fleet_repo(Some(&hosts));
    // No token: the canary refuses with 401.
    let o = berth(&["fleet", "status", &dir(&t), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let hosts = v["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0]["name"], "canary");
    assert_eq!(hosts[0]["reachable"], false);
    assert!(
        hosts[0]["error"]
            .as_str()
            .expect("error")
            .contains("answered HTTP 401"),
        "{v}"
    );
    assert_eq!(hosts[1]["reachable"], false);
    assert!(!hosts[1]["error"].as_str().expect("error").is_empty());
    assert_eq!(hosts[2]["wave"], 2);
}

#[test]
fn fleet_status_without_a_hosts_file_says_a_fleet_needs_one() {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(t.path().join("queue")).expect("mkdir");
    std::fs::write(
        t.path().join("queue/compose.yaml"),
        "services:\n  worker:\n    image: worker:1\n",
    )
    .expect("write");
    let o = berth(&["fleet", "status", &dir(&t)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no berth-hosts.yaml"),
        "{}",
        text(&o.stderr)
    );
}
