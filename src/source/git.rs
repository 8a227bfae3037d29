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

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{Commit, Fetch, Refusal, Revision, SourceKind, StatusHandle, now_secs, redact_text};
use crate::desired::{Diagnostics, Loaded, Loc};
use crate::util::id::short;

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

impl Repo {
    /// Opens (creating if needed) the bare repository at `git_dir` with `origin` set to the
    /// URL.
    /// Credentials in the URL stay in memory: the config gets the URL without them, which
    /// also cleans the config of a clone an older berth wrote them into.
    pub fn open(git_dir: &Path, opts: &GitOptions) -> Result<Repo, GitError> {
        let (url, url_auth) = split_credentials(&opts.url);
        let repo = Repo {
            git_dir: git_dir.to_path_buf(),
            url,
            url_auth,
            auth: opts.auth.clone(),
            allowed_signers: opts.allowed_signers.clone(),
        };
        if !git_dir.join("HEAD").is_file() {
            std::fs::create_dir_all(git_dir).map_err(|e| GitError::Io {
                what: format!("failed to create {}", git_dir.display()),
                source: e,
            })?;
            repo.git(&["init", "--bare", "--quiet"], false)?;
        }
        let url = absolute_url(&repo.url);
        repo.git_os(
            &["config".into(), "remote.origin.url".into(), url.into()],
            false,
        )?;
        Ok(repo)
    }

    /// Fetches every branch and tag (forced, pruned: force-pushes and deleted refs show) and
    /// the remote's HEAD; a full SHA that no ref reaches is fetched by itself.
    pub fn fetch(&self, reference: Option<&str>) -> Result<(), GitError> {
        let mut args = vec![
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            "--no-write-fetch-head",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        ];
        if reference.is_none() {
            args.push("+HEAD:refs/berth/head");
        }
        self.git(&args, true)?;
        if let Some(r) = reference
            && is_full_sha(r)
            && self.commit_of(r).is_none()
        {
            let spec = format!("+{r}:refs/berth/pinned");
            self.git(
                &["fetch", "--quiet", "--no-write-fetch-head", "origin", &spec],
                true,
            )?;
        }
        Ok(())
    }

    /// The commit the tracked ref points at after the last fetch.
    pub fn resolve(&self, reference: Option<&str>) -> Result<String, GitError> {
        let candidates: Vec<String> = match reference {
            None => vec!["refs/berth/head".into()],
            Some(r) => {
                let name = r.strip_prefix("refs/heads/").unwrap_or(r);
                let mut c = vec![
                    format!("refs/remotes/origin/{name}"),
                    format!("refs/tags/{}", r.strip_prefix("refs/tags/").unwrap_or(r)),
                ];
                if is_full_sha(r) {
                    c.insert(0, r.to_string());
                }
                c
            }
        };
        candidates
            .iter()
            .find_map(|c| self.commit_of(c))
            .ok_or_else(|| GitError::RefNotFound {
                reference: reference.unwrap_or("HEAD").to_string(),
            })
    }

    fn commit_of(&self, rev: &str) -> Option<String> {
        let spec = format!("{rev}^{{commit}}");
        let out = self
            .run(
                &[
                    "rev-parse".into(),
                    "--verify".into(),
                    "--quiet".into(),
                    "--end-of-options".into(),
                    spec.into(),
                ],
                false,
            )
            .ok()?;
        out.ok.then(|| out.stdout.trim().to_string())
    }

    /// Commit, author, time and message of `sha`.
    pub fn commit(&self, sha: &str) -> Result<Commit, GitError> {
        let out = self.git(
            &[
                "log",
                "-1",
                "--no-show-signature",
                "--format=%H%x00%an <%ae>%x00%ct%x00%B",
                sha,
                "--",
            ],
            false,
        )?;
        let mut it = out.splitn(4, '\0');
        let sha = it.next().unwrap_or_default().trim().to_string();
        let author = it.next().unwrap_or_default().to_string();
        let time = it.next().unwrap_or_default().trim().parse().unwrap_or(0);
        let message = it.next().unwrap_or_default().trim().to_string();
        Ok(Commit {
            sha,
            author,
            time,
            message,
        })
    }

    /// `git verify-commit`: `Err(reason)` when the commit is unsigned or its signature is bad
    /// or not trusted.
    pub fn verify(&self, sha: &str) -> Result<Result<(), String>, GitError> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(f) = &self.allowed_signers {
            let mut v = OsString::from("gpg.ssh.allowedSignersFile=");
            v.push(f.as_os_str());
            args.extend(["-c".into(), v]);
        }
        args.extend(["verify-commit".into(), sha.into()]);
        let out = self.run(&args, false)?;
        if out.ok {
            return Ok(Ok(()));
        }
        let said = out.stderr.trim();
        Ok(Err(if said.is_empty() {
            "the commit is not signed".to_string()
        } else {
            format!("its signature was not accepted: {}", one_line(said))
        }))
    }

    /// Whether `old` is an ancestor of `new` (false after a force-push that rewrote history).
    pub fn is_ancestor(&self, old: &str, new: &str) -> bool {
        self.run(
            &[
                "merge-base".into(),
                "--is-ancestor".into(),
                old.into(),
                new.into(),
            ],
            false,
        )
        .is_ok_and(|o| o.ok)
    }

    /// Checks `sha` out into `dest` (which must not exist), as a detached worktree.
    pub fn checkout(&self, sha: &str, dest: &Path) -> Result<(), GitError> {
        self.git_os(
            &[
                "worktree".into(),
                "add".into(),
                "--detach".into(),
                "--force".into(),
                "--quiet".into(),
                dest.as_os_str().into(),
                sha.into(),
            ],
            false,
        )?;
        Ok(())
    }

    /// Forgets worktrees whose directories were removed.
    pub fn prune_worktrees(&self) {
        let _ = self.git(&["worktree", "prune"], false);
    }

    fn git(&self, args: &[&str], remote: bool) -> Result<String, GitError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.git_os(&args, remote)
    }

    fn git_os(&self, args: &[OsString], remote: bool) -> Result<String, GitError> {
        let out = self.run(args, remote)?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(GitError::Failed {
                command: subcommand(args),
                stderr: self.scrub(&one_line(out.stderr.trim())),
            })
        }
    }

    /// Runs git with a deadline; remote operations get the credentials.
    fn run(&self, args: &[OsString], remote: bool) -> Result<Output, GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.git_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        if remote {
            if let Some(key) = &self.auth.ssh_key {
                cmd.env(
                    "GIT_SSH_COMMAND",
                    format!(
                        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes",
                        shell_quote(&key.display().to_string())
                    ),
                );
            }
            if let Some(basic) = self.basic_credentials()? {
                // Scoped to the remote's URL; in the environment, not in argv (ps shows argv)
                // nor in the config (on disk).
                cmd.env("GIT_CONFIG_COUNT", "1")
                    .env(
                        "GIT_CONFIG_KEY_0",
                        format!("http.{}.extraHeader", absolute_url(&self.url)),
                    )
                    .env(
                        "GIT_CONFIG_VALUE_0",
                        format!("Authorization: Basic {}", base64(basic.as_bytes())),
                    );
            }
        }
        run_with_deadline(cmd, GIT_TIMEOUT, &subcommand(args))
    }

    fn token(&self) -> Result<Option<String>, GitError> {
        if let Some(f) = &self.auth.token_file {
            let t = std::fs::read_to_string(f).map_err(|e| GitError::Io {
                what: format!("failed to read the token file {}", f.display()),
                source: e,
            })?;
            return Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty()));
        }
        Ok(self.auth.token.clone().filter(|t| !t.is_empty()))
    }

    /// `user:secret` for HTTP basic authentication: the token (with `--git-username`) when
    /// one is given, else the user info of the URL.
    fn basic_credentials(&self) -> Result<Option<String>, GitError> {
        if let Some(token) = self.token()? {
            return Ok(Some(format!("{}:{token}", self.auth.username)));
        }
        Ok(self
            .url_auth
            .as_ref()
            .map(|(user, pass)| format!("{user}:{pass}")))
    }

    /// Removes credentials from a message: URLs' user info, the token and the URL's password
    /// themselves.
    fn scrub(&self, text: &str) -> String {
        let mut s = redact_text(text);
        let token = self.token().ok().flatten();
        let password = self.url_auth.as_ref().map(|(_, p)| p.clone());
        for secret in [token, password].into_iter().flatten() {
            if secret.len() >= 4 {
                s = s.replace(&secret, "[redacted]");
            }
        }
        s
    }
}

fn subcommand(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-') && !a.contains('='))
        .map(|a| a.into_owned())
        .unwrap_or_default()
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits the user info off an `http(s)://` URL: the URL git may store, and the
/// (percent-decoded) user and password to send in memory. Other URLs keep their user (an SSH
/// login name is no secret; git ignores a password there).
fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None);
    };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return (url.to_string(), None);
    }
    let rest = &url[scheme_end + 3..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..host_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let (user, pass) = match rest[..at].split_once(':') {
        Some((u, p)) => (u, p),
        None => (&rest[..at], ""),
    };
    let clean = format!("{}://{}", &url[..scheme_end], &rest[at + 1..]);
    (clean, Some((percent_decode(user), percent_decode(pass))))
}

/// `%XX` decoding (URL user info).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A local path made absolute (git resolves relative remotes against the bare repo).
fn absolute_url(url: &str) -> String {
    let looks_remote = url.contains("://") || {
        // scp-like `host:path` (a colon before any slash)
        let colon = url.find(':');
        let slash = url.find('/');
        matches!((colon, slash), (Some(c), Some(s)) if c < s)
            || (colon.is_some() && slash.is_none())
    };
    if looks_remote {
        return url.to_string();
    }
    std::path::absolute(url)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| url.to_string())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `cmd`, killing it at the deadline.
fn run_with_deadline(mut cmd: Command, limit: Duration, what: &str) -> Result<Output, GitError> {
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let mut nap = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(GitError::Timeout {
                    command: what.to_string(),
                    secs: limit.as_secs(),
                });
            }
            Ok(None) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(GitError::Spawn(e)),
        }
    };
    Ok(Output {
        ok: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
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

impl GitSource {
    /// Opens the clone in `data_dir/git/` (serving its last good tree at once, if any) and
    /// starts the sync thread, which fetches now, then every interval and on [`Self::poker`].
    /// `load` reads the desired state from a root; `on_change` wakes the controller.
    pub fn start(
        opts: GitOptions,
        data_dir: &Path,
        load: super::LoadFn,
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
                &Loc::file(super::redact_url(&self.opts.url)),
                format!("no commit checked out yet: {why}"),
            );
            return Loaded {
                state: None,
                diagnostics: d,
                projects: Vec::new(),
                root: PathBuf::from(super::redact_url(&self.opts.url)),
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

    fn sync_loop(
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
    fn sync_once(
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
fn link_target(link: &Path) -> Option<String> {
    let t = std::fs::read_link(link).ok()?;
    let name = t.file_name()?.to_str()?.to_string();
    is_full_sha(&name).then_some(name)
}

/// Points `link` at `trees/<sha>`: a new symlink renamed over the old one (atomic).
fn set_link(link: &Path, sha: &str) {
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
fn collect_trees(layout: &Layout, repo: &Repo, served: &Served) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_failures_back_off_from_the_interval_to_ten_minutes() {
        let m = Duration::from_secs(60);
        assert_eq!(fetch_delay(m, 0), m);
        assert_eq!(fetch_delay(m, 1), m);
        assert_eq!(fetch_delay(m, 2), 2 * m);
        assert_eq!(fetch_delay(m, 3), 4 * m);
        assert_eq!(fetch_delay(m, 5), Duration::from_secs(600));
        assert_eq!(fetch_delay(m, 40), Duration::from_secs(600));
        let h = Duration::from_secs(3600);
        assert_eq!(fetch_delay(h, 3), h);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"x-access-token:abc"), "eC1hY2Nlc3MtdG9rZW46YWJj");
    }

    #[test]
    fn paths_outside_the_repository_are_refused() {
        let opts = |p: &str| GitOptions {
            url: "/r".into(),
            reference: None,
            path: Some(p.into()),
            interval: DEFAULT_INTERVAL,
            verify_signatures: false,
            allowed_signers: None,
            auth: GitAuth::default(),
        };
        assert!(opts("stacks/prod").check().is_ok());
        assert!(opts("../etc").check().is_err());
        assert!(opts("/etc").check().is_err());
    }

    #[test]
    fn http_credentials_leave_the_url_other_users_stay() {
        assert_eq!(
            split_credentials("https://x-access-token:p%40ss@github.com/o/r.git"),
            (
                "https://github.com/o/r.git".to_string(),
                Some(("x-access-token".into(), "p@ss".into()))
            )
        );
        assert_eq!(
            split_credentials("http://tok@h:8080/r"),
            (
                "http://h:8080/r".to_string(),
                Some(("tok".into(), String::new()))
            )
        );
        assert_eq!(
            split_credentials("https://h/r@x"),
            ("https://h/r@x".to_string(), None)
        );
        assert_eq!(
            split_credentials("ssh://git@h/r.git"),
            ("ssh://git@h/r.git".to_string(), None)
        );
        assert_eq!(split_credentials("/srv/r"), ("/srv/r".to_string(), None));
    }

    #[test]
    fn local_paths_become_absolute_urls_stay() {
        assert_eq!(absolute_url("file:///r"), "file:///r");
        assert_eq!(absolute_url("git@host:o/r.git"), "git@host:o/r.git");
        assert!(absolute_url("repo").starts_with('/'));
        assert_eq!(shell_quote("/k'ey"), r"'/k'\''ey'");
    }
}
