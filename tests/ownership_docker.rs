//! Ownership on the real engine (issue 14 item 5): containers with a managed project's
//! compose labels that berth did not create — a replica beyond `replicas`, a service the file
//! does not have, both made with `docker run` — are reported and never stopped or removed.
//!
//! Each test has its own project (a name containing `own`, carrying the label `berth-test=own`),
//! a guard that removes everything the project created, and bounded commands. No `--prune`
//! here: on a shared engine it would remove other projects' containers.

mod support {
    pub mod tier;
    pub mod world;
}

use std::process::{Command, Output};

use support::world::{TestProject, docker};

fn berth(p: &TestProject, args: &[&str]) -> Output {
    let data = p.dir.parent().unwrap().join("data");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
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
