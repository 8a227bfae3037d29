//! The real-engine tier for engine faults (issue 14 items 3 and 15), each against a private
//! `dockerd` in its own network namespace (`support/dockerd.rs`), never the machine's engine:
//! - the engine is restarted while a candidate is in its readiness gate. An engine restart
//!   stops every container; berth must start the candidate again and complete the rollout —
//!   not fail, revert and quarantine a good revision. Prints the time to converge after the
//!   engine came back.
//! - the running revision's image is pruned (`docker image prune -a` after its containers and
//!   pin holder were removed) and its tag names another image: `berth apply` says the image
//!   was lost, resolves the tag again and converges through the gate.

#[path = "support/dockerd.rs"]
mod dockerd;
#[path = "support/images.rs"]
mod images;
#[path = "support/tier.rs"]
mod tier;

use std::time::{Duration, Instant};

use berth::store::{Outcome, ServiceRecord, Store};
use dockerd::Dockerd;

/// berth run, killed on drop.
struct Berth(std::process::Child);

impl Drop for Berth {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn compose(name: &str, version: u32) -> String {
    format!(
        "name: {name}\n\
         services:\n  \
           web:\n    \
             image: {image}\n    \
             network_mode: none\n    \
             stop_grace_period: 2s\n    \
             environment:\n      \
               VERSION: '{version}'\n    \
             x-berth:\n      \
               min_ready: 15s\n      \
               progress_deadline: 60s\n",
        image = images::BUSYBOX
    )
}

/// Polls `f` every 200 ms until it holds; panics after `limit`.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

fn record(data: &std::path::Path, project: &str) -> ServiceRecord {
    // The store is written atomically; a read between writes sees the old or the new file.
    Store::open(data)
        .and_then(|s| s.load(project, "web"))
        .unwrap_or_default()
}

fn stable(rec: &ServiceRecord, n: u64) -> bool {
    rec.current().is_some_and(|c| c.number == n && c.stable) && rec.active.is_none()
}

#[test]
fn an_engine_restart_during_the_gate_restarts_the_candidate_and_the_rollout_completes() {
    tier::require_tool("dockerd", "docker.io");
    tier::require_tool("unshare", "util-linux");
    tier::require_engine();
    images::busybox();
    let mut d = Dockerd::start().expect("a private dockerd");
    d.load_image(images::BUSYBOX);
    let name = format!("core14fault{}", std::process::id());
    let tmp = tempfile::Builder::new()
        .prefix("core14fault")
        .tempdir()
        .unwrap();
    let (dir, data) = (tmp.path().join(&name), tmp.path().join("data"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), compose(&name, 1)).unwrap();
    let log = std::fs::File::create(tmp.path().join("berth.log")).unwrap();
    let _berth = Berth(
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["run", "--resync", "2s", "--docker-host", &d.host(), "--dir"])
            .arg(&dir)
            .arg("--data-dir")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth"),
    );
    let berth_log = || std::fs::read_to_string(tmp.path().join("berth.log")).unwrap_or_default();
    wait_until("r1 stable", Duration::from_secs(90), || {
        stable(&record(&data, &name), 1)
    });

    // r2: its candidate starts beside r1 and holds min_ready (15 s).
    std::fs::write(dir.join("compose.yaml"), compose(&name, 2)).unwrap();
    let candidate = || {
        d.docker(&["ps", "--format", "{{.Names}}"])
            .lines()
            .any(|l| l.starts_with(&format!("{name}-web-1-")))
    };
    wait_until("the r2 candidate runs", Duration::from_secs(60), candidate);
    std::thread::sleep(Duration::from_secs(3));
    let rec = record(&data, &name);
    assert_eq!(rec.active.as_ref().map(|a| a.revision), Some(2), "{rec:?}");

    // The engine restarts: it stops every container on the way down.
    let down = d.stop();
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.restart(), "the private engine came back");
    let back = Instant::now();
    let took = wait_until(
        "r2 stable after the engine restart",
        Duration::from_secs(120),
        || stable(&record(&data, &name), 2),
    );
    let rec = record(&data, &name);
    assert!(
        rec.quarantined.is_empty(),
        "{:?}\n{}",
        rec.quarantined,
        berth_log()
    );
    assert!(
        rec.revisions
            .iter()
            .all(|r| !matches!(r.outcome, Outcome::Failed | Outcome::Reverted)),
        "{:?}",
        rec.revisions
    );
    let ps = d.docker(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(ps, format!("{name}-web-1"), "{}", berth_log());
    let env = d.docker(&[
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        &format!("{name}-web-1"),
    ]);
    assert!(env.contains("VERSION=2"), "{env}");
    let log = berth_log();
    assert!(
        log.contains("stopped_unwatched")
            || log.contains("was stopped while berth was not watching"),
        "{log}"
    );
    eprintln!(
        "engine stop took {down:?}; r2 stable {took:?} after the engine answered again \
         (min_ready 15 s held again from the candidate's new start), {:?} after the stop began",
        back.elapsed() + down + Duration::from_secs(2)
    );
}

/// `berth apply` against the private engine: (exit code, stdout + stderr).
fn apply(d: &Dockerd, dir: &std::path::Path, data: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "apply",
            "--timeout",
            "60s",
            "--docker-host",
            &d.host(),
            "--data-dir",
        ])
        .arg(data)
        .arg(dir)
        .output()
        .expect("run berth apply");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Tags a new image (its own ID: busybox with `ENV GEN=<generation>`) as `reference`.
fn commit_image(d: &Dockerd, reference: &str, generation: u32) -> String {
    d.docker(&["create", "--name", "core14seed", images::BUSYBOX]);
    d.docker(&[
        "commit",
        "--change",
        &format!("ENV GEN={generation}"),
        "core14seed",
        reference,
    ]);
    d.docker(&["rm", "core14seed"]);
    d.docker(&["image", "inspect", "--format", "{{.Id}}", reference])
}

#[test]
fn a_pruned_image_of_the_running_revision_is_resolved_again_and_converges() {
    tier::require_tool("dockerd", "docker.io");
    tier::require_tool("unshare", "util-linux");
    tier::require_engine();
    images::busybox();
    let d = Dockerd::start().expect("a private dockerd");
    d.load_image(images::BUSYBOX);
    let reference = "core14app:1";
    let first = commit_image(&d, reference, 1);
    let name = format!("core14img{}", std::process::id());
    let tmp = tempfile::Builder::new()
        .prefix("core14img")
        .tempdir()
        .unwrap();
    let (dir, data) = (tmp.path().join(&name), tmp.path().join("data"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "name: {name}\nservices:\n  web:\n    image: {reference}\n    network_mode: none\n    \
             command: [/bin/busybox, sleep, '3600']\n    stop_grace_period: 1s\n    \
             x-berth: {{min_ready: 1s}}\n"
        ),
    )
    .unwrap();
    let (code, out) = apply(&d, &dir, &data);
    assert_eq!(code, 0, "{out}");
    assert_eq!(record(&data, &name).current().unwrap().image_id, first);

    // A clean-up: every container (the replica, the pin holder), then `image prune -a`; the
    // tag then names another image.
    let all = d.docker(&["ps", "-aq"]);
    for id in all.lines() {
        d.docker(&["rm", "-f", id]);
    }
    d.docker(&["image", "prune", "-a", "-f"]);
    assert!(
        !d.docker(&["images", "-q", "--no-trunc"]).contains(&first),
        "the recorded image is gone"
    );
    d.load_image(images::BUSYBOX);
    let second = commit_image(&d, reference, 2);
    assert_ne!(first, second);

    let (code, out) = apply(&d, &dir, &data);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("is gone from the engine"), "{out}");
    assert!(!out.contains("No such image"), "{out}");
    let rec = record(&data, &name);
    let cur = rec.current().unwrap();
    assert_eq!(
        (cur.number, cur.image_id.as_str(), cur.stable),
        (2, second.as_str(), true)
    );
    let image = d.docker(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.Image}}",
        &format!("{name}-web-1"),
    ]);
    assert_eq!(image, format!("running {second}"));
}
