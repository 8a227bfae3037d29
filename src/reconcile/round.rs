//! One reconcile round — the only place that goes records → observe → plan → execute:
//! `berth apply` runs rounds until convergence, `berth run` (the controller) one per wake-up,
//! `berth plan` and `berth status DIR` one without executing it.
//!
//! IO shell around the pure planner, in this order: read the records (from the store, or as
//! the previous round left them); list the containers; record the job runs they show; work out
//! what else the planner will need ([`super::scope`], pure) and observe it; plan once; carry
//! the plan out (the executor saves each changed record before its service's steps). The round
//! returns what it saw and did with a typed [`Outcome`]; what to do next (another round, a
//! wake-up, a report) is the caller's decision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::event::Event;
use super::execute::{self, Failure};
use super::observe;
use super::observed::{BuildFailure, ObservedState};
use super::plan::{self, Plan, PlanOptions, Records, record_jobs};
use super::prober::Prober;
use super::scope::{self, Scope};
use crate::desired::DesiredState;
use crate::engine::{Engine, EngineError};
use crate::store::{Store, StoreError};

/// How a round plans and executes.
#[derive(Debug, Clone, Copy)]
pub struct RoundOptions {
    /// Planner options (prune).
    pub plan: PlanOptions,
    /// Allow a desired state with no services while managed containers run.
    pub allow_empty: bool,
    /// Services worked on at once.
    pub parallelism: usize,
}

/// Where a round's records come from and go to.
#[derive(Clone, Copy)]
pub enum RecordsAt<'a> {
    /// Read from the store at the start of every round (they carry the operator's control
    /// files) and saved to it (`berth run`).
    Store(&'a Store),
    /// Kept in [`Carry::records`] from round to round, saved to the store when there is one
    /// (`berth apply` reads them once; `plan` and `status` save nothing).
    Memory {
        /// Where changed records are saved.
        save: Option<&'a Store>,
    },
}

/// Whether the round carries its plan out.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// Execute the plan; setting `stop` ends it between steps.
    Execute {
        /// The stop request.
        stop: &'a Arc<AtomicBool>,
    },
    /// Plan only (`berth plan`, `berth status DIR`).
    DryRun,
}

/// Everything a round works with.
pub struct Round<'a, E> {
    /// The engine.
    pub engine: &'a Arc<E>,
    /// The desired state.
    pub desired: &'a DesiredState,
    /// Options.
    pub opts: RoundOptions,
    /// The records.
    pub records: RecordsAt<'a>,
    /// berth's probes: their verdicts go into the plan; they follow the containers seen.
    pub prober: Option<&'a Prober>,
    /// Execute or only plan.
    pub mode: Mode<'a>,
    /// The data directory whose proxy routes file (port handoff) a plan-only round reads;
    /// rounds that save records use their store's.
    pub data_dir: Option<&'a std::path::Path>,
}

impl<'a, E> Round<'a, E> {
    /// A round that executes its plan (`berth apply`, `berth run`), with berth's probes.
    pub fn executing(
        engine: &'a Arc<E>,
        desired: &'a DesiredState,
        opts: RoundOptions,
        records: RecordsAt<'a>,
        prober: &'a Prober,
        stop: &'a Arc<AtomicBool>,
    ) -> Self {
        Round {
            engine,
            desired,
            opts,
            records,
            prober: Some(prober),
            mode: Mode::Execute { stop },
            data_dir: None,
        }
    }
}

/// What one round hands the next; owned by the caller, empty at first.
#[derive(Debug, Default)]
pub struct Carry {
    /// The records after the last round ([`RecordsAt::Memory`]; a copy otherwise).
    pub records: Records,
    /// Failed create/start steps of the last round, by `project/service`.
    step_errors: BTreeMap<String, String>,
    /// Failed builds of the last round, by image reference.
    build_failures: BTreeMap<String, BuildFailure>,
    /// What the last round's planner needed beyond its scope.
    widen: Scope,
    /// The engine did not answer since the last round that observed it.
    engine_lost: bool,
    /// A round has looked at the inventory (the housekeeping sweep ran once).
    swept: bool,
    /// The fleet's wave rule per project for the next round, set by the caller from the
    /// peers' status (`fleet::wave`); empty outside a fleet with waves.
    pub waves: BTreeMap<String, crate::fleet::wave::Decision>,
}

impl Carry {
    /// A start with these records.
    pub fn with_records(records: Records) -> Self {
        Carry {
            records,
            ..Carry::default()
        }
    }
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do and nothing waiting (a blocked service may be in the plan's notes).
    Settled,
    /// Nothing to do now, but something waits (a gate, a dependency, a backoff).
    Waiting,
    /// The plan was carried out without a failed step.
    Progressed,
    /// A step failed.
    Failed,
    /// A dry run's plan has steps (nothing was executed).
    Planned,
    /// The planner needed something the round had not observed: nothing was executed, and
    /// the next round observes it.
    Unobserved,
}

/// What a round saw and did: what `apply` reports and telemetry is built from.
#[derive(Debug)]
pub struct Done {
    /// How it ended.
    pub outcome: Outcome,
    /// What the engine showed.
    pub observed: ObservedState,
    /// The records after the round.
    pub records: Records,
    /// The plan.
    pub plan: Plan,
    /// Steps done.
    pub steps: usize,
    /// Rollout events, with log lines.
    pub events: Vec<Event>,
    /// Failed steps.
    pub failures: Vec<Failure>,
}

impl Done {
    fn nothing(outcome: Outcome, observed: ObservedState, records: Records, plan: Plan) -> Self {
        Done {
            outcome,
            observed,
            records,
            plan,
            steps: 0,
            events: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Something waits for a later round.
    pub fn waiting(&self) -> bool {
        self.plan.waits().next().is_some()
    }
}

/// Why a round could not do its job (as opposed to a failed step, which is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The engine failed in a way that is not a step failure (observing).
    #[error("failed to observe the engine")]
    Engine(#[from] EngineError),
    /// berth's records could not be read or written.
    #[error("failed to use berth's records")]
    Store(#[from] StoreError),
    /// The desired state is empty while managed containers run.
    #[error(
        "the desired state has no services, but {0} berth-managed container(s) run; refusing to remove them all (use --allow-empty if that is really what you want)"
    )]
    Empty(usize),
}

/// Runs one round at `now` (unix seconds). `before_execute` sees the plan just before it is
/// carried out (not called when there is nothing to do or on a dry run).
pub async fn run<E: Engine + 'static>(
    round: &Round<'_, E>,
    carry: &mut Carry,
    now: u64,
    before_execute: impl FnOnce(&Plan),
) -> Result<Done, RoundError> {
    let Round {
        engine,
        desired,
        opts,
        records: at,
        prober,
        mode,
        data_dir,
    } = *round;
    let (mut records, save) = match at {
        RecordsAt::Store(store) => (load_records(store, desired)?, Some(store)),
        RecordsAt::Memory { save } => (carry.records.clone(), save),
    };
    // Read commands (history, status, events) mask what this process masks.
    if let Some(data_dir) = save.and_then(|s| s.dir().parent())
        && let Err(e) = crate::redact::save(data_dir)
    {
        tracing::warn!(error = %e, "failed to save the values to mask for read commands");
    }
    let widen = std::mem::take(&mut carry.widen);
    let mut observed = match observe::containers(engine.as_ref()).await {
        Ok(o) => o,
        Err(e) => {
            // It may be restarting (stopping every container): the next round that sees it
            // must not take those exits for verdicts.
            carry.engine_lost = true;
            return Err(e.into());
        }
    };
    // Compose containers berth adopted are berth's from here on (their record says so).
    super::adopt::view(&mut observed, &records);
    observed.engine_lost = std::mem::take(&mut carry.engine_lost);
    observed.waves = carry.waves.clone();
    observed.probes = prober.map(Prober::verdicts).unwrap_or_default();
    observed.step_errors = std::mem::take(&mut carry.step_errors);
    observed.build_failures = std::mem::take(&mut carry.build_failures);
    // Port handoff: who receives traffic now, as the proxy's routes file says.
    let routes_file = data_dir
        .or_else(|| save.and_then(|s| s.dir().parent()))
        .map(crate::proxy::file::path);
    if let Some(path) = &routes_file {
        observed.routes = crate::proxy::file::read(path).unwrap_or_else(|e| {
            tracing::warn!(error = %crate::errors::chain(&e), "the proxy's routes are planned afresh");
            Default::default()
        });
    }
    if let Some(p) = prober {
        p.sync(engine, desired, &observed);
    }
    for key in record_jobs(&mut records, desired, &observed, now) {
        if let (Some(store), Some(rec)) = (save, records.get(&key)) {
            store.save(&key.0, &key.1, rec)?;
        }
    }
    // What each replica actually has against what its revision's spec asks (pure).
    observed.drift = super::drift::survey(&observed, &records);
    check_not_empty(desired, &observed, opts.allow_empty)?;
    let scope = scope::scope(desired, &observed, &records)
        .union(&widen)
        .union(&scope::housekeeping(
            desired,
            &observed,
            opts.plan,
            !carry.swept,
        ));
    if let Err(e) = observe::complete(engine.as_ref(), &mut observed, &scope).await {
        carry.engine_lost = true;
        return Err(e.into());
    }
    carry.swept |= observed.inventory.is_some();
    let plan = plan::plan(desired, &observed, &records, opts.plan, now);
    for n in &plan.notes {
        if let plan::Note::ProjectName(m) = n {
            tracing::warn!(project = %m.project, running_as = %m.running_as, "{m}");
        }
    }
    carry.records = records.clone();
    let lacking = scope::unobserved(&plan, &observed);
    let outcome = if !lacking.is_empty() {
        tracing::warn!(
            ?lacking,
            "the round's scope missed what the planner needs; observing it next round"
        );
        carry.widen = lacking;
        // Nothing acted on the last round's feedback yet: the next round gets it again.
        carry.step_errors = observed.step_errors.clone();
        carry.build_failures = observed.build_failures.clone();
        carry.engine_lost = observed.engine_lost;
        Outcome::Unobserved
    } else if plan.is_empty() && plan.waits().next().is_some() {
        Outcome::Waiting
    } else if plan.is_empty() {
        Outcome::Settled
    } else {
        Outcome::Planned
    };
    let stop = match mode {
        Mode::Execute { stop } if outcome == Outcome::Planned => stop,
        _ => return Ok(Done::nothing(outcome, observed, records, plan)),
    };
    before_execute(&plan);
    let out = execute::execute(
        engine,
        &plan,
        opts.parallelism,
        stop,
        save,
        routes_file.as_deref(),
    )
    .await;
    carry.step_errors = out.step_errors();
    carry.build_failures = out.build_failures.clone();
    for (k, r) in &plan.records {
        records.insert(k.clone(), r.clone());
    }
    // The log lines the executor kept with their revision (as it saved them).
    for e in &out.events {
        if let Some(rec) = records.get_mut(&(e.project.clone(), e.service.clone())) {
            execute::keep_logs(rec, std::slice::from_ref(e));
        }
    }
    carry.records = records.clone();
    Ok(Done {
        outcome: if out.failed.is_empty() {
            Outcome::Progressed
        } else {
            Outcome::Failed
        },
        observed,
        records,
        plan,
        steps: out.done.len(),
        events: out.events,
        failures: out.failed,
    })
}

/// One round that plans without executing or saving anything (`berth plan`, `berth status
/// DIR`) from `records`. Should the scope have missed what the planner needs, a second round
/// observes it.
pub async fn plan_only<E: Engine + 'static>(
    engine: &Arc<E>,
    desired: &DesiredState,
    records: Records,
    opts: PlanOptions,
    data_dir: Option<&std::path::Path>,
    now: u64,
) -> Result<Done, RoundError> {
    let round = Round {
        engine,
        desired,
        opts: RoundOptions {
            plan: opts,
            // Nothing is removed by a plan: it shows what would be.
            allow_empty: true,
            parallelism: 1,
        },
        records: RecordsAt::Memory { save: None },
        prober: None,
        mode: Mode::DryRun,
        data_dir,
    };
    let mut carry = Carry::with_records(records);
    let done = run(&round, &mut carry, now, |_| {}).await?;
    if done.outcome != Outcome::Unobserved {
        return Ok(done);
    }
    run(&round, &mut carry, now, |_| {}).await
}

/// Unix seconds now: the `now` a round is run at.
pub use crate::util::time::unix_now;

/// The records of every desired service (missing files read as empty records), and of
/// services no longer desired that still hold image pins.
pub fn load_records(store: &Store, desired: &DesiredState) -> Result<Records, StoreError> {
    let mut records = Records::new();
    for p in desired.projects.values() {
        for s in p.services.keys() {
            records.insert((p.name.clone(), s.clone()), store.load(&p.name, s)?);
        }
    }
    // Services no longer desired still hold pins until their containers are gone.
    for (p, s) in store.services()? {
        if let std::collections::btree_map::Entry::Vacant(e) = records.entry((p, s)) {
            let rec = store.load(&e.key().0, &e.key().1)?;
            if rec.revisions.iter().any(|r| r.pin.is_some()) {
                e.insert(rec);
            }
        }
    }
    Ok(records)
}

/// Refuses an empty desired state while managed containers run (a mistake, not a wish).
fn check_not_empty(
    desired: &DesiredState,
    observed: &ObservedState,
    allow_empty: bool,
) -> Result<(), RoundError> {
    let services: usize = desired.projects.values().map(|p| p.services.len()).sum();
    let managed = observed
        .containers
        .iter()
        .filter(|c| c.identity.managed)
        .count();
    if services == 0 && managed > 0 && !allow_empty {
        return Err(RoundError::Empty(managed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};
    use crate::engine::fake::FakeEngine;

    const T0: u64 = 1_700_000_000;

    fn desired(yaml: &str) -> DesiredState {
        let l = load_inline(
            &format!("x-berth: {{min_ready: 0s}}\n{yaml}"),
            &LoadOptions::default(),
        );
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    }

    /// Runs rounds (the clock a second further each time) until one settles; every round's
    /// outcome in order. A round whose scope missed what the planner needed fails the test.
    async fn converge(
        engine: &Arc<FakeEngine>,
        desired: &DesiredState,
        carry: &mut Carry,
        now: &mut u64,
    ) -> Vec<Outcome> {
        rounds(engine, desired, carry, now, 40).await
    }

    /// At most `rounds` rounds, until one settles (see [`converge`]).
    async fn rounds(
        engine: &Arc<FakeEngine>,
        desired: &DesiredState,
        carry: &mut Carry,
        now: &mut u64,
        rounds: usize,
    ) -> Vec<Outcome> {
        let stop = Arc::new(AtomicBool::new(false));
        let round = Round {
            engine,
            desired,
            opts: RoundOptions {
                plan: PlanOptions::default(),
                allow_empty: false,
                parallelism: 4,
            },
            records: RecordsAt::Memory { save: None },
            prober: None,
            mode: Mode::Execute { stop: &stop },
            data_dir: None,
        };
        let mut outcomes = Vec::new();
        for _ in 0..rounds {
            *now += 1;
            let done = run(&round, carry, *now, |_| {}).await.expect("round");
            assert_ne!(
                done.outcome,
                Outcome::Unobserved,
                "the scope missed what the planner needed:\n{}",
                done.plan
            );
            outcomes.push(done.outcome);
            if done.outcome == Outcome::Settled {
                return outcomes;
            }
        }
        assert!(rounds < 40, "no convergence: {outcomes:?}");
        outcomes
    }

    #[tokio::test]
    async fn every_round_observes_what_its_planner_needs_and_a_settled_one_costs_one_call() {
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("app:1", "sha256:app1");
        engine.add_image("app:2", "sha256:app2");
        let (mut carry, mut now) = (Carry::default(), T0);
        let yaml = |image: &str, replicas: u32| {
            format!(
                "name: shop\nservices:\n  migrate: {{image: 'app:1', restart: 'no'}}\n  web:\n    image: '{image}'\n    deploy: {{replicas: {replicas}}}\n    depends_on: {{migrate: {{condition: service_completed_successfully}}}}\n"
            )
        };
        // Cold: the job runs first, then the service; images looked up.
        let v1 = desired(&yaml("app:1", 2));
        let outcomes = rounds(&engine, &v1, &mut carry, &mut now, 3).await;
        assert_eq!(outcomes.last(), Some(&Outcome::Waiting), "{outcomes:?}");
        engine.kill("shop-migrate-1", 0);
        converge(&engine, &v1, &mut carry, &mut now).await;
        engine.clear_calls();
        converge(&engine, &v1, &mut carry, &mut now).await;
        assert_eq!(engine.calls(), ["list_containers"], "settled: one call");

        // A new revision goes through the readiness gate replica by replica.
        let v2 = desired(&yaml("app:2", 2));
        engine.clear_calls();
        let outcomes = converge(&engine, &v2, &mut carry, &mut now).await;
        assert!(outcomes.contains(&Outcome::Progressed), "{outcomes:?}");
        assert!(
            engine
                .calls()
                .iter()
                .any(|c| c.starts_with("inspect_container")),
            "the gate read restart counts: {:?}",
            engine.calls()
        );

        // Self-heal (a replica exits), a scale-up, a replica removed by hand.
        engine.kill("shop-web-1", 1);
        converge(&engine, &v2, &mut carry, &mut now).await;
        let v3 = desired(&yaml("app:2", 3));
        converge(&engine, &v3, &mut carry, &mut now).await;
        engine.remove_by_hand("shop-web-2");
        converge(&engine, &v3, &mut carry, &mut now).await;
        let web = engine
            .containers()
            .into_iter()
            .filter(|c| c.name.starts_with("shop-web-"))
            .count();
        assert_eq!(web, 3);
        engine.clear_calls();
        converge(&engine, &v3, &mut carry, &mut now).await;
        assert_eq!(engine.calls(), ["list_containers"], "settled again");

        // Only the job changes: it alone needs its image looked up and a container created.
        let v4 = desired(&yaml("app:2", 3).replacen("app:1", "app:2", 1));
        let outcomes = rounds(&engine, &v4, &mut carry, &mut now, 3).await;
        assert_eq!(outcomes[0], Outcome::Progressed, "{outcomes:?}");
        engine.kill("shop-migrate-1", 0);
        converge(&engine, &v4, &mut carry, &mut now).await;
    }

    #[tokio::test]
    async fn a_dry_run_plans_and_changes_nothing() {
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("app:1", "sha256:app1");
        let d = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
        let done = plan_only(
            &engine,
            &d,
            Records::new(),
            PlanOptions::default(),
            None,
            T0,
        )
        .await
        .expect("plan");
        assert_eq!(done.outcome, Outcome::Planned);
        assert!(!done.plan.steps.is_empty(), "{}", done.plan);
        assert!(
            engine.calls().iter().all(|c| c.starts_with("list_")),
            "{:?}",
            engine.calls()
        );
    }

    #[tokio::test]
    async fn the_round_after_the_engine_did_not_answer_says_so_once() {
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("app:1", "sha256:app1");
        let d = desired("name: shop\nservices:\n  web:\n    image: app:1\n");
        let stop = Arc::new(AtomicBool::new(false));
        let round = Round {
            engine: &engine,
            desired: &d,
            opts: RoundOptions {
                plan: PlanOptions::default(),
                allow_empty: false,
                parallelism: 1,
            },
            records: RecordsAt::Memory { save: None },
            prober: None,
            mode: Mode::Execute { stop: &stop },
            data_dir: None,
        };
        let mut carry = Carry::default();
        let first = run(&round, &mut carry, T0, |_| {}).await.expect("round");
        assert!(!first.observed.engine_lost);
        engine.fail_next("list_containers", crate::engine::fake::Fault::Unreachable);
        assert!(run(&round, &mut carry, T0 + 1, |_| {}).await.is_err());
        let back = run(&round, &mut carry, T0 + 2, |_| {})
            .await
            .expect("round");
        assert!(
            back.observed.engine_lost,
            "the first round that sees it again"
        );
        let next = run(&round, &mut carry, T0 + 3, |_| {})
            .await
            .expect("round");
        assert!(!next.observed.engine_lost, "only once");
    }
}
