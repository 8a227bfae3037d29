//! Applying an update to a Git source: a fresh shallow clone of the tracked branch, the same
//! byte-exact edit as for a directory (`write`), one commit naming the service and both
//! versions, and a push — to the tracked branch, or to a branch of its own for review.
//!
//! IO (the git CLI, like `source::git`). Each git run has a deadline and no terminal prompt;
//! the clone and the push authenticate as the git source does ([`Remote`]: its SSH key,
//! token or URL user info, in the environment only, scrubbed from what git prints), and the
//! operator's git settings (credential helpers, `GIT_SSH_COMMAND`) apply. The clone is a temp
//! directory, removed when done. A push to the tracked branch that loses a race with another
//! push fails and changes nothing; the next check tries again on the new commit. A branch of
//! its own (`--update-branch`) is berth's: it is rebuilt from the tracked branch's tip and
//! force-pushed at each update.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::check::Update;
use super::write::{WriteError, Written, write_update};
use crate::desired::diag::Loc;
use crate::source::git::Remote;

/// The longest one git command may run.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The author of berth's commits unless the caller names another.
pub const DEFAULT_AUTHOR: (&str, &str) = ("berth", "berth@localhost");

/// Why an update could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// git could not be started, or a temp directory made.
    #[error("failed to run git")]
    Spawn(#[source] std::io::Error),
    /// The credentials could not be read (e.g. the token file).
    #[error("failed to prepare the git credentials")]
    Credentials(#[source] crate::source::git::GitError),
    /// A git command failed.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// What git said (its last lines).
        stderr: String,
    },
    /// A git command ran past its deadline.
    #[error("git {command} timed out after {}s", GIT_TIMEOUT.as_secs())]
    Timeout {
        /// The subcommand.
        command: String,
    },
    /// The edit failed.
    #[error("failed to write the update into the clone")]
    Write(#[source] WriteError),
    /// The tracked ref is a tag, and no branch of berth's own was given.
    #[error(
        "failed to commit the update: {reference} is not a branch (give --update-branch NAME to push updates to a branch of their own)"
    )]
    NotABranch {
        /// The ref as given.
        reference: String,
    },
}

/// Where and as whom to commit.
#[derive(Debug, Clone)]
pub struct GitTarget {
    /// The repository and its credentials, as the git source has them.
    pub remote: Remote,
    /// The branch berth follows (`None`: the remote's default branch).
    pub branch: Option<String>,
    /// The desired-state directory inside the repository.
    pub path: Option<std::path::PathBuf>,
    /// Push to this branch instead of the tracked one (e.g. `berth/updates`).
    pub push_branch: Option<String>,
    /// Commit author name and e-mail.
    pub author: (String, String),
}

/// A pushed update commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new commit.
    pub sha: String,
    /// The branch it was pushed to.
    pub branch: String,
    /// The file changed (relative to the desired-state root).
    pub written: Written,
}

/// The commit message's subject: `berth: update shop/web 1.4.0 -> 1.5.0`.
pub fn subject(project: &str, service: &str, update: &Update) -> String {
    format!(
        "berth: update {project}/{service} {} -> {}",
        short_version(&update.from),
        short_version(&update.to)
    )
}

/// The tag, or the digest's first 12 hex digits, of a reference (whole when neither).
fn short_version(reference: &str) -> String {
    match crate::desired::syntax::image_ref::parse_image_ref(reference) {
        Ok(r) => match (r.tag, r.digest) {
            (Some(t), Some(d)) => format!("{t}@{}", &d[..d.len().min(19)]),
            (Some(t), None) => t,
            (None, Some(d)) => d[..d.len().min(19)].to_string(),
            (None, None) => reference.to_string(),
        },
        Err(_) => reference.to_string(),
    }
}

/// Clones, writes `update` at `image_loc`, commits and pushes.
pub fn commit_update(
    target: &GitTarget,
    project: &str,
    service: &str,
    image_loc: &Loc,
    update: &Update,
) -> Result<Committed, CommitError> {
    let tmp = tempfile::Builder::new()
        .prefix("berth-update-")
        .tempdir()
        .map_err(CommitError::Spawn)?;
    let clone = tmp.path().join("repo");
    let clone_s = clone.to_string_lossy().into_owned();
    let remote = &target.remote;
    let mut args = vec!["clone", "--quiet", "--depth", "1"];
    if let Some(b) = &target.branch {
        args.extend(["--branch", b.as_str()]);
    }
    args.extend([remote.url(), clone_s.as_str()]);
    git(None, &args, remote, true)?;
    // The branch the clone is on; none when the tracked ref is a tag (a detached clone),
    // which berth must not turn into a branch of the same name.
    let on_branch = git(
        Some(&clone),
        &["symbolic-ref", "--short", "-q", "HEAD"],
        remote,
        false,
    )
    .ok()
    .filter(|b| !b.is_empty());
    // The tracked branch only moves forward; berth's own branch is replaced.
    let (to, refspec) = match (&target.push_branch, on_branch) {
        (Some(own), _) => (own.clone(), format!("+HEAD:refs/heads/{own}")),
        (None, Some(b)) => (b.clone(), format!("HEAD:refs/heads/{b}")),
        (None, None) => {
            return Err(CommitError::NotABranch {
                reference: target.branch.clone().unwrap_or_else(|| "HEAD".into()),
            });
        }
    };
    let root = match &target.path {
        Some(p) => clone.join(p),
        None => clone.clone(),
    };
    let written = write_update(&root, image_loc, update).map_err(CommitError::Write)?;
    let file = match &target.path {
        Some(p) => p.join(written.file()),
        None => written.file().into(),
    };
    let file = file.to_string_lossy().into_owned();
    git(Some(&clone), &["add", "--", &file], remote, false)?;
    let message = format!(
        "{}\n\nImage: {} -> {}\nFile: {file}\n",
        subject(project, service, update),
        update.from,
        update.to
    );
    let author = format!("{} <{}>", target.author.0, target.author.1);
    let name = format!("user.name={}", target.author.0);
    let email = format!("user.email={}", target.author.1);
    git(
        Some(&clone),
        &[
            "-c", &name, "-c", &email, "commit", "--quiet", "--author", &author, "-m", &message,
        ],
        remote,
        false,
    )?;
    let sha = git(Some(&clone), &["rev-parse", "HEAD"], remote, false)?;
    git(
        Some(&clone),
        &["push", "--quiet", "origin", &refspec],
        remote,
        true,
    )?;
    Ok(Committed {
        sha,
        branch: to,
        written,
    })
}

/// Runs git (in `dir`; with `remote`'s credentials when it talks to it), bounded by
/// [`GIT_TIMEOUT`]; its trimmed stdout.
fn git(
    dir: Option<&Path>,
    args: &[&str],
    remote: &Remote,
    talks_to_remote: bool,
) -> Result<String, CommitError> {
    let command = args
        .iter()
        .find(|a| !a.starts_with('-') && !a.contains('='))
        .copied()
        .unwrap_or("git")
        .to_string();
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    if talks_to_remote {
        remote
            .authorize(&mut cmd)
            .map_err(CommitError::Credentials)?;
    }
    let mut child = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(CommitError::Spawn)?;
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(CommitError::Spawn)? {
            Some(_) => break,
            None if started.elapsed() > GIT_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommitError::Timeout { command });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().map_err(CommitError::Spawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(CommitError::Failed {
            command,
            stderr: remote.scrub(&tail.into_iter().rev().collect::<Vec<_>>().join("; ")),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
