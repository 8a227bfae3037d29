//! Secrets stay in (issue 14, item 9), against the real engine: a value from the host's env
//! file (`--env-dir`) interpolated into `image:` and into an environment value must not appear
//! in any output — `berth apply -vv` (plan, steps, debug logs), `berth run -vv`'s log,
//! `/api/v1/status`, `/api/v1/events`, `/metrics`, `events.jsonl`, `berth history`. The status
//! and the metrics show `[redacted]` where the image reference was, so the test proves the
//! value travelled there and was masked.

mod support {
    pub mod tier;
    pub mod world;
}

use std::process::Command;
use std::time::Duration;

use support::world::{BerthProcess, TestProject, docker, free_port, http_get, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

/// The demo image under a tag that is a secret, removed on drop.
struct SecretTag(String);

impl Drop for SecretTag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

#[test]
fn a_host_env_value_never_reaches_any_output() {
    let secret = format!("s3cr3t-tag-{}", std::process::id());
    let env_secret = format!("hunter2-{}", std::process::id());
    let p = TestProject::new(
        "redact",
        "services:\n  web:\n    image: berth-demo:${TAG}\n    environment: {API_KEY: '${API_KEY}'}\n    healthcheck: {test: [CMD, berth-demo, probe, 'http://127.0.0.1:8080/health'], interval: 1s, timeout: 1s, retries: 2}\n    x-berth: {min_ready: 1s, progress_deadline: 60s}\n",
    );
    let tag = SecretTag(format!("berth-demo:{secret}"));
    docker(&["tag", "berth-demo:1", &tag.0]);
    let root = p.dir.parent().unwrap();
    let env_dir = root.join("env");
    std::fs::create_dir_all(&env_dir).unwrap();
    std::fs::write(
        env_dir.join(format!("{}.env", p.name)),
        format!("TAG={secret}\nAPI_KEY={env_secret}\n"),
    )
    .unwrap();
    let data = root.join("data");
    let leaks = |what: &str, text: &str| {
        assert!(
            !text.contains(&secret) && !text.contains(&env_secret),
            "{what} shows a secret value:\n{text}"
        );
    };

    let out = p
        .berth()
        .args(["apply", "-vv", "--timeout", "90s", "--env-dir"])
        .arg(&env_dir)
        .arg("--data-dir")
        .arg(&data)
        .arg(root)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "apply failed:\n{stdout}\n{stderr}");
    leaks("berth apply's output", &stdout);
    leaks("berth apply's debug log", &stderr);

    let history = Command::new(BIN)
        .args(["history", "--data-dir"])
        .arg(&data)
        .arg(format!("{}/web", p.name))
        .output()
        .unwrap();
    leaks("berth history", &String::from_utf8_lossy(&history.stdout));

    let port = free_port();
    let run = BerthProcess::spawn(
        &p,
        [
            "run".to_string(),
            "-vv".into(),
            "--resync".into(),
            "2s".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--env-dir".into(),
            env_dir.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--dir".into(),
            root.display().to_string(),
        ],
    );
    wait_until("berth run serves a status", Duration::from_secs(60), || {
        http_get(port, "/api/v1/status", 2000)
            .is_some_and(|(code, body)| code == 200 && body.contains("\"web\""))
    });
    // A change that makes an event: the service is restarted by hand and healed.
    docker(&["stop", &format!("{}-web-1", p.name)]);
    wait_until(
        "the heal shows as an event",
        Duration::from_secs(60),
        || http_get(port, "/api/v1/events", 2000).is_some_and(|(_, b)| b.contains("self_heal")),
    );
    for path in ["/api/v1/status", "/api/v1/events", "/metrics", "/readyz"] {
        let (_, body) = http_get(port, path, 5000).expect(path);
        leaks(path, &body);
    }
    let (_, status) = http_get(port, "/api/v1/status", 5000).unwrap();
    assert!(
        status.contains("berth-demo:[redacted]"),
        "the image is masked in the status:\n{status}"
    );
    let (_, metrics) = http_get(port, "/metrics", 5000).unwrap();
    assert!(
        metrics.contains("berth-demo:[redacted]"),
        "the image label is masked:\n{metrics}"
    );
    let events = std::fs::read_to_string(data.join("events.jsonl")).unwrap_or_default();
    leaks("events.jsonl", &events);
    let log = run.log.lock().unwrap().join("\n");
    leaks("berth run's debug log", &log);
}
