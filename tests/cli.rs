//! `berth validate` as a user runs it: exit codes, summary, diagnostics, JSON, and secrets
//! that never reach the output.

use std::path::Path;
use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("SECRET")
        .output()
        .expect("run berth")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn quickstart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/quickstart")
        .display()
        .to_string()
}

#[test]
fn validate_prints_a_summary_and_exits_0() {
    let o = berth(&["validate", &quickstart()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("quickstart ("), "{out}");
    assert!(
        out.contains("4 services (1 job), 2 networks, 1 volume, 0 warnings"),
        "{out}"
    );
}

#[test]
fn invalid_state_prints_positioned_diagnostics_and_exits_1() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("compose.yaml"),
        "services:\n  web:\n    image: app:1\n    depends_on: [dbb]\n  db:\n    image: pg:16\n",
    )
    .unwrap();
    let o = berth(&["validate", &t.path().display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = text(&o.stderr);
    assert!(
        err.starts_with("compose.yaml:4:18: error: depends_on names \"dbb\""),
        "{err}"
    );
    assert!(
        err.trim_end()
            .ends_with("invalid desired state (1 error, 0 warnings)"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(berth(&["validate"]).status.code(), Some(2));
    assert_eq!(berth(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        berth(&["validate", ".", "--format", "xml"]).status.code(),
        Some(2)
    );
}

#[test]
fn json_report_lists_services_and_diagnostics() {
    let o = berth(&["validate", &quickstart(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    let services = v["projects"][0]["services"].as_array().unwrap();
    assert_eq!(services.len(), 4);
    assert!(
        services
            .iter()
            .all(|s| s["spec_hash"].as_str().unwrap().len() == 64)
    );
    assert!(v["diagnostics"].as_array().unwrap().is_empty());
}

#[test]
fn secrets_from_env_files_never_appear_in_any_output() {
    let t = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(
        d.join(".env"),
        "DB_PASSWORD=hunter2-dotenv\nPORT_SPEC=hunter2-port\n",
    )
    .unwrap();
    std::fs::write(d.join("app.env"), "API_KEY=hunter2-envfile\n").unwrap();
    std::fs::write(
        secrets.path().join("shop.env"),
        "HOST_TOKEN=hunter2-envdir\n",
    )
    .unwrap();
    std::fs::write(
        d.join("compose.yaml"),
        "name: shop\nservices:\n  web:\n    image: app:1\n    env_file: app.env\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n      TOKEN: ${HOST_TOKEN}\n    ports: ['${PORT_SPEC}']\n    user: ${HOST_TOKEN}:x:y:z\n",
    )
    .unwrap();
    let dir = d.display().to_string();
    let env_dir = secrets.path().display().to_string();
    for format in ["text", "json"] {
        let o = berth(&["validate", &dir, "--env-dir", &env_dir, "--format", format]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "the bad port must make it invalid"
        );
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            all.contains("invalid port \\\"${PORT_SPEC}\\\"")
                || all.contains("invalid port \"${PORT_SPEC}\""),
            "{all}"
        );
        assert!(!all.contains("hunter2"), "a secret leaked:\n{all}");
    }
}

#[test]
fn a_compose_file_stands_for_its_directory_and_a_missing_directory_fails() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  web:\n    image: app:1\n",
    )
    .unwrap();
    let file = tmp.path().join("compose.yaml");
    let o = berth(&["validate", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(": 1 service,"),
        "{}",
        text(&o.stdout)
    );

    std::fs::write(tmp.path().join("prod.yaml"), "services: {}\n").unwrap();
    let other = tmp.path().join("prod.yaml");
    let o = berth(&["validate", other.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("prod.yaml is a file, not a directory"),
        "{}",
        text(&o.stderr)
    );

    let nope = tmp.path().join("nope");
    for args in [
        vec!["status", nope.to_str().unwrap()],
        vec!["validate", nope.to_str().unwrap()],
        vec![
            "run",
            "--dir",
            nope.to_str().unwrap(),
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "--listen",
            "off",
        ],
    ] {
        let o = berth(&args);
        assert!(!o.status.success(), "{args:?} exited 0");
        let err = text(&o.stderr);
        assert!(
            err.contains("nope: cannot open the desired-state directory"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn prune_refuses_a_project_still_desired_before_any_engine_or_lock() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("shop");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web: {image: 'app:1'}\n",
    )
    .unwrap();
    let data = t.path().join("data");
    // No engine answers there: the refusal must come before berth looks for one.
    let o = berth(&[
        "prune",
        "shop",
        &dir.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "refusing to prune shop: it is still in the desired state, so the next apply or run deploys it again; remove it from the desired state first (or --force)"
        ),
        "{err}"
    );
    assert!(!data.exists(), "nothing written: no lock, no records");
}

#[test]
fn diff_without_records_says_each_service_is_new_and_exit_code_2() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("shop");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web: {image: 'app:1'}\n  db: {image: 'db:1'}\n",
    )
    .unwrap();
    let data = t.path().join("data");
    let (dir, data) = (dir.display().to_string(), data.display().to_string());
    let o = berth(&["diff", &dir, "--data-dir", &data, "--exit-code"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "shop/db  not deployed yet: the next apply deploys it\nshop/web  not deployed yet: the next apply deploys it\n"
    );
    let o = berth(&["diff", &dir, "nope", "--data-dir", &data]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "berth: no project nope in the desired state (it has: shop)\n"
    );
}
