//! Ownership on the real engine (issue 14 items 5 and 6): containers with a managed project's
//! compose labels that berth did not create — a replica beyond `replicas`, a service the file
//! does not have, both made with `docker run` — are reported and never stopped or removed; and
//! `--prune` removes the networks berth created for a pruned project, never a volume or a
//! network berth did not create.
//!
//! Each test has its own project (a name containing `own`, carrying the label `berth-test=own`)
//! and a guard that removes everything it created; every wait is bounded. `--prune` runs only
//! against a private dockerd the test starts in its own network namespace: on the shared
//! engine it would remove other projects' containers.

mod support {
    pub mod dockerd;
    pub mod tier;
    pub mod world;
}

use std::process::{Command, Output};

use support::dockerd::Dockerd;
use support::world::{TestProject, docker};

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

/// `docker run -d` of a long sleeper with only compose's labels for `project/service` #`n`.
fn by_hand(project: &str, service: &str, n: u32) -> String {
    let name = format!("{project}-{service}-{n}");
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "berth-test=own",
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--label",
        &format!("com.docker.compose.service={service}"),
        "--label",
        &format!("com.docker.compose.container-number={n}"),
        "--label",
        "com.docker.compose.oneoff=False",
        "berth-test-busybox:1",
        "sleep",
        "600",
    ]);
    assert!(!id.trim().is_empty(), "docker run {name} failed");
    name
}

#[test]
fn containers_made_by_hand_beyond_the_desired_ones_are_left_alone() {
    support::tier::require_engine();
    let p = TestProject::new(
        "own",
        "services:\n  web:\n    image: berth-test-busybox:1\n    labels: {berth-test: own}\n",
    );
    let o = berth(&p, &["apply"]);
    assert!(o.status.success(), "{}", text(&o));
    let extra = by_hand(&p.name, "web", 2);
    let debug = by_hand(&p.name, "debug", 1);

    let plan = berth(&p, &["plan"]);
    let out = text(&plan);
    for name in [&extra, &debug] {
        assert!(
            out.lines()
                .any(|l| l.contains("not berth's") && l.contains(name.as_str())),
            "plan reports {name}:\n{out}"
        );
    }
    assert!(
        !out.lines()
            .any(|l| (l.contains("stop ") || l.contains("remove ")) && l.contains(&p.name)),
        "nothing of the project is stopped or removed:\n{out}"
    );
    for _ in 0..2 {
        let o = berth(&p, &["apply"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("not berth's"), "{}", text(&o));
    }
    assert_eq!(
        p.states(),
        ["debug-1=running", "web-1=running", "web-2=running"],
        "berth's replica runs, the two made by hand were not touched"
    );
}

/// Networks of the private engine other than Docker's own.
fn networks(d: &Dockerd) -> Vec<String> {
    let mut n: Vec<String> = d
        .cli(&["network", "ls", "--format", "{{.Name}}"])
        .unwrap_or_default()
        .split_whitespace()
        .filter(|n| !matches!(*n, "bridge" | "host" | "none"))
        .map(str::to_string)
        .collect();
    n.sort();
    n
}

/// Issue 14 item 6: `--prune` removed a pruned project's containers but left the networks
/// berth had created for it. Now they go too, once the containers are gone; a network of the
/// project that berth did not create and the project's volume stay.
#[test]
fn prune_removes_the_networks_berth_created_and_keeps_the_rest() {
    support::world::ensure_images();
    let d = Dockerd::start().expect("a private dockerd");
    // The image, from the machine's engine (the private one has no way out).
    d.load_image("berth-test-busybox:1");
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let project = |name: &str, yaml: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        dir
    };
    let shop = project(
        "own14shop",
        "services:\n  web:\n    image: berth-test-busybox:1\n    networks: [front, default]\n    volumes: ['data:/d']\nnetworks:\n  front: {}\nvolumes:\n  data: {}\n",
    );
    let other = project(
        "own14other",
        "services:\n  x:\n    image: berth-test-busybox:1\n",
    );
    let apply = |dir: &std::path::Path, prune: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["apply", "--timeout", "60s", "--docker-host", &d.host()]);
        if prune {
            cmd.arg("--prune");
        }
        cmd.arg("--data-dir").arg(&data).arg(dir);
        let o = cmd.output().expect("run berth");
        assert!(o.status.success(), "apply {}:\n{}", dir.display(), text(&o));
        text(&o)
    };
    apply(&shop, false);
    d.docker(&[
        "network",
        "create",
        "--label",
        "com.docker.compose.project=own14shop",
        "own14shop_theirs",
    ]);
    assert_eq!(
        networks(&d),
        ["own14shop_default", "own14shop_front", "own14shop_theirs"]
    );
    apply(&other, false);
    assert_eq!(
        networks(&d).len(),
        4,
        "without --prune nothing of shop goes"
    );
    let out = apply(&other, true);
    assert!(out.contains("remove network own14shop_front"), "{out}");
    assert_eq!(
        networks(&d),
        ["own14other_default", "own14shop_theirs"],
        "{out}"
    );
    let shop_containers = d.docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.project=own14shop",
    ]);
    assert!(shop_containers.trim().is_empty(), "{shop_containers}");
    assert_eq!(
        d.docker(&["volume", "ls", "--format", "{{.Name}}"]).trim(),
        "own14shop_data",
        "volumes are never removed"
    );
}
