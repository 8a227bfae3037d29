//! Build script: records the commit berth is built from, for `berth --version`.
//!
//! `BERTH_BUILD_COMMIT` (set by a Docker build or a packager building from a tarball) wins;
//! else `git rev-parse` in the source tree; else `unknown`. Without git, or outside a git
//! checkout, the build still succeeds. Only the commit is recorded (no dirty flag): the build
//! script reruns when HEAD or the branch it points at moves, not on every edit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_BUILD_COMMIT");
    let commit = std::env::var("BERTH_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BERTH_BUILD_COMMIT={commit}");
}

/// The short commit of HEAD, watching the files that move when it does.
fn git_commit() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&manifest)
            .args(args)
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rerun when a commit is made or checked out: HEAD, the branch it names, packed refs.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        watch(&dir.join("HEAD"));
        watch(&dir.join("packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            // In a linked worktree, branches live in the common git dir.
            let common = git(&["rev-parse", "--git-common-dir"])
                .map(|c| manifest.join(c))
                .unwrap_or_else(|| dir.to_path_buf());
            watch(&common.join(branch));
        }
    }
    Some(commit)
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
