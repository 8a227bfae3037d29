//! `build:` revert and context escape on the real engine (issue 8): a built revision that never
//! gets ready is reverted to the previous *build* although its build tag was removed, its kept
//! container removed and `docker image prune -a` run — only berth's pin holds that image, and
//! the revert recreates the container from its template; a build context that escapes the
//! desired-state root (`../elsewhere`, or a symlink pointing out) is refused with a positioned
//! error and nothing running changes.
//!
//! Offline: `FROM scratch` plus Debian's static busybox copied into the context. Every image a
//! test builds carries the build label `berthtest.owner=<project>`, so its prunes hit only its
//! own images. The guard removes the project's containers, its pin containers, its
//! `berth-build/<project>/*` and `berth-pin/<project>/*` tags and its labelled images.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use support::world::{TestProject, docker, free_port, inspect, version, wait_until};

/// A project plus everything berth builds and pins for it, removed on drop: containers first,
/// then the images they held.
struct World {
    p: TestProject,
}

impl World {
    fn new(tag: &str, yaml: &str) -> World {
        World {
            p: TestProject::new(tag, yaml),
        }
    }

    /// The build label that only this test's images carry.
    fn label(&self) -> String {
        format!("berthtest.owner={}", self.p.name)
    }

    fn data_dir(&self) -> PathBuf {
        self.p.dir.parent().unwrap().join("data")
    }

    /// The canonical name of replica 1 of `web`.
    fn web(&self) -> String {
        format!("{}-web-1", self.p.name)
    }

    /// A context under the project directory: the static busybox, a Dockerfile serving `/www`
    /// with busybox httpd, `www/version` = `version` and, when `healthy`, `www/health`.
    fn context(&self, rel: &str, version: &str, healthy: bool) {
        context_at(&self.p.dir.join(rel), &self.p.name, version, healthy);
    }

    fn berth(&self, args: &[&str]) -> Command {
        let mut cmd = self.p.berth();
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg(&self.p.dir);
        cmd
    }

    /// `berth apply`: (exit code, stdout + stderr).
    fn apply(&self, timeout: &str) -> (i32, String) {
        result(
            &self
                .berth(&["apply", "--timeout", timeout])
                .output()
                .expect("run berth apply"),
        )
    }

    /// `berth validate`: (exit code, stdout + stderr).
    fn validate(&self) -> (i32, String) {
        result(
            &Command::new(env!("CARGO_BIN_EXE_berth"))
                .arg("validate")
                .arg(&self.p.dir)
                .output()
                .expect("run berth validate"),
        )
    }

    /// The project's `berth-build/<project>/*` tags, sorted.
    fn build_tags(&self) -> Vec<String> {
        let out = docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("berth-build/{}/*", self.p.name),
        ]);
        let mut v: Vec<String> = out.split_whitespace().map(String::from).collect();
        v.sort();
        v
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let name = &self.p.name;
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={name}"),
        ]);
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
        let pins = docker(&["ps", "-a", "--format", "{{.Names}}"]);
        let prefix = format!("berth-pin.{name}.");
        for n in pins.split_whitespace().filter(|n| n.starts_with(&prefix)) {
            docker(&["rm", "-f", n]);
        }
        for repo in ["berth-build", "berth-pin"] {
            let tags = docker(&[
                "images",
                "--format",
                "{{.Repository}}:{{.Tag}}",
                &format!("{repo}/{name}/*"),
            ]);
            for t in tags.split_whitespace() {
                docker(&["rmi", t]);
            }
        }
        // Untagged leftovers (a build tag removed by the test, say): only this test's images.
        docker(&[
            "image",
            "prune",
            "-a",
            "-f",
            "--filter",
            &format!("label={}", self.label()),
        ]);
    }
}

/// A berth running in the background, killed if the test ends before it does.
struct Running(Option<Child>);

impl Running {
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn result(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs the docker CLI: (success, stdout + stderr).
fn docker_status(args: &[&str]) -> (bool, String) {
    let o = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    let (code, text) = result(&o);
    (code == 0, text)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The test app's Dockerfile, its layers `owner`'s own: a `LABEL` comes right after `FROM`.
/// Identical steps would share the engine's build cache with the test running beside it, whose
/// clean-up (`docker rmi`, which also deletes untagged parents) could delete a cached layer in
/// the middle of this test's build ("unknown parent image ID").
fn dockerfile(owner: &str) -> String {
    format!(
        "FROM scratch\nLABEL berthtest.cache=\"{owner}\"\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    )
}

fn context_at(dir: &Path, owner: &str, version: &str, healthy: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
    write(&dir.join("Dockerfile"), &dockerfile(owner));
    write(&dir.join("www/version"), &format!("{version}\n"));
    let health = dir.join("www/health");
    if healthy {
        write(&health, "ok\n");
    } else if health.exists() {
        std::fs::remove_file(health).unwrap();
    }
}

/// Names of all containers (any project) created from image `id`, sorted.
fn users_of(id: &str) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("ancestor={id}"),
        "--format",
        "{{.Names}}",
    ]);
    let mut v: Vec<String> = out.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn a_failed_built_revision_reverts_to_the_previous_build_after_image_prune_all() {
    let port = free_port();
    let w = World::new(
        "bldprune",
        &format!(
            "services:\n  web:\n    build:\n      context: app\n      labels:\n        \
             berthtest.owner: \"{{name}}\"\n    ports: [\"127.0.0.1:{port}:8080\"]\n    \
             x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      \
             min_ready: 1s\n      progress_deadline: 15s\n"
        ),
    );
    let p = &w.p;
    w.context("app", "v1", true);
    let (code, out) = w.apply("60s");
    assert_eq!(code, 0, "{out}");
    assert_eq!(version(port), "v1");
    let v1_image = inspect(&w.web(), "{{.Image}}");
    let v1_container = inspect(&w.web(), "{{.Id}}");
    let build_tags = w.build_tags();
    assert_eq!(build_tags.len(), 1, "{build_tags:?}");
    let v1_tag = &build_tags[0];
    assert_eq!(inspect(v1_tag, "{{.Id}}"), v1_image);
    // The build label the prunes below filter on is on r1's image.
    assert_eq!(
        inspect(&v1_image, "{{index .Config.Labels \"berthtest.owner\"}}"),
        p.name
    );
    // The stable built revision is pinned (issue 8 §3, docs/rollouts.md#built-images-build): a tag and a holder.
    let pin_tag = format!("berth-pin/{}/web:r1", p.name);
    let holder = format!("berth-pin.{}.web.r1", p.name);
    assert_eq!(inspect(&pin_tag, "{{.Id}}"), v1_image, "pin tag after r1");
    assert_eq!(
        inspect(&holder, "{{.Image}}"),
        v1_image,
        "pin holder after r1"
    );

    // r2 never gets ready: its build serves no /health.
    w.context("app", "v2", false);

    // Before r2: r1's build tag goes (untagging only: the running container keeps the image,
    // so an unforced rmi of a tag succeeds only because another tag — the pin — remains),
    // and the test's images are pruned.
    let (ok, text) = docker_status(&["rmi", v1_tag]);
    assert!(ok, "docker rmi {v1_tag}: {text}");
    assert!(text.contains("Untagged"), "{text}");
    assert!(!text.contains("Deleted"), "only untagged: {text}");
    let label = format!("label={}", w.label());
    let (ok, text) = docker_status(&["image", "prune", "-a", "-f", "--filter", &label]);
    assert!(ok, "{text}");
    assert_eq!(inspect(&v1_image, "{{.Id}}"), v1_image, "r1 still runs");

    let child = Running(Some(
        w.berth(&["apply", "--timeout", "90s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // While r2 is gated (stop-first: the port is published), r1's container is kept aside,
    // stopped. Remove it and prune again: nothing but berth's pin holds r1's image now.
    let kept_prefix = format!("{}-", w.web());
    wait_until(
        "r1 kept aside and the r2 candidate running",
        Duration::from_secs(40),
        || {
            let cs = p.containers();
            cs.iter()
                .any(|(n, s, _)| n.starts_with(&kept_prefix) && s == "exited")
                && cs.iter().any(|(n, s, _)| *n == w.web() && s == "running")
        },
    );
    let kept: Vec<String> = p
        .containers()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.starts_with(&kept_prefix))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(inspect(&kept[0], "{{.Id}}"), v1_container);
    let (ok, text) = docker_status(&["rm", &kept[0]]);
    assert!(ok, "docker rm {}: {text}", kept[0]);
    let (ok, text) = docker_status(&["image", "prune", "-a", "-f", "--filter", &label]);
    assert!(ok, "{text}");
    assert_eq!(
        users_of(&v1_image),
        [holder.as_str()],
        "only the pin holder uses r1's image"
    );
    assert_eq!(inspect(&v1_image, "{{.Id}}"), v1_image, "the pin kept it");

    let out = child.wait();
    let (code, log) = result(&out);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("rollout_failed: r2"), "{log}");
    assert!(log.contains("reverted: r2 failed"), "{log}");
    assert!(
        !log.contains(&format!("build {v1_tag}")),
        "no rebuild of r1: {log}"
    );
    // r1 was recreated from its template and its pinned image, and serves again.
    assert_eq!(version(port), "v1", "{log}");
    assert_eq!(inspect(&w.web(), "{{.Image}}"), v1_image);
    assert_ne!(inspect(&w.web(), "{{.Id}}"), v1_container, "recreated");
    assert_eq!(p.states(), ["web-1=running"]);
    // And it stays pinned.
    assert_eq!(
        inspect(&pin_tag, "{{.Id}}"),
        v1_image,
        "pin tag after the revert"
    );
    assert_eq!(inspect(&holder, "{{.State.Status}}"), "created");
    assert_eq!(inspect(&holder, "{{.Image}}"), v1_image);
}

/// The error berth gives for a build context `context` that resolves to `target`.
fn escape_error(w: &World, line: usize, col: usize, context: &str, target: &Path) -> String {
    format!(
        "compose.yaml:{line}:{col}: error: build context {context:?} resolves to {}, outside \
         the desired-state root {}: a build may only read files the repository holds",
        target.canonicalize().unwrap().display(),
        w.p.dir.canonicalize().unwrap().display()
    )
}

#[test]
fn a_context_that_escapes_the_root_is_refused_and_nothing_running_changes() {
    let port = free_port();
    let yaml = |context: &str| {
        format!(
            "services:\n  web:\n    build:\n      context: {context}\n      labels:\n        \
             berthtest.owner: \"{{name}}\"\n    ports: [\"127.0.0.1:{port}:8080\"]\n    \
             x-berth: {{min_ready: 1s}}\n"
        )
    };
    let w = World::new("bldesc", &yaml("app"));
    let p = &w.p;
    w.context("app", "v1", true);
    let (code, out) = w.apply("60s");
    assert_eq!(code, 0, "{out}");
    assert_eq!(version(port), "v1");
    let id = inspect(&w.web(), "{{.Id}}");
    let started = inspect(&w.web(), "{{.State.StartedAt}}");
    let tags = w.build_tags();
    assert_eq!(tags.len(), 1, "{tags:?}");

    // A valid context, but outside the project directory (the root berth was given).
    let elsewhere = p.dir.parent().unwrap().join("elsewhere");
    context_at(&elsewhere, &w.p.name, "evil", true);
    std::os::unix::fs::symlink(&elsewhere, p.dir.join("outside")).unwrap();

    for context in ["../elsewhere", "outside"] {
        p.write(&yaml(context));
        // `      context: X`: the value starts on line 4, column 16.
        let want = escape_error(&w, 4, 16, context, &elsewhere);

        let (code, out) = w.apply("30s");
        assert_eq!(code, 1, "{context}: {out}");
        assert!(out.contains(&want), "{context}: want {want}\n{out}");
        assert!(out.contains("invalid desired state"), "{context}: {out}");

        let (code, out) = w.validate();
        assert_eq!(code, 1, "{context}: {out}");
        assert!(out.contains(&want), "{context}: want {want}\n{out}");

        // Nothing running changed, nothing was built.
        assert_eq!(inspect(&w.web(), "{{.Id}}"), id, "{context}");
        assert_eq!(inspect(&w.web(), "{{.State.Status}}"), "running");
        assert_eq!(inspect(&w.web(), "{{.State.StartedAt}}"), started);
        assert_eq!(p.states(), ["web-1=running"], "{context}");
        assert_eq!(w.build_tags(), tags, "{context}");
        assert_eq!(version(port), "v1", "{context}");
    }
}
