//! The pure planner: golden plan text per scenario, and the property that rounds of
//! plan-then-apply converge to a plan with nothing left to do.
//!
//! Long-running services go through the rollout state machine (`reconcile::rollout`), which
//! keeps its memory in berth's records and its timing in `now`: the simulation below carries
//! both across rounds as the controller does (records saved, clock moving on). Rollout details
//! (gates, reverts, quarantine, crash safety) are tested in `tests/rollout.rs`.

use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
mod support {
    pub mod sim;
}

use berth::engine::fake::{OnStart, Started};
use berth::engine::labels::{self, compose};
use berth::engine::{ContainerSummary, Health, RunState};
use berth::reconcile::observed::ObservedState;
use berth::reconcile::plan::{Action, Plan, PlanOptions, Records, plan, record_jobs, short};
use indoc::indoc;
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::sim::Host;

const T0: u64 = 1_700_000_000;

fn desired(yaml: &str) -> DesiredState {
    let l = load_inline(yaml, &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

fn hash(d: &DesiredState, service: &str) -> String {
    d.projects.values().next().unwrap().services[service]
        .spec_hash
        .clone()
}

/// A small world: the simulated host (`support/sim.rs`, the in-memory engine) where every
/// started container turns healthy at once and every job exits 0, plus builders for what
/// exists before a test begins. `clone` copies the whole world.
#[derive(Clone)]
struct World {
    host: Host,
}

impl Default for World {
    fn default() -> Self {
        let host = Host::new();
        host.engine.on_start(
            Started::Label(format!("{}=job", labels::ROLE)),
            OnStart::Exits(0),
        );
        host.engine.on_start(
            Started::Label(labels::MANAGED.to_string()),
            OnStart::Reports(Health::Healthy),
        );
        World { host }
    }
}

/// A container of `project/service` as berth would have labelled it.
fn summary(
    project: &str,
    service: &str,
    n: u32,
    spec_hash: &str,
    state: RunState,
    health: Health,
) -> ContainerSummary {
    let mut l = BTreeMap::new();
    l.insert(labels::MANAGED.to_string(), "true".to_string());
    l.insert(labels::PROJECT.to_string(), project.to_string());
    l.insert(labels::SERVICE.to_string(), service.to_string());
    l.insert(labels::SPEC_HASH.to_string(), spec_hash.to_string());
    l.insert(labels::ROLE.to_string(), "replica".to_string());
    l.insert(compose::NUMBER.to_string(), n.to_string());
    ContainerSummary {
        id: format!("id-{service}-{n}-{}", short(spec_hash)),
        name: labels::container_name(project, service, n),
        image_id: "sha256:img".into(),
        labels: l,
        state,
        health,
        exit_code: (state == RunState::Exited).then_some(0),
        networks: vec![format!("{project}_default")],
        created: 0,
        actual: None,
    }
}

impl World {
    fn image(self, reference: &str, id: &str) -> Self {
        self.host.image(reference, id);
        self
    }
    fn network(self, n: &str) -> Self {
        self.host.network(n);
        self
    }
    fn volume(self, n: &str) -> Self {
        self.host.volume(n);
        self
    }
    fn container(
        self,
        project: &str,
        service: &str,
        n: u32,
        spec_hash: &str,
        state: RunState,
        health: Health,
    ) -> Self {
        let c = summary(project, service, n, spec_hash, state, health);
        self.host.engine.insert_container(c);
        self
    }
    fn job(self, project: &str, service: &str, spec_hash: &str, exit: Option<i64>) -> Self {
        let state = if exit.is_some() {
            RunState::Exited
        } else {
            RunState::Running
        };
        let mut c = summary(project, service, 1, spec_hash, state, Health::None);
        c.labels.insert(labels::ROLE.into(), "job".into());
        c.exit_code = exit;
        self.host.engine.insert_container(c);
        self
    }
    fn observed(&self) -> ObservedState {
        self.host.observed()
    }
    fn containers(&self) -> Vec<ContainerSummary> {
        self.host.containers()
    }
    /// Replaces every container by what `f` makes of it (in place, as if someone recreated
    /// them all by hand).
    fn edit_containers(&self, f: impl Fn(&mut ContainerSummary)) {
        for mut c in self.containers() {
            self.host.engine.remove_by_hand(&c.id);
            f(&mut c);
            self.host.engine.insert_container(c);
        }
    }
}

/// One planning round without records (what berth sees the first time).
fn run(d: &DesiredState, w: &World) -> Plan {
    plan(
        d,
        &w.observed(),
        &Records::new(),
        PlanOptions::default(),
        T0,
    )
}

/// The world plus berth's side of it across rounds: its records and its clock.
#[derive(Clone)]
struct Sim {
    w: World,
    records: Records,
    now: u64,
}

impl Sim {
    fn new(w: World) -> Self {
        Sim {
            w,
            records: Records::new(),
            now: T0,
        }
    }

    /// Plans one round as the apply loop does: finished jobs recorded first.
    fn plan(&mut self, d: &DesiredState) -> Plan {
        let observed = self.w.observed();
        record_jobs(&mut self.records, d, &observed, self.now);
        plan(
            d,
            &observed,
            &self.records,
            PlanOptions::default(),
            self.now,
        )
    }

    /// Plans, saves the plan's records, applies its steps, and lets a second pass.
    fn round(&mut self, d: &DesiredState) -> Plan {
        let p = self.plan(d);
        self.records
            .extend(p.records.iter().map(|(k, r)| (k.clone(), r.clone())));
        apply(&mut self.w, &p);
        self.now += 1;
        p
    }

    /// Rounds until a plan has nothing to do and nothing to wait for; panics after 40.
    fn converge(&mut self, d: &DesiredState) -> Plan {
        for _ in 0..40 {
            let p = self.round(d);
            if p.is_empty() && p.waits().next().is_none() {
                return p;
            }
        }
        panic!("no convergence within 40 rounds:\n{}", self.plan(d));
    }
}

const SHOP: &str = indoc! {"
    name: shop
    services:
      db:
        image: pg:16
        volumes: ['data:/var/lib/pg']
        healthcheck: {test: [CMD, ready]}
      migrate:
        image: app:1
        restart: 'no'
        depends_on: {db: {condition: service_healthy}}
      web:
        image: app:1
        ports: ['127.0.0.1:8080:8080']
        depends_on:
          migrate: {condition: service_completed_successfully}
    volumes:
      data: {}
"};

#[test]
fn cold_deploy_creates_objects_pulls_and_starts_what_has_no_unmet_dependency() {
    let d = desired(SHOP);
    let mut sim = Sim::new(World::default().image("app:1", "sha256:app1"));
    // The image comes first: nothing of db is created before its ID is known.
    assert_eq!(
        sim.round(&d).to_string(),
        indoc! {"
            shop     create network shop_default  network missing
            shop     create volume shop_data      volume missing
            shop/db  pull pg:16                   image not present locally
            shop/db  waits: pulling pg:16 before anything is stopped
            shop/migrate  waits: db is not running yet
            shop/web  waits: migrate has not completed successfully yet
        "}
    );
    assert_eq!(
        sim.round(&d).to_string(),
        format!(
            "shop/db  deploying r1 ({})\n\
             shop/db  create shop-db-1  r1 replica 1\n\
             shop/db  start shop-db-1   r1 replica 1\n\
             shop/db  waits: replica 1: starting\n\
             shop/migrate  waits: db is not running yet\n\
             shop/web  waits: migrate has not completed successfully yet\n",
            short(&hash(&d, "db"))
        )
    );
    let p = sim.converge(&d);
    assert!(p.notes.is_empty(), "{p}");
    let containers = sim.w.containers();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["shop-db-1", "shop-migrate-1", "shop-web-1"]);
}

#[test]
fn a_job_runs_once_its_dependency_is_healthy_and_dependents_follow_its_success() {
    let d = desired(SHOP);
    let base = World::default()
        .image("app:1", "sha256:app1")
        .image("pg:16", "sha256:pg")
        .network("shop_default")
        .volume("shop_data");
    let mut sim = Sim::new(base.clone().container(
        "shop",
        "db",
        1,
        &hash(&d, "db"),
        RunState::Running,
        Health::Starting,
    ));
    // db runs its current revision without a record: adopted (recorded and pinned) first.
    assert_eq!(
        sim.round(&d).to_string(),
        indoc! {"
            shop/db  pin pg as berth-pin/shop/db:r1  keep r1's image for a revert (docker image prune cannot remove it)
            shop/migrate  waits: db is not running yet
            shop/web  waits: migrate has not completed successfully yet
        "}
    );
    assert_eq!(
        sim.plan(&d).to_string(),
        "shop/migrate  waits: db is not healthy yet\nshop/web  waits: migrate has not completed successfully yet\n"
    );
    sim.w.host.engine.set_health("shop-db-1", Health::Healthy);
    assert_eq!(
        sim.plan(&d).to_string(),
        "shop/migrate  create shop-migrate-1  job r1 not run yet\n\
         shop/migrate  start shop-migrate-1   job r1 not run yet\n\
         shop/web  waits: migrate has not completed successfully yet\n"
    );
    let mut done = sim.clone();
    done.w = done.w.job("shop", "migrate", &hash(&d, "migrate"), Some(0));
    assert_eq!(
        done.plan(&d).to_string(),
        format!(
            "shop/web  deploying r1 ({})\n\
             shop/web  create shop-web-1  r1 replica 1\n\
             shop/web  start shop-web-1   r1 replica 1\n\
             shop/web  waits: replica 1: starting\n",
            short(&hash(&d, "web"))
        )
    );
    let mut failed = sim.clone();
    failed.w = failed
        .w
        .job("shop", "migrate", &hash(&d, "migrate"), Some(3));
    assert_eq!(
        failed.plan(&d).to_string(),
        "shop/migrate  blocked: job failed with exit code 3; change the desired state (or fix what it needs) to run it again\n\
         shop/web  blocked: job migrate failed with exit code 3\n"
    );
}

/// Every service of `d` running its current revision (jobs exited 0), without records.
fn converged(d: &DesiredState) -> World {
    let mut w = World::default()
        .image("app:1", "sha256:app1")
        .image("app:2", "sha256:app2")
        .image("pg:16", "sha256:pg")
        .network("shop_default");
    let p = d.projects.values().next().unwrap();
    for s in p.services.values() {
        if s.job {
            w = w.job(&p.name, &s.name, &s.spec_hash, Some(0));
        } else {
            for n in 1..=s.replicas {
                w = w.container(
                    &p.name,
                    &s.name,
                    n,
                    &s.spec_hash,
                    RunState::Running,
                    Health::None,
                );
            }
        }
    }
    w
}

/// The plan's actions without their causes.
fn actions(p: &Plan) -> Vec<String> {
    p.steps.iter().map(|s| s.action.to_string()).collect()
}

/// [`converged`] after the round that adopts it, so berth has its records.
fn adopted(d: &DesiredState) -> Sim {
    let mut sim = Sim::new(converged(d));
    let p = sim.round(d);
    assert!(
        p.steps
            .iter()
            .all(|s| matches!(s.action, Action::Pin { .. })),
        "adoption only pins:\n{p}"
    );
    sim
}

#[test]
fn a_converged_world_is_adopted_once_and_then_left_alone() {
    let d = desired(SHOP);
    let mut sim = Sim::new(converged(&d).volume("shop_data"));
    let p = sim.round(&d);
    assert_eq!(
        p.to_string(),
        indoc! {"
            shop/db   pin pg as berth-pin/shop/db:r1     keep r1's image for a revert (docker image prune cannot remove it)
            shop/web  pin app1 as berth-pin/shop/web:r1  keep r1's image for a revert (docker image prune cannot remove it)
        "}
    );
    let keys: Vec<&str> = p.records.keys().map(|(_, s)| s.as_str()).collect();
    assert_eq!(keys, ["db", "web"]);
    for _ in 0..3 {
        let p = sim.round(&d);
        assert!(p.is_empty() && p.notes.is_empty(), "{p}");
    }
}

#[test]
fn an_image_change_rolls_out_start_first_and_the_new_container_takes_the_name() {
    let old = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let new = desired("name: shop\nservices:\n  web: {image: 'app:2'}\n");
    let mut sim = adopted(&old);
    let (a, b) = (
        short(&hash(&old, "web")).to_string(),
        short(&hash(&new, "web")).to_string(),
    );
    assert_eq!(
        sim.round(&new).to_string(),
        format!(
            "shop/web  rolling out r2 ({b}), start-first (new beside old): image app:1 → app:2\n\
             shop/web  create shop-web-1-{b}  r2 replica 1\n\
             shop/web  start shop-web-1-{b}   r2 replica 1\n\
             shop/web  waits: replica 1: starting\n"
        )
    );
    sim.converge(&new);
    let containers = sim.w.containers();
    let web: Vec<(&str, &str, RunState)> = containers
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.labels[labels::SPEC_HASH].as_str(),
                c.state,
            )
        })
        .collect();
    let b_full = hash(&new, "web");
    assert_eq!(web, [("shop-web-1", b_full.as_str(), RunState::Running)]);
    assert_ne!(a, b);
}

#[test]
fn scaling_up_and_down() {
    let one = desired("name: shop\nservices:\n  w: {image: 'app:1'}\n");
    let three = desired("name: shop\nservices:\n  w: {image: 'app:1', deploy: {replicas: 3}}\n");
    let mut up = adopted(&one);
    // Replica 1 stays; only the missing ones are made.
    assert_eq!(
        actions(&up.round(&three)),
        [
            "create shop-w-2",
            "start shop-w-2",
            "create shop-w-3",
            "start shop-w-3"
        ]
    );
    up.converge(&three);
    let containers = up.w.containers();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["shop-w-1", "shop-w-2", "shop-w-3"]);

    let mut down = adopted(&three);
    assert_eq!(
        down.round(&one).to_string(),
        indoc! {"
            shop/w  stop shop-w-2    scale down to 1 (removing replica 2)
            shop/w  remove shop-w-2  scale down to 1 (removing replica 2)
            shop/w  stop shop-w-3    scale down to 1 (removing replica 3)
            shop/w  remove shop-w-3  scale down to 1 (removing replica 3)
        "}
    );
    let p = down.plan(&one);
    assert!(p.is_empty() && p.notes.is_empty(), "{p}");
}

#[test]
fn removed_services_are_removed_and_stopped_ones_restarted() {
    let both = desired("name: shop\nservices:\n  a: {image: 'app:1'}\n  b: {image: 'app:1'}\n");
    let only_a = desired("name: shop\nservices:\n  a: {image: 'app:1'}\n");
    let mut sim = adopted(&both);
    assert_eq!(
        sim.round(&only_a).to_string(),
        "shop/b  stop shop-b-1    service removed from the project\nshop/b  remove shop-b-1  service removed from the project\n"
    );
    sim.w.host.engine.kill("shop-a-1", 137);
    // b's container is gone now, so its image pin is released too (once).
    assert_eq!(
        sim.round(&only_a).to_string(),
        indoc! {"
            shop/a  start shop-a-1             replica 1 exited with code 137; restarting
            shop/b  unpin berth-pin/shop/b:r1  r1: the service is no longer desired
        "}
    );
    assert_eq!(sim.w.host.named("shop-a-1").state, RunState::Running);
    let p = sim.plan(&only_a);
    assert!(p.is_empty(), "{p}");
}

#[test]
fn compose_containers_are_taken_over_and_unrelated_ones_ignored() {
    let d = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let w = converged(&d);
    w.edit_containers(|c| {
        c.labels.retain(|k, _| k.starts_with("com.docker.compose"));
        c.labels.insert(compose::PROJECT.into(), "shop".into());
        c.labels.insert(compose::SERVICE.into(), "web".into());
    });
    let c = w.containers()[0].clone();
    let compose_id = c.id.clone();
    let mut unrelated = c;
    unrelated.labels = BTreeMap::from([("app".to_string(), "mine".to_string())]);
    unrelated.name = "someone-elses".into();
    unrelated.id = "someone-elses-id".into();
    w.host.engine.insert_container(unrelated);
    let mut sim = Sim::new(w);
    let h = short(&hash(&d, "web")).to_string();
    // What compose made is recorded as the revision a failure would return to, and kept
    // running beside berth's first container until that one is ready.
    let p = sim.round(&d);
    assert_eq!(
        actions(&p),
        [
            "pin img as berth-pin/shop/web:r1".to_string(),
            format!("create shop-web-1-{h}"),
            format!("start shop-web-1-{h}"),
        ]
    );
    assert!(
        p.steps[1..]
            .iter()
            .all(|s| s.cause.starts_with("r2 replica 1: ")
                && s.cause.ends_with("start-first (new beside old)")),
        "{p}"
    );
    assert_eq!(
        p.notes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["shop/web  waits: replica 1: starting"]
    );
    sim.converge(&d);
    assert!(
        !sim.w.containers().iter().any(|c| c.id == compose_id),
        "compose's container was replaced"
    );
    let containers = sim.w.containers();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["someone-elses", "shop-web-1"]);
    let unrelated = &containers[0];
    assert_eq!(unrelated.state, RunState::Running, "never touched");
}

/// A container with compose labels only (as `docker compose` or a person makes it).
fn by_hand(project: &str, service: &str, n: u32) -> ContainerSummary {
    let mut c = summary(project, service, n, "", RunState::Running, Health::None);
    c.labels = BTreeMap::from([
        (compose::PROJECT.to_string(), project.to_string()),
        (compose::SERVICE.to_string(), service.to_string()),
        (compose::NUMBER.to_string(), n.to_string()),
    ]);
    c.id = format!("hand-{service}-{n}");
    c
}

#[test]
fn containers_berth_did_not_create_beyond_the_desired_ones_are_reported_and_left_alone() {
    let d = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let mut sim = adopted(&d);
    // An extra replica and a service the file does not have, both made by hand.
    sim.w
        .host
        .engine
        .insert_container(by_hand("shop", "web", 2));
    sim.w
        .host
        .engine
        .insert_container(by_hand("shop", "debug", 1));
    for _ in 0..3 {
        let p = sim.round(&d);
        assert!(p.steps.is_empty(), "nothing of theirs is touched:\n{p}");
        let notes: Vec<String> = p.notes.iter().map(ToString::to_string).collect();
        assert_eq!(
            notes,
            [
                "shop/web  not berth's: shop-web-2 (no berth.managed label; made by hand or by docker compose); left alone",
                "shop/debug  not berth's: shop-debug-1 (no berth.managed label; made by hand or by docker compose); left alone",
            ],
            "{p}"
        );
    }
    for name in ["shop-web-2", "shop-debug-1"] {
        assert_eq!(sim.w.host.named(name).state, RunState::Running, "{name}");
    }
    // The same containers with berth's label are berth's: removed as before.
    sim.w.edit_containers(|c| {
        c.labels.insert(labels::MANAGED.into(), "true".into());
    });
    let p = sim.plan(&d);
    let removed: Vec<String> = p
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Remove { .. }))
        .map(|s| s.action.to_string())
        .collect();
    assert_eq!(removed, ["remove shop-web-2", "remove shop-debug-1"], "{p}");
}

#[test]
fn projects_that_left_the_desired_state_need_prune() {
    let shop = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let other = desired("name: other\nservices:\n  x: {image: 'app:1'}\n");
    let w = converged(&shop);
    let p = run(&other, &w);
    assert!(p.to_string().contains("shop  orphaned: 1 container(s) of a project no longer in the desired state; `berth prune shop` removes it (--prune: every orphan)"), "{p}");
    assert!(!p.steps.iter().any(|s| s.project == "shop"));
    // A compose project berth never managed is not an orphan, even with --prune.
    let w2 = w.clone();
    w2.edit_containers(|c| {
        c.labels.remove(labels::MANAGED);
    });
    let p2 = plan(
        &other,
        &w2.observed(),
        &Records::new(),
        PlanOptions { prune: true },
        T0,
    );
    assert!(
        !p2.steps.iter().any(|s| s.project == "shop") && !p2.to_string().contains("orphaned"),
        "{p2}"
    );
    let pruned = plan(
        &other,
        &w.observed(),
        &Records::new(),
        PlanOptions { prune: true },
        T0,
    );
    let shop: Vec<String> = pruned
        .steps
        .iter()
        .filter(|s| s.project == "shop")
        .map(|s| format!("{} ({})", s.action, s.cause))
        .collect();
    assert_eq!(
        shop,
        [
            "stop shop-web-1 (project removed from the desired state (--prune))",
            "remove shop-web-1 (project removed from the desired state (--prune))"
        ]
    );
}

#[test]
fn held_services_are_left_alone() {
    let d = desired("name: shop\nservices:\n  web: {image: 'app:2', x-berth: {hold: true}}\n");
    let old = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let mut sim = adopted(&old);
    let before = sim.w.containers();
    for _ in 0..3 {
        let p = sim.round(&d);
        assert!(p.is_empty(), "{p}");
    }
    assert_eq!(sim.w.containers(), before);
}

/// Applies a plan to a world the way the executor would (`support/sim.rs`), with every
/// started container becoming healthy and every job exiting 0. Strict like Docker: a step on
/// a container that does not exist, a taken name, or removing a running container panics.
fn apply(w: &mut World, p: &Plan) {
    for s in &p.steps {
        w.host
            .step(&s.action)
            .unwrap_or_else(|e| panic!("{}: {e}", s.action));
    }
}

fn compose_doc(replicas: [u32; 3], images: [u8; 3], jobs: bool) -> String {
    let mut s = String::from("name: shop\nservices:\n");
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        s.push_str(&format!(
            "  {name}:\n    image: 'app:{}'\n    deploy: {{replicas: {}}}\n",
            images[i], replicas[i]
        ));
    }
    if jobs {
        s.push_str("  migrate:\n    image: 'app:1'\n    restart: 'no'\n    depends_on: [a]\n");
        s.push_str("  d:\n    image: 'app:2'\n    depends_on: {migrate: {condition: service_completed_successfully}}\n");
    }
    s
}

/// Rounds a single desired state needs at most, from any world the property makes: a pull,
/// a start, the `min_ready` hold (5 s at one round a second), the swap, and job ordering.
const ROUND_BOUND: usize = 40;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// From any earlier revision, rounds of (plan, apply, one second passes) converge within
    /// [`ROUND_BOUND`] rounds to a plan with nothing to do and nothing to wait for; what then
    /// runs is exactly the desired containers; and planning again later still yields nothing.
    #[test]
    fn rounds_of_plan_and_apply_converge_and_then_nothing_changes(
        from_r in prop::array::uniform3(0u32..4), from_i in prop::array::uniform3(1u8..3),
        to_r in prop::array::uniform3(0u32..4), to_i in prop::array::uniform3(1u8..3),
        jobs in any::<bool>(),
    ) {
        let mut sim = Sim::new(World::default());
        for d in [desired(&compose_doc(from_r, from_i, jobs)), desired(&compose_doc(to_r, to_i, jobs))] {
            let mut rounds = 0;
            loop {
                let p = sim.round(&d);
                if p.is_empty() && p.waits().next().is_none() {
                    break;
                }
                rounds += 1;
                prop_assert!(rounds <= ROUND_BOUND, "no convergence after {} rounds:\n{}", ROUND_BOUND, p);
            }
            // Converged means: exactly the desired containers, each on its current revision,
            // under its canonical name.
            let proj = d.projects.values().next().unwrap();
            let containers = sim.w.containers();
            for svc in proj.services.values() {
                let mine: Vec<&ContainerSummary> = containers.iter().filter(|c| c.labels.get(labels::SERVICE) == Some(&svc.name)).collect();
                let want = if svc.job { 1 } else { svc.replicas as usize };
                prop_assert_eq!(mine.len(), want, "service {}", svc.name);
                prop_assert!(mine.iter().all(|c| c.labels.get(labels::SPEC_HASH) == Some(&svc.spec_hash)));
                if !svc.job {
                    let mut names: Vec<&str> = mine.iter().map(|c| c.name.as_str()).collect();
                    names.sort_unstable();
                    let want: Vec<String> = (1..=svc.replicas).map(|n| labels::container_name("shop", &svc.name, n)).collect();
                    prop_assert_eq!(names, want);
                    prop_assert!(mine.iter().all(|c| c.state == RunState::Running));
                }
            }
            prop_assert_eq!(containers.len(), proj.services.values().map(|s| if s.job { 1 } else { s.replicas as usize }).sum::<usize>());
            // Idempotent: later rounds make no engine call and wait for nothing; the record
            // may forget self-heal restarts that left their window, once.
            sim.now += 3600;
            let p = sim.round(&d);
            prop_assert!(p.steps.is_empty() && p.waits().next().is_none(), "an hour later:\n{}", p);
            let p = sim.plan(&d);
            prop_assert!(p.is_empty() && p.waits().next().is_none(), "after that:\n{}", p);
        }
    }
}

#[test]
fn a_recorded_job_run_is_not_repeated_when_its_container_is_gone() {
    let d = desired(SHOP);
    let base = World::default()
        .image("app:1", "sha256:app1")
        .image("pg:16", "sha256:pg")
        .network("shop_default")
        .volume("shop_data")
        .container(
            "shop",
            "db",
            1,
            &hash(&d, "db"),
            RunState::Running,
            Health::Healthy,
        );
    // db is adopted first (its record says r1 runs).
    let mut sim = Sim::new(base.clone());
    sim.round(&d);
    let db_record = sim.records.clone();
    // The job ran and exited 0: recorded.
    let ran = base
        .clone()
        .job("shop", "migrate", &hash(&d, "migrate"), Some(0));
    let mut records = db_record.clone();
    let changed = record_jobs(&mut records, &d, &ran.observed(), T0);
    assert_eq!(changed, [("shop".to_string(), "migrate".to_string())]);
    assert!(
        record_jobs(&mut records, &d, &ran.observed(), T0 + 1).is_empty(),
        "recorded once"
    );
    // Its container removed by hand: not run again, and web may start.
    let p = plan(&d, &base.observed(), &records, PlanOptions::default(), T0);
    assert!(!p.to_string().contains("migrate"), "{p}");
    assert!(p.to_string().contains("shop/web  create shop-web-1"), "{p}");
    // Without the record it would run again.
    let again = plan(&d, &base.observed(), &db_record, PlanOptions::default(), T0);
    assert!(
        again
            .to_string()
            .contains("shop/migrate  create shop-migrate-1"),
        "{again}"
    );
}

#[test]
fn a_compose_database_on_a_named_volume_is_taken_over_stop_first() {
    let d = desired(indoc! {"
        name: shop
        services:
          db:
            image: pg:16
            volumes: ['data:/var/lib/pg']
        volumes:
          data: {}
    "});
    let w = converged(&d).volume("shop_data");
    w.edit_containers(|c| {
        c.labels.retain(|k, _| k.starts_with("com.docker.compose"));
        c.labels.insert(compose::PROJECT.into(), "shop".into());
        c.labels.insert(compose::SERVICE.into(), "db".into());
    });
    let mut sim = Sim::new(w);
    let p = sim.plan(&d);
    let first = p
        .steps
        .iter()
        .position(|s| !matches!(s.action, Action::Pin { .. }))
        .expect("a step after the pin");
    assert!(
        p.steps[first].action.to_string().starts_with("stop "),
        "the compose db stops before berth's starts:\n{p}"
    );
    assert!(
        p.steps[first..].iter().all(|s| s.cause.contains(
            "stop-first (mounts named volume data read-write, which two containers must not share"
        )),
        "{p}"
    );
    for _ in 0..40 {
        let p = sim.round(&d);
        let running = sim
            .w
            .containers()
            .iter()
            .filter(|c| c.state == RunState::Running)
            .count();
        assert!(running <= 1, "two db containers ran at once:\n{p}");
        if p.is_empty() && p.waits().next().is_none() {
            return;
        }
    }
    panic!("no convergence within 40 rounds");
}

#[test]
fn compose_containers_under_another_project_name_are_named_before_the_steps() {
    let d = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let dir = d.projects["shop"].dir.display().to_string();
    let w = converged(&d);
    w.edit_containers(|c| {
        c.labels.retain(|k, _| k.starts_with("com.docker.compose"));
        c.labels.insert(compose::PROJECT.into(), "myshop".into());
        c.labels.insert(compose::SERVICE.into(), "web".into());
        c.labels.insert(compose::WORKING_DIR.into(), dir.clone());
    });
    let p = run(&d, &w);
    assert!(!p.steps.is_empty(), "berth would deploy beside them:\n{p}");
    let text = p.to_string();
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "shop  warning: 1 container(s) docker compose started from {dir} run as project \"myshop\""
        )) && first.contains("COMPOSE_PROJECT_NAME=myshop"),
        "{text}"
    );
}

#[test]
fn a_service_with_a_platform_pulls_and_creates_that_variant() {
    let d = desired("name: shop\nservices:\n  web: {image: 'app:1', platform: linux/arm64}\n");
    let mut sim = Sim::new(World::default());
    let p = sim.round(&d);
    let pull = p
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Pull { .. }))
        .expect("a pull");
    assert_eq!(
        pull.action,
        Action::Pull {
            reference: "app:1".into(),
            platform: Some("linux/arm64".into()),
        }
    );
    assert_eq!(pull.action.to_string(), "pull app:1 (linux/arm64)");
    let p = sim.round(&d);
    let create = p
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Create { spec, .. } => Some(spec),
            _ => None,
        })
        .expect("a create");
    assert_eq!(create.platform.as_deref(), Some("linux/arm64"));
}

#[test]
fn pull_policy_never_blocks_instead_of_pulling_until_the_image_is_loaded() {
    let d = desired(indoc! {"
        name: shop
        services:
          web: {image: 'app:2', pull_policy: never}
          migrate: {image: 'tool:1', restart: 'no', pull_policy: never}
    "});
    let mut sim = Sim::new(World::default());
    let p = sim.round(&d);
    assert!(
        !p.steps
            .iter()
            .any(|s| matches!(s.action, Action::Pull { .. })),
        "{p}"
    );
    assert_eq!(
        p.to_string(),
        indoc! {"
            shop  create network shop_default  network missing
            shop/migrate  blocked: image tool:1 is not on this host and pull_policy: never forbids pulling it; load it (docker load) or build it, or change pull_policy
            shop/web  blocked: image app:2 is not on this host and pull_policy: never forbids pulling it; load it (docker load) or build it, or change pull_policy
        "}
    );
    // Loaded by hand (docker load): both go ahead, still without a pull.
    sim.w = sim
        .w
        .clone()
        .image("app:2", "sha256:app2")
        .image("tool:1", "sha256:tool1");
    let p = sim.converge(&d);
    assert!(p.notes.is_empty(), "{p}");
    let names: Vec<String> = sim.w.containers().iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, ["shop-migrate-1", "shop-web-1"]);
}

#[test]
fn a_changed_job_runs_as_the_next_revision_number_and_says_which_ran_last() {
    let job = |cmd: &str| {
        desired(&format!(
            "name: shop\nservices:\n  migrate:\n    image: app:1\n    restart: 'no'\n    command: [{cmd}]\n  web:\n    image: app:1\n    depends_on:\n      migrate: {{condition: service_completed_successfully}}\n"
        ))
    };
    let (d1, d2) = (job("one"), job("two"));
    let ran = World::default()
        .image("app:1", "sha256:app1")
        .network("shop_default")
        .job("shop", "migrate", &hash(&d1, "migrate"), Some(0));
    let mut sim = Sim::new(ran);
    sim.plan(&d1); // its run is recorded as r1
    let key = ("shop".to_string(), "migrate".to_string());
    assert_eq!(
        sim.records[&key]
            .job_run(&hash(&d1, "migrate"))
            .map(|j| j.number),
        Some(1)
    );
    let p = sim.plan(&d2).to_string();
    assert!(
        p.contains("shop/migrate  create shop-migrate-1  job r2 not run yet (r1 ran last)\n"),
        "{p}"
    );
}
