//! The directory source (`berth run --dir DIR`): watches DIR with notify and wakes the
//! controller when what DIR describes changed.
//!
//! notify-debouncer-full merges each burst of filesystem events; a worker thread then
//! re-resolves DIR (it may be a symlink that was swapped, or a directory replaced by a
//! rename), re-reads and re-validates the whole tree, and triggers a reconcile only when the
//! load's [`Fingerprint`] changed. Besides DIR itself (recursively, at its resolved path) the
//! watcher watches DIR's parent (not recursively) to see DIR being replaced. Events under a
//! `.git` directory are ignored (a `git checkout` also changes the files that matter). A
//! periodic re-check (`resync`) catches what inotify misses; the controller's own resync
//! re-reads DIR as well.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::{Fingerprint, Refusal, Revision, SourceKind, StatusHandle, fingerprint, now_secs};

/// Default quiet time before a burst of events is handled.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

/// How the directory is watched.
#[derive(Debug, Clone)]
pub struct DirOptions {
    /// The desired-state directory (a symlink is followed and re-resolved).
    pub dir: PathBuf,
    /// Debounce of filesystem events.
    pub debounce: Duration,
    /// Re-resolve and re-check at least this often, events or not.
    pub resync: Duration,
}

/// Why the watcher thread woke.
enum Wake {
    /// Filesystem events that matter.
    Events,
    /// The watcher failed (e.g. the inotify watch limit); the resync still runs.
    Error(String),
    /// Stop.
    Stop,
}

/// A running directory watcher; stops when dropped.
pub struct DirWatcher {
    tx: mpsc::Sender<Wake>,
    thread: Option<JoinHandle<()>>,
    changes: Arc<AtomicU64>,
    status: StatusHandle,
}

impl DirWatcher {
    /// Starts watching. `load` reads the desired state from a root (the loader with the run's
    /// options); `on_change` is called after each change of the load's fingerprint (the
    /// controller's trigger). The first load happens here, so the status has a revision at
    /// once; it does not call `on_change` (the controller loads at its start anyway).
    pub fn start(
        opts: DirOptions,
        load: super::LoadFn,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) -> DirWatcher {
        let dir = std::path::absolute(&opts.dir).unwrap_or_else(|_| opts.dir.clone());
        let status = StatusHandle::new(SourceKind::Dir, dir.display().to_string());
        let (tx, rx) = mpsc::channel();
        let changes = Arc::new(AtomicU64::new(0));
        let mut worker = Worker {
            dir: dir.clone(),
            parent: dir.parent().map(Path::to_path_buf),
            watched: None,
            debouncer: None,
            load,
            on_change,
            status: status.clone(),
            last: None,
            changes: changes.clone(),
        };
        worker.debouncer = worker.new_debouncer(opts.debounce, tx.clone());
        worker.check(false);
        let resync = opts.resync;
        let thread = std::thread::Builder::new()
            .name("berth-dir-watch".into())
            .spawn(move || worker.run(rx, resync))
            .ok();
        DirWatcher {
            tx,
            thread,
            changes,
            status,
        }
    }

    /// What the watcher serves now.
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// How many changes woke the controller so far (a test and benchmark hook).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Wake::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What the watch is on: the resolved root and its identity (a directory replaced by a
/// rename has the same path but another inode).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

fn resolve(dir: &Path) -> Option<Watched> {
    let path = std::fs::canonicalize(dir).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    meta.is_dir().then(|| Watched {
        path,
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

struct Worker {
    dir: PathBuf,
    parent: Option<PathBuf>,
    watched: Option<Watched>,
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    load: super::LoadFn,
    on_change: Arc<dyn Fn() + Send + Sync>,
    status: StatusHandle,
    last: Option<Fingerprint>,
    changes: Arc<AtomicU64>,
}

impl Worker {
    fn new_debouncer(
        &self,
        debounce: Duration,
        tx: mpsc::Sender<Wake>,
    ) -> Option<Debouncer<RecommendedWatcher, RecommendedCache>> {
        let dir = self.dir.clone();
        let handler = move |res: DebounceEventResult| {
            let wake = match res {
                Ok(events) => {
                    // Reads (open, close-without-write) change nothing; counting them would
                    // make every load of the tree trigger the next one.
                    let relevant = |e: &notify_debouncer_full::DebouncedEvent| {
                        !e.kind.is_access() && e.paths.iter().any(|p| matters(&dir, p))
                    };
                    if !events.iter().any(relevant) {
                        return;
                    }
                    Wake::Events
                }
                Err(errors) => Wake::Error(
                    errors
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            };
            let _ = tx.send(wake);
        };
        let debounce = debounce.max(Duration::from_millis(1));
        match new_debouncer(debounce, None, handler) {
            Ok(mut d) => {
                if let Some(parent) = &self.parent
                    && let Err(e) = d.watch(parent, RecursiveMode::NonRecursive)
                {
                    tracing::warn!(dir = %parent.display(), error = %e, "failed to watch the parent directory; a replaced DIR is seen at the next resync");
                }
                Some(d)
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to start the directory watcher; changes are seen at each resync");
                None
            }
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Wake>, resync: Duration) {
        loop {
            let from_events = match rx.recv_timeout(resync) {
                Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Events) => true,
                Ok(Wake::Error(e)) => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "directory watch error; re-reading the tree");
                    true
                }
                Err(mpsc::RecvTimeoutError::Timeout) => false,
            };
            // Coalesce what queued up meanwhile into this one check.
            loop {
                match rx.try_recv() {
                    Ok(Wake::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Ok(_) => {}
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            self.check(from_events);
        }
    }

    /// Re-resolves DIR (re-watching when it moved), re-reads it, and wakes the controller
    /// when the fingerprint changed.
    fn check(&mut self, notify: bool) {
        let now = resolve(&self.dir);
        if now != self.watched {
            if let Some(d) = &mut self.debouncer {
                if let Some(old) = &self.watched {
                    let _ = d.unwatch(&old.path);
                }
                if let Some(new) = &now {
                    match d.watch(&new.path, RecursiveMode::Recursive) {
                        Ok(()) => {
                            tracing::info!(dir = %self.dir.display(), resolved = %new.path.display(), "watching the desired-state directory")
                        }
                        Err(e) => {
                            tracing::warn!(dir = %new.path.display(), error = %e, "failed to watch the directory; changes are seen at each resync")
                        }
                    }
                }
            }
            self.watched = now;
        }
        let loaded = (self.load)(&self.dir, None);
        let fp = fingerprint(&loaded);
        if self.last.as_ref() == Some(&fp) {
            return;
        }
        let revision = Revision {
            id: fp.id().to_string(),
            commit: None,
        };
        match &fp {
            Fingerprint::Valid(_) => {
                if notify {
                    tracing::info!(dir = %self.dir.display(), revision = revision.short(), "desired state changed: applying");
                }
                self.status.update(|s| {
                    s.revision = Some(revision.clone());
                    s.good = Some(revision.clone());
                    s.refused = None;
                });
            }
            Fingerprint::Invalid(_) => {
                // The controller logs the positioned diagnostics at its next round.
                tracing::warn!(
                    dir = %self.dir.display(),
                    revision = revision.short(),
                    errors = loaded.diagnostics.errors(),
                    "desired state changed but is invalid; the last good one keeps running"
                );
                self.status.update(|s| {
                    s.revision = Some(revision.clone());
                    s.refused = Some(Refusal {
                        id: revision.id.clone(),
                        reason: format!(
                            "invalid desired state ({} errors)",
                            loaded.diagnostics.errors()
                        ),
                        at: now_secs(),
                    });
                });
            }
        }
        let first = self.last.is_none();
        self.last = Some(fp);
        if !first {
            self.changes.fetch_add(1, Ordering::Relaxed);
            (self.on_change)();
        }
    }
}

/// Whether an event path can change the desired state: anything in or at DIR (at any resolved
/// location) except under a `.git` directory; of DIR's siblings in the parent, nothing.
fn matters(dir: &Path, path: &Path) -> bool {
    if path
        .components()
        .any(|c| c == Component::Normal(".git".as_ref()))
    {
        return false;
    }
    let sibling = path.parent() == dir.parent() && path != dir;
    !sibling
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_and_git_internals_do_not_matter() {
        let dir = Path::new("/srv/stacks");
        assert!(matters(dir, Path::new("/srv/stacks")));
        assert!(matters(dir, Path::new("/srv/stacks/web/compose.yaml")));
        assert!(matters(dir, Path::new("/srv/releases/v2/web/compose.yaml")));
        assert!(!matters(dir, Path::new("/srv/other")));
        assert!(!matters(dir, Path::new("/srv/stacks/.git/index")));
    }
}
