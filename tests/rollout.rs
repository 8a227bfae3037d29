//! The rollout state machine (`reconcile::rollout`, docs/rollouts.md) through the pure planner,
//! round after round, against a simulated engine: start-first and stop-first updates, the
//! readiness gate, revert and quarantine, batches, pre-deploy and smoke gates, self-heal, and
//! crashes between (and inside) rounds.
//!
//! The simulation is the controller's loop without IO: observe the [`World`], `plan()` with
//! berth's records and `now`, save the plan's records, apply its steps one by one to the
//! in-memory engine as the executor would (`support/sim.rs`; strictly: a taken name or a step
//! on a missing container panics), one second passes. How a started container behaves is
//! decided by its image ([`Behaviour`], the engine's start rules), so a "bad release" is an
//! image ID that crashes, turns unhealthy, is restarted by Docker, or never gets ready.

use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
mod support {
    pub mod sim;
}

use berth::engine::fake::{OnStart, Started};
use berth::engine::labels::{self, compose};
use berth::engine::{ContainerSummary, Health, RunState};
use berth::reconcile::event::EventKind;
use berth::reconcile::observed::{BuildFailure, ObservedState, ProbeVerdicts};
use berth::reconcile::plan::{Action, ImageSource, Note, Plan, PlanOptions, Records, plan, short};
use berth::reconcile::probe::ProbeStatus;
use berth::reconcile::reason::{EventReason, FailReason, HealReason};
use berth::store::{Outcome, RolloutKind, ServiceRecord};
use indoc::indoc;
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::sim::Host;

const T0: u64 = 1_700_000_000;

fn desired(yaml: &str) -> DesiredState {
    let l = load_inline(yaml, &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// Project `shop` with one service `web` running `image`; `extra` is more of web's YAML
/// (indented four spaces), e.g. `"    ports: ['8080:80']\n"`.
fn web(image: &str, extra: &str) -> DesiredState {
    desired(&format!(
        "name: shop\nservices:\n  web:\n    image: '{image}'\n{extra}"
    ))
}

fn hash(d: &DesiredState) -> String {
    d.projects["shop"].services["web"].spec_hash.clone()
}

fn h12(d: &DesiredState) -> String {
    short(&hash(d)).to_string()
}

/// How a container started from an image behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Runs; healthy when it has a healthcheck.
    Good,
    /// Exits with code 1 as soon as it starts.
    Crashes,
    /// Runs, and its Docker healthcheck reports unhealthy.
    Unhealthy,
    /// Runs, after Docker's restart policy restarted it once.
    Restarted,
    /// Runs, and its Docker healthcheck never leaves `starting`.
    NeverReady,
}

/// A replica as the tests compare it: (name, short spec hash, state).
type Replica = (String, String, RunState);

/// The simulated host (the in-memory engine, `support/sim.rs`) and what berth's prober and
/// executor hand a round beside it. `clone` copies the whole world.
#[derive(Clone)]
struct World {
    host: Host,
    /// Probe verdicts by container ID (what the prober reports).
    probes: BTreeMap<String, ProbeVerdicts>,
    /// Builds that failed in the last round (what the executor hands the next round).
    build_failures: BTreeMap<String, BuildFailure>,
    /// The engine did not answer since the last round (what the round hands the planner).
    engine_lost: bool,
}

impl World {
    /// Images `app:1` ... `app:9`, each with ID `sha256:appN`, all good; the project's network;
    /// a started container with a healthcheck is healthy at once, and the one-shot gate and
    /// job containers exit 0.
    fn new() -> Self {
        let host = Host::new();
        for n in 1..=9 {
            host.image(&format!("app:{n}"), &format!("sha256:app{n}"));
        }
        host.network("shop_default");
        host.engine.set_start_health(Health::Healthy);
        let w = World {
            host,
            probes: BTreeMap::new(),
            build_failures: BTreeMap::new(),
            engine_lost: false,
        };
        for role in ["smoke", "pre-deploy", "job"] {
            w.gate_exit(role, 0);
        }
        w
    }

    fn bad(self, reference: &str, b: Behaviour) -> Self {
        let id = self.images()[reference].clone();
        self.behave(&id, b);
        self
    }

    /// Containers of image `id` behave as `b` once started.
    fn behave(&self, id: &str, b: Behaviour) {
        let what = match b {
            Behaviour::Good => OnStart::Runs,
            Behaviour::Crashes => OnStart::Exits(1),
            Behaviour::Unhealthy => OnStart::Reports(Health::Unhealthy),
            Behaviour::Restarted => OnStart::Restarted(1),
            Behaviour::NeverReady => OnStart::Reports(Health::Starting),
        };
        self.host
            .engine
            .on_start(Started::Image(id.to_owned()), what);
    }

    /// The one-shot containers of `role` (`smoke`, `pre-deploy`, `job`) exit with `code`.
    fn gate_exit(&self, role: &str, code: i64) {
        self.host.engine.on_start(
            Started::Label(format!("{}={role}", labels::ROLE)),
            OnStart::Exits(code),
        );
    }

    /// The container named `name` crashes when started, whatever its image.
    fn crash(&self, name: &str) {
        self.host
            .engine
            .on_start(Started::Name(name.to_owned()), OnStart::Exits(1));
    }

    /// Building `reference` fails with the engine's `message`.
    fn fail_build(&self, reference: &str, message: String) {
        self.host.engine.set_build_result(reference, Err(message));
    }

    /// Building `reference` works again.
    fn fix_build(&self, reference: &str) {
        self.host
            .engine
            .set_build_result(reference, Ok(format!("sha256:{reference}")));
    }

    fn containers(&self) -> Vec<ContainerSummary> {
        self.host.containers()
    }

    /// Local images: reference → ID.
    fn images(&self) -> BTreeMap<String, String> {
        self.host.images()
    }

    /// Every build run, by reference.
    fn builds(&self) -> Vec<String> {
        self.host.builds()
    }

    fn observed(&self) -> ObservedState {
        let mut o = self.host.observed();
        o.probes = self.probes.clone();
        o.build_failures = self.build_failures.clone();
        o.engine_lost = self.engine_lost;
        o
    }

    /// Applies one step the way Docker would; a plan never starts a running container nor
    /// creates a second container for one service, role, number and hash.
    fn step(&mut self, action: &Action) {
        match action {
            Action::Create { spec, .. } => {
                let key = |l: &BTreeMap<String, String>| {
                    [
                        labels::SERVICE,
                        labels::ROLE,
                        compose::NUMBER,
                        labels::SPEC_HASH,
                    ]
                    .map(|k| l.get(k).cloned().unwrap_or_default())
                };
                let same = key(&spec.labels);
                assert!(
                    !self.containers().iter().any(|c| key(&c.labels) == same),
                    "create {}: a container with the same service, role, number and hash exists (a duplicate)",
                    spec.name
                );
            }
            Action::Start { target, .. } => {
                let c = self
                    .containers()
                    .into_iter()
                    .find(|c| c.id == *target || c.name == *target)
                    .unwrap_or_else(|| panic!("no container {target}"));
                assert_ne!(c.state, RunState::Running, "start {}: running", c.name);
            }
            _ => {}
        }
        if let Err(e) = self.host.step(action) {
            let Action::Build { reference, .. } = action else {
                unreachable!("only a build fails without a panic");
            };
            let failure = BuildFailure {
                summary: e.detail(),
                log: e.build_log().map(str::to_string),
            };
            self.build_failures.insert(reference.clone(), failure);
        }
    }

    /// Replicas of web, in creation order.
    fn web(&self) -> Vec<Replica> {
        self.containers()
            .iter()
            .filter(|c| {
                c.labels.get(labels::SERVICE).map(String::as_str) == Some("web")
                    && c.labels.get(labels::ROLE).map(String::as_str) == Some("replica")
            })
            .map(|c| {
                (
                    c.name.clone(),
                    short(&c.labels[labels::SPEC_HASH]).to_string(),
                    c.state,
                )
            })
            .collect()
    }

    /// Running replicas of web that a client could use: running and not unhealthy.
    fn serving(&self) -> usize {
        self.containers()
            .iter()
            .filter(|c| {
                c.labels.get(labels::ROLE).map(String::as_str) == Some("replica")
                    && c.state == RunState::Running
                    && c.health != Health::Unhealthy
            })
            .count()
    }
}

/// The world and berth across rounds: records, clock, and everything that happened.
#[derive(Clone)]
struct Sim {
    w: World,
    records: Records,
    now: u64,
    /// Every plan so far, in order.
    plans: Vec<Plan>,
}

impl Sim {
    fn new(w: World) -> Self {
        Sim {
            w,
            records: Records::new(),
            now: T0,
            plans: Vec::new(),
        }
    }

    fn plan(&self, d: &DesiredState) -> Plan {
        plan(
            d,
            &self.w.observed(),
            &self.records,
            PlanOptions::default(),
            self.now,
        )
    }

    /// One round; `check` sees the world before the first step and after every step.
    fn round_checked(&mut self, d: &DesiredState, check: &mut dyn FnMut(&World)) -> Plan {
        let p = self.plan(d);
        self.records
            .extend(p.records.iter().map(|(k, r)| (k.clone(), r.clone())));
        // A build failure and a lost engine are reported to the round after them, once.
        self.w.build_failures.clear();
        self.w.engine_lost = false;
        check(&self.w);
        // As the executor: a service whose image did not arrive (a failed build) is left
        // untouched this round.
        let mut untouched = std::collections::BTreeSet::new();
        for s in &p.steps {
            if let Action::Create {
                image: ImageSource::Pulled(r),
                ..
            } = &s.action
                && !self.w.images().contains_key(r)
            {
                untouched.insert(s.scope());
            }
            if untouched.contains(&s.scope()) {
                continue;
            }
            self.w.step(&s.action);
            check(&self.w);
        }
        self.now += 1;
        self.plans.push(p.clone());
        p
    }

    fn round(&mut self, d: &DesiredState) -> Plan {
        self.round_checked(d, &mut |_| {})
    }

    /// Rounds until nothing is left to do or wait for; panics after 60.
    fn converge_checked(&mut self, d: &DesiredState, check: &mut dyn FnMut(&World)) -> Plan {
        for _ in 0..60 {
            let p = self.round_checked(d, check);
            if settled(&p) {
                return p;
            }
        }
        panic!("no convergence within 60 rounds:\n{}", self.plan(d));
    }

    fn converge(&mut self, d: &DesiredState) -> Plan {
        self.converge_checked(d, &mut |_| {})
    }

    fn record(&self) -> ServiceRecord {
        self.records
            .get(&("shop".to_string(), "web".to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Events of every plan so far, as `Kind: message`.
    fn events(&self) -> Vec<String> {
        self.plans
            .iter()
            .flat_map(|p| p.events.iter())
            .map(|e| format!("{:?}: {}", e.kind, e.message))
            .collect()
    }
}

/// Nothing to do and nothing to wait for.
fn settled(p: &Plan) -> bool {
    p.is_empty() && p.waits().next().is_none()
}

/// A sim where `d` was deployed and has converged.
fn deployed(w: World, d: &DesiredState) -> Sim {
    let mut sim = Sim::new(w);
    sim.converge(d);
    sim
}

/// The web replicas' IDs, by name.
fn ids(w: &World) -> BTreeMap<String, String> {
    w.containers()
        .into_iter()
        .filter(|c| c.labels.get(labels::ROLE).map(String::as_str) == Some("replica"))
        .map(|c| (c.name.clone(), c.id.clone()))
        .collect()
}

/// Every replica of web runs `d`'s revision under its canonical name, and nothing else exists.
fn assert_runs(w: &World, d: &DesiredState, replicas: u32) {
    let h = h12(d);
    let want: Vec<Replica> = (1..=replicas)
        .map(|n| (format!("shop-web-{n}"), h.clone(), RunState::Running))
        .collect();
    let mut got = w.web();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(w.containers().len(), replicas as usize, "no leftovers");
}

const FAST: &str = "    x-berth: {min_ready: 0s}\n";
const PORT: &str = "    ports: ['8080:80']\n    x-berth: {min_ready: 0s}\n";

#[test]
fn a_good_start_first_update_keeps_the_old_container_serving_until_the_candidate_passed() {
    let x = "    x-berth: {min_ready: 2s}\n";
    let (d1, d2) = (web("app:1", x), web("app:2", x));
    let mut sim = deployed(World::new(), &d1);
    let old = ids(&sim.w)["shop-web-1"].clone();
    let (a, b) = (h12(&d1), h12(&d2));
    let mut passed = false;
    let mut texts = Vec::new();
    for _ in 0..5 {
        // Does this round's decision say the candidate passed?
        passed |= sim
            .plan(&d2)
            .records
            .values()
            .any(|r| r.current().is_some_and(|c| c.spec_hash == hash(&d2)));
        let p = sim.round_checked(&d2, &mut |w| {
            // Never a moment without a running, not unhealthy replica.
            assert!(w.serving() >= 1, "nothing serves: {:?}", w.web());
            // The old container runs until the round in which the candidate passed.
            if !passed {
                let o = w.containers().into_iter().find(|c| c.id == old).unwrap();
                assert_eq!(o.state, RunState::Running, "{:?}", w.web());
            }
        });
        texts.push(p.to_string());
    }
    // In the last round the pin comes first (it runs before the record is saved); the old
    // container is stopped and renamed by the swap, then removed under its new name (the
    // revision is stable at once): one stop, not two.
    assert_eq!(
        texts,
        [
            format!(
                "shop/web  rolling out r2 ({b}), start-first (new beside old): image app:1 → app:2\n\
                 shop/web  create shop-web-1-{b}  r2 replica 1\n\
                 shop/web  start shop-web-1-{b}   r2 replica 1\n\
                 shop/web  waits: replica 1: starting\n"
            ),
            "shop/web  waits: replica 1: ready, holding for min_ready (0s of 2s)\n".to_string(),
            "shop/web  waits: replica 1: ready, holding for min_ready (1s of 2s)\n".to_string(),
            format!(
                "shop/web  pin app2 as berth-pin/shop/web:r2             keep r2's image for a revert (docker image prune cannot remove it)\n\
                 shop/web  stop shop-web-1                               r2 replica 1: stop (kept for a revert)\n\
                 shop/web  rename shop-web-1 -> shop-web-1-{a}  r2 replica 1: keep the old container under another name\n\
                 shop/web  rename shop-web-1-{b} -> shop-web-1  r2 replica 1: takes the name\n\
                 shop/web  remove shop-web-1-{a}                r2 is stable; the old container is no longer needed\n"
            ),
            String::new(),
        ]
    );
    assert!(passed);
    assert_runs(&sim.w, &d2, 1);
    let rec = sim.record();
    let r2 = rec.current().unwrap();
    assert_eq!(
        (r2.number, r2.stable, r2.pin.as_deref()),
        (2, true, Some("berth-pin/shop/web:r2"))
    );
    assert_eq!(sim.w.images()["berth-pin/shop/web:r1"], "sha256:app1");
    assert_eq!(sim.w.images()["berth-pin/shop/web:r2"], "sha256:app2");
}

#[test]
fn stop_first_with_a_published_port_stops_and_renames_the_old_one_before_creating() {
    let (d1, d2) = (web("app:1", PORT), web("app:2", PORT));
    let mut sim = deployed(World::new(), &d1);
    let (a, b, why) = (h12(&d1), h12(&d2), "r2 replica 1");
    let p = sim.round_checked(&d2, &mut |w| {
        let running = w.web().iter().filter(|c| c.2 == RunState::Running).count();
        assert!(running <= 1, "host port 8080 bound twice: {:?}", w.web());
    });
    assert_eq!(
        p.to_string(),
        format!(
            "shop/web  rolling out r2 ({b}), stop-first (publishes host port 8080, which cannot be bound twice; x-berth.handoff: http or tcp lets berth's proxy hold it and makes updates start-first): image app:1 → app:2\n\
             shop/web  stop shop-web-1                               {why}: stop (kept for a revert)\n\
             shop/web  rename shop-web-1 -> shop-web-1-{a}  {why}: keep the old container under another name\n\
             shop/web  create shop-web-1                             {why}\n\
             shop/web  start shop-web-1                              {why}\n\
             shop/web  waits: replica 1: starting\n"
        )
    );
    sim.converge(&d2);
    assert_runs(&sim.w, &d2, 1);
}

/// Bad releases, one per way a candidate fails the gate, the reason each is quarantined for,
/// and the typed reason its events carry.
fn bad_releases() -> Vec<(Behaviour, &'static str, &'static str, FailReason)> {
    vec![
        (
            Behaviour::Crashes,
            "",
            "replica 1: exited with code 1 before becoming ready",
            FailReason::Exited,
        ),
        (
            Behaviour::Unhealthy,
            "    healthcheck: {test: [CMD, ok]}\n",
            "replica 1: Docker healthcheck reports unhealthy",
            FailReason::Unhealthy,
        ),
        (
            Behaviour::Restarted,
            "",
            "replica 1: crashed and was restarted by Docker 1 time(s) before becoming ready",
            FailReason::Crashed,
        ),
        (
            Behaviour::NeverReady,
            "    healthcheck: {test: [CMD, ok]}\n",
            "replica 1: not ready within progress_deadline (5s): Docker healthcheck is starting",
            FailReason::Deadline,
        ),
    ]
}

#[test]
fn every_kind_of_gate_failure_reverts_in_the_round_it_is_seen_and_quarantines_the_revision() {
    for (behaviour, extra, reason, why) in bad_releases() {
        let x = format!("{extra}    x-berth: {{min_ready: 0s, progress_deadline: 5s}}\n");
        let (d1, d2) = (web("app:1", &x), web("app:2", &x));
        let mut sim = deployed(World::new().bad("app:2", behaviour), &d1);
        let old = ids(&sim.w)["shop-web-1"].clone();
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 20, "{behaviour:?}: no failure seen");
            let p = sim.round_checked(&d2, &mut |w| {
                let o = w.containers().into_iter().find(|c| c.id == old).unwrap();
                assert_eq!(
                    o.state,
                    RunState::Running,
                    "{behaviour:?}: the old one stopped"
                );
            });
            let failed = p.events.iter().any(|e| e.kind == EventKind::RolloutFailed);
            if failed {
                // The same round reverts: the candidate goes, the revert completes.
                assert!(
                    p.events.iter().any(|e| e.kind == EventKind::Reverted),
                    "{behaviour:?}: {:?}",
                    p.events
                );
                // The failure and the revert carry why, typed (their `reason` label).
                let reasons: Vec<(EventKind, EventReason)> = p
                    .events
                    .iter()
                    .filter(|e| matches!(e.kind, EventKind::RolloutFailed | EventKind::Reverted))
                    .map(|e| (e.kind, e.reason))
                    .collect();
                assert_eq!(
                    reasons,
                    [
                        (EventKind::RolloutFailed, EventReason::Failure(why)),
                        (EventKind::Reverted, EventReason::Failure(why)),
                    ],
                    "{behaviour:?}"
                );
                let removed: Vec<String> = p.steps.iter().map(|s| s.action.to_string()).collect();
                assert_eq!(
                    removed.last().map(String::as_str),
                    Some(format!("remove shop-web-1-{}", h12(&d2)).as_str()),
                    "{behaviour:?}: {removed:?}"
                );
                break;
            }
        }
        let rec = sim.record();
        assert_eq!(rec.quarantined.len(), 1, "{behaviour:?}");
        assert_eq!(rec.quarantined[0].spec_hash, hash(&d2));
        assert_eq!(rec.quarantined[0].reason, reason, "{behaviour:?}");
        let r2 = rec.revision(2).unwrap();
        assert_eq!((r2.outcome, r2.stable), (Outcome::Reverted, false));
        assert!(rec.active.is_none() && rec.degraded.is_none());
        assert_runs(&sim.w, &d1, 1);
        assert_eq!(
            ids(&sim.w)["shop-web-1"],
            old,
            "{behaviour:?}: the same container"
        );
    }
}

#[test]
fn the_revert_round_of_a_start_first_update_removes_the_candidate_and_says_why() {
    let (d1, d2) = (web("app:1", FAST), web("app:2", FAST));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    let b = h12(&d2);
    sim.round(&d2);
    assert_eq!(
        sim.round(&d2).to_string(),
        format!(
            "shop/web  remove shop-web-1-{b}  revert to r1 (r2 failed) replica 1\n\
             shop/web  blocked: revision {b} failed and is quarantined (replica 1: exited with code 1 before becoming ready); the previous revision runs; change the desired state or `berth retry`\n"
        )
    );
    let events = sim.events();
    assert_eq!(
        events[events.len() - 2..],
        [
            format!(
                "RolloutFailed: r2 ({b}) failed: replica 1: exited with code 1 before becoming ready; reverting to r1"
            ),
            "Reverted: r2 failed (replica 1: exited with code 1 before becoming ready); r1 runs again and is ready".to_string(),
        ]
    );
}

#[test]
fn the_revert_round_of_a_stop_first_update_renames_the_kept_container_back_and_starts_it() {
    let (d1, d2) = (web("app:1", PORT), web("app:2", PORT));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    let old = ids(&sim.w)["shop-web-1"].clone();
    let a = h12(&d1);
    sim.round(&d2);
    // The failed candidate holds the canonical name; the kept one gets it back. (Steps act on
    // IDs; `start` names the container as it is when the start runs: after the rename.)
    assert_eq!(
        sim.round(&d2).to_string(),
        format!(
            "shop/web  remove shop-web-1                             revert to r1 (r2 failed) replica 1\n\
             shop/web  rename shop-web-1-{a} -> shop-web-1  revert to r1 (r2 failed) replica 1\n\
             shop/web  start shop-web-1                              revert to r1 (r2 failed) replica 1\n\
             shop/web  waits: replica 1: starting\n"
        )
    );
    sim.converge(&d2);
    assert_runs(&sim.w, &d1, 1);
    assert_eq!(
        ids(&sim.w)["shop-web-1"],
        old,
        "the kept container, not a new one"
    );
}

#[test]
fn a_quarantined_revision_is_not_retried_until_the_desired_state_changes() {
    let (d1, d2, d3) = (web("app:1", FAST), web("app:2", FAST), web("app:3", FAST));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    sim.converge(&d2);
    let reverted = sim.record();
    // Same desired state, much later: nothing is tried again, and the note says why.
    sim.now += 3600;
    for _ in 0..5 {
        let p = sim.round(&d2);
        assert!(p.is_empty(), "{p}");
        let blocked: Vec<String> = p.blocks().map(ToString::to_string).collect();
        assert_eq!(blocked.len(), 1, "{p}");
        assert!(
            blocked[0].contains(&format!("revision {} failed and is quarantined", h12(&d2))),
            "{}",
            blocked[0]
        );
    }
    assert_eq!(sim.record(), reverted);
    // A new desired state lifts the quarantine and rolls out.
    let p = sim.round(&d3);
    assert!(
        p.events
            .iter()
            .any(|e| e.kind == EventKind::QuarantineLifted
                && e.message
                    == format!(
                        "revision {} may be tried again: the desired state changed",
                        h12(&d2)
                    )),
        "{:?}",
        p.events
    );
    sim.converge(&d3);
    assert!(sim.record().quarantined.is_empty());
    assert_runs(&sim.w, &d3, 1);
    assert_eq!(sim.record().current().unwrap().number, 3);
}

#[test]
fn berth_retry_lifts_the_quarantine_and_the_same_revision_is_tried_again() {
    let (d1, d2) = (web("app:1", FAST), web("app:2", FAST));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    sim.converge(&d2);
    // The operator fixed what app:2 needed and says `berth retry`.
    sim.w.behave("sha256:app2", Behaviour::Good);
    let key = ("shop".to_string(), "web".to_string());
    sim.records.get_mut(&key).unwrap().control.retry_at = Some(sim.now);
    sim.converge(&d2);
    assert_runs(&sim.w, &d2, 1);
    let rec = sim.record();
    assert!(rec.quarantined.is_empty());
    assert_eq!(rec.current().unwrap().spec_hash, hash(&d2));
}

#[test]
fn an_unchanged_spec_keeps_its_revision_number_after_a_released_rollback() {
    let (d1, d2) = (web("app:1", FAST), web("app:2", FAST));
    let mut sim = deployed(World::new(), &d1);
    sim.converge(&d2);
    assert_eq!(sim.record().current().unwrap().number, 2);
    let key = ("shop".to_string(), "web".to_string());
    // `berth rollback --to 1`: r1 runs again, held there.
    sim.records.get_mut(&key).unwrap().control.rollback_to = Some(1);
    sim.converge(&d2);
    assert_runs(&sim.w, &d1, 1);
    assert_eq!(sim.record().current().unwrap().number, 1);
    // `berth release`: the desired state, which did not change, is r2 again, not a new r3.
    sim.records.get_mut(&key).unwrap().control.rollback_to = None;
    sim.converge(&d2);
    assert_runs(&sim.w, &d2, 1);
    let rec = sim.record();
    assert_eq!(rec.current().unwrap().number, 2);
    let numbers: Vec<u64> = rec.revisions.iter().map(|r| r.number).collect();
    assert_eq!(numbers, [1, 2]);
    assert!(
        sim.events().iter().any(|e| e.contains("rolling out r2")),
        "{:?}",
        sim.events()
    );
}

#[test]
fn a_revert_targets_the_newest_stable_revision_never_a_failed_one_nor_one_with_the_failed_hash() {
    let (d1, d2, d3) = (web("app:1", FAST), web("app:2", FAST), web("app:3", FAST));
    let w = World::new().bad("app:3", Behaviour::Crashes);
    // app:1 will later name a broken image (the tag moved): same spec hash, other image.
    w.host.image("app:1-broken", "sha256:broken");
    w.behave("sha256:broken", Behaviour::Crashes);
    let mut sim = deployed(w, &d1);
    sim.converge(&d2); // r2 stable
    sim.converge(&d3); // r3 fails: reverts to r2
    sim.w.host.image("app:1", "sha256:broken");
    sim.converge(&d1); // r4 = d1's hash again, broken: must revert to r2, not r1
    let rec = sim.record();
    let summary: Vec<(u64, &str, Outcome, bool)> = rec
        .revisions
        .iter()
        .map(|r| (r.number, r.image_id.as_str(), r.outcome, r.stable))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "sha256:app1", Outcome::Superseded, true),
            (2, "sha256:app2", Outcome::Succeeded, true),
            (3, "sha256:app3", Outcome::Reverted, false),
            (4, "sha256:broken", Outcome::Reverted, false),
        ]
    );
    let reverts: Vec<String> = sim
        .events()
        .into_iter()
        .filter(|e| e.starts_with("Reverted"))
        .collect();
    assert_eq!(reverts.len(), 2);
    assert!(
        reverts.iter().all(|e| e.contains("r2 runs again")),
        "{reverts:?}"
    );
    assert_runs(&sim.w, &d2, 1);
    // Every revert that was ever active aimed at a stable revision of another hash.
    for p in &sim.plans {
        for r in p.records.values() {
            assert_revert_target_ok(r);
        }
    }
}

/// A record's active revert aims at a stable revision whose hash is not the failed one.
fn assert_revert_target_ok(r: &ServiceRecord) {
    if let Some(a) = &r.active
        && let RolloutKind::Revert { failed } = a.kind
    {
        let target = r.revision(a.revision).expect("target in the history");
        let failed = r.revision(failed).expect("failed in the history");
        assert!(target.stable, "revert to non-stable r{}", target.number);
        assert_ne!(
            target.spec_hash, failed.spec_hash,
            "revert to the failed hash"
        );
    }
}

#[test]
fn when_the_revert_target_fails_too_the_service_is_degraded_and_nothing_more_happens() {
    let (d1, d2) = (web("app:1", PORT), web("app:2", PORT));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    // What r1 needs broke meanwhile: its kept container will not come back either.
    sim.w.behave("sha256:app1", Behaviour::Crashes);
    sim.converge(&d2);
    assert!(
        sim.events().last().unwrap().starts_with("Degraded: revert to r1 failed: replica 1: exited with code 1 before becoming ready; DEGRADED"),
        "{:?}",
        sim.events()
    );
    let world = sim.w.web();
    let rec = sim.record();
    sim.now += 3600;
    for _ in 0..10 {
        let p = sim.round(&d2);
        assert!(p.is_empty(), "{p}");
        assert_eq!(
            p.to_string(),
            "shop/web  blocked: degraded: r2 failed and the revert to r1 failed too: replica 1: exited with code 1 before becoming ready; berth keeps what runs and changes nothing until the desired state changes or `berth retry`\n"
        );
    }
    assert_eq!(sim.w.web(), world);
    assert_eq!(sim.record(), rec);
}

const THREE: &str =
    "    deploy: {replicas: 3, update_config: {parallelism: 1}}\n    x-berth: {min_ready: 0s}\n";

/// Candidates of `d` not yet under their canonical name: the ones in flight.
fn in_flight(w: &World, d: &DesiredState) -> usize {
    let h = h12(d);
    w.web()
        .iter()
        .filter(|(name, hash, _)| *hash == h && name.ends_with(&h))
        .count()
}

#[test]
fn three_replicas_with_parallelism_1_roll_one_at_a_time() {
    let (d1, d2) = (web("app:1", THREE), web("app:2", THREE));
    let mut sim = deployed(World::new(), &d1);
    let mut rounds = 0;
    loop {
        let p = sim.round_checked(&d2, &mut |w| {
            assert!(in_flight(w, &d2) <= 1, "{:?}", w.web());
            assert!(
                w.serving() >= 3,
                "start-first keeps 3 serving: {:?}",
                w.web()
            );
        });
        for r in p.records.values() {
            let unpassed = r.active.as_ref().map_or(0, |a| {
                a.slots.values().filter(|s| s.passed_at.is_none()).count()
            });
            assert!(unpassed <= 1, "{:?}", r.active);
        }
        if settled(&p) {
            break;
        }
        rounds += 1;
        assert!(rounds < 30);
    }
    assert_runs(&sim.w, &d2, 3);
}

#[test]
fn a_failing_second_batch_reverts_the_first_one_too() {
    let (d1, d2) = (web("app:1", THREE), web("app:2", THREE));
    let (a, b) = (h12(&d1), h12(&d2));
    let mut sim = deployed(World::new(), &d1);
    let before = ids(&sim.w);
    sim.w.crash(&format!("shop-web-2-{b}"));
    sim.round(&d2); // replica 1's candidate
    sim.round(&d2); // it passed: swapped in
    sim.round(&d2); // replica 2's candidate, which crashes
    assert_eq!(
        sim.round(&d2).to_string(),
        format!(
            "shop/web  stop shop-web-1                               revert to r1 (r2 failed) replica 1\n\
             shop/web  remove shop-web-1                             revert to r1 (r2 failed) replica 1\n\
             shop/web  rename shop-web-1-{a} -> shop-web-1  revert to r1 (r2 failed) replica 1\n\
             shop/web  start shop-web-1                              revert to r1 (r2 failed) replica 1\n\
             shop/web  remove shop-web-2-{b}                revert to r1 (r2 failed) replica 2\n\
             shop/web  waits: replica 1: starting\n"
        )
    );
    sim.converge(&d2);
    assert_runs(&sim.w, &d1, 3);
    assert_eq!(ids(&sim.w), before, "the same three containers run again");
}

#[test]
fn a_failing_pre_deploy_gate_stops_nothing() {
    let x = "    x-berth: {min_ready: 0s, pre_deploy: {command: [backup]}}\n";
    let (d1, d2) = (web("app:1", x), web("app:2", x));
    let mut sim = deployed(World::new(), &d1);
    let before = ids(&sim.w);
    sim.w.gate_exit("pre-deploy", 1);
    let b = h12(&d2);
    assert_eq!(
        sim.round(&d2).to_string(),
        format!(
            "shop/web  rolling out r2 ({b}), start-first (new beside old): image app:1 → app:2\n\
             shop/web  create shop-web-pre-deploy  r2 pre-deploy gate\n\
             shop/web  start shop-web-pre-deploy   r2 pre-deploy gate\n\
             shop/web  waits: pre-deploy gate running\n"
        )
    );
    sim.converge_checked(&d2, &mut |w| {
        assert_eq!(
            w.web(),
            [("shop-web-1".to_string(), h12(&d1), RunState::Running)]
        );
    });
    assert!(
        sim.plans
            .iter()
            .flat_map(|p| &p.steps)
            .all(|s| !matches!(s.action, Action::Stop { .. })),
        "nothing was stopped"
    );
    assert_eq!(ids(&sim.w), before);
    assert_eq!(
        sim.w.containers().len(),
        1,
        "the gate container is gone too"
    );
    assert_eq!(
        sim.record().quarantined[0].reason,
        "pre_deploy exited with code 1"
    );
    assert!(sim.plan(&d2).to_string().contains(&format!(
        "revision {b} failed and is quarantined (pre_deploy exited with code 1)"
    )));
}

#[test]
fn a_failing_smoke_test_reverts_to_the_kept_container() {
    let x = "    x-berth: {min_ready: 0s, smoke: {command: [check]}}\n";
    let (d1, d2) = (web("app:1", x), web("app:2", x));
    let mut sim = deployed(World::new(), &d1);
    let before = ids(&sim.w);
    sim.w.gate_exit("smoke", 1);
    sim.converge(&d2);
    let events = sim.events();
    assert_eq!(
        events[events.len() - 2..],
        [
            format!(
                "RolloutFailed: r2 ({}) failed: smoke test exited with code 1; reverting to r1",
                h12(&d2)
            ),
            "Reverted: r2 failed (smoke test exited with code 1); r1 runs again and is ready"
                .to_string(),
        ]
    );
    // The smoke gate ran after the swap, so the revert renamed the kept container back.
    assert!(
        sim.plans.iter().flat_map(|p| &p.steps).any(
            |s| s.action.to_string() == format!("rename shop-web-1-{} -> shop-web-1", h12(&d1))
        ),
    );
    assert_runs(&sim.w, &d1, 1);
    assert_eq!(ids(&sim.w), before);
    assert!(sim.record().is_quarantined(&hash(&d2)));
}

#[test]
fn failure_action_pause_stops_the_rollout_where_it_failed() {
    let x = "    deploy: {update_config: {failure_action: pause}}\n    x-berth: {min_ready: 0s}\n";
    let (d1, d2) = (web("app:1", x), web("app:2", x));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    sim.converge(&d2);
    let p = sim.round(&d2);
    assert_eq!(
        p.to_string(),
        "shop/web  blocked: rollout paused after a failure: replica 1: exited with code 1 before becoming ready; change the desired state or `berth retry`\n"
    );
    // Nothing reverted: the old one still runs, the failed candidate is kept for a look.
    assert_eq!(
        sim.w.web(),
        [
            ("shop-web-1".to_string(), h12(&d1), RunState::Running),
            (
                format!("shop-web-1-{}", h12(&d2)),
                h12(&d2),
                RunState::Exited
            ),
        ]
    );
    assert!(!sim.events().iter().any(|e| e.starts_with("Reverted")));
}

#[test]
fn max_failure_ratio_tolerates_that_share_of_failed_replicas_and_reverts_beyond_it() {
    let x = "    deploy:\n      replicas: 3\n      update_config: {parallelism: 1, max_failure_ratio: 0.34}\n    x-berth: {min_ready: 0s}\n";
    let (d1, d2) = (web("app:1", x), web("app:2", x));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    sim.converge(&d2);
    let events = sim.events();
    // The first failure (1 of 3) is tolerated, the second (2 of 3) is not.
    assert_eq!(
        events.iter().filter(|e| e.contains("tolerated")).count(),
        1,
        "{events:#?}"
    );
    let r = sim.record();
    assert_eq!(
        r.revisions.last().unwrap().outcome,
        Outcome::Reverted,
        "{r:?}"
    );
    assert_runs(&sim.w, &d1, 3);
}

#[test]
fn failure_action_continue_rolls_on_past_failed_replicas() {
    let x = "    deploy:\n      replicas: 2\n      update_config: {failure_action: continue}\n    x-berth: {min_ready: 0s}\n";
    let (d1, d2) = (web("app:1", x), web("app:2", x));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::Crashes), &d1);
    sim.converge(&d2);
    let r = sim.record();
    assert_eq!(
        r.revisions.last().unwrap().outcome,
        Outcome::Succeeded,
        "{r:?}"
    );
    assert!(r.quarantined.is_empty());
    let events = sim.events();
    assert!(
        events
            .iter()
            .any(|e| e.contains("2 replica(s) failed, tolerated")),
        "{events:#?}"
    );
}

#[test]
fn self_heal_backs_off_exponentially_then_gives_up_as_degraded() {
    let d = web("app:1", FAST);
    let mut sim = deployed(World::new(), &d);
    let t0 = sim.now;
    let mut starts = Vec::new();
    for _ in 0..60 {
        // The replica dies whenever it runs.
        for c in sim.w.containers() {
            if c.state == RunState::Running {
                sim.w.host.engine.kill(&c.id, 2);
            }
        }
        let now = sim.now;
        let p = sim.round(&d);
        if p.steps
            .iter()
            .any(|s| matches!(s.action, Action::Start { .. }))
        {
            assert_eq!(
                p.to_string(),
                "shop/web  start shop-web-1  replica 1 exited with code 2; restarting\n"
            );
            let heals: Vec<EventReason> = p.events.iter().map(|e| e.reason).collect();
            assert_eq!(heals, [EventReason::Heal(HealReason::Exited)]);
            starts.push(now - t0);
        } else if let Some(e) = p.events.iter().find(|e| e.kind == EventKind::Degraded) {
            assert_eq!(e.reason, EventReason::Failure(FailReason::SelfHealLimit));
            assert!(p.steps.is_empty(), "{p}");
        } else {
            assert!(p.steps.is_empty(), "{p}");
        }
    }
    // Restarts 2, 4, 8 and 16 s apart; the sixth would exceed the limit of 5 per 10 minutes.
    assert_eq!(starts, [0, 2, 6, 14, 30]);
    let rec = sim.record();
    assert_eq!(rec.restarts.len(), 5);
    let degraded = rec.degraded.expect("degraded");
    assert_eq!(degraded.since, t0 + 31);
    assert_eq!(
        sim.plan(&d).to_string(),
        "shop/web  blocked: degraded: restarted 5 times within 10m; giving up on self-heal (replica 1 exited with code 2; restarting); berth keeps what runs and changes nothing until the desired state changes or `berth retry`\n"
    );
}

#[test]
fn a_failing_liveness_probe_or_docker_health_restarts_the_replica() {
    let x = "    healthcheck: {test: [CMD, ok]}\n    x-berth: {min_ready: 0s, liveness: {tcp: {port: 80}}}\n";
    let d = web("app:1", x);
    let mut sim = deployed(World::new(), &d);
    let id = ids(&sim.w)["shop-web-1"].clone();
    sim.w.probes.insert(
        id.clone(),
        ProbeVerdicts {
            readiness: None,
            liveness: Some(ProbeStatus::Failing),
            readiness_detail: None,
        },
    );
    assert_eq!(
        sim.round(&d).to_string(),
        indoc! {"
            shop/web  stop shop-web-1   replica 1 fails its liveness probe; restarting
            shop/web  start shop-web-1  replica 1 fails its liveness probe; restarting
        "}
    );
    sim.w.probes.clear();
    sim.now += 60;
    sim.w.host.engine.set_health(&id, Health::Unhealthy);
    assert_eq!(
        sim.round(&d).to_string(),
        indoc! {"
            shop/web  stop shop-web-1   replica 1 is unhealthy (Docker healthcheck); restarting
            shop/web  start shop-web-1  replica 1 is unhealthy (Docker healthcheck); restarting
        "}
    );
    assert_eq!(ids(&sim.w)["shop-web-1"], id, "restarted, not recreated");
}

/// Regression test for a bug in `reconcile::rollout` (reported, not fixed here): replicas
/// added by a scale-up are made by self-heal ("missing (removed by hand?)"): they skip the
/// readiness gate and count as restarts, so the sixth scale-up within 10 minutes marks a
/// healthy service Degraded, and it stays so (the spec hash does not change with replicas).
#[test]
fn scaling_up_is_not_self_heal_and_never_degrades_a_healthy_service() {
    let r = |n: u32| web("app:1", &format!("    deploy: {{replicas: {n}}}\n{FAST}"));
    let mut sim = deployed(World::new(), &r(1));
    for n in 2..=7 {
        sim.now += 60;
        let p = sim.round(&r(n));
        assert!(
            !p.steps.iter().any(|s| s.cause.contains("removed by hand")),
            "{p}"
        );
        sim.converge(&r(n));
        let rec = sim.record();
        assert!(rec.degraded.is_none() && rec.restarts.is_empty(), "{rec:?}");
    }
    assert_runs(&sim.w, &r(7), 7);
}

#[test]
fn min_ready_holds_the_gate_and_a_break_starts_the_hold_again() {
    let x = "    x-berth: {min_ready: 3s, readiness: {tcp: {port: 80}}}\n";
    let d = web("app:1", x);
    let mut sim = Sim::new(World::new());
    let probe = |sim: &mut Sim, status: Option<ProbeStatus>| {
        let id = ids(&sim.w)["shop-web-1"].clone();
        sim.w.probes.insert(
            id,
            ProbeVerdicts {
                readiness: status,
                liveness: None,
                readiness_detail: None,
            },
        );
    };
    let mut waits = Vec::new();
    let mut note = |p: &Plan| {
        waits.push(
            p.notes
                .iter()
                .map(|n| match n {
                    Note::Wait { reason, .. } => reason.to_string(),
                    other => format!("{other}"),
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    note(&sim.round(&d));
    note(&sim.round(&d)); // not probed yet
    probe(&mut sim, Some(ProbeStatus::Passing));
    note(&sim.round(&d));
    note(&sim.round(&d));
    probe(&mut sim, Some(ProbeStatus::Failing));
    note(&sim.round(&d));
    probe(&mut sim, Some(ProbeStatus::Passing));
    for _ in 0..4 {
        note(&sim.round(&d));
    }
    assert_eq!(
        waits,
        [
            "replica 1: starting",
            "replica 1: readiness probe has not passed yet",
            "replica 1: ready, holding for min_ready (0s of 3s)",
            "replica 1: ready, holding for min_ready (1s of 3s)",
            "replica 1: readiness probe is failing",
            "replica 1: ready, holding for min_ready (0s of 3s)",
            "replica 1: ready, holding for min_ready (1s of 3s)",
            "replica 1: ready, holding for min_ready (2s of 3s)",
            "",
        ]
    );
    assert_eq!(sim.record().current().map(|r| r.number), Some(1));
}

#[test]
fn a_failed_readiness_probe_says_what_its_last_check_saw() {
    let x = "    x-berth: {min_ready: 0s, progress_deadline: 3s, readiness: {tcp: {port: 80}}}\n";
    let d = web("app:1", x);
    let mut sim = Sim::new(World::new());
    sim.round(&d);
    let id = ids(&sim.w)["shop-web-1"].clone();
    sim.w.probes.insert(
        id,
        ProbeVerdicts {
            readiness: Some(ProbeStatus::Failing),
            liveness: None,
            readiness_detail: Some("HTTP 404 from http://10.0.0.2:80/health, want 200-399".into()),
        },
    );
    for _ in 0..8 {
        sim.round(&d);
    }
    let rec = sim.record();
    let reason = rec
        .revision(1)
        .and_then(|r| r.reason.clone())
        .unwrap_or_default();
    assert!(
        reason.contains(
            "readiness probe is failing (last check: HTTP 404 from http://10.0.0.2:80/health, want 200-399)"
        ),
        "{reason:?}"
    );
}

/// One crash-test scenario: `from` is deployed (if any), `then` changes the world, `to` is
/// desired.
struct Scenario {
    name: &'static str,
    world: World,
    from: Option<DesiredState>,
    then: fn(&mut World),
    to: DesiredState,
}

fn scenarios() -> Vec<Scenario> {
    let two = "    deploy: {replicas: 2, update_config: {parallelism: 1}}\n    x-berth: {min_ready: 1s}\n";
    let smoke = "    x-berth: {min_ready: 0s, smoke: {command: [check]}}\n";
    let nothing: fn(&mut World) = |_| {};
    vec![
        Scenario {
            name: "first deploy",
            world: World::new(),
            from: None,
            then: nothing,
            to: web("app:1", two),
        },
        Scenario {
            name: "start-first, good, 2 replicas",
            world: World::new(),
            from: Some(web("app:1", two)),
            then: nothing,
            to: web("app:2", two),
        },
        Scenario {
            name: "start-first, bad, 2 replicas",
            world: World::new().bad("app:2", Behaviour::Unhealthy),
            from: Some(web(
                "app:1",
                &format!("    healthcheck: {{test: [CMD, ok]}}\n{two}"),
            )),
            then: nothing,
            to: web(
                "app:2",
                &format!("    healthcheck: {{test: [CMD, ok]}}\n{two}"),
            ),
        },
        Scenario {
            name: "stop-first, good",
            world: World::new(),
            from: Some(web("app:1", PORT)),
            then: nothing,
            to: web("app:2", PORT),
        },
        Scenario {
            name: "stop-first, bad",
            world: World::new().bad("app:2", Behaviour::Crashes),
            from: Some(web("app:1", PORT)),
            then: nothing,
            to: web("app:2", PORT),
        },
        Scenario {
            name: "smoke fails",
            world: World::new(),
            from: Some(web("app:1", smoke)),
            then: |w| {
                w.gate_exit("smoke", 1);
            },
            to: web("app:2", smoke),
        },
    ]
}

/// What a converged run leaves.
#[derive(Debug, PartialEq)]
struct End {
    /// Web's replicas, sorted.
    replicas: Vec<Replica>,
    /// The record's revisions and their outcomes.
    revisions: Vec<(u64, Outcome)>,
    quarantined: usize,
    degraded: bool,
}

fn outcome(sim: &Sim) -> End {
    let mut replicas = sim.w.web();
    replicas.sort();
    let rec = sim.record();
    End {
        replicas,
        revisions: rec
            .revisions
            .iter()
            .map(|r| (r.number, r.outcome))
            .collect(),
        quarantined: rec.quarantined.len(),
        degraded: rec.degraded.is_some(),
    }
}

/// Whether a crash after `j` steps of `p` hits the known bug below: a revert round that
/// restarts a kept, stopped container, interrupted before its `start` ran.
fn kept_container_not_restarted_yet(p: &Plan, j: usize) -> bool {
    p.steps.iter().enumerate().any(|(i, s)| {
        i >= j && matches!(s.action, Action::Start { .. }) && s.cause.starts_with("revert to")
    })
}

/// For every scenario, every round and every point in it (after the record was saved, after
/// each step): berth dies there and starts again. No create may duplicate a container (the
/// world panics), and the run must end where the uninterrupted one ended. Crash points for
/// which `skip` is true are left out.
fn crash_everywhere(skip: fn(&Plan, usize) -> bool) {
    for s in scenarios() {
        let mut reference = match &s.from {
            Some(d) => deployed(s.world.clone(), d),
            None => Sim::new(s.world.clone()),
        };
        (s.then)(&mut reference.w);
        // The uninterrupted run, with what berth and the world were before each round.
        let mut before = Vec::new();
        loop {
            before.push(reference.clone());
            let p = reference.round(&s.to);
            if settled(&p) {
                break;
            }
        }
        let want = outcome(&reference);
        for (k, start) in before.iter().enumerate() {
            let p = start.plan(&s.to);
            // Planning again from the same record and world decides the same.
            assert_eq!(p, start.plan(&s.to), "{}: round {k}", s.name);
            // berth dies after saving the round's record and after `j` of its steps (j = 0:
            // the record of round k with the world of round k-1).
            for j in 0..=p.steps.len() {
                if skip(&p, j) {
                    continue;
                }
                let mut crashed = start.clone();
                crashed
                    .records
                    .extend(p.records.iter().map(|(k, r)| (k.clone(), r.clone())));
                for step in &p.steps[..j] {
                    crashed.w.step(&step.action);
                }
                crashed.now += 1;
                crashed.converge(&s.to);
                assert_eq!(
                    outcome(&crashed),
                    want,
                    "{}: crash in round {k} after {j} step(s) of\n{p}",
                    s.name
                );
            }
        }
    }
}

#[test]
fn a_crash_anywhere_in_a_round_never_plans_duplicates_and_converges_to_the_same_end() {
    crash_everywhere(kept_container_not_restarted_yet);
}

/// Regression test for a bug in `reconcile::rollout` (reported, not fixed here): the revert
/// round saves a slot for the kept container and plans its `start`; if berth dies before that
/// start runs (or the start fails), the next round runs the readiness gate on the still
/// stopped container, reads `Exited` as a failure, and marks the service Degraded with
/// nothing running.
#[test]
fn a_crash_before_the_kept_container_is_restarted_does_not_degrade_the_service() {
    crash_everywhere(|_, _| false);
}

/// A `web` of `replicas` replicas running `app:{image}`, rolled out stop-first or start-first
/// `parallelism` at a time.
fn service(image: u32, replicas: u32, parallelism: u32, stop_first: bool) -> DesiredState {
    let order = if stop_first {
        "stop-first"
    } else {
        "start-first"
    };
    web(
        &format!("app:{image}"),
        &format!(
            "    deploy: {{replicas: {replicas}, update_config: {{parallelism: {parallelism}, order: {order}}}}}\n    x-berth: {{min_ready: 1s}}\n"
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random sequences of good and bad releases: after each one settles, exactly the replicas
    /// run, all on the new revision (good) or on the last good one (bad), and no revert ever
    /// aimed at anything but a stable revision of another hash.
    #[test]
    fn good_releases_roll_out_and_bad_ones_revert_to_the_last_good_one(
        replicas in 1u32..=3,
        parallelism in 1u32..=3,
        stop_first in any::<bool>(),
        releases in prop::collection::vec(prop::option::of(prop::sample::select(vec![
            Behaviour::Crashes, Behaviour::Unhealthy, Behaviour::Restarted,
        ])), 1..6),
    ) {
        let mut w = World::new();
        for (i, bad) in releases.iter().enumerate() {
            if let Some(b) = bad {
                w = w.bad(&format!("app:{}", i + 2), *b);
            }
        }
        let first = service(1, replicas, parallelism, stop_first);
        let mut sim = deployed(w, &first);
        let mut last_good = first;
        for (i, bad) in releases.iter().enumerate() {
            let d = service(i as u32 + 2, replicas, parallelism, stop_first);
            let mut rounds = 0;
            loop {
                let p = sim.round(&d);
                for r in p.records.values() {
                    assert_revert_target_ok(r);
                }
                if settled(&p) {
                    break;
                }
                rounds += 1;
                prop_assert!(rounds < 60, "release {} does not settle:\n{}", i + 2, p);
            }
            if bad.is_none() {
                last_good = d;
            }
            let h = h12(&last_good);
            let mut got = sim.w.web();
            got.sort();
            let want: Vec<Replica> = (1..=replicas)
                .map(|n| (format!("shop-web-{n}"), h.clone(), RunState::Running))
                .collect();
            prop_assert_eq!(got, want, "after release {} ({:?})", i + 2, bad);
            prop_assert_eq!(sim.w.containers().len(), replicas as usize);
        }
    }
}

/// A project `shop` on disk whose service `web` builds its image (`build: .`) from a context
/// holding a Dockerfile and `app.txt`; `migrate`, when asked for, is a one-shot job built
/// from `./migrate` that web waits for.
struct BuiltProject {
    dir: tempfile::TempDir,
}

impl BuiltProject {
    fn new(with_job: bool) -> Self {
        let p = BuiltProject {
            dir: tempfile::tempdir().unwrap(),
        };
        let mut compose = String::from("name: shop\nservices:\n  web:\n    build: .\n");
        if with_job {
            compose.push_str(
                "    depends_on: {migrate: {condition: service_completed_successfully}}\n  \
                 migrate:\n    build: ./migrate\n    restart: 'no'\n",
            );
            p.write("migrate/Dockerfile", "FROM scratch\nCOPY run /\n");
            p.write("migrate/run", "v1");
        }
        p.write("compose.yaml", &compose);
        // The compose file is in web's context: keep it out of the image.
        p.write(".dockerignore", "compose.yaml\n");
        p.write("Dockerfile", "FROM scratch\nCOPY app.txt /\n");
        p.write("app.txt", "v1");
        p
    }

    fn write(&self, rel: &str, text: &str) {
        let f = self.dir.path().join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }

    fn desired(&self) -> DesiredState {
        let l = berth::desired::load(self.dir.path(), &LoadOptions::default());
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    }
}

/// The image reference `d` builds for `service`.
fn built_ref(d: &DesiredState, service: &str) -> String {
    d.projects["shop"].services[service].image.clone().unwrap()
}

/// The cause of the plan's build step.
fn build_cause(p: &Plan) -> String {
    let causes: Vec<&str> = p
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Build { .. }))
        .map(|s| s.cause.as_str())
        .collect();
    assert_eq!(causes.len(), 1, "one build step expected:\n{p}");
    causes[0].to_string()
}

const BUILD_ERROR: &str = "COPY failed: file not found in build context or excluded by .dockerignore: stat app.txt: file does not exist";

/// What the engine says of a broken build: the error, then the build's last lines (the
/// executor hands it on as `failed to build image <reference>: <this>`).
fn build_error() -> String {
    format!("{BUILD_ERROR}\nStep 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY app.txt /")
}

#[test]
fn a_build_step_says_what_changed_since_the_running_revision() {
    let proj = BuiltProject::new(false);
    let d1 = proj.desired();
    let mut sim = Sim::new(World::new());
    let p = sim.round(&d1);
    assert_eq!(
        p.to_string().lines().next().unwrap(),
        format!(
            "shop/web  build {}  first build of this service's image",
            built_ref(&d1, "web")
        )
    );
    sim.converge(&d1);

    proj.write("app.txt", "v2");
    let d2 = proj.desired();
    assert_eq!(
        build_cause(&sim.round(&d2)),
        "build context changed since r1"
    );
    sim.converge(&d2);

    proj.write("Dockerfile", "FROM scratch\nCOPY app.txt /app\n");
    let d3 = proj.desired();
    assert_eq!(build_cause(&sim.round(&d3)), "Dockerfile changed since r2");
    sim.converge(&d3);

    proj.write("Dockerfile", "FROM scratch\nCOPY app.txt /srv/\n");
    proj.write("extra.txt", "x");
    let d4 = proj.desired();
    assert_eq!(
        build_cause(&sim.round(&d4)),
        "Dockerfile and build context changed since r3"
    );
    sim.converge(&d4);
    assert_runs(&sim.w, &d4, 1);

    proj.write(
        "compose.yaml",
        "name: shop\nservices:\n  web:\n    build: {context: ., args: {A: '1'}}\n",
    );
    let d5 = proj.desired();
    assert_eq!(
        build_cause(&sim.round(&d5)),
        "build args/target/labels changed since r4"
    );
}

#[test]
fn a_failed_build_is_quarantined_reported_with_its_last_lines_and_not_retried() {
    let proj = BuiltProject::new(false);
    let d1 = proj.desired();
    let mut sim = deployed(World::new(), &d1);
    let before = ids(&sim.w);

    proj.write("app.txt", "v2 (broken)");
    let d2 = proj.desired();
    let r2 = built_ref(&d2, "web");
    sim.w.fail_build(&r2, build_error());
    let mut after = Vec::new();
    sim.converge_checked(&d2, &mut |w| after.push(ids(w)));

    // Built once, never retried; nothing running changed at any point.
    assert_eq!(sim.w.builds().iter().filter(|b| **b == r2).count(), 1);
    assert!(after.iter().all(|i| *i == before), "web was touched");
    assert_runs(&sim.w, &d1, 1);
    for _ in 0..5 {
        let p = sim.round(&d2);
        assert!(settled(&p), "{p}");
    }
    assert_eq!(sim.w.builds().iter().filter(|b| **b == r2).count(), 1);

    let rec = sim.record();
    let r = rec.revision(2).expect("the failed build is recorded as r2");
    assert_eq!(r.outcome, Outcome::Reverted);
    assert_eq!(r.image_id, "");
    assert_eq!(r.image_ref, r2);
    assert_eq!(rec.current().map(|c| c.number), Some(1));
    let q = &rec.quarantined[0];
    assert_eq!(q.spec_hash, hash(&d2));
    assert_eq!(
        q.reason,
        format!("image build failed: {BUILD_ERROR}; nothing running was changed")
    );
    assert_eq!(
        q.log.as_deref(),
        Some("Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY app.txt /")
    );

    let failed = sim
        .plans
        .iter()
        .flat_map(|p| &p.events)
        .find(|e| e.kind == EventKind::RolloutFailed)
        .expect("a rollout_failed event");
    assert_eq!(
        failed.message,
        format!(
            "r2 ({}) failed: image build failed: {BUILD_ERROR}; nothing running was changed; reverting to r1",
            h12(&d2)
        )
    );
    assert_eq!(failed.logs, q.log);
    assert!(
        sim.events().iter().any(
            |e| e.starts_with("Reverted: r2 failed (image build failed:")
                && e.ends_with("r1 still runs and is ready")
        ),
        "{:#?}",
        sim.events()
    );

    // A fix is a new revision: the quarantine lifts and it rolls out.
    proj.write("app.txt", "v3");
    let d3 = proj.desired();
    sim.converge(&d3);
    assert_runs(&sim.w, &d3, 1);
    assert!(sim.record().quarantined.is_empty());
}

#[test]
fn berth_retry_builds_a_quarantined_revision_again() {
    let proj = BuiltProject::new(false);
    let d1 = proj.desired();
    let mut sim = deployed(World::new(), &d1);
    proj.write("app.txt", "v2");
    let d2 = proj.desired();
    let r2 = built_ref(&d2, "web");
    sim.w.fail_build(&r2, build_error());
    sim.converge(&d2);
    assert_eq!(sim.w.builds().iter().filter(|b| **b == r2).count(), 1);

    // The base image it needed is there now; the operator says `berth retry`.
    sim.w.fix_build(&r2);
    sim.now += 10;
    let key = ("shop".to_string(), "web".to_string());
    sim.records.get_mut(&key).unwrap().control.retry_at = Some(sim.now);
    sim.now += 1;
    sim.converge(&d2);
    assert_eq!(sim.w.builds().iter().filter(|b| **b == r2).count(), 2);
    assert_runs(&sim.w, &d2, 1);
    assert_eq!(sim.record().current().map(|c| c.number), Some(3));
}

#[test]
fn a_first_deploy_whose_build_fails_runs_nothing_and_is_blocked() {
    let proj = BuiltProject::new(false);
    let d1 = proj.desired();
    let r1 = built_ref(&d1, "web");
    let w = World::new();
    w.fail_build(&r1, build_error());
    let mut sim = Sim::new(w);
    let p = sim.converge(&d1);
    assert!(sim.w.web().is_empty());
    assert_eq!(sim.w.builds(), vec![r1]);
    let blocked: Vec<String> = p.blocks().map(|n| n.to_string()).collect();
    assert_eq!(
        blocked,
        vec![format!(
            "shop/web  blocked: revision {} failed and is quarantined; there is no earlier stable revision to revert to, so what runs is left as is; change the desired state or `berth retry`",
            h12(&d1)
        )]
    );
}

#[test]
fn built_images_that_leave_the_history_are_removed() {
    let proj = BuiltProject::new(false);
    let mut refs = Vec::new();
    let mut sim = Sim::new(World::new());
    for v in 1..=8 {
        proj.write("app.txt", &format!("v{v}"));
        let d = proj.desired();
        refs.push(built_ref(&d, "web"));
        sim.converge(&d);
        assert_runs(&sim.w, &d, 1);
    }
    let kept: Vec<String> = sim
        .record()
        .revisions
        .iter()
        .map(|r| r.image_ref.clone())
        .collect();
    assert_eq!(kept, refs[3..].to_vec(), "the newest 5 revisions are kept");
    let images = sim.w.images();
    let built: Vec<&String> = images
        .keys()
        .filter(|r| r.starts_with("berth-build/"))
        .collect();
    assert_eq!(built.len(), 5, "{built:?}");
    assert!(kept.iter().all(|r| sim.w.images().contains_key(r)));
    let removals: Vec<String> = sim
        .plans
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| matches!(s.action, Action::RemoveImage { .. }))
        .map(|s| format!("{}  {}", s.action, s.cause))
        .collect();
    assert_eq!(
        removals,
        (1..=3)
            .map(|n| format!(
                "remove image {}  r{n}'s built image left the history",
                refs[n - 1]
            ))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_job_whose_build_fails_blocks_its_dependents_until_its_context_changes() {
    let proj = BuiltProject::new(true);
    let d1 = proj.desired();
    let job = built_ref(&d1, "migrate");
    let w = World::new();
    w.fail_build(&job, build_error());
    let mut sim = Sim::new(w);
    let p = sim.converge(&d1);
    assert!(sim.w.containers().is_empty(), "nothing runs");
    assert_eq!(sim.w.builds().iter().filter(|b| **b == job).count(), 1);
    let blocked: Vec<String> = p.blocks().map(|n| n.to_string()).collect();
    assert!(
        blocked.iter().any(|b| b.starts_with(&format!(
            "shop/migrate  blocked: job r1 not run: image build failed: {BUILD_ERROR}"
        ))),
        "{blocked:#?}"
    );
    let failed = sim
        .plans
        .iter()
        .flat_map(|p| &p.events)
        .find(|e| e.service == "migrate" && e.kind == EventKind::RolloutFailed)
        .expect("an event for the job");
    assert!(failed.logs.as_deref().unwrap().contains("COPY app.txt"));
    for _ in 0..3 {
        assert!(settled(&sim.round(&d1)));
    }
    assert_eq!(sim.w.builds().iter().filter(|b| **b == job).count(), 1);

    proj.write("migrate/run", "v2");
    let d2 = proj.desired();
    sim.converge(&d2);
    assert_eq!(
        sim.w.web(),
        vec![("shop-web-1".to_string(), h12(&d2), RunState::Running)]
    );
}

#[test]
fn a_build_superseded_before_its_rollout_began_is_removed_later() {
    let proj = BuiltProject::new(false);
    let d1 = proj.desired();
    let mut sim = deployed(World::new(), &d1);
    let r1 = built_ref(&d1, "web");

    // v2 is built, but v3 arrives before v2's rollout begins: v2 never becomes a revision.
    proj.write("app.txt", "v2");
    let d2 = proj.desired();
    let r2 = built_ref(&d2, "web");
    sim.round(&d2);
    assert!(sim.w.images().contains_key(&r2), "v2 was built");
    proj.write("app.txt", "v3");
    let d3 = proj.desired();
    sim.converge(&d3);
    assert_runs(&sim.w, &d3, 1);

    assert!(
        !sim.w.images().contains_key(&r2),
        "the stray v2 build is removed"
    );
    assert!(
        sim.w.images().contains_key(&r1),
        "r1 is in the history: kept"
    );
    let removal: Vec<String> = sim
        .plans
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| matches!(s.action, Action::RemoveImage { .. }))
        .map(|s| format!("{}  {}", s.action, s.cause))
        .collect();
    assert_eq!(
        removal,
        vec![format!(
            "remove image {r2}  built image that no revision in the history uses"
        )]
    );
}

#[test]
fn a_jobs_earlier_built_image_is_removed_once_a_new_revision_ran() {
    let proj = BuiltProject::new(true);
    let d1 = proj.desired();
    let old = built_ref(&d1, "migrate");
    let mut sim = Sim::new(World::new());
    sim.converge(&d1);
    assert!(sim.w.images().contains_key(&old));

    proj.write("migrate/run", "v2");
    let d2 = proj.desired();
    sim.converge(&d2);
    assert!(sim.w.images().contains_key(&built_ref(&d2, "migrate")));
    assert!(
        !sim.w.images().contains_key(&old),
        "the job's v1 image is removed"
    );
}

/// Sets the readiness verdict of the container named `name`.
fn probe_of(sim: &mut Sim, name: &str, status: Option<ProbeStatus>) {
    let id = ids(&sim.w)[name].clone();
    sim.w.probes.insert(
        id,
        ProbeVerdicts {
            readiness: status,
            liveness: None,
            readiness_detail: None,
        },
    );
}

/// Pins the records own, and the pin tags on the host: they must be the same.
fn pins(sim: &Sim) -> (Vec<String>, Vec<String>) {
    let owned: Vec<String> = sim
        .records
        .values()
        .flat_map(|r| r.revisions.iter().filter_map(|v| v.pin.clone()))
        .collect();
    let tags: Vec<String> = sim
        .w
        .images()
        .into_keys()
        .filter(|t| t.starts_with("berth-pin/"))
        .collect();
    (owned, tags)
}

#[test]
fn a_ready_candidate_is_not_failed_on_time_berth_was_not_watching() {
    let x = "    x-berth: {min_ready: 3s, progress_deadline: 30s, readiness: {tcp: {port: 80}}}\n";
    let (d1, d2) = (web("app:1", FAST), web("app:2", x));
    let mut sim = deployed(World::new(), &d1);
    let cand = format!("shop-web-1-{}", h12(&d2));
    sim.round(&d2); // create and start
    probe_of(&mut sim, &cand, Some(ProbeStatus::Passing));
    sim.round(&d2); // ready, holding min_ready
    sim.round(&d2);
    // berth stops for an hour (host maintenance) and starts again: its prober knows nothing.
    sim.now += 3600;
    sim.w.probes.clear();
    let p = sim.round(&d2);
    assert!(
        p.events.is_empty(),
        "no verdict on unwatched time: {:?}",
        p.events
    );
    assert_eq!(
        p.waits().map(ToString::to_string).collect::<Vec<_>>(),
        ["shop/web  waits: replica 1: readiness probe has not passed yet"],
        "{p}"
    );
    // The probe passes again: min_ready is held again, watched, and the rollout completes.
    probe_of(&mut sim, &cand, Some(ProbeStatus::Passing));
    sim.converge(&d2);
    assert_runs(&sim.w, &d2, 1);
    let rec = sim.record();
    assert_eq!(rec.current().map(|r| r.number), Some(2));
    assert!(rec.quarantined.is_empty(), "{:?}", rec.quarantined);
    assert!(
        !sim.events().iter().any(|e| e.starts_with("RolloutFailed")),
        "{:?}",
        sim.events()
    );
    let (mut owned, tags) = pins(&sim);
    owned.sort();
    assert_eq!(owned, tags, "no pin the records do not own");
}

#[test]
fn the_deadline_still_fails_a_candidate_never_ready_while_watched_after_a_restart() {
    let x = "    x-berth: {min_ready: 0s, progress_deadline: 20s, readiness: {tcp: {port: 80}}}\n";
    let (d1, d2) = (web("app:1", FAST), web("app:2", x));
    let mut sim = deployed(World::new(), &d1);
    sim.round(&d2);
    sim.round(&d2);
    sim.now += 3600;
    // Watched from here on, and never ready: the deadline (5 s before the restart, as long
    // as it takes after it) fails it.
    let mut rounds = 0;
    while !sim.events().iter().any(|e| e.starts_with("RolloutFailed")) {
        sim.round(&d2);
        rounds += 1;
        assert!(rounds < 40, "never failed: {:?}", sim.events());
    }
    assert!(
        (14..=18).contains(&rounds),
        "failed after {rounds} watched rounds"
    );
    sim.converge(&d2);
    assert_runs(&sim.w, &d1, 1);
    assert!(sim.record().is_quarantined(&hash(&d2)));
}

#[test]
fn an_engine_restart_during_the_gate_restarts_the_candidate_instead_of_reverting() {
    let x = "    x-berth: {min_ready: 3s}\n";
    let (d1, d2) = (web("app:1", FAST), web("app:2", x));
    // (seconds the engine was away, whether berth saw it not answering)
    for (away, lost) in [(2, true), (600, false)] {
        let mut sim = deployed(World::new(), &d1);
        let cand = format!("shop-web-1-{}", h12(&d2));
        sim.round(&d2);
        sim.round(&d2);
        // The engine stops every container as it goes down.
        sim.w.host.engine.kill(&cand, 143);
        sim.w.host.engine.kill("shop-web-1", 0);
        sim.now += away;
        sim.w.engine_lost = lost;
        let p = sim.round(&d2);
        assert!(
            p.events
                .iter()
                .all(|e| e.reason == EventReason::Heal(HealReason::StoppedUnwatched)),
            "{:?}",
            p.events
        );
        assert!(
            p.steps
                .iter()
                .any(|s| matches!(&s.action, Action::Start { .. })),
            "the candidate is started again:\n{p}"
        );
        sim.converge(&d2);
        assert_runs(&sim.w, &d2, 1);
        let rec = sim.record();
        assert_eq!(rec.current().map(|r| r.number), Some(2), "away {away}s");
        assert!(rec.quarantined.is_empty(), "{:?}", rec.quarantined);
        let (mut owned, tags) = pins(&sim);
        owned.sort();
        assert_eq!(owned, tags);
    }
}

#[test]
fn a_candidate_stopped_while_berth_watched_is_still_a_failure() {
    let x = "    x-berth: {min_ready: 3s}\n";
    let (d1, d2) = (web("app:1", FAST), web("app:2", x));
    let mut sim = deployed(World::new(), &d1);
    let cand = format!("shop-web-1-{}", h12(&d2));
    sim.round(&d2);
    sim.round(&d2);
    sim.w.host.engine.kill(&cand, 143);
    let p = sim.round(&d2);
    assert!(
        p.events.iter().any(|e| e.kind == EventKind::RolloutFailed),
        "{:?}",
        p.events
    );
    sim.converge(&d2);
    assert_runs(&sim.w, &d1, 1);
    assert!(sim.record().is_quarantined(&hash(&d2)));
}

#[test]
fn a_pruned_image_of_the_running_revision_is_resolved_again_and_goes_through_the_gate() {
    let d = web("app:1", FAST);
    // (the tag is pulled again from the registry; a present tag points elsewhere)
    for present in [false, true] {
        let mut sim = deployed(World::new(), &d);
        // A clean-up: the container, the pin holder, then `docker image prune -a`.
        sim.w.host.engine.remove_by_hand("shop-web-1");
        for tag in ["berth-pin/shop/web:r1", "app:1"] {
            sim.w.step(&Action::RemoveImage {
                reference: tag.to_string(),
            });
        }
        assert!(
            !sim.w.images().values().any(|id| id == "sha256:app1"),
            "{:?}",
            sim.w.images()
        );
        if present {
            sim.w.host.image("app:1", "sha256:app1b");
        }
        let p = sim.round(&d);
        assert!(
            p.events
                .iter()
                .any(|e| e.reason == EventReason::Heal(HealReason::ImageLost)
                    && e.message.contains("is gone from the engine")),
            "{:?}",
            p.events
        );
        assert!(
            !p.steps.iter().any(|s| matches!(
                &s.action,
                Action::Create { image: ImageSource::Id(id), .. } if id == "sha256:app1"
            )),
            "nothing is created from the lost image:\n{p}"
        );
        sim.converge(&d);
        assert_runs(&sim.w, &d, 1);
        let rec = sim.record();
        let cur = rec.current().unwrap();
        let want = if present {
            "sha256:app1b"
        } else {
            "sha256:app:1"
        };
        assert_eq!(
            (cur.number, cur.image_id.as_str(), cur.stable),
            (2, want, true)
        );
        let r1 = rec.revision(1).unwrap();
        assert_eq!(
            (r1.outcome, r1.stable, r1.pin.as_deref()),
            (Outcome::Superseded, false, None)
        );
        assert!(
            sim.events().iter().any(|e| e.starts_with("RolloutStarted")),
            "through the gate: {:?}",
            sim.events()
        );
        let (mut owned, tags) = pins(&sim);
        owned.sort();
        assert_eq!(owned, tags);
    }
}

#[test]
fn a_spec_changed_back_rolls_out_again_under_its_old_number() {
    let (d1, d2) = (web("app:1", FAST), web("app:2", FAST));
    let mut sim = deployed(World::new(), &d1);
    sim.converge(&d2);
    // Back to app:1: the same spec and image as r1, which runs again as r1, not as a new r3.
    sim.converge(&d1);
    assert_runs(&sim.w, &d1, 1);
    let rec = sim.record();
    let summary: Vec<(u64, Outcome, bool)> = rec
        .revisions
        .iter()
        .map(|r| (r.number, r.outcome, r.stable))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Outcome::Succeeded, true),
            (2, Outcome::Superseded, true)
        ]
    );
    assert_eq!(rec.current().unwrap().number, 1);
    let started: Vec<String> = sim
        .events()
        .into_iter()
        .filter(|e| e.starts_with("RolloutStarted"))
        .collect();
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(
        started[2].starts_with(&format!("RolloutStarted: rolling out r1 ({})", h12(&d1))),
        "{started:?}"
    );
    assert!(started[2].ends_with("image app:2 → app:1"), "{started:?}");
    // And forth again: r2, still two revisions.
    sim.converge(&d2);
    assert_runs(&sim.w, &d2, 1);
    let rec = sim.record();
    assert_eq!(rec.current().unwrap().number, 2);
    let numbers: Vec<u64> = rec.revisions.iter().map(|r| r.number).collect();
    assert_eq!(numbers, [1, 2]);
    let history = berth::control::history(&"shop/web".parse().unwrap(), &rec, T0);
    assert!(
        history.starts_with("shop/web: 2 revisions, current r2 (marked *)\n"),
        "{history}"
    );
    let marked: Vec<&str> = history.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(marked.len(), 1, "{history}");
    assert!(marked[0].starts_with("* r2 "), "{history}");
}

#[test]
fn history_during_a_rollback_marks_what_runs_and_where_it_goes() {
    let (d1, d2) = (web("app:1", PORT), web("app:2", PORT));
    let mut sim = deployed(World::new(), &d1);
    sim.converge(&d2);
    let key = ("shop".to_string(), "web".to_string());
    sim.records.get_mut(&key).unwrap().control.rollback_to = Some(1);
    let name = "shop/web".parse().unwrap();
    // Mid-rollback: r2 is still the current revision, r1 the one starting.
    sim.round(&d2);
    let h = berth::control::history(&name, &sim.record(), T0);
    let head: Vec<&str> = h.lines().take(5).collect();
    assert_eq!(
        head[0],
        "shop/web: 2 revisions, current r2 (marked *); rolling back to r1 (marked >)"
    );
    assert!(
        head[3].starts_with("> r1 ") && head[4].starts_with("* r2 "),
        "{h}"
    );
    // Once it passed, r1 is the current one and nothing else is marked.
    sim.converge(&d2);
    let h = berth::control::history(&name, &sim.record(), T0);
    let head: Vec<&str> = h.lines().take(5).collect();
    assert_eq!(head[0], "shop/web: 2 revisions, current r1 (marked *)");
    assert!(
        head[3].starts_with("* r1 ") && head[4].starts_with("  r2 "),
        "{h}"
    );
}

// Port handoff (`x-berth.handoff`): the proxy's routes file is part of the simulated host.

const HANDOFF: &str = "    ports: ['8080:80']\n    healthcheck: {test: [CMD, ok]}\n    x-berth: {min_ready: 0s, progress_deadline: 5s, handoff: {mode: http, drain_timeout: 2s}}\n";

/// The backends the routes file sends web's port 8080 to, by name.
fn routed(w: &World) -> Vec<String> {
    w.host
        .routes()
        .listener("shop/web:8080")
        .map(|l| l.backends.iter().map(|b| b.name.clone()).collect())
        .unwrap_or_default()
}

/// Every routed backend is a running container at that address: traffic never goes to a
/// stopped one, and there is always one to go to.
fn assert_routes_serve(w: &World) {
    let routes = w.host.routes();
    let Some(l) = routes.listener("shop/web:8080") else {
        return;
    };
    assert!(!l.backends.is_empty(), "no backend: {:?}", w.web());
    for b in &l.backends {
        let serving = w.containers().iter().any(|c| {
            c.state == RunState::Running
                && c.actual
                    .as_ref()
                    .is_some_and(|a| a.addresses.values().any(|ip| *ip == b.addr.ip()))
        });
        assert!(
            serving,
            "{} ({}) is routed but not running: {:?}",
            b.name,
            b.addr,
            w.web()
        );
    }
}

#[test]
fn a_handoff_service_publishes_nothing_and_is_routed_once_its_replica_passed() {
    let d1 = web("app:1", HANDOFF);
    let mut sim = Sim::new(World::new());
    let first = sim.round(&d1);
    let create = first
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Create { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .expect("a create");
    assert!(create.ports.is_empty(), "{:?}", create.ports);
    assert!(create.exposed.contains(&"80/tcp".to_string()));
    assert!(routed(&sim.w).is_empty(), "routed before its gate");
    sim.converge(&d1);
    assert_runs(&sim.w, &d1, 1);
    assert_eq!(routed(&sim.w), [format!("shop-web-1-{}", h12(&d1))]);
    let l = sim.w.host.routes().listeners[0].clone();
    assert_eq!(
        (l.bind.to_string(), l.drain_timeout_ms),
        ("0.0.0.0:8080".into(), 2000)
    );
    assert_routes_serve(&sim.w);
}

#[test]
fn a_handoff_update_is_start_first_switches_the_routes_then_drains_then_stops_the_old_one() {
    let (d1, d2) = (web("app:1", HANDOFF), web("app:2", HANDOFF));
    let mut sim = deployed(World::new(), &d1);
    let (a, b) = (h12(&d1), h12(&d2));
    let old = ids(&sim.w)["shop-web-1"].clone();
    let mut texts = Vec::new();
    let mut switched_at = None;
    let mut stopped_at = None;
    for _ in 0..12 {
        let round = sim.now;
        let p = sim.round_checked(&d2, &mut |w| {
            assert_routes_serve(w);
            let running = w.web().iter().filter(|c| c.2 == RunState::Running).count();
            assert!(running >= 1, "nothing runs: {:?}", w.web());
        });
        if switched_at.is_none() && routed(&sim.w) == [format!("shop-web-1-{b}")] {
            switched_at = Some(round);
        }
        let gone = !sim
            .w
            .containers()
            .iter()
            .any(|c| c.id == old && c.state == RunState::Running);
        if stopped_at.is_none() && gone {
            stopped_at = Some(round);
        }
        texts.push(p.to_string());
        if settled(&p) {
            break;
        }
    }
    // The first round starts the candidate beside the old one; the switch is a plan step.
    assert!(
        texts[0].starts_with(&format!(
            "shop/web  rolling out r2 ({b}), start-first (x-berth.handoff: berth's proxy holds host port 8080 and switches it to the new container once ready): image app:1 → app:2\n"
        )),
        "{}",
        texts[0]
    );
    assert!(
        texts[0].contains(&format!("create shop-web-1-{b}")),
        "{}",
        texts[0]
    );
    let switch = texts
        .iter()
        .find(|t| t.contains("route shop/web:8080"))
        .expect("a route step");
    assert!(
        switch.contains(&format!("route shop/web:8080 -> shop-web-1-{b} ")),
        "{switch}"
    );
    assert!(
        switch.contains(&format!(
            "handoff: traffic to shop-web-1-{b} (passed its gate); none to shop-web-1-{a}, which drains up to 2s\n"
        )),
        "{switch}"
    );
    assert!(
        switch.contains("waits: replica 1: switching traffic to it (proxy routes)"),
        "{switch}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("replica 1: the old container drains (at most")),
        "{texts:#?}"
    );
    // Drained: the old container stops 2 s (rounded up, plus one) after the switch, not before.
    let (sw, st) = (switched_at.expect("switched"), stopped_at.expect("stopped"));
    assert!(
        st >= sw + 3,
        "switched at +{}, stopped at +{}",
        sw - T0,
        st - T0
    );
    assert_runs(&sim.w, &d2, 1);
    assert_eq!(routed(&sim.w), [format!("shop-web-1-{b}")]);
}

#[test]
fn a_bad_handoff_update_never_receives_traffic_and_the_revert_keeps_the_old_one_routed() {
    let (d1, d2) = (web("app:1", HANDOFF), web("app:2", HANDOFF));
    let mut sim = deployed(World::new().bad("app:2", Behaviour::NeverReady), &d1);
    let a = h12(&d1);
    let old = ids(&sim.w)["shop-web-1"].clone();
    for _ in 0..15 {
        let p = sim.round_checked(&d2, &mut |w| {
            assert_routes_serve(w);
            let o = w.containers().into_iter().find(|c| c.id == old).unwrap();
            assert_eq!(o.state, RunState::Running, "the old one stopped");
        });
        assert_eq!(routed(&sim.w), [format!("shop-web-1-{a}")], "{p}");
        if settled(&p) {
            break;
        }
    }
    assert!(
        sim.events().iter().any(|e| e.starts_with("Reverted")),
        "{:?}",
        sim.events()
    );
    assert_runs(&sim.w, &d1, 1);
}

#[test]
fn a_failure_after_one_replica_switched_reverts_through_the_routes_too() {
    let x = |image| {
        web(
            image,
            &HANDOFF.replace("    ports:", "    deploy: {replicas: 2}\n    ports:"),
        )
    };
    let (d1, d2) = (x("app:1"), x("app:2"));
    let mut sim = deployed(World::new(), &d1);
    assert_eq!(routed(&sim.w).len(), 2);
    let a = h12(&d1);
    // Replica 2's candidate crashes: replica 1 had already switched to r2 and drained.
    sim.w.crash(&format!("shop-web-2-{}", h12(&d2)));
    for _ in 0..40 {
        let p = sim.round_checked(&d2, &mut |w| {
            assert_routes_serve(w);
        });
        if settled(&p) {
            break;
        }
    }
    assert!(
        sim.events().iter().any(|e| e.starts_with("Reverted")),
        "{:?}",
        sim.events()
    );
    assert_runs(&sim.w, &d1, 2);
    let mut r = routed(&sim.w);
    r.sort();
    assert_eq!(r, [format!("shop-web-1-{a}"), format!("shop-web-2-{a}")]);
}

#[test]
fn two_replicas_behind_one_handed_off_port_are_both_routed_and_never_none() {
    let x = |image| {
        web(
            image,
            &HANDOFF.replace("    ports:", "    deploy: {replicas: 2}\n    ports:"),
        )
    };
    let (d1, d2) = (x("app:1"), x("app:2"));
    let mut sim = deployed(World::new(), &d1);
    for _ in 0..40 {
        let p = sim.round_checked(&d2, &mut |w| assert_routes_serve(w));
        if settled(&p) {
            break;
        }
    }
    assert_runs(&sim.w, &d2, 2);
    let b = h12(&d2);
    let mut r = routed(&sim.w);
    r.sort();
    assert_eq!(r, [format!("shop-web-1-{b}"), format!("shop-web-2-{b}")]);
}

#[test]
fn taking_up_handoff_is_stop_first_once_and_then_the_proxy_holds_the_port() {
    let (d1, d2) = (web("app:1", PORT), web("app:1", HANDOFF));
    let mut sim = deployed(World::new(), &d1);
    let p = sim.round(&d2);
    assert!(
        p.to_string().contains(
            "stop-first this once (the old container still publishes host port 8080 itself; from now on berth's proxy holds it and updates are start-first)"
        ),
        "{p}"
    );
    sim.converge(&d2);
    assert_runs(&sim.w, &d2, 1);
    assert_eq!(routed(&sim.w), [format!("shop-web-1-{}", h12(&d2))]);
}

#[test]
fn a_handoff_scale_down_takes_the_replica_out_of_the_routes_and_drains_it_before_it_goes() {
    let x = |replicas: u32| {
        web(
            "app:1",
            &HANDOFF.replace(
                "    ports:",
                &format!("    deploy: {{replicas: {replicas}}}\n    ports:"),
            ),
        )
    };
    let (two, one) = (x(2), x(1));
    let mut sim = deployed(World::new(), &two);
    assert_eq!(routed(&sim.w).len(), 2);
    let second = ids(&sim.w)["shop-web-2"].clone();
    let (mut unrouted_at, mut stopped_at) = (None, None);
    let mut texts = Vec::new();
    for _ in 0..10 {
        let round = sim.now;
        let p = sim.round_checked(&one, &mut |w| assert_routes_serve(w));
        texts.push(p.to_string());
        if unrouted_at.is_none() && routed(&sim.w).len() == 1 {
            unrouted_at = Some(round);
        }
        let gone = !sim.w.containers().iter().any(|c| c.id == second);
        if stopped_at.is_none() && gone {
            stopped_at = Some(round);
        }
        if settled(&p) {
            break;
        }
    }
    let (u, s) = (unrouted_at.expect("unrouted"), stopped_at.expect("removed"));
    assert!(
        s >= u + 3,
        "unrouted at +{}, removed at +{}",
        u - T0,
        s - T0
    );
    assert!(
        texts[0].contains("waits: replica 2: leaving the proxy's routes before it goes"),
        "{}",
        texts[0]
    );
    assert_runs(&sim.w, &one, 1);
    assert_eq!(routed(&sim.w), [format!("shop-web-1-{}", h12(&one))]);
    assert!(sim.record().unrouted.is_empty());
}
