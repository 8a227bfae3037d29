//! The engine tier's entry checks: a test of that tier (`tests/*_docker.rs`, run with
//! `cargo test --test '*_docker'`) first makes sure that what it needs is there — a Docker
//! engine that answers, a tool such as `docker-registry` or `promtool` — and FAILS naming what
//! is missing and how to get it. It never passes or skips silently: a green engine tier means
//! the engine was exercised. `scripts/deps` installs and starts all of it (`scripts/test` and
//! `.ci/run` call it first).

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long `docker version` may take before the engine counts as not answering.
const ENGINE_DEADLINE: Duration = Duration::from_secs(20);

/// Panics with the reason unless a Docker engine answers (checked once per test binary).
pub fn require_engine() {
    static ANSWER: OnceLock<Result<String, String>> = OnceLock::new();
    if let Err(why) = ANSWER.get_or_init(engine_version) {
        panic!(
            "engine tier: no Docker engine answers at {where_}: {why}\n\
             These tests run against a real engine and cannot pass without one. Start it with \
             scripts/deps engine (or run scripts/test, which does), or run plain `cargo test` for \
             the tier that needs none.",
            where_ = std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "unix:///var/run/docker.sock".into()),
        );
    }
}

/// Panics with the reason unless `tool` is on the PATH; `package` is the Debian package that
/// ships it.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()));
    assert!(
        found,
        "engine tier: `{tool}` is not installed, and this test needs it. Install Debian's \
         {package} (scripts/deps does; scripts/test and .ci/run call it)."
    );
}

/// The server version, or why it could not be read within [`ENGINE_DEADLINE`].
fn engine_version() -> Result<String, String> {
    let mut child = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the docker CLI ({e})"))?;
    let start = Instant::now();
    // Bounded: a socket that accepts but never answers must not hang the whole tier.
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < ENGINE_DEADLINE => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`docker version` did not answer within {ENGINE_DEADLINE:?}"
                ));
            }
            Err(e) => return Err(format!("cannot wait for `docker version` ({e})")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot read `docker version` ({e})"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !stdout.is_empty() {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
