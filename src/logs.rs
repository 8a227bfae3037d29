//! `berth logs`: which containers' output to show and how each line is prefixed, like
//! `docker compose logs` (`shop-web-1  | …`), and a failed revision's kept log lines.
//!
//! Pure: the CLI (`cli/logs`) lists the containers and reads their output through the engine
//! trait, or reads the record from the store, and prints what these functions give it.

use crate::engine::ContainerSummary;
use crate::engine::labels::{self, Role};
use crate::store::ServiceRecord;

/// What `berth logs` was asked for: `PROJECT` or `PROJECT/SERVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsTarget {
    /// The project.
    pub project: String,
    /// One service of it, or all.
    pub service: Option<String>,
}

impl std::str::FromStr for LogsTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (project, service) = match s.split_once('/') {
            Some((p, svc)) => (p, Some(svc)),
            None => (s, None),
        };
        if project.is_empty() || service.is_some_and(|s| s.is_empty() || s.contains('/')) {
            return Err(format!(
                "expected PROJECT or PROJECT/SERVICE (e.g. shop or shop/web), got {s:?}"
            ));
        }
        Ok(LogsTarget {
            project: project.to_string(),
            service: service.map(str::to_string),
        })
    }
}

/// One container whose output is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Container ID.
    pub id: String,
    /// Container name: the prefix of its lines.
    pub name: String,
}

/// The containers of `target` (berth's and those compose made), in service, role and replica
/// order: replicas first, then job runs and gate runs.
pub fn select(containers: &[ContainerSummary], target: &LogsTarget) -> Vec<Source> {
    let mut picked: Vec<(String, Role, u32, Source)> = containers
        .iter()
        .filter_map(|c| {
            let id = labels::identity(&c.labels)?;
            let wanted = id.project == target.project
                && target.service.as_ref().is_none_or(|s| *s == id.service);
            wanted.then(|| {
                (
                    id.service,
                    id.role,
                    id.number,
                    Source {
                        id: c.id.clone(),
                        name: c.name.trim_start_matches('/').to_string(),
                    },
                )
            })
        })
        .collect();
    picked.sort_by(|a, b| (&a.0, a.1, a.2, &a.3.name).cmp(&(&b.0, b.1, b.2, &b.3.name)));
    picked.into_iter().map(|(_, _, _, s)| s).collect()
}

/// The prefix of a line from `name`, padded to `width` as compose does.
pub fn prefix(name: &str, width: usize) -> String {
    format!("{name:<width$} | ")
}

/// The kept log lines of revision `number` (a failed candidate's or gate's): `Err` says why
/// there are none.
pub fn kept(rec: &ServiceRecord, number: u64) -> Result<&str, String> {
    let Some(r) = rec.revision(number) else {
        let known: Vec<String> = rec
            .revisions
            .iter()
            .map(|r| format!("r{}", r.number))
            .collect();
        return Err(format!(
            "no revision r{number} in the record (it has {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    match r.logs.as_deref() {
        Some(l) if !l.trim().is_empty() => Ok(l),
        _ => Err(format!(
            "r{number} has no kept log lines (berth keeps them for a failed candidate or gate; its running containers' output: berth logs without --revision)"
        )),
    }
}
