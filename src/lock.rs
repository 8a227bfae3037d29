//! One berth per data directory (one per engine is `engine::claim`): an exclusive lock on
//! `DATA_DIR/berth.lock`, holding who has it so the second berth can say — and so that
//! `berth hold` & co. can wake the `berth run` that holds it ([`wake_controller`]).
//!
//! IO. The lock is the OS's advisory file lock, released when the process ends however it
//! ends — a crashed berth never leaves a stale lock behind. Waking reads Linux's `/proc` and
//! sends SIGHUP.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another berth has it.
    #[error(
        "another berth is running: {holder} holds {path}; stop it first, or use another --data-dir for another engine"
    )]
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote about itself.
        holder: String,
    },
    /// The data directory or lock file could not be used.
    #[error("failed to lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if needed and takes its lock, recording `what` (e.g. `berth run`) with
    /// this process's ID.
    pub fn acquire(dir: &Path, what: &str) -> Result<Self, LockError> {
        let path = dir.join("berth.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "a process".to_string()
                } else {
                    holder.to_string()
                };
                return Err(LockError::Held { path, holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let me = holder_text(what, std::process::id());
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DataDirLock { _file: file, path })
    }
}

/// What a holder writes about itself: `berth run (pid 42)`.
fn holder_text(what: &str, pid: u32) -> String {
    format!("{what} (pid {pid})")
}

/// Reads what a holder wrote back: (`berth run`, 42). The text stays after the holder exits,
/// so it names the last holder, not necessarily a live one.
pub fn parse_holder(text: &str) -> Option<(&str, u32)> {
    let (what, pid) = text.trim().strip_suffix(')')?.rsplit_once(" (pid ")?;
    Some((what, pid.parse().ok()?))
}

/// What waking the controller came to.
#[derive(Debug)]
pub enum Wake {
    /// SIGHUP sent to this `berth run`.
    Woken(u32),
    /// Nobody holds the data dir's lock (or its last holder is gone).
    NotRunning,
    /// Another berth (e.g. `berth apply`) holds it: not signalled.
    Other(String),
    /// A `berth run` seems to hold it but could not be checked or signalled.
    Failed(u32, WakeError),
}

/// Why a lock holder could not be checked or signalled.
#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    /// Reading `/proc` or resolving the lock file failed.
    #[error("failed to {what}")]
    Proc {
        /// What was read, e.g. `read /proc/42/cmdline`.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// kill(2) refused.
    #[error(transparent)]
    Signal(std::io::Error),
}

/// Sends SIGHUP to the `berth run` holding `data_dir`'s lock, if one does. The lock file names
/// its last holder; that process is signalled only if it is alive, is a `berth run`, and has
/// this lock file open (so a stale name or a reused pid is never signalled).
pub fn wake_controller(data_dir: &Path) -> Wake {
    let path = data_dir.join("berth.lock");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Wake::NotRunning;
    };
    let Some((what, pid)) = parse_holder(&text) else {
        return Wake::NotRunning;
    };
    match holds_lock(pid, &path) {
        Ok(None) => Wake::NotRunning,
        Ok(Some(args)) if what == "berth run" && args.iter().any(|a| a == "run") => {
            // SAFETY: kill(2) with a pid and a signal number; no memory is shared.
            let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
            if rc == 0 {
                Wake::Woken(pid)
            } else {
                Wake::Failed(pid, WakeError::Signal(std::io::Error::last_os_error()))
            }
        }
        Ok(Some(_)) => Wake::Other(format!("{what} (pid {pid})")),
        Err(e) => Wake::Failed(pid, e),
    }
}

/// Whether process `pid` is a berth with `lock` open, from Linux's /proc: its arguments if so.
fn holds_lock(pid: u32, lock: &Path) -> Result<Option<Vec<String>>, WakeError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = match std::fs::read(proc.join("cmdline")) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(WakeError::Proc {
                what: format!("read {}/cmdline", proc.display()),
                source,
            });
        }
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let is_berth = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n.to_string_lossy().starts_with("berth"));
    if !is_berth {
        return Ok(None);
    }
    let lock = std::fs::canonicalize(lock).map_err(|source| WakeError::Proc {
        what: format!("resolve {}", lock.display()),
        source,
    })?;
    let fds = proc.join("fd");
    let entries = std::fs::read_dir(&fds).map_err(|source| WakeError::Proc {
        what: format!("list {}", fds.display()),
        source,
    })?;
    for fd in entries.flatten() {
        if std::fs::read_link(fd.path()).is_ok_and(|target| target == lock) {
            return Ok(Some(args[1..].to_vec()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_holder_is_refused_with_the_first_ones_name() {
        let t = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(t.path(), "berth run").unwrap();
        let err = DataDirLock::acquire(t.path(), "berth apply").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("berth run (pid {})", std::process::id())),
            "{msg}"
        );
        drop(first);
        DataDirLock::acquire(t.path(), "berth apply").unwrap();
    }

    #[test]
    fn holder_text_parses_back() {
        assert_eq!(
            parse_holder(&holder_text("berth run", 42)),
            Some(("berth run", 42))
        );
        assert_eq!(
            parse_holder("berth apply (pid 7)\n"),
            Some(("berth apply", 7))
        );
        for bad in ["", "a process", "berth run (pid x)", "berth run (pid 7"] {
            assert_eq!(parse_holder(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_lock_held_by_something_other_than_berth_run_is_not_signalled() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(wake_controller(t.path()), Wake::NotRunning));
        // This test process holds the lock, as `berth apply` would: alive, but not `run`.
        let _held = DataDirLock::acquire(t.path(), "berth apply").unwrap();
        match wake_controller(t.path()) {
            // The test binary is not named berth*: not a berth at all.
            Wake::NotRunning => {}
            Wake::Other(holder) => assert!(holder.starts_with("berth apply (pid "), "{holder}"),
            w => panic!("{w:?}"),
        }
    }
}
