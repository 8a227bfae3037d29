//! What a round observes besides the container list: the inventory (networks, volumes,
//! images) and the restart counts of gated containers.
//!
//! Pure: a function of the desired state, the container list (with the previous round's
//! feedback) and the records, computed before the planner runs so that it runs once per round
//! (see `round`). It over-approximates: the inventory is listed unless every service is
//! settled — running its desired revision on every replica, no rollout in progress, nothing
//! to heal, every job's current revision run — because only an unsettled service can make the
//! planner create anything or look an image up. [`housekeeping`] adds it on a process's first
//! round (the planner's sweep of pins no record owns) and while `--prune` has orphaned
//! containers to remove (their networks go with them). A settled host costs one engine call a
//! round after the first.
//! Should the planner still ask for something out of scope, [`unobserved`] says what, and the
//! round leaves the plan unexecuted and observes it next time.

use std::collections::BTreeSet;

use super::observed::{ObservedContainer, ObservedState};
use super::plan::{Plan, PlanOptions, Records};
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
    /// Read these compose containers' effective configurations (a takeover may adopt them).
    pub configs: BTreeSet<String>,
}

impl Scope {
    /// Nothing beyond the containers.
    pub fn is_empty(&self) -> bool {
        !self.inventory && self.inspect.is_empty() && self.configs.is_empty()
    }

    /// Both scopes together.
    pub fn union(mut self, other: &Scope) -> Scope {
        self.inventory |= other.inventory;
        self.inspect.extend(other.inspect.iter().cloned());
        self.configs.extend(other.configs.iter().cloned());
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
    scope.configs = super::adopt::wanted(desired, observed, records);
    scope
}

/// What the planner's housekeeping needs besides the services: the inventory on a process's
/// first round (`first`: pin tags no record owns — left by a kill during an unpin — and the
/// networks of pruned projects whose containers went before a kill are only seen there), and
/// with `--prune` while berth's containers of projects no longer desired run (their networks
/// go once they are removed).
pub fn housekeeping(
    desired: &DesiredState,
    observed: &ObservedState,
    opts: PlanOptions,
    first: bool,
) -> Scope {
    let orphaned = || {
        observed
            .containers
            .iter()
            .any(|c| c.identity.managed && !desired.projects.contains_key(&c.identity.project))
    };
    Scope {
        inventory: first || (opts.prune && orphaned()),
        ..Scope::default()
    }
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
        configs: plan
            .read_configs
            .iter()
            .filter(|id| !observed.configs.contains_key(*id))
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
                // One lacking a network, port or mount is repaired or replaced (see drift).
                && !observed.drift.contains_key(&c.id)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::desired::{LoadOptions, load_inline};
    use crate::engine::ContainerSummary;
    use crate::engine::labels::{self, compose};
    use crate::store::{Rollout, RolloutKind};

    fn desired(yaml: &str) -> DesiredState {
        let l = load_inline(yaml, &LoadOptions::default());
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    }

    fn web(d: &DesiredState) -> &Service {
        &d.projects["shop"].services["web"]
    }

    /// Replica `n` of shop/web with `hash`, in `state`.
    fn replica(n: u32, hash: &str, state: RunState) -> ContainerSummary {
        let l: BTreeMap<String, String> = [
            (labels::MANAGED, "true"),
            (labels::PROJECT, "shop"),
            (labels::SERVICE, "web"),
            (labels::SPEC_HASH, hash),
            (labels::ROLE, "replica"),
            (compose::NUMBER, &n.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        ContainerSummary {
            id: format!("id-{n}-{}", &hash[..8]),
            name: labels::container_name("shop", "web", n),
            image_id: "sha256:img".into(),
            labels: l,
            state,
            health: Health::None,
            exit_code: None,
            networks: Vec::new(),
            created: 0,
            actual: None,
        }
    }

    /// shop/web's record with `hash` as its current, stable revision.
    fn records(hash: &str) -> Records {
        let mut rec = ServiceRecord::default();
        let n = rec.begin(hash, "app:1", "sha256:img", 1).number;
        rec.mark_ready(n, 1).unwrap();
        rec.mark_stable(n).unwrap();
        Records::from([(("shop".to_string(), "web".to_string()), rec)])
    }

    const TWO: &str = "name: shop\nservices:\n  web: {image: 'app:1', deploy: {replicas: 2}}\n";

    #[test]
    fn housekeeping_lists_the_inventory_on_the_first_round_and_while_pruning_orphans() {
        let d = desired(TWO);
        let h = web(&d).spec_hash.clone();
        let running = ObservedState::from_lists(vec![replica(1, &h, RunState::Running)]);
        let prune = PlanOptions { prune: true };
        assert!(housekeeping(&d, &running, PlanOptions::default(), true).inventory);
        assert!(housekeeping(&d, &running, prune, false).is_empty());
        // shop left the desired state: its containers are orphans.
        let other = desired("name: other\nservices:\n  x: {image: 'app:1'}\n");
        assert!(housekeeping(&other, &running, prune, false).inventory);
        assert!(housekeeping(&other, &running, PlanOptions::default(), false).is_empty());
    }

    #[test]
    fn a_settled_service_needs_nothing_beyond_the_containers() {
        let d = desired(TWO);
        let h = web(&d).spec_hash.clone();
        let o = ObservedState::from_lists(vec![
            replica(1, &h, RunState::Running),
            replica(2, &h, RunState::Running),
        ]);
        assert!(scope(&d, &o, &records(&h)).is_empty());
    }

    #[test]
    fn a_missing_exited_or_outdated_replica_needs_the_inventory() {
        let d = desired(TWO);
        let h = web(&d).spec_hash.clone();
        let old = "0".repeat(64);
        for (containers, records) in [
            (vec![replica(1, &h, RunState::Running)], records(&h)),
            (
                vec![
                    replica(1, &h, RunState::Running),
                    replica(2, &h, RunState::Exited),
                ],
                records(&h),
            ),
            (
                vec![
                    replica(1, &old, RunState::Running),
                    replica(2, &old, RunState::Running),
                ],
                records(&old),
            ),
            // No record: berth never ran it (or lost its data dir).
            (
                vec![
                    replica(1, &h, RunState::Running),
                    replica(2, &h, RunState::Running),
                ],
                Records::new(),
            ),
        ] {
            let o = ObservedState::from_lists(containers);
            assert!(scope(&d, &o, &records).inventory, "{o:?}");
        }
    }

    #[test]
    fn a_rollout_in_progress_inspects_the_running_replicas_it_may_gate() {
        let d = desired(TWO);
        let new = web(&d).spec_hash.clone();
        let old = "0".repeat(64);
        let mut recs = records(&old);
        let rec = recs.values_mut().next().unwrap();
        let n = rec.begin(&new, "app:1", "sha256:img", 2).number;
        rec.active = Some(Rollout {
            revision: n,
            kind: RolloutKind::Update,
            started_at: 2,
            slots: BTreeMap::new(),
            pre_deploy: None,
            smoke: None,
            paused: None,
        });
        let o = ObservedState::from_lists(vec![
            replica(1, &old, RunState::Running),
            replica(2, &old, RunState::Exited),
            replica(1, &new, RunState::Running),
        ]);
        let s = scope(&d, &o, &recs);
        assert!(s.inventory);
        // The candidate, and the running old replica a same-round revert would gate.
        assert_eq!(
            s.inspect,
            BTreeSet::from([format!("id-1-{}", &new[..8]), format!("id-1-{}", &old[..8])])
        );
    }

    #[test]
    fn a_held_service_is_left_out() {
        let d = desired("name: shop\nservices:\n  web: {image: 'app:1', x-berth: {hold: true}}\n");
        let o = ObservedState::default();
        assert!(scope(&d, &o, &Records::new()).is_empty());
    }
}
