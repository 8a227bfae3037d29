//! Adopting what already matches in a takeover from docker compose: a container compose made
//! whose effective configuration is what berth would create is kept as it is — no recreate, no
//! restart — and a one-shot job compose already ran to exit 0 with the same spec counts as done.
//!
//! Pure. Three functions, in the order a round uses them:
//! - [`view`] (right after the container list, and in the planner) makes every container the
//!   records say berth adopted look like berth's own: managed, with the spec hash it was
//!   adopted for (and the job role for a job's run). Docker cannot add labels to an existing
//!   container, so the record in berth's store is its ownership mark; everything downstream
//!   (observe, drift, rollouts, jobs, status, prune, the claim) sees an ordinary berth container.
//! - [`wanted`] names the compose containers whose configuration the round must read (inspect
//!   of the container and its image; `scope` asks `observe` for them).
//! - [`decide`] compares each with what berth would create ([`compare::differences`]) and gives
//!   a [`Verdict`] per container (shown by `berth plan`) and the records with the adoptions
//!   (saved by the executor before any step of the service: write-ahead, like every record).
//!
//! Only a takeover is considered — a service without a current revision or a rollout in
//! progress, a job whose current revision has no recorded run — and only containers within its
//! replica count: a replica that runs, a job's run that exited 0. Everything else is taken over
//! by the rollout as before (a new container), and the verdict says why.

pub mod compare;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::observed::{ObservedContainer, ObservedState, normalize_reference};
use crate::desired::model::{DesiredState, Project, Service};
use crate::engine::RunState;
use crate::engine::labels::Role;
use crate::reconcile::container_spec::container_create;
use crate::store::{Adoption, Records, ServiceRecord};

pub use compare::{Change, Difference, differences};

/// What becomes of one compose container in a takeover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// The container's name.
    pub container: String,
    /// What happens to it.
    pub fate: Fate,
}

/// What happens to a compose container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Its configuration is what berth would create: kept as it is, berth's from now on.
    Adopted,
    /// It differs: the rollout replaces it (these are the differences).
    Recreated(Vec<Difference>),
    /// It does not run: the rollout replaces it.
    NotRunning,
    /// A job's run that exited 0 with the same spec: done, not run again.
    JobDone,
    /// A job's run with another spec (these are the differences): the job runs again.
    JobToRun(Vec<Difference>),
    /// A job's run that failed under compose (its exit code): the job runs again.
    JobFailed(Option<i64>),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |d: &[Difference]| {
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        write!(f, "{}/{}  {}: ", self.project, self.service, self.container)?;
        match &self.fate {
            Fate::Adopted => write!(
                f,
                "adopted (docker compose made it as berth would; kept running, not recreated)"
            ),
            Fate::Recreated(d) => write!(f, "recreated: {}", list(d)),
            Fate::NotRunning => write!(f, "recreated: it does not run"),
            Fate::JobDone => write!(
                f,
                "job done (exited 0 under docker compose with the same spec; not run again)"
            ),
            Fate::JobToRun(d) => write!(f, "job to run: {}", list(d)),
            Fate::JobFailed(Some(code)) => {
                write!(f, "job to run: it exited {code} under docker compose")
            }
            Fate::JobFailed(None) => {
                write!(f, "job to run: it did not finish under docker compose")
            }
        }
    }
}

/// What [`decide`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// One per compose container considered, in project, service, container order.
    pub verdicts: Vec<Verdict>,
    /// The records that changed (adoptions added, adoptions of vanished containers dropped).
    pub records: BTreeMap<(String, String), ServiceRecord>,
    /// Containers whose configuration is needed but was not read this round (nothing is
    /// decided for them: the round reads it and plans again).
    pub unread: Vec<String>,
}

/// Makes the containers `records` say berth adopted look like berth's own (see the module
/// docs).
pub fn view(observed: &mut ObservedState, records: &Records) {
    let adopted: BTreeMap<&str, (&Adoption, &str, &str)> = records
        .iter()
        .flat_map(|((p, s), r)| {
            r.adopted
                .iter()
                .map(move |a| (a.container.as_str(), (a, p.as_str(), s.as_str())))
        })
        .collect();
    for c in &mut observed.containers {
        let Some((a, project, service)) = adopted.get(c.id.as_str()) else {
            continue;
        };
        if c.identity.managed || c.identity.project != *project || c.identity.service != *service {
            continue;
        }
        c.identity.managed = true;
        c.identity.spec_hash = a.spec_hash.clone();
        c.identity.role = if a.job { Role::Job } else { Role::Replica };
    }
}

/// The compose containers whose effective configuration [`decide`] needs this round.
pub fn wanted(
    desired: &DesiredState,
    observed: &ObservedState,
    records: &Records,
) -> BTreeSet<String> {
    candidates(desired, observed, records)
        .into_iter()
        .filter(|(_, svc, c)| needs_config(svc, c))
        .map(|(_, _, c)| c.id.clone())
        .collect()
}

/// Compares every candidate with what berth would create and adopts what matches (`now`:
/// when). The observed state must have been through [`view`] with the same records.
pub fn decide(
    desired: &DesiredState,
    observed: &ObservedState,
    records: &Records,
    now: u64,
) -> Decision {
    let mut d = Decision::default();
    let empty = ServiceRecord::default();
    // Adoptions of containers that are gone are forgotten.
    let ids: BTreeSet<&str> = observed.containers.iter().map(|c| c.id.as_str()).collect();
    for (key, rec) in records {
        if rec
            .adopted
            .iter()
            .any(|a| !ids.contains(a.container.as_str()))
        {
            let mut r = rec.clone();
            r.adopted.retain(|a| ids.contains(a.container.as_str()));
            d.records.insert(key.clone(), r);
        }
    }
    for (project, svc, c) in candidates(desired, observed, records) {
        let fate = if !needs_config(svc, c) {
            match (svc.job, c.state) {
                (true, _) => Fate::JobFailed(c.exit_code),
                (false, _) => Fate::NotRunning,
            }
        } else {
            let Some(have) = observed.configs.get(&c.id) else {
                d.unread.push(c.id.clone());
                continue;
            };
            // The desired image must be here to compare IDs; the rollout looks it up (or
            // pulls it) and the next round decides.
            let Some(image_id) = desired_image(observed, svc) else {
                continue;
            };
            let role = if svc.job { Role::Job } else { Role::Replica };
            let want = container_create(project, svc, c.identity.number, role, image_id);
            let diff = differences(&want, have);
            match (svc.job, diff.is_empty()) {
                (false, true) => Fate::Adopted,
                (false, false) => Fate::Recreated(diff),
                (true, true) => Fate::JobDone,
                (true, false) => Fate::JobToRun(diff),
            }
        };
        if matches!(fate, Fate::Adopted | Fate::JobDone) {
            let key = (project.name.clone(), svc.name.clone());
            let base = d
                .records
                .get(&key)
                .or_else(|| records.get(&key))
                .unwrap_or(&empty)
                .clone();
            let mut r = base;
            r.adopted.push(Adoption {
                container: c.id.clone(),
                spec_hash: svc.spec_hash.clone(),
                job: svc.job,
                at: now,
            });
            d.records.insert(key, r);
        }
        d.verdicts.push(Verdict {
            project: project.name.clone(),
            service: svc.name.clone(),
            container: c.name.clone(),
            fate,
        });
    }
    d
}

impl Decision {
    /// `records` with this decision's changes.
    pub fn apply(&self, records: &Records) -> Records {
        let mut out = records.clone();
        for (k, r) in &self.records {
            out.insert(k.clone(), r.clone());
        }
        out
    }
}

/// Compose containers of desired services without a rollout in progress: replicas within the
/// replica count, a job's runs.
fn candidates<'a>(
    desired: &'a DesiredState,
    observed: &'a ObservedState,
    records: &Records,
) -> Vec<(&'a Project, &'a Service, &'a ObservedContainer)> {
    let mut out = Vec::new();
    for project in desired.projects.values() {
        for svc in project.services.values() {
            let rec = records.get(&(project.name.clone(), svc.name.clone()));
            // A takeover only: once berth runs a revision of the service (or a rollout is
            // under way), compose containers are replaced by the rollout, never adopted.
            if svc.berth.hold
                || rec.is_some_and(|r| r.active.is_some() || r.control.hold.is_some())
                || (!svc.job && rec.is_some_and(|r| r.current().is_some()))
                || (svc.job && rec.is_some_and(|r| r.job_done(&svc.spec_hash)))
            {
                continue;
            }
            // A job runs once: its newest compose run is the one that counts.
            let mut mine: Vec<&ObservedContainer> = observed
                .service(&project.name, &svc.name)
                .filter(|c| !c.identity.managed && c.identity.role == Role::Replica)
                .filter(|c| svc.job || c.identity.number <= svc.replicas)
                .collect();
            if svc.job {
                mine.truncate(1);
            }
            out.extend(mine.into_iter().map(|c| (project, svc, c)));
        }
    }
    out
}

/// A replica that runs, or a job's run that exited 0: the ones that may be adopted.
fn needs_config(svc: &Service, c: &ObservedContainer) -> bool {
    if svc.job {
        c.state == RunState::Exited && c.exit_code == Some(0)
    } else {
        c.state == RunState::Running
    }
}

/// The ID of the service's desired image, when the image list has it.
fn desired_image<'a>(observed: &'a ObservedState, svc: &Service) -> Option<&'a str> {
    let reference = svc.image.as_deref()?;
    observed
        .inventory
        .as_ref()?
        .images
        .get(&normalize_reference(reference))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};
    use crate::engine::ContainerSummary;
    use crate::engine::effective::EffectiveConfig;
    use crate::engine::labels::compose;
    use crate::engine::{Health, ImageSummary};

    const T0: u64 = 1_700_000_000;

    fn desired() -> DesiredState {
        let l = load_inline(
            "name: shop\nservices:\n  migrate: {image: 'app:1', restart: 'no'}\n  web:\n    \
             image: 'app:1'\n    depends_on: {migrate: {condition: service_completed_successfully}}\n",
            &LoadOptions::default(),
        );
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    }

    fn compose_container(
        id: &str,
        service: &str,
        state: RunState,
        exit: Option<i64>,
    ) -> ContainerSummary {
        ContainerSummary {
            id: id.into(),
            name: format!("shop_{service}_1"),
            image_id: "sha256:app1".into(),
            labels: BTreeMap::from([
                (compose::PROJECT.to_string(), "shop".to_string()),
                (compose::SERVICE.to_string(), service.to_string()),
                (compose::NUMBER.to_string(), "1".to_string()),
            ]),
            state,
            health: Health::None,
            exit_code: exit,
            networks: vec!["shop_default".into()],
            created: 0,
            actual: None,
        }
    }

    /// The stack as compose made it, each container with the configuration berth would create
    /// (`web_env`: an extra variable in web's).
    fn observed(d: &DesiredState, migrate_exit: i64, web_env: Option<&str>) -> ObservedState {
        let mut o = ObservedState::from_lists(vec![
            compose_container("m1", "migrate", RunState::Exited, Some(migrate_exit)),
            compose_container("w1", "web", RunState::Running, None),
        ])
        .with_inventory(
            Vec::new(),
            Vec::new(),
            vec![ImageSummary {
                id: "sha256:app1".into(),
                tags: vec!["app:1".into()],
                digests: Vec::new(),
            }],
        );
        let p = &d.projects["shop"];
        for (id, svc, role) in [("m1", "migrate", Role::Job), ("w1", "web", Role::Replica)] {
            let mut container = container_create(p, &p.services[svc], 1, role, "sha256:app1");
            if let (Some(e), "web") = (web_env, svc) {
                container.env.push(e.to_string());
            }
            o.configs.insert(
                id.to_string(),
                EffectiveConfig {
                    container,
                    ..EffectiveConfig::default()
                },
            );
        }
        o
    }

    #[test]
    fn a_takeover_adopts_what_matches_and_the_view_makes_it_berths() {
        let d = desired();
        let o = observed(&d, 0, None);
        assert_eq!(
            wanted(&d, &o, &Records::new()),
            BTreeSet::from(["m1".to_string(), "w1".to_string()])
        );
        let decision = decide(&d, &o, &Records::new(), T0);
        let fates: Vec<(&str, &Fate)> = decision
            .verdicts
            .iter()
            .map(|v| (v.service.as_str(), &v.fate))
            .collect();
        assert_eq!(
            fates,
            [("migrate", &Fate::JobDone), ("web", &Fate::Adopted)]
        );
        let records = decision.apply(&Records::new());
        let web = &records[&("shop".to_string(), "web".to_string())];
        assert_eq!(web.adopted.len(), 1);
        assert_eq!(
            web.adopted[0].spec_hash,
            d.projects["shop"].services["web"].spec_hash
        );
        let mut viewed = o.clone();
        view(&mut viewed, &records);
        for c in &viewed.containers {
            assert!(c.identity.managed, "{c:?}");
        }
        assert_eq!(viewed.containers[0].identity.role, Role::Job);
        // Adopted, they are no candidates any more.
        assert_eq!(decide(&d, &viewed, &records, T0 + 1), Decision::default());
        // Gone, their adoption is forgotten.
        let gone = ObservedState::from_lists(Vec::new());
        let forgotten = decide(&d, &gone, &records, T0 + 2);
        assert!(forgotten.records.values().all(|r| r.adopted.is_empty()));
    }

    #[test]
    fn what_differs_is_recreated_a_failed_job_runs_again_and_a_service_berth_runs_is_no_takeover() {
        let d = desired();
        let o = observed(&d, 3, Some("DEBUG=1"));
        let decision = decide(&d, &o, &Records::new(), T0);
        let text: Vec<String> = decision.verdicts.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "shop/migrate  shop_migrate_1: job to run: it exited 3 under docker compose",
                "shop/web  shop_web_1: recreated: environment DEBUG: set in the container only",
            ]
        );
        assert!(decision.records.is_empty());
        // Without its configuration read, nothing is decided: the round reads it first.
        let mut unread = o.clone();
        unread.configs.clear();
        assert_eq!(decide(&d, &unread, &Records::new(), T0).unread, ["w1"]);
        // A service with a current revision is no takeover: not even inspected.
        let mut records = Records::new();
        let mut rec = ServiceRecord::default();
        let n = rec.begin("h", "app:1", "sha256:app1", T0).number;
        rec.mark_ready(n, T0).unwrap();
        rec.mark_stable(n).unwrap();
        records.insert(("shop".into(), "web".into()), rec);
        assert_eq!(wanted(&d, &o, &records), BTreeSet::new());
    }
}
