//! The web dashboard in a real browser: a real `berth run` on the real engine serves `/`, and
//! Debian's `chromium`, headless, loads it, runs its script against the JSON APIs and dumps
//! the DOM: the page shows the test's service with its phase and ready count, the desired
//! state as valid, the rollout in the timeline and the events. The answers carry the strict
//! Content-Security-Policy. Own project, data dir and port (41400-41499), bounded waits.

mod support {
    pub mod tier;
    pub mod world;
}

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::world::{BerthProcess, TestProject, http_get};

/// A free port in this test's range.
fn port() -> u16 {
    (41400..41500)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 41400-41499")
}

/// The DOM after the page's script ran (chromium's virtual time lets the polls finish).
fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    support::tier::require_tool("chromium", "chromium");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--virtual-time-budget=8000",
            "--timeout=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run chromium");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_dashboard_renders_the_real_state_in_a_browser() {
    let p = TestProject::new(
        "dash",
        "services:\n  web:\n    image: berth-test-busybox:1\n    command: [sleep, '3600']\n    deploy: {replicas: 2}\n",
    );
    let data = p.dir.parent().unwrap().join("data");
    let port = port();
    let berth = BerthProcess::spawn(
        &p,
        [
            "run".to_string(),
            "--dir".into(),
            p.dir.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ],
    );
    // The service is up and ready before the browser looks.
    let limit = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = http_get(port, "/api/v1/status", 2000)
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .is_some_and(|s| {
                s["services"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|x| x["service"] == "web" && x["ready"] == 2 && x["phase"] == "Idle")
                })
            });
        if ready {
            break;
        }
        assert!(
            Instant::now() < limit,
            "web not ready within 90 s; berth's log:\n{}",
            berth.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The page's own answer: HTML with the strict policy.
    let raw = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf.to_ascii_lowercase()
    };
    assert!(raw.starts_with("http/1.1 200"), "{raw}");
    assert!(
        raw.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{raw}"
    );

    let profile = tempfile::tempdir().unwrap();
    let dom = dump_dom(&format!("http://127.0.0.1:{port}/"), profile.path());
    let service = format!("{}/web", p.name);
    assert!(dom.contains("data-polled="), "the script ran:\n{dom}");
    assert!(
        dom.contains(&format!(
            "<tr data-service=\"{service}\" data-phase=\"Idle\">"
        )),
        "the service row with its phase:\n{dom}"
    );
    assert!(dom.contains("<td>2/2</td>"), "ready count:\n{dom}");
    assert!(
        dom.contains("— valid ("),
        "the desired state is valid:\n{dom}"
    );
    assert!(
        dom.contains(&format!("<div class=\"lane\" data-service=\"{service}\">")),
        "the rollout in the timeline:\n{dom}"
    );
    assert!(
        dom.contains("r1 rollout succeeded"),
        "timeline step:\n{dom}"
    );
    assert!(
        dom.contains("data-kind=\"rollout_succeeded\""),
        "the event:\n{dom}"
    );
    assert!(dom.contains(">live<"), "the live marker:\n{dom}");
    drop(berth);
}
