//! Ownership labels and names: what berth writes on every object it creates, and how it
//! recognises them again (docs/concepts.md#projects-and-ownership).
//!
//! Pure. berth writes its own `berth.*` labels plus the `com.docker.compose.*` labels and
//! compose's names, so that `docker compose -p NAME ps|logs|exec` keep working.

use std::collections::BTreeMap;

/// `berth.managed=true` marks every object berth created.
pub const MANAGED: &str = "berth.managed";
/// Project name.
pub const PROJECT: &str = "berth.project";
/// Service name.
pub const SERVICE: &str = "berth.service";
/// Spec hash of the revision a container runs.
pub const SPEC_HASH: &str = "berth.spec-hash";
/// Container role: `replica` or `job`.
pub const ROLE: &str = "berth.role";
/// The berth version that created a container.
pub const VERSION: &str = "berth.version";

/// What berth writes as `com.docker.compose.version`. Compose parses this label as a version
/// (docker-compose 1.x compares it with 1.21.0 to detect legacy project names and crashes on
/// anything else, such as `berth-0.1.0`); this is the Compose Specification generation berth
/// implements. berth's own version is in [`VERSION`].
pub const COMPOSE_VERSION: &str = "2.0.0";

/// The version labels of every container berth creates: a compose-parseable
/// `com.docker.compose.version` and berth's own `berth.version`.
pub fn version_labels() -> [(String, String); 2] {
    [
        (compose::VERSION.into(), COMPOSE_VERSION.into()),
        (VERSION.into(), env!("CARGO_PKG_VERSION").into()),
    ]
}

/// Compose's labels.
pub mod compose {
    /// Project name.
    pub const PROJECT: &str = "com.docker.compose.project";
    /// Service name.
    pub const SERVICE: &str = "com.docker.compose.service";
    /// Replica number.
    pub const NUMBER: &str = "com.docker.compose.container-number";
    /// `False` for service containers (`True` for `docker compose run`).
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
    /// Compose's config hash; berth writes its own spec hash here.
    pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
    /// The Compose files.
    pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
    /// The project directory.
    pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
    /// `svc:condition:restart,...`.
    pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
    /// The image reference as written.
    pub const IMAGE: &str = "com.docker.compose.image";
    /// Network key (on networks).
    pub const NETWORK: &str = "com.docker.compose.network";
    /// Volume key (on volumes).
    pub const VOLUME: &str = "com.docker.compose.volume";
    /// Compose version that made the object.
    pub const VERSION: &str = "com.docker.compose.version";
}

/// The role of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A long-running replica.
    Replica,
    /// A one-shot job run.
    Job,
    /// A rollout's `x-berth.smoke` gate run.
    Smoke,
    /// A rollout's `x-berth.pre_deploy` gate run.
    PreDeploy,
}

impl Role {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Replica => "replica",
            Role::Job => "job",
            Role::Smoke => "smoke",
            Role::PreDeploy => "pre-deploy",
        }
    }
}

/// compose's container name: `<project>-<service>-<n>`.
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

/// Labels of a network or volume berth creates for `project` under `key`.
pub fn object_labels(
    project: &str,
    kind_label: &str,
    key: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = user.clone();
    l.insert(MANAGED.into(), "true".into());
    l.insert(PROJECT.into(), project.into());
    l.insert(compose::PROJECT.into(), project.into());
    l.insert(kind_label.into(), key.into());
    l
}

/// What identifies a container berth manages (or takes over from compose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// Replica number (1-based).
    pub number: u32,
    /// Spec hash, empty for containers compose made (they never match: taken over).
    pub spec_hash: String,
    /// Role.
    pub role: Role,
    /// Created by berth (false: created by `docker compose`).
    pub managed: bool,
    /// `com.docker.compose.project.working_dir`: the directory compose (or berth) ran the
    /// project from, to tell a project running under another name.
    pub working_dir: Option<String>,
}

/// Reads a container's identity from its labels: berth's own, or compose's for take-over.
/// `None` for containers that belong to neither (never touched) and for compose one-off runs.
pub fn identity(labels: &BTreeMap<String, String>) -> Option<Identity> {
    let managed = labels.get(MANAGED).is_some_and(|v| v == "true");
    let project = labels
        .get(PROJECT)
        .or_else(|| labels.get(compose::PROJECT))?
        .clone();
    let service = labels
        .get(SERVICE)
        .or_else(|| labels.get(compose::SERVICE))?
        .clone();
    if !managed && labels.get(compose::ONEOFF).is_some_and(|v| v == "True") {
        return None;
    }
    let number = labels
        .get(compose::NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let spec_hash = if managed {
        labels.get(SPEC_HASH).cloned().unwrap_or_default()
    } else {
        String::new()
    };
    let role = match labels.get(ROLE).map(String::as_str) {
        Some("job") => Role::Job,
        Some("smoke") => Role::Smoke,
        Some("pre-deploy") => Role::PreDeploy,
        _ => Role::Replica,
    };
    Some(Identity {
        project,
        service,
        number,
        spec_hash,
        role,
        managed,
        working_dir: labels.get(compose::WORKING_DIR).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_compose_version_label_is_a_version_compose_can_compare() {
        let [(k, v), (bk, bv)] = version_labels();
        assert_eq!((k.as_str(), bk.as_str()), (compose::VERSION, VERSION));
        // docker-compose 1.x: LooseVersion(v) < LooseVersion("1.21.0") must compare numbers.
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts >= vec![1, 21, 0], "{v}");
        assert_eq!(bv, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn reads_berth_labels() {
        let id = identity(&l(&[
            (MANAGED, "true"),
            (PROJECT, "shop"),
            (SERVICE, "web"),
            (compose::NUMBER, "2"),
            (SPEC_HASH, "abc"),
            (ROLE, "job"),
        ]))
        .unwrap();
        assert_eq!(
            (
                id.project.as_str(),
                id.service.as_str(),
                id.number,
                id.spec_hash.as_str(),
                id.role,
                id.managed
            ),
            ("shop", "web", 2, "abc", Role::Job, true)
        );
    }

    #[test]
    fn compose_containers_are_taken_over_with_an_empty_hash() {
        let id = identity(&l(&[
            (compose::PROJECT, "shop"),
            (compose::SERVICE, "db"),
            (compose::NUMBER, "1"),
            (compose::CONFIG_HASH, "x"),
        ]))
        .unwrap();
        assert!(!id.managed);
        assert_eq!(id.spec_hash, "");
    }

    #[test]
    fn unrelated_and_one_off_containers_are_ignored() {
        assert!(identity(&l(&[("app", "x")])).is_none());
        assert!(
            identity(&l(&[
                (compose::PROJECT, "shop"),
                (compose::SERVICE, "db"),
                (compose::ONEOFF, "True")
            ]))
            .is_none()
        );
    }
}
