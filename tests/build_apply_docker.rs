//! `build:` end to end on the real engine (issue 8): `berth apply` builds a build-only
//! service and deploys it; nothing is rebuilt when nothing changed or only an ignored file
//! changed; a changed file is a new revision rolled out; a broken Dockerfile stops nothing.
//! Offline: `FROM scratch` plus Debian's static busybox copied into the context. The guard
//! removes the project's containers (TestProject) and then its `berth-build/<project>/*` images.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::PathBuf;
use std::process::Command;

use support::world::{BerthProcess, TestProject, docker, free_port, version, wait_until};

/// Removes the test's built images after its containers are gone (declare it first).
struct BuiltImages(String);

impl Drop for BuiltImages {
    fn drop(&mut self) {
        let tags = docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("berth-build/{}/*", self.0),
        ]);
        for t in tags.split_whitespace() {
            docker(&["rmi", "-f", t]);
        }
    }
}

fn apply(p: &TestProject, timeout: &str) -> (i32, String) {
    let data: PathBuf = p.dir.parent().unwrap().join("data");
    let o = p
        .berth()
        .args(["apply", "--timeout", timeout, "--data-dir"])
        .arg(&data)
        .arg(&p.dir)
        .output()
        .expect("run berth apply");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn write(p: &TestProject, rel: &str, text: &str) {
    let f = p.dir.join(rel);
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, text).unwrap();
}

/// The test app's Dockerfile, its layers the project's own: a `LABEL` naming the project comes
/// right after `FROM`. Identical steps would share the engine's build cache with the tests
/// running beside it, whose clean-up (`docker rmi`, which also deletes untagged parents) could
/// delete a cached layer in the middle of this test's build ("unknown parent image ID").
fn dockerfile(p: &TestProject) -> String {
    format!(
        "FROM scratch\nLABEL berthtest.cache=\"{}\"\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        p.name
    )
}

/// A Dockerfile whose build fails (`COPY` of a file that is not there), layers as above.
fn broken_dockerfile(p: &TestProject) -> String {
    format!(
        "FROM scratch\nLABEL berthtest.cache=\"{}\"\nCOPY busybox /bin/busybox\nCOPY missing-file /x\n",
        p.name
    )
}

#[test]
fn build_only_service_builds_deploys_and_rebuilds_only_on_change() {
    let port = free_port();
    let yaml = format!(
        "services:\n  web:\n    build:\n      context: app\n      labels:\n        \
         berthtest.build: \"{{name}}\"\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
    );
    let p = TestProject::new("bld", &yaml);
    let _images = BuiltImages(p.name.clone());
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::copy("/bin/busybox", p.dir.join("app/busybox")).unwrap();
    write(&p, "app/Dockerfile", &dockerfile(&p));
    write(&p, "app/.dockerignore", "*.log\n");
    write(&p, "app/www/version", "v1\n");
    write(&p, "app/notes.log", "a");

    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 0, "{out}");
    let built = format!("build berth-build/{}/web:", p.name);
    assert!(out.contains(&built), "first build shown:\n{out}");
    assert!(out.contains("first build of this service's image"), "{out}");
    assert_eq!(version(port), "v1");

    let (code, out) = apply(&p, "60s");
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains(&built),
        "nothing changed, nothing built:\n{out}"
    );

    write(&p, "app/notes.log", "b");
    let (code, out) = apply(&p, "60s");
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains(&built),
        "only an ignored file changed:\n{out}"
    );

    write(&p, "app/www/version", "v2\n");
    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&built), "changed file, new build:\n{out}");
    assert!(out.contains("build context changed since r1"), "{out}");
    assert_eq!(version(port), "v2");

    write(&p, "app/Dockerfile", &broken_dockerfile(&p));
    let (code, out) = apply(&p, "20s");
    assert_ne!(code, 0, "a failed build fails the apply:\n{out}");
    assert!(out.contains("Dockerfile changed since r2"), "{out}");
    assert!(
        out.contains("rollout_failed: r3") && out.contains("image build failed"),
        "the failure is an event:\n{out}"
    );
    assert!(
        out.contains("last log lines:") && out.contains(": COPY missing-file /x"),
        "the event carries the build's last lines:\n{out}"
    );
    assert_eq!(version(port), "v2", "nothing stopped");

    // The failed revision is quarantined: status says so with the build's lines, and the
    // next apply does not build it again.
    let status = status(&p);
    assert!(
        status.contains("Reverted") && status.contains("r3 failed: image build failed"),
        "{status}"
    );
    assert!(
        status.contains("last build output:") && status.contains("COPY missing-file /x"),
        "{status}"
    );
    let (_, out) = apply(&p, "20s");
    assert!(
        !out.contains(&built),
        "a quarantined build is not retried:\n{out}"
    );
    assert_eq!(version(port), "v2");
    let running = docker(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={}", p.name),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(running.split_whitespace().count(), 1, "{running}");
}

#[test]
fn a_built_image_that_never_gets_ready_is_reverted_to_the_previous_build() {
    let port = free_port();
    let yaml = format!(
        "services:\n  web:\n    build: app\n    ports: [\"127.0.0.1:{port}:8080\"]\n    \
         x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      \
         min_ready: 1s\n      progress_deadline: 15s\n"
    );
    let p = TestProject::new("bldrev", &yaml);
    let _images = BuiltImages(p.name.clone());
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::copy("/bin/busybox", p.dir.join("app/busybox")).unwrap();
    write(&p, "app/Dockerfile", &dockerfile(&p));
    write(&p, "app/www/version", "v1\n");
    write(&p, "app/www/health", "ok\n");
    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 0, "{out}");
    assert_eq!(version(port), "v1");
    let v1_image = running_image(&p);

    // The next build has no /health: never ready, reverted to the v1 build.
    write(&p, "app/www/version", "v2\n");
    std::fs::remove_file(p.dir.join("app/www/health")).unwrap();
    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("rollout_failed"), "{out}");
    assert_eq!(version(port), "v1", "{out}");
    assert_eq!(running_image(&p), v1_image, "the v1 build runs again");
}

/// `berth status DIR` without a controller (engine + data dir).
fn status(p: &TestProject) -> String {
    let data: PathBuf = p.dir.parent().unwrap().join("data");
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["status", "--data-dir"])
        .arg(&data)
        .arg(&p.dir)
        .output()
        .expect("run berth status");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn running_image(p: &TestProject) -> String {
    docker(&["inspect", "-f", "{{.Image}}", &format!("{}-web-1", p.name)])
        .trim()
        .to_string()
}

#[test]
fn built_images_and_pins_of_a_service_that_left_the_desired_state_are_removed() {
    let port = free_port();
    let other = "  other:\n    image: berth-test-busybox:1\n    command: [sleep, '3600']\n    \
                 network_mode: none\n    stop_signal: SIGKILL\n";
    // The label makes the images this test's own: identical builds elsewhere would share
    // their image IDs (the engine's build cache), and those must not count here.
    let yaml = format!(
        "services:\n  web:\n    build:\n      context: app\n      labels:\n        \
         berthtest.build: \"{{name}}\"\n    ports: [\"127.0.0.1:{port}:8080\"]\n{other}"
    );
    let p = TestProject::new("bldgc", &yaml);
    let _images = BuiltImages(p.name.clone());
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::copy("/bin/busybox", p.dir.join("app/busybox")).unwrap();
    write(&p, "app/Dockerfile", &dockerfile(&p));
    write(&p, "app/www/version", "v1\n");
    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 0, "{out}");
    write(&p, "app/www/version", "v2\n");
    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 0, "{out}");
    assert_eq!(version(port), "v2");
    let built = |p: &TestProject| {
        docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("berth-build/{}/*", p.name),
        ])
    };
    assert_eq!(built(&p).split_whitespace().count(), 2, "{}", built(&p));
    let ids: Vec<String> = built(&p)
        .split_whitespace()
        .map(|r| {
            docker(&["image", "inspect", "-f", "{{.Id}}", r])
                .trim()
                .to_string()
        })
        .collect();

    // web leaves the project: its container goes, then its pins and built images.
    write(&p, "compose.yaml", &format!("services:\n{other}"));
    let (code, out) = apply(&p, "60s");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("remove image berth-build/"), "{out}");
    assert_eq!(built(&p).trim(), "", "built images removed:\n{out}");
    let pins = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=berth-pin.{}.web", p.name),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(pins.trim(), "", "pin containers removed");
    for id in ids {
        let gone = Command::new("docker")
            .args(["image", "inspect", &id])
            .output()
            .unwrap();
        assert!(
            !gone.status.success(),
            "image {id} deleted, not only untagged"
        );
    }
}

#[test]
fn a_dockerfile_beside_the_context_is_built() {
    let port = free_port();
    let yaml = format!(
        "services:\n  web:\n    build: {{context: app, dockerfile: ../web.Dockerfile}}\n    \
         ports: [\"127.0.0.1:{port}:8080\"]\n"
    );
    let p = TestProject::new("bldbeside", &yaml);
    let _images = BuiltImages(p.name.clone());
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::copy("/bin/busybox", p.dir.join("app/busybox")).unwrap();
    write(&p, "web.Dockerfile", &dockerfile(&p));
    write(&p, "app/www/version", "beside\n");
    let (code, out) = apply(&p, "120s");
    assert_eq!(code, 0, "{out}");
    assert_eq!(version(port), "beside");
}

#[test]
fn the_controller_quarantines_a_failed_build_and_builds_the_fix() {
    use std::time::Duration;
    let port = free_port();
    let listen = free_port();
    let yaml = format!(
        "services:\n  web:\n    build:\n      context: app\n      labels:\n        \
         berthtest.build: \"{{name}}\"\n    ports: [\"127.0.0.1:{port}:8080\"]\n    \
         x-berth: {{min_ready: 0s}}\n"
    );
    let p = TestProject::new("bldrun", &yaml);
    let _images = BuiltImages(p.name.clone());
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    std::fs::copy("/bin/busybox", p.dir.join("app/busybox")).unwrap();
    write(&p, "app/Dockerfile", &dockerfile(&p));
    write(&p, "app/www/version", "v1\n");
    let data: PathBuf = p.dir.parent().unwrap().join("data");
    let listen_at = format!("127.0.0.1:{listen}");
    let run = BerthProcess::spawn(
        &p,
        [
            "run",
            "--resync",
            "1s",
            "--listen",
            &listen_at,
            "--dir",
            p.dir.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    wait_until("v1 to serve", Duration::from_secs(90), || {
        version(port) == "v1"
    });

    // Break the build: the controller builds it once, quarantines it and keeps v1.
    let mark = run.lines();
    write(&p, "app/Dockerfile", &broken_dockerfile(&p));
    wait_until("the reverted event", Duration::from_secs(60), || {
        !run.since(mark, "reverted: r2 failed (image build failed")
            .is_empty()
    });
    // Several resyncs later: still one build of it, and v1 serves.
    std::thread::sleep(Duration::from_secs(4));
    let plans: Vec<String> = run
        .since(mark, "plan: ")
        .into_iter()
        .filter(|l| l.contains(" build berth-build/"))
        .collect();
    assert_eq!(plans.len(), 1, "built once, not retried: {plans:#?}");
    assert_eq!(version(port), "v1");
    let status = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["status", "--server", &format!("http://127.0.0.1:{listen}")])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("Reverted") && status.contains("last build output:"),
        "{status}"
    );
    let events = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["events", "--server", &format!("http://127.0.0.1:{listen}")])
        .output()
        .unwrap();
    let events = String::from_utf8_lossy(&events.stdout);
    assert!(
        events.contains("rollout_failed r2 (build_failed): r2")
            && events.contains(" : COPY missing-file /x\n"),
        "the event carries the build's last lines:\n{events}"
    );

    // The fix is a new revision: built and rolled out.
    write(&p, "app/Dockerfile", &dockerfile(&p));
    write(&p, "app/www/version", "v3\n");
    wait_until("v3 to serve", Duration::from_secs(90), || {
        version(port) == "v3"
    });
}
