//! Desired-state sources: where `berth run` reads the desired state from, and what tells the
//! controller that it changed.
//!
//! - `dir`: a directory on the host, watched with notify (debounced); every batch of events
//!   re-reads and re-validates the whole tree and wakes the controller only when the content
//!   fingerprint changed.
//! - `git`: a repository berth clones into `DATA_DIR/git/` with the git CLI, fetches on an
//!   interval and on webhook, checks out each new commit into a fresh tree and switches to it
//!   atomically (an in-memory path swap plus a `current` symlink for people).
//! - `webhook`: the pure checks of `POST /hooks/git` (HMAC signatures, GitLab tokens, which
//!   pushes matter) and the handler handed to the HTTP server.
//!
//! Both sources give the controller a `load` function (called at every reconcile) and publish
//! what they serve in a [`StatusHandle`]: the revision (a content hash or a commit), the last
//! refusal and the last fetch, for logs, status and metrics.

pub mod dir;
pub mod git;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desired::Loaded;

/// Reads the desired state from a root directory (the loader with the run's options); the
/// second argument is the loader's `run_root` (where containers reach the root, when that is
/// not where it is read: see `LoadOptions::run_root`).
pub type LoadFn = Arc<dyn Fn(&Path, Option<&Path>) -> Loaded + Send + Sync>;

/// Which source `berth run` uses.
#[derive(Debug, Clone)]
pub enum Spec {
    /// `--dir DIR`.
    Dir(dir::DirOptions),
    /// `--git URL`.
    Git(git::GitOptions),
}

/// A started source: what the controller's `load` calls, and the status it publishes.
pub enum Running {
    /// A watched directory.
    Dir {
        /// The directory, as given.
        root: PathBuf,
        /// The watcher (stops when dropped).
        watcher: dir::DirWatcher,
        /// The loader.
        load: LoadFn,
    },
    /// A git repository.
    Git(Arc<git::GitSource>),
}

impl Running {
    /// Starts the source; `on_change` wakes the controller when the desired state changed.
    pub fn start(
        spec: Spec,
        data_dir: &Path,
        load: LoadFn,
        on_change: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Running, git::GitError> {
        Ok(match spec {
            Spec::Dir(opts) => Running::Dir {
                root: opts.dir.clone(),
                watcher: dir::DirWatcher::start(opts, load.clone(), on_change),
                load,
            },
            Spec::Git(opts) => {
                Running::Git(git::GitSource::start(opts, data_dir, load, on_change)?)
            }
        })
    }

    /// The desired state now (called by the controller at every reconcile).
    pub fn load(&self) -> Loaded {
        match self {
            Running::Dir { root, load, .. } => load(root, None),
            Running::Git(g) => g.load(),
        }
    }

    /// What the source serves.
    pub fn status(&self) -> StatusHandle {
        match self {
            Running::Dir { watcher, .. } => watcher.status(),
            Running::Git(g) => g.status(),
        }
    }

    /// The git source, if this is one.
    pub fn git(&self) -> Option<&Arc<git::GitSource>> {
        match self {
            Running::Git(g) => Some(g),
            Running::Dir { .. } => None,
        }
    }
}

/// Which kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A directory on the host (`--dir`).
    Dir,
    /// A git repository (`--git`).
    Git,
}

impl SourceKind {
    /// `dir` or `git`, as in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Dir => "dir",
            SourceKind::Git => "git",
        }
    }
}

/// One revision of the desired state as the source knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// A directory's content fingerprint (12 hex digits) or a commit's full SHA.
    pub id: String,
    /// The commit, for a git source.
    pub commit: Option<Commit>,
}

impl Revision {
    /// The id shortened for logs: 12 hex digits.
    pub fn short(&self) -> &str {
        crate::util::id::short(&self.id)
    }
}

/// What berth records of a commit it checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commit {
    /// Full SHA.
    pub sha: String,
    /// `Name <email>`.
    pub author: String,
    /// Commit time, seconds since the Unix epoch.
    pub time: i64,
    /// The full message (subject first).
    pub message: String,
}

impl Commit {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// A revision the source would not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The revision refused (a commit SHA, or a directory fingerprint).
    pub id: String,
    /// Why, in a sentence (signature check, invalid desired state, ...).
    pub reason: String,
    /// When, seconds since the Unix epoch.
    pub at: i64,
}

/// The last fetch of a git source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetch {
    /// When it ended, seconds since the Unix epoch.
    pub at: i64,
    /// The error, when it failed (credentials redacted).
    pub error: Option<String>,
    /// Failed fetches in a row (0 after a success).
    pub failures: u32,
}

/// What a source serves now: for `berth status`, metrics and events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    /// Directory or git.
    pub kind: SourceKind,
    /// The directory, or the repository URL (credentials removed) with ref and path.
    pub location: String,
    /// The newest revision the source serves to the controller (it may be invalid: then the
    /// controller keeps applying the last good state).
    pub revision: Option<Revision>,
    /// The newest revision that loaded as a valid desired state.
    pub good: Option<Revision>,
    /// The last revision refused (invalid, or failing the signature check), if it is newer
    /// than what is served.
    pub refused: Option<Refusal>,
    /// The last fetch (git only).
    pub fetch: Option<Fetch>,
}

/// A shared, cheap-to-clone view of a source's status.
#[derive(Debug, Clone)]
pub struct StatusHandle(Arc<Mutex<SourceStatus>>);

impl StatusHandle {
    /// A status with nothing served yet.
    pub fn new(kind: SourceKind, location: String) -> Self {
        StatusHandle(Arc::new(Mutex::new(SourceStatus {
            kind,
            location,
            revision: None,
            good: None,
            refused: None,
            fetch: None,
        })))
    }

    /// A copy of the current status.
    pub fn snapshot(&self) -> SourceStatus {
        self.lock().clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SourceStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a load came to, reduced to a hash: equal fingerprints mean the controller would see
/// the same thing (the same desired state, or the same diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    /// A valid desired state with this content hash (hex).
    Valid(String),
    /// An invalid one; the hash of its diagnostics (hex).
    Invalid(String),
}

impl Fingerprint {
    /// The hash (hex).
    pub fn id(&self) -> &str {
        match self {
            Fingerprint::Valid(h) | Fingerprint::Invalid(h) => h,
        }
    }
}

/// The fingerprint of a load: the SHA-256 of the desired state's JSON when valid (everything
/// the controller would apply, secrets included, never shown), else of the diagnostics text.
pub fn fingerprint(loaded: &Loaded) -> Fingerprint {
    match &loaded.state {
        Some(state) => {
            let json = serde_json::to_vec(state).unwrap_or_default();
            Fingerprint::Valid(hex(&Sha256::digest(&json)))
        }
        None => Fingerprint::Invalid(hex(&Sha256::digest(
            loaded.diagnostics.to_string().as_bytes(),
        ))),
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    i64::try_from(crate::util::time::unix_now()).unwrap_or(i64::MAX)
}

/// Removes credentials from a URL (`https://user:token@host/x` → `https://host/x`), so that
/// URLs can be logged and shown. Other text is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{}://{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// Redacts every URL with credentials in a text (git's error messages quote the remote).
pub(crate) fn redact_text(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let trimmed = word.trim_end();
            let start = trimmed.find("://").map(|i| {
                trimmed[..i]
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
                    .map_or(0, |j| j + 1)
            });
            match start {
                Some(s) => format!(
                    "{}{}{}",
                    &trimmed[..s],
                    redact_url(&trimmed[s..]),
                    &word[trimmed.len()..]
                ),
                None => word.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://x-access-token:ghs_secret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            redact_url("ssh://git@host:22/o/r.git"),
            "ssh://host:22/o/r.git"
        );
        assert_eq!(
            redact_url("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(redact_url("/srv/repo"), "/srv/repo");
        assert_eq!(
            redact_text("fatal: unable to access 'https://u:tok@h/r/': 403\n"),
            "fatal: unable to access 'https://h/r/': 403\n"
        );
    }

    #[test]
    fn fingerprint_follows_content_not_formatting_of_errors() {
        let opts = LoadOptions::default();
        let a = fingerprint(&load_inline("services: {web: {image: busybox}}\n", &opts));
        let b = fingerprint(&load_inline("services: {web: {image: busybox}}\n", &opts));
        let c = fingerprint(&load_inline("services: {web: {image: busybox:2}}\n", &opts));
        let bad = fingerprint(&load_inline("services: {web: {}}\n", &opts));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(matches!(a, Fingerprint::Valid(_)));
        assert!(matches!(bad, Fingerprint::Invalid(_)));
    }
}
