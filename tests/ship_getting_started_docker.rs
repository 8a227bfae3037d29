//! Walks docs/getting-started.md on the real engine (issue 7): every command block marked
//! `<!-- walk: NAME -->` is taken from the guide itself and run with bash, in the guide's
//! order, with the host paths, ports, project name and git URL replaced by the test's own
//! (and `sudo` dropped): the directory path (write, validate, plan, apply, a good update, a bad
//! update reverted, history, status) and the git path (a repository, `validate --git`, the
//! webhook secret, `berth run --git` in the background, a push, a signed webhook that makes it
//! fetch). A block that is missing from the guide fails the test, so the two stay in step.
//!
//! One project, its own data dir and ports, a guard that removes what it created, bounded
//! waits; traffic to 127.0.0.1 and the test's own containers only.

mod support {
    pub mod tier;
    pub mod walk;
    pub mod world;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::walk::walked_blocks;
use support::world::{TestProject, free_port, http_get};

const GUIDE: &str = include_str!("../docs/getting-started.md");

/// The test's stand-ins for the guide's host.
struct Host {
    name: String,
    /// The engine claim's name for the guide's berths (the project's; its guard removes it).
    claim: String,
    state: PathBuf,
    etc: PathBuf,
    data: PathBuf,
    work: PathBuf,
    repo: PathBuf,
    web_port: u16,
    listen_port: u16,
    _tmp: tempfile::TempDir,
}

impl Host {
    fn new(name: &str, claim: &str) -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let p = |s: &str| tmp.path().join(s);
        let host = Host {
            name: name.to_string(),
            claim: claim.to_string(),
            state: p("srv-berth"),
            etc: p("etc-berth"),
            data: p("data"),
            work: p("workstation-state"),
            repo: p("state.git"),
            web_port: free_port(),
            listen_port: free_port(),
            _tmp: tmp,
        };
        let git = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&host.repo)
            .output()
            .unwrap();
        assert!(git.status.success(), "{}", text(&git));
        host
    }

    /// The guide's text with the host's names replaced by the test's.
    fn localize(&self, script: &str) -> String {
        script
            .replace("$(sudo ", "$(")
            .replace("sudo ", "")
            .replace("/srv/berth", &self.state.display().to_string())
            .replace("/etc/berth", &self.etc.display().to_string())
            .replace(
                "https://git.example/ops/state.git",
                &self.repo.display().to_string(),
            )
            .replace("~/state", &self.work.display().to_string())
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", self.web_port))
            .replace("127.0.0.1:9469", &format!("127.0.0.1:{}", self.listen_port))
            .replace("hello", &self.name)
    }

    fn bash(&self, script: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_berth")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c", script])
            .env("PATH", path)
            .env("BERTH_DATA_DIR", &self.data)
            .env(berth::engine::claim::CLAIM_ENV, &self.claim)
            .env("GIT_AUTHOR_NAME", "berth test")
            .env("GIT_AUTHOR_EMAIL", "test@berth.invalid")
            .env("GIT_COMMITTER_NAME", "berth test")
            .env("GIT_COMMITTER_EMAIL", "test@berth.invalid")
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a walked block; it must exit 0. Returns its output.
    fn walk(&self, blocks: &BTreeMap<String, String>, name: &str) -> String {
        let script = self.localize(block(blocks, name));
        let out = self.bash(&script).output().expect("run bash");
        let all = text(&out);
        assert!(
            out.status.success(),
            "guide block `{name}` failed:\n{script}\n---\n{all}"
        );
        all
    }

    fn version(&self) -> String {
        http_get(self.web_port, "/version", 2_000)
            .map(|(_, b)| b.trim().to_string())
            .unwrap_or_default()
    }
}

fn block<'a>(blocks: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    blocks
        .get(name)
        .unwrap_or_else(|| panic!("docs/getting-started.md has no `<!-- walk: {name} -->` block"))
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

/// `berth run` started from the guide's block; SIGTERM (then SIGKILL) when dropped.
struct Controller {
    child: Child,
    log: PathBuf,
}

impl Controller {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status within a deadline.
    fn stop(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn the_getting_started_guide_works_as_written() {
    let blocks: Vec<(String, String)> = walked_blocks(GUIDE, "docs/getting-started.md");
    let order: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        order,
        [
            "write",
            "check",
            "apply",
            "update",
            "bad",
            "status",
            "repo",
            "git-check",
            "secret",
            "run-git",
            "push",
            "webhook"
        ],
        "the walked blocks of docs/getting-started.md changed: update this test"
    );
    let blocks: BTreeMap<String, String> = blocks.into_iter().collect();
    // The guard removes the project's containers, networks and pins whatever happens.
    let project = TestProject::new("gs", "services: {}\n");
    let host = Host::new(&project.name, &project.claim);
    let name = &host.name;

    // ---- 2. a first stack from a directory ----------------------------------------------
    host.walk(&blocks, "write");
    assert!(host.state.join(name).join("compose.yaml").is_file());

    let out = host.walk(&blocks, "check");
    assert!(out.contains(&format!("{name} (")), "{out}");
    assert!(out.contains(&format!("create {name}-web-1")), "{out}");
    assert!(project.containers().is_empty(), "plan changed something");

    let out = host.walk(&blocks, "apply");
    assert!(out.contains("Converged:"), "{out}");
    assert!(out.contains("ok 1"), "GET /health after apply:\n{out}");
    assert!(out.contains("succeeded"), "history after apply:\n{out}");
    assert_eq!(project.states(), ["web-1=running"]);

    let out = host.walk(&blocks, "update");
    assert!(out.contains("stop-first"), "{out}");
    assert_eq!(host.version(), "2");

    let out = host.walk(&blocks, "bad");
    assert!(out.contains("exit status: 1"), "{out}");
    assert!(out.contains("rollout_failed"), "{out}");
    assert!(out.contains("reverted"), "{out}");
    assert!(out.contains("quarantined"), "{out}");
    assert_eq!(host.version(), "2", "the revert left the good version");
    assert_eq!(project.states(), ["web-1=running"]);

    let out = host.walk(&blocks, "status");
    assert!(out.contains(&format!("{name}/web")), "{out}");

    // ---- 4. the same stack from git ------------------------------------------------------
    host.walk(&blocks, "repo");
    let out = host.walk(&blocks, "git-check");
    assert!(out.contains(&format!("{name} (")), "{out}");
    host.walk(&blocks, "secret");
    assert!(host.etc.join("webhook-secret").is_file());

    // `berth run --git ...` as the guide writes it, in the background, on the test's port,
    // with a long fetch interval: only the webhook can make it see the push in time.
    let run = format!(
        "exec {} --listen 127.0.0.1:{} --interval 1h",
        host.localize(block(&blocks, "run-git")).trim(),
        host.listen_port
    );
    let log = host.data.parent().unwrap().join("berth-run.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut controller = Controller {
        child: host
            .bash(&run)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start berth run --git"),
        log,
    };
    // The commit has no .env: HELLO_TAG defaults to 1.
    let start = Instant::now();
    while host.version() != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "berth run --git did not roll out the commit's version 1 within 90s:\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    host.walk(&blocks, "push");
    let out = host.walk(&blocks, "webhook");
    assert!(
        out.contains("fetching: push to refs/heads/main"),
        "{out}\n{}",
        controller.log()
    );
    wait_until(
        "version 2 from the pushed commit",
        Duration::from_secs(90),
        || host.version() == "2",
    );

    assert_eq!(controller.stop(), Some(0), "{}", controller.log());
    assert_eq!(project.states(), ["web-1=running"]);
}
