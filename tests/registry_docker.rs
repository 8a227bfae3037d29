//! Pull first, against a real registry (issue 4 item 4): Debian's `docker-registry` on
//! 127.0.0.1, fed with the locally built demo images. A cold deploy pulls and runs the pulled
//! image ID; an update whose image cannot be pulled (a missing tag, a registry that is down)
//! fails before anything is stopped or created; a tag that moves in the registry does not
//! change what runs. Each test has its own registry, project and data dir, guards that remove
//! what they created (containers, pins, registry tags, the registry process), and bounded
//! waits; traffic goes to 127.0.0.1 and to the test's own containers only.

mod support {
    pub mod registry;
    pub mod tier;
    pub mod world;
}

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth::store::{Outcome, ServiceRecord, Store};
use support::registry::Registry;
use support::world::{TestProject, docker, free_port, inspect, version};

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

/// `berth apply`: (exit code, output, how long it took).
fn apply(p: &TestProject) -> (i32, String, Duration) {
    let started = Instant::now();
    let o = p
        .berth()
        .args(["apply", "--timeout", "120s", "--data-dir"])
        .arg(data_dir(p))
        .arg(&p.dir)
        .output()
        .expect("run berth apply");
    (o.status.code().unwrap_or(-1), text(&o), started.elapsed())
}

fn apply_ok(p: &TestProject) -> String {
    let (code, out, _) = apply(p);
    assert_eq!(code, 0, "apply failed:\n{out}");
    out
}

/// Writes the project's `.env`.
fn env(p: &TestProject, content: &str) {
    std::fs::write(p.dir.join(".env"), content).unwrap();
}

fn record(p: &TestProject, service: &str) -> ServiceRecord {
    Store::open(&data_dir(p))
        .unwrap()
        .load(&p.name, service)
        .unwrap()
}

fn outcomes(r: &ServiceRecord) -> Vec<(u64, Outcome)> {
    r.revisions.iter().map(|v| (v.number, v.outcome)).collect()
}

/// The local image ID of `reference`, empty when the engine does not have it.
fn image_id(reference: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", reference])
        .trim()
        .to_string()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The project's container lifecycle events (create, start, stop, kill, die, rename, destroy)
/// between `since` and now, as `action name` lines.
fn lifecycle_events(p: &TestProject, since: f64) -> Vec<String> {
    let mut args = vec![
        "events".to_string(),
        "--since".into(),
        format!("{since:.3}"),
        "--until".into(),
        format!("{:.3}", unix_now()),
        "--filter".into(),
        "type=container".into(),
        "--filter".into(),
        format!("label=com.docker.compose.project={}", p.name),
        "--format".into(),
        "{{.Action}} {{.Actor.Attributes.name}}".into(),
    ];
    for e in [
        "create", "start", "stop", "kill", "die", "rename", "destroy",
    ] {
        args.extend(["--filter".into(), format!("event={e}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args).lines().map(str::to_owned).collect()
}

/// One service on a published loopback port (so updates are stop-first: the old container
/// would be stopped first if the pull did not come before everything else), ready when
/// `/health` answers.
fn web(image: &str, port: u16) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    ports: ['127.0.0.1:{port}:8080']\n    x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      min_ready: 1s\n      progress_deadline: 60s\n"
    )
}

#[test]
fn a_cold_deploy_pulls_the_image_and_runs_the_pulled_image_id() {
    let registry = Registry::start();
    let pushed = registry.push("berth-demo:1", "demo:1");
    let reference = registry.reference("demo:1");
    assert_eq!(
        image_id(&reference),
        "",
        "{reference} is local: no pull needed"
    );
    let port = free_port();
    let p = TestProject::new("rcold", &web(&reference, port));

    let out = apply_ok(&p);
    assert!(out.contains(&format!("pull {reference}")), "{out}");
    assert_eq!(version(port), "1");
    let name = format!("{}-web-1", p.name);
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(inspect(&name, "{{.Image}}"), pushed);
    assert_eq!(image_id(&reference), pushed);
    let r = record(&p, "web");
    assert_eq!(outcomes(&r), [(1, Outcome::Succeeded)]);
    assert_eq!(r.revisions[0].image_ref, reference);
    assert_eq!(r.revisions[0].image_id, pushed);

    // Converged: applying again pulls nothing and touches nothing.
    let since = unix_now();
    let out = apply_ok(&p);
    assert!(!out.contains("pull "), "{out}");
    assert_eq!(lifecycle_events(&p, since), Vec::<String>::new());
}

#[test]
fn an_update_whose_image_cannot_be_pulled_stops_nothing() {
    let registry = Registry::start();
    registry.push("berth-demo:1", "demo:1");
    let two = registry.push("berth-demo:2", "demo:2");
    let port = free_port();
    let image = format!("{}/demo:${{TAG:-1}}", registry.host());
    let p = TestProject::new("rmiss", &web(&image, port));
    apply_ok(&p);
    let name = format!("{}-web-1", p.name);
    let first_id = inspect(&name, "{{.Id}}");
    let before = record(&p, "web");
    assert_eq!(outcomes(&before), [(1, Outcome::Succeeded)]);

    env(&p, "TAG=missing\n");
    let missing = registry.reference("demo:missing");
    let since = unix_now();
    let (code, out, took) = apply(&p);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("failed to pull image {missing}: not found")),
        "{out}"
    );
    assert!(
        took < Duration::from_secs(30),
        "the failed pull took {took:?}"
    );
    // Untouched: the same container runs and answers; nothing was created, stopped or
    // renamed, and the record has no new revision.
    assert_eq!(inspect(&name, "{{.Id}}"), first_id);
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(version(port), "1");
    assert_eq!(p.states(), ["web-1=running"]);
    assert_eq!(lifecycle_events(&p, since), Vec::<String>::new());
    assert_eq!(record(&p, "web"), before);

    // A tag that exists rolls out (stop-first), pulled first.
    env(&p, "TAG=2\n");
    let out = apply_ok(&p);
    assert!(
        out.contains(&format!("pull {}", registry.reference("demo:2"))),
        "{out}"
    );
    assert!(out.contains("stop-first (publishes host port"), "{out}");
    assert_eq!(version(port), "2");
    assert_eq!(p.states(), ["web-1=running"]);
    assert_eq!(inspect(&name, "{{.Image}}"), two);
    let r = record(&p, "web");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Superseded), (2, Outcome::Succeeded)]
    );
    assert_eq!(r.revisions[1].image_id, two);
}

#[test]
fn a_tag_moved_in_the_registry_does_not_change_what_runs() {
    let registry = Registry::start();
    let two = registry.push("berth-demo:2", "demo:moving");
    let reference = registry.reference("demo:moving");
    let port = free_port();
    let yaml = format!(
        "services:\n  web:\n    image: {reference}\n    ports: ['127.0.0.1:{port}:8080']\n    environment: {{NOTE: '${{NOTE:-a}}'}}\n    x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      min_ready: 1s\n"
    );
    let p = TestProject::new("rmove", &yaml);
    let out = apply_ok(&p);
    assert!(out.contains(&format!("pull {reference}")), "{out}");
    let name = format!("{}-web-1", p.name);
    let first_id = inspect(&name, "{{.Id}}");
    assert_eq!(inspect(&name, "{{.Image}}"), two);
    assert_eq!(version(port), "2");

    // The tag moves to demo:1's image in the registry (and, as after a push from elsewhere,
    // is not local any more). berth keeps the revision's recorded image: no pull, no change.
    let one = registry.push("berth-demo:1", "demo:moving");
    assert_ne!(one, two);
    let since = unix_now();
    let out = apply_ok(&p);
    assert!(!out.contains("pull "), "{out}");
    assert_eq!(lifecycle_events(&p, since), Vec::<String>::new());
    assert_eq!(inspect(&name, "{{.Id}}"), first_id);
    assert_eq!(version(port), "2");

    // Someone pulls the moved tag by hand: still no change, and a container removed by hand
    // is recreated from the recorded image ID, not from the tag.
    let pulled = Command::new("docker")
        .args(["pull", "--quiet", &reference])
        .output()
        .unwrap();
    assert!(pulled.status.success(), "{}", text(&pulled));
    assert_eq!(image_id(&reference), one);
    apply_ok(&p);
    assert_eq!(inspect(&name, "{{.Id}}"), first_id);
    docker(&["rm", "-f", &name]);
    apply_ok(&p);
    assert_ne!(inspect(&name, "{{.Id}}"), first_id);
    assert_eq!(inspect(&name, "{{.Image}}"), two);
    assert_eq!(version(port), "2");
    let r = record(&p, "web");
    assert_eq!(outcomes(&r), [(1, Outcome::Succeeded)]);
    assert_eq!(r.revisions[0].image_id, two);

    // The tag is resolved when a revision begins: a spec change takes whatever the tag names
    // locally now (demo:1's image), without pulling it again.
    env(&p, "NOTE=b\n");
    let out = apply_ok(&p);
    assert!(!out.contains("pull "), "{out}");
    assert_eq!(inspect(&name, "{{.Image}}"), one);
    assert_eq!(version(port), "1");
    let r = record(&p, "web");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Superseded), (2, Outcome::Succeeded)]
    );
    assert_eq!(r.revisions[1].image_id, one);
}

#[test]
fn a_pull_from_a_registry_that_is_down_fails_fast_and_stops_nothing() {
    let mut registry = Registry::start();
    registry.push("berth-demo:1", "demo:1");
    let two = registry.push("berth-demo:2", "demo:2");
    let port = free_port();
    let image = format!("{}/demo:${{TAG:-1}}", registry.host());
    let p = TestProject::new("rdown", &web(&image, port));
    apply_ok(&p);
    let name = format!("{}-web-1", p.name);
    let first_id = inspect(&name, "{{.Id}}");
    let before = record(&p, "web");

    registry.stop();
    assert!(!registry.answers());
    env(&p, "TAG=2\n");
    let since = unix_now();
    let (code, out, took) = apply(&p);
    assert_eq!(code, 1, "{out}");
    let reference = registry.reference("demo:2");
    assert!(out.contains(&format!("pull {reference}")), "{out}");
    assert!(out.contains("connection refused"), "{out}");
    assert!(
        took < Duration::from_secs(30),
        "the failed pull took {took:?}"
    );
    assert_eq!(inspect(&name, "{{.Id}}"), first_id);
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
    assert_eq!(version(port), "1");
    assert_eq!(p.states(), ["web-1=running"]);
    assert_eq!(lifecycle_events(&p, since), Vec::<String>::new());
    assert_eq!(record(&p, "web"), before);

    // Nothing was held against the revision: once the registry is back, it rolls out.
    registry.restart();
    apply_ok(&p);
    assert_eq!(version(port), "2");
    assert_eq!(inspect(&name, "{{.Image}}"), two);
}
