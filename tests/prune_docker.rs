//! `berth prune PROJECT` against the real engine (issue 17, item 6): it shows what it will
//! remove and, off a terminal, removes nothing without `--yes`; a project still desired is
//! refused; with `--yes` one project's containers, network, pin and records go while another
//! project runs on; its named volume stays until `--volumes`.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::Path;
use std::process::{Output, Stdio};

use support::world::{TestProject, docker};

fn project(tag: &str, volume: bool) -> TestProject {
    let (mount, top) = if volume {
        ("    volumes: ['data:/data']\n", "volumes:\n  data: {}\n")
    } else {
        ("", "")
    };
    TestProject::new(
        tag,
        &format!(
            "services:\n  web:\n    image: berth-test-busybox:1\n    command: [sleep, '3600']\n    stop_grace_period: 1s\n    x-berth: {{min_ready: 1s}}\n{mount}{top}"
        ),
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `berth ARGS --data-dir DATA` with no standard input (not a terminal).
fn berth(p: &TestProject, data: &Path, args: &[&str]) -> Output {
    p.berth()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Names of `kind` (network, volume) labelled with compose project `name`.
fn objects(kind: &str, name: &str) -> Vec<String> {
    let filter = format!("label=com.docker.compose.project={name}");
    let out = docker(&[kind, "ls", "-q", "--filter", &filter]);
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn prune_shows_first_needs_yes_and_removes_one_project_but_its_volume() {
    let gone = project("h17cprunea", true);
    let stays = project("h17cpruneb", false);
    let data_tmp = tempfile::tempdir().unwrap();
    let data = data_tmp.path();
    for p in [&gone, &stays] {
        let out = berth(
            &gone,
            data,
            &["apply", "--timeout", "60s", &p.dir.display().to_string()],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let web = format!("{}-web-1", gone.name);
    assert_eq!(gone.states(), ["web-1=running"]);
    let volume = format!("{}_data", gone.name);
    assert_eq!(objects("volume", &gone.name), [volume.clone()]);
    assert_eq!(objects("network", &gone.name).len(), 1);
    let desired = stays.dir.display().to_string();

    // Off a terminal without --yes: the preview, then nothing done.
    let out = berth(&gone, data, &["prune", &gone.name, &desired]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.starts_with(&format!(
            "berth prune {g} removes:\n  containers {web}\n  networks   {g}_default\n",
            g = gone.name
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("  records    web\n  kept       volumes {volume} (--volumes removes them and their data)\n")),
        "{shown}"
    );
    assert!(
        shown.contains("standard input is not a terminal: pass --yes to remove these"),
        "{shown}"
    );
    assert_eq!(gone.states(), ["web-1=running"], "nothing removed");

    // A project still in the desired state is refused.
    let out = berth(&gone, data, &["prune", &stays.name, &desired, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("it is still in the desired state"),
        "{}",
        text(&out)
    );
    assert_eq!(stays.states(), ["web-1=running"]);

    // --yes: the project goes, its volume stays, the other project runs on.
    let out = berth(&gone, data, &["prune", &gone.name, &desired, "--yes"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains(&format!("stop {web}")), "{shown}");
    assert!(
        shown.contains(&format!("Pruned {}: ", gone.name))
            && shown.contains("1 record(s) forgotten"),
        "{shown}"
    );
    assert!(gone.containers().is_empty(), "{:?}", gone.containers());
    assert!(objects("network", &gone.name).is_empty());
    assert_eq!(objects("volume", &gone.name), [volume.clone()], "kept");
    let pins = docker(&["images", "-q", &format!("berth-pin/{}/*", gone.name)]);
    assert!(pins.trim().is_empty(), "pins left: {pins}");
    assert!(!data.join("state").join(&gone.name).exists());
    assert_eq!(stays.states(), ["web-1=running"]);

    // --volumes: the volume, which is all that is left of it, goes too.
    let out = berth(
        &gone,
        data,
        &["prune", &gone.name, &desired, "--yes", "--volumes"],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("remove volume {volume}")),
        "{shown}"
    );
    assert!(objects("volume", &gone.name).is_empty());
    assert_eq!(stays.states(), ["web-1=running"]);
}
