//! Carries a [`Plan`] out against the engine — the only code that changes Docker.
//!
//! Order: project objects (networks, volumes), then pulls and builds in parallel (builds at
//! most [`BUILD_PARALLELISM`] at a time), then each service in parallel up to a bound: first
//! its changed record is saved (write-ahead: a crash after this point replays the decision,
//! never loses it), then the last log lines of containers its events are about are fetched
//! (before a step removes them), then its steps in order. A failing step stops the rest of its
//! own service only; every other service goes on.
//! Idempotent outcomes (404 on remove/stop, 304 on start/stop) count as done. Between steps a
//! stop request is honoured, so a signal never leaves a half-made container (at worst a
//! created one, which the next round starts).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;
use tracing::Instrument;

use super::event::{Event, Severity};
use super::observed::BuildFailure;
use super::plan::{Action, ImageSource, Plan, Step};
use crate::engine::{Engine, EngineError};
use crate::errors::chain;
use crate::store::{ServiceRecord, Store, StoreError};

/// Image builds run at once at most (pulls are bounded by the service parallelism).
pub const BUILD_PARALLELISM: usize = 2;

/// What happened.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Steps done (including idempotent ones that were already done).
    pub done: Vec<String>,
    /// Steps that failed, with the error.
    pub failed: Vec<Failure>,
    /// Steps not run (their service failed earlier, or a stop was requested).
    pub skipped: usize,
    /// The plan's events, with log lines filled in.
    pub events: Vec<Event>,
    /// Builds that ran and failed (the Dockerfile, a `RUN` step, the timeout), by image
    /// reference, with the engine's error and the build's last log lines: the next round's
    /// planner quarantines those revisions. A build the engine could not even be asked for
    /// (unreachable) is not here: that is berth's problem, not the revision's.
    pub build_failures: BTreeMap<String, BuildFailure>,
}

/// One failed step: what failed and why, both typed; `Display` is for people.
#[derive(Debug)]
pub struct Failure {
    /// What failed.
    pub step: FailedStep,
    /// Why.
    pub error: StepError,
}

impl Failure {
    /// Whether the step that failed was a pull (a failed pull changed nothing running).
    pub fn is_pull(&self) -> bool {
        self.step
            .step()
            .is_some_and(|s| matches!(s.action, Action::Pull { .. }))
    }
}

/// What failed.
#[derive(Debug)]
pub enum FailedStep {
    /// One step of the plan.
    Step(Box<Step>),
    /// Saving a service's record before its steps (`project/service`).
    SaveRecord(String),
    /// Every step of a service (`project/service`): an image it needs did not arrive.
    AllSteps(String),
    /// A service's task ended abnormally.
    Task,
}

impl FailedStep {
    /// The plan step, when it was one.
    pub fn step(&self) -> Option<&Step> {
        match self {
            FailedStep::Step(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for FailedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailedStep::Step(s) => f.write_str(&describe(s)),
            FailedStep::SaveRecord(scope) => write!(f, "{scope}  save record"),
            FailedStep::AllSteps(scope) => write!(f, "{scope}  (all steps)"),
            FailedStep::Task => f.write_str("a service's steps"),
        }
    }
}

/// Why a step failed. `Display` gives the whole cause chain, one line.
#[derive(Debug)]
pub enum StepError {
    /// The engine refused or could not be reached.
    Engine(EngineError),
    /// A create's image was to come from a pull or build of this round that failed.
    NotPulled(String),
    /// An image the service needs did not arrive: nothing of the service was touched.
    ImageMissing(String),
    /// The record could not be saved.
    Save(StoreError),
    /// The task running the steps panicked or was cancelled.
    Task(String),
    /// The proxy's routes file (port handoff) could not be written.
    Routes(crate::proxy::file::RoutesFileError),
    /// A `Route` step without a data directory to hold the routes file.
    NoRoutesFile,
}

impl StepError {
    /// The engine's error, when it was one.
    pub fn engine(&self) -> Option<&EngineError> {
        match self {
            StepError::Engine(e) => Some(e),
            _ => None,
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Engine(e) => f.write_str(&chain(e)),
            StepError::NotPulled(r) => {
                write!(f, "image {r} was not pulled (see the pull step's error)")
            }
            StepError::ImageMissing(r) => write!(
                f,
                "image {r} could not be pulled; nothing of this service was changed"
            ),
            StepError::Save(e) => f.write_str(&chain(e)),
            StepError::Task(e) => write!(f, "task failed: {e}"),
            StepError::Routes(e) => f.write_str(&chain(e)),
            StepError::NoRoutesFile => {
                f.write_str("failed to route: no data directory holds the proxy's routes file")
            }
        }
    }
}

impl Outcome {
    /// Failed create/start steps by `project/service` (the first error of each), for the next
    /// round's planner.
    pub fn step_errors(&self) -> BTreeMap<String, String> {
        let mut errors = BTreeMap::new();
        for f in &self.failed {
            let Some(step) = f.step.step() else {
                continue;
            };
            if matches!(step.action, Action::Create { .. } | Action::Start { .. }) {
                errors
                    .entry(step.scope())
                    .or_insert_with(|| format!("{}: {}", step.action, f.error));
            }
        }
        errors
    }

    /// True when a pull (or build) of this round failed.
    pub fn pull_failed(&self) -> bool {
        self.failed.iter().any(Failure::is_pull)
    }

    fn merge(&mut self, other: Outcome) {
        self.done.extend(other.done);
        self.failed.extend(other.failed);
        self.skipped += other.skipped;
        self.events.extend(other.events);
        self.build_failures.extend(other.build_failures);
    }
}

/// Executes `plan` with at most `parallelism` services at a time; `stop` ends it between steps.
/// `store` receives the plan's changed records (without one they live only in the plan).
pub async fn execute<E: Engine>(
    engine: &Arc<E>,
    plan: &Plan,
    parallelism: usize,
    stop: &Arc<AtomicBool>,
    store: Option<&Store>,
    routes: Option<&std::path::Path>,
) -> Outcome {
    let mut out = Outcome::default();
    let (objects, rest): (Vec<&Step>, Vec<&Step>) = plan
        .steps
        .iter()
        .partition(|s| matches!(s.action, Action::CreateNetwork(_) | Action::CreateVolume(_)));
    let (pulls, rest): (Vec<&Step>, Vec<&Step>) = rest
        .into_iter()
        .partition(|s| matches!(s.action, Action::Pull { .. } | Action::Build { .. }));
    // Networks and volumes go last, once every service's containers (which may be attached
    // or mount them) are removed.
    let (network_removals, services): (Vec<&Step>, Vec<&Step>) = rest.into_iter().partition(|s| {
        matches!(
            s.action,
            Action::RemoveNetwork { .. } | Action::RemoveVolume { .. }
        )
    });

    for s in objects {
        if stop.load(Ordering::Relaxed) {
            out.skipped += 1;
            continue;
        }
        let r = run_step(engine.as_ref(), s, &BTreeMap::new()).await;
        record(&mut out, s, r);
    }

    // Pulls and builds: in parallel (bounded; builds, which load the host's CPU and disk, by
    // their own smaller bound), before any container is touched.
    let sem = Arc::new(Semaphore::new(parallelism.max(1)));
    let builds = Arc::new(Semaphore::new(BUILD_PARALLELISM));
    let mut pulls_set = tokio::task::JoinSet::new();
    for s in pulls {
        // A build's spec, or a pull's platform.
        let (reference, build) = match &s.action {
            Action::Pull {
                reference,
                platform,
            } => (reference.clone(), Err(platform.clone())),
            Action::Build { reference, spec } => (reference.clone(), Ok(spec.clone())),
            _ => continue,
        };
        let bound = if build.is_ok() { &builds } else { &sem };
        let (engine, sem, step) = (engine.clone(), bound.clone(), s.clone());
        pulls_set.spawn(
            async move {
                let _permit = sem.acquire_owned().await;
                let started = Instant::now();
                let r = match build {
                    Ok(spec) => engine.build_image(&spec).await,
                    Err(platform) => engine.pull_image(&reference, platform.as_deref()).await,
                };
                (step, reference, r, started.elapsed().as_millis() as u64)
            }
            .instrument(tracing::Span::current()),
        );
    }
    let mut pulled = BTreeMap::new();
    while let Some(joined) = pulls_set.join_next().await {
        let Ok((step, reference, r, ms)) = joined else {
            continue;
        };
        tracing::info!(step = %describe(&step), cause = %step.cause, ms, ok = r.is_ok(), "step");
        fault_point(&describe(&step));
        match r {
            Ok(id) => {
                pulled.insert(reference, id);
                out.done.push(describe(&step));
            }
            Err(e) => {
                if matches!(step.action, Action::Build { .. })
                    && !matches!(e, EngineError::Unreachable { .. })
                {
                    let failure = BuildFailure {
                        summary: e.detail(),
                        log: e.build_log().map(str::to_string),
                    };
                    out.build_failures.insert(reference, failure);
                }
                out.failed.push(Failure {
                    step: FailedStep::Step(Box::new(step)),
                    error: StepError::Engine(e),
                });
            }
        }
    }

    // Services: grouped by scope, in plan order within a group, with their records and events.
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for s in services {
        groups.entry(s.scope()).or_default().steps.push(s.clone());
    }
    for ((p, svc), rec) in &plan.records {
        groups.entry(format!("{p}/{svc}")).or_default().record =
            Some((p.clone(), svc.clone(), rec.clone()));
    }
    for e in &plan.events {
        groups
            .entry(format!("{}/{}", e.project, e.service))
            .or_default()
            .events
            .push(e.clone());
    }
    let pulled = Arc::new(pulled);
    let store = store.cloned();
    let routes = routes.map(std::path::Path::to_path_buf);
    let mut set = tokio::task::JoinSet::new();
    for (scope, group) in groups {
        let (engine, sem, pulled, stop, store, routes) = (
            engine.clone(),
            sem.clone(),
            pulled.clone(),
            stop.clone(),
            store.clone(),
            routes.clone(),
        );
        set.spawn(
            async move {
                let _permit = sem.acquire_owned().await;
                let mut out = Outcome::default();
                let Group {
                    steps,
                    record: mut changed,
                    mut events,
                } = group;
                // Pins first, before the record that says they exist: a crash in between only
                // repeats an idempotent pin.
                let (pins, steps): (Vec<Step>, Vec<Step>) = steps
                    .into_iter()
                    .partition(|s| matches!(s.action, Action::Pin { .. }));
                for s in &pins {
                    let r = run_step(engine.as_ref(), s, &pulled).await;
                    if r.is_err() {
                        // Without the pin, the previous revision is not safe to replace.
                        let skipped = steps.len();
                        record(&mut out, s, r);
                        out.skipped += skipped;
                        return out;
                    }
                    record(&mut out, s, r);
                }
                // The logs first (a step may remove their container), and kept with their
                // revision in the record saved next; the events are logged once the steps
                // that carry them out have run.
                for e in &mut events {
                    if let Some(id) = &e.logs_of {
                        e.logs = engine
                            .logs_tail(id, 20)
                            .await
                            .ok()
                            .map(|l| crate::redact::owned(&l));
                    }
                }
                if let Some((_, _, rec)) = &mut changed {
                    keep_logs(rec, &events);
                }
                if let (Some(store), Some((p, svc, rec))) = (&store, &changed) {
                    let saved = {
                        let (store, p, svc, rec) =
                            (store.clone(), p.clone(), svc.clone(), rec.clone());
                        tokio::task::spawn_blocking(move || store.save(&p, &svc, &rec)).await
                    };
                    let err = match saved {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(StepError::Save(e)),
                        Err(e) => Some(StepError::Task(e.to_string())),
                    };
                    fault_point(&format!("{scope}  save record"));
                    if let Some(error) = err {
                        // Without the record written first, acting would be unrecoverable.
                        out.failed.push(Failure {
                            step: FailedStep::SaveRecord(scope.clone()),
                            error,
                        });
                        out.skipped += steps.len();
                        return out;
                    }
                }
                out.events = events;
                if steps.is_empty() {
                    out.events.iter().for_each(log_event);
                    return out;
                }
                // Pull first, change second: if an image this service needs did not arrive,
                // nothing of the service is touched (its running containers stay).
                if let Some(missing) = steps.iter().find_map(|s| match &s.action {
                    Action::Create {
                        image: ImageSource::Pulled(r),
                        ..
                    } if !pulled.contains_key(r) => Some(r.clone()),
                    _ => None,
                }) {
                    out.failed.push(Failure {
                        step: FailedStep::AllSteps(steps[0].scope()),
                        error: StepError::ImageMissing(missing),
                    });
                    out.skipped += steps.len();
                    out.events.iter().for_each(log_event);
                    return out;
                }
                let mut failed = false;
                for s in &steps {
                    if failed || stop.load(Ordering::Relaxed) {
                        out.skipped += 1;
                        continue;
                    }
                    let r = match &s.action {
                        Action::Route { .. } => route(s, routes.as_deref()).await,
                        _ => run_step(engine.as_ref(), s, &pulled).await,
                    };
                    failed = r.is_err();
                    record(&mut out, s, r);
                }
                out.events.iter().for_each(log_event);
                out
            }
            .instrument(tracing::Span::current()),
        );
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(o) => out.merge(o),
            Err(e) => out.failed.push(Failure {
                step: FailedStep::Task,
                error: StepError::Task(e.to_string()),
            }),
        }
    }
    for s in network_removals {
        if stop.load(Ordering::Relaxed) {
            out.skipped += 1;
            continue;
        }
        let r = run_step(engine.as_ref(), s, &BTreeMap::new()).await;
        record(&mut out, s, r);
    }
    out
}

/// The label that marks a pin container, with the pin reference as its value.
pub const PIN_LABEL: &str = "berth.pin";

/// The name of the container that holds pin `reference` (`berth-pin/p/s:r3` →
/// `berth-pin.p.s.r3`).
pub fn pin_container_name(reference: &str) -> String {
    reference.replace(['/', ':'], ".")
}

/// Pins an image two ways: a tag (so a person sees why it is there) and a container created
/// from it that is never started — `docker image prune -a` removes every image no container
/// uses, tagged or not, so only a container keeps it.
async fn pin<E: Engine>(
    engine: &E,
    image_id: &str,
    repo: &str,
    tag: &str,
) -> Result<(), EngineError> {
    engine.tag_image(image_id, repo, tag).await?;
    let reference = format!("{repo}:{tag}");
    let mut labels = std::collections::BTreeMap::new();
    labels.insert(
        crate::engine::labels::MANAGED.to_string(),
        "true".to_string(),
    );
    labels.insert(PIN_LABEL.to_string(), reference.clone());
    let spec = crate::engine::ContainerCreate {
        name: pin_container_name(&reference),
        image: image_id.to_string(),
        // Never started; a command is only needed because images without one cannot be
        // created from.
        command: Some(vec!["berth-pin".to_string()]),
        labels,
        network_mode: Some("none".to_string()),
        restart: "no".to_string(),
        ..Default::default()
    };
    match engine.create_container(&spec).await {
        Ok(_) => Ok(()),
        Err(EngineError::Conflict { .. }) => {
            // A holder of that name exists: fine if it holds this image. One left by a lost
            // data dir may hold another revision's image: replace it.
            let held = engine.inspect_container(&spec.name).await?;
            if held.image_id == image_id {
                return Ok(());
            }
            engine.remove_container(&spec.name).await?;
            engine.create_container(&spec).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Removes a pin: its container, then its tag (never the image while something uses it).
async fn unpin<E: Engine>(engine: &E, reference: &str) -> Result<(), EngineError> {
    match engine
        .remove_container(&pin_container_name(reference))
        .await
    {
        Ok(()) | Err(EngineError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    match engine.remove_image_tag(reference).await {
        Ok(()) | Err(EngineError::NotFound { .. }) | Err(EngineError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One service's share of a plan.
#[derive(Default)]
struct Group {
    steps: Vec<Step>,
    record: Option<(String, String, ServiceRecord)>,
    events: Vec<Event>,
}

/// Keeps the log lines events carry (a failed candidate's, a failed gate's or build's) with
/// their revision in `rec`, so that they outlive the container (`berth logs --revision`).
pub fn keep_logs(rec: &mut ServiceRecord, events: &[Event]) {
    for e in events {
        if let (Some(n), Some(logs)) = (e.revision, e.logs.as_deref())
            && !logs.trim().is_empty()
            && let Some(r) = rec.revision_mut(n)
        {
            r.logs = Some(logs.to_string());
        }
    }
}

/// The log target of rollout events: `berth apply` prints events itself and turns it off.
pub const EVENT_TARGET: &str = "berth::event";

/// Logs an event at its severity.
fn log_event(e: &Event) {
    let revision = e.revision.unwrap_or(0);
    match e.kind.severity() {
        Severity::Info => {
            tracing::info!(target: EVENT_TARGET, kind = e.kind.as_str(), revision, "{e}")
        }
        Severity::Warning => {
            tracing::warn!(target: EVENT_TARGET, kind = e.kind.as_str(), revision, "{e}")
        }
        Severity::Error => {
            tracing::error!(target: EVENT_TARGET, kind = e.kind.as_str(), revision, "{e}")
        }
    }
}

/// Fault injection for the crash-safety tests: with `BERTH_FAULT_ABORT_AFTER=<text>` set,
/// the process aborts (like `kill -9`: no cleanup, no flush) right after the first step or
/// record save whose description contains `<text>`. Unset in production.
fn fault_point(description: &str) {
    static PATTERN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        std::env::var("BERTH_FAULT_ABORT_AFTER")
            .ok()
            .filter(|p| !p.is_empty())
    });
    if let Some(p) = pattern
        && description.contains(p.as_str())
    {
        eprintln!("berth: BERTH_FAULT_ABORT_AFTER matched {description:?}; aborting");
        std::process::abort();
    }
}

fn record(out: &mut Outcome, s: &Step, r: Result<(), StepError>) {
    fault_point(&describe(s));
    match r {
        Ok(()) => out.done.push(describe(s)),
        Err(error) => out.failed.push(Failure {
            step: FailedStep::Step(Box::new(s.clone())),
            error,
        }),
    }
}

/// A `Route` step: the service's listeners in the proxy's routes file (see `proxy::file`).
async fn route(s: &Step, path: Option<&std::path::Path>) -> Result<(), StepError> {
    let Action::Route {
        project,
        service,
        listeners,
    } = &s.action
    else {
        return Ok(());
    };
    let path = path.ok_or(StepError::NoRoutesFile)?.to_path_buf();
    let (project, service, listeners) = (project.clone(), service.clone(), listeners.clone());
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || {
        crate::proxy::file::set_service(&path, &project, &service, listeners)
    })
    .await
    .map_err(|e| StepError::Task(e.to_string()))
    .and_then(|r| r.map_err(StepError::Routes));
    tracing::info!(step = %describe(s), cause = %s.cause, ms = started.elapsed().as_millis() as u64, ok = r.is_ok(), "step");
    r
}

fn describe(s: &Step) -> String {
    format!("{}  {}", s.scope(), s.action)
}

async fn run_step<E: Engine>(
    engine: &E,
    s: &Step,
    pulled: &BTreeMap<String, String>,
) -> Result<(), StepError> {
    let started = Instant::now();
    let r: Result<(), EngineError> = match &s.action {
        Action::CreateNetwork(n) => match engine.create_network(n).await {
            // Someone (or an earlier interrupted round) made it: that is what we wanted.
            Err(EngineError::Conflict { .. }) => Ok(()),
            r => r.map(|_| ()),
        },
        Action::CreateVolume(v) => engine.create_volume(v).await,
        Action::Pull {
            reference,
            platform,
        } => engine
            .pull_image(reference, platform.as_deref())
            .await
            .map(|_| ()),
        Action::Build { spec, .. } => engine.build_image(spec).await.map(|_| ()),
        Action::Create { spec, image } => {
            let id = match image {
                ImageSource::Id(id) => id.clone(),
                ImageSource::Pulled(r) => match pulled.get(r) {
                    Some(id) => id.clone(),
                    None => return Err(StepError::NotPulled(r.clone())),
                },
            };
            let mut spec = spec.as_ref().clone();
            spec.image = id;
            engine.create_container(&spec).await.map(|_| ())
        }
        Action::Start { target, .. } => engine.start_container(target).await,
        Action::Stop {
            id, grace, signal, ..
        } => engine.stop_container(id, *grace, signal.as_deref()).await,
        Action::Remove { id, .. } => engine.remove_container(id).await,
        Action::Rename { id, to, .. } => engine.rename_container(id, to).await,
        Action::Connect { id, attach, .. } => engine.connect_network(id, attach).await,
        Action::Pin {
            image_id,
            repo,
            tag,
        } => pin(engine, image_id, repo, tag).await,
        Action::Unpin { reference } => unpin(engine, reference).await,
        Action::RemoveNetwork { name } => engine.remove_network(name).await,
        Action::RemoveVolume { name } => engine.remove_volume(name).await,
        // Not an engine call: the service's steps hand it to `route`, which has the path.
        Action::Route { .. } => return Err(StepError::NoRoutesFile),
        // Removals run with the service steps, after every build of the round has ended: a
        // deleted image's untagged build parents can never be a cache layer that one of
        // berth's own builds is using at that moment.
        Action::RemoveImage { reference } => match engine.remove_image_tag(reference).await {
            // Still in use (a container of a revision berth no longer tracks): left in place.
            Err(EngineError::Conflict { .. }) => Ok(()),
            r => r,
        },
    };
    let r = match r {
        Err(e) if e.is_already_done() && !matches!(s.action, Action::Create { .. }) => Ok(()),
        r => r,
    };
    tracing::info!(step = %describe(s), cause = %s.cause, ms = started.elapsed().as_millis() as u64, ok = r.is_ok(), "step");
    r.map_err(StepError::Engine)
}
