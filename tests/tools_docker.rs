//! The shipped files pass the outside tools that read them: the alerting rules
//! (deploy/prometheus) pass `promtool check rules` and their unit tests (`promtool test rules`),
//! and every example and `deploy/compose.yaml` pass `docker-compose config` without a warning.
//!
//! Engine tier: these need Debian's prometheus and docker-compose (scripts/deps installs both)
//! and fail, saying which is missing, without them. No engine call is made and nothing is
//! pulled.

mod support {
    pub mod tier;
}

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    support::tier::require_tool("promtool", "prometheus");
    let dir = Path::new(ROOT).join("deploy/prometheus");
    let out = promtool(&["check", "rules", "berth-alerts.yml"], &dir);
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    let out = promtool(&["test", "rules", "berth-alerts.test.yml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
    let rules = std::fs::read_to_string(dir.join("berth-alerts.yml")).unwrap();
    for alert in [
        "RolloutFailed",
        "ServiceReverted",
        "ServiceDegraded",
        "DesiredStateInvalid",
        "BerthDown",
        "HandoffProxyDown",
    ] {
        assert!(rules.contains(&format!("alert: {alert}\n")), "{alert}");
    }
}

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

#[test]
fn examples_and_deploy_compose_pass_docker_compose_config() {
    support::tier::require_tool("docker-compose", "docker-compose");
    let mut files: Vec<PathBuf> = examples().iter().map(|e| e.join("compose.yaml")).collect();
    assert!(files.len() >= 5, "{files:?}");
    files.push(Path::new(ROOT).join("deploy/compose.yaml"));
    for f in files {
        let dir = f.parent().unwrap();
        let mut cmd = Command::new("docker-compose");
        cmd.arg("--project-directory").arg(dir);
        let sample = dir.join("host.env.example");
        if sample.is_file() {
            cmd.arg("--env-file").arg(&sample);
        }
        let out = cmd
            .arg("-f")
            .arg(&f)
            .args(["config", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}:\n{}", f.display(), text(&out));
        // No "variable is not set" or unsupported-key warnings either.
        assert!(
            String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "{}:\n{}",
            f.display(),
            text(&out)
        );
    }
}
