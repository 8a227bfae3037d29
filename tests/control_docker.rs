//! `berth hold|retry|release` against a real `berth run` on the real engine: each wakes the
//! controller with SIGHUP (its resync is far off), a hold keeps a changed service as it runs,
//! and the release rolls the change out. Bounded waits throughout.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::world::{BerthProcess, TestProject, wait_until};

fn berth(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn history(service: &str, data: &Path) -> serde_json::Value {
    let o = berth(&["history", service, "--json"], data);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

fn outcomes(service: &str, data: &Path) -> Vec<String> {
    history(service, data)["revisions"]
        .as_array()
        .map(|revs| {
            revs.iter()
                .map(|r| r["outcome"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn hold_wakes_the_controller_keeps_the_service_and_release_rolls_out() {
    let p = TestProject::new("ctl", "services:\n  a:\n    image: berth-test-busybox:1\n");
    let data = p.dir.parent().unwrap().join("data");
    let mut running = BerthProcess::spawn(
        &p,
        [
            "-vv",
            "run",
            "--resync",
            "600s",
            "--dir",
            p.dir.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    let pid = running.child.id();
    let log = running.log.clone();
    // The position of the first line containing `what` after line `from`.
    let find = |what: &str, from: usize| {
        log.lock()
            .unwrap()
            .iter()
            .skip(from)
            .position(|l| l.contains(what))
            .map(|i| i + from)
    };
    let service = format!("{}/a", p.name);
    wait_until("r1 to be current", Duration::from_secs(60), || {
        outcomes(&service, &data) == ["succeeded"]
    });
    assert_eq!(p.states(), ["a-1=running"]);
    let container =
        support::world::docker(&["inspect", "-f", "{{.Id}}", &format!("{}-a-1", p.name)]);

    // hold: SIGHUP, and the round it triggers sees the hold.
    let o = berth(&["hold", &service], &data);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.ends_with(&format!("woke berth run (pid {pid}): it reconciles now\n")),
        "{out}"
    );
    let mut hup = 0;
    wait_until("the SIGHUP", Duration::from_secs(10), || {
        find("SIGHUP: reconciling now", 0)
            .inspect(|i| hup = *i)
            .is_some()
    });
    wait_until("the hold to be seen", Duration::from_secs(10), || {
        find("held by `berth hold`", hup).is_some()
    });

    // A change while held, and a wake-up (`berth retry`): nothing is rolled out.
    p.write("services:\n  a:\n    image: berth-test-busybox:1\n    environment: {V: '2'}\n");
    let o = berth(&["retry", &service], &data);
    assert_eq!(o.status.code(), Some(0));
    wait_until("the second SIGHUP", Duration::from_secs(10), || {
        find("SIGHUP: reconciling now", hup + 1)
            .inspect(|i| hup = *i)
            .is_some()
    });
    // The hold was logged when it appeared; notes are logged once per change, not every round.
    // What shows it still holds: rounds run after the wake-up and plan nothing for the service.
    wait_until("a round after the wake-up", Duration::from_secs(10), || {
        find("reconcile{round=", hup).is_some()
    });
    std::thread::sleep(Duration::from_secs(3));
    let planned: Vec<String> = log.lock().unwrap()[hup..]
        .iter()
        .filter(|l| l.contains("plan: ") && l.contains(&service))
        .cloned()
        .collect();
    assert!(planned.is_empty(), "held, yet planned: {planned:?}");
    assert_eq!(outcomes(&service, &data), ["succeeded"]);
    assert_eq!(
        support::world::docker(&["inspect", "-f", "{{.Id}}", &format!("{}-a-1", p.name)]),
        container
    );

    // release: the change rolls out now, long before the resync.
    let o = berth(&["release", &service], &data);
    assert_eq!(o.status.code(), Some(0));
    wait_until("r2 to be current", Duration::from_secs(60), || {
        outcomes(&service, &data) == ["superseded", "succeeded"]
    });
    wait_until("r2 alone to run", Duration::from_secs(30), || {
        p.states() == ["a-1=running"]
    });
    assert!(
        running.child.try_wait().unwrap().is_none(),
        "berth run exited"
    );
}
