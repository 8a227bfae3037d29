//! A private image registry for real-engine tests: Debian's `docker-registry` (distribution v2)
//! on 127.0.0.1 with a free port and a temp storage dir, stopped on drop together with every
//! local tag that names it. Docker allows plain HTTP to 127.0.0.0/8 registries by default, so
//! nothing needs configuring and nothing leaves the machine.
//!
//! Include with `mod support { pub mod registry; pub mod tier; pub mod world; }`.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::world::{docker, free_port, http_get};

/// The binary Debian's `docker-registry` package installs.
const BINARY: &str = "docker-registry";
/// How long a starting registry may take to answer `GET /v2/`.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A running registry on `127.0.0.1:<port>`, killed on drop; the local tags naming it are
/// removed on drop too.
pub struct Registry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    storage: PathBuf,
    /// The htpasswd file a registry with basic auth checks (`Registry::start_with_htpasswd`).
    htpasswd: Option<PathBuf>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free port and waits (bounded) until it answers.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a registry that wants basic auth checked against `htpasswd` (bcrypt entries):
    /// plain HTTP, which the engine allows for 127.0.0.0/8 with credentials too. Pushing to it
    /// takes a `docker login` first, so [`Registry::push`] does not work for it.
    pub fn start_with_htpasswd(htpasswd: &std::path::Path) -> Self {
        Self::start_with(Some(htpasswd.to_path_buf()))
    }

    fn start_with(htpasswd: Option<PathBuf>) -> Self {
        super::tier::require_engine();
        super::tier::require_tool(BINARY, "docker-registry");
        let dir = tempfile::tempdir().expect("registry temp dir");
        let mut r = Registry {
            port: 0,
            config: dir.path().join("config.yml"),
            log: dir.path().join("registry.log"),
            child: None,
            storage: dir.path().join("storage"),
            htpasswd,
            _dir: dir,
        };
        let mut last_error = String::new();
        // A free port can be taken by someone else before the registry binds it: try again.
        for _ in 0..3 {
            r.port = free_port();
            let auth = r.htpasswd.as_ref().map_or(String::new(), |h| {
                format!(
                    "auth: {{htpasswd: {{realm: berth-test, path: {}}}}}\n",
                    h.display()
                )
            });
            std::fs::write(
                &r.config,
                format!(
                    "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{}}}\n{auth}",
                    r.storage.display(),
                    r.port
                ),
            )
            .expect("write registry config");
            match r.spawn() {
                Ok(()) => return r,
                Err(e) => last_error = e,
            }
        }
        panic!("the registry did not start: {last_error}");
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The reference of `name` (`repo:tag`) in this registry.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// Pushes the local image `local` as `name` (`repo:tag`), then removes the registry tag
    /// locally so that whoever wants it must pull it. Returns the pushed image's ID.
    pub fn push(&self, local: &str, name: &str) -> String {
        let reference = self.reference(name);
        let id = docker(&["image", "inspect", "-f", "{{.Id}}", local])
            .trim()
            .to_string();
        assert!(!id.is_empty(), "no local image {local}");
        run_docker(&["tag", local, &reference]);
        run_docker(&["push", "--quiet", &reference]);
        run_docker(&["rmi", &reference]);
        id
    }

    /// Stops the registry (SIGKILL, then reaped); its storage stays for [`Registry::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped registry again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("the registry did not restart: {e}");
        }
    }

    /// Whether `GET /v2/` answers now: 200, or 401 from a registry that wants auth.
    pub fn answers(&self) -> bool {
        let wanted = if self.htpasswd.is_some() { 401 } else { 200 };
        http_get(self.port, "/v2/", 0).is_some_and(|(status, _)| status == wanted)
    }

    /// Local references naming this registry: tags (`127.0.0.1:<port>/repo:tag`) and the
    /// digest references a pull leaves (`127.0.0.1:<port>/repo@sha256:…`), which outlive
    /// their tag when the tag moves.
    pub fn local_references(&self) -> Vec<String> {
        let prefix = format!("{}/", self.host());
        let listing = docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
        ]);
        let mut refs = Vec::new();
        for line in listing.lines().filter(|l| l.starts_with(&prefix)) {
            let mut it = line.split(' ');
            let (repo, tag, digest) = (
                it.next().unwrap_or_default(),
                it.next().unwrap_or_default(),
                it.next().unwrap_or_default(),
            );
            if tag != "<none>" {
                refs.push(format!("{repo}:{tag}"));
            }
            if digest != "<none>" {
                refs.push(format!("{repo}@{digest}"));
            }
        }
        refs.sort();
        refs.dedup();
        refs
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(&self.log).map_err(|e| format!("registry log: {e}"))?;
        let mut cmd = Command::new(BINARY);
        cmd.arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. If the test
        // thread dies without running Drop (the harness killed), the registry goes with it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("spawn {BINARY}: {e}"))?;
        self.child = Some(child);
        let until = Instant::now() + START_LIMIT;
        loop {
            if self.answers() {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= until {
                self.stop();
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!(
                    "{} on port {} ({}); its log:\n{log}",
                    if exited.is_some() {
                        "exited"
                    } else {
                        "no answer within the start limit"
                    },
                    self.port,
                    START_LIMIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        // Untagging only: the pushed images keep their local names (berth-demo:N). A digest
        // reference that went with its last tag is already gone; that `rmi` fails harmlessly.
        for r in self.local_references() {
            docker(&["rmi", &r]);
        }
    }
}

/// Runs the docker CLI and panics with its output unless it succeeds.
fn run_docker(args: &[&str]) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
