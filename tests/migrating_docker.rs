//! Walks docs/migrating.md on the real engine (issue 15), as ship_getting_started_docker.rs
//! walks the getting-started guide: every block marked `<!-- walk: NAME -->` is taken from the
//! guide itself and run with bash in the guide's order, with the guide's paths and project name
//! replaced by the test's, `sudo` dropped and `docker compose` spelled `docker-compose` (1.29
//! here). A stack docker-compose started under a project name that is not its directory's
//! (`-p`, as a deploy script does) is found (`find`), named in `.env` (`name`), planned with
//! every container adopted and the job already done (`plan`), handed over with the same
//! container IDs (`handover`), and given back to compose on the same volume (`back`). Step 3
//! (the env dir, edited with `sudoedit`) is not walked: the test writes the env file itself.
//!
//! The project is named `migrate15…`; a guard removes its containers, pins, networks and
//! volumes whatever the outcome. Waits are bounded; traffic to 127.0.0.1 only.

mod support {
    pub mod tier;
    pub mod walk;
    pub mod world;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::tier::{require_engine, require_tool};
use support::walk::walked_blocks;
use support::world::{docker, ensure_images, free_port, http_get, inspect, remove_project};

const GUIDE: &str = include_str!("../docs/migrating.md");

/// Loops until SIGTERM, so a stop takes about a second, not the grace period.
const LOOP: &str = "[sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 1; done']";

/// Serves `ok` on port 80 until SIGTERM.
const HTTPD: &str =
    "[sh, -c, 'mkdir -p /www; echo ok > /www/index.html; exec busybox httpd -f -p 80 -h /www']";

/// Removes the project (containers, pins, networks, volumes) and the engine claim of its
/// berths whatever the outcome.
struct Guard {
    name: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        remove_project(&self.name);
        docker(&["rm", "-f", &claim(&self.name)]);
    }
}

/// The engine claim's container name for the berths of project `name`.
fn claim(name: &str) -> String {
    format!("berth-claim.{name}")
}

/// The test's stand-ins for the guide's host.
struct Host {
    /// The compose project's name (the guide's `shop-prod`).
    name: String,
    /// The engine claim for the guide's berths.
    claim: String,
    state: PathBuf,
    etc: PathBuf,
    data: PathBuf,
    home: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Host {
    fn new(name: &str) -> Host {
        let tmp = tempfile::tempdir().unwrap();
        let p = |s: &str| tmp.path().join(s);
        Host {
            name: name.to_string(),
            claim: claim(name),
            state: p("srv-berth"),
            etc: p("etc-berth"),
            data: p("var-lib-berth"),
            home: p("home"),
            _tmp: tmp,
        }
    }

    /// The project's directory under the state directory (the guide's `/srv/berth/shop`).
    fn project_dir(&self) -> PathBuf {
        self.state.join("shop")
    }

    /// The guide's text with the host's names replaced by the test's.
    fn localize(&self, script: &str) -> String {
        script
            .replace("sudo ", "")
            .replace("docker compose", "docker-compose")
            .replace("shop-prod", &self.name)
            .replace("/srv/berth", &self.state.display().to_string())
            .replace("/etc/berth", &self.etc.display().to_string())
            .replace("/var/lib/berth", &self.data.display().to_string())
            .replace("~/", &format!("{}/", self.home.display()))
    }

    /// Runs a walked block; it must exit 0. Returns its output.
    fn walk(&self, blocks: &BTreeMap<String, String>, name: &str) -> String {
        let block = blocks
            .get(name)
            .unwrap_or_else(|| panic!("docs/migrating.md has no `<!-- walk: {name} -->` block"));
        let script = self.localize(block);
        let bin = Path::new(env!("CARGO_BIN_EXE_berth")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("PATH", path)
            .env(berth::engine::claim::CLAIM_ENV, &self.claim)
            .env_remove("DOCKER_HOST")
            .env_remove("COMPOSE_PROJECT_NAME")
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        let all = text(&out);
        assert!(
            out.status.success(),
            "guide block `{name}` failed:\n{script}\n---\n{all}"
        );
        all
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether the app answers on its published port.
fn answers(port: u16) -> bool {
    http_get(port, "/", 2_000).is_some_and(|(code, body)| code == 200 && body.trim() == "ok")
}

#[test]
fn the_migration_guide_works_as_written() {
    require_engine();
    require_tool("docker-compose", "docker-compose");
    ensure_images();
    let blocks = walked_blocks(GUIDE, "docs/migrating.md");
    let order: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        order,
        ["find", "name", "plan", "handover", "back"],
        "the walked blocks of docs/migrating.md changed: update this test"
    );
    let blocks: BTreeMap<String, String> = blocks.into_iter().collect();
    let name = format!("migrate15{}", std::process::id());
    let _guard = Guard { name: name.clone() };
    let host = Host::new(&name);
    let dir = host.project_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(host.etc.join("env")).unwrap();
    std::fs::create_dir_all(&host.home).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  db:\n    image: berth-test-busybox:1\n    command: {LOOP}\n    \
             volumes: ['pgdata:/data']\n  migrate:\n    image: berth-test-busybox:1\n    \
             command: [sh, -c, 'echo ran >> /data/migrations']\n    restart: 'no'\n    \
             volumes: ['pgdata:/data']\n    depends_on: [db]\n  app:\n    \
             image: berth-test-busybox:1\n    command: {HTTPD}\n    ports: ['127.0.0.1:{port}:80']\n    \
             depends_on:\n      \
             migrate: {{condition: service_completed_successfully}}\nvolumes:\n  pgdata: {{}}\n"
        ),
    )
    .unwrap();
    // Step 3, written by the test: the project's host env file (nothing in it changes a spec).
    std::fs::write(
        host.etc.join("env").join(format!("{name}.env")),
        "POSTGRES_PASSWORD=not-in-the-repo\n",
    )
    .unwrap();

    // What the guide starts from: a deploy script's `docker compose -p shop-prod up -d`.
    let up = Command::new("docker-compose")
        .args(["-p", &name, "up", "-d"])
        .current_dir(&dir)
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .expect("run docker-compose");
    assert!(up.status.success(), "docker-compose up:\n{}", text(&up));
    let compose_db = format!("{name}_db_1");
    let compose_app = format!("{name}_app_1");
    let compose_migrate = format!("{name}_migrate_1");
    assert_eq!(inspect(&compose_migrate, "{{.State.ExitCode}}"), "0");
    let ids =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| inspect(n, "{{.Id}}")).collect() };
    let before = ids(&[&compose_db, &compose_app, &compose_migrate]);
    docker(&[
        "exec",
        &compose_db,
        "sh",
        "-c",
        "echo before-handover > /data/marker",
    ]);

    // ---- 1. what compose runs ----------------------------------------------------------
    let out = host.walk(&blocks, "find");
    let found = format!("{compose_app}\t{name}\t{}", dir.display());
    assert!(out.contains(&found), "no `{found}` in:\n{out}");
    assert!(out.contains(&format!("{name}_pgdata")), "{out}");

    // ---- 2. the project name -----------------------------------------------------------
    host.walk(&blocks, "name");
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert_eq!(env, format!("COMPOSE_PROJECT_NAME={name}\n"));

    // ---- 6. the plan, then the handover ------------------------------------------------
    let out = host.walk(&blocks, "plan");
    assert!(
        !out.contains("warning:"),
        "the project name is right:\n{out}"
    );
    assert!(!out.contains("create volume"), "{out}");
    assert!(!out.contains("create network"), "{out}");
    assert!(
        !out.contains("not-in-the-repo"),
        "a host env value in the plan:\n{out}"
    );
    for (service, container, verdict) in [
        ("db", &compose_db, "adopted"),
        ("app", &compose_app, "adopted"),
        ("migrate", &compose_migrate, "job done"),
    ] {
        let line = format!("{name}/{service}  {container}: {verdict}");
        assert!(out.contains(&line), "no `{line}` in:\n{out}");
    }
    assert_eq!(
        ids(&[&compose_db, &compose_app, &compose_migrate]),
        before,
        "plan changed something"
    );

    let out = host.walk(&blocks, "handover");
    assert!(
        out.contains(&format!("{name}/app")),
        "status after the handover:\n{out}"
    );
    // Adopted in place: the same containers (perhaps renamed to berth's names), still running.
    for id in &before[..2] {
        assert_eq!(inspect(id, "{{.State.Running}}"), "true", "{out}");
    }
    let runs = docker(&["exec", &before[0], "cat", "/data/migrations"]);
    assert_eq!(runs.lines().count(), 1, "the migration ran again:\n{runs}");
    assert!(answers(port), "the app does not answer after the handover");

    // ---- going back to compose ---------------------------------------------------------
    host.walk(&blocks, "back");
    assert!(!dir.exists(), "the project is still in the state directory");
    assert_eq!(inspect(&compose_db, "{{.State.Running}}"), "true");
    assert_ne!(
        inspect(&compose_db, "{{.Id}}"),
        before[0],
        "compose made a new db"
    );
    let marker = docker(&["exec", &compose_db, "cat", "/data/marker"]);
    assert_eq!(
        marker.trim(),
        "before-handover",
        "the volume did not survive"
    );
    let adopted = docker(&["ps", "-aq", "--filter", &format!("id={}", before[1])]);
    assert!(
        adopted.trim().is_empty(),
        "compose down left berth's app container"
    );
    let mut answered = false;
    for _ in 0..50 {
        if answers(port) {
            answered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        answered,
        "compose's app does not answer on {port} within 10 s"
    );
}
