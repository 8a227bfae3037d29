//! `berth run` finding image updates on its own (issue 19 part 2, automatic checks): a real
//! registry over TLS with htpasswd auth (tests/support/tls_registry.rs), a newer tag pushed
//! while berth runs, and then — with no manual command — berth rewrites the Compose file
//! (`--dir`) or commits and pushes to the bare repository it follows (`--git`), the rollout
//! follows, and status, events and metrics say so; a service whose window is closed shows the
//! same update as skipped, with its reason, and keeps its file line. The time from the push
//! to the new version serving is printed (for the notes; no timed assertion).
//!
//! Guards: TestProject removes the projects, TlsRegistry the registry, its certs.d entry and
//! its local tags, BerthProcess kills berth. Every wait is bounded.

mod support {
    pub mod tier;
    pub mod tls_registry;
    pub mod world;
}

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::tls_registry::{TlsRegistry, port_in_range};
use support::world::{BerthProcess, TestProject, free_port, http_get, version, wait_until};

/// One web service on `port`, ready when `/health` answers, with an update policy.
fn web(name: &str, image: &str, port: u16, update: &str) -> String {
    format!(
        "  {name}:\n    image: {image}   # kept by berth\n    ports: ['127.0.0.1:{port}:8080']\n    x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      min_ready: 1s\n      progress_deadline: 30s\n      update: {update}\n"
    )
}

/// A window of one hour that opens two hours from now (UTC): closed now.
fn closed_window() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = (secs / 60 + 120) % 1440;
    let end = (minute + 60) % 1440;
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        minute / 60,
        minute % 60,
        end / 60,
        end % 60
    )
}

fn json(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = http_get(port, path, 5_000).expect("berth answers");
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The `update` object of `service` in `/api/v1/status` (null before its first check).
fn update_status(port: u16, service: &str) -> serde_json::Value {
    let status = json(port, "/api/v1/status");
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["service"] == service)
        .map(|s| s["update"].clone())
        .unwrap_or(serde_json::Value::Null)
}

fn event_kinds(port: u16) -> Vec<(String, String, String)> {
    json(port, "/api/v1/events?limit=1000")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap_or_default().to_string(),
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn metrics(port: u16) -> String {
    http_get(port, "/metrics", 5_000).expect("metrics").1
}

#[test]
fn berth_run_rewrites_the_file_on_a_pushed_tag_and_rolls_it_out() {
    let r = TlsRegistry::start(21);
    r.push("berth-demo:1", "h19r/app:1.0.0");
    let (port, held_port) = (port_in_range(22), port_in_range(23));
    let compose = format!(
        "# the shop\nservices:\n{}{}",
        web(
            "web",
            &r.reference("h19r/app:1.0.0"),
            port,
            "{policy: semver, range: \"^1\", interval: 10s}"
        ),
        web(
            "held",
            &r.reference("h19r/app:1.0.0"),
            held_port,
            &format!(
                "{{policy: semver, range: \"^1\", interval: 10s, window: \"{}\"}}",
                closed_window()
            )
        ),
    );
    let p = TestProject::new("h19rauto", &compose);
    let listen = free_port();
    let data = p.dir.parent().unwrap().join("data");
    let berth = BerthProcess::spawn_env(
        &p,
        [
            "run",
            "--dir",
            p.dir.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("DOCKER_CONFIG", r.config_dir.as_os_str())],
    );
    wait_until("1.0.0 serving", Duration::from_secs(120), || {
        version(port) == "1" && version(held_port) == "1"
    });
    // The first checks ran on their own: nothing newer than 1.0.0 yet.
    wait_until("the first check", Duration::from_secs(30), || {
        update_status(listen, "web")["state"] == "up_to_date"
            && update_status(listen, "held")["state"] == "up_to_date"
    });

    r.push("berth-demo:2", "h19r/app:1.1.0");
    let pushed = Instant::now();
    let new_image = format!("image: {}", r.reference("h19r/app:1.1.0"));
    wait_until("the file rewritten", Duration::from_secs(60), || {
        std::fs::read_to_string(p.dir.join("compose.yaml")).is_ok_and(|t| t.contains(&new_image))
    });
    let written = pushed.elapsed();
    wait_until("1.1.0 serving", Duration::from_secs(120), || {
        version(port) == "2"
    });
    let took = pushed.elapsed();
    eprintln!(
        "push to serving (dir source, interval 10s): {took:?} (file written after {written:?})"
    );

    // The file was rewritten where the image is written, comments kept; the held service's
    // line was not.
    let text = std::fs::read_to_string(p.dir.join("compose.yaml")).unwrap();
    assert!(text.starts_with("# the shop\n"), "{text}");
    assert!(
        text.contains(&format!(
            "image: {}   # kept by berth\n    ports: ['127.0.0.1:{port}:",
            r.reference("h19r/app:1.1.0")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "image: {}   # kept by berth\n    ports: ['127.0.0.1:{held_port}:",
            r.reference("h19r/app:1.0.0")
        )),
        "{text}"
    );
    assert_eq!(version(held_port), "1");

    // Once the file has it, the update is no longer pending (checked again at once).
    wait_until("web up to date again", Duration::from_secs(30), || {
        update_status(listen, "web")["state"] == "up_to_date"
    });
    let held = update_status(listen, "held");
    assert_eq!(held["state"], "skipped", "{held}");
    assert_eq!(held["reason"], "outside_window", "{held}");
    assert_eq!(held["to"], r.reference("h19r/app:1.1.0"), "{held}");

    let events = event_kinds(listen);
    for want in [
        ("web", "update_found", "semver"),
        ("web", "update_applied", "semver"),
        ("held", "update_skipped", "outside_window"),
    ] {
        let n = events
            .iter()
            .filter(|(s, k, r)| (s.as_str(), k.as_str(), r.as_str()) == want)
            .count();
        assert_eq!(n, 1, "{want:?} once in {events:?}");
    }
    assert!(
        events
            .iter()
            .any(|(s, k, _)| s == "web" && k == "rollout_succeeded"),
        "{events:?}"
    );

    let m = metrics(listen);
    for line in [
        format!(
            "berth_updates_pending{{project=\"{}\",service=\"web\"}} 0",
            p.name
        ),
        format!(
            "berth_updates_pending{{project=\"{}\",service=\"held\"}} 1",
            p.name
        ),
    ] {
        assert!(m.contains(&line), "{line} in\n{m}");
    }
    let applied: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("berth_update_checks_total{result=\"applied\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(applied >= 1, "{m}");
    assert!(
        m.contains("berth_update_checks_total{result=\"skipped\"}"),
        "{m}"
    );

    // The table says it too; no credential anywhere.
    let o = p
        .berth()
        .args(["status", "--server", &format!("http://127.0.0.1:{listen}")])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{table}");
    assert!(
        table.contains(&format!(
            "{}/held: update skipped {} -> {}: waits: outside its window",
            p.name,
            r.reference("h19r/app:1.0.0"),
            r.reference("h19r/app:1.1.0")
        )),
        "{table}"
    );
    let all = format!(
        "{table}{}{}{m}{}",
        json(listen, "/api/v1/status"),
        json(listen, "/api/v1/events?limit=1000"),
        berth.log.lock().unwrap().join("\n")
    );
    assert!(!all.contains(&r.password), "the registry password leaked");
}

#[test]
fn berth_run_commits_an_update_to_the_git_source_and_rolls_it_out() {
    let r = TlsRegistry::start(24);
    r.push("berth-demo:1", "h19r/app:1.0.0");
    let port = port_in_range(25);
    let p = TestProject::new("h19rgit", "services: {}\n");
    let work = r.dir().join("work");
    let bare = r.dir().join("state.git");
    let git = |dir: &Path, args: &[&str]| {
        let o = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    std::fs::create_dir_all(work.join(&p.name)).unwrap();
    git(
        r.dir(),
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            bare.to_str().unwrap(),
        ],
    );
    git(&work, &["init", "--quiet", "-b", "main"]);
    std::fs::write(
        work.join(&p.name).join("compose.yaml"),
        format!(
            "# the shop\nservices:\n{}",
            web(
                "web",
                &r.reference("h19r/app:1.0.0"),
                port,
                "{policy: semver, range: \"~1.0\", interval: 10s}"
            )
        ),
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "first"]);
    git(&work, &["push", "--quiet", bare.to_str().unwrap(), "main"]);

    let listen = free_port();
    let data = p.dir.parent().unwrap().join("data");
    let url = format!("file://{}", bare.display());
    let _berth = BerthProcess::spawn_env(
        &p,
        [
            "run",
            "--git",
            &url,
            "--ref",
            "main",
            "--interval",
            "300s",
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("DOCKER_CONFIG", r.config_dir.as_os_str())],
    );
    wait_until("1.0.0 serving", Duration::from_secs(120), || {
        version(port) == "1"
    });
    wait_until("the first check", Duration::from_secs(30), || {
        update_status(listen, "web")["state"] == "up_to_date"
    });

    let first = git(&bare, &["rev-parse", "main"]);
    r.push("berth-demo:2", "h19r/app:1.0.1");
    let pushed = Instant::now();
    wait_until("berth's commit pushed", Duration::from_secs(50), || {
        git(&bare, &["rev-parse", "main"]) != first
    });
    let committed = pushed.elapsed();
    // The fetch interval is 300 s: serving well within it shows that berth fetched its own
    // commit at once.
    wait_until("1.0.1 serving", Duration::from_secs(55), || {
        version(port) == "2"
    });
    let took = pushed.elapsed();
    eprintln!(
        "push to serving (git source, interval 10s): {took:?} (commit pushed after {committed:?})"
    );

    let log = git(&bare, &["log", "-1", "--format=%an|%s", "main"]);
    assert_eq!(
        log,
        format!("berth|berth: update {}/web 1.0.0 -> 1.0.1", p.name)
    );
    let shown = git(&bare, &["show", &format!("main:{}/compose.yaml", p.name)]);
    assert!(shown.starts_with("# the shop\n"), "{shown}");
    let head = git(&bare, &["rev-parse", "main"]);
    wait_until("web up to date again", Duration::from_secs(30), || {
        update_status(listen, "web")["state"] == "up_to_date"
    });
    let status = json(listen, "/api/v1/status");
    let revision = status["source"]["revision"].as_str().unwrap_or_default();
    assert!(
        !revision.is_empty() && head.starts_with(revision),
        "{head} vs {status}"
    );
    let events = event_kinds(listen);
    assert!(
        events
            .iter()
            .any(|(s, k, _)| s == "web" && k == "update_applied"),
        "{events:?}"
    );
    // One commit of berth's, not one per check.
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]), "2");
}
