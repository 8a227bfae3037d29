//! The sources on the command line, without Docker: `berth validate --git` on valid and
//! invalid commits, branches, tags and subdirectories; usage errors of `run` and `apply`.

mod support {
    pub mod gitrepo;
}

use std::process::{Command, Output};

use support::gitrepo::{Remote, git};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env(
            "BERTH_DATA_DIR",
            std::env::temp_dir().join("berth-source-cli-unused"),
        )
        .output()
        .expect("run berth")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn validate_git_checks_the_commit_the_ref_names() {
    let remote = Remote::new();
    let good = remote.commit(
        "good",
        &[(
            "stacks/app/compose.yaml",
            "services:\n  web:\n    image: busybox:1\n",
        )],
    );
    git(&remote.dir, &["tag", "v1"]);
    remote.commit(
        "typo",
        &[(
            "stacks/app/compose.yaml",
            "services:\n  web:\n    image: busybox:1\n    depends_on: [databse]\n",
        )],
    );
    let url = remote.url();

    let o = berth(&["validate", "--git", &url, "--ref", "v1", "--path", "stacks"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.contains(&format!("commit {} by Test Author", &good[..12])),
        "{err}"
    );
    assert!(out.contains("app"), "{out}");

    let o = berth(&["validate", "--git", &url, "--path", "stacks"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("app/compose.yaml:4:"),
        "positioned diagnostics relative to the repository's desired-state root:\n{err}"
    );

    let o = berth(&["validate", "--git", &url, "--ref", "nope"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("nope not found on the remote"), "{err}");
}

#[test]
fn usage_errors() {
    // run needs exactly one source.
    assert_eq!(berth(&["run"]).status.code(), Some(2));
    assert_eq!(
        berth(&["run", "--dir", "/tmp", "--git", "file:///x"])
            .status
            .code(),
        Some(2)
    );
    // Git-only options need --git.
    assert_eq!(
        berth(&["run", "--dir", "/tmp", "--ref", "main"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        berth(&["validate", "/nonexistent", "--git", "file:///x"])
            .status
            .code(),
        Some(2)
    );
    // apply does not take a repository.
    let o = berth(&["apply", "--git", "file:///nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("berth run --git"), "{}", text(&o).1);
}
