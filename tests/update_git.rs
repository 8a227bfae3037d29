//! Update commits against real git repositories (`file://` bare remotes in temp dirs), as
//! `berth run --git` and `berth updates apply --git` make them: to the tracked branch by
//! default (it moves forward by one commit, the file's comments kept), or to a branch of
//! berth's own (`--update-branch`), rebuilt from the tracked branch and force-pushed at each
//! update while the tracked branch stays as it was. No Docker.

mod support {
    pub mod gitrepo;
}

use std::path::{Path, PathBuf};

use berth::desired::{self, LoadOptions};
use berth::source::git::{GitAuth, Remote};
use berth::update::check::Update;
use berth::update::git::{DEFAULT_AUTHOR, GitTarget, commit_update};
use support::gitrepo::{self, git};

const COMPOSE: &str = "# the shop\nservices:\n  web:\n    image: r.example/app:1.0.0   # kept\n    x-berth:\n      update: {policy: semver}\n";

/// A bare repository (branch `main`) holding `shop/compose.yaml`, and the work repository it
/// came from.
fn bare() -> (gitrepo::Remote, PathBuf) {
    let work = gitrepo::Remote::new();
    work.commit("first", &[("shop/compose.yaml", COMPOSE)]);
    let bare = work.scratch.join("state.git");
    git(
        &work.scratch,
        &[
            "clone",
            "-q",
            "--bare",
            work.dir.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    (work, bare)
}

fn target(bare: &Path, push_branch: Option<&str>) -> GitTarget {
    GitTarget {
        remote: Remote::new(&format!("file://{}", bare.display()), GitAuth::default()),
        branch: Some("main".into()),
        path: None,
        push_branch: push_branch.map(str::to_string),
        author: (DEFAULT_AUTHOR.0.into(), DEFAULT_AUTHOR.1.into()),
    }
}

fn image_loc(work: &Path) -> berth::desired::Loc {
    let loaded = desired::load(work, &LoadOptions::default());
    let state = loaded.state.expect("the work tree loads");
    state.projects["shop"].services["web"].field_locs["image"].clone()
}

fn update(to: &str) -> Update {
    Update {
        from: "r.example/app:1.0.0".into(),
        to: format!("r.example/app:{to}"),
        version: to.into(),
    }
}

#[test]
fn an_update_is_one_commit_on_the_tracked_branch() {
    let (work, bare) = bare();
    let before = git(&bare, &["rev-parse", "main"]);
    let loc = image_loc(&work.dir);
    let done = commit_update(&target(&bare, None), "shop", "web", &loc, &update("1.1.0"))
        .expect("committed");
    assert_eq!(done.branch, "main");
    assert_eq!(git(&bare, &["rev-parse", "main"]), done.sha);
    assert_eq!(git(&bare, &["rev-parse", "main~1"]), before);
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an <%ae>|%s", "main"]),
        "berth <berth@localhost>|berth: update shop/web 1.0.0 -> 1.1.0"
    );
    assert_eq!(
        git(&bare, &["show", "main:shop/compose.yaml"]),
        COMPOSE
            .replace("app:1.0.0", "app:1.1.0")
            .trim_end()
            .to_string()
    );
}

#[test]
fn an_update_branch_is_rebuilt_and_force_pushed_and_the_tracked_branch_stays() {
    let (work, bare) = bare();
    let main = git(&bare, &["rev-parse", "main"]);
    let loc = image_loc(&work.dir);
    let t = target(&bare, Some("berth/updates"));
    let first = commit_update(&t, "shop", "web", &loc, &update("1.1.0")).expect("first");
    assert_eq!(first.branch, "berth/updates");
    // A later update, again from main's tip: not a fast-forward of the first, pushed anyway.
    let second = commit_update(&t, "shop", "web", &loc, &update("1.2.0")).expect("second");
    assert_eq!(git(&bare, &["rev-parse", "main"]), main, "main untouched");
    assert_eq!(git(&bare, &["rev-parse", "berth/updates"]), second.sha);
    assert_eq!(git(&bare, &["rev-parse", "berth/updates~1"]), main);
    assert_ne!(first.sha, second.sha);
    assert!(
        git(&bare, &["show", "berth/updates:shop/compose.yaml"])
            .contains("image: r.example/app:1.2.0   # kept")
    );
}

#[test]
fn a_failed_update_says_what_failed_and_leaves_the_remote_as_it_was() {
    let (work, bare) = bare();
    let main = git(&bare, &["rev-parse", "main"]);
    let loc = image_loc(&work.dir);
    // The update's `from` is not what the file has: nothing is committed.
    let wrong = Update {
        from: "r.example/app:0.9.0".into(),
        ..update("1.1.0")
    };
    let err = commit_update(&target(&bare, None), "shop", "web", &loc, &wrong)
        .expect_err("the file does not have 0.9.0");
    let text = berth::errors::chain(&err);
    assert!(
        text.starts_with("failed to write the update into the clone"),
        "{text}"
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), main);
    // A branch that does not exist: git's refusal, with its own words.
    let mut t = target(&bare, None);
    t.branch = Some("nope".into());
    let err = commit_update(&t, "shop", "web", &loc, &update("1.1.0")).expect_err("no branch");
    let text = berth::errors::chain(&err);
    assert!(text.starts_with("git clone failed: "), "{text}");
}

#[test]
fn a_tracked_tag_is_never_turned_into_a_branch() {
    let (work, bare) = bare();
    git(&bare, &["tag", "v1", "main"]);
    let loc = image_loc(&work.dir);
    let mut t = target(&bare, None);
    t.branch = Some("v1".into());
    let err = commit_update(&t, "shop", "web", &loc, &update("1.1.0")).expect_err("a tag");
    assert_eq!(
        berth::errors::chain(&err),
        "failed to commit the update: v1 is not a branch (give --update-branch NAME to push updates to a branch of their own)"
    );
    assert_eq!(git(&bare, &["branch", "--list", "v1"]), "");
    // With a branch of berth's own, it goes there.
    t.push_branch = Some("berth/updates".into());
    let done = commit_update(&t, "shop", "web", &loc, &update("1.1.0")).expect("own branch");
    assert_eq!(done.branch, "berth/updates");
    assert_eq!(
        git(&bare, &["rev-parse", "berth/updates~1"]),
        git(&bare, &["rev-parse", "v1^{commit}"])
    );
}
