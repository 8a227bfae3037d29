//! Image update automation against a real registry over TLS (issue 19 part 2): Debian's
//! `docker-registry` on 127.0.0.1 with a certificate from a test CA (trusted by the engine
//! through `/etc/docker/certs.d/127.0.0.1:PORT/ca.crt`, and so by berth's own registry client)
//! and htpasswd auth. The demo images are pushed under several tags; then:
//! a private pull over TLS; `berth updates` choosing among the pushed tags (never a
//! pre-release or a major bump outside the range); a same-tag digest change; `berth updates
//! apply` writing a `.env` value that `berth apply` rolls out; a bare Git repository receiving
//! the commit and `berth run --git` rolling it out; a failing new version quarantined and
//! not proposed again. Guards remove the projects (TestProject), the registry, its certs.d
//! entry and its local tags (TlsRegistry); waits are bounded by `berth apply --timeout`.

mod support {
    pub mod tier;
    pub mod tls_registry;
    pub mod world;
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::tls_registry::{TlsRegistry, port_in_range};
use support::world::{TestProject, inspect, version, wait_until};

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `berth ARGS` as `p`'s berth, with the registry's login as its Docker config.
fn berth(p: &TestProject, r: &TlsRegistry, args: &[&str]) -> (i32, String) {
    let o = p
        .berth()
        .args(args)
        .env("DOCKER_CONFIG", &r.config_dir)
        .output()
        .expect("run berth");
    (o.status.code().unwrap_or(-1), text(&o))
}

fn data_dir(p: &TestProject) -> PathBuf {
    p.dir.parent().unwrap().join("data")
}

/// `berth apply` of the project directory.
fn apply(p: &TestProject, r: &TlsRegistry) -> (i32, String) {
    let data = data_dir(p);
    berth(
        p,
        r,
        &[
            "apply",
            "--timeout",
            "120s",
            "--data-dir",
            data.to_str().unwrap(),
            p.dir.to_str().unwrap(),
        ],
    )
}

/// `berth updates --json` of the project directory: one JSON object per service.
fn updates(p: &TestProject, r: &TlsRegistry) -> Vec<serde_json::Value> {
    let data = data_dir(p);
    let (code, out) = berth(
        p,
        r,
        &[
            "updates",
            "--json",
            "--data-dir",
            data.to_str().unwrap(),
            p.dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One web service on a port of the test's range, ready when `/health` answers.
fn web(image: &str, port: u16, update: &str) -> String {
    format!(
        "services:\n  web:\n    image: {image}   # kept by berth updates\n    ports: ['127.0.0.1:{port}:8080']\n    x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      min_ready: 1s\n      progress_deadline: 20s\n      update: {update}\n"
    )
}

#[test]
fn a_private_image_is_pulled_over_tls_and_semver_picks_the_right_tag() {
    let r = TlsRegistry::start(1);
    r.push("berth-demo:1", "h19u/app:1.0.0");
    r.push("berth-demo:2", "h19u/app:1.1.0");
    r.push("berth-demo:2", "h19u/app:1.2.0-rc.1");
    r.push("berth-demo:2", "h19u/app:2.0.0");
    r.push("berth-demo:1", "h19u/app:latest");
    let port = port_in_range(11);
    let p = TestProject::new(
        "h19utls",
        &web(
            &r.reference("h19u/app:${APP_TAG}"),
            port,
            "{policy: semver, range: \"^1.0\"}",
        ),
    );
    std::fs::write(
        p.dir.join(".env"),
        "# the app's version\nAPP_TAG=1.0.0  # semver\n",
    )
    .unwrap();

    // The private pull over TLS, with the login's credentials.
    let (code, out) = apply(&p, &r);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(&r.password), "{out}");
    assert_eq!(version(port), "1");

    // 1.1.0: not the pre-release 1.2.0-rc.1, not 2.0.0 outside ^1.0, not `latest`.
    let found = updates(&p, &r);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["state"], "pending", "{found:?}");
    assert_eq!(found[0]["version"], "1.1.0", "{found:?}");
    assert_eq!(
        found[0]["to"].as_str().unwrap(),
        r.reference("h19u/app:1.1.0")
    );

    // Applied: the `.env` value changes (its comments kept) and the rollout follows.
    let data = data_dir(&p);
    let (code, out) = berth(
        &p,
        &r,
        &[
            "updates",
            "apply",
            &format!("{}/web", p.name),
            "--data-dir",
            data.to_str().unwrap(),
            p.dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("written to"), "{out}");
    assert_eq!(
        std::fs::read_to_string(p.dir.join(".env")).unwrap(),
        "# the app's version\nAPP_TAG=1.1.0  # semver\n"
    );
    let (code, out) = apply(&p, &r);
    assert_eq!(code, 0, "{out}");
    assert_eq!(version(port), "2");
    assert_eq!(updates(&p, &r)[0]["state"], "up_to_date");
}

#[test]
fn a_wrong_password_is_a_clear_refusal_naming_the_registry() {
    let r = TlsRegistry::start(2);
    r.push("berth-demo:1", "h19u/app:1.0.0");
    let p = TestProject::new(
        "h19uwrong",
        &web(
            &r.reference("h19u/app:1.0.0"),
            port_in_range(12),
            "{policy: semver}",
        ),
    );
    let wrong = r.dir().join("wrong-config");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::write(
        wrong.join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"username": "h19uuser", "password": "not-it"}}}}}}"#,
            r.host()
        ),
    )
    .unwrap();
    let o = p
        .berth()
        .args(["updates", p.dir.to_str().unwrap()])
        .env("DOCKER_CONFIG", &wrong)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "registry {} refused the tag list of h19u/app (401)",
            r.host()
        )),
        "{out}"
    );
    assert!(!out.contains("not-it"), "{out}");
}

#[test]
fn a_same_tag_digest_change_is_found() {
    let r = TlsRegistry::start(3);
    r.push("berth-demo:1", "h19u/app:stable");
    let port = port_in_range(13);
    let p = TestProject::new(
        "h19udigest",
        &web(&r.reference("h19u/app:stable"), port, "{policy: digest}"),
    );
    let (code, out) = apply(&p, &r);
    assert_eq!(code, 0, "{out}");
    // What runs is what the tag points at.
    assert_eq!(updates(&p, &r)[0]["state"], "up_to_date");
    let moved = r.push("berth-demo:2", "h19u/app:stable");
    let found = updates(&p, &r);
    assert_eq!(found[0]["state"], "pending", "{found:?}");
    assert_eq!(found[0]["version"], moved, "{found:?}");
    assert_eq!(
        found[0]["to"].as_str().unwrap(),
        format!("{}@{moved}", r.reference("h19u/app:stable"))
    );
}

#[test]
fn a_git_source_receives_the_commit_and_rolls_it_out() {
    let r = TlsRegistry::start(4);
    r.push("berth-demo:1", "h19u/app:1.0.0");
    r.push("berth-demo:2", "h19u/app:1.0.1");
    let port = port_in_range(14);
    let p = TestProject::new("h19ugit", "services: {}\n");
    // A bare repository holding one project, as `berth run --git` would follow it.
    let work = r.dir().join("work");
    let bare = r.dir().join("state.git");
    let git = |dir: &Path, args: &[&str]| {
        let o = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    std::fs::create_dir_all(work.join(&p.name)).unwrap();
    git(
        r.dir(),
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            bare.to_str().unwrap(),
        ],
    );
    git(&work, &["init", "--quiet", "-b", "main"]);
    std::fs::write(
        work.join(&p.name).join("compose.yaml"),
        format!(
            "# the shop\n{}",
            web(
                &r.reference("h19u/app:1.0.0"),
                port,
                "{policy: semver, range: \"~1.0\"}"
            )
        ),
    )
    .unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "first"]);
    git(&work, &["push", "--quiet", bare.to_str().unwrap(), "main"]);

    let data = data_dir(&p);
    let url = format!("file://{}", bare.display());
    let _run = Running(
        p.berth()
            .args([
                "run",
                "--git",
                &url,
                "--ref",
                "main",
                "--interval",
                "2s",
                // This test is about `berth updates apply`: berth run must not find the
                // update first (tests/update_auto_docker.rs has it do so).
                "--no-update-checks",
                "--listen",
                "off",
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .env("DOCKER_CONFIG", &r.config_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start berth run"),
    );
    wait_until("1.0.0 serving", Duration::from_secs(120), || {
        version(port) == "1"
    });

    let (code, out) = berth(
        &p,
        &r,
        &[
            "updates",
            "apply",
            &format!("{}/web", p.name),
            "--data-dir",
            data.to_str().unwrap(),
            "--git",
            &url,
            "--ref",
            "main",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pushed to main"), "{out}");
    let log = git(&bare, &["log", "-1", "--format=%an|%s", "main"]);
    assert_eq!(
        log,
        format!("berth|berth: update {}/web 1.0.0 -> 1.0.1", p.name)
    );
    let shown = git(&bare, &["show", &format!("main:{}/compose.yaml", p.name)]);
    assert!(shown.starts_with("# the shop\n"), "{shown}");
    assert!(
        shown.contains(&format!(
            "image: {}   # kept by berth updates",
            r.reference("h19u/app:1.0.1")
        )),
        "{shown}"
    );
    // `berth run --git` fetches the commit and rolls it out like any other.
    wait_until("1.0.1 serving", Duration::from_secs(120), || {
        version(port) == "2"
    });
}

/// A `berth run` killed and reaped on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_failing_new_version_is_quarantined_and_not_proposed_again() {
    let r = TlsRegistry::start(5);
    r.push("berth-demo:1", "h19u/app:1.0.0");
    r.push("berth-demo:bad", "h19u/app:1.1.0");
    let port = port_in_range(15);
    let compose = |tag: &str| {
        web(
            &r.reference(&format!("h19u/app:{tag}")),
            port,
            "{policy: semver, range: \"^1\"}",
        )
    };
    let p = TestProject::new("h19uquar", &compose("1.0.0"));
    let (code, out) = apply(&p, &r);
    assert_eq!(code, 0, "{out}");
    assert_eq!(updates(&p, &r)[0]["version"], "1.1.0");

    // 1.1.0 never becomes ready: the rollout fails and berth reverts to 1.0.0.
    p.write(&compose("1.1.0"));
    let (code, out) = apply(&p, &r);
    assert_eq!(code, 1, "{out}");
    assert_eq!(version(port), "1");

    // Back to 1.0.0 in the file: 1.1.0 is not proposed again ...
    p.write(&compose("1.0.0"));
    let (code, out) = apply(&p, &r);
    assert_eq!(code, 0, "{out}");
    let found = updates(&p, &r);
    assert_eq!(found[0]["state"], "up_to_date", "{found:?}");
    // ... but the next good one is.
    r.push("berth-demo:2", "h19u/app:1.2.0");
    let found = updates(&p, &r);
    assert_eq!(found[0]["version"], "1.2.0", "{found:?}");
    assert_eq!(
        inspect(&format!("{}-web-1", p.name), "{{.State.Running}}"),
        "true"
    );
}
