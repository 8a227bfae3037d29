//! Build-context benchmark: what `build:` adds to a load (the controller reloads the desired
//! state every round, so the context hash is on every reconcile's path).
//!
//! 1. No-op: a project with one built service whose context holds 10,000 small files in 100
//!    directories; times repeated loads of the unchanged tree (the per-file digest cache is
//!    warm after the first).
//! 2. Change: a 50 MB context (50 files of 1 MB); one file is rewritten, then the load that
//!    sees the new content hash is timed — the part of "one-file change → build step" that
//!    happens before the planner.
//!
//! Reports numbers, asserts none about time; checks that the hash did (or did not) change.
//!
//! Run: `cargo bench --bench build_context`. On the issue-8 machine (load average ~7 from
//! other work): no-op load of the 10,000-file context 34 ms median (cold 116 ms); the load
//! that sees a one-file change in the 50 MB context 1.1 ms. Again after the build-parts
//! digests were added (load average ~1.5): 30.2 ms median (max 32.1, cold 89.2), 1.3 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use berth::desired::{LoadOptions, load};

fn hash(root: &Path) -> String {
    let l = load(root, &LoadOptions::default());
    let s = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
    let p = s.projects.into_values().next().expect("project");
    p.services["web"].build.clone().expect("build").content_hash
}

fn project(root: &Path) {
    std::fs::write(
        root.join("compose.yaml"),
        "services:\n  web:\n    image: web:1\n    build: app\n",
    )
    .expect("write compose");
    std::fs::create_dir_all(root.join("app")).expect("mkdir");
    std::fs::write(root.join("app/Dockerfile"), "FROM scratch\nCOPY . /\n").expect("write");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let small = tempfile::tempdir().expect("tempdir");
    project(small.path());
    for d in 0..100 {
        let dir = small.path().join(format!("app/d{d:03}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.txt")), format!("{d}/{f}")).expect("write");
        }
    }
    let t = Instant::now();
    let first = hash(small.path());
    let cold = t.elapsed();
    let mut runs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(hash(small.path()), first, "unchanged context, same hash");
        runs.push(t.elapsed());
    }
    println!(
        "10,000-file context: cold load {:.1} ms, no-op load median {:.1} ms (max {:.1} ms)",
        cold.as_secs_f64() * 1e3,
        median(runs.clone()).as_secs_f64() * 1e3,
        runs.iter().max().expect("runs").as_secs_f64() * 1e3
    );

    let big = tempfile::tempdir().expect("tempdir");
    project(big.path());
    let mb = vec![b'x'; 1 << 20];
    for f in 0..50 {
        std::fs::write(big.path().join(format!("app/blob{f:02}")), &mb).expect("write");
    }
    let before = hash(big.path());
    let mut runs = Vec::new();
    for i in 0..10u8 {
        let mut data = mb.clone();
        data[0] = i;
        std::fs::write(big.path().join("app/blob07"), &data).expect("write");
        let t = Instant::now();
        let after = hash(big.path());
        runs.push(t.elapsed());
        assert_ne!(after, before, "a changed file changes the hash");
    }
    println!(
        "50 MB context, one 1 MB file changed: load with the new hash median {:.1} ms",
        median(runs).as_secs_f64() * 1e3
    );
}
