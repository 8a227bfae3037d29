//! The directory source on a real filesystem (inotify): editor-style saves, a burst of writes,
//! invalid then fixed files, changes that change nothing, `git checkout` inside DIR, and DIR
//! swapped as a symlink or replaced by a rename. The on-change callback counts the reconciles
//! the watcher asks for. No Docker.

mod support {
    pub mod gitrepo;
}

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth::desired::{self, LoadOptions};
use berth::source::dir::{DirOptions, DirWatcher};
use berth::source::{Fingerprint, LoadFn, fingerprint};
use support::gitrepo::git;

const DEBOUNCE: Duration = Duration::from_millis(100);

struct Watched {
    watcher: DirWatcher,
    changes: Arc<AtomicU64>,
    loads: Arc<AtomicU64>,
    dir: PathBuf,
}

fn compose(image: &str) -> String {
    format!("services:\n  web:\n    image: {image}\n")
}

fn watch(dir: &Path, debounce: Duration) -> Watched {
    let loads = Arc::new(AtomicU64::new(0));
    let l = loads.clone();
    let load: LoadFn = Arc::new(move |root: &Path, _run_root: Option<&Path>| {
        l.fetch_add(1, Ordering::Relaxed);
        desired::load(root, &LoadOptions::default())
    });
    let changes = Arc::new(AtomicU64::new(0));
    let c = changes.clone();
    let watcher = DirWatcher::start(
        DirOptions {
            dir: dir.to_path_buf(),
            debounce,
            resync: Duration::from_secs(3600),
        },
        load,
        Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }),
    );
    Watched {
        watcher,
        changes,
        loads,
        dir: dir.to_path_buf(),
    }
}

impl Watched {
    fn count(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Waits for the count to reach `n`, then a little longer to see that it stays.
    fn expect(&self, n: u64, what: &str) {
        let start = Instant::now();
        while self.count() < n {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}: {} change(s)",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(DEBOUNCE * 4);
        assert_eq!(self.count(), n, "{what}");
    }

    /// The image the watcher's status says it serves: checked against a fresh load.
    fn serves(&self, image: &str) -> bool {
        let l = desired::load(&self.dir, &LoadOptions::default());
        let ok = l
            .state
            .as_ref()
            .and_then(|s| s.projects.get("app")?.services.get("web")?.image.clone())
            .as_deref()
            == Some(image);
        let fp = fingerprint(&l);
        ok && self.watcher.status().snapshot().revision.map(|r| r.id) == Some(fp.id().into())
    }
}

/// A desired-state root holding project `app`.
fn root(tmp: &Path, name: &str, image: &str) -> PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/compose.yaml"), compose(image)).unwrap();
    dir
}

#[test]
fn an_editor_style_rename_save_is_one_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "stacks", "busybox:1");
    let w = watch(&dir, DEBOUNCE);
    // vim/VS Code style: write a temp file beside it, then rename it over the original.
    let tmpfile = dir.join("app/.compose.yaml.swp");
    std::fs::write(&tmpfile, compose("busybox:2")).unwrap();
    std::fs::rename(&tmpfile, dir.join("app/compose.yaml")).unwrap();
    w.expect(1, "one change for the save");
    assert!(w.serves("busybox:2"));
    // Saving the same content again (a touch) changes nothing.
    std::fs::write(dir.join("app/compose.yaml"), compose("busybox:2")).unwrap();
    std::thread::sleep(DEBOUNCE * 5);
    assert_eq!(w.count(), 1, "unchanged content wakes nobody");
}

#[test]
fn a_burst_of_a_hundred_writes_is_one_or_two_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "stacks", "busybox:1");
    // The default debounce, as `berth run` uses it.
    let w = watch(&dir, berth::source::dir::DEFAULT_DEBOUNCE);
    for i in 0..100 {
        std::fs::write(
            dir.join("app/compose.yaml"),
            compose(&format!("busybox:{i}")),
        )
        .unwrap();
    }
    let start = Instant::now();
    while w.count() == 0 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let n = w.count();
    assert!(
        (1..=2).contains(&n),
        "{n} changes for a burst of 100 writes"
    );
    assert!(w.serves("busybox:99"));
}

#[test]
fn an_invalid_edit_is_reported_and_the_fix_is_a_change_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "stacks", "busybox:1");
    let w = watch(&dir, DEBOUNCE);
    std::fs::write(
        dir.join("app/compose.yaml"),
        "services:\n  web: {imag: x}\n",
    )
    .unwrap();
    w.expect(1, "the invalid edit");
    let st = w.watcher.status().snapshot();
    assert!(
        st.refused
            .unwrap()
            .reason
            .starts_with("invalid desired state")
    );
    let good = st.good.unwrap().id;
    assert_ne!(st.revision.unwrap().id, good);
    std::fs::write(dir.join("app/compose.yaml"), compose("busybox:3")).unwrap();
    w.expect(2, "the fix");
    assert!(w.serves("busybox:3"));
    assert!(w.watcher.status().snapshot().refused.is_none());
}

#[test]
fn a_new_project_directory_and_git_internals() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "stacks", "busybox:1");
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "v1"]);
    let w = watch(&dir, DEBOUNCE);
    // Churn inside .git alone (gc, a new ref) changes nothing.
    git(&dir, &["tag", "x"]);
    git(&dir, &["gc", "-q"]);
    std::thread::sleep(DEBOUNCE * 5);
    assert_eq!(w.count(), 0);
    // `git checkout` of another revision inside DIR is a change.
    git(&dir, &["checkout", "-q", "-b", "next"]);
    std::fs::write(dir.join("app/compose.yaml"), compose("busybox:2")).unwrap();
    git(&dir, &["commit", "-q", "-am", "v2"]);
    w.expect(1, "the commit's file change");
    git(&dir, &["checkout", "-q", "x"]);
    w.expect(2, "checking out v1 again");
    assert!(w.serves("busybox:1"));
    // A project directory appearing.
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("db/compose.yaml"), compose("busybox:9")).unwrap();
    w.expect(3, "the new project");
}

#[test]
fn a_swapped_symlink_is_followed_and_the_new_target_watched() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = root(tmp.path(), "release-1", "busybox:1");
    let v2 = root(tmp.path(), "release-2", "busybox:2");
    let link = tmp.path().join("current");
    std::os::unix::fs::symlink(&v1, &link).unwrap();
    let w = watch(&link, DEBOUNCE);
    // Swap atomically, as deploy tools do: a new link renamed over the old one.
    let next = tmp.path().join("current.new");
    std::os::unix::fs::symlink(&v2, &next).unwrap();
    std::fs::rename(&next, &link).unwrap();
    w.expect(1, "the swap");
    assert!(w.serves("busybox:2"));
    // Edits in the new target are seen; edits in the old one are not.
    std::fs::write(v1.join("app/compose.yaml"), compose("busybox:10")).unwrap();
    std::fs::write(v2.join("app/compose.yaml"), compose("busybox:20")).unwrap();
    w.expect(2, "an edit in the new target");
    assert!(w.serves("busybox:20"));
}

#[test]
fn a_directory_replaced_by_a_rename_is_watched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "stacks", "busybox:1");
    let w = watch(&dir, DEBOUNCE);
    let staged = root(tmp.path(), "stacks.new", "busybox:2");
    std::fs::rename(&dir, tmp.path().join("stacks.old")).unwrap();
    std::fs::rename(&staged, &dir).unwrap();
    w.expect(1, "the replaced directory");
    assert!(w.serves("busybox:2"));
    std::fs::write(dir.join("app/compose.yaml"), compose("busybox:3")).unwrap();
    w.expect(2, "an edit in the new directory");
    assert!(w.serves("busybox:3"));
    assert!(matches!(
        fingerprint(&desired::load(&dir, &LoadOptions::default())),
        Fingerprint::Valid(_)
    ));
}

#[test]
fn reading_the_tree_does_not_wake_the_watcher() {
    // Regression: inotify reports opens and reads too; counting them made every load of the
    // tree (the watcher's own, the controller's at each round) trigger another load.
    let tmp = tempfile::tempdir().unwrap();
    let dir = root(tmp.path(), "stacks", "busybox:1");
    let w = watch(&dir, DEBOUNCE);
    for _ in 0..10 {
        desired::load(&dir, &LoadOptions::default());
    }
    std::thread::sleep(DEBOUNCE * 6);
    assert_eq!(w.loads.load(Ordering::Relaxed), 1, "only the initial load");
    assert_eq!(w.count(), 0);
}
