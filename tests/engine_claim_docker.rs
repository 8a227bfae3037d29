//! The real-engine tier for one berth per engine (the claim container) and for a frozen
//! engine (the liveness ping), each against a private `dockerd` the test starts itself
//! (`tests/support/dockerd.rs`: its own roots, socket and network namespace; stopped and
//! removed by a guard). Fails, never skips, when `dockerd` cannot start. And the claim as the
//! CLI takes it: two `berth apply` processes on the shared engine under one claim name of the
//! test's own (`BERTH_ENGINE_CLAIM`), removed by the project's guard.

mod support {
    pub mod dockerd;
    pub mod tier;
    pub mod world;
}

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::engine::claim::{self, ClaimError, Holder};
use berth::engine::docker::DockerEngine;
use berth::engine::liveness::Liveness;
use support::dockerd::Dockerd;
use support::world::{BerthProcess, TestProject, docker, wait_until as wait_for};

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

/// A label of the claim container `name` on the shared engine (empty when there is none).
fn claim_label(name: &str, key: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
        name,
    ])
    .trim()
    .to_string()
}

#[test]
fn a_second_berth_apply_is_refused_naming_the_first_and_succeeds_once_the_first_is_gone() {
    // Never ready (nothing listens on 8080) with a long deadline: the first apply holds the
    // engine in its rollout until it is killed.
    let p = TestProject::new(
        "claimw",
        "services:\n  a:\n    image: berth-test-busybox:1\n    x-berth:\n      readiness: {http: {port: 8080, path: /health}, interval: 500ms}\n      progress_deadline: 600s\n",
    );
    let dirs = p.dir.parent().unwrap();
    let (first_data, second_data) = (dirs.join("data-a"), dirs.join("data-b"));
    std::fs::create_dir_all(&first_data).unwrap();
    std::fs::create_dir_all(&second_data).unwrap();
    let mut first = BerthProcess::spawn(
        &p,
        [
            "apply".as_ref(),
            "--timeout".as_ref(),
            "600s".as_ref(),
            "--data-dir".as_ref(),
            first_data.as_os_str(),
            p.dir.as_os_str(),
        ],
    );
    let first_pid = first.child.id().to_string();
    wait_for(
        "the first apply to claim the engine and start its candidate",
        Duration::from_secs(60),
        || claim_label(&p.claim, "berth.claim.pid") == first_pid && !p.states().is_empty(),
    );
    let before = p.containers();

    // The second, with another data dir and the same claim name: refused, naming the first.
    let second = |timeout: &str| {
        p.berth()
            .args(["apply", "--timeout", timeout, "--data-dir"])
            .arg(&second_data)
            .arg(&p.dir)
            .output()
            .unwrap()
    };
    let refused = second("30s");
    let msg = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(1), "{msg}");
    assert!(msg.contains("another berth manages this engine"), "{msg}");
    let host = Holder::current(&first_data).host;
    assert!(msg.contains(&format!("host {host}")), "{msg}");
    let first_dir = std::fs::canonicalize(&first_data).unwrap();
    assert!(
        msg.contains(&format!("data dir {}", first_dir.display())),
        "{msg}"
    );
    assert!(msg.contains(&format!("pid {first_pid}")), "{msg}");
    assert!(
        msg.contains("stop it"),
        "the refusal says what to do: {msg}"
    );
    assert!(
        String::from_utf8_lossy(&refused.stdout).trim().is_empty(),
        "a refused berth plans nothing"
    );
    assert_eq!(p.containers(), before, "a refused berth changes nothing");
    assert_eq!(claim_label(&p.claim, "berth.claim.pid"), first_pid);

    // The first dies (its claim stays behind); the second takes the claim over and converges.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert_eq!(claim_label(&p.claim, "berth.claim.pid"), first_pid);
    p.write("services:\n  a:\n    image: berth-test-busybox:1\n    x-berth: {min_ready: 0s}\n");
    let ok = second("120s");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(ok.status.code(), Some(0), "{out}");
    assert!(out.contains("Converged:"), "{out}");
    assert_eq!(p.states(), ["a-1=running"], "{out}");
    // A clean exit releases the claim.
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("name=^{}$", p.claim)]).trim(),
        "",
        "the claim is released on a clean exit"
    );
}
