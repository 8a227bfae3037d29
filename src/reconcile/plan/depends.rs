//! The planner's dependency order and `depends_on` conditions: services are planned
//! dependencies first, and a service whose dependency is not in its condition waits (or is
//! blocked, when the dependency cannot get there without a change).
//!
//! Pure, part of the planner.

use std::collections::BTreeSet;

use super::{Note, Planner};
use crate::desired::model::{Condition, Project, Service};
use crate::engine::{Health, RunState};
use crate::reconcile::observed::ObservedContainer;
use crate::reconcile::reason::{BlockReason, DependencyState, Unmet, WaitReason};

impl Planner<'_> {
    /// The first dependency not in its condition; [`Unmet::Blocked`] when it cannot become so
    /// without a change (a failed job).
    pub(super) fn unmet_dependency(&self, project: &Project, svc: &Service) -> Option<Unmet> {
        for (dep, d) in &svc.depends_on {
            let Some(target) = project.services.get(dep) else {
                continue;
            };
            let containers: Vec<&ObservedContainer> = self
                .observed
                .service(&project.name, dep)
                .filter(|c| c.identity.managed && c.identity.spec_hash == target.spec_hash)
                .collect();
            let pending = self.pending.contains(&format!("{}/{dep}", project.name));
            let key = (project.name.clone(), dep.clone());
            let build_failed = self
                .plan
                .records
                .get(&key)
                .or_else(|| self.records.get(&key))
                .is_some_and(|r| target.build.is_some() && r.is_quarantined(&target.spec_hash));
            if target.job && build_failed {
                return Some(Unmet::Blocked(BlockReason::DependencyBuildFailed(
                    dep.clone(),
                )));
            }
            if target.job {
                let done = containers.iter().find(|c| c.state == RunState::Exited);
                let exit = done
                    .and_then(|c| c.exit_code)
                    .or_else(|| self.job_record(&project.name, target));
                match (d.condition, exit) {
                    (_, Some(code))
                        if code != 0 && d.condition == Condition::ServiceCompletedSuccessfully =>
                    {
                        return Some(Unmet::Blocked(BlockReason::DependencyFailed {
                            dep: dep.clone(),
                            code,
                        }));
                    }
                    (Condition::ServiceCompletedSuccessfully, Some(0)) => continue,
                    (Condition::ServiceCompletedSuccessfully, _) => {
                        return Some(Unmet::Wait(WaitReason::Dependency {
                            dep: dep.clone(),
                            state: DependencyState::NotCompleted,
                        }));
                    }
                    _ if (!containers.is_empty() || exit.is_some()) && !pending => continue,
                    _ => {
                        return Some(Unmet::Wait(WaitReason::Dependency {
                            dep: dep.clone(),
                            state: DependencyState::NotStarted,
                        }));
                    }
                }
            }
            let running: Vec<&&ObservedContainer> = containers
                .iter()
                .filter(|c| c.state == RunState::Running)
                .collect();
            let all_running = running.len() >= target.replicas as usize;
            if pending || !all_running {
                return Some(Unmet::Wait(WaitReason::Dependency {
                    dep: dep.clone(),
                    state: DependencyState::NotRunning,
                }));
            }
            if d.condition == Condition::ServiceHealthy
                && running
                    .iter()
                    .any(|c| !matches!(c.health, Health::Healthy | Health::None))
            {
                return Some(Unmet::Wait(WaitReason::Dependency {
                    dep: dep.clone(),
                    state: DependencyState::NotHealthy,
                }));
            }
            if d.condition == Condition::ServiceCompletedSuccessfully {
                return Some(Unmet::Wait(WaitReason::Dependency {
                    dep: dep.clone(),
                    state: DependencyState::NeverCompletes,
                }));
            }
        }
        None
    }
}

/// The note of a service whose dependency is not in its condition.
pub(super) fn unmet_note(project: &Project, svc: &Service, unmet: Unmet) -> Note {
    match unmet {
        Unmet::Blocked(reason) => Note::Blocked {
            project: project.name.clone(),
            service: Some(svc.name.clone()),
            reason,
        },
        Unmet::Wait(reason) => Note::Wait {
            project: project.name.clone(),
            service: svc.name.clone(),
            reason,
        },
    }
}

/// Services in dependency order (dependencies first), ties by name. Validation guarantees
/// there is no cycle; a cycle would still terminate (visited set).
pub(super) fn topo_order(project: &Project) -> Vec<String> {
    fn visit(p: &Project, name: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        if let Some(s) = p.services.get(name) {
            for dep in s.depends_on.keys() {
                visit(p, dep, seen, out);
            }
            out.push(name.to_string());
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in project.services.keys() {
        visit(project, name, &mut seen, &mut out);
    }
    out
}
