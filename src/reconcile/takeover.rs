//! What a takeover from `docker compose` must say before berth does anything: compose
//! containers started from a project's directory that run under another project name than
//! the one berth uses (berth would deploy a second copy beside them, with new, empty volumes).
//!
//! Pure: desired state × observed containers → [`NameMismatch`]es. The planner turns each into
//! a note shown first in `berth plan` and `berth apply`; `round` logs them as warnings.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::observed::ObservedState;
use crate::desired::model::{DesiredState, NameSource};

/// Compose containers from a project's directory running under another project name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMismatch {
    /// The name berth uses for the project.
    pub project: String,
    /// Where that name came from.
    pub source: NameSource,
    /// The project's directory (the containers' `working_dir` label).
    pub dir: String,
    /// The project name the compose containers run under.
    pub running_as: String,
    /// How many of its containers there are.
    pub containers: usize,
}

impl fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.source {
            NameSource::Environment => "COMPOSE_PROJECT_NAME in berth's environment",
            NameSource::DotEnv => "COMPOSE_PROJECT_NAME in the project's .env",
            NameSource::NameKey => "the top-level name:",
            NameSource::Directory => "the directory's name",
        };
        write!(
            f,
            "{project}  warning: {n} container(s) docker compose started from {dir} run as project \
             {running:?}, but berth names this project {project:?} (from {from}): berth would \
             deploy a second copy beside them, with new volumes. To take them over, write \
             `name: {running}` in the compose file or COMPOSE_PROJECT_NAME={running} in {dir}/.env",
            project = self.project,
            n = self.containers,
            dir = self.dir,
            running = self.running_as,
        )
    }
}

/// Every desired project whose directory has compose-made containers under another name, one
/// entry per (project, other name), in project order.
pub fn name_mismatches(desired: &DesiredState, observed: &ObservedState) -> Vec<NameMismatch> {
    let mut out = Vec::new();
    for project in desired.projects.values() {
        let dir = trimmed(&project.dir);
        let mut others: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &observed.containers {
            let id = &c.identity;
            if !id.managed
                && id.project != project.name
                && id.working_dir.as_deref().map(|w| w.trim_end_matches('/')) == Some(&dir)
            {
                *others.entry(&id.project).or_default() += 1;
            }
        }
        out.extend(others.into_iter().map(|(other, n)| NameMismatch {
            project: project.name.clone(),
            source: project.name_source,
            dir: dir.clone(),
            running_as: other.to_string(),
            containers: n,
        }));
    }
    out
}

fn trimmed(dir: &Path) -> String {
    let s = dir.display().to_string();
    match s.trim_end_matches('/') {
        "" => s,
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};
    use crate::engine::labels::compose;
    use crate::engine::{ContainerSummary, Health, RunState};

    fn compose_container(project: &str, service: &str, dir: &str) -> ContainerSummary {
        ContainerSummary {
            id: format!("{project}-{service}"),
            name: format!("{project}_{service}_1"),
            image_id: "sha256:x".into(),
            labels: BTreeMap::from([
                (compose::PROJECT.to_string(), project.to_string()),
                (compose::SERVICE.to_string(), service.to_string()),
                (compose::WORKING_DIR.to_string(), dir.to_string()),
            ]),
            state: RunState::Running,
            health: Health::None,
            exit_code: None,
            networks: Vec::new(),
            created: 0,
            actual: None,
        }
    }

    fn desired() -> DesiredState {
        let l = load_inline(
            "name: shop\nservices:\n  db: {image: pg:16}\n  web: {image: app:1}\n",
            &LoadOptions::default(),
        );
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    }

    #[test]
    fn compose_containers_from_the_directory_under_another_name_are_named() {
        let d = desired();
        let dir = d.projects["shop"].dir.display().to_string();
        let observed = ObservedState::from_lists(vec![
            compose_container("myshop", "db", &dir),
            compose_container("myshop", "web", &format!("{dir}/")),
            compose_container("shop", "web", &dir),
            compose_container("other", "web", "/srv/other"),
        ]);
        let found = name_mismatches(&d, &observed);
        assert_eq!(
            found,
            [NameMismatch {
                project: "shop".into(),
                source: NameSource::NameKey,
                dir: dir.clone(),
                running_as: "myshop".into(),
                containers: 2,
            }]
        );
        let text = found[0].to_string();
        assert!(text.contains("run as project \"myshop\""), "{text}");
        assert!(
            text.contains("names this project \"shop\" (from the top-level name:)"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "`name: myshop` in the compose file or COMPOSE_PROJECT_NAME=myshop in {dir}/.env"
            )),
            "{text}"
        );
    }

    #[test]
    fn the_same_name_and_berths_own_containers_are_no_mismatch() {
        let d = desired();
        let dir = d.projects["shop"].dir.display().to_string();
        let mut mine = compose_container("old", "web", &dir);
        mine.labels
            .insert(crate::engine::labels::MANAGED.into(), "true".into());
        let observed = ObservedState::from_lists(vec![compose_container("shop", "db", &dir), mine]);
        assert_eq!(name_mismatches(&d, &observed), []);
    }
}
