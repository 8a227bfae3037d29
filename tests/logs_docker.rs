//! `berth logs` against the real engine (issue 17, item 3): a project's containers' output
//! prefixed like `docker compose logs`, `--tail`, `--follow`, and the last lines of a failed
//! candidate kept with its revision — readable by `berth logs --revision` and shown in
//! `berth history` after its container is gone. `berth apply`'s readable events and plain
//! (uncoloured) output into a pipe are checked on the way.

mod support {
    pub mod tier;
    pub mod world;
}

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::world::TestProject;

const HEALTH: &str = "healthcheck: {test: [CMD, berth-demo, probe, 'http://127.0.0.1:8080/health'], interval: 1s, timeout: 1s, retries: 2}";

fn data_dir(p: &TestProject) -> PathBuf {
    p.dir.parent().unwrap().join("data")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn berth(p: &TestProject, args: &[&str]) -> Output {
    p.berth()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir(p))
        .output()
        .unwrap()
}

fn apply(p: &TestProject) -> Output {
    p.berth()
        .args(["apply", "--timeout", "120s", "--data-dir"])
        .arg(data_dir(p))
        .arg(&p.dir)
        .output()
        .unwrap()
}

#[test]
fn logs_prefix_each_container_and_a_failed_candidate_keeps_its_last_lines() {
    let p = TestProject::new(
        "h17alogs",
        &format!(
            "services:\n  hello:\n    image: berth-test-busybox:1\n    command: [sh, -c, 'echo hello-from-logs; echo second-line; sleep 3600']\n  web:\n    image: berth-demo:${{TAG:-1}}\n    {HEALTH}\n    x-berth: {{min_ready: 1s, progress_deadline: 15s}}\n"
        ),
    );
    let out = apply(&p);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains('\x1b'), "colour codes into a pipe:\n{log}");

    // Every container of the project, prefixed by its name, padded like compose.
    let hello = format!("{}-hello-1", p.name);
    let web = format!("{}-web-1", p.name);
    let out = berth(&p, &["logs", &p.name]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!(
            "{hello} | hello-from-logs\n{hello} | second-line\n"
        )),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .all(|l| l.starts_with(&format!("{hello} | ")) || l.starts_with(&format!("{web}   | "))),
        "{shown}"
    );

    // One service, its last line.
    let out = berth(&p, &["logs", &format!("{}/hello", p.name), "--tail", "1"]);
    assert_eq!(text(&out), format!("{hello} | second-line\n"));

    // A service with no container says so.
    let out = berth(&p, &["logs", &format!("{}/nope", p.name)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no container of"), "{}", text(&out));

    // --follow prints what is there and keeps the stream open.
    let mut child = p
        .berth()
        .args(["logs", "--follow", &format!("{}/hello", p.name)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(20)) {
        seen.push(l);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            format!("{hello} | hello-from-logs"),
            format!("{hello} | second-line")
        ]
    );
    assert!(child.try_wait().unwrap().is_none(), "--follow ended early");
    let _ = child.kill();
    let _ = child.wait();

    // A bad version: the rollout fails, the failure is a readable line, and the candidate's
    // last lines stay with r2 after its container is gone.
    std::fs::write(p.dir.join(".env"), "TAG=bad\n").unwrap();
    let out = apply(&p);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("{}/web rollout_failed: r2", p.name)),
        "{log}"
    );
    assert!(
        log.contains("rolling out r2") && log.contains("image berth-demo:1 → berth-demo:bad"),
        "{log}"
    );
    assert!(!log.contains("ERROR"), "failures as log records:\n{log}");
    assert!(
        !p.containers().iter().any(|(n, _, _)| n.contains("-web-1-")),
        "the candidate is still there: {:?}",
        p.containers()
    );
    let out = berth(
        &p,
        &["logs", &format!("{}/web", p.name), "--revision", "r2"],
    );
    let kept = text(&out);
    assert_eq!(out.status.code(), Some(0), "{kept}");
    assert!(
        !kept.is_empty() && kept.lines().all(|l| l.starts_with("r2 | ")),
        "{kept}"
    );
    assert!(kept.contains("/health"), "{kept}");
    let out = berth(&p, &["history", &format!("{}/web", p.name)]);
    let history = text(&out);
    assert!(history.contains("r2 last log lines"), "{history}");
    assert!(
        history.contains("r2 (from r1): image berth-demo:1 → berth-demo:bad"),
        "{history}"
    );
    // r1 never failed: nothing kept.
    let out = berth(&p, &["logs", &format!("{}/web", p.name), "--revision", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
