//! A private registry over TLS for real-engine tests: Debian's `docker-registry` on
//! 127.0.0.1 with a certificate from a test CA made here (openssl), and htpasswd basic auth.
//! The engine is made to trust the CA the way Docker documents:
//! `/etc/docker/certs.d/127.0.0.1:PORT/ca.crt`, removed on drop with the registry, its
//! storage and every local tag naming it. Ports come from `BERTH_TEST_PORTS` (`LOW-HIGH`,
//! default 41500-41599), so that the certs.d entry names a port nobody else uses.
//!
//! Include with `mod support { pub mod tier; pub mod tls_registry; pub mod world; }`.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::world::docker;

/// How long a starting registry may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(20);
/// The user the registry wants.
pub const USER: &str = "h19uuser";

/// A free port on 127.0.0.1 from the test's range (`BERTH_TEST_PORTS`, default 41500-41599),
/// starting at an offset of the process id so that concurrent tests rarely collide.
pub fn port_in_range(salt: u16) -> u16 {
    let (lo, hi) = std::env::var("BERTH_TEST_PORTS")
        .ok()
        .and_then(|r| {
            let (a, b) = r.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((41500u16, 41599u16));
    let span = hi - lo + 1;
    let start = (std::process::id() as u16).wrapping_add(salt.wrapping_mul(7)) % span;
    for i in 0..span {
        let port = lo + (start + i) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {lo}-{hi}");
}

/// A TLS registry with basic auth, killed and cleaned up on drop.
pub struct TlsRegistry {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The password of [`USER`].
    pub password: String,
    /// A Docker config directory logged in to it (for pushing, and for berth).
    pub config_dir: PathBuf,
    /// The test CA's certificate.
    pub ca: PathBuf,
    certs_d: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl TlsRegistry {
    /// Makes the CA and the server certificate, starts the registry, installs the CA for the
    /// engine and logs in with a config of the test's own.
    pub fn start(salt: u16) -> Self {
        super::tier::require_engine();
        super::tier::require_tool("docker-registry", "docker-registry");
        super::tier::require_tool("htpasswd", "apache2-utils");
        super::tier::require_tool("openssl", "openssl");
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let password = format!("h19u-pw-{}-{nanos}", std::process::id());
        run(Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(d.join("htpasswd"))
            .args([USER, &password]));
        make_certs(d);
        let port = port_in_range(salt);
        let certs_d = PathBuf::from(format!("/etc/docker/certs.d/127.0.0.1:{port}"));
        std::fs::create_dir_all(&certs_d).expect("create the certs.d entry (needs root)");
        std::fs::copy(d.join("ca.crt"), certs_d.join("ca.crt")).expect("install ca.crt");
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {storage}}}, delete: {{enabled: true}}}}\n\
                 http: {{addr: 127.0.0.1:{port}, tls: {{certificate: {crt}, key: {key}}}}}\n\
                 auth: {{htpasswd: {{realm: h19u-test, path: {htpasswd}}}}}\n",
                storage = d.join("storage").display(),
                crt = d.join("server.crt").display(),
                key = d.join("server.key").display(),
                htpasswd = d.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let mut r = TlsRegistry {
            port,
            password,
            config_dir: d.join("docker-config"),
            ca: d.join("ca.crt"),
            certs_d,
            child: None,
            dir,
        };
        r.spawn();
        r.login();
        r
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The reference of `name` (`repo:tag`) here.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// The temp directory (for the test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Pushes the local image `local` as `name` (`repo:tag`) with the test's login, and
    /// removes the local tag again; returns the pushed manifest's digest.
    pub fn push(&self, local: &str, name: &str) -> String {
        let reference = self.reference(name);
        run(Command::new("docker").args(["tag", local, &reference]));
        let out = run(Command::new("docker")
            .arg("--config")
            .arg(&self.config_dir)
            .args(["push", &reference]));
        run(Command::new("docker").args(["rmi", &reference]));
        out.split_whitespace()
            .find(|w| w.starts_with("sha256:"))
            .unwrap_or_default()
            .to_string()
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("registry.log")).unwrap();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; the registry dies with the test process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("spawn docker-registry"));
        let until = Instant::now() + START_LIMIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > until {
                panic!(
                    "the TLS registry did not start on {}: {}",
                    self.port,
                    std::fs::read_to_string(d.join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn login(&self) {
        let mut child = Command::new("docker")
            .arg("--config")
            .arg(&self.config_dir)
            .args([
                "login",
                "--username",
                USER,
                "--password-stdin",
                &self.host(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker login");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(self.password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker login over TLS: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Local references naming this registry (tags and digests).
    fn local_references(&self) -> Vec<String> {
        let prefix = format!("{}/", self.host());
        docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
        ])
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .flat_map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            let mut refs = Vec::new();
            if v.len() == 3 {
                if v[1] != "<none>" {
                    refs.push(format!("{}:{}", v[0], v[1]));
                }
                if v[2] != "<none>" {
                    refs.push(format!("{}@{}", v[0], v[2]));
                }
            }
            refs
        })
        .collect()
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.certs_d);
        for r in self.local_references() {
            docker(&["rmi", &r]);
        }
    }
}

/// A CA (`ca.crt`) and a server certificate for 127.0.0.1 signed by it (`server.crt`,
/// `server.key`) in `d`.
fn make_certs(d: &Path) {
    run(Command::new("openssl").current_dir(d).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=berth h19u test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]));
    run(Command::new("openssl").current_dir(d).args([
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]));
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").current_dir(d).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]));
}

/// Runs a command, panicking with its output unless it succeeds; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
