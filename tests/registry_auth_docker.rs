//! Private pulls against a real registry (issue 19 part 1): Debian's `docker-registry` on
//! 127.0.0.1 with htpasswd basic auth (bcrypt entries from `htpasswd`, apache2-utils). Plain
//! HTTP: the engine treats 127.0.0.0/8 registries as insecure-allowed and sends credentials to
//! them, so no TLS or CA is needed. The demo image is pushed with `docker --config <temp dir>
//! login/push` (never the machine's own ~/.docker); then `berth apply`, with `DOCKER_CONFIG`
//! pointing at a config of the test's own, pulls it — with credentials from the file, through
//! a stand-in credential helper, as a `build:` base image — and a missing or wrong password is
//! a clear error that names the registry and where berth looked, and never the password.
//! Guards remove the project's containers (TestProject), built images, the registry's local
//! tags and the registry process (Registry); waits are bounded by `berth apply --timeout`.

mod support {
    pub mod registry;
    pub mod tier;
    pub mod world;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use support::registry::Registry;
use support::world::{TestProject, docker, free_port, inspect, version};

const USER: &str = "authuser";

/// A registry that wants `USER` with a fresh password, the demo image pushed to it as
/// `authdemo:1`, and a temp dir for configs.
struct Private {
    password: String,
    /// The pushed image's ID.
    pushed: String,
    /// `127.0.0.1:<port>/authdemo:1`.
    reference: String,
    dir: tempfile::TempDir,
    // Dropped last: the tags naming it go with it.
    registry: Registry,
}

impl Private {
    fn start() -> Self {
        support::tier::require_engine();
        support::tier::require_tool("htpasswd", "apache2-utils");
        let dir = tempfile::tempdir().unwrap();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let password = format!("authpw-{}-{nanos}", std::process::id());
        let htpasswd = dir.path().join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(&htpasswd)
            .args([USER, &password])
            .output()
            .expect("run htpasswd");
        assert!(out.status.success(), "htpasswd: {}", text(&out));
        let registry = Registry::start_with_htpasswd(&htpasswd);

        // Push with a login of the test's own.
        let push_config = dir.path().join("push-config");
        let reference = registry.reference("authdemo:1");
        let mut login = Command::new("docker")
            .arg("--config")
            .arg(&push_config)
            .args([
                "login",
                "--username",
                USER,
                "--password-stdin",
                &registry.host(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker login");
        use std::io::Write;
        login
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let out = login.wait_with_output().unwrap();
        assert!(out.status.success(), "docker login: {}", text(&out));
        let pushed = docker(&["image", "inspect", "-f", "{{.Id}}", "berth-demo:1"])
            .trim()
            .to_string();
        assert!(!pushed.is_empty(), "no local image berth-demo:1");
        docker(&["tag", "berth-demo:1", &reference]);
        let out = Command::new("docker")
            .arg("--config")
            .arg(&push_config)
            .args(["push", "--quiet", &reference])
            .output()
            .unwrap();
        assert!(out.status.success(), "docker push: {}", text(&out));
        docker(&["rmi", &reference]);
        assert_eq!(image_id(&reference), "", "{reference} is still local");
        Private {
            password,
            pushed,
            reference,
            dir,
            registry,
        }
    }

    /// A Docker config directory holding `config` as its config.json.
    fn config_dir(&self, name: &str, config: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), config).unwrap();
        d
    }
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn image_id(reference: &str) -> String {
    docker(&["image", "inspect", "-f", "{{.Id}}", reference])
        .trim()
        .to_string()
}

fn base64(s: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("base64")
        .args(["-w", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run base64");
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

/// `berth apply` with `DOCKER_CONFIG=config` (and `PATH` led by `path_first`, if given):
/// (exit code, output).
fn apply(p: &TestProject, config: &Path, path_first: Option<&Path>) -> (i32, String) {
    let data: PathBuf = p.dir.parent().unwrap().join("data");
    let mut cmd = p.berth();
    cmd.args(["apply", "--timeout", "120s", "--data-dir"])
        .arg(&data)
        .arg(&p.dir)
        .env("DOCKER_CONFIG", config)
        // Every engine call at debug level: the secrets must not be in those lines either.
        .env("RUST_LOG", "berth=debug");
    if let Some(dir) = path_first {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    let o = cmd.output().expect("run berth apply");
    (o.status.code().unwrap_or(-1), text(&o))
}

/// One service on a loopback port, ready when `/health` answers.
fn web(image_or_build: &str, port: u16) -> String {
    format!(
        "services:\n  web:\n    {image_or_build}\n    ports: ['127.0.0.1:{port}:8080']\n    x-berth:\n      readiness: {{http: {{port: 8080, path: /health}}, interval: 500ms}}\n      min_ready: 1s\n      progress_deadline: 60s\n"
    )
}

/// The output says nothing of `password`, plain or in base64 `user:password` form.
fn assert_no_secret(out: &str, password: &str) {
    assert!(
        !out.contains(password),
        "the password is in the output:\n{out}"
    );
    let auth = base64(&format!("{USER}:{password}"));
    assert!(
        !out.contains(&auth),
        "the auth string is in the output:\n{out}"
    );
}

#[test]
fn a_private_image_is_pulled_with_credentials_from_the_config_file() {
    let r = Private::start();
    let port = free_port();
    let p = TestProject::new("authcfg", &web(&format!("image: {}", r.reference), port));

    // No credentials: the registry refuses, and the error says where berth looked.
    let none = r.dir.path().join("no-config");
    let (code, out) = apply(&p, &none, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("failed to pull image {}", r.reference)),
        "{out}"
    );
    assert!(out.contains("no basic auth credentials"), "{out}");
    assert!(
        out.contains(&format!(
            "registry {} refused access; berth looked for credentials in {}, which does not exist",
            r.registry.host(),
            none.join("config.json").display()
        )),
        "{out}"
    );
    assert_eq!(p.states(), Vec::<String>::new());

    // The credentials in the file's `auths` (base64 `user:password`, as `docker login` writes).
    let config = r.config_dir(
        "file",
        &format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            r.registry.host(),
            base64(&format!("{USER}:{}", r.password))
        ),
    );
    let (code, out) = apply(&p, &config, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("pull {}", r.reference)), "{out}");
    assert_no_secret(&out, &r.password);
    assert_eq!(version(port), "1");
    assert_eq!(
        inspect(&format!("{}-web-1", p.name), "{{.Image}}"),
        r.pushed
    );
    assert_eq!(image_id(&r.reference), r.pushed);
}

#[test]
fn a_private_image_is_pulled_with_credentials_from_a_credential_helper() {
    let r = Private::start();
    let bin = r.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = r.dir.path().join("helper-asked");
    let helper = bin.join("docker-credential-authtest");
    let script = format!(
        "#!/bin/sh\nread -r server\necho \"$1 $server\" >> {}\n\
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{}\"}}\\n' \"$server\"\n",
        asked.display(),
        r.password
    );
    // Written by a child process: a file this (multi-threaded) test had open for writing
    // could leak into a concurrent fork and make the helper's exec fail with ETXTBSY.
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&helper)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let config = r.config_dir(
        "helper",
        &format!(
            r#"{{"credHelpers": {{"{}": "authtest"}}}}"#,
            r.registry.host()
        ),
    );
    let port = free_port();
    let p = TestProject::new("authhelper", &web(&format!("image: {}", r.reference), port));

    let (code, out) = apply(&p, &config, Some(&bin));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("pull {}", r.reference)), "{out}");
    assert_no_secret(&out, &r.password);
    assert_eq!(version(port), "1");
    assert_eq!(
        inspect(&format!("{}-web-1", p.name), "{{.Image}}"),
        r.pushed
    );
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        format!("get {}\n", r.registry.host())
    );
}

#[test]
fn a_wrong_password_is_a_clear_error_that_never_shows_the_password() {
    let r = Private::start();
    let wrong = format!("{}-wrong", r.password);
    let config = r.config_dir(
        "wrong",
        &format!(
            r#"{{"auths": {{"http://{}": {{"username": "{USER}", "password": "{wrong}"}}}}}}"#,
            r.registry.host()
        ),
    );
    let port = free_port();
    let p = TestProject::new("authwrong", &web(&format!("image: {}", r.reference), port));

    let (code, out) = apply(&p, &config, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "failed to pull image {}: unauthorized: authentication required (registry {} refused access; berth sent the credentials of the auths entry \"http://{}\" in {})",
            r.reference,
            r.registry.host(),
            r.registry.host(),
            config.join("config.json").display()
        )),
        "{out}"
    );
    assert_no_secret(&out, &wrong);
    assert_eq!(p.states(), Vec::<String>::new());
    assert_eq!(image_id(&r.reference), "");
}

/// Removes the test's built images after its containers are gone (declare it after the
/// registry, before the project).
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

#[test]
fn a_build_from_a_private_base_image_sends_the_credentials() {
    let r = Private::start();
    let port = free_port();
    let p = TestProject::new("authbuild", &web("build: app", port));
    let _built = BuiltImages(p.name.clone());
    std::fs::create_dir_all(p.dir.join("app")).unwrap();
    // The project's own label keeps its layers out of other tests' build cache.
    std::fs::write(
        p.dir.join("app/Dockerfile"),
        format!(
            "FROM {}\nLABEL berthtest.cache=\"{}\"\n",
            r.reference, p.name
        ),
    )
    .unwrap();

    let none = r.dir.path().join("no-config");
    let (code, out) = apply(&p, &none, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "failed to build image berth-build/{}/web:",
            p.name
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "no basic auth credentials (berth looked for credentials in {}, which does not exist",
            none.join("config.json").display()
        )),
        "{out}"
    );

    // A failed build quarantines its revision: the next attempt is a new one.
    std::fs::write(
        p.dir.join("app/Dockerfile"),
        format!(
            "FROM {}\nLABEL berthtest.cache=\"{}\" berthtest.attempt=\"2\"\n",
            r.reference, p.name
        ),
    )
    .unwrap();
    let config = r.config_dir(
        "build",
        &format!(
            r#"{{"auths": {{"{}": {{"username": "{USER}", "password": "{}"}}}}}}"#,
            r.registry.host(),
            r.password
        ),
    );
    let (code, out) = apply(&p, &config, None);
    assert_eq!(code, 0, "{out}");
    assert_no_secret(&out, &r.password);
    assert_eq!(version(port), "1");
    // The base came from the registry: the engine has it now under its registry name.
    assert_eq!(image_id(&r.reference), r.pushed);
}
