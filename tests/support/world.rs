//! Real-engine test support (the engine tier): local images built once, a unique project per
//! test, and a guard that removes everything the project created, whatever the test's outcome.
//! Every entry point first checks that an engine answers ([`super::tier::require_engine`]).
//!
//! Many berths run at once on the one engine in this tier, each with its own data dir, and
//! one berth per engine would refuse all but the first: every berth a test spawns gets the
//! claim name of its project ([`TestProject::berth`], [`berth_command`]; env
//! `BERTH_ENGINE_CLAIM`), and the project's guard removes that claim container.
//!
//! Include with `mod support { pub mod tier; pub mod world; }`.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

static IMAGES: Once = Once::new();
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Builds the demo and busybox images (idempotent, fast when nothing changed).
pub fn ensure_images() {
    super::tier::require_engine();
    IMAGES.call_once(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(root.join("scripts/build-images"))
            .status()
            .expect("run scripts/build-images");
        assert!(status.success(), "scripts/build-images failed");
    });
}

/// The `berth` binary as a command that claims the engine under `claim` (a container name)
/// instead of the default `berth-engine-claim`; the caller removes that container.
pub fn berth_command(claim: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.env(berth::engine::claim::CLAIM_ENV, claim);
    cmd
}

/// A project on the real engine, removed on drop.
pub struct TestProject {
    /// Project name (unique per test run).
    pub name: String,
    /// The engine claim's container name for the berths this project's test spawns (unique
    /// like the name; removed on drop).
    pub claim: String,
    /// Its directory (a temp dir), holding compose.yaml.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl TestProject {
    /// A fresh project whose compose.yaml is `yaml` with `{name}` replaced by the project name.
    pub fn new(tag: &str, yaml: &str) -> Self {
        ensure_images();
        let name = format!(
            "bt{}{}{}",
            tag,
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let p = TestProject {
            claim: format!("berth-claim.{name}"),
            name,
            dir,
            _tmp: tmp,
        };
        p.write(yaml);
        p
    }

    /// The `berth` binary as a command claiming the engine under this project's claim name.
    pub fn berth(&self) -> Command {
        berth_command(&self.claim)
    }

    /// Replaces compose.yaml.
    pub fn write(&self, yaml: &str) {
        std::fs::write(
            self.dir.join("compose.yaml"),
            yaml.replace("{name}", &self.name),
        )
        .unwrap();
    }

    /// `docker ps -a` for this project: (name, state, status) sorted by name.
    pub fn containers(&self) -> Vec<(String, String, String)> {
        let out = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--format",
            "{{.Names}}\t{{.State}}\t{{.Status}}",
        ]);
        let mut v: Vec<(String, String, String)> = out
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let mut it = l.split('\t');
                (
                    it.next().unwrap_or_default().into(),
                    it.next().unwrap_or_default().into(),
                    it.next().unwrap_or_default().into(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// `name=state` lines, for compact assertions.
    pub fn states(&self) -> Vec<String> {
        self.containers()
            .into_iter()
            .map(|(n, s, _)| format!("{}={s}", n.trim_start_matches(&format!("{}-", self.name))))
            .collect()
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        // The engine claim of the berths this test spawned (a killed berth leaves it).
        docker(&["rm", "-f", &self.claim]);
        remove_project(&self.name);
    }
}

/// Removes everything a project named `name` has on the engine: its containers (by compose's
/// project label), berth's pins of it (holder containers and tags), its networks and volumes.
pub fn remove_project(name: &str) {
    let filter = format!("label=com.docker.compose.project={}", name);
    let ids = docker(&["ps", "-aq", "--filter", &filter]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        docker(&args);
    }
    // berth's image pins: a never-started container and a tag per pinned revision.
    let pins = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=berth.pin",
        "--format",
        "{{.Names}}",
    ]);
    let prefix = format!("berth-pin.{}.", name);
    for n in pins.split_whitespace().filter(|n| n.starts_with(&prefix)) {
        docker(&["rm", "-f", n]);
    }
    let tags = docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &format!("berth-pin/{}/*", name),
    ]);
    for t in tags.split_whitespace() {
        docker(&["rmi", t]);
    }
    for kind in ["network", "volume"] {
        let names = docker(&[kind, "ls", "-q", "--filter", &filter]);
        for n in names.split_whitespace() {
            docker(&[kind, "rm", n]);
        }
    }
}

/// Runs the docker CLI; returns stdout (empty on failure).
pub fn docker(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET http://127.0.0.1:port/path, retried until `deadline_ms`; (status, body).
pub fn http_get(port: u16, path: &str, deadline_ms: u64) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let until = std::time::Instant::now() + std::time::Duration::from_millis(deadline_ms);
    loop {
        let attempt = (|| -> std::io::Result<(u16, String)> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            let status = buf
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
            Ok((status, body))
        })();
        match attempt {
            Ok(r) => return Some(r),
            Err(_) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            Err(_) => return None,
        }
    }
}

/// Polls `f` every 100 ms until it holds and returns how long that took; panics naming `what`
/// after `limit`.
pub fn wait_until(
    what: &str,
    limit: std::time::Duration,
    mut f: impl FnMut() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// A `berth` process (`berth run`, usually) whose stderr lines are collected as they come
/// (which also keeps the pipe drained); killed and reaped on drop.
pub struct BerthProcess {
    /// The process.
    pub child: std::process::Child,
    /// Every stderr line so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl BerthProcess {
    /// Starts berth with `args` (stdout discarded, stderr collected), claiming the engine
    /// under `p`'s claim name.
    pub fn spawn<I, S>(p: &TestProject, args: I) -> BerthProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Self::spawn_env(p, args, &[])
    }

    /// [`Self::spawn`] with extra environment variables (e.g. `DOCKER_CONFIG`).
    pub fn spawn_env<I, S>(
        p: &TestProject,
        args: I,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> BerthProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = p
            .berth()
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start berth");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        BerthProcess { child, log }
    }

    /// How many lines so far (a mark for [`Self::since`]).
    pub fn lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The lines after `mark` that contain `needle`.
    pub fn since(&self, mark: usize, needle: &str) -> Vec<String> {
        self.log.lock().unwrap()[mark..]
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for BerthProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what berth said last: the only way to tell a slow machine from
        // a wrong decision after the fact.
        if std::thread::panicking()
            && let Ok(log) = self.log.lock()
        {
            let from = log.len().saturating_sub(80);
            eprintln!("--- last {} lines of berth's log ---", log.len() - from);
            for line in &log[from..] {
                eprintln!("{line}");
            }
        }
    }
}

/// What the demo app (or a test's busybox httpd) serves at `/version` on `port` (127.0.0.1),
/// trimmed; empty when nothing answers within 10 s.
pub fn version(port: u16) -> String {
    http_get(port, "/version", 10_000)
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default()
}

/// `docker inspect -f FORMAT WHAT`, trimmed.
pub fn inspect(what: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, what]).trim().to_string()
}
