//! `berth run`'s update checks: a background task beside the controller that checks each
//! service with `x-berth.update` at its `interval` and applies what it finds the way `berth
//! updates apply` does — a directory source gets the file rewritten, a git source a commit
//! pushed — after which the source's own change detection starts the rollout.
//!
//! IO (registry, engine image list, records, files, git); every decision is
//! [`super::schedule`]'s. It never blocks a round: it runs on its own task, reads the last
//! valid desired state the controller loaded ([`Latest`], locked only to clone an `Arc`), runs
//! each repository's check on a task of its own bounded by a deadline (a slow registry holds
//! up only its own services), and writes updates one at a time from this task.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::check::{self, Finding, Target};
use super::git::GitTarget;
use super::registry::{Client, Repository};
use super::schedule::{Act, Batch, Candidate, Key, Schedule};
use crate::desired::DesiredState;
use crate::desired::diag::Loc;
use crate::desired::syntax::image_ref::parse_image_ref;
use crate::engine::Engine;
use crate::store::Store;

/// The desired state the controller last loaded (valid) when some service in it has an
/// update policy, shared with the update task.
pub type Latest = Arc<Mutex<Option<Arc<DesiredState>>>>;

/// What the controller hands to [`Latest`] after loading `state`: the state when a service
/// has `x-berth.update` (else `None`, and the task has nothing to do).
pub fn publish(latest: &Latest, state: &DesiredState) {
    let wanted = state
        .projects
        .values()
        .any(|p| p.services.values().any(|s| s.berth.update.is_some()));
    let mut l = latest.lock().unwrap_or_else(|p| p.into_inner());
    *l = wanted.then(|| Arc::new(state.clone()));
}

/// Where a found update is written.
#[derive(Debug, Clone)]
pub enum Destination {
    /// The desired-state directory (`berth run --dir`): the file is rewritten in place.
    Dir(PathBuf),
    /// The git source (`berth run --git`): a commit pushed to the tracked branch, or to
    /// `--update-branch`.
    Git(Box<GitTarget>),
}

/// How the update task runs.
#[derive(Debug, Clone)]
pub struct AutoOptions {
    /// Where updates go.
    pub destination: Destination,
    /// berth's data directory (the records: quarantined versions are never proposed).
    pub data_dir: PathBuf,
    /// How often the task looks whether a service is due.
    pub tick: Duration,
    /// The deadline of one repository's check.
    pub check_timeout: Duration,
}

impl AutoOptions {
    /// Options with a 1 s tick and a 2 min check deadline.
    pub fn new(destination: Destination, data_dir: PathBuf) -> Self {
        AutoOptions {
            destination,
            data_dir,
            tick: Duration::from_secs(1),
            check_timeout: Duration::from_secs(120),
        }
    }
}

/// What the task decided for one service at one check, for telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// The policy's label (`semver`, `digest`, `pattern`).
    pub policy: &'static str,
    /// What was decided.
    pub act: Act,
    /// Set when an `Apply` was carried out: where it went (a file, or a commit and branch),
    /// or the failure with its causes.
    pub applied: Option<Result<String, String>>,
}

/// Who hears about the task's work.
pub struct Hooks {
    /// Every check's outcome, per service.
    pub report: Arc<dyn Fn(&Report) + Send + Sync>,
    /// Called after an update was written or pushed (e.g. poke the git source's fetch).
    pub applied: Arc<dyn Fn() + Send + Sync>,
}

/// One repository's finished check.
struct Done {
    repository: String,
    /// The targets checked, with where each image is written, and their findings.
    checked: Vec<(Target, Option<Loc>, Finding)>,
}

/// Runs until `stop` is set (looked at every tick).
pub async fn run<E: Engine + 'static>(
    engine: Arc<E>,
    latest: Latest,
    opts: AutoOptions,
    stop: Arc<AtomicBool>,
    hooks: Hooks,
) {
    let mut schedule = Schedule::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    while !stop.load(Ordering::Relaxed) {
        let done = tokio::select! {
            d = rx.recv() => d,
            () = tokio::time::sleep(opts.tick) => None,
        };
        let state = latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Arc::clone);
        if let Some(done) = done {
            finish(&mut schedule, state.as_deref(), &opts, &hooks, done).await;
            continue;
        }
        let Some(state) = state else { continue };
        let now = crate::util::time::unix_now();
        let candidates = candidates(&state);
        let keys: BTreeSet<Key> = candidates.iter().map(|c| c.key.clone()).collect();
        schedule.retain(&keys);
        for c in &candidates {
            if schedule.source_has(&c.key, &c.image) {
                tracing::info!(service = %format!("{}/{}", c.key.0, c.key.1), image = %c.image, "update landed in the desired state");
            }
        }
        let batches = schedule.due(&candidates, now);
        if batches.is_empty() {
            continue;
        }
        let targets = match targets(&engine, &opts, &state).await {
            Ok(t) => t,
            Err(e) => {
                // Without the records berth cannot know the quarantined versions: no check.
                tracing::warn!(error = %e, "update checks: failed to read berth's records");
                continue;
            }
        };
        for batch in batches {
            schedule.begin(&batch);
            start_check(&opts, &state, &targets, batch, now, tx.clone());
        }
    }
}

/// Every service of `state` with an update policy and an image.
fn candidates(state: &DesiredState) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (project, p) in &state.projects {
        for (service, s) in &p.services {
            let (Some(spec), Some(image)) = (&s.berth.update, &s.image) else {
                continue;
            };
            // An image berth cannot parse is its own "repository": its check fails clearly.
            let repository = parse_image_ref(image)
                .map(|r| {
                    let repo = Repository::of(&r);
                    format!("{}/{}", repo.registry, repo.name)
                })
                .unwrap_or_else(|_| image.clone());
            out.push(Candidate {
                key: (project.clone(), service.clone()),
                repository,
                image: image.clone(),
                spec: spec.clone(),
            });
        }
    }
    out
}

/// The check targets of `state` (quarantined versions from the records, running digests
/// from the engine).
async fn targets<E: Engine>(
    engine: &Arc<E>,
    opts: &AutoOptions,
    state: &Arc<DesiredState>,
) -> Result<Vec<Target>, String> {
    let data_dir = opts.data_dir.clone();
    let for_records = Arc::clone(state);
    let records = tokio::task::spawn_blocking(move || {
        let store = Store::open(&data_dir).map_err(|e| crate::errors::chain(&e))?;
        crate::reconcile::round::load_records(&store, &for_records)
            .map_err(|e| crate::errors::chain(&e))
    })
    .await
    .map_err(|e| format!("failed to read the records: {e}"))??;
    // Only `policy: digest` needs the running digests; without them every digest is new.
    let images = match tokio::time::timeout(Duration::from_secs(30), engine.list_images()).await {
        Ok(Ok(images)) => images,
        _ => Vec::new(),
    };
    Ok(check::targets(state, &records, &images))
}

/// Starts `batch`'s check on a task of its own, with a client of its own (credentials read
/// afresh, registry tokens kept for this check only); its result comes back through `tx`,
/// always (a deadline, or a panic, is a failed check).
fn start_check(
    opts: &AutoOptions,
    state: &DesiredState,
    targets: &[Target],
    batch: Batch,
    now: u64,
    tx: tokio::sync::mpsc::UnboundedSender<Done>,
) {
    let picked: Vec<(Target, Option<Loc>)> = targets
        .iter()
        .filter(|t| {
            batch
                .services
                .contains(&(t.project.clone(), t.service.clone()))
        })
        .map(|t| (t.clone(), image_loc(state, &t.project, &t.service)))
        .collect();
    let limit = opts.check_timeout;
    tokio::spawn(async move {
        let only: Vec<Target> = picked.iter().map(|(t, _)| t.clone()).collect();
        let task = tokio::spawn(async move {
            let client = Client::new(crate::engine::auth::Auth::from_env());
            tokio::time::timeout(limit, check::check(&client, &only, now)).await
        });
        let failed = |why: String| vec![Finding::Failed(why); picked.len()];
        let findings = match task.await {
            Ok(Ok(f)) => f,
            Ok(Err(_)) => failed(format!("failed to check within {}s", limit.as_secs())),
            Err(e) => failed(format!("failed to check: the check task ended: {e}")),
        };
        let checked = picked
            .into_iter()
            .zip(findings)
            .map(|((t, loc), f)| (t, loc, f))
            .collect();
        // The receiver goes only when berth run stops.
        let _ = tx.send(Done {
            repository: batch.repository,
            checked,
        });
    });
}

fn image_loc(state: &DesiredState, project: &str, service: &str) -> Option<Loc> {
    state
        .projects
        .get(project)
        .and_then(|p| p.services.get(service))
        .and_then(|s| s.field_locs.get("image"))
        .cloned()
}

/// A check ended: the schedule decides, updates are written, telemetry hears of each service.
async fn finish(
    schedule: &mut Schedule,
    state: Option<&DesiredState>,
    opts: &AutoOptions,
    hooks: &Hooks,
    done: Done,
) {
    let results: Vec<(Key, String, Finding)> = done
        .checked
        .iter()
        .map(|(t, _, f)| {
            (
                (t.project.clone(), t.service.clone()),
                t.image.clone(),
                f.clone(),
            )
        })
        .collect();
    let acts = schedule.finish(&done.repository, &results, crate::util::time::unix_now());
    for ((t, loc, _), (key, act)) in done.checked.into_iter().zip(acts) {
        let now_image = state.and_then(|s| {
            s.projects
                .get(&key.0)
                .and_then(|p| p.services.get(&key.1))
                .and_then(|s| s.image.clone())
        });
        if now_image.as_deref() != Some(t.image.as_str()) {
            // The desired state changed while the registry was asked: what was found may not
            // fit any more. Checked again at once, against what is there now.
            schedule.recheck(&key);
            continue;
        }
        let applied = match &act {
            Act::Apply(u) => {
                let result = apply(&opts.destination, &key, loc, u.clone()).await;
                if result.is_ok() {
                    schedule.applied(&key, u);
                    (hooks.applied)();
                }
                Some(result)
            }
            _ => None,
        };
        (hooks.report)(&Report {
            project: key.0.clone(),
            service: key.1.clone(),
            policy: t.spec.policy.label(),
            act,
            applied,
        });
    }
}

/// Writes or commits `update` (off the async threads: files and git); where it went.
async fn apply(
    destination: &Destination,
    key: &Key,
    loc: Option<Loc>,
    update: super::check::Update,
) -> Result<String, String> {
    let loc = loc.ok_or_else(|| {
        "failed to find where the image is written: the loader gave no position".to_string()
    })?;
    let destination = destination.clone();
    let (project, service) = key.clone();
    tokio::task::spawn_blocking(move || match destination {
        Destination::Dir(root) => super::write::write_update(&root, &loc, &update)
            .map(|w| w.file().to_string())
            .map_err(|e| crate::errors::chain(&e)),
        Destination::Git(target) => {
            super::git::commit_update(target.as_ref(), &project, &service, &loc, &update)
                .map(|c| {
                    format!(
                        "commit {} pushed to {} ({})",
                        crate::util::id::short(&c.sha),
                        c.branch,
                        c.written.file()
                    )
                })
                .map_err(|e| crate::errors::chain(&e))
        }
    })
    .await
    .map_err(|e| format!("failed to apply the update: the writing task ended: {e}"))?
}
