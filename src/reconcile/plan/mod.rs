//! Pure planner: turns (desired, observed) into a [`Plan`] — one [`Step`] per engine call,
//! each with the cause that justifies it — plus the services that must wait or are blocked.
//!
//! No IO, no clock, no tokio here: `controller`/`apply` gather the inputs and `execute`
//! carries the steps out. The planner is level-triggered: it looks only at what exists, so
//! running it again after applying a plan yields nothing (property-tested). Services whose
//! `depends_on` conditions are not met *now* get no steps this round but a [`Note::Wait`];
//! the next round (after the dependency changed) plans them.
//!
//! `jobs` plans one-shot jobs, `depends` the dependency order and conditions; long-running
//! services are the rollout state machine's (`reconcile::rollout`), which this module calls
//! and which never calls back.
//!
//! Ownership: containers of a managed project without `berth.managed` that berth will not
//! take over (beyond `replicas`, of a service not in the file) get a [`Note::NotOurs`], never
//! a step. Housekeeping, when the inventory is at hand: with `--prune`, the networks berth
//! created for projects no longer desired (after their containers); always, pin tags of known
//! projects that no record owns.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

mod adoption;
mod depends;
mod jobs;
mod orphan;
mod routes;

pub use super::action::{Action, ImageSource, short};
use super::container_spec::{container_create, network_create};
use super::drift;
use super::event::{Event, EventKind};
use super::observed::{ObservedContainer, ObservedState, normalize_reference};
use super::reason::{BlockReason, HeldReason, WaitReason};
use super::rollout;
use super::takeover::{self, NameMismatch};
use crate::desired::model::{DesiredState, Project, PullPolicy, Service};
use crate::engine::labels::{self, Role};
use crate::engine::{RunState, VolumeCreate};
use crate::store::ServiceRecord;
pub use adoption::plan;
use depends::{topo_order, unmet_note};
pub use jobs::record_jobs;
pub use orphan::{
    Preview, PruneOptions, PruneRefusal, check as check_prune, preview, prune_project,
};

/// Planner options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Remove containers of projects that are no longer in the desired state.
    pub prune: bool,
}

/// One step: an action, whose it is, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Project.
    pub project: String,
    /// Service (`None` for project-wide objects: networks, volumes).
    pub service: Option<String>,
    /// The engine call.
    pub action: Action,
    /// Why it is needed.
    pub cause: String,
}

impl Step {
    /// `project/service` or `project`.
    pub fn scope(&self) -> String {
        match &self.service {
            Some(s) => format!("{}/{s}", self.project),
            None => self.project.clone(),
        }
    }
}

/// Something the plan cannot do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The service waits for a dependency; a later round will plan it.
    Wait {
        /// Project.
        project: String,
        /// Service.
        service: String,
        /// What it waits for.
        reason: WaitReason,
    },
    /// Nothing will change until the desired state does (a failed job, a missing external
    /// network).
    Blocked {
        /// Project.
        project: String,
        /// Service (or `None` for the project).
        service: Option<String>,
        /// Why.
        reason: BlockReason,
    },
    /// The service is held (`x-berth.hold`, `berth hold`, `berth rollback`): informational.
    Held {
        /// Project.
        project: String,
        /// Service.
        service: String,
        /// By what.
        reason: HeldReason,
    },
    /// Compose containers from a project's directory run under another project name: said
    /// first, before anything is done (see `reconcile::takeover`).
    ProjectName(NameMismatch),
    /// Containers with the compose labels of a managed project but without berth's ownership
    /// label (`berth.managed`) that berth will not take over — a service not in the project,
    /// a replica beyond `replicas`: berth never touches what it did not create.
    NotOurs {
        /// Project.
        project: String,
        /// Service (as the container's labels say).
        service: String,
        /// Their names.
        containers: Vec<String>,
    },
    /// What a takeover does with one container docker compose made: adopted, recreated (why),
    /// job done or to run (see `reconcile::adopt`). Said before the steps.
    Takeover(crate::reconcile::adopt::Verdict),
    /// A project runs but is no longer desired; `--prune` removes it.
    Orphan {
        /// Project.
        project: String,
        /// How many containers it has.
        containers: usize,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Wait {
                project,
                service,
                reason,
            } => write!(f, "{project}/{service}  waits: {reason}"),
            Note::Blocked {
                project,
                service: Some(s),
                reason,
            } => write!(f, "{project}/{s}  blocked: {reason}"),
            Note::Blocked {
                project,
                service: None,
                reason,
            } => write!(f, "{project}  blocked: {reason}"),
            Note::Held {
                project,
                service,
                reason,
            } => write!(f, "{project}/{service}  held: {reason}"),
            Note::ProjectName(m) => write!(f, "{m}"),
            Note::Takeover(v) => write!(f, "{v}"),
            Note::NotOurs {
                project,
                service,
                containers,
            } => write!(
                f,
                "{project}/{service}  not berth's: {} (no berth.managed label; made by hand or by docker compose); left alone",
                containers.join(", ")
            ),
            Note::Orphan {
                project,
                containers,
            } => write!(
                f,
                "{project}  orphaned: {containers} container(s) of a project no longer in the desired state; `berth prune {project}` removes it (--prune: every orphan)"
            ),
        }
    }
}

/// The plan: steps in execution order (networks and volumes, pulls, then per service), and
/// notes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Engine calls.
    pub steps: Vec<Step>,
    /// Waits, blocks, orphans, holds.
    pub notes: Vec<Note>,
    /// Records changed by this round's decisions, saved before the steps of their service.
    pub records: BTreeMap<(String, String), ServiceRecord>,
    /// Events this round's decisions produce.
    pub events: Vec<Event>,
    /// Containers under a readiness gate whose restart count is needed: observe inspects them
    /// and plans again.
    pub inspect: Vec<String>,
    /// The image list was needed but not given: observe lists it and plans again.
    pub needs_inventory: bool,
    /// Compose containers whose effective configuration a takeover needs but was not read:
    /// observe reads them and plans again.
    pub read_configs: Vec<String>,
}

impl Plan {
    /// No engine call to make and no record to save.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.records.is_empty()
    }

    /// True when a step creates something (the planner then needs the inventory lists).
    pub fn creates_anything(&self) -> bool {
        self.needs_inventory
            || self.steps.iter().any(|s| {
                matches!(
                    s.action,
                    Action::Create { .. }
                        | Action::CreateNetwork(_)
                        | Action::CreateVolume(_)
                        | Action::Pull { .. }
                        | Action::Build { .. }
                )
            })
    }

    /// Services waiting for a dependency.
    pub fn waits(&self) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(|n| matches!(n, Note::Wait { .. }))
    }

    /// Blocked services.
    pub fn blocks(&self) -> impl Iterator<Item = &Note> {
        self.notes
            .iter()
            .filter(|n| matches!(n, Note::Blocked { .. }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope_w = self
            .steps
            .iter()
            .map(|s| s.scope().len())
            .max()
            .unwrap_or(0);
        let action_w = self
            .steps
            .iter()
            .map(|s| s.action.to_string().len())
            .max()
            .unwrap_or(0);
        // A project-name mismatch changes what every step means: it comes first, then what a
        // takeover does with each compose container.
        for n in self
            .notes
            .iter()
            .filter(|n| matches!(n, Note::ProjectName(_)))
            .chain(self.notes.iter().filter(|n| matches!(n, Note::Takeover(_))))
        {
            writeln!(f, "{n}")?;
        }
        // A rollout's start says once for the service what changed and in which order its
        // replicas are replaced; its steps then say only which replica.
        for e in self
            .events
            .iter()
            .filter(|e| e.kind == EventKind::RolloutStarted)
        {
            let scope = format!("{}/{}", e.project, e.service);
            writeln!(f, "{scope:<scope_w$}  {}", e.message)?;
        }
        for s in &self.steps {
            writeln!(
                f,
                "{:<scope_w$}  {:<action_w$}  {}",
                s.scope(),
                s.action.to_string(),
                s.cause
            )?;
        }
        for n in self
            .notes
            .iter()
            .filter(|n| !matches!(n, Note::ProjectName(_) | Note::Takeover(_)))
        {
            writeln!(f, "{n}")?;
        }
        Ok(())
    }
}

pub use crate::store::Records;

/// Plans one round once the takeover's adoptions are applied (see [`plan`]).
fn plan_with(
    desired: &DesiredState,
    observed: &ObservedState,
    records: &Records,
    opts: PlanOptions,
    now: u64,
) -> Plan {
    let mut p = Planner {
        observed,
        records,
        now,
        plan: Plan::default(),
        pulls: BTreeSet::new(),
        pending: BTreeSet::new(),
    };
    p.plan.notes.extend(
        takeover::name_mismatches(desired, observed)
            .into_iter()
            .map(Note::ProjectName),
    );
    for project in desired.projects.values() {
        p.project(project);
    }
    let desired_projects: BTreeSet<&str> = desired.projects.keys().map(String::as_str).collect();
    let mut orphans: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in &observed.containers {
        // Only what berth created: a compose project berth never managed is not its to remove.
        if c.identity.managed && !desired_projects.contains(c.identity.project.as_str()) {
            orphans.entry(&c.identity.project).or_default().push(c);
        }
    }
    for (project, containers) in orphans {
        if opts.prune {
            for c in containers {
                p.remove(
                    project,
                    &c.identity.service,
                    c,
                    Duration::from_secs(10),
                    None,
                    "project removed from the desired state (--prune)",
                );
            }
        } else {
            p.plan.notes.push(Note::Orphan {
                project: project.to_string(),
                containers: containers.len(),
            });
        }
    }
    if opts.prune {
        p.prune_networks(&desired_projects);
    }
    p.release_pins(desired);
    p.sweep_pins(desired);
    p.release_routes(desired, opts.prune);
    // Execution order: project objects first, then pulls, then containers (stable otherwise).
    p.plan.steps.sort_by_key(|s| match s.action {
        Action::CreateNetwork(_) | Action::CreateVolume(_) => 0,
        Action::Pull { .. } | Action::Build { .. } => 1,
        _ => 2,
    });
    p.plan
}

struct Planner<'a> {
    observed: &'a ObservedState,
    records: &'a Records,
    now: u64,
    plan: Plan,
    pulls: BTreeSet<String>,
    /// Services (`project/service`) that have steps or waits this round: not ready for
    /// their dependents.
    pending: BTreeSet<String>,
}

impl<'a> Planner<'a> {
    fn step(
        &mut self,
        project: &str,
        service: Option<&str>,
        action: Action,
        cause: impl Into<String>,
    ) {
        if let Some(s) = service {
            self.pending.insert(format!("{project}/{s}"));
        }
        self.plan.steps.push(Step {
            project: project.into(),
            service: service.map(Into::into),
            action,
            cause: cause.into(),
        });
    }

    fn project(&mut self, project: &Project) {
        self.objects(project);
        for name in topo_order(project) {
            let svc = &project.services[&name];
            if svc.berth.hold {
                continue;
            }
            self.service(project, svc);
        }
        // Containers of services that left the project (or went to an inactive profile).
        let observed: Vec<&ObservedContainer> = self
            .observed
            .containers
            .iter()
            .filter(|c| {
                c.identity.project == project.name
                    && !project.services.contains_key(&c.identity.service)
            })
            .collect();
        let mut not_ours: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for c in observed {
            if !c.identity.managed {
                not_ours
                    .entry(&c.identity.service)
                    .or_default()
                    .push(c.name.clone());
                continue;
            }
            let cause = if project.inactive_services.contains(&c.identity.service) {
                "service is only in inactive profiles"
            } else {
                "service removed from the project"
            };
            self.remove(
                &project.name,
                &c.identity.service,
                c,
                Duration::from_secs(10),
                None,
                cause,
            );
        }
        for (service, containers) in not_ours {
            self.not_ours(&project.name, service, containers);
        }
    }

    fn not_ours(&mut self, project: &str, service: &str, containers: Vec<String>) {
        self.plan.notes.push(Note::NotOurs {
            project: project.to_string(),
            service: service.to_string(),
            containers,
        });
    }

    /// Networks and volumes the project's services use.
    fn objects(&mut self, project: &Project) {
        let Some(inv) = &self.observed.inventory else {
            return;
        };
        let mut used: BTreeSet<&str> = BTreeSet::new();
        let mut vols: BTreeSet<&str> = BTreeSet::new();
        for svc in project.services.values() {
            if svc.network_mode.is_none() {
                if svc.networks.is_empty() {
                    used.insert("default");
                }
                used.extend(svc.networks.keys().map(String::as_str));
            }
            for m in &svc.volumes {
                if let (crate::desired::model::MountKind::Volume, Some(s)) = (m.kind, &m.source) {
                    vols.insert(s);
                }
            }
        }
        let mut blocked = Vec::new();
        for key in used {
            let Some(n) = project.networks.get(key) else {
                continue;
            };
            if inv.networks.contains(&n.name) {
                continue;
            }
            if n.external {
                blocked.push(BlockReason::ExternalNetwork(n.name.clone()));
                continue;
            }
            let spec = network_create(project, key, n);
            self.step(
                &project.name,
                None,
                Action::CreateNetwork(spec),
                "network missing",
            );
        }
        for key in vols {
            let Some(v) = project.volumes.get(key) else {
                continue;
            };
            if inv.volumes.contains(&v.name) {
                continue;
            }
            if v.external {
                blocked.push(BlockReason::ExternalVolume(v.name.clone()));
                continue;
            }
            let spec = VolumeCreate {
                name: v.name.clone(),
                driver: v.driver.clone(),
                driver_opts: v.driver_opts.clone(),
                labels: labels::object_labels(
                    &project.name,
                    labels::compose::VOLUME,
                    key,
                    &v.labels,
                ),
            };
            self.step(
                &project.name,
                None,
                Action::CreateVolume(spec),
                "volume missing",
            );
        }
        for reason in blocked {
            self.plan.notes.push(Note::Blocked {
                project: project.name.clone(),
                service: None,
                reason,
            });
        }
    }

    fn service(&mut self, project: &Project, svc: &Service) {
        let scope = format!("{}/{}", project.name, svc.name);
        let mine: Vec<&ObservedContainer> =
            self.observed.service(&project.name, &svc.name).collect();
        // Dependencies first: if one is not in its condition now, the service waits — nothing
        // running is stopped for it.
        if !svc.job {
            self.long_running(project, svc, mine);
            return;
        }
        if let Some(note) = self.job_build_failure(project, svc) {
            self.pending.insert(scope);
            self.plan.notes.push(note);
            return;
        }
        let mut steps = Vec::new();
        let job_note = self.job_steps(project, svc, &mine, &mut steps);
        let needs_start = steps
            .iter()
            .any(|(a, _)| matches!(a, Action::Create { .. } | Action::Start { .. }));
        if needs_start && let Some(unmet) = self.unmet_dependency(project, svc) {
            // A job has no scale-down: none of its steps goes ahead without the dependency.
            steps.clear();
            self.pending.insert(scope.clone());
            self.plan.notes.push(unmet_note(project, svc, unmet));
        }
        if needs_start
            && !steps.is_empty()
            && let Some(reason) = self.image_forbidden(svc)
        {
            // Nothing of the job changes while its image cannot be had.
            steps.clear();
            self.pending.insert(scope.clone());
            self.plan.notes.push(Note::Blocked {
                project: project.name.clone(),
                service: Some(svc.name.clone()),
                reason,
            });
        }
        if let Some(n) = job_note {
            self.pending.insert(scope.clone());
            self.plan.notes.push(n);
        }
        // Pulls go before everything else in the final order; creates reference them.
        for (action, cause) in steps {
            let action = match action {
                Action::Create { spec, .. } => {
                    let reference = svc.image.clone().unwrap_or_default();
                    let image = self.image_source(&project.name, svc, &reference);
                    Action::Create { spec, image }
                }
                a => a,
            };
            self.step(&project.name, Some(&svc.name), action, cause);
        }
        // A job keeps no history: only the image of its current revision is needed.
        self.sweep_built_images(project, svc, &BTreeSet::new());
    }

    /// With `--prune`: the networks berth created for projects that left the desired state,
    /// once nothing but berth's containers (removed by this plan, before the networks; see
    /// `execute`) is left of the project. Volumes are never removed. Needs the inventory.
    fn prune_networks(&mut self, desired: &BTreeSet<&str>) {
        let orphaned = self
            .observed
            .containers
            .iter()
            .any(|c| c.identity.managed && !desired.contains(c.identity.project.as_str()));
        let Some(inv) = &self.observed.inventory else {
            self.plan.needs_inventory |= orphaned;
            return;
        };
        for (name, project) in &inv.managed_networks {
            if desired.contains(project.as_str()) {
                continue;
            }
            // A container berth did not create may still use it: the network stays with it.
            let foreign = self
                .observed
                .containers
                .iter()
                .any(|c| &c.identity.project == project && !c.identity.managed);
            if foreign {
                continue;
            }
            // Not through `step`: a project no longer desired has no services to keep waiting.
            self.plan.steps.push(Step {
                project: project.clone(),
                service: None,
                action: Action::RemoveNetwork { name: name.clone() },
                cause: "network of a project removed from the desired state (--prune)".into(),
            });
        }
    }

    /// Pin tags (`berth-pin/...`) that no record refers to — left by a kill between a record
    /// saved without its pin and the unpin, or by a pin made before a kill saved its record —
    /// are removed with their holders when the image list is at hand (see
    /// `scope::housekeeping`): after such a round no pin of a project this berth knows (desired,
    /// or with records) is left that the records do not own. Pins of other projects are not
    /// looked at: berth never judges what another data directory's records own.
    fn sweep_pins(&mut self, desired: &DesiredState) {
        let Some(inv) = &self.observed.inventory else {
            return;
        };
        let known: BTreeSet<&str> = desired
            .projects
            .keys()
            .chain(self.records.keys().map(|(p, _)| p))
            .map(String::as_str)
            .collect();
        let owned: BTreeSet<String> = self
            .records
            .values()
            .chain(self.plan.records.values())
            .flat_map(|r| r.revisions.iter().filter_map(|rev| rev.pin.clone()))
            .chain(self.plan.steps.iter().filter_map(|s| match &s.action {
                Action::Pin { repo, tag, .. } => Some(format!("{repo}:{tag}")),
                Action::Unpin { reference } => Some(reference.clone()),
                _ => None,
            }))
            .collect();
        let stray: Vec<String> = inv
            .images
            .keys()
            .filter(|r| r.starts_with(rollout::PIN_REPOSITORY_PREFIX) && !owned.contains(*r))
            .cloned()
            .collect();
        for reference in stray {
            let Some(project) = reference
                .strip_prefix(rollout::PIN_REPOSITORY_PREFIX)
                .and_then(|r| r.split('/').next())
                .filter(|p| known.contains(p))
                .map(str::to_string)
            else {
                continue;
            };
            // Not through `step`: a clean-up does not keep any service waiting.
            self.plan.steps.push(Step {
                project,
                service: None,
                action: Action::Unpin { reference },
                cause: "pin no record owns (an interrupted unpin, or a pin whose record was never saved)".into(),
            });
        }
    }

    /// Services that left the desired state keep their image pins until their last container
    /// is gone; then the pins go.
    fn release_pins(&mut self, desired: &DesiredState) {
        for ((project, service), rec) in self.records {
            let desired_now = desired
                .projects
                .get(project)
                .is_some_and(|p| p.services.contains_key(service));
            if desired_now || self.observed.service(project, service).next().is_some() {
                continue;
            }
            let mut changed = rec.clone();
            for r in &mut changed.revisions {
                if let Some(reference) = r.pin.take() {
                    self.step(
                        project,
                        Some(service),
                        Action::Unpin { reference },
                        format!("r{}: the service is no longer desired", r.number),
                    );
                }
            }
            if changed != *rec {
                let built: BTreeSet<&str> = rec
                    .revisions
                    .iter()
                    .map(|r| r.image_ref.as_str())
                    .filter(|r| crate::desired::hash::is_built_reference(r))
                    .collect();
                for reference in built {
                    self.step(
                        project,
                        Some(service),
                        Action::RemoveImage {
                            reference: reference.to_string(),
                        },
                        "built image of a service that is no longer desired",
                    );
                }
                self.plan
                    .records
                    .insert((project.clone(), service.clone()), changed);
            }
        }
    }

    /// A long-running service: the rollout state machine decides (see `rollout`).
    fn long_running(&mut self, project: &Project, svc: &Service, mine: Vec<&ObservedContainer>) {
        let scope = format!("{}/{}", project.name, svc.name);
        // Compose-made replicas within `replicas` are taken over by a rollout; the ones beyond
        // (made by hand) are not berth's to stop.
        let (extra, mine): (Vec<_>, Vec<_>) = mine
            .into_iter()
            .partition(|c| !c.identity.managed && c.identity.number > svc.replicas);
        if !extra.is_empty() {
            let names = extra.iter().map(|c| c.name.clone()).collect();
            self.not_ours(&project.name, &svc.name, names);
        }
        let key = (project.name.clone(), svc.name.clone());
        let empty = ServiceRecord::default();
        let record = self.records.get(&key).unwrap_or(&empty);
        let jobs_ran = svc
            .depends_on
            .keys()
            .filter_map(|dep| {
                let target = project.services.get(dep).filter(|t| t.job)?;
                let code = self.job_record(&project.name, target)?;
                Some(format!("{dep} (exit {code})"))
            })
            .collect();
        // A replica lacking what its spec asks for (a create cut short) is never promoted:
        // it is repaired or replaced first, and the rollout goes on next round (issue 14).
        let mend: Vec<(Action, String)> = mine
            .iter()
            .filter_map(|c| Some(drift::mend(c, self.observed.drift.get(&c.id)?, svc)))
            .flatten()
            .collect();
        if !mend.is_empty() {
            for (action, cause) in mend {
                self.step(&project.name, Some(&svc.name), action, cause);
            }
            return;
        }
        let out = rollout::plan_service(&rollout::Input {
            project,
            svc,
            containers: mine,
            record,
            images: self.observed.inventory.as_ref().map(|i| &i.images),
            probes: &self.observed.probes,
            restart_counts: &self.observed.restart_counts,
            step_error: self.observed.step_errors.get(&scope).map(String::as_str),
            build_failure: svc
                .image
                .as_ref()
                .and_then(|r| self.observed.build_failures.get(r)),
            jobs_ran,
            engine_lost: self.observed.engine_lost,
            wave: self.observed.waves.get(&project.name),
            routes: {
                let prefix = format!("{}/{}:", project.name, svc.name);
                self.observed
                    .routes
                    .listeners
                    .iter()
                    .filter(|l| l.name.starts_with(&prefix))
                    .collect()
            },
            now: self.now,
        });
        let starts = out
            .steps
            .iter()
            .any(|(a, _)| matches!(a, Action::Create { .. } | Action::Start { .. }));
        if starts && let Some(unmet) = self.unmet_dependency(project, svc) {
            // Nothing moves (not even the record) until the dependency is in its condition;
            // scale-down removals do not depend on anything and go ahead.
            for (action, cause) in out.steps {
                let removes = match &action {
                    Action::Stop { id, .. } | Action::Remove { id, .. } => {
                        out.scale_down.contains(id)
                    }
                    _ => false,
                };
                if removes {
                    self.step(&project.name, Some(&svc.name), action, cause);
                }
            }
            self.pending.insert(scope);
            self.plan.notes.push(unmet_note(project, svc, unmet));
            return;
        }
        if out.pending() {
            self.pending.insert(scope);
        }
        for reference in &out.pulls {
            if self.pulls.insert(normalize_reference(reference)) {
                let (action, cause) = fetch(svc, reference, record);
                self.step(&project.name, Some(&svc.name), action, cause);
            }
        }
        self.plan.needs_inventory |= out.needs_inventory;
        self.plan.inspect.extend(out.inspect);
        self.plan.events.extend(out.events);
        // The built images the (updated) history uses, for the sweep below.
        let history: Option<BTreeSet<String>> =
            (svc.build.is_some() && self.observed.inventory.is_some()).then(|| {
                out.record
                    .as_ref()
                    .unwrap_or(record)
                    .revisions
                    .iter()
                    .map(|r| r.image_ref.clone())
                    .collect()
            });
        if let Some(r) = out.record {
            self.plan.records.insert(key, r);
        }
        // Only a bug or a hand-edited file gets here: say so, a person must look.
        for e in out.record_errors {
            self.plan.notes.push(Note::Blocked {
                project: project.name.clone(),
                service: Some(svc.name.clone()),
                reason: BlockReason::RecordInconsistent(e.to_string()),
            });
        }
        for hold in out.holds {
            self.plan.notes.push(match hold {
                rollout::Hold::Wait(reason) => Note::Wait {
                    project: project.name.clone(),
                    service: svc.name.clone(),
                    reason,
                },
                rollout::Hold::Blocked(reason) => Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason,
                },
                rollout::Hold::Held(reason) => Note::Held {
                    project: project.name.clone(),
                    service: svc.name.clone(),
                    reason,
                },
            });
        }
        // Pins run first (before the record is saved; see `execute`): show them that way.
        let (pins, rest): (Vec<_>, Vec<_>) = out
            .steps
            .into_iter()
            .partition(|(a, _)| matches!(a, Action::Pin { .. }));
        for (action, cause) in pins.into_iter().chain(rest) {
            self.step(&project.name, Some(&svc.name), action, cause);
        }
        if let Some(history) = history {
            self.sweep_built_images(project, svc, &history);
        }
    }

    /// Built images of the service that neither the desired state nor a revision in the history
    /// uses (built, then superseded by another change before their rollout began; a job's
    /// earlier revisions) are removed when the image list is at hand anyway; the history's own
    /// are removed as revisions leave it (see `rollout`).
    fn sweep_built_images(&mut self, project: &Project, svc: &Service, history: &BTreeSet<String>) {
        let Some(inv) = &self.observed.inventory else {
            return;
        };
        if svc.build.is_none() {
            return;
        }
        let prefix = format!(
            "{}:",
            crate::desired::hash::built_repository(&project.name, &svc.name)
        );
        let stray: Vec<String> = inv
            .images
            .keys()
            .filter(|r| r.starts_with(&prefix))
            .filter(|r| svc.image.as_deref() != Some(r.as_str()))
            .filter(|r| !history.contains(*r))
            .filter(|r| {
                !self.plan.steps.iter().any(
                    |s| matches!(&s.action, Action::RemoveImage { reference } if reference == *r),
                )
            })
            .cloned()
            .collect();
        // Not through `step`: a clean-up does not keep the service's dependents waiting.
        for reference in stray {
            self.plan.steps.push(Step {
                project: project.name.clone(),
                service: Some(svc.name.clone()),
                action: Action::RemoveImage { reference },
                cause: "built image that no revision in the history uses".into(),
            });
        }
    }

    /// `pull_policy: never`, no `build:`, and the inventory says the image is not here: what
    /// blocks the service (the same rule as `rollout::begin` for long-running services).
    fn image_forbidden(&self, svc: &Service) -> Option<BlockReason> {
        if svc.build.is_some() || svc.pull_policy != PullPolicy::Never {
            return None;
        }
        let reference = svc.image.clone()?;
        let images = &self.observed.inventory.as_ref()?.images;
        (!images.contains_key(&normalize_reference(&reference)))
            .then_some(BlockReason::ImageAbsent { reference })
    }

    /// The image's ID if present; else a pull step (once per reference).
    fn image_source(&mut self, project: &str, svc: &Service, reference: &str) -> ImageSource {
        let key = normalize_reference(reference);
        if let Some(id) = self
            .observed
            .inventory
            .as_ref()
            .and_then(|i| i.images.get(&key))
        {
            return ImageSource::Id(id.clone());
        }
        if self.pulls.insert(key) {
            let empty = ServiceRecord::default();
            let record = self
                .records
                .get(&(project.to_string(), svc.name.clone()))
                .unwrap_or(&empty);
            let (action, cause) = fetch(svc, reference, record);
            self.step(project, Some(&svc.name), action, cause);
        }
        ImageSource::Pulled(reference.to_string())
    }

    fn remove(
        &mut self,
        project: &str,
        service: &str,
        c: &ObservedContainer,
        grace: Duration,
        signal: Option<String>,
        cause: &str,
    ) {
        let mut steps = Vec::new();
        push_removal(&mut steps, c, grace, signal, cause);
        for (a, cause) in steps {
            self.step(project, Some(service), a, cause);
        }
    }
}

/// Create then start container `n` of `svc`; the image is filled in by `Planner::service`.
fn push_create_start(
    steps: &mut Vec<(Action, String)>,
    project: &Project,
    svc: &Service,
    n: u32,
    role: Role,
    cause: String,
) {
    let spec = container_create(project, svc, n, role, "");
    let name = spec.name.clone();
    let image = ImageSource::Pulled(String::new());
    steps.push((
        Action::Create {
            spec: Box::new(spec),
            image,
        },
        cause.clone(),
    ));
    steps.push((
        Action::Start {
            target: name.clone(),
            name,
        },
        cause,
    ));
}

fn start(c: &ObservedContainer) -> Action {
    Action::Start {
        target: c.id.clone(),
        name: c.name.clone(),
    }
}

fn push_removal(
    steps: &mut Vec<(Action, String)>,
    c: &ObservedContainer,
    grace: Duration,
    signal: Option<String>,
    cause: &str,
) {
    if matches!(c.state, RunState::Running | RunState::Paused) {
        steps.push((
            Action::Stop {
                id: c.id.clone(),
                name: c.name.clone(),
                grace,
                signal,
            },
            cause.to_string(),
        ));
    }
    steps.push((
        Action::Remove {
            id: c.id.clone(),
            name: c.name.clone(),
        },
        cause.to_string(),
    ));
}

fn stop_params(svc: &Service) -> (Duration, Option<String>) {
    (
        svc.stop_grace_period.unwrap_or(Duration::from_secs(10)),
        svc.stop_signal.clone(),
    )
}

/// How a missing image is fetched: built when the service builds it (`build:`), else pulled;
/// with the cause (for a build: what changed since the running revision's build).
fn fetch(svc: &Service, reference: &str, record: &ServiceRecord) -> (Action, String) {
    match &svc.build {
        Some(b) if svc.image.as_deref() == Some(reference) => (
            Action::Build {
                reference: reference.to_string(),
                spec: Box::new(crate::engine::BuildSpec {
                    context_dir: b.context_dir.clone(),
                    dockerfile: crate::desired::context::dockerfile_rel(b),
                    dockerfile_inline: b.dockerfile_inline.clone(),
                    tag: reference.to_string(),
                    args: b.args.clone(),
                    target: b.target.clone(),
                    labels: b.labels.clone(),
                    network: b.network.clone(),
                    extra_hosts: b.extra_hosts.clone(),
                    shm_size: b.shm_size,
                    timeout: svc.berth.build_timeout,
                }),
            },
            if svc.job {
                // Jobs keep no revisions to compare with.
                format!("job image not built yet ({})", short(&b.content_hash))
            } else {
                build_cause(b, record)
            },
        ),
        _ => (
            Action::Pull {
                reference: reference.to_string(),
                platform: svc.platform.clone(),
            },
            "image not present locally".to_string(),
        ),
    }
}

/// Why a service's image is built: what differs from the build of the revision that runs
/// (else the newest one built), or that there is none.
fn build_cause(build: &crate::desired::model::Build, record: &ServiceRecord) -> String {
    let previous = record
        .current()
        .filter(|r| r.build.is_some())
        .or_else(|| record.revisions.iter().rev().find(|r| r.build.is_some()));
    let Some((n, was)) = previous.and_then(|r| Some((r.number, r.build.as_ref()?))) else {
        return "first build of this service's image".to_string();
    };
    let now = &build.parts;
    let changed: Vec<&str> = [
        (was.dockerfile != now.dockerfile, "Dockerfile"),
        (was.files != now.files, "build context"),
        (was.settings != now.settings, "build args/target/labels"),
    ]
    .into_iter()
    .filter_map(|(differs, what)| differs.then_some(what))
    .collect();
    match changed.as_slice() {
        [] => format!("image missing (removed since r{n} was built from the same inputs)"),
        [one] => format!("{one} changed since r{n}"),
        [init @ .., last] => format!("{} and {last} changed since r{n}", init.join(", ")),
    }
}
