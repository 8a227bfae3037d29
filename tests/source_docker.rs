//! `berth run` with its sources against the real engine: a git repository (`file://`) whose
//! commits are applied on webhook pushes (good, bad and missing signatures over real HTTP on
//! 127.0.0.1) and on SIGHUP, a bad commit that keeps the last good state and the fix that
//! follows it; and a watched directory where an editor-style save is applied without any
//! resync and a burst of writes costs one or two reconciles. Bounded waits; traffic to
//! 127.0.0.1 only.

mod support {
    pub mod gitrepo;
    pub mod tier;
    pub mod world;
}

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::gitrepo::Remote;
use support::world::{TestProject, docker, free_port};

const SECRET: &str = "s3cret-for-tests";

/// A `berth run` child with its log; killed on drop.
struct Berth {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Berth {
    fn start(p: &TestProject, args: &[&str], data: &Path) -> Berth {
        let mut child = p
            .berth()
            .arg("run")
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn,berth=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start berth run");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        Berth { child, log }
    }

    fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn dump(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

fn wait_until(what: &str, berth: &Berth, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out waiting for {what}; berth's log:\n{}",
        berth.dump()
    );
}

/// The VERSION variable of the project's web-1 container ("" when absent).
fn version(p: &TestProject) -> String {
    let env = docker(&[
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &format!("{}-web-1", p.name),
    ]);
    env.lines()
        .find_map(|l| l.strip_prefix("VERSION="))
        .unwrap_or_default()
        .to_string()
}

fn compose(v: &str) -> String {
    format!(
        "services:\n  web:\n    image: berth-test-busybox:1\n    environment: {{VERSION: \"{v}\"}}\n    x-berth: {{min_ready: 0s}}\n"
    )
}

/// POSTs a push event to /hooks/git; `signature`: None for no header. Returns the status.
fn post_hook(port: u16, body: &str, signature: Option<String>) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sig = signature
        .map(|v| format!("X-Hub-Signature-256: {v}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /hooks/git HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n{sig}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn sign(body: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

const PUSH: &str = r#"{"ref":"refs/heads/main","repository":{"default_branch":"main"}}"#;

#[test]
fn git_pushes_are_applied_on_signed_webhooks_and_bad_commits_keep_the_last_good_state() {
    let p = TestProject::new("git", &compose("0"));
    let remote = Remote::new();
    let file = format!("{}/compose.yaml", p.name);
    remote.commit("v1", &[(&file, &compose("1"))]);
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = remote.url();
    let berth = Berth::start(
        &p,
        &[
            "--git",
            &url,
            "--ref",
            "main",
            // Only the webhook can make it fetch within the test.
            "--interval",
            "1h",
            "--resync",
            "1h",
            "--listen",
            &listen,
            "--webhook-secret-file",
            secret.to_str().unwrap(),
        ],
        &tmp.path().join("data"),
    );
    wait_until("v1 running", &berth, || version(&p) == "1");
    assert!(berth.count("git: applying commit") >= 1, "{}", berth.dump());
    // No false alarm at start-up: the first round waits for the first fetch instead of
    // reporting "no commit checked out yet" as an invalid desired state (then `recovered`).
    assert_eq!(berth.count("desired_state_invalid"), 0, "{}", berth.dump());
    assert_eq!(
        berth.count("no commit checked out yet"),
        0,
        "{}",
        berth.dump()
    );

    // A push with a bad or missing signature: 401, and nothing is fetched.
    remote.commit("v2", &[(&file, &compose("2"))]);
    assert_eq!(post_hook(port, PUSH, Some(sign(PUSH, "wrong"))), 401);
    assert_eq!(post_hook(port, PUSH, None), 401);
    // A push to another branch: accepted, ignored.
    let other = r#"{"ref":"refs/heads/feature","repository":{"default_branch":"main"}}"#;
    assert_eq!(post_hook(port, other, Some(sign(other, SECRET))), 200);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(version(&p), "1", "no fetch without a good signature");

    // A good signature: fetched and rolled out.
    assert_eq!(post_hook(port, PUSH, Some(sign(PUSH, SECRET))), 202);
    wait_until("v2 running", &berth, || version(&p) == "2");

    // A bad commit: refused with its diagnostics, v2 keeps running; the fix is applied.
    remote.commit(
        "typo",
        &[(
            &file,
            "services:\n  web:\n    image: berth-test-busybox:1\n    depends_on: [nope]\n",
        )],
    );
    assert_eq!(post_hook(port, PUSH, Some(sign(PUSH, SECRET))), 202);
    wait_until("the refusal", &berth, || {
        berth.count("is not a valid desired state") >= 1
    });
    wait_until("the controller keeping the last good state", &berth, || {
        berth.count("desired state invalid; keeping the last good one") >= 1
    });
    assert_eq!(version(&p), "2");
    remote.commit("fix", &[(&file, &compose("3"))]);
    assert_eq!(post_hook(port, PUSH, Some(sign(PUSH, SECRET))), 202);
    wait_until("v3 running", &berth, || version(&p) == "3");
    // SIGHUP (systemctl reload) fetches too.
    remote.commit("v4", &[(&file, &compose("4"))]);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(berth.child.id() as libc::pid_t, libc::SIGHUP) };
    wait_until("v4 running", &berth, || version(&p) == "4");
    // The secret never shows in the log.
    assert_eq!(berth.count(SECRET), 0);
}

#[test]
fn a_watched_directory_applies_an_editor_save_and_a_burst_without_a_resync() {
    let p = TestProject::new("dir", &compose("1"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = p.dir.to_str().unwrap().to_string();
    let berth = Berth::start(
        &p,
        &["--dir", &dir, "--resync", "1h", "--listen", "off"],
        &tmp.path().join("data"),
    );
    wait_until("v1 running", &berth, || version(&p) == "1");
    // Editor-style save: temp file + rename.
    let swp = p.dir.join(".compose.yaml.swp");
    std::fs::write(&swp, compose("2")).unwrap();
    std::fs::rename(&swp, p.dir.join("compose.yaml")).unwrap();
    wait_until("v2 running", &berth, || version(&p) == "2");
    let before = berth.count("desired state changed: applying");
    for i in 0..100 {
        std::fs::write(p.dir.join("compose.yaml"), compose(&format!("3{i:02}"))).unwrap();
    }
    wait_until("the burst's last version running", &berth, || {
        version(&p) == "399"
    });
    std::thread::sleep(Duration::from_secs(1));
    let n = berth.count("desired state changed: applying") - before;
    assert!(
        (1..=2).contains(&n),
        "{n} reconciles triggered by 100 writes"
    );
}
