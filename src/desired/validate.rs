//! Cross-checks that need more than one field: dependencies (unknown targets, cycles, jobs),
//! replicas against fixed names and ports, and, across every project of the host, duplicate
//! `container_name`s and host-port clashes.
//!
//! Pure. Runs after every project is converted; also marks one-shot jobs (`Service::job`).

use std::collections::{BTreeMap, BTreeSet};

use super::diag::{Diagnostics, Loc};
use super::model::{Condition, DesiredState, Project, Protocol, Restart};
use super::syntax::suggest;

/// Checks `state` and marks jobs; problems go into `diags`.
pub fn validate(state: &mut DesiredState, diags: &mut Diagnostics) {
    for project in state.projects.values_mut() {
        check_dependencies(project, diags);
        mark_jobs(project, diags);
        check_replicas(project, diags);
    }
    check_host_wide(state, diags);
}

/// Like [`validate`] for a whole fleet: the host-wide checks (container names, host ports) run
/// once per host, over the projects placed there (`placement`: project → hosts).
pub fn validate_per_host(
    state: &mut DesiredState,
    placement: &BTreeMap<String, Vec<String>>,
    diags: &mut Diagnostics,
) {
    for project in state.projects.values_mut() {
        check_dependencies(project, diags);
        mark_jobs(project, diags);
        check_replicas(project, diags);
    }
    let hosts: BTreeSet<&String> = placement.values().flatten().collect();
    for host in hosts {
        let here = DesiredState {
            projects: state
                .projects
                .iter()
                .filter(|(name, _)| placement.get(*name).is_some_and(|on| on.contains(host)))
                .map(|(name, p)| (name.clone(), p.clone()))
                .collect(),
            fleet: None,
        };
        check_host_wide(&here, diags);
    }
}

fn check_dependencies(p: &Project, diags: &mut Diagnostics) {
    for svc in p.services.values() {
        for (dep, d) in &svc.depends_on {
            if *dep == svc.name {
                diags.error(
                    &d.loc,
                    format!(
                        "service {:?} depends on itself; remove that entry",
                        svc.name
                    ),
                );
            } else if p.inactive_services.contains(dep) {
                if d.required {
                    diags.error(
                        &d.loc,
                        format!(
                            "service {:?} depends on {dep:?}, whose profiles are not active: \
                             activate them with --profile, or set required: false",
                            svc.name
                        ),
                    );
                }
            } else if !p.services.contains_key(dep) {
                let hint = suggest::did_you_mean(dep, p.services.keys().map(String::as_str));
                let msg = format!(
                    "depends_on names {dep:?}, which is not a service of project {:?}{hint}",
                    p.name
                );
                if d.required {
                    diags.error(&d.loc, msg)
                } else {
                    diags.warning(&d.loc, msg)
                }
            }
        }
    }
    // Cycles: depth-first search, reporting each cycle once from its smallest member.
    let mut reported = BTreeSet::new();
    for start in p.services.keys() {
        let mut path = vec![start.as_str()];
        find_cycles(p, start, &mut path, &mut reported, diags);
    }
}

fn find_cycles<'a>(
    p: &'a Project,
    at: &'a str,
    path: &mut Vec<&'a str>,
    reported: &mut BTreeSet<Vec<String>>,
    diags: &mut Diagnostics,
) {
    // Depth is bounded by the number of services: a name never repeats on the path.
    let Some(svc) = p.services.get(at) else {
        return;
    };
    for (dep, d) in &svc.depends_on {
        if dep == at || !p.services.contains_key(dep) {
            continue;
        }
        if let Some(i) = path.iter().position(|n| n == dep) {
            let cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            let mut key = cycle.clone();
            key.sort();
            if reported.insert(key) {
                let mut names = cycle.clone();
                names.push(dep.clone());
                diags.error(
                    &d.loc,
                    format!("dependency cycle: {}; break it by removing one of these depends_on entries", names.join(" -> ")),
                );
            }
            continue;
        }
        path.push(dep);
        find_cycles(p, dep, path, reported, diags);
        path.pop();
    }
}

/// A job is a `restart: "no"` or `restart: on-failure` service some dependent awaits with
/// `service_completed_successfully` (an on-failure job is retried until it exits 0, as
/// with compose).
fn mark_jobs(p: &mut Project, diags: &mut Diagnostics) {
    let mut jobs = BTreeSet::new();
    for svc in p.services.values() {
        for (dep, d) in &svc.depends_on {
            let Some(target) = p.services.get(dep) else {
                continue;
            };
            match d.condition {
                Condition::ServiceCompletedSuccessfully
                    if matches!(target.restart, Restart::No | Restart::OnFailure { .. }) =>
                {
                    jobs.insert(dep.clone());
                }
                Condition::ServiceCompletedSuccessfully => diags.error(
                    &d.loc,
                    format!(
                        "service {:?} waits for {dep:?} to complete successfully, but {dep:?} \
                         restarts ({}); a one-shot job needs restart: \"no\" or on-failure",
                        svc.name,
                        restart_name(target.restart)
                    ),
                ),
                Condition::ServiceHealthy
                    if target.healthcheck.as_ref().is_none_or(|h| h.disabled()) =>
                {
                    diags.warning(
                        &d.loc,
                        format!(
                            "service {:?} waits for {dep:?} to be healthy, but {dep:?} defines no \
                             healthcheck; this only works if its image has a HEALTHCHECK",
                            svc.name
                        ),
                    )
                }
                _ => {}
            }
        }
    }
    for j in jobs {
        if let Some(s) = p.services.get_mut(&j) {
            s.job = true;
        }
    }
}

fn restart_name(r: Restart) -> &'static str {
    match r {
        Restart::No => "no",
        Restart::Always => "always",
        Restart::OnFailure { .. } => "on-failure",
        Restart::UnlessStopped => "unless-stopped",
    }
}

fn check_replicas(p: &Project, diags: &mut Diagnostics) {
    for svc in p.services.values() {
        if svc.replicas <= 1 {
            continue;
        }
        if svc.container_name.is_some() {
            diags.error(
                svc.field_locs.get("container_name").unwrap_or(&svc.loc),
                format!(
                    "service {:?} has {} replicas and a container_name; a name can exist only once: \
                     remove container_name or use one replica",
                    svc.name, svc.replicas
                ),
            );
        }
        // A port berth's proxy holds (`x-berth.handoff`) is shared by every replica behind it.
        let held = |port: u16| {
            svc.berth
                .handoff
                .as_ref()
                .is_some_and(|h| h.ports.iter().any(|p| p.published == port))
        };
        if let Some(port) = svc
            .ports
            .iter()
            .find(|p| p.published.is_some_and(|h| !held(h)))
        {
            diags.error(
                &port.loc,
                format!(
                    "service {:?} has {} replicas but publishes fixed host port {}; only one \
                     container can hold it: publish only the container port, use one replica, \
                     or hand the port to berth's proxy (x-berth.handoff)",
                    svc.name,
                    svc.replicas,
                    port.published.unwrap_or_default()
                ),
            );
        }
    }
}

/// One host: container names and host ports must be unique across every project.
fn check_host_wide(state: &DesiredState, diags: &mut Diagnostics) {
    let mut names: BTreeMap<&str, (String, Loc)> = BTreeMap::new();
    let mut ports: BTreeMap<(u16, Protocol), Vec<Publisher<'_>>> = BTreeMap::new();
    for p in state.projects.values() {
        for svc in p.services.values() {
            let who = format!("{}/{}", p.name, svc.name);
            if let Some(n) = &svc.container_name {
                let at = svc.field_locs.get("container_name").unwrap_or(&svc.loc);
                match names.get(n.as_str()) {
                    Some((other, loc)) => diags.error(
                        at,
                        format!("container_name {n:?} of {who} is already used by {other} ({loc}); container names are unique per host"),
                    ),
                    None => {
                        names.insert(n, (who.clone(), at.clone()));
                    }
                }
            }
            for port in &svc.ports {
                let Some(published) = port.published else {
                    continue;
                };
                let seen = ports.entry((published, port.protocol)).or_default();
                let ip = port.host_ip.as_deref();
                if let Some((_, other, loc)) = seen.iter().find(|(oip, _, _)| ips_overlap(*oip, ip))
                {
                    let proto = format!("{:?}", port.protocol).to_lowercase();
                    diags.error(
                        &port.loc,
                        format!(
                            "host port {published}/{proto} of {who} is already published by {other} ({loc}); \
                             pick another host port"
                        ),
                    );
                } else {
                    seen.push((ip, who.clone(), port.loc.clone()));
                }
            }
        }
    }
}

/// Who holds a host port: the host IP, `project/service`, and where it was written.
type Publisher<'a> = (Option<&'a str>, String, Loc);

fn ips_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    let wild = |x: Option<&str>| {
        matches!(
            x,
            None | Some("") | Some("0.0.0.0") | Some("::") | Some("[::]")
        )
    };
    wild(a) || wild(b) || a == b
}
