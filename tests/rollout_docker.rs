//! Health-gated rollouts against the real engine (issue 4): start-first never leaves zero ready
//! containers, stop-first with a published port, a bad update reverted and quarantined, the
//! revert surviving `docker image prune -a`, crash loops, slow starts, replicas in batches,
//! smoke and pre-deploy gates, self-heal after the rollout. Each test has its own project and
//! data dir, a guard that removes what it created (pins included), and bounded waits; traffic
//! goes to 127.0.0.1 and to the test's own containers only.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth::store::{Outcome, ServiceRecord, Store};
use support::world::{TestProject, docker, free_port, inspect, version, wait_until};

fn data_dir(p: &TestProject) -> PathBuf {
    p.dir.parent().unwrap().join("data")
}

fn apply_cmd(p: &TestProject) -> Command {
    let mut cmd = p.berth();
    cmd.args(["apply", "--timeout", "120s", "--data-dir"])
        .arg(data_dir(p))
        .arg(&p.dir);
    cmd
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `berth apply`: (exit code, output).
fn apply(p: &TestProject) -> (i32, String) {
    let o = apply_cmd(p).output().expect("run berth apply");
    (o.status.code().unwrap_or(-1), text(&o))
}

fn apply_ok(p: &TestProject) -> String {
    let (code, out) = apply(p);
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

/// Samples, every 50 ms until stopped, how many of the project's containers run with Docker
/// health `healthy`.
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<usize>>,
}

impl Sampler {
    fn start(project: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let filter = format!("label=com.docker.compose.project={project}");
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            // Bounded: the test stops it; 20k samples is far beyond any test's length.
            while !flag.load(Ordering::Relaxed) && samples.len() < 20_000 {
                let out = docker(&[
                    "ps",
                    "-q",
                    "--filter",
                    &filter,
                    "--filter",
                    "health=healthy",
                    "--filter",
                    "label=berth.role=replica",
                ]);
                samples.push(out.split_whitespace().count());
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Vec<usize> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

const HEALTH: &str = "healthcheck: {test: [CMD, berth-demo, probe, 'http://127.0.0.1:8080/health'], interval: 1s, timeout: 1s, retries: 2}";

#[test]
fn a_start_first_update_never_leaves_zero_ready_containers() {
    let yaml = format!(
        "services:\n  web:\n    image: berth-demo:${{TAG:-1}}\n    {HEALTH}\n    x-berth: {{min_ready: 2s, progress_deadline: 60s}}\n"
    );
    let p = TestProject::new("sf", &yaml);
    apply_ok(&p);
    let name = format!("{}-web-1", p.name);
    assert_eq!(inspect(&name, "{{.State.Health.Status}}"), "healthy");

    let sampler = Sampler::start(&p.name);
    env(&p, "TAG=2\n");
    let out = apply_ok(&p);
    let samples = sampler.finish();
    assert!(out.contains("start-first (new beside old)"), "{out}");
    assert!(samples.len() > 20, "too few samples: {}", samples.len());
    assert!(
        samples.iter().all(|n| *n >= 1),
        "a sample saw no healthy container: {samples:?}"
    );
    // The candidate took the name; the old container is gone once r2 is stable.
    assert_eq!(p.states(), ["web-1=running"]);
    let image = inspect(&name, "{{.Image}}");
    assert_eq!(image, inspect("berth-demo:2", "{{.Id}}"));
    let r = record(&p, "web");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Superseded), (2, Outcome::Succeeded)]
    );
    // Both revisions are pinned: a tag and a never-started container each.
    for n in [1, 2] {
        let pin = format!("berth-pin/{}/web:r{n}", p.name);
        assert!(!inspect(&pin, "{{.Id}}").is_empty(), "{pin} missing");
        let holder = format!("berth-pin.{}.web.r{n}", p.name);
        assert_eq!(inspect(&holder, "{{.State.Status}}"), "created");
    }
}

#[test]
fn a_stop_first_update_with_a_published_port_swaps_versions() {
    let port = free_port();
    let yaml = format!(
        "services:\n  web:\n    image: berth-demo:${{TAG:-1}}\n    ports: ['127.0.0.1:{port}:8080']\n    x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      min_ready: 1s\n"
    );
    let p = TestProject::new("stf", &yaml);
    apply_ok(&p);
    assert_eq!(version(port), "1");
    env(&p, "TAG=2\n");
    let out = apply_ok(&p);
    assert!(out.contains("stop-first (publishes host port"), "{out}");
    assert!(out.contains("rename"), "{out}");
    assert_eq!(version(port), "2");
    assert_eq!(p.states(), ["web-1=running"]);
}

#[test]
fn a_bad_update_is_reverted_quarantined_and_only_retried_after_a_change() {
    let port = free_port();
    let yaml = format!(
        "services:\n  web:\n    image: berth-demo:${{TAG:-1}}\n    ports: ['127.0.0.1:{port}:8080']\n    {HEALTH}\n    x-berth: {{min_ready: 1s, progress_deadline: 60s}}\n"
    );
    let p = TestProject::new("bad", &yaml);
    apply_ok(&p);
    let first_id = inspect(&format!("{}-web-1", p.name), "{{.Id}}");

    env(&p, "TAG=bad\n");
    let started = Instant::now();
    let (code, out) = apply(&p);
    let took = started.elapsed();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rollout_failed"), "{out}");
    assert!(
        out.contains("Docker healthcheck reports unhealthy"),
        "{out}"
    );
    assert!(out.contains("reverted: r2 failed"), "{out}");
    // The candidate's last log lines are in the event.
    assert!(out.contains("last log lines"), "{out}");
    assert_eq!(version(port), "1");
    // The very container that ran before runs again (stop-first keeps it).
    assert_eq!(
        inspect(&format!("{}-web-1", p.name), "{{.Id}}"),
        first_id,
        "{out}"
    );
    assert_eq!(p.states(), ["web-1=running"]);
    let r = record(&p, "web");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Succeeded), (2, Outcome::Reverted)]
    );
    assert_eq!(r.quarantined.len(), 1);
    assert!(took < Duration::from_secs(60), "revert took {took:?}");

    // Not retried: the same desired state plans nothing and says why.
    let (code, out) = apply(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("quarantined"), "{out}");
    assert!(!out.contains("create "), "{out}");
    assert_eq!(inspect(&format!("{}-web-1", p.name), "{{.Id}}"), first_id);

    // A change of the desired state lifts the quarantine.
    env(&p, "TAG=2\n");
    apply_ok(&p);
    assert_eq!(version(port), "2");
    assert!(record(&p, "web").quarantined.is_empty());
}

/// Builds an image only this test uses (the demo app plus a label), so that pruning it cannot
/// disturb other tests.
fn private_image(tag: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM berth-demo:1\nLABEL berth.test={label}\n"),
    )
    .unwrap();
    let st = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "docker build {tag}");
}

#[test]
fn the_revert_survives_untagging_and_image_prune() {
    let port = free_port();
    let p = TestProject::new("prune", "services: {}\n");
    let image = format!("berth-prune-{}:1", p.name);
    private_image(&image, &p.name);
    let yaml = format!(
        "services:\n  web:\n    image: ${{IMAGE}}\n    ports: ['127.0.0.1:{port}:8080']\n    {HEALTH}\n    x-berth: {{min_ready: 1s, progress_deadline: 20s}}\n    environment: {{NEVER_READY: '${{NEVER:-0}}'}}\n"
    );
    p.write(&yaml);
    env(&p, &format!("IMAGE={image}\n"));
    apply_ok(&p);
    let old_image = inspect(&format!("{}-web-1", p.name), "{{.Image}}");

    // A bad revision (another image; it never becomes ready); while it is being gated, the
    // old container (stopped, kept) is removed by hand, the original tag is removed and the
    // image pruned: only berth's pin holds it.
    env(&p, "IMAGE=berth-demo:bad\nNEVER=1\n");
    let child = apply_cmd(&p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let kept_prefix = format!("{}-web-1-", p.name);
    wait_until(
        "the old container to be kept aside",
        Duration::from_secs(30),
        || {
            p.containers()
                .iter()
                .any(|(n, s, _)| n.starts_with(&kept_prefix) && s == "exited")
        },
    );
    let kept: Vec<String> = p
        .containers()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.starts_with(&kept_prefix))
        .collect();
    docker(&["rm", "-f", &kept[0]]);
    docker(&["rmi", &image]);
    docker(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        &format!("label=berth.test={}", p.name),
    ]);
    let out = child.wait_with_output().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("reverted: r2 failed"), "{log}");
    // r1 was recreated from its template and its pinned image.
    assert_eq!(
        inspect(&format!("{}-web-1", p.name), "{{.Image}}"),
        old_image
    );
    assert_eq!(version(port), "1");
    assert_eq!(p.states(), ["web-1=running"]);
}

#[test]
fn a_crash_looping_candidate_is_reverted() {
    let yaml = "services:\n  app:\n    image: berth-demo:1\n    restart: always\n    environment: {CRASH_AFTER: '${CRASH:-3600}'}\n    x-berth: {min_ready: 4s, progress_deadline: 60s}\n";
    let p = TestProject::new("loop", yaml);
    env(&p, "CRASH=\n");
    apply_ok(&p);
    env(&p, "CRASH=1\n");
    let (code, out) = apply(&p);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("restarted by Docker") || out.contains("exited with code"),
        "{out}"
    );
    assert!(out.contains("reverted"), "{out}");
    assert_eq!(p.states(), ["app-1=running"]);
    let r = record(&p, "app");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Succeeded), (2, Outcome::Reverted)]
    );
}

#[test]
fn a_slow_start_within_the_deadline_succeeds() {
    let yaml = "services:\n  app:\n    image: berth-demo:1\n    environment: {READY_AFTER: '${SLOW:-0}'}\n    x-berth:\n      readiness: {http: {port: 8080, path: /health}, interval: 500ms}\n      min_ready: 1s\n      progress_deadline: 30s\n";
    let p = TestProject::new("slow", yaml);
    apply_ok(&p);
    env(&p, "SLOW=4\n");
    let started = Instant::now();
    apply_ok(&p);
    // Ready after 4 s, then held for min_ready: the gate waited for it.
    assert!(started.elapsed() >= Duration::from_secs(4));
    let r = record(&p, "app");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Superseded), (2, Outcome::Succeeded)]
    );
}

#[test]
fn three_replicas_roll_one_at_a_time_and_a_failing_batch_reverts_all() {
    let yaml = format!(
        "services:\n  app:\n    image: berth-demo:${{TAG:-1}}\n    {HEALTH}\n    deploy:\n      replicas: 3\n      update_config: {{parallelism: 1}}\n    x-berth: {{min_ready: 1s, progress_deadline: 60s}}\n"
    );
    let p = TestProject::new("rep", &yaml);
    apply_ok(&p);
    // A good update: at most one candidate beside the three (sampled), all on 2 after.
    let filter = format!("label=com.docker.compose.project={}", p.name);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let f2 = filter.clone();
    let sampler = std::thread::spawn(move || {
        let mut most = 0;
        let mut n = 0;
        while !flag.load(Ordering::Relaxed) && n < 20_000 {
            let out = docker(&[
                "ps",
                "-q",
                "--filter",
                &f2,
                "--filter",
                "label=berth.role=replica",
            ]);
            most = most.max(out.split_whitespace().count());
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        most
    });
    env(&p, "TAG=2\n");
    apply_ok(&p);
    stop.store(true, Ordering::Relaxed);
    let most = sampler.join().unwrap();
    assert!(
        most <= 4,
        "up to {most} running replicas: more than one candidate at once"
    );
    assert_eq!(
        p.states(),
        ["app-1=running", "app-2=running", "app-3=running"]
    );

    // A bad update fails in its first batch; everything runs revision 2 again.
    env(&p, "TAG=bad\n");
    let (code, out) = apply(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("reverted"), "{out}");
    assert_eq!(
        p.states(),
        ["app-1=running", "app-2=running", "app-3=running"]
    );
    let two = inspect("berth-demo:2", "{{.Id}}");
    for n in 1..=3 {
        assert_eq!(inspect(&format!("{}-app-{n}", p.name), "{{.Image}}"), two);
    }
}

#[test]
fn a_failing_smoke_test_reverts_and_a_failing_pre_deploy_stops_nothing() {
    let yaml = "services:\n  web:\n    image: berth-demo:1\n    environment: {V: '${V:-1}', MIGRATE_EXIT: '${PRE:-0}'}\n    x-berth:\n      min_ready: 1s\n      readiness: {http: {port: 8080, path: /health}, interval: 500ms}\n      smoke: {command: [berth-demo, probe, '${SMOKE:-http://web:8080/health}'], timeout: 20s}\n      pre_deploy: {command: [berth-demo, migrate], timeout: 20s}\n";
    let p = TestProject::new("gate", yaml);
    apply_ok(&p);
    let id = inspect(&format!("{}-web-1", p.name), "{{.Id}}");

    // Smoke fails (404): reverted to r1.
    env(&p, "V=2\nSMOKE=http://web:8080/nope\n");
    let (code, out) = apply(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("smoke test exited with code"), "{out}");
    assert!(out.contains("reverted"), "{out}");
    assert_eq!(p.states(), ["web-1=running"]);

    // pre_deploy fails: nothing is stopped; the running container is untouched.
    env(&p, "V=3\nPRE=3\n");
    let (code, out) = apply(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("pre_deploy exited with code 3"), "{out}");
    assert_eq!(inspect(&format!("{}-web-1", p.name), "{{.Id}}"), id);
    assert_eq!(p.states(), ["web-1=running"]);
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_controller(p: &TestProject, extra_env: &[(&str, &str)]) -> Running {
    let mut cmd = p.berth();
    cmd.args(["run", "--resync", "2s", "--dir"])
        .arg(&p.dir)
        .arg("--data-dir")
        .arg(data_dir(p))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    Running(cmd.spawn().unwrap())
}

#[test]
fn unhealthy_after_the_rollout_is_self_healed_not_reverted() {
    let yaml = format!(
        "services:\n  app:\n    image: berth-demo:1\n    environment: {{SICK_AFTER: '${{SICK:-}}'}}\n    {HEALTH}\n    x-berth: {{min_ready: 1s}}\n"
    );
    let p = TestProject::new("heal", &yaml);
    env(&p, "SICK=6\n");
    apply_ok(&p);
    let name = format!("{}-app-1", p.name);
    let started = inspect(&name, "{{.State.StartedAt}}");
    let _run = run_controller(&p, &[]);
    // Sick after 6 s, unhealthy about 2 s later; berth restarts it.
    wait_until("a self-heal restart", Duration::from_secs(40), || {
        inspect(&name, "{{.State.StartedAt}}") != started
    });
    let r = record(&p, "app");
    assert_eq!(outcomes(&r), [(1, Outcome::Succeeded)]);
    assert!(!r.restarts.is_empty());
}

/// Kills berth (abort, like kill -9) right after a step or record save matching `at`, then
/// runs `berth apply` again and checks convergence without duplicates or orphans.
fn crash_at(at: &str, bad: bool) {
    let yaml = format!(
        "services:\n  web:\n    image: berth-demo:${{TAG:-1}}\n    {HEALTH}\n    x-berth: {{min_ready: 1s, progress_deadline: 30s}}\n"
    );
    let p = TestProject::new("crash", &yaml);
    apply_ok(&p);
    env(&p, if bad { "TAG=bad\n" } else { "TAG=2\n" });
    let o = apply_cmd(&p)
        .env("BERTH_FAULT_ABORT_AFTER", at)
        .output()
        .unwrap();
    let log = text(&o);
    assert!(
        log.contains("BERTH_FAULT_ABORT_AFTER matched"),
        "the fault point {at:?} was not reached:\n{log}"
    );
    assert!(!o.status.success());
    // Restart: converges.
    let (code, out) = apply(&p);
    let want_code = if bad { 1 } else { 0 };
    assert_eq!(code, want_code, "after a crash at {at:?}:\n{out}");
    assert_eq!(
        p.states(),
        ["web-1=running"],
        "after a crash at {at:?}:\n{out}"
    );
    let want = inspect(if bad { "berth-demo:1" } else { "berth-demo:2" }, "{{.Id}}");
    assert_eq!(inspect(&format!("{}-web-1", p.name), "{{.Image}}"), want);
    let r = record(&p, "web");
    assert!(r.active.is_none(), "{r:?}");
    let current = r.current().expect("a current revision");
    assert_eq!(current.image_id, want);
    assert!(current.pin.is_some());
    let holder = format!("berth-pin.{}.web.r{}", p.name, current.number);
    assert_eq!(inspect(&holder, "{{.State.Status}}"), "created");
}

#[test]
fn crash_after_the_record_is_saved_before_any_step() {
    crash_at("web  save record", false);
}

#[test]
fn crash_after_the_candidate_is_created() {
    crash_at("web  create", false);
}

#[test]
fn crash_after_the_old_container_is_stopped() {
    crash_at("web  stop", false);
}

#[test]
fn crash_after_a_rename() {
    crash_at("web  rename", false);
}

#[test]
fn crash_mid_revert() {
    // The revert's first step removes the failed candidate.
    crash_at("web  remove", true);
}

#[test]
fn a_removed_service_releases_its_pins_once_its_containers_are_gone() {
    let p = TestProject::new(
        "unpin",
        "services:\n  a:\n    image: berth-demo:1\n    x-berth: {min_ready: 0s}\n  b:\n    image: berth-test-busybox:1\n    x-berth: {min_ready: 0s}\n",
    );
    apply_ok(&p);
    let holder = format!("berth-pin.{}.a.r1", p.name);
    let tag = format!("berth-pin/{}/a:r1", p.name);
    assert_eq!(inspect(&holder, "{{.State.Status}}"), "created");
    p.write("services:\n  b:\n    image: berth-test-busybox:1\n    x-berth: {min_ready: 0s}\n");
    let out = apply_ok(&p);
    assert!(out.contains("service removed from the project"), "{out}");
    assert!(out.contains(&format!("unpin {tag}")), "{out}");
    assert_eq!(inspect(&holder, "{{.State.Status}}"), "");
    assert_eq!(inspect(&tag, "{{.Id}}"), "");
    assert_eq!(p.states(), ["b-1=running"]);
}

#[test]
fn kill_9_while_the_candidate_holds_min_ready_then_restart_converges() {
    let yaml = format!(
        "services:\n  web:\n    image: berth-demo:${{TAG:-1}}\n    {HEALTH}\n    x-berth: {{min_ready: 6s, progress_deadline: 60s}}\n"
    );
    let p = TestProject::new("k9", &yaml);
    env(&p, "TAG=1\n");
    apply_ok(&p);
    env(&p, "TAG=2\n");
    let mut child = apply_cmd(&p)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The candidate is ready and holding min_ready: the record says so.
    wait_until(
        "the candidate to hold min_ready",
        Duration::from_secs(40),
        || {
            record(&p, "web")
                .active
                .is_some_and(|a| a.slots.values().any(|s| s.ready_since.is_some()))
        },
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-9", &pid]).status().unwrap();
    let _ = child.wait();
    // Two containers exist now (old and candidate); a restarted berth finishes the job.
    let out = apply_ok(&p);
    assert_eq!(p.states(), ["web-1=running"], "{out}");
    assert_eq!(
        inspect(&format!("{}-web-1", p.name), "{{.Image}}"),
        inspect("berth-demo:2", "{{.Id}}")
    );
    let r = record(&p, "web");
    assert_eq!(
        outcomes(&r),
        [(1, Outcome::Superseded), (2, Outcome::Succeeded)]
    );
    assert!(r.active.is_none());
}

#[test]
fn crash_after_the_candidate_is_started() {
    crash_at("web  start", false);
}
