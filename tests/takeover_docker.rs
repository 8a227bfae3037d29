//! Taking over a stack `docker-compose` (1.29) started, on the real engine (issue 15): the
//! project name comes from `COMPOSE_PROJECT_NAME` in `.env` (the directory has another name),
//! `plan` names a mismatch when that line is missing, and the database on a named volume is
//! replaced stop-first — a sampler never sees two db containers running — on the same volume
//! (a marker file written before the handover survives). The migrate job compose ran is not
//! run again (a counter file in the volume has one line) and the app, unchanged, is adopted
//! in place (same container ID) and answers on its published port through the whole handover
//! (a sampler); `plan` says so per container. And the fields a real stack carries
//! reach the engine: ipam subnet and gateway, a static address, `attachable`, a host port range
//! onto one port, `runtime`, `security_opt`.
//!
//! The project is named `compose15…`; a guard removes its containers, pins, networks and
//! volumes whatever the outcome. Waits are bounded; no network traffic.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use support::tier::{require_engine, require_tool};
use support::world::{berth_command, docker, ensure_images, inspect, remove_project};

/// Loops until SIGTERM, so a stop takes about a second, not the grace period.
const LOOP: &str = "[sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 1; done']";

/// Serves `ok` on port 80 until SIGTERM.
const HTTPD: &str =
    "[sh, -c, 'mkdir -p /www; echo ok > /www/index.html; exec busybox httpd -f -p 80 -h /www']";

/// The app's published port (this test's range).
const APP_PORT: u16 = 41150;

/// One request to the app's published port: answered with HTTP?
fn answered() -> bool {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], APP_PORT));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = String::new();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
        && s.read_to_string(&mut reply).is_ok()
        && reply.starts_with("HTTP/1")
}

/// Samples, every 50 ms until stopped, whether the app answers.
fn sample_app(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<bool>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) && samples.len() < 20_000 {
            samples.push(answered());
            std::thread::sleep(Duration::from_millis(50));
        }
        samples
    })
}

/// What the test created, removed on drop: the engine claim of its berths, the project's
/// containers, networks and volumes, and berth's pins of it.
struct Guard {
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        docker(&["rm", "-f", &claim(&self.name)]);
        remove_project(&self.name);
    }
}

/// The engine claim of this project's berths: its own, so tests running at once do not refuse
/// each other (`BERTH_ENGINE_CLAIM`).
fn claim(project: &str) -> String {
    format!("berth-claim.{project}")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// berth `args` on `dir` with `data`, claiming the engine as `project`'s berths do.
fn berth(project: &str, args: &[&str], data: &Path, dir: &Path) -> Output {
    berth_command(&claim(project))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .arg(dir)
        .output()
        .expect("run berth")
}

/// Samples, every 50 ms until stopped, how many db containers of `project` run.
fn sample_running_dbs(project: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<usize>> {
    let project = format!("label=com.docker.compose.project={project}");
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        // Bounded: the test stops it; 20k samples is far beyond the handover's length.
        while !stop.load(Ordering::Relaxed) && samples.len() < 20_000 {
            let out = docker(&[
                "ps",
                "-q",
                "--filter",
                &project,
                "--filter",
                "label=com.docker.compose.service=db",
            ]);
            samples.push(out.split_whitespace().count());
            std::thread::sleep(Duration::from_millis(50));
        }
        samples
    })
}

#[test]
fn a_compose_stack_is_handed_over_by_its_dot_env_name_with_the_database_stop_first() {
    require_engine();
    require_tool("docker-compose", "docker-compose");
    ensure_images();
    let name = format!("compose15tk{}", std::process::id());
    let _guard = Guard { name: name.clone() };
    let tmp = tempfile::tempdir().unwrap();
    // The directory's name is not the project's: only `.env` makes them one.
    let dir: PathBuf = tmp
        .path()
        .join(format!("compose15-dir{}", std::process::id()));
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    // The db's DB_VERSION changes at the handover (it is recreated, stop-first); the migrate
    // job and the app are what berth would create (adopted: same IDs, the job not run again).
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            "services:\n  db:\n    image: berth-test-busybox:1\n    command: {LOOP}\n    \
             environment: {{DB_VERSION: '${{DB_VERSION:-1}}'}}\n    \
             volumes: ['pgdata:/data']\n  migrate:\n    image: berth-test-busybox:1\n    \
             command: [sh, -c, 'echo ran >> /data/migrations']\n    restart: 'no'\n    \
             volumes: ['pgdata:/data']\n    depends_on: [db]\n  app:\n    \
             image: berth-test-busybox:1\n    command: {HTTPD}\n    ports: ['127.0.0.1:{APP_PORT}:80']\n    \
             depends_on:\n      \
             migrate: {{condition: service_completed_successfully}}\nvolumes:\n  pgdata: {{}}\n"
        ),
    )
    .unwrap();
    let env = format!("COMPOSE_PROJECT_NAME={name}\n");
    std::fs::write(dir.join(".env"), &env).unwrap();

    let up = Command::new("docker-compose")
        .args(["up", "-d"])
        .current_dir(&dir)
        .output()
        .expect("run docker-compose");
    assert!(up.status.success(), "docker-compose up:\n{}", text(&up));
    let compose_db = format!("{name}_db_1");
    assert_eq!(inspect(&compose_db, "{{.State.Running}}"), "true");
    let compose_app = format!("{name}_app_1");
    let compose_migrate = format!("{name}_migrate_1");
    let app_id = inspect(&compose_app, "{{.Id}}");
    let migrate_id = inspect(&compose_migrate, "{{.Id}}");
    assert_eq!(inspect(&compose_migrate, "{{.State.ExitCode}}"), "0");
    docker(&[
        "exec",
        &compose_db,
        "sh",
        "-c",
        "echo before-handover > /data/marker",
    ]);

    // Without the `.env` line berth would name the project after its directory: plan says so
    // first, with both names and the fix.
    std::fs::remove_file(dir.join(".env")).unwrap();
    let o = berth(&name, &["plan"], &data, &dir);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let dir_name = dir.file_name().unwrap().to_string_lossy().to_string();
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!("run as project \"{name}\""))
            && first.contains(&format!("names this project \"{dir_name}\""))
            && first.contains(&format!("COMPOSE_PROJECT_NAME={name}")),
        "{out}"
    );
    std::fs::write(dir.join(".env"), format!("{env}DB_VERSION=2\n")).unwrap();

    let o = berth(&name, &["plan"], &data, &dir);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(!out.contains("warning:"), "{out}");
    assert!(
        !out.contains("create volume"),
        "the running volume is used:\n{out}"
    );
    assert!(
        out.contains("stop-first (mounts named volume pgdata read-write"),
        "{out}"
    );
    // Per container: what becomes of it, and why.
    for line in [
        format!("{name}/db  {compose_db}: recreated: environment DB_VERSION: another value"),
        format!("{name}/app  {compose_app}: adopted"),
        format!("{name}/migrate  {compose_migrate}: job done"),
    ] {
        assert!(out.contains(&line), "{line}\n{out}");
    }

    // Bounded: the app answers within 20 s of compose's up.
    for _ in 0..100 {
        if answered() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(answered(), "the app answers before the handover");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_running_dbs(&name, stop.clone());
    let app_sampler = sample_app(stop.clone());
    let o = berth(&name, &["apply", "--timeout", "120s"], &data, &dir);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let app_samples = app_sampler.join().unwrap();
    // The app is adopted: it answers through the whole handover (the db's swap included).
    assert!(
        !app_samples.is_empty() && app_samples.iter().all(|&ok| ok),
        "the app stopped answering: {} of {} requests failed",
        app_samples.iter().filter(|&&ok| !ok).count(),
        app_samples.len()
    );
    let out = text(&o);
    assert!(o.status.success(), "apply failed:\n{out}");
    assert!(out.contains("taking over from docker compose"), "{out}");
    assert!(samples.contains(&1), "the sampler saw the db: {samples:?}");
    assert!(
        samples.iter().all(|&n| n <= 1),
        "two db containers ran at once: {samples:?}\n{out}"
    );

    // The unchanged containers are the same ones; the job ran once, under compose.
    assert_eq!(inspect(&app_id, "{{.State.Running}}"), "true", "app kept");
    assert_eq!(inspect(&migrate_id, "{{.State.ExitCode}}"), "0", "job kept");
    let berth_db = format!("{name}-db-1");
    assert_eq!(
        docker(&["exec", &berth_db, "cat", "/data/migrations"]).trim(),
        "ran",
        "the migration ran once"
    );
    // A second apply (records read again) leaves them alone.
    let o = berth(&name, &["apply", "--timeout", "60s"], &data, &dir);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(inspect(&app_id, "{{.State.Running}}"), "true", "app kept");
    assert_eq!(
        docker(&["exec", &berth_db, "cat", "/data/migrations"]).trim(),
        "ran",
        "the migration is not run again"
    );
    assert_eq!(
        inspect(&berth_db, "{{index .Config.Labels \"berth.managed\"}}"),
        "true"
    );
    assert_eq!(
        docker(&["exec", &berth_db, "cat", "/data/marker"]).trim(),
        "before-handover",
        "the same volume"
    );
    assert_eq!(
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={name}")
        ])
        .split_whitespace()
        .collect::<Vec<_>>(),
        [format!("{name}_pgdata")],
        "no second volume"
    );
}

#[test]
fn network_addressing_port_ranges_and_security_options_reach_the_engine() {
    require_engine();
    ensure_images();
    let name = format!("compose15net{}", std::process::id());
    let _guard = Guard { name: name.clone() };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(&name);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    // A subnet from the 10/8 private range unlikely to be taken; the port range is above the
    // ephemeral ports other tests bind.
    let third = std::process::id() % 200 + 20;
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: berth-test-busybox:1\n    command: {LOOP}\n    \
             runtime: runc\n    security_opt: ['no-new-privileges:true']\n    \
             ports: ['127.0.0.1:41000-41020:80']\n    \
             networks:\n      back: {{ipv4_address: 10.231.{third}.10}}\n\
             networks:\n  back:\n    attachable: true\n    ipam:\n      \
             config: [{{subnet: 10.231.{third}.0/24, gateway: 10.231.{third}.1}}]\n"
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("validate")
        .arg(&dir)
        .output()
        .expect("run berth validate");
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(!out.contains("not yet applied"), "{out}");
    let o = berth(&name, &["apply", "--timeout", "60s"], &data, &dir);
    let out = text(&o);
    assert!(o.status.success(), "apply failed:\n{out}");
    let net = format!("{name}_back");
    assert_eq!(
        inspect(
            &net,
            "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Attachable}}"
        ),
        format!("10.231.{third}.0/24 10.231.{third}.1 true")
    );
    let web = format!("{name}-web-1");
    assert_eq!(
        inspect(
            &web,
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}")
        ),
        format!("10.231.{third}.10")
    );
    assert_eq!(
        inspect(&web, "{{.HostConfig.Runtime}} {{.HostConfig.SecurityOpt}}"),
        "runc [no-new-privileges:true]"
    );
    let bound: u16 = inspect(
        &web,
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
    )
    .parse()
    .expect("a bound host port");
    assert!((41000..=41020).contains(&bound), "{bound}");
}
