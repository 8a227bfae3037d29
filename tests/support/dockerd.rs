//! A private Docker engine for tests that restart, freeze or remove the engine: a `dockerd` of
//! its own that never touches the machine's engine or its `docker0` bridge.
//!
//! Its own `--config-file` (empty), `--data-root`, `--exec-root`, `--pidfile` and socket (all under one temp dir),
//! `--bridge none` (no default bridge at all), `--iptables=false`, no IP forwarding or
//! masquerading, its own `--cgroup-parent` and containerd namespaces (it starts its own
//! containerd under its exec root). Tests run containers with `network_mode: none`
//! on it, so it creates no bridge either. Stopped (SIGTERM, then SIGKILL after 20 s) and its
//! directory removed on drop.
//!
//! Include with `#[path = "support/dockerd.rs"] mod dockerd;`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private engine.
pub struct Dockerd {
    /// Its directory (data root, exec root, pid file, socket, log).
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

impl Dockerd {
    /// Starts one and waits (at most 60 s) until it answers; `None` when `dockerd` is missing
    /// or does not come up (the log is printed).
    pub fn start() -> Option<Dockerd> {
        // Short paths: the exec root holds unix sockets (108-byte limit).
        let tmp = tempfile::Builder::new()
            .prefix("crashd")
            .tempdir_in("/tmp")
            .ok()?;
        let dir = tmp.path().to_owned();
        let mut d = Dockerd {
            dir,
            child: None,
            _tmp: tmp,
        };
        d.spawn()?;
        Some(d)
    }

    /// `unix://…` for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("d.sock")
    }

    fn spawn(&mut self) -> Option<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .ok()?;
        // Its own (empty) configuration: the machine's /etc/docker/daemon.json is the system
        // engine's.
        let config = self.dir.join("daemon.json");
        std::fs::write(&config, "{}\n").ok()?;
        // In a network namespace of its own: a dockerd with `--bridge none` deletes any
        // `docker0` it sees, which in the host's namespace is the system engine's bridge.
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("x"))
            .arg("--pidfile")
            .arg(self.dir.join("d.pid"))
            .arg("-H")
            .arg(self.host())
            .args([
                "--bridge",
                "none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--cgroup-parent",
                "crashd",
                "--containerd-namespace",
                "crashd",
                "--containerd-plugins-namespace",
                "crashd-plugins",
                "--shutdown-timeout",
                "2",
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if self
                .cli(&["version", "--format", "{{.Server.Version}}"])
                .is_some()
            {
                return Some(());
            }
            if let Some(c) = self.child.as_mut()
                && c.try_wait().ok().flatten().is_some()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "private dockerd did not come up:\n{}",
            std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
        );
        self.stop();
        None
    }

    /// Runs the docker CLI against this engine; stdout when it succeeded.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let o = Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// `docker -H <it> args…`: its stdout, trimmed; panics when the command fails.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .args(["-H", &self.host()])
            .args(args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Copies `image` from the machine's engine (`docker save | docker load`).
    pub fn load_image(&self, image: &str) {
        let tar = self.dir.join("image.tar");
        let saved = Command::new("docker")
            .args(["save", "-o"])
            .arg(&tar)
            .arg(image)
            .status()
            .expect("docker save");
        assert!(saved.success(), "docker save {image}");
        let loaded = Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(["load", "-q", "-i"])
            .arg(&tar)
            .status()
            .expect("docker load");
        assert!(loaded.success(), "docker load {image}");
        let _ = std::fs::remove_file(&tar);
    }

    /// Stops the engine (SIGTERM; SIGKILL after 20 s), waits for it, and says how long that
    /// took.
    pub fn stop(&mut self) -> Duration {
        let began = Instant::now();
        let Some(mut c) = self.child.take() else {
            return began.elapsed();
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if c.try_wait().ok().flatten().is_some() {
                return began.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        began.elapsed()
    }

    /// Stops the engine and starts it again on the same directories; true when it answers.
    pub fn restart(&mut self) -> bool {
        self.stop();
        self.spawn().is_some()
    }

    /// Sends `sig` (`-STOP`, `-CONT`, …) to the engine: a frozen engine for the tests that
    /// need one.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    /// The data root (for inspection).
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// True when `dockerd` is on the PATH.
    pub fn available() -> bool {
        Command::new("dockerd")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Containers first, so that the engine's shutdown has nothing to wait for.
            if let Some(ids) = self.cli(&["ps", "-aq"]) {
                for id in ids.split_whitespace() {
                    let _ = self.cli(&["rm", "-f", id]);
                }
            }
        }
        self.stop();
    }
}
