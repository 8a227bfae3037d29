//! The real-engine tier for engine faults during a rollout (issue 14 item 3): the engine is
//! restarted while a candidate is in its readiness gate. An engine restart stops every
//! container; berth must start the candidate again and complete the rollout — not fail,
//! revert and quarantine a good revision. Runs against a private `dockerd` in its own network
//! namespace (`support/dockerd.rs`), never the machine's engine; prints the time to converge
//! after the engine came back.

#[path = "support/dockerd.rs"]
mod dockerd;
#[path = "support/images.rs"]
mod images;
#[path = "support/tier.rs"]
mod tier;

use std::time::{Duration, Instant};

use berth::store::{Outcome, ServiceRecord, Store};
use dockerd::PrivateDockerd;

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
    let mut d = PrivateDockerd::start("core14fault");
    d.load_from_system(images::BUSYBOX);
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
    d.restart();
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
