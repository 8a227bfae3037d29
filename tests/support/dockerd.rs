//! A private `dockerd` for real-engine fault tests: its own `--data-root`, `--exec-root`,
//! `--pidfile`, socket and (empty) config under `/tmp/<tag>-dockerd-<pid>`, `--iptables=false`,
//! `--bridge none`, and its own network namespace (`unshare --net`: a dockerd with
//! `--bridge none` deletes any `docker0` it sees, which in the host's namespace is the system
//! engine's bridge). It can be stopped and started again on the same directories (an engine
//! restart); the guard stops it and removes its directories.
//!
//! Include with `#[path = "support/dockerd.rs"] mod dockerd;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private dockerd; stopped and its directories removed on drop.
pub struct PrivateDockerd {
    child: Option<Child>,
    /// Its directory (data, exec root, socket, log).
    pub dir: PathBuf,
    socket: PathBuf,
}

impl PrivateDockerd {
    /// Starts one and waits (bounded) until it answers. Fails (never skips) without root or
    /// `dockerd`.
    pub fn start(tag: &str) -> PrivateDockerd {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        assert!(
            is_root && Path::new("/usr/sbin/dockerd").exists(),
            "engine tier: this test starts a private dockerd and needs root and `dockerd` (Debian's docker.io; scripts/deps installs it)"
        );
        let dir = PathBuf::from(format!("/tmp/{tag}-dockerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("exec")).unwrap();
        std::fs::write(dir.join("daemon.json"), "{}").unwrap();
        let socket = dir.join("d.sock");
        let mut d = PrivateDockerd {
            child: None,
            dir,
            socket,
        };
        d.launch();
        d
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("d.pid"))
            .arg("-H")
            .arg(self.host())
            .args(["--iptables=false", "--ip6tables=false", "--bridge", "none"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not answer within 60 s; see {}",
                self.dir.join("dockerd.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Its endpoint, `unix://…`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Whether it answers `docker version` now.
    pub fn answers(&self) -> bool {
        self.socket.exists()
            && Command::new("docker")
                .args([
                    "-H",
                    &self.host(),
                    "version",
                    "--format",
                    "{{.Server.Version}}",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    }

    /// `docker -H <it> args…`: its stdout; panics when the command fails.
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

    /// Copies `reference` from the machine's engine into this one.
    pub fn load_from_system(&self, reference: &str) {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save '{reference}' | docker -H '{}' load >/dev/null",
                self.host()
            ))
            .status()
            .expect("run docker save | load");
        assert!(status.success(), "docker save {reference} | load failed");
    }

    /// Stops it as a service manager would (SIGTERM: it stops every container, then exits),
    /// bounded; returns how long that took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..600 {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        started.elapsed()
    }

    /// Starts it again on the same directories and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
