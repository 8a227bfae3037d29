//! `berth run` against the real engine: event-driven self-heal, desired-state changes picked
//! up, one berth per data dir, clean exit on SIGTERM. Bounded waits throughout.

mod support {
    pub mod tier;
    pub mod world;
}

use std::process::Command;
use std::time::Duration;

use support::world::{BerthProcess, TestProject, docker, wait_until};

#[test]
fn the_controller_heals_follows_changes_holds_the_lock_and_stops_cleanly() {
    let p = TestProject::new("run", "services:\n  a:\n    image: berth-test-busybox:1\n");
    let data = p.dir.parent().unwrap().join("data");
    let mut running = BerthProcess::spawn(
        &p,
        [
            "run",
            "--resync",
            "2s",
            "--dir",
            p.dir.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let log = running.log.clone();
    let rejected = |log: &std::sync::Mutex<Vec<String>>| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("desired state invalid"))
            .count()
    };
    wait_until("the first deploy", Duration::from_secs(30), || {
        p.states() == ["a-1=running"]
    });

    // It holds the engine's claim (under the test's own claim name).
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"berth.claim.pid\"}}",
            &p.claim
        ])
        .trim(),
        running.child.id().to_string(),
        "berth run claims the engine"
    );
    // A second berth on the same data dir is refused and names the first.
    let second = p
        .berth()
        .args(["apply", "--data-dir"])
        .arg(&data)
        .arg(&p.dir)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(
        msg.contains(&format!("berth run (pid {})", running.child.id())),
        "{msg}"
    );

    // Removed by hand: restored (the die/destroy events trigger it; the resync is a backstop).
    docker(&["rm", "-f", &format!("{}-a-1", p.name)]);
    wait_until(
        "the removed container to come back",
        Duration::from_secs(20),
        || p.states() == ["a-1=running"],
    );

    // A change to the desired state is applied.
    p.write("services:\n  a:\n    image: berth-test-busybox:1\n    deploy: {replicas: 2}\n");
    wait_until("the second replica", Duration::from_secs(20), || {
        p.states() == ["a-1=running", "a-2=running"]
    });

    // A broken edit (a typo'd depends_on and invalid YAML) keeps the last good state: nothing is
    // torn down, and the fix is applied.
    for broken in [
        "services:\n  a:\n    image: berth-test-busybox:1\n    deploy: {replicas: 2}\n    depends_on: [nope]\n",
        "services: [this is: not: valid\n",
    ] {
        let before = rejected(&log);
        p.write(broken);
        // Two rejections: the controller has seen the broken file at least once after writing.
        wait_until(
            "the controller to reject the broken state",
            Duration::from_secs(20),
            || rejected(&log) >= before + 2,
        );
        assert_eq!(p.states(), ["a-1=running", "a-2=running"]);
    }
    p.write("services:\n  a:\n    image: berth-test-busybox:1\n");
    wait_until(
        "the fixed state (one replica)",
        Duration::from_secs(20),
        || p.states() == ["a-1=running"],
    );

    // SIGTERM: exits 0 promptly.
    let pid = running.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let mut status = None;
    wait_until("berth run to exit", Duration::from_secs(15), || {
        status = running.child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    // A clean stop releases the engine's claim.
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("name=^{}$", p.claim)]).trim(),
        "",
        "the claim is released on a clean stop"
    );
}
