//! What a round observes besides the container list: the inventory (networks, volumes,
//! images) and the restart counts of gated containers.
//!
//! Pure: a function of the desired state, the container list (with the previous round's
//! feedback) and the records, computed before the planner runs so that it runs once per round
//! (see `round`). It over-approximates: the inventory is listed unless every service is
//! settled — running its desired revision on every replica, no rollout in progress, nothing
//! to heal, every job's current revision run — because only an unsettled service can make the
//! planner create anything or look an image up. A settled host costs one engine call a round.
//! Should the planner still ask for something out of scope, [`unobserved`] says what, and the
//! round leaves the plan unexecuted and observes it next time.

use std::collections::BTreeSet;

use super::observed::{ObservedContainer, ObservedState};
use super::plan::{Plan, Records};
use super::probe::ProbeStatus;
use crate::desired::DesiredState;
use crate::desired::model::{Project, Service};
use crate::engine::labels::Role;
use crate::engine::{Health, RunState};
use crate::store::ServiceRecord;

/// What a round observes beyond the containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// List networks, volumes and images.
    pub inventory: bool,
    /// Inspect these containers for their restart counts (the readiness gate reads them).
    pub inspect: BTreeSet<String>,
}

impl Scope {
    /// Nothing beyond the containers.
    pub fn is_empty(&self) -> bool {
        !self.inventory && self.inspect.is_empty()
    }

    /// Both scopes together.
    pub fn union(mut self, other: &Scope) -> Scope {
        self.inventory |= other.inventory;
        self.inspect.extend(other.inspect.iter().cloned());
        self
    }
}

/// What the planner will need this round, from the containers observed so far.
pub fn scope(desired: &DesiredState, observed: &ObservedState, records: &Records) -> Scope {
    let empty = ServiceRecord::default();
    let mut scope = Scope::default();
    for project in desired.projects.values() {
        for svc in project.services.values() {
            // The planner leaves a service held by `x-berth.hold` alone.
            if svc.berth.hold {
                continue;
            }
            let key = (project.name.clone(), svc.name.clone());
            let rec = records.get(&key).unwrap_or(&empty);
            let mine: Vec<&ObservedContainer> =
                observed.service(&project.name, &svc.name).collect();
            if svc.job {
                scope.inventory |= !job_settled(svc, rec, &mine);
                continue;
            }
            scope.inventory |= !settled(project, svc, rec, &mine, observed);
            scope.inspect.extend(gated(svc, rec, &mine));
        }
    }
    scope
}

/// What `plan` asked for that `observed` does not hold: empty unless [`scope`] missed it.
pub fn unobserved(plan: &Plan, observed: &ObservedState) -> Scope {
    Scope {
        inventory: observed.inventory.is_none() && plan.creates_anything(),
        inspect: plan
            .inspect
            .iter()
            .filter(|id| !observed.restart_counts.contains_key(*id))
            .cloned()
            .collect(),
    }
}

/// A job needs nothing created once its current revision ran (its container or its record
/// says so).
fn job_settled(svc: &Service, rec: &ServiceRecord, mine: &[&ObservedContainer]) -> bool {
    rec.job_run(&svc.spec_hash).is_some()
        || mine
            .iter()
            .any(|c| c.identity.managed && c.identity.spec_hash == svc.spec_hash)
}

/// A long-running service whose current revision is the desired one, with no rollout in
/// progress, no error from the last round, and every replica running and well: the rollout
/// state machine can only heal, scale down or tidy up, never create.
fn settled(
    project: &Project,
    svc: &Service,
    rec: &ServiceRecord,
    mine: &[&ObservedContainer],
    observed: &ObservedState,
) -> bool {
    let scope = format!("{}/{}", project.name, svc.name);
    let built_failed = svc
        .image
        .as_ref()
        .is_some_and(|r| observed.build_failures.contains_key(r));
    if rec.active.is_some()
        || observed.step_errors.contains_key(&scope)
        || built_failed
        || rec.current().is_none_or(|r| r.spec_hash != svc.spec_hash)
    {
        return false;
    }
    (1..=svc.replicas).all(|n| {
        mine.iter().any(|c| {
            c.identity.managed
                && c.identity.role == Role::Replica
                && c.identity.number == n
                && c.identity.spec_hash == svc.spec_hash
                && c.state == RunState::Running
                && matches!(c.health, Health::Healthy | Health::None)
                && observed
                    .probes
                    .get(&c.id)
                    .is_none_or(|p| p.liveness != Some(ProbeStatus::Failing))
        })
    })
}

/// The running replicas a rollout in progress may put through the readiness gate this round:
/// those of its target revision and, should it fail and revert at once, of the current one.
fn gated<'a>(
    svc: &'a Service,
    rec: &'a ServiceRecord,
    mine: &'a [&'a ObservedContainer],
) -> impl Iterator<Item = String> + 'a {
    let hashes: BTreeSet<&str> = match &rec.active {
        None => BTreeSet::new(),
        Some(a) => rec
            .revision(a.revision)
            .into_iter()
            .chain(rec.current())
            .map(|r| r.spec_hash.as_str())
            .chain([svc.spec_hash.as_str()])
            .collect(),
    };
    mine.iter()
        .filter(move |c| {
            c.identity.managed
                && c.identity.role == Role::Replica
                && c.state == RunState::Running
                && hashes.contains(c.identity.spec_hash.as_str())
        })
        .map(|c| c.id.clone())
}
