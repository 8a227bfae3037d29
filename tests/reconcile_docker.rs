//! berth plan/apply against the real Docker engine: each test has its own project, a guard
//! that removes what it created, and bounded waits. Images are built locally
//! (scripts/build-images); traffic goes to 127.0.0.1 only.

mod support {
    pub mod tier;
    pub mod world;
}

use std::process::{Command, Output};

use support::world::{TestProject, docker, free_port, http_get};

fn berth(p: &TestProject, args: &[&str]) -> Output {
    let data = p.dir.parent().unwrap().join("data");
    let mut cmd = p.berth();
    cmd.args(args);
    cmd.arg("--data-dir").arg(&data);
    if args[0] == "apply" {
        cmd.args(["--timeout", "90s"]);
    }
    cmd.arg(&p.dir);
    cmd.output().expect("run berth")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn apply_ok(p: &TestProject) -> String {
    let o = berth(p, &["apply"]);
    assert!(o.status.success(), "apply failed:\n{}", text(&o));
    text(&o)
}

const STACK: &str = r#"
services:
  db:
    image: berth-demo:1
    environment: {APP_MODE: db, APP_DATA_DIR: /data}
    volumes: ['data:/data']
    healthcheck: {test: [CMD, berth-demo, probe, 'http://127.0.0.1:8080/health'], interval: 1s, retries: 30}
  migrate:
    image: berth-demo:1
    command: [berth-demo, migrate]
    restart: 'no'
    environment: {MIGRATE_EXIT: '${MIGRATE_EXIT:-0}'}
    depends_on: {db: {condition: service_healthy}}
  web:
    image: berth-demo:${WEB_TAG:-1}
    ports: ['127.0.0.1:PORT:8080']
    depends_on: {migrate: {condition: service_completed_successfully}}
volumes:
  data: {}
"#;

#[test]
fn cold_deploy_orders_jobs_and_a_second_apply_does_nothing() {
    let port = free_port();
    let p = TestProject::new("cold", &STACK.replace("PORT", &port.to_string()));
    let out = apply_ok(&p);
    assert!(out.contains("Converged"), "{out}");
    assert_eq!(
        p.states(),
        ["db-1=running", "migrate-1=exited", "web-1=running"]
    );
    assert!(
        p.containers()[1].2.starts_with("Exited (0)"),
        "{:?}",
        p.containers()
    );
    let (status, body) = http_get(port, "/health", 10_000).expect("web answers");
    assert_eq!((status, body.trim()), (200, "ok 1"));
    // Converged: plan has nothing, apply does nothing.
    let plan = berth(&p, &["plan", "--exit-code"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    // Other tests' projects may show up as orphans; this project has nothing to do.
    assert!(
        !text(&plan)
            .lines()
            .any(|l| l.starts_with(&p.name) && !l.contains("orphaned")),
        "{}",
        text(&plan)
    );
    assert!(apply_ok(&p).contains("Converged: 0 step(s)"));
}

#[test]
fn an_image_change_recreates_and_compose_lists_the_containers() {
    let port = free_port();
    let p = TestProject::new(
        "img",
        &format!(
            "services:\n  web:\n    image: berth-demo:1\n    ports: ['127.0.0.1:{port}:8080']\n"
        ),
    );
    apply_ok(&p);
    assert_eq!(http_get(port, "/health", 10_000).unwrap().1.trim(), "ok 1");
    p.write(&format!(
        "services:\n  web:\n    image: berth-demo:2\n    ports: ['127.0.0.1:{port}:8080']\n"
    ));
    let plan = berth(&p, &["plan", "--exit-code"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains("stop-first (publishes host port"),
        "{}",
        text(&plan)
    );
    apply_ok(&p);
    assert_eq!(p.states(), ["web-1=running"]);
    assert_eq!(http_get(port, "/health", 10_000).unwrap().1.trim(), "ok 2");
    let image = docker(&["inspect", "-f", "{{.Image}}", &format!("{}-web-1", p.name)]);
    let want = docker(&["image", "inspect", "-f", "{{.Id}}", "berth-demo:2"]);
    assert_eq!(
        image.trim(),
        want.trim(),
        "created from the image ID of the tag"
    );
    // docker-compose reads berth's labels.
    let ps = Command::new("docker-compose")
        .args(["-p", &p.name, "ps"])
        .current_dir(&p.dir)
        .output();
    if let Ok(ps) = ps {
        assert!(
            String::from_utf8_lossy(&ps.stdout).contains(&format!("{}-web-1", p.name)),
            "{}",
            text(&ps)
        );
    }
}

#[test]
fn scale_up_and_down_and_remove_a_service() {
    let yaml = |n: u32, extra: bool| {
        let mut s = format!(
            "services:\n  w:\n    image: berth-test-busybox:1\n    deploy: {{replicas: {n}}}\n"
        );
        if extra {
            s.push_str("  gone:\n    image: berth-test-busybox:1\n");
        }
        s
    };
    let p = TestProject::new("scale", &yaml(1, true));
    apply_ok(&p);
    assert_eq!(p.states(), ["gone-1=running", "w-1=running"]);
    p.write(&yaml(3, true));
    apply_ok(&p);
    assert_eq!(
        p.states(),
        [
            "gone-1=running",
            "w-1=running",
            "w-2=running",
            "w-3=running"
        ]
    );
    p.write(&yaml(1, false));
    let out = apply_ok(&p);
    assert!(out.contains("service removed from the project"), "{out}");
    assert_eq!(p.states(), ["w-1=running"]);
}

#[test]
fn containers_removed_or_stopped_by_hand_are_restored_and_unmanaged_ones_untouched() {
    let p = TestProject::new(
        "heal",
        "services:\n  a:\n    image: berth-test-busybox:1\n  b:\n    image: berth-test-busybox:1\n",
    );
    let stranger = format!("{}-stranger", p.name);
    docker(&["run", "-d", "--name", &stranger, "berth-test-busybox:1"]);
    apply_ok(&p);
    docker(&["rm", "-f", &format!("{}-a-1", p.name)]);
    docker(&["stop", "-t", "1", &format!("{}-b-1", p.name)]);
    let out = apply_ok(&p);
    assert!(
        out.contains(&format!(
            "{}/a  create {}-a-1  replica 1 is missing; creating it",
            p.name, p.name
        )),
        "{out}"
    );
    assert!(out.contains("restarting"), "{out}");
    assert_eq!(p.states(), ["a-1=running", "b-1=running"]);
    let state = docker(&["inspect", "-f", "{{.State.Status}}", &stranger]);
    docker(&["rm", "-f", &stranger]);
    assert_eq!(
        state.trim(),
        "running",
        "berth touched an unmanaged container"
    );
}

#[test]
fn a_failed_job_blocks_its_dependents_and_shows_its_output() {
    let port = free_port();
    let p = TestProject::new(
        "job",
        &STACK
            .replace("PORT", &port.to_string())
            .replace("${MIGRATE_EXIT:-0}", "3"),
    );
    let o = berth(&p, &["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("migrate  blocked: job failed with exit code 3"),
        "{out}"
    );
    assert!(
        out.contains("migrating to 1"),
        "the job's output is shown:\n{out}"
    );
    assert!(
        out.contains("web  blocked: job migrate failed with exit code 3"),
        "{out}"
    );
    assert_eq!(
        p.states(),
        ["db-1=running", "migrate-1=exited"],
        "web must not start"
    );
}

#[test]
fn compose_made_containers_are_taken_over_and_their_volumes_kept() {
    support::tier::require_tool("docker-compose", "docker-compose");
    let p = TestProject::new(
        "take",
        "services:\n  db:\n    image: berth-demo:1\n    environment: {APP_MODE: db, APP_DATA_DIR: /data}\n    volumes: ['data:/data']\nvolumes:\n  data: {}\n",
    );
    let up = Command::new("docker-compose")
        .args(["-p", &p.name, "up", "-d"])
        .current_dir(&p.dir)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", text(&up));
    let before = docker(&["inspect", "-f", "{{.Id}}", &format!("{}_db_1", p.name)]);
    let before = if before.trim().is_empty() {
        docker(&["inspect", "-f", "{{.Id}}", &format!("{}-db-1", p.name)])
    } else {
        before
    };
    docker(&[
        "exec",
        &format!("{}_db_1", p.name),
        "berth-demo",
        "sleep",
        "0",
    ]);
    let out = apply_ok(&p);
    // Compose made it as berth would: adopted in place (same container, renamed to berth's
    // name; Docker cannot add labels, so the adoption lives in berth's records).
    assert!(
        out.contains("adopted (docker compose made it as berth would"),
        "{out}"
    );
    assert_eq!(p.states(), ["db-1=running"]);
    let after = docker(&["inspect", "-f", "{{.Id}}", &format!("{}-db-1", p.name)]);
    assert_eq!(
        after.trim(),
        before.trim(),
        "the same container, not recreated"
    );
    let vol = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}}",
        &format!("{}_data", p.name),
    ]);
    assert_eq!(
        vol.trim(),
        format!("{}_data", p.name),
        "the named volume is kept"
    );
}

#[test]
fn engine_errors_are_reported_not_swallowed() {
    let p = TestProject::new(
        "err",
        "services:\n  web:\n    image: berth-test-busybox:1\n",
    );
    // Someone else's container holds the name berth needs.
    let squatter = format!("{}-web-1", p.name);
    docker(&["run", "-d", "--name", &squatter, "berth-test-busybox:1"]);
    let o = berth(&p, &["apply"]);
    docker(&["rm", "-f", &squatter]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("failed: {}/web  create {squatter}", p.name)),
        "{out}"
    );
    assert!(out.contains("conflict"), "{out}");
}

#[test]
fn the_bundled_quickstart_deploys_cold() {
    // The example as shipped, in a directory of its own (so the project name is unique) and
    // with its fixed host port moved to a free one.
    let port = free_port();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let yaml = std::fs::read_to_string(src.join("compose.yaml")).unwrap();
    assert!(
        yaml.contains("127.0.0.1:8080:8080"),
        "the example's port mapping moved; update this test"
    );
    let p = TestProject::new(
        "qs",
        &yaml.replace("127.0.0.1:8080:8080", &format!("127.0.0.1:{port}:8080")),
    );
    std::fs::copy(src.join(".env"), p.dir.join(".env")).unwrap();
    let out = apply_ok(&p);
    assert!(out.contains("Converged"), "{out}");
    assert_eq!(
        p.states(),
        [
            "db-1=running",
            "migrate-1=exited",
            "web-1=running",
            "worker-1=running"
        ]
    );
    assert_eq!(
        http_get(port, "/health", 10_000).map(|(s, b)| (s, b.trim().to_string())),
        Some((200, "ok 1".to_string()))
    );
    let vol = docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}}",
        &format!("{}_db-data", p.name),
    ]);
    assert_eq!(vol.trim(), format!("{}_db-data", p.name));
}
