//! A real git repository in a temp dir, used as berth's remote (`file://`), with helpers to
//! commit Compose files, rewrite history, delete refs and sign commits with an SSH key.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A work repository that berth fetches from.
pub struct Remote {
    /// The repository's directory.
    pub dir: PathBuf,
    /// Scratch space beside it (keys, allowed signers).
    pub scratch: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Runs git in `dir` with a fixed identity; panics with git's output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=author@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Remote {
    /// An empty repository on branch `main`.
    pub fn new() -> Remote {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("remote");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        Remote {
            dir,
            scratch,
            _tmp: tmp,
        }
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Writes `files` (path, content) and commits them; returns the commit's SHA.
    pub fn commit(&self, message: &str, files: &[(&str, &str)]) -> String {
        for (path, content) in files {
            let p = self.dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// Commits `app/compose.yaml` running `image`.
    pub fn commit_image(&self, message: &str, image: &str) -> String {
        self.commit(
            message,
            &[(
                "app/compose.yaml",
                &format!("services:\n  web:\n    image: {image}\n"),
            )],
        )
    }

    /// The current commit.
    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    /// Creates an SSH signing key; returns (private key, allowed-signers file).
    pub fn signing_key(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = self.scratch.join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .output()
            .expect("run ssh-keygen");
        assert!(out.status.success(), "ssh-keygen failed");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let allowed = self.scratch.join(format!("{name}.allowed"));
        std::fs::write(&allowed, format!("author@example.com {public}")).unwrap();
        (key, allowed)
    }

    /// Like [`Self::commit_image`], signed with an SSH key.
    pub fn commit_image_signed(&self, message: &str, image: &str, key: &Path) -> String {
        std::fs::create_dir_all(self.dir.join("app")).unwrap();
        std::fs::write(
            self.dir.join("app/compose.yaml"),
            format!("services:\n  web:\n    image: {image}\n"),
        )
        .unwrap();
        git(&self.dir, &["add", "-A"]);
        let signing = format!("user.signingkey={}", key.display());
        git(
            &self.dir,
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &signing,
                "commit",
                "-q",
                "-S",
                "-m",
                message,
            ],
        );
        self.head()
    }
}
