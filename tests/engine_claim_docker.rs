//! The real-engine tier for one berth per engine (the claim container) and for a frozen
//! engine (the liveness ping), each against a private `dockerd` the test starts itself
//! (`tests/support/dockerd.rs`: its own roots, socket and network namespace; stopped and
//! removed by a guard). Fails, never skips, when `dockerd` cannot start.

mod support {
    pub mod dockerd;
}

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::engine::claim::{self, ClaimError, Holder};
use berth::engine::docker::DockerEngine;
use berth::engine::liveness::Liveness;
use support::dockerd::Dockerd;

/// An engine client for the private dockerd (which answers once `Dockerd::start` returns).
fn engine_of(d: &Dockerd) -> DockerEngine {
    DockerEngine::connect(Some(&d.host())).unwrap()
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_engine_is_not_answering_within_seconds_and_answers_again_after() {
    let d = Dockerd::start().expect("a private dockerd");
    let engine = engine_of(&d);
    let live = Arc::new(Liveness::watch_docker(engine.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(live.not_answering(), None, "it answers");

    d.signal("-STOP");
    let took = wait_until("the frozen engine shows", Duration::from_secs(15), || {
        live.not_answering().is_some()
    })
    .await;
    let why = live.not_answering().unwrap();
    assert!(why.contains("engine not answering"), "{why}");
    eprintln!("frozen engine reported as not answering after {took:?}: {why}");

    d.signal("-CONT");
    let back = wait_until("the engine answers again", Duration::from_secs(15), || {
        live.not_answering().is_none()
    })
    .await;
    eprintln!("answering again {back:?} after SIGCONT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_berth_with_another_data_dir_is_refused_and_a_dead_holder_is_taken_over() {
    let d = Dockerd::start().expect("a private dockerd");
    let engine = engine_of(&d);
    let dirs = tempfile::Builder::new()
        .prefix("edge-claim")
        .tempdir()
        .unwrap();
    let (a, b) = (dirs.path().join("a"), dirs.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();

    let first = claim::claim_engine(&engine, &a).await.unwrap();
    assert_eq!(first.holder.pid, std::process::id());
    // A second berth on the same engine with another data dir: refused, naming the holder.
    let err = claim::claim_engine(&engine, &b).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ClaimError::Held { .. }), "{err:?}");
    let host = Holder::current(&a).host;
    assert!(msg.contains(&format!("host {host}")), "{msg}");
    assert!(
        msg.contains(&std::fs::canonicalize(&a).unwrap().display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    // The same data dir again (berth restarted after a crash): renewed.
    let again = claim::claim_engine(&engine, &a).await.unwrap();
    again.release(&engine).await.unwrap();

    // A holder that died: its claim is taken over.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let mut dead = Holder::current(&a);
    dead.pid = dead_pid;
    claim::claim_as(&engine, claim::CLAIM_NAME, &dead, |_| true)
        .await
        .unwrap();
    let taken = claim::claim_engine(&engine, &b).await.unwrap();
    assert_eq!(taken.holder.data_dir, std::fs::canonicalize(&b).unwrap());
    taken.release(&engine).await.unwrap();

    // A holder on another host: never guessed dead; the refusal says how to release it.
    let mut remote = Holder::current(&a);
    remote.host = "edge-other-host".into();
    claim::claim_as(&engine, claim::CLAIM_NAME, &remote, |_| true)
        .await
        .unwrap();
    let msg = claim::claim_engine(&engine, &b)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("host edge-other-host"), "{msg}");
    assert!(msg.contains("docker rm berth-engine-claim"), "{msg}");
}
