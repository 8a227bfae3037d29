//! The crash matrix (issue 14), real-engine tier: `berth apply` killed (SIGKILL) at every
//! mutating engine call of a scenario, then restarted, must converge to a state where every
//! invariant holds.
//!
//! For each scenario: a recording run through the engine-socket proxy lists the mutating calls
//! (POST, DELETE…) berth makes; then, for each call k, a fresh project is brought to the
//! scenario's start state, `berth apply` of the change runs through the proxy with call k held,
//! is killed while k is held, call k is released to the engine (so it happens, unseen by
//! berth), and a new `berth apply` must converge. The invariants checked after each run are
//! listed in [`Violation`]. Every kill point and every violation is printed; the test fails on
//! any violation not in [`KNOWN`] (and on a known one that no longer shows). `CRASH_MATRIX=a,b`
//! selects scenarios; `CRASH_MATRIX_JOBS` (default 3) runs that many kill points at once.
//!
//! Also here: the regression test of bug 1 (a crash between create and network connect),
//! reproduced deterministically by holding `POST /networks/{id}/connect`.
//!
//! Each project is unique and removed by its guard; waits are bounded; the only network
//! traffic is berth's probes to its own containers.

mod support {
    pub mod sockproxy;
    pub mod tier;
    pub mod world;
}

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::store::{Outcome, ServiceRecord, Store};
use support::sockproxy::{Action, Matcher, SockProxy, is_mutating};
use support::world::{TestProject, docker, inspect};

/// One scenario: the start state, the change whose apply is killed, and what must hold after.
struct Scenario {
    name: &'static str,
    /// compose.yaml (`{name}` is the project name); `${TAG}` etc. come from `.env`.
    yaml: String,
    /// `.env` contents of the start state, each applied in turn (not through the proxy).
    before: &'static [&'static str],
    /// An operator command (`rollback`) run before the change's apply.
    control: Option<&'static str>,
    /// `web` is built from `app/` (written with version `v1` for the start state, `v2` for the
    /// change) instead of `image:`; its image is then the current revision's.
    built: bool,
    /// `.env` contents of the change.
    after: &'static str,
    /// The image the replicas must run afterwards (unused when `built`).
    image: &'static str,
    /// Replicas of `web` afterwards.
    replicas: u32,
    /// The change is a bad revision: reverted, quarantined, never retried.
    bad: Option<&'static str>,
    /// How long berth stays down after the kill (longer than `progress_deadline`: a restart
    /// late in the rollout, as after host maintenance).
    down: Duration,
    /// The project has a job (`migrate`) that appends a line to `runs` per run: its expected
    /// line count afterwards.
    job_runs: Option<usize>,
}

/// An invariant that did not hold after a kill and restart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Violation {
    /// The desired replicas are not all there and running.
    Replicas(String),
    /// A replica runs another image than the scenario's outcome asks for.
    Image(String),
    /// A replica lacks a network, alias, published port or mount its spec asks for.
    Spec(String),
    /// A renamed-away or candidate container was left over.
    Leftover(String),
    /// A pin tag the records do not own, or the previous stable revision not pinned.
    Pins(String),
    /// A bad revision retried, or a good one reverted/failed.
    Verdict(String),
    /// The job ran a number of times other than expected.
    Job(String),
    /// `berth apply` or `berth status` said something untrue.
    Status(String),
}

impl Violation {
    fn kind(&self) -> &'static str {
        match self {
            Violation::Replicas(_) => "replicas",
            Violation::Image(_) => "image",
            Violation::Spec(_) => "spec",
            Violation::Leftover(_) => "leftover",
            Violation::Pins(_) => "pins",
            Violation::Verdict(_) => "verdict",
            Violation::Job(_) => "job",
            Violation::Status(_) => "status",
        }
    }
}

const APPLY_TIMEOUT: &str = "60s";

/// This process's own tags of the demo images (`crash-demo-<pid>:1|2|bad`): other tests
/// rebuilding `berth-demo:*` on the shared engine while the matrix runs cannot change the image
/// a scenario expects. Tagged by the first test that needs them, removed by the last.
static DEMO_USERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

struct Demo;

impl Demo {
    fn repo() -> String {
        format!("crash-demo-{}", std::process::id())
    }

    fn acquire() -> Demo {
        let mut users = DEMO_USERS.lock().unwrap_or_else(|e| e.into_inner());
        if *users == 0 {
            support::world::ensure_images();
            for t in ["1", "2", "bad"] {
                docker(&[
                    "tag",
                    &format!("berth-demo:{t}"),
                    &format!("{}:{t}", Demo::repo()),
                ]);
            }
        }
        *users += 1;
        Demo
    }

    /// `text` with `berth-demo:` replaced by this process's tags.
    fn sub(text: &str) -> String {
        text.replace("berth-demo:", &format!("{}:", Demo::repo()))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let mut users = DEMO_USERS.lock().unwrap_or_else(|e| e.into_inner());
        *users -= 1;
        if *users == 0 {
            for t in ["1", "2", "bad"] {
                docker(&["rmi", &format!("{}:{t}", Demo::repo())]);
            }
        }
    }
}

fn data_dir(p: &TestProject) -> PathBuf {
    p.dir.parent().unwrap().join("data")
}

fn apply_cmd(p: &TestProject, docker_host: Option<&str>) -> Command {
    let mut cmd = p.berth();
    cmd.args(["apply", "--timeout", APPLY_TIMEOUT, "--data-dir"])
        .arg(data_dir(p))
        .arg(&p.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match docker_host {
        Some(h) => cmd.env("DOCKER_HOST", h),
        None => cmd.env_remove("DOCKER_HOST"),
    };
    cmd
}

/// `berth apply`: (exit code, output).
fn apply(p: &TestProject, docker_host: Option<&str>) -> (i32, String) {
    let o = apply_cmd(p, docker_host).output().expect("run berth apply");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn set_env(p: &TestProject, content: &str) {
    std::fs::write(p.dir.join(".env"), Demo::sub(content)).unwrap();
}

fn image_id(reference: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", reference])
        .trim()
        .to_string()
}

fn record(p: &TestProject, service: &str) -> ServiceRecord {
    Store::open(&data_dir(p))
        .unwrap()
        .load(&p.name, service)
        .unwrap()
}

/// A fresh project of `s` in its start state (applied directly, not through the proxy), its
/// `.env` and context set to the change.
fn start_state(s: &Scenario) -> Project {
    // An engine hiccup in the setup (seen under load: "failed to start shim") is not what the
    // matrix tests: a fresh project is tried, at most three times.
    for attempt in 1..=3 {
        match try_start_state(s) {
            Ok(p) => return p,
            Err(out) if attempt < 3 => {
                eprintln!(
                    "{}: the start state failed (attempt {attempt}):\n{out}",
                    s.name
                )
            }
            Err(out) => panic!("{}: the start state did not apply:\n{out}", s.name),
        }
    }
    unreachable!("the last attempt returns or panics")
}

fn try_start_state(s: &Scenario) -> Result<Project, String> {
    let p = Project(TestProject::new("cm", &Demo::sub(&s.yaml)));
    std::fs::create_dir_all(p.dir.join("runs")).unwrap();
    if s.built {
        context(&p, "v1");
    }
    for env in s.before {
        set_env(&p, env);
        let (code, out) = apply(&p, None);
        if code != 0 {
            return Err(out);
        }
    }
    set_env(&p, s.after);
    if s.built {
        context(&p, "v2");
    }
    if let Some(cmd) = s.control {
        let o = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args([cmd, &format!("{}/web", p.name), "--data-dir"])
            .arg(data_dir(&p))
            .output()
            .expect("run berth control");
        assert!(
            o.status.success(),
            "berth {cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(p)
}

/// A test project whose built images (`berth-build/<project>/*`, labelled with its name) go
/// too when it is dropped.
struct Project(TestProject);

impl std::ops::Deref for Project {
    type Target = TestProject;
    fn deref(&self) -> &TestProject {
        &self.0
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let name = self.0.name.clone();
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={name}"),
        ]);
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        let tags = docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("berth-build/{name}/*"),
        ]);
        for t in tags.split_whitespace() {
            docker(&["rmi", t]);
        }
        // TestProject's guard removes pins, networks and volumes next.
    }
}

/// The built app: busybox httpd serving `/health` and `/version` (`version`); its `LABEL`
/// right after `FROM` keeps its layers its own (no build cache shared with other tests).
fn context(p: &TestProject, version: &str) {
    let dir = p.dir.join("app");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM scratch\nLABEL crash.owner=\"{}\"\nCOPY busybox /bin/busybox\nCOPY www /www\n\
             CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
            p.name
        ),
    )
    .unwrap();
    std::fs::write(dir.join("www/version"), format!("{version}\n")).unwrap();
    std::fs::write(dir.join("www/health"), "ok\n").unwrap();
}

/// Every invariant, after a run that should have converged (`code`: its exit code).
fn check(s: &Scenario, p: &TestProject, code: i32, out: &str) -> Vec<Violation> {
    let mut v = Vec::new();
    let rec = record(p, "web");
    let want_image = if s.built {
        match rec.current() {
            Some(cur) if cur.number == 2 && cur.image_ref.starts_with("berth-build/") => {
                cur.image_id.clone()
            }
            other => {
                v.push(Violation::Verdict(format!(
                    "current revision is {:?}, not the built change r2",
                    other.map(|r| (r.number, r.image_ref.clone(), r.outcome))
                )));
                String::new()
            }
        }
    } else {
        image_id(&Demo::sub(s.image))
    };
    let canonical: Vec<String> = (1..=s.replicas)
        .map(|n| format!("{}-web-{n}", p.name))
        .collect();
    let listed = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={}", p.name),
        "--format",
        "{{.Names}}\t{{.State}}\t{{.Label \"berth.role\"}}\t{{.Label \"berth.service\"}}",
    ]);
    let mut seen = Vec::new();
    for line in listed.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, state, role, service) = (f[0], f[1], f[2], f.get(3).copied().unwrap_or(""));
        if role != "replica" || service != "web" {
            continue;
        }
        if !canonical.iter().any(|c| c == name) {
            v.push(Violation::Leftover(format!("{name} ({state})")));
            continue;
        }
        seen.push(name.to_string());
        if state != "running" {
            v.push(Violation::Replicas(format!("{name} is {state}")));
            continue;
        }
        let image = inspect(name, "{{.Image}}");
        if image != want_image {
            v.push(Violation::Image(format!(
                "{name} runs {image}, not {} ({want_image})",
                s.image
            )));
        }
        let nets = inspect(
            name,
            "{{range $k, $e := .NetworkSettings.Networks}}{{$k}}={{join $e.Aliases \",\"}} {{end}}",
        );
        for net in ["front", "back"] {
            let key = format!("{}_{net}=", p.name);
            match nets.split_whitespace().find(|e| e.starts_with(&key)) {
                None => v.push(Violation::Spec(format!("{name} not on {net}: {nets}"))),
                Some(e) if !e[key.len()..].split(',').any(|a| a == "web") => {
                    v.push(Violation::Spec(format!("{name} lacks alias web on {net}")))
                }
                Some(_) => {}
            }
        }
        let ports = inspect(name, "{{json .NetworkSettings.Ports}}");
        if !ports.contains("\"8080/tcp\":[{") {
            v.push(Violation::Spec(format!(
                "{name}: 8080 not published: {ports}"
            )));
        }
        let mounts = inspect(name, "{{range .Mounts}}{{.Destination}} {{end}}");
        if !mounts.split_whitespace().any(|m| m == "/data") {
            v.push(Violation::Spec(format!("{name}: /data not mounted")));
        }
    }
    for c in &canonical {
        if !seen.contains(c) {
            v.push(Violation::Replicas(format!("{c} missing")));
        }
    }
    // Records, verdicts and pins.
    match s.bad {
        None => {
            match rec.current() {
                Some(cur) if cur.image_id == want_image => {}
                other => v.push(Violation::Verdict(format!(
                    "current revision is {:?}, not the change",
                    other.map(|r| (r.number, r.image_ref.clone(), r.outcome))
                ))),
            }
            for r in &rec.revisions {
                if matches!(r.outcome, Outcome::Failed | Outcome::Reverted) {
                    v.push(Violation::Verdict(format!(
                        "good revision r{} failed: {:?}",
                        r.number, r.reason
                    )));
                }
            }
            if code != 0 {
                v.push(Violation::Status(format!("apply exited {code}")));
            }
        }
        Some(bad) => {
            let bad_revs: Vec<_> = rec
                .revisions
                .iter()
                .filter(|r| r.image_ref == Demo::sub(bad))
                .collect();
            if bad_revs.len() != 1
                || !matches!(bad_revs[0].outcome, Outcome::Failed | Outcome::Reverted)
                || !rec.is_quarantined(&bad_revs[0].spec_hash)
            {
                v.push(Violation::Verdict(format!(
                    "bad revision recorded as {:?}",
                    bad_revs
                        .iter()
                        .map(|r| (r.number, r.outcome))
                        .collect::<Vec<_>>()
                )));
            }
        }
    }
    let owned: Vec<String> = rec.revisions.iter().filter_map(|r| r.pin.clone()).collect();
    let tags = docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &format!("berth-pin/{}/*", p.name),
    ]);
    for t in tags.split_whitespace() {
        if !owned.iter().any(|o| o == t) {
            v.push(Violation::Pins(format!("{t} not owned by a record")));
        }
    }
    for o in &owned {
        if !tags.split_whitespace().any(|t| t == o) {
            v.push(Violation::Pins(format!("recorded pin {o} missing")));
        }
    }
    // The previous stable revision (the start state's) stays pinned after an update.
    if s.bad.is_none()
        && let Some(first) = rec.revisions.iter().find(|r| r.number == 1)
        && first.image_id != want_image
        && first.pin.is_none()
    {
        v.push(Violation::Pins(
            "the previous revision r1 is not pinned".into(),
        ));
    }
    if let Some(want) = s.job_runs {
        let runs = std::fs::read_to_string(p.dir.join("runs/log")).unwrap_or_default();
        let n = runs.lines().count();
        if n != want {
            v.push(Violation::Job(format!("ran {n} times, want {want}")));
        }
    }
    // `berth status` built from the engine and the records.
    let st = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["status", "--json", "--data-dir"])
        .arg(data_dir(p))
        .arg(&p.dir)
        .env_remove("DOCKER_HOST")
        .output()
        .expect("berth status");
    let json: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
    match find_service(&json, &p.name, "web") {
        None => v.push(Violation::Status(format!(
            "no web in status: {}",
            String::from_utf8_lossy(&st.stdout)
        ))),
        Some(w) => {
            let ready = w["ready"].as_u64().unwrap_or(u64::MAX);
            let broken = v
                .iter()
                .any(|x| matches!(x, Violation::Replicas(_) | Violation::Spec(_)));
            if broken && ready == u64::from(s.replicas) {
                v.push(Violation::Status(format!(
                    "status says {ready} ready while replicas are broken"
                )));
            }
            if !broken && ready != u64::from(s.replicas) {
                v.push(Violation::Status(format!(
                    "status says {ready} ready, {} run as asked",
                    s.replicas
                )));
            }
        }
    }
    if !v.is_empty() {
        eprintln!("--- {} ({}) apply output:\n{out}", s.name, p.name);
    }
    v
}

/// The status entry of `project/service` in `berth status --json` output.
fn find_service<'a>(
    json: &'a serde_json::Value,
    project: &str,
    service: &str,
) -> Option<&'a serde_json::Value> {
    match json {
        serde_json::Value::Object(o) => {
            if o.get("project").and_then(|x| x.as_str()) == Some(project)
                && o.get("service").and_then(|x| x.as_str()) == Some(service)
            {
                return Some(json);
            }
            o.values().find_map(|x| find_service(x, project, service))
        }
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_service(x, project, service)),
        _ => None,
    }
}

/// The mutating calls of the scenario's change, recorded through the proxy.
fn record_calls(s: &Scenario, proxy: &SockProxy) -> (Vec<String>, Vec<Violation>) {
    let p = start_state(s);
    proxy.reset_log();
    let (code, out) = apply(&p, Some(&proxy.docker_host()));
    let calls = proxy
        .passed()
        .into_iter()
        .filter(|c| is_mutating(&c.method))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    (calls, check(s, &p, code, &out))
}

/// Kill point k: berth killed while the k-th mutating call is held; the call then reaches the
/// engine; a new berth converges. `None` when this run made fewer than k mutating calls.
fn kill_at(s: &Scenario, k: usize) -> Option<Vec<Violation>> {
    let p = start_state(s);
    let proxy = SockProxy::docker();
    proxy.rule(Matcher::Mutating, k, Action::Hold);
    let log = p.dir.parent().unwrap().join("killed-apply.log");
    let mut child = apply_cmd(&p, Some(&proxy.docker_host()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start berth apply");
    let held = loop {
        if let Some(h) = proxy.wait_held(Duration::from_millis(200)) {
            break Some(h);
        }
        if child.try_wait().ok().flatten().is_some() {
            break None;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let Some((method, path)) = held else {
        proxy.release();
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = out.lines().rev().take(6).collect();
        eprintln!("{} k={k}: berth ended before call k: {tail:?}", s.name);
        return None;
    };
    // The released call reaches the engine; wait (bounded) for its answer before berth
    // restarts (an earlier call of the same method and path does not count).
    let same = |proxy: &SockProxy| {
        proxy
            .passed()
            .iter()
            .filter(|c| c.method == method && c.path == path)
            .count()
    };
    let before = same(&proxy);
    proxy.release();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until && same(&proxy) == before {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(proxy);
    std::thread::sleep(s.down);
    let (code, out) = apply(&p, None);
    Some(check(s, &p, code, &out))
}

const WEB: &str = "services:
  web:
    image: ${IMAGE:-berth-demo:1}
    environment:
      CRASH_AFTER: '${CRASH:-3600}'
      FAIL_START: '${FAIL:-0}'
    ports: ['127.0.0.1::8080']
    networks: [front, back]
    volumes: ['data:/data']
    deploy:
      replicas: ${REPLICAS:-1}
      update_config:
        order: ${ORDER:-start-first}
    x-berth:
      readiness: {http: {port: 8080, path: /health}, interval: 300ms}
      min_ready: 1s
      progress_deadline: 8s
networks:
  front: {}
  back: {}
volumes:
  data: {}
";

const JOB: &str = "  migrate:
    image: berth-test-busybox:1
    command: [sh, -c, 'echo ${JOBV:-1} >> /runs/log']
    volumes: ['./runs:/runs']
    restart: 'no'
";

fn scenarios() -> Vec<Scenario> {
    let with_job = WEB.replacen(
        "    x-berth:\n",
        "    depends_on: {migrate: {condition: service_completed_successfully}}\n    x-berth:\n",
        1,
    );
    let with_job = with_job.replacen("networks:\n  front", &format!("{JOB}networks:\n  front"), 1);
    vec![
        Scenario {
            name: "start-first",
            yaml: WEB.into(),
            before: &[""],
            after: "IMAGE=berth-demo:2\n",
            image: "berth-demo:2",
            replicas: 1,
            control: None,
            built: false,
            bad: None,
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "stop-first",
            yaml: WEB.into(),
            before: &["ORDER=stop-first\n"],
            after: "ORDER=stop-first\nIMAGE=berth-demo:2\n",
            image: "berth-demo:2",
            replicas: 1,
            control: None,
            built: false,
            bad: None,
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "revert-never-ready",
            yaml: WEB.into(),
            before: &[""],
            after: "IMAGE=berth-demo:bad\n",
            image: "berth-demo:1",
            replicas: 1,
            control: None,
            built: false,
            bad: Some("berth-demo:bad"),
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "revert-crashing",
            yaml: WEB.into(),
            before: &[""],
            after: "IMAGE=berth-demo:2\nFAIL=1\n",
            image: "berth-demo:1",
            replicas: 1,
            control: None,
            built: false,
            bad: Some("berth-demo:2"),
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "job-then-rollout",
            yaml: with_job,
            before: &[""],
            after: "IMAGE=berth-demo:2\nJOBV=2\n",
            image: "berth-demo:2",
            replicas: 1,
            control: None,
            built: false,
            bad: None,
            down: Duration::ZERO,
            job_runs: Some(2),
        },
        Scenario {
            name: "scale-up",
            yaml: WEB.into(),
            before: &[""],
            after: "REPLICAS=3\n",
            image: "berth-demo:1",
            replicas: 3,
            control: None,
            built: false,
            bad: None,
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "rollback",
            yaml: WEB.into(),
            before: &["", "IMAGE=berth-demo:2\n"],
            after: "IMAGE=berth-demo:2\n",
            control: Some("rollback"),
            built: false,
            image: "berth-demo:1",
            replicas: 1,
            bad: None,
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "built",
            yaml: WEB.replacen(
                "    image: ${IMAGE:-berth-demo:1}\n",
                "    build: {context: app}\n",
                1,
            ),
            before: &[""],
            after: "",
            control: None,
            built: true,
            image: "",
            replicas: 1,
            bad: None,
            down: Duration::ZERO,
            job_runs: None,
        },
        Scenario {
            name: "start-first-late-restart",
            yaml: WEB.into(),
            before: &[""],
            after: "IMAGE=berth-demo:2\n",
            control: None,
            built: false,
            image: "berth-demo:2",
            replicas: 1,
            bad: None,
            down: Duration::from_secs(10),
            job_runs: None,
        },
        Scenario {
            // Six revisions: the change's rollout unpins the oldest beyond the history limit.
            name: "history-unpin",
            yaml: WEB.into(),
            before: &[
                "",
                "CRASH=3601\n",
                "CRASH=3602\n",
                "CRASH=3603\n",
                "CRASH=3604\n",
            ],
            after: "CRASH=3605\n",
            control: None,
            built: false,
            image: "berth-demo:1",
            replicas: 1,
            bad: None,
            down: Duration::ZERO,
            job_runs: None,
        },
    ]
}

/// `CRASH_MATRIX=name,name` runs only those scenarios (all by default).
fn selected(s: &Scenario) -> bool {
    std::env::var("CRASH_MATRIX")
        .map(|only| only.split(',').any(|n| n == s.name))
        .unwrap_or(true)
}

/// Violations known and not yet fixed: (scenario, kill point (`None`: any), invariant kind,
/// issue item). Printed as KNOWN FAILURE, not failed; one that no longer shows fails the test,
/// so that the list stays true. Empty: issue 14's items 2 (a late restart) and 8 (a kill during
/// unpin) were listed here until they were fixed.
const KNOWN: &[(&str, Option<usize>, &str, &str)] = &[];

#[test]
fn berth_killed_at_every_mutating_engine_call_converges() {
    let _demo = Demo::acquire();
    let started = Instant::now();
    let mut table: Vec<(String, usize, String, Vec<Violation>)> = Vec::new();
    // Recording runs one scenario at a time (the call list must be berth's alone); the kill
    // points, each on its own project, run `CRASH_MATRIX_JOBS` at a time (default 3).
    let all = scenarios();
    let mut work: Vec<(usize, usize, String)> = Vec::new();
    for (i, s) in all.iter().enumerate().filter(|(_, s)| selected(s)) {
        let proxy = SockProxy::docker();
        let (calls, baseline) = record_calls(s, &proxy);
        drop(proxy);
        eprintln!("{}: {} mutating calls: {calls:#?}", s.name, calls.len());
        table.push((s.name.into(), 0, "(no kill)".into(), baseline));
        work.extend(calls.into_iter().enumerate().map(|(k, c)| (i, k + 1, c)));
    }
    let jobs: usize = std::env::var("CRASH_MATRIX_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(3)
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    let missed = std::sync::Mutex::new(Vec::<String>::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((i, k, call)) = work.get(j) else {
                        break;
                    };
                    let s = &all[*i];
                    match kill_at(s, *k) {
                        Some(v) => {
                            eprintln!("{} k={k} {call}: {v:?}", s.name);
                            let row = (*i, *k, call.clone(), v);
                            done.lock().unwrap_or_else(|e| e.into_inner()).push(row);
                        }
                        None => {
                            eprintln!("{} k={k} {call}: not reached this run", s.name);
                            missed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(format!("{} k={k}", s.name));
                        }
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, k, _, _)| (*i, *k));
    let size = done.len();
    table.extend(
        done.into_iter()
            .map(|(i, k, call, v)| (all[i].name.to_string(), k, call, v)),
    );
    // Known failures: reported, not failed; one that no longer shows fails the test.
    let mut fixed = Vec::new();
    for (scenario, k, kind, why) in KNOWN {
        let mut seen = false;
        for row in table
            .iter_mut()
            .filter(|(s, kk, _, _)| s == scenario && k.is_none_or(|k| *kk == k))
        {
            let before = row.3.len();
            row.3.retain(|x| x.kind() != *kind);
            if row.3.len() != before {
                seen = true;
                eprintln!(
                    "  KNOWN FAILURE {scenario} k={} ({}): {kind}: {why}",
                    row.1, row.2
                );
            }
        }
        if !seen && table.iter().any(|(s, _, _, _)| s == scenario) {
            fixed.push(format!("{scenario} {kind} ({why})"));
        }
    }
    let failing: Vec<_> = table.iter().filter(|(_, _, _, v)| !v.is_empty()).collect();
    let mut per_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, _, _, v) in &failing {
        let mut kinds: Vec<&str> = v.iter().map(Violation::kind).collect();
        kinds.dedup();
        for k in kinds {
            *per_kind.entry(k).or_default() += 1;
        }
    }
    let missed = missed.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "crash matrix: {size} kill points, {} runs with a violation {per_kind:?}, {} not reached {missed:?}, {:?} ({jobs} at a time)",
        failing.len(),
        missed.len(),
        started.elapsed()
    );
    for (s, k, call, v) in &failing {
        eprintln!("  VIOLATION {s} k={k} ({call}): {v:?}");
    }
    assert!(
        failing.is_empty(),
        "{} runs violated an invariant",
        failing.len()
    );
}

/// Bug 1: berth killed while the candidate's second network is being connected. Before the
/// fix the half-connected candidate was started, passed its probe on the network it had and
/// was promoted: the service lost its other network while apply said converged. Now it is
/// connected first.
#[test]
fn a_kill_between_create_and_network_connect_never_promotes_a_half_connected_container() {
    let _demo = Demo::acquire();
    let s = &scenarios()[0];
    let p = start_state(s);
    let proxy = SockProxy::docker();
    proxy.rule(
        Matcher::request("POST", "/networks/*/connect"),
        1,
        Action::Hold,
    );
    let mut child = apply_cmd(&p, Some(&proxy.docker_host()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start berth apply");
    let held = proxy.wait_held(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    assert!(held.is_some(), "berth never connected a network");
    // The connect never happens: the engine is left with a container on its first network only.
    proxy.clear_rules();
    drop(child);
    let half: Vec<String> = p
        .containers()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.starts_with(&format!("{}-web-1-", p.name)))
        .collect();
    assert_eq!(half.len(), 1, "the candidate exists: {:?}", p.containers());
    let (code, out) = apply(&p, None);
    let v = check(s, &p, code, &out);
    assert_eq!(v, [], "{out}");
    assert!(
        out.contains(&format!("connect {} to {}_", half[0], p.name))
            && out.contains("repair: the container does not match its spec (not on network"),
        "the half-connected candidate was connected before its promotion:\n{out}"
    );
}
