//! The git source (`berth run --git URL`): a bare clone in `DATA_DIR/git/repo.git`, fetched on
//! an interval and on webhook, each new commit checked out into its own tree
//! `DATA_DIR/git/trees/<sha>` and switched to atomically.
//!
//! berth drives the git CLI (see docs/sources.md for why): every transport, credential
//! helper, `GIT_SSH_COMMAND`, proxy setting and signature format the operator's git knows
//! works unchanged, and `--verify-signatures` is git's own `verify-commit`. Each git run has a
//! deadline, no terminal prompt and credentials only in its environment (never in arguments,
//! never logged, never on disk): user info in an `http(s)://user:pass@host/…` URL is taken out
//! of the URL before git sees it and sent as an `Authorization` header through the
//! environment, so the clone's `config` holds the bare URL (an older clone's config that still
//! holds credentials is rewritten when the source opens it).
//!
//! The switch is an in-memory swap of the tree the controller loads (a reconcile never reads a
//! half-written tree: a tree is complete before it is served) plus a `current` symlink renamed
//! into place for people. `good` points at the newest tree that loaded as a valid desired
//! state; after a restart berth serves it until the first fetch, and while what the remote has
//! is invalid. Trees that neither points at (nor the previous `current`) are removed.
//!
//! Layout: this file holds the options, errors and types; `command` runs git (deadlines,
//! credentials, scrubbing), `repo` is the bare clone's operations (fetch, resolve, verify,
//! check out), `sync` the running source (fetch loop, switch, symlinks, tree clean-up).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{Commit, Revision, StatusHandle, now_secs};
use crate::util::id::short;

mod command;
pub use command::Remote;
mod repo;
mod sync;
#[cfg(test)]
mod tests;

/// Default fetch interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The longest a single git command may run.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest wait between fetches after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Errors of the git source.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started.
    #[error("failed to run git (is it installed?)")]
    Spawn(#[source] std::io::Error),
    /// A git command failed; `stderr` has credentials redacted.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// What git said.
        stderr: String,
    },
    /// A git command ran past its deadline and was killed.
    #[error("git {command} timed out after {secs}s")]
    Timeout {
        /// The subcommand.
        command: String,
        /// The deadline.
        secs: u64,
    },
    /// The tracked ref does not exist on the remote (any more).
    #[error("{reference} not found on the remote (deleted, or never pushed)")]
    RefNotFound {
        /// The ref as given.
        reference: String,
    },
    /// Reading credentials or preparing the data directory failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// An option is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// How git authenticates.
#[derive(Debug, Clone, Default)]
pub struct GitAuth {
    /// SSH private key (deploy key): used through `GIT_SSH_COMMAND`.
    pub ssh_key: Option<PathBuf>,
    /// A file holding an HTTPS token (read at each fetch, so a rotated token is picked up).
    pub token_file: Option<PathBuf>,
    /// An HTTPS token given directly (from the environment).
    pub token: Option<String>,
    /// The user name sent with the token.
    pub username: String,
}

/// What to track.
#[derive(Debug, Clone)]
pub struct GitOptions {
    /// The repository URL (or a local path).
    pub url: String,
    /// A branch, tag or commit SHA; `None`: the remote's default branch (its `HEAD`).
    pub reference: Option<String>,
    /// The desired-state directory inside the repository.
    pub path: Option<PathBuf>,
    /// Fetch at least this often.
    pub interval: Duration,
    /// Refuse commits whose signature `git verify-commit` does not accept.
    pub verify_signatures: bool,
    /// `gpg.ssh.allowedSignersFile` for SSH signatures.
    pub allowed_signers: Option<PathBuf>,
    /// Credentials.
    pub auth: GitAuth,
}

impl GitOptions {
    /// Checks what can be checked without the network: the subdirectory stays inside the
    /// repository, files given exist.
    pub fn check(&self) -> Result<(), GitError> {
        if let Some(p) = &self.path
            && (p.is_absolute()
                || p.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir)))
        {
            return Err(GitError::Invalid(format!(
                "--path {} must be a relative path inside the repository",
                p.display()
            )));
        }
        if let Some(r) = &self.reference
            && (r.is_empty() || r.starts_with('-'))
        {
            return Err(GitError::Invalid(format!("--ref {r:?} is not a ref")));
        }
        for (what, f) in [
            ("--git-ssh-key", &self.auth.ssh_key),
            ("--git-token-file", &self.auth.token_file),
            ("--git-allowed-signers", &self.allowed_signers),
        ] {
            if let Some(f) = f
                && !f.is_file()
            {
                return Err(GitError::Invalid(format!(
                    "{what} {}: no such file",
                    f.display()
                )));
            }
        }
        Ok(())
    }

    /// The URL without credentials, with ref and path, for logs and status.
    pub fn location(&self) -> String {
        let mut s = super::redact_url(&self.url);
        s.push_str(&format!(
            " (ref {}",
            self.reference.as_deref().unwrap_or("HEAD")
        ));
        if let Some(p) = &self.path {
            s.push_str(&format!(", path {}", p.display()));
        }
        s.push(')');
        s
    }

    /// Where `berth run --git` with this data dir lets containers reach the desired state's
    /// root (`DATA_DIR/git/good`, plus `--path`): `berth plan --git` loads with it so that its
    /// plan matches what `berth run` applied.
    pub fn run_root(&self, data_dir: &Path) -> PathBuf {
        self.root_in(&data_dir.join("git").join("good"))
    }

    fn root_in(&self, tree: &Path) -> PathBuf {
        match &self.path {
            Some(p) => tree.join(p),
            None => tree.to_path_buf(),
        }
    }
}

/// The wait before the next fetch: the interval, doubled per failure in a row up to ten
/// minutes (or the interval, if longer).
pub fn fetch_delay(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let backed = interval.saturating_mul(1u32 << failures.min(16).saturating_sub(1));
    backed.min(MAX_BACKOFF.max(interval))
}

/// A bare repository driven through the git CLI.
pub struct Repo {
    git_dir: PathBuf,
    /// The remote's URL without credentials (what git's config holds).
    url: String,
    /// User and password taken out of the URL (memory only).
    url_auth: Option<(String, String)>,
    auth: GitAuth,
    allowed_signers: Option<PathBuf>,
}

/// Output of one git run.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// A checked-out commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The tree (`DATA_DIR/git/trees/<sha>`).
    pub tree: PathBuf,
    /// The commit.
    pub commit: Commit,
}

impl Checkout {
    fn revision(&self) -> Revision {
        Revision {
            id: self.commit.sha.clone(),
            commit: Some(self.commit.clone()),
        }
    }
}

/// What the controller may load: the newest checkout and the newest valid one.
#[derive(Debug, Default)]
struct Served {
    current: Option<Checkout>,
    good: Option<Checkout>,
    /// The `current` before the last switch (kept on disk: a load may still read it).
    previous: Option<String>,
}

/// The git source of a running `berth run`: a sync thread plus the state the load reads.
pub struct GitSource {
    opts: GitOptions,
    served: Arc<RwLock<Served>>,
    status: StatusHandle,
    /// Set once a valid state was served: from then on the controller keeps the last good one
    /// itself.
    served_valid: AtomicBool,
    poke: mpsc::SyncSender<()>,
    stop: Arc<AtomicBool>,
    load: super::LoadFn,
    /// `DATA_DIR/git/good`: the path containers mount the desired state's files through.
    good_link: PathBuf,
}

/// Paths under `DATA_DIR/git/`.
struct Layout {
    base: PathBuf,
}

impl Layout {
    fn repo(&self) -> PathBuf {
        self.base.join("repo.git")
    }
    fn trees(&self) -> PathBuf {
        self.base.join("trees")
    }
    fn tree(&self, sha: &str) -> PathBuf {
        self.trees().join(sha)
    }
    fn link(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }
}

/// A one-off checkout (for `berth validate --git` and `berth plan --git`) in a temporary
/// directory, removed when dropped.
pub struct TempCheckout {
    dir: PathBuf,
    /// The desired-state root inside the checkout.
    pub root: PathBuf,
    /// The commit checked out.
    pub commit: Commit,
}

impl Drop for TempCheckout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fetches the tracked ref of `opts` into a fresh temporary directory and checks it out; with
/// `verify_signatures`, an unaccepted signature is an error.
pub fn checkout_once(opts: &GitOptions) -> Result<TempCheckout, GitError> {
    opts.check()?;
    let dir = std::env::temp_dir().join(format!("berth-git-{}-{}", std::process::id(), now_secs()));
    let mut guard = TempCheckout {
        dir: dir.clone(),
        root: PathBuf::new(),
        commit: Commit {
            sha: String::new(),
            author: String::new(),
            time: 0,
            message: String::new(),
        },
    };
    let repo = Repo::open(&dir.join("repo.git"), opts)?;
    let reference = opts.reference.as_deref();
    repo.fetch(reference)?;
    let sha = repo.resolve(reference)?;
    if opts.verify_signatures
        && let Err(why) = repo.verify(&sha)?
    {
        return Err(GitError::Invalid(format!(
            "commit {} refused: {why}",
            short(&sha)
        )));
    }
    let tree = dir.join("tree");
    repo.checkout(&sha, &tree)?;
    let commit = repo.commit(&sha)?;
    guard.root = opts.root_in(&tree);
    guard.commit = commit;
    Ok(guard)
}
