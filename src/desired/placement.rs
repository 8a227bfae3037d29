//! Placement: which hosts of the fleet run each project, from the hosts file (projects listed
//! under a host) and each project's `x-berth.placement` (hosts by name, label selectors), and
//! the host this load is for.
//!
//! Pure; runs in `load` once every project is converted, before the host-wide checks, so that
//! a host is checked (and later planned) with its own projects only. Every problem is a
//! positioned error — a project placed on no host, a name or a selector that matches no host,
//! a host this load is for that the hosts file does not list — and an error makes the whole
//! desired state invalid, so nothing running is touched. Without a hosts file nothing is
//! placed and nothing filtered: berth behaves as on a single host.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::{Diagnostics, Loc};
use super::hosts::HOSTS_FILE;
use super::model::{DesiredState, Fleet, HostsFile, Project};
use super::syntax::suggest;

/// Which host a load is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HostChoice {
    /// Every host: nothing is filtered (`--all-hosts`, and library callers that give nothing).
    #[default]
    Every,
    /// The machine's host name: applies only when the root has a hosts file.
    Machine(String),
    /// `--host NAME`: the root must have a hosts file that lists it.
    Named(String),
}

/// What the root holds in the way of a hosts file.
#[derive(Debug, Clone)]
pub enum HostsSource {
    /// No hosts file: a single host, as before fleets.
    Absent,
    /// There is one, but it has errors (already reported).
    Invalid,
    /// A valid hosts file.
    Valid(HostsFile),
}

/// Places every project; `None` (and nothing placed) without a valid hosts file. `listed` is
/// every project found, also those that failed to load (hosts may list them).
pub fn place(
    state: &DesiredState,
    listed: &[(String, String)],
    hosts: HostsSource,
    choice: &HostChoice,
    diags: &mut Diagnostics,
) -> Option<Fleet> {
    let hosts = match hosts {
        HostsSource::Valid(h) => h,
        HostsSource::Invalid => return None,
        HostsSource::Absent => {
            refuse_without_hosts_file(state, choice, diags);
            return None;
        }
    };
    let known: BTreeSet<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    let mut placement: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for host in hosts.hosts.values() {
        for (project, loc) in &host.projects {
            if known.contains(project.as_str()) {
                placement
                    .entry(project.clone())
                    .or_default()
                    .insert(host.name.clone());
            } else {
                let hint = suggest::did_you_mean(project, known.iter().copied());
                diags.error(
                    loc,
                    format!(
                        "hosts.{}.projects names {project:?}, which is not a project of this \
                         repository{hint}",
                        host.name
                    ),
                );
            }
        }
    }
    for project in state.projects.values() {
        let on = placement.entry(project.name.clone()).or_default();
        on.extend(selected(project, &hosts, diags));
        if on.is_empty() && project.placement.is_none() {
            diags.error(
                &first_line(project),
                format!(
                    "project {:?} is placed on no host: add x-berth.placement (hosts: [NAME] or \
                     labels: {{KEY: VALUE}}) to its Compose file, or list it under a host's \
                     projects: in {}",
                    project.name, hosts.file
                ),
            );
        }
    }
    let this_host = match choice {
        HostChoice::Every => None,
        HostChoice::Machine(name) | HostChoice::Named(name) => {
            if !hosts.hosts.contains_key(name) {
                let how = match choice {
                    HostChoice::Machine(_) => "this machine's host name",
                    _ => "given by --host",
                };
                let hint = suggest::did_you_mean(name, hosts.hosts.keys().map(String::as_str));
                diags.error(
                    &Loc::file(hosts.file.as_str()),
                    format!(
                        "host {name:?} ({how}) is not in {}{hint}: add it under hosts:, or give \
                         --host with one of: {}",
                        hosts.file,
                        hosts.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            Some(name.clone())
        }
    };
    // In the hosts file's (name) order, for tables and waves.
    let placement = placement
        .into_iter()
        .map(|(p, on)| (p, on.into_iter().collect()))
        .collect();
    Some(Fleet {
        hosts,
        placement,
        this_host,
    })
}

/// The hosts a project's `x-berth.placement` selects; errors for names and selectors that
/// match no host.
fn selected(project: &Project, hosts: &HostsFile, diags: &mut Diagnostics) -> BTreeSet<String> {
    let mut on = BTreeSet::new();
    let Some(p) = &project.placement else {
        return on;
    };
    for (name, loc) in &p.hosts {
        if hosts.hosts.contains_key(name) {
            on.insert(name.clone());
        } else {
            let hint = suggest::did_you_mean(name, hosts.hosts.keys().map(String::as_str));
            diags.error(
                loc,
                format!(
                    "x-berth.placement.hosts names {name:?}, which is not a host in {}{hint}",
                    hosts.file
                ),
            );
        }
    }
    if !p.labels.is_empty() {
        let matching: Vec<&str> = hosts
            .hosts
            .values()
            .filter(|h| p.labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
            .map(|h| h.name.as_str())
            .collect();
        if matching.is_empty() {
            let wanted: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            diags.error(
                p.labels_loc.as_ref().unwrap_or(&p.loc),
                format!(
                    "x-berth.placement.labels {} match no host in {}: label a host with them, or \
                     change the selector",
                    wanted.join(","),
                    hosts.file
                ),
            );
        }
        on.extend(matching.into_iter().map(str::to_string));
    }
    on
}

/// Without a hosts file, placement and `--host` have nothing to refer to.
fn refuse_without_hosts_file(state: &DesiredState, choice: &HostChoice, diags: &mut Diagnostics) {
    for project in state.projects.values() {
        if let Some(p) = &project.placement {
            diags.error(
                &p.loc,
                format!(
                    "x-berth.placement needs a hosts file: add {HOSTS_FILE} at the root of the \
                     desired state, listing the hosts (docs/fleet.md)"
                ),
            );
        }
    }
    if let HostChoice::Named(name) = choice {
        diags.error(
            &Loc::file(HOSTS_FILE),
            format!(
                "--host {name} needs a hosts file, and the desired state has none: add \
                 {HOSTS_FILE} at its root (docs/fleet.md), or leave --host out on a single host"
            ),
        );
    }
}

/// Line 1, column 1 of a project's first Compose file.
fn first_line(project: &Project) -> Loc {
    Loc::new(
        project.files.first().cloned().unwrap_or_default().into(),
        1,
        1,
    )
}

/// Keeps the projects placed on `fleet.this_host` (all of them for every host).
pub fn keep_this_host(fleet: &Fleet, state: &mut DesiredState, listed: &mut Vec<(String, String)>) {
    let Some(me) = &fleet.this_host else {
        return;
    };
    let here = |p: &str| {
        fleet
            .placement
            .get(p)
            .is_some_and(|on| on.iter().any(|h| h == me))
    };
    state.projects.retain(|name, _| here(name));
    listed.retain(|(name, _)| here(name));
}

/// The `--all-hosts` table: one line per project with the hosts it lands on, then one line
/// per host with its projects.
pub fn table(fleet: &Fleet) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let width = fleet
        .placement
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("PROJECT".len());
    let _ = writeln!(out, "{:<width$}  HOSTS", "PROJECT");
    for (project, on) in &fleet.placement {
        let hosts = if on.is_empty() {
            "-".to_string()
        } else {
            on.join(", ")
        };
        let _ = writeln!(out, "{project:<width$}  {hosts}");
    }
    out.push('\n');
    let hwidth = fleet
        .hosts
        .hosts
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max("HOST".len());
    let _ = writeln!(out, "{:<hwidth$}  WAVE  PROJECTS", "HOST");
    for host in fleet.hosts.hosts.keys() {
        let wave = fleet
            .hosts
            .wave_of(host)
            .map(|w| (w + 1).to_string())
            .unwrap_or_else(|| "-".into());
        let projects: Vec<&str> = fleet
            .placement
            .iter()
            .filter(|(_, on)| on.iter().any(|h| h == host))
            .map(|(p, _)| p.as_str())
            .collect();
        let projects = if projects.is_empty() {
            "-".to_string()
        } else {
            projects.join(", ")
        };
        let _ = writeln!(out, "{host:<hwidth$}  {wave:<4}  {projects}");
    }
    out
}
