//! The bare clone: open (and scrub credentials an older config kept), fetch, resolve a
//! reference, read and verify a commit, check a commit out into its own tree.

use std::ffi::OsString;
use std::path::Path;

use super::command::*;
use super::{GitError, GitOptions, Repo};
use crate::source::Commit;

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
}

pub(super) fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}
