//! One berth per data directory (and so per engine): an exclusive lock on
//! `DATA_DIR/berth.lock`, holding who has it so the second berth can say.
//!
//! IO. The lock is the OS's advisory file lock, released when the process ends however it
//! ends — a crashed berth never leaves a stale lock behind.

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
}
