//! Human and JSON summaries of a load, for `berth validate`.
//!
//! Pure formatting. Never prints values that may be secret: the summary counts things and
//! names images and hashes, never environment values.

use serde::Serialize;

use crate::desired::model::{Project, Service};
use crate::desired::{Diagnostics, Loaded};

/// One line per project: `name (dir): 4 services (1 job), 2 networks, 1 volume, 0 warnings`.
pub fn summary_text(loaded: &Loaded) -> String {
    let mut out = String::new();
    let Some(state) = &loaded.state else {
        return out;
    };
    for (name, dir) in &loaded.projects {
        let Some(p) = state.projects.get(name) else {
            continue;
        };
        let s = Summary::of(p, dir, &loaded.diagnostics);
        let jobs = if s.jobs > 0 {
            format!(" ({} {})", s.jobs, plural(s.jobs, "job", "jobs"))
        } else {
            String::new()
        };
        let inactive = if s.inactive > 0 {
            format!(", {} inactive (profiles)", s.inactive)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{name} ({}): {} {}{jobs}{inactive}, {} {}, {} {}, {} {}\n",
            if dir.is_empty() {
                loaded.root.display().to_string()
            } else {
                loaded.root.join(dir).display().to_string()
            },
            s.services.len(),
            plural(s.services.len(), "service", "services"),
            s.networks,
            plural(s.networks, "network", "networks"),
            s.volumes,
            plural(s.volumes, "volume", "volumes"),
            s.warnings,
            plural(s.warnings, "warning", "warnings"),
        ));
    }
    out
}

/// The closing line after diagnostics: `2 errors, 1 warning`.
pub fn counts(d: &Diagnostics) -> String {
    format!(
        "{} {}, {} {}",
        d.errors(),
        plural(d.errors(), "error", "errors"),
        d.warnings(),
        plural(d.warnings(), "warning", "warnings")
    )
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The JSON report of `berth validate --format json`.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// True when there are no errors.
    pub valid: bool,
    /// Every project found, also when the desired state is invalid (then without services:
    /// only valid states are converted in full).
    pub projects: Vec<Summary<'a>>,
    /// Every diagnostic, sorted by position.
    pub diagnostics: Vec<&'a crate::desired::Diagnostic>,
    /// With a hosts file: the host loaded for (`null` for every host) and where each project
    /// of the repository lands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetReport<'a>>,
}

/// The fleet part of the JSON report.
#[derive(Debug, Serialize)]
pub struct FleetReport<'a> {
    /// The host this load is for; `None` with `--all-hosts`.
    pub host: Option<&'a str>,
    /// Project → the hosts it lands on.
    pub placement: &'a std::collections::BTreeMap<String, Vec<String>>,
}

/// Counts and service identities of one project.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    /// Project name.
    pub name: &'a str,
    /// Directory relative to the root.
    pub dir: &'a str,
    /// Services.
    pub services: Vec<ServiceSummary<'a>>,
    /// Jobs among them.
    pub jobs: usize,
    /// Services skipped for inactive profiles.
    pub inactive: usize,
    /// Networks used.
    pub networks: usize,
    /// Named volumes declared.
    pub volumes: usize,
    /// Errors in this project's files.
    pub errors: usize,
    /// Warnings in this project's files.
    pub warnings: usize,
}

/// One service's identity.
#[derive(Debug, Serialize)]
pub struct ServiceSummary<'a> {
    /// Name.
    pub name: &'a str,
    /// Image reference.
    pub image: Option<&'a str>,
    /// Replicas.
    pub replicas: u32,
    /// One-shot job.
    pub job: bool,
    /// Spec hash.
    pub spec_hash: &'a str,
}

impl<'a> Summary<'a> {
    fn of(p: &'a Project, dir: &'a str, d: &Diagnostics) -> Self {
        let used_default = p
            .services
            .values()
            .any(|s| s.networks.is_empty() && s.network_mode.is_none());
        let networks = p
            .networks
            .keys()
            .filter(|k| if *k == "default" { used_default } else { true })
            .count();
        Summary {
            name: &p.name,
            dir: if dir.is_empty() { "." } else { dir },
            services: p.services.values().map(service_summary).collect(),
            jobs: p.services.values().filter(|s| s.job).count(),
            inactive: p.inactive_services.len(),
            networks,
            volumes: p.volumes.len(),
            errors: d.errors_under(dir),
            warnings: d.warnings_under(dir),
        }
    }

    /// A project of an invalid desired state: its name, directory and diagnostic counts.
    fn bare(name: &'a str, dir: &'a str, d: &Diagnostics) -> Self {
        Summary {
            name,
            dir: if dir.is_empty() { "." } else { dir },
            services: Vec::new(),
            jobs: 0,
            inactive: 0,
            networks: 0,
            volumes: 0,
            errors: d.errors_under(dir),
            warnings: d.warnings_under(dir),
        }
    }
}

fn service_summary(s: &Service) -> ServiceSummary<'_> {
    ServiceSummary {
        name: &s.name,
        image: s.image.as_deref(),
        replicas: s.replicas,
        job: s.job,
        spec_hash: &s.spec_hash,
    }
}

/// Builds the JSON report.
pub fn json(loaded: &Loaded) -> JsonReport<'_> {
    let projects = loaded
        .projects
        .iter()
        .map(
            |(name, dir)| match loaded.state.as_ref().and_then(|s| s.projects.get(name)) {
                Some(p) => Summary::of(p, dir, &loaded.diagnostics),
                None => Summary::bare(name, dir, &loaded.diagnostics),
            },
        )
        .collect();
    JsonReport {
        valid: loaded.state.is_some(),
        projects,
        diagnostics: loaded.diagnostics.sorted(),
        fleet: loaded
            .state
            .as_ref()
            .and_then(|s| s.fleet.as_ref())
            .map(|f| FleetReport {
                host: f.this_host.as_deref(),
                placement: &f.placement,
            }),
    }
}
