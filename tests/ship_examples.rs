//! The shipped files are accepted by the tools that read them (issue 7): every example and
//! `deploy/compose.yaml` by `berth validate`, all examples at once as one host,
//! `deploy/berth.service` by `systemd-analyze verify` (skipped with a message where systemd is
//! not installed). `docker-compose config` over the same files is in `tools_docker.rs` (the
//! engine tier). No engine is needed and nothing is pulled.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The example projects (directories of `examples/` holding a compose.yaml).
fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("compose.yaml").is_file())
        .collect();
    v.sort();
    v
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn berth(args: &[&str], dir: &Path, env_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args).arg(dir);
    if let Some(e) = env_dir {
        cmd.arg("--env-dir").arg(e);
    }
    cmd.output().expect("run berth")
}

/// A temp dir holding `<project>.env` for every example with a `host.env.example`: what an
/// operator puts in /etc/berth/env, with the placeholders.
fn host_env_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for ex in examples() {
        let sample = ex.join("host.env.example");
        if sample.is_file() {
            let project = ex.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::copy(&sample, dir.path().join(format!("{project}.env"))).unwrap();
        }
    }
    dir
}

fn has(tool: &str, arg: &str) -> bool {
    Command::new(tool).arg(arg).output().is_ok()
}

#[test]
fn there_are_four_examples_beside_the_quickstart_each_with_a_readme() {
    let names: Vec<String> = examples()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"quickstart".to_string()), "{names:?}");
    assert!(names.len() >= 5, "{names:?}");
    for ex in examples() {
        let readme = std::fs::read_to_string(ex.join("README.md"))
            .unwrap_or_else(|_| panic!("{} has no README.md", ex.display()));
        assert!(readme.contains("berth"), "{}", ex.display());
        if !ex.ends_with("quickstart") {
            // Public images are fine in an example that is only validated; the README says so.
            assert!(
                readme.contains("validate") && readme.contains("run nothing"),
                "{}/README.md must say that the example is validated, not run",
                ex.display()
            );
        }
    }
}

#[test]
fn every_example_validates_with_its_host_env_file() {
    let env = host_env_dir();
    for ex in examples() {
        let out = berth(&["validate"], &ex, Some(env.path()));
        let all = text(&out);
        assert!(out.status.success(), "{}:\n{all}", ex.display());
        // Clean: no warning either (unknown keys, unset variables, unpinned images).
        assert!(all.contains(", 0 warnings"), "{}:\n{all}", ex.display());
    }
}

#[test]
fn an_example_without_its_secrets_is_refused_at_the_line() {
    for ex in examples() {
        if !ex.join("host.env.example").is_file() {
            continue;
        }
        let out = berth(&["validate"], &ex, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}:\n{err}", ex.display());
        assert!(
            err.contains("compose.yaml:") && err.contains("is missing a value: put "),
            "{}:\n{err}",
            ex.display()
        );
    }
}

#[test]
fn all_examples_together_are_one_valid_host() {
    let env = host_env_dir();
    let out = berth(
        &["validate"],
        &Path::new(ROOT).join("examples"),
        Some(env.path()),
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for ex in examples() {
        let name = ex.file_name().unwrap().to_string_lossy().into_owned();
        assert!(all.contains(&format!("{name} (")), "{name} missing:\n{all}");
    }
}

#[test]
fn deploy_compose_validates_with_berth() {
    let out = berth(
        &["validate", "--format", "json"],
        &Path::new(ROOT).join("deploy"),
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(
        report["diagnostics"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    let services: Vec<&str> = report["projects"][0]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["berth"]);
    // What the README promises about it.
    let yaml = std::fs::read_to_string(Path::new(ROOT).join("deploy/compose.yaml")).unwrap();
    for needle in [
        "/var/run/docker.sock:/var/run/docker.sock",
        "network_mode: host",
        "--listen 127.0.0.1:${BERTH_METRICS_PORT:-9469}",
        "${BERTH_DATA_DIR:-/var/lib/berth}:${BERTH_DATA_DIR:-/var/lib/berth}",
        "${BERTH_SOURCE:---dir /srv/berth}",
    ] {
        assert!(yaml.contains(needle), "deploy/compose.yaml lacks {needle}");
    }
}

#[test]
fn systemd_accepts_the_unit() {
    if !has("systemd-analyze", "--version") {
        eprintln!("systemd-analyze is not installed: skipped");
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the berth under test.
    let unit = std::fs::read_to_string(Path::new(ROOT).join("deploy/berth.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/berth run "),
        "{unit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/berth", env!("CARGO_BIN_EXE_berth")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    // systemd-analyze exits 0 on unknown keys and bad values; it warns on stderr instead.
    assert!(out.status.success(), "{}", text(&out));
    let warnings: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.contains("berth.service"))
        .collect();
    assert!(warnings.is_empty(), "{}", text(&out));
}
