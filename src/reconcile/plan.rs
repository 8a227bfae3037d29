//! Pure planner: turns (desired, observed) into a [`Plan`] — one [`Step`] per engine call,
//! each with the cause that justifies it — plus the services that must wait or are blocked.
//!
//! No IO, no clock, no tokio here: `controller`/`apply` gather the inputs and `execute`
//! carries the steps out. The planner is level-triggered: it looks only at what exists, so
//! running it again after applying a plan yields nothing (property-tested). Services whose
//! `depends_on` conditions are not met *now* get no steps this round but a [`Note::Wait`];
//! the next round (after the dependency changed) plans them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::container_spec::container_create;
use super::drift;
use super::event::Event;
use super::observed::{ObservedContainer, ObservedState, normalize_reference};
use super::rollout;
use crate::desired::model::{Condition, DesiredState, Project, Service};
use crate::engine::labels::{self, Role};
use crate::engine::{ContainerCreate, Health, NetworkCreate, RunState, VolumeCreate};
use crate::store::ServiceRecord;

/// Planner options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Remove containers of projects that are no longer in the desired state.
    pub prune: bool,
}

/// Where the image of a container comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Present locally with this ID.
    Id(String),
    /// Pulled by an earlier step of this plan; the executor fills the ID in.
    Pulled(String),
}

/// One engine call.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a network.
    CreateNetwork(NetworkCreate),
    /// Create a volume.
    CreateVolume(VolumeCreate),
    /// Pull an image by reference.
    Pull {
        /// The reference as written in the Compose file.
        reference: String,
    },
    /// Build an image from the desired-state repository (`build:`) and tag it `reference`.
    Build {
        /// The built image's reference (`berth-build/<project>/<service>:<hash12>`).
        reference: String,
        /// What to build.
        spec: Box<crate::engine::BuildSpec>,
    },
    /// Create a container.
    Create {
        /// What to create; `spec.image` is empty until the image is known.
        spec: Box<ContainerCreate>,
        /// Where its image comes from.
        image: ImageSource,
    },
    /// Start a container (by ID, or by name when created in this plan).
    Start {
        /// ID or name.
        target: String,
        /// Name, for display.
        name: String,
    },
    /// Stop a container.
    Stop {
        /// ID.
        id: String,
        /// Name, for display.
        name: String,
        /// Time before SIGKILL.
        grace: Duration,
        /// Signal (`None` = the image's STOPSIGNAL or SIGTERM).
        signal: Option<String>,
    },
    /// Remove a stopped container (never its volumes).
    Remove {
        /// ID.
        id: String,
        /// Name, for display.
        name: String,
    },
    /// Rename a container (a kept old one out of the way, a candidate into its name).
    Rename {
        /// ID.
        id: String,
        /// Current name, for display.
        name: String,
        /// New name.
        to: String,
    },
    /// Connect a container to a network its spec asks for and it lacks (a create cut short).
    Connect {
        /// ID.
        id: String,
        /// Name, for display.
        name: String,
        /// The network, with its aliases.
        attach: crate::engine::NetworkAttach,
    },
    /// Tag an image ID so that nothing prunes it (a revision's pin).
    Pin {
        /// Image ID.
        image_id: String,
        /// Repository of the tag.
        repo: String,
        /// Tag.
        tag: String,
    },
    /// Remove a pin tag (never the image while something else references it).
    Unpin {
        /// `repo:tag`.
        reference: String,
    },
    /// Remove a built image's tag (`berth-build/...`) that no revision in the history uses
    /// any more; the image goes with it unless something else still references it.
    RemoveImage {
        /// `repo:tag`.
        reference: String,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateNetwork(n) => write!(f, "create network {}", n.name),
            Action::CreateVolume(v) => write!(f, "create volume {}", v.name),
            Action::Pull { reference } => write!(f, "pull {reference}"),
            Action::Build { reference, .. } => write!(f, "build {reference}"),
            Action::Create { spec, .. } => write!(f, "create {}", spec.name),
            Action::Start { name, .. } => write!(f, "start {name}"),
            Action::Stop { name, .. } => write!(f, "stop {name}"),
            Action::Remove { name, .. } => write!(f, "remove {name}"),
            Action::Rename { name, to, .. } => write!(f, "rename {name} -> {to}"),
            Action::Connect { name, attach, .. } => {
                write!(f, "connect {name} to {}", attach.network)
            }
            Action::Pin {
                image_id,
                repo,
                tag,
            } => write!(
                f,
                "pin {} as {repo}:{tag}",
                short(image_id.trim_start_matches("sha256:"))
            ),
            Action::Unpin { reference } => write!(f, "unpin {reference}"),
            Action::RemoveImage { reference } => write!(f, "remove image {reference}"),
        }
    }
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
        reason: String,
    },
    /// Nothing will change until the desired state does (a failed job, a missing external
    /// network).
    Blocked {
        /// Project.
        project: String,
        /// Service (or `None` for the project).
        service: Option<String>,
        /// Why.
        reason: String,
    },
    /// The service is held (`x-berth.hold`, `berth hold`, `berth rollback`): informational.
    Held {
        /// Project.
        project: String,
        /// Service.
        service: String,
        /// By what.
        reason: String,
    },
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
            Note::Orphan {
                project,
                containers,
            } => write!(
                f,
                "{project}  orphaned: {containers} container(s) of a project no longer in the desired state; --prune removes them"
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
        for s in &self.steps {
            writeln!(
                f,
                "{:<scope_w$}  {:<action_w$}  {}",
                s.scope(),
                s.action.to_string(),
                s.cause
            )?;
        }
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        Ok(())
    }
}

/// berth's own records (see `crate::store`) by (project, service): what labels cannot
/// carry, such as a job run whose container was removed since.
pub type Records = BTreeMap<(String, String), ServiceRecord>;

/// Plans one reconcile round from what is desired, what exists and what berth recorded.
pub fn plan(
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
    p.release_pins(desired);
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
        for c in observed {
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
                blocked.push(format!(
                    "external network {} does not exist; create it or drop external: true",
                    n.name
                ));
                continue;
            }
            let spec = NetworkCreate {
                name: n.name.clone(),
                driver: n.driver.clone(),
                driver_opts: n.driver_opts.clone(),
                internal: n.internal,
                labels: labels::object_labels(
                    &project.name,
                    labels::compose::NETWORK,
                    key,
                    &n.labels,
                ),
            };
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
                blocked.push(format!(
                    "external volume {} does not exist; create it or drop external: true",
                    v.name
                ));
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
        if needs_start && let Some(reason) = self.unmet_dependency(project, svc) {
            let blocked = reason.starts_with("blocked: ");
            let reason = reason.trim_start_matches("blocked: ").to_string();
            // Scale-down removals do not depend on anything; keep them.
            steps.retain(|(a, cause)| {
                matches!(a, Action::Stop { .. } | Action::Remove { .. })
                    && cause.starts_with("scale down")
            });
            self.pending.insert(scope.clone());
            self.plan.notes.push(if blocked {
                Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason,
                }
            } else {
                Note::Wait {
                    project: project.name.clone(),
                    service: svc.name.clone(),
                    reason,
                }
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
                .and_then(|r| self.observed.build_failures.get(r))
                .map(String::as_str),
            jobs_ran,
            now: self.now,
        });
        let starts = out
            .steps
            .iter()
            .any(|(a, _)| matches!(a, Action::Create { .. } | Action::Start { .. }));
        if starts && let Some(reason) = self.unmet_dependency(project, svc) {
            // Nothing moves (not even the record) until the dependency is in its condition.
            let blocked = reason.starts_with("blocked: ");
            let reason = reason.trim_start_matches("blocked: ").to_string();
            for (action, cause) in out.steps {
                if matches!(action, Action::Stop { .. } | Action::Remove { .. })
                    && cause.starts_with("scale down")
                {
                    self.step(&project.name, Some(&svc.name), action, cause);
                }
            }
            self.pending.insert(scope);
            self.plan.notes.push(if blocked {
                Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason,
                }
            } else {
                Note::Wait {
                    project: project.name.clone(),
                    service: svc.name.clone(),
                    reason,
                }
            });
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

    /// A job whose image build failed does not run: its revision is quarantined (recorded,
    /// with an event carrying the build's last lines) until the desired state changes or
    /// `berth retry`; its dependents wait. Returns the note that blocks it.
    fn job_build_failure(&mut self, project: &Project, svc: &Service) -> Option<Note> {
        svc.build.as_ref()?;
        let key = (project.name.clone(), svc.name.clone());
        let empty = ServiceRecord::default();
        let rec = self.records.get(&key).unwrap_or(&empty);
        let mut changed = rec.clone();
        changed.clear_quarantine_unless(&svc.spec_hash);
        if let Some(t) = changed.control.retry_at {
            changed.quarantined.retain(|q| q.since > t);
        }
        let reference = svc.image.as_deref().unwrap_or_default();
        if let Some(error) = self.observed.build_failures.get(reference)
            && !changed.is_quarantined(&svc.spec_hash)
        {
            let (summary, tail) = rollout::split_build_error(reference, error);
            let reason = format!("image build failed: {summary}");
            changed.quarantined.push(crate::store::Quarantine {
                spec_hash: svc.spec_hash.clone(),
                since: self.now,
                reason: reason.clone(),
                log: tail.clone(),
            });
            self.plan.events.push(Event {
                project: project.name.clone(),
                service: svc.name.clone(),
                kind: super::event::EventKind::RolloutFailed,
                revision: None,
                message: format!(
                    "job revision {} not run: {reason}; its dependents wait; change the desired state or `berth retry`",
                    short(&svc.spec_hash)
                ),
                logs_of: None,
                logs: tail,
            });
        }
        let note = changed
            .quarantined
            .iter()
            .find(|q| q.spec_hash == svc.spec_hash)
            .map(|q| Note::Blocked {
                project: project.name.clone(),
                service: Some(svc.name.clone()),
                reason: format!(
                    "job revision {} not run: {}; change the desired state or `berth retry`",
                    short(&svc.spec_hash),
                    q.reason
                ),
            });
        if changed != *rec {
            self.plan.records.insert(key, changed);
        }
        note
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

    /// The recorded run of `svc`'s current revision, if any.
    fn job_record(&self, project: &str, svc: &Service) -> Option<i64> {
        self.records
            .get(&(project.to_string(), svc.name.clone()))
            .and_then(|r| r.job_run(&svc.spec_hash))
            .map(|j| j.exit_code)
    }

    /// A job runs once per revision: its container with the current hash, or berth's record
    /// of that run (the container may have been removed since), says it ran.
    fn job_steps(
        &self,
        project: &Project,
        svc: &Service,
        mine: &[&ObservedContainer],
        steps: &mut Vec<(Action, String)>,
    ) -> Option<Note> {
        let (grace, signal) = stop_params(svc);
        let (current, old): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) = mine
            .iter()
            .partition(|c| c.identity.managed && c.identity.spec_hash == svc.spec_hash);
        if let Some(c) = current.first() {
            return match (c.state, c.exit_code) {
                (RunState::Exited, Some(0)) => None,
                (RunState::Exited, code) => Some(Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason: format!(
                        "job failed with exit code {}; change the desired state (or fix what it needs) to run it again",
                        code.map_or("unknown".to_string(), |c| c.to_string())
                    ),
                }),
                (RunState::Created, _) => {
                    steps.push((start(c), "job created but not started".into()));
                    None
                }
                _ => Some(Note::Wait {
                    project: project.name.clone(),
                    service: svc.name.clone(),
                    reason: "job is running".into(),
                }),
            };
        }
        match self.job_record(&project.name, svc) {
            Some(0) => return None,
            Some(code) => {
                return Some(Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason: format!(
                        "job failed with exit code {code}; change the desired state (or fix what it needs) to run it again"
                    ),
                });
            }
            None => {}
        }
        let cause = match old.first() {
            Some(c) if c.identity.managed => format!(
                "job revision {} not run yet (last ran {})",
                short(&svc.spec_hash),
                short(&c.identity.spec_hash)
            ),
            Some(_) => "taking over from docker compose".to_string(),
            None => format!("job revision {} not run yet", short(&svc.spec_hash)),
        };
        for c in &old {
            push_removal(steps, c, grace, signal.clone(), &cause);
        }
        push_create_start(steps, project, svc, 1, Role::Job, cause);
        None
    }

    /// The first dependency not in its condition, as a reason; `blocked: ...` when it cannot
    /// become so without a change (a failed job).
    fn unmet_dependency(&self, project: &Project, svc: &Service) -> Option<String> {
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
                return Some(format!("blocked: job {dep}'s image build failed"));
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
                        return Some(format!("blocked: job {dep} failed with exit code {code}"));
                    }
                    (Condition::ServiceCompletedSuccessfully, Some(0)) => continue,
                    (Condition::ServiceCompletedSuccessfully, _) => {
                        return Some(format!("{dep} has not completed successfully yet"));
                    }
                    _ if (!containers.is_empty() || exit.is_some()) && !pending => continue,
                    _ => return Some(format!("{dep} has not started yet")),
                }
            }
            let running: Vec<&&ObservedContainer> = containers
                .iter()
                .filter(|c| c.state == RunState::Running)
                .collect();
            let all_running = running.len() >= target.replicas as usize;
            if pending || !all_running {
                return Some(format!("{dep} is not running yet"));
            }
            if d.condition == Condition::ServiceHealthy
                && running
                    .iter()
                    .any(|c| !matches!(c.health, Health::Healthy | Health::None))
            {
                return Some(format!("{dep} is not healthy yet"));
            }
            if d.condition == Condition::ServiceCompletedSuccessfully {
                return Some(format!(
                    "{dep} is not a job (restart: \"no\"), so it never completes"
                ));
            }
        }
        None
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

/// Records every finished run of a job's current revision that berth has not recorded yet;
/// returns the (project, service) records that changed and must be saved.
pub fn record_jobs(
    records: &mut Records,
    desired: &DesiredState,
    observed: &ObservedState,
    now: u64,
) -> Vec<(String, String)> {
    let mut changed = Vec::new();
    for p in desired.projects.values() {
        for svc in p.services.values().filter(|s| s.job) {
            let finished = observed.service(&p.name, &svc.name).find(|c| {
                c.identity.managed
                    && c.identity.spec_hash == svc.spec_hash
                    && c.state == RunState::Exited
            });
            let Some(code) = finished.and_then(|c| c.exit_code) else {
                continue;
            };
            let key = (p.name.clone(), svc.name.clone());
            let rec = records.entry(key.clone()).or_default();
            if rec.job_run(&svc.spec_hash).map(|j| j.exit_code) != Some(code) {
                rec.record_job(&svc.spec_hash, code, now);
                changed.push(key);
            }
        }
    }
    changed
}

/// First 12 hex digits, as in `docker ps`.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Services in dependency order (dependencies first), ties by name. Validation guarantees
/// there is no cycle; a cycle would still terminate (visited set).
fn topo_order(project: &Project) -> Vec<String> {
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
