//! Removing one project that left the desired state (`berth prune PROJECT`): its containers,
//! the networks (and with `--volumes` the volumes) berth created for it, its image pins and
//! built images, then its records. `apply --prune` does the same for every orphan at once.
//!
//! Imperative shell: the first round's observation becomes a `Preview` that the caller
//! confirms (or not) before anything changes; then each round observes the engine (with the
//! inventory), asks the pure planner (`reconcile::plan::prune_project`, which refuses a
//! desired project unless forced) and carries the plan out, until a round plans nothing; then
//! the project's records are forgotten.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::desired::DesiredState;
use crate::engine::{Engine, EngineError};
use crate::reconcile::execute::{self, Failure};
use crate::reconcile::plan::{
    Plan, Preview, PruneOptions, PruneRefusal, Records, Step, check_prune, preview, prune_project,
};
use crate::reconcile::scope::Scope;
use crate::reconcile::{adopt, observe};
use crate::store::{Store, StoreError};

/// Rounds at most: containers go in the first, networks with them, pins and built images
/// in the second, pins no record owns in the third. More means something keeps coming back.
const MAX_ROUNDS: usize = 6;

/// Why the project was not (entirely) removed.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// The project is still desired.
    #[error(transparent)]
    Refused(#[from] PruneRefusal),
    /// The engine could not be observed.
    #[error("failed to observe the engine")]
    Engine(#[from] EngineError),
    /// berth's records could not be read or written.
    #[error("failed to use berth's records")]
    Store(#[from] StoreError),
}

/// What was done.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// The steps carried out (failed ones are in `failures`).
    pub steps: Vec<Step>,
    /// Failed steps: the project is not entirely gone; its records are kept.
    pub failures: Vec<Failure>,
    /// Services whose records were forgotten.
    pub forgotten: Vec<String>,
    /// Rounds ended with steps left (something keeps coming back).
    pub unsettled: bool,
    /// A stop was requested.
    pub interrupted: bool,
    /// The preview was not confirmed: nothing was done.
    pub declined: bool,
}

impl PruneReport {
    /// Nothing of the project is left.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.unsettled && !self.interrupted && !self.declined
    }

    /// There was nothing of the project to remove: no container, network, pin or record.
    pub fn nothing(&self) -> bool {
        self.ok() && self.steps.is_empty() && self.forgotten.is_empty()
    }
}

/// Who watches a prune: confirms the preview, sees each round's plan.
pub trait Watch {
    /// Sees what will be removed before anything is (not called when nothing of the project
    /// is there); `false` declines and nothing is done.
    fn confirm(&mut self, preview: &Preview) -> bool;
    /// Sees a round's plan before it runs.
    fn plan(&mut self, plan: &Plan);
}

/// Removes `project`, which `desired` must not hold unless `opts.force`. `store` holds its
/// records (read, updated, then forgotten); `watch` confirms and follows.
pub async fn prune<E: Engine + 'static>(
    engine: &Arc<E>,
    desired: &DesiredState,
    project: &str,
    opts: PruneOptions,
    store: Option<&Store>,
    stop: &Arc<AtomicBool>,
    watch: &mut impl Watch,
) -> Result<PruneReport, PruneError> {
    // Refuse before touching anything (the planner says the same every round).
    check_prune(project, desired, opts)?;
    let mut records = Records::new();
    if let Some(s) = store {
        for (p, svc) in s.services()? {
            if p == project {
                let rec = s.load(&p, &svc)?;
                records.insert((p, svc), rec);
            }
        }
    }
    let mut report = PruneReport::default();
    let inventory = Scope {
        inventory: true,
        ..Scope::default()
    };
    let mut settled = false;
    let mut confirmed = false;
    for _ in 0..MAX_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            return Ok(report);
        }
        let mut observed = observe::containers(engine.as_ref()).await?;
        adopt::view(&mut observed, &records);
        observe::complete(engine.as_ref(), &mut observed, &inventory).await?;
        let plan = prune_project(
            project,
            desired,
            &observed,
            &records,
            opts,
            crate::util::time::unix_now(),
        )?;
        if !confirmed {
            confirmed = true;
            let shown = preview(project, &plan, &observed, &records);
            if !shown.is_empty() && !watch.confirm(&shown) {
                report.declined = true;
                return Ok(report);
            }
        }
        if plan.is_empty() {
            settled = true;
            break;
        }
        watch.plan(&plan);
        // No routes file: a prune plan has no `Route` step (a pruned project's handed-off
        // ports are released by the next `apply --prune` or `run --prune`; see rollouts.md).
        let out = execute::execute(engine, &plan, 1, stop, store, None).await;
        for (k, r) in &plan.records {
            records.insert(k.clone(), r.clone());
        }
        report.steps.extend(
            plan.steps
                .iter()
                .filter(|s| !out.failed.iter().any(|f| f.step.step() == Some(*s)))
                .cloned(),
        );
        if !out.failed.is_empty() {
            report.failures = out.failed;
            return Ok(report);
        }
    }
    if !settled {
        report.unsettled = true;
        return Ok(report);
    }
    if let Some(s) = store {
        for (p, svc) in records.keys() {
            s.forget(p, svc)?;
            report.forgotten.push(svc.clone());
        }
    }
    Ok(report)
}
