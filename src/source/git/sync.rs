//! The running source: the fetch loop (interval, webhook pokes, back-off), one sync (fetch,
//! verify, check out, load, switch), the atomic swap of the served tree with its `current` and
//! `good` symlinks, and the removal of trees nothing points at.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::repo::*;
use super::{Checkout, GitError, GitOptions, GitSource, Layout, Repo, Served, fetch_delay};
use crate::desired::{Diagnostics, Loaded, Loc};
use crate::source::{Fetch, Refusal, SourceKind, StatusHandle, now_secs};
use crate::util::id::short;

impl GitSource {
    /// Opens the clone in `data_dir/git/` (serving its last good tree at once, if any) and
    /// starts the sync thread, which fetches now, then every interval and on [`Self::poker`].
    /// `load` reads the desired state from a root; `on_change` wakes the controller.
    pub fn start(
        opts: GitOptions,
        data_dir: &Path,
        load: crate::source::LoadFn,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Arc<GitSource>, GitError> {
        opts.check()?;
        let layout = Layout {
            base: data_dir.join("git"),
        };
        std::fs::create_dir_all(layout.trees()).map_err(|e| GitError::Io {
            what: format!("failed to create {}", layout.trees().display()),
            source: e,
        })?;
        let repo = Repo::open(&layout.repo(), &opts)?;
        let status = StatusHandle::new(SourceKind::Git, opts.location());
        let mut served = Served::default();
        // The last good tree of a previous run: served until the first fetch says otherwise.
        if let Some(sha) = link_target(&layout.link("good"))
            && layout.tree(&sha).is_dir()
            && let Ok(commit) = repo.commit(&sha)
        {
            let c = Checkout {
                tree: layout.tree(&sha),
                commit,
            };
            tracing::info!(commit = %short(&sha), "git: starting from the last good commit of the previous run");
            status.update(|s| {
                s.revision = Some(c.revision());
                s.good = Some(c.revision());
            });
            served.current = Some(c.clone());
            served.good = Some(c);
        }
        collect_trees(&layout, &repo, &served);
        let (poke, rx) = mpsc::sync_channel(1);
        let source = Arc::new(GitSource {
            opts,
            served: Arc::new(RwLock::new(served)),
            status,
            served_valid: AtomicBool::new(false),
            poke,
            stop: Arc::new(AtomicBool::new(false)),
            load,
            good_link: layout.link("good"),
        });
        let s = source.clone();
        std::thread::Builder::new()
            .name("berth-git-sync".into())
            .spawn(move || s.sync_loop(repo, layout, rx, on_change))
            .map_err(|e| GitError::Io {
                what: "failed to start the git sync thread".into(),
                source: e,
            })?;
        Ok(source)
    }

    /// What the source serves now.
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// Asks for a fetch now; bursts coalesce (one pending fetch at most).
    pub fn poke(&self) {
        let _ = self.poke.try_send(());
    }

    /// A function that asks for a fetch (for the webhook).
    pub fn poker(self: &Arc<Self>) -> Arc<dyn Fn() + Send + Sync> {
        let tx = self.poke.clone();
        Arc::new(move || {
            let _ = tx.try_send(());
        })
    }

    /// Stops the sync thread after its current fetch.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.poke();
    }

    /// The desired state to apply: the newest checkout's, or — until a valid state was served
    /// once — the last good checkout's when the newest is invalid (so a restart on an invalid
    /// commit still has something to keep running).
    pub fn load(&self) -> Loaded {
        let (current, good) = {
            let s = self.served.read().unwrap_or_else(|e| e.into_inner());
            (s.current.clone(), s.good.clone())
        };
        let Some(current) = current else {
            let mut d = Diagnostics::default();
            let why = self
                .status
                .snapshot()
                .fetch
                .and_then(|f| f.error)
                .unwrap_or_else(|| "the first fetch has not finished".into());
            d.error(
                &Loc::file(crate::source::redact_url(&self.opts.url)),
                format!("no commit checked out yet: {why}"),
            );
            return Loaded {
                state: None,
                diagnostics: d,
                projects: Vec::new(),
                root: PathBuf::from(crate::source::redact_url(&self.opts.url)),
            };
        };
        // A valid tree is the `good` one: containers reach it through the `good` symlink.
        let good_root = self.opts.root_in(&self.good_link);
        let is_good = good.as_ref().map(|g| &g.commit.sha) == Some(&current.commit.sha);
        let loaded = (self.load)(
            &self.opts.root_in(&current.tree),
            is_good.then_some(good_root.as_path()),
        );
        if loaded.state.is_some() {
            self.served_valid.store(true, Ordering::Relaxed);
            return loaded;
        }
        if !self.served_valid.load(Ordering::Relaxed)
            && let Some(good) = good.filter(|g| g.commit.sha != current.commit.sha)
        {
            let fallback = (self.load)(&self.opts.root_in(&good.tree), Some(&good_root));
            if fallback.state.is_some() {
                tracing::warn!(
                    invalid = %short(&current.commit.sha),
                    good = %short(&good.commit.sha),
                    "git: the newest commit is invalid; starting from the last good commit"
                );
                self.served_valid.store(true, Ordering::Relaxed);
                return fallback;
            }
        }
        loaded
    }

    pub(super) fn sync_loop(
        &self,
        repo: Repo,
        layout: Layout,
        rx: mpsc::Receiver<()>,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) {
        let mut failures: u32 = 0;
        let mut noted: Option<String> = None;
        let mut reason = "start";
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            match self.sync_once(&repo, &layout, reason, &mut noted) {
                Ok(changed) => {
                    failures = 0;
                    if changed {
                        on_change();
                    }
                }
                Err(e) => {
                    failures += 1;
                    let msg = e.to_string();
                    let delay = fetch_delay(self.opts.interval, failures);
                    tracing::warn!(error = %msg, failures, retry_in = ?delay, "git: fetch failed; keeping the last good state");
                    self.status.update(|s| {
                        s.fetch = Some(Fetch {
                            at: now_secs(),
                            error: Some(msg.clone()),
                            failures,
                        })
                    });
                }
            }
            let delay = fetch_delay(self.opts.interval, failures);
            reason = match rx.recv_timeout(delay) {
                Ok(()) => {
                    while rx.try_recv().is_ok() {}
                    "webhook"
                }
                Err(mpsc::RecvTimeoutError::Timeout) => "interval",
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
        }
    }

    /// One fetch and, when the ref moved, checkout, check and switch. `Ok(true)` when the
    /// controller should look again.
    pub(super) fn sync_once(
        &self,
        repo: &Repo,
        layout: &Layout,
        reason: &str,
        noted: &mut Option<String>,
    ) -> Result<bool, GitError> {
        let reference = self.opts.reference.as_deref();
        let started = Instant::now();
        repo.fetch(reference)?;
        self.status.update(|s| {
            s.fetch = Some(Fetch {
                at: now_secs(),
                error: None,
                failures: 0,
            })
        });
        tracing::debug!(reason, took = ?started.elapsed(), "git: fetched");
        let sha = match repo.resolve(reference) {
            Ok(sha) => sha,
            Err(e @ GitError::RefNotFound { .. }) => {
                let msg = e.to_string();
                if noted.as_deref() != Some(msg.as_str()) {
                    tracing::warn!("git: {msg}; keeping the last good state");
                    *noted = Some(msg);
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let (current, good) = {
            let s = self.served.read().unwrap_or_else(|e| e.into_inner());
            (s.current.clone(), s.good.clone())
        };
        if current.as_ref().is_some_and(|c| c.commit.sha == sha) {
            return Ok(false);
        }
        if noted.as_deref() == Some(sha.as_str()) {
            return Ok(false); // refused before: said so once
        }
        let commit = repo.commit(&sha)?;
        let keeping = || {
            good.as_ref().map_or("nothing yet".to_string(), |g| {
                format!("commit {}", short(&g.commit.sha))
            })
        };
        if self.opts.verify_signatures
            && let Err(why) = repo.verify(&sha)?
        {
            tracing::error!(
                commit = %short(&sha),
                author = %commit.author,
                "git: refusing commit {}: {why}; keeping {}",
                short(&sha),
                keeping()
            );
            self.status.update(|s| {
                s.refused = Some(Refusal {
                    id: sha.clone(),
                    reason: why.clone(),
                    at: now_secs(),
                })
            });
            *noted = Some(sha);
            return Ok(false);
        }
        let tree = layout.tree(&sha);
        if !tree.is_dir() {
            repo.prune_worktrees();
            repo.checkout(&sha, &tree)?;
        }
        let checkout = Checkout { tree, commit };
        // Checked where it is (the `good` symlink still names the last good tree).
        let loaded = (self.load)(&self.opts.root_in(&checkout.tree), None);
        let valid = loaded.state.is_some();
        let rewritten = current
            .as_ref()
            .is_some_and(|c| !repo.is_ancestor(&c.commit.sha, &sha));
        // The symlinks first (containers created from the new state mount through `good`),
        // then the switch: from here on every load reads the new tree.
        set_link(&layout.link("current"), &sha);
        if valid {
            set_link(&layout.link("good"), &sha);
        }
        {
            let mut s = self.served.write().unwrap_or_else(|e| e.into_inner());
            s.previous = s.current.as_ref().map(|c| c.commit.sha.clone());
            s.current = Some(checkout.clone());
            if valid {
                s.good = Some(checkout.clone());
            }
        }
        let rev = checkout.revision();
        let c = &checkout.commit;
        if valid {
            tracing::info!(
                commit = %short(&sha),
                author = %c.author,
                time = c.time,
                reason,
                "git: applying commit {} ({}){}: {}",
                short(&sha),
                c.author,
                if rewritten { ", history rewritten (force-push)" } else { "" },
                c.subject()
            );
            self.status.update(|s| {
                s.revision = Some(rev.clone());
                s.good = Some(rev.clone());
                s.refused = None;
            });
        } else {
            tracing::error!(
                commit = %short(&sha),
                author = %c.author,
                errors = loaded.diagnostics.errors(),
                "git: commit {} is not a valid desired state; keeping {}:\n{}",
                short(&sha),
                keeping(),
                loaded.diagnostics
            );
            self.status.update(|s| {
                s.revision = Some(rev.clone());
                s.refused = Some(Refusal {
                    id: sha.clone(),
                    reason: format!(
                        "invalid desired state ({} errors)",
                        loaded.diagnostics.errors()
                    ),
                    at: now_secs(),
                });
            });
        }
        *noted = None;
        collect_trees(
            layout,
            repo,
            &self.served.read().unwrap_or_else(|e| e.into_inner()),
        );
        Ok(true)
    }
}

/// The tree name a `current`/`good` symlink points at.
pub(super) fn link_target(link: &Path) -> Option<String> {
    let t = std::fs::read_link(link).ok()?;
    let name = t.file_name()?.to_str()?.to_string();
    is_full_sha(&name).then_some(name)
}

/// Points `link` at `trees/<sha>`: a new symlink renamed over the old one (atomic).
pub(super) fn set_link(link: &Path, sha: &str) {
    let tmp = link.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let target = Path::new("trees").join(sha);
    if let Err(e) =
        std::os::unix::fs::symlink(&target, &tmp).and_then(|()| std::fs::rename(&tmp, link))
    {
        tracing::warn!(link = %link.display(), error = %e, "git: failed to update the symlink");
    }
}

/// Removes trees nothing serves (nor the previous `current`, which a load may be reading).
pub(super) fn collect_trees(layout: &Layout, repo: &Repo, served: &Served) {
    let keep: Vec<&str> = [
        served.current.as_ref().map(|c| c.commit.sha.as_str()),
        served.good.as_ref().map(|c| c.commit.sha.as_str()),
        served.previous.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let Ok(entries) = std::fs::read_dir(layout.trees()) else {
        return;
    };
    let mut removed = false;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name.as_str()) {
            let _ = std::fs::remove_dir_all(e.path());
            removed = true;
        }
    }
    if removed {
        repo.prune_worktrees();
    }
}
