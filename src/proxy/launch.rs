//! Who runs the proxy: `berth run` and `berth apply` make sure a `berth proxy` process serves
//! the routes file once it has listeners.
//!
//! IO, called by the CLI (a background task of `berth run`, once per second; `berth apply`
//! before and after it converges). The proxy is a **process of its own**, started detached (its
//! own process group, stdin closed, output appended to `DATA_DIR/proxy/proxy.log`, its PID in
//! `DATA_DIR/proxy/proxy.pid`): killing, restarting or upgrading berth leaves it and every
//! connection alone, and the next berth finds it by its admin endpoint answering. An operator
//! who runs the proxy as a service of its own (deploy/berth-proxy.service) gives berth the same
//! admin address and berth starts nothing. A proxy that is not running after a reboot is
//! started again by the next berth round; traffic on handed-off ports waits for that.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// What [`ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The routes file has no listeners: no proxy is needed.
    NotNeeded,
    /// A proxy answers on the admin address.
    Running,
    /// A proxy was started.
    Started {
        /// Its process ID.
        pid: u32,
    },
}

/// Why the proxy could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The log file or PID file could not be written.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started.
    #[error("failed to start {exe} proxy")]
    Spawn {
        /// The berth executable.
        exe: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where and how the proxy is run.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The berth executable to run as `berth proxy`.
    pub exe: PathBuf,
    /// berth's data directory (its routes file, the proxy's log and PID file).
    pub data_dir: PathBuf,
    /// The proxy's admin endpoint: how berth knows one runs.
    pub admin: SocketAddr,
}

impl Launcher {
    /// The proxy of this berth executable, data dir and admin address.
    pub fn new(exe: PathBuf, data_dir: &Path, admin: SocketAddr) -> Self {
        Self {
            exe,
            data_dir: data_dir.to_path_buf(),
            admin,
        }
    }

    /// Starts `berth proxy` unless the routes file has no listeners or a proxy already
    /// answers on the admin address.
    pub fn ensure(&self) -> Result<Ensured, LaunchError> {
        let routes = super::file::path(&self.data_dir);
        let needed = super::file::read(&routes).is_ok_and(|r| !r.listeners.is_empty());
        if !needed {
            return Ok(Ensured::NotNeeded);
        }
        if TcpStream::connect_timeout(&self.admin, Duration::from_millis(300)).is_ok() {
            return Ok(Ensured::Running);
        }
        let dir = routes.parent().unwrap_or(&self.data_dir).to_path_buf();
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| LaunchError::Io { op, path, source }
        };
        let log_path = dir.join("proxy.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("open", &log_path))?;
        let err_log = log.try_clone().map_err(io("open", &log_path))?;
        let mut child = Command::new(&self.exe)
            .arg("proxy")
            .arg("--routes")
            .arg(&routes)
            .arg("--admin")
            .arg(self.admin.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            // Its own process group: a Ctrl-C or a signal to berth's group does not reach it.
            .process_group(0)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                exe: self.exe.clone(),
                source,
            })?;
        let pid = child.id();
        let pid_path = dir.join("proxy.pid");
        std::fs::write(&pid_path, format!("{pid}\n")).map_err(io("write", &pid_path))?;
        // Reaped if it exits while berth runs; once berth exits, init adopts it.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        tracing::info!(pid, admin = %self.admin, "started berth proxy");
        Ok(Ensured::Started { pid })
    }
}

impl Launcher {
    /// [`Launcher::ensure`] every second, for as long as the task runs (`berth run` and
    /// `berth apply` abort it when they end; the proxy stays). A failure is logged when it
    /// changes.
    pub async fn keep(self) {
        let mut last = String::new();
        loop {
            let l = self.clone();
            let r = tokio::task::spawn_blocking(move || l.ensure()).await;
            let now = match r {
                Ok(Ok(_)) => String::new(),
                Ok(Err(e)) => crate::errors::chain(&e),
                Err(e) => e.to_string(),
            };
            if !now.is_empty() && now != last {
                tracing::error!(error = %now, "the port-handoff proxy is not running");
            }
            last = now;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
