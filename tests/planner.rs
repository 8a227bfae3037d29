//! The pure planner: golden plan text per scenario, and the property that applying a plan
//! and planning again yields nothing.

use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
use berth::engine::labels::{self, compose};
use berth::engine::{
    ContainerSummary, Health, ImageSummary, NetworkSummary, RunState, VolumeSummary,
};
use berth::reconcile::observed::ObservedState;
use berth::reconcile::plan::{Action, Plan, PlanOptions, Records, plan, record_jobs, short};
use indoc::indoc;
use proptest::prelude::*;
use std::collections::BTreeMap;

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

/// A small world: containers, networks, volumes, images.
#[derive(Clone, Default)]
struct World {
    containers: Vec<ContainerSummary>,
    networks: Vec<String>,
    volumes: Vec<String>,
    images: Vec<(String, String)>,
    created: usize,
}

impl World {
    fn image(mut self, reference: &str, id: &str) -> Self {
        self.images.push((reference.into(), id.into()));
        self
    }
    fn network(mut self, n: &str) -> Self {
        self.networks.push(n.into());
        self
    }
    fn volume(mut self, n: &str) -> Self {
        self.volumes.push(n.into());
        self
    }
    fn container(
        mut self,
        project: &str,
        service: &str,
        n: u32,
        spec_hash: &str,
        state: RunState,
        health: Health,
    ) -> Self {
        let mut l = BTreeMap::new();
        l.insert(labels::MANAGED.to_string(), "true".to_string());
        l.insert(labels::PROJECT.to_string(), project.to_string());
        l.insert(labels::SERVICE.to_string(), service.to_string());
        l.insert(labels::SPEC_HASH.to_string(), spec_hash.to_string());
        l.insert(labels::ROLE.to_string(), "replica".to_string());
        l.insert(compose::NUMBER.to_string(), n.to_string());
        self.containers.push(ContainerSummary {
            id: format!("id-{service}-{n}-{}", short(spec_hash)),
            name: labels::container_name(project, service, n),
            image_id: "sha256:img".into(),
            labels: l,
            state,
            health,
            exit_code: (state == RunState::Exited).then_some(0),
            networks: vec![format!("{project}_default")],
            created: 0,
        });
        self
    }
    fn job(mut self, project: &str, service: &str, spec_hash: &str, exit: Option<i64>) -> Self {
        let state = if exit.is_some() {
            RunState::Exited
        } else {
            RunState::Running
        };
        self = self.container(project, service, 1, spec_hash, state, Health::None);
        let c = self.containers.last_mut().unwrap();
        c.labels.insert(labels::ROLE.into(), "job".into());
        c.exit_code = exit;
        self
    }
    fn observed(&self) -> ObservedState {
        ObservedState::from_lists(self.containers.clone()).with_inventory(
            self.networks
                .iter()
                .map(|n| NetworkSummary {
                    id: n.clone(),
                    name: n.clone(),
                    labels: BTreeMap::new(),
                })
                .collect(),
            self.volumes
                .iter()
                .map(|n| VolumeSummary {
                    name: n.clone(),
                    labels: BTreeMap::new(),
                })
                .collect(),
            self.images
                .iter()
                .map(|(r, id)| ImageSummary {
                    id: id.clone(),
                    tags: vec![r.clone()],
                    digests: vec![],
                })
                .collect(),
        )
    }
}

fn run(d: &DesiredState, w: &World) -> Plan {
    plan(d, &w.observed(), &Records::new(), PlanOptions::default(), T0)
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
    let w = World::default().image("app:1", "sha256:app1");
    assert_eq!(
        run(&d, &w).to_string(),
        indoc! {"
            shop     create network shop_default  network missing
            shop     create volume shop_data      volume missing
            shop/db  pull pg:16                   image not present locally
            shop/db  create shop-db-1             replica 1 of 1 missing
            shop/db  start shop-db-1              replica 1 of 1 missing
            shop/migrate  waits: db is not running yet
            shop/web  waits: migrate has not completed successfully yet
        "}
    );
}

#[test]
fn a_job_runs_once_its_dependency_is_healthy_and_dependents_follow_its_success() {
    let d = desired(SHOP);
    let base = World::default()
        .image("app:1", "sha256:app1")
        .image("pg:16", "sha256:pg")
        .network("shop_default")
        .volume("shop_data");
    let starting = base.clone().container(
        "shop",
        "db",
        1,
        &hash(&d, "db"),
        RunState::Running,
        Health::Starting,
    );
    assert_eq!(
        run(&d, &starting).to_string(),
        "shop/migrate  waits: db is not healthy yet\nshop/web  waits: migrate has not completed successfully yet\n"
    );
    let healthy = base.clone().container(
        "shop",
        "db",
        1,
        &hash(&d, "db"),
        RunState::Running,
        Health::Healthy,
    );
    let h = short(&hash(&d, "migrate")).to_string();
    assert_eq!(
        run(&d, &healthy).to_string(),
        format!(
            "shop/migrate  create shop-migrate-1  job revision {h} not run yet\n\
             shop/migrate  start shop-migrate-1   job revision {h} not run yet\n\
             shop/web  waits: migrate has not completed successfully yet\n"
        )
    );
    let done = healthy
        .clone()
        .job("shop", "migrate", &hash(&d, "migrate"), Some(0));
    let p = run(&d, &done).to_string();
    assert_eq!(
        p,
        "shop/web  create shop-web-1  replica 1 of 1 missing\nshop/web  start shop-web-1   replica 1 of 1 missing\n"
    );
    let failed = healthy.job("shop", "migrate", &hash(&d, "migrate"), Some(3));
    assert_eq!(
        run(&d, &failed).to_string(),
        "shop/migrate  blocked: job failed with exit code 3; change the desired state (or fix what it needs) to run it again\n\
         shop/web  blocked: job migrate failed with exit code 3\n"
    );
}

fn converged(d: &DesiredState) -> World {
    let mut w = World::default()
        .image("app:1", "sha256:app1")
        .image("app:2", "sha256:app2")
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

#[test]
fn nothing_to_do_when_everything_runs_its_current_revision() {
    let d = desired(SHOP);
    let w = converged(&d).volume("shop_data");
    let p = run(&d, &w);
    assert!(p.is_empty() && p.notes.is_empty(), "{p}");
}

#[test]
fn an_image_change_recreates_the_container() {
    let old = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let new = desired("name: shop\nservices:\n  web: {image: 'app:2'}\n");
    let w = converged(&old);
    let (a, b) = (
        short(&hash(&old, "web")).to_string(),
        short(&hash(&new, "web")).to_string(),
    );
    let cause = format!("spec changed: {a} -> {b}");
    assert_eq!(
        run(&new, &w).to_string(),
        format!(
            "shop/web  stop shop-web-1    {cause}\n\
             shop/web  remove shop-web-1  {cause}\n\
             shop/web  create shop-web-1  {cause}\n\
             shop/web  start shop-web-1   {cause}\n"
        )
    );
}

#[test]
fn scaling_up_and_down() {
    let one = desired("name: shop\nservices:\n  w: {image: 'app:1'}\n");
    let three = desired("name: shop\nservices:\n  w: {image: 'app:1', deploy: {replicas: 3}}\n");
    assert_eq!(
        run(&three, &converged(&one)).to_string(),
        indoc! {"
            shop/w  create shop-w-2  replica 2 of 3 missing
            shop/w  start shop-w-2   replica 2 of 3 missing
            shop/w  create shop-w-3  replica 3 of 3 missing
            shop/w  start shop-w-3   replica 3 of 3 missing
        "}
    );
    assert_eq!(
        run(&one, &converged(&three)).to_string(),
        indoc! {"
            shop/w  stop shop-w-2    scale down to 1 (removing replica 2)
            shop/w  remove shop-w-2  scale down to 1 (removing replica 2)
            shop/w  stop shop-w-3    scale down to 1 (removing replica 3)
            shop/w  remove shop-w-3  scale down to 1 (removing replica 3)
        "}
    );
}

#[test]
fn removed_services_are_removed_and_stopped_ones_restarted() {
    let both = desired("name: shop\nservices:\n  a: {image: 'app:1'}\n  b: {image: 'app:1'}\n");
    let only_a = desired("name: shop\nservices:\n  a: {image: 'app:1'}\n");
    assert_eq!(
        run(&only_a, &converged(&both)).to_string(),
        "shop/b  stop shop-b-1    service removed from the project\nshop/b  remove shop-b-1  service removed from the project\n"
    );
    let mut w = converged(&only_a);
    w.containers[0].state = RunState::Exited;
    w.containers[0].exit_code = Some(137);
    assert_eq!(
        run(&only_a, &w).to_string(),
        "shop/a  start shop-a-1  exited with code 137; restarting\n"
    );
}

#[test]
fn compose_containers_are_taken_over_and_unrelated_ones_ignored() {
    let d = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let mut w = converged(&d);
    let c = &mut w.containers[0];
    c.labels.retain(|k, _| k.starts_with("com.docker.compose"));
    c.labels.insert(compose::PROJECT.into(), "shop".into());
    c.labels.insert(compose::SERVICE.into(), "web".into());
    let mut unrelated = w.containers[0].clone();
    unrelated.labels = BTreeMap::from([("app".to_string(), "mine".to_string())]);
    unrelated.name = "someone-elses".into();
    w.containers.push(unrelated);
    assert_eq!(
        run(&d, &w).to_string(),
        indoc! {"
            shop/web  stop shop-web-1    taking over from docker compose
            shop/web  remove shop-web-1  taking over from docker compose
            shop/web  create shop-web-1  taking over from docker compose
            shop/web  start shop-web-1   taking over from docker compose
        "}
    );
}

#[test]
fn projects_that_left_the_desired_state_need_prune() {
    let shop = desired("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let other = desired("name: other\nservices:\n  x: {image: 'app:1'}\n");
    let w = converged(&shop);
    let p = run(&other, &w);
    assert!(p.to_string().contains("shop  orphaned: 1 container(s) of a project no longer in the desired state; --prune removes them"), "{p}");
    assert!(!p.steps.iter().any(|s| s.project == "shop"));
    // A compose project berth never managed is not an orphan, even with --prune.
    let mut w2 = w.clone();
    for c in &mut w2.containers {
        c.labels.remove(labels::MANAGED);
    }
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
    assert!(run(&d, &converged(&old)).is_empty());
}

/// Applies a plan to a world the way the engine would, with every started container
/// becoming healthy and every job exiting 0.
fn apply(w: &mut World, p: &Plan) {
    for s in &p.steps {
        match &s.action {
            Action::CreateNetwork(n) => w.networks.push(n.name.clone()),
            Action::CreateVolume(v) => w.volumes.push(v.name.clone()),
            Action::Pull { reference } => w
                .images
                .push((reference.clone(), format!("sha256:{reference}"))),
            Action::Create { spec, .. } => w.containers.push(ContainerSummary {
                id: {
                    w.created += 1;
                    format!("new-{}", w.created)
                },
                name: spec.name.clone(),
                image_id: spec.image.clone(),
                labels: spec.labels.clone(),
                state: RunState::Created,
                health: Health::None,
                exit_code: None,
                networks: spec.networks.iter().map(|n| n.network.clone()).collect(),
                created: 0,
            }),
            Action::Start { target, .. } => {
                let c = w
                    .containers
                    .iter_mut()
                    .find(|c| &c.id == target || &c.name == target)
                    .expect("start target exists");
                let job = c.labels.get(labels::ROLE).is_some_and(|r| r == "job");
                c.state = if job {
                    RunState::Exited
                } else {
                    RunState::Running
                };
                c.exit_code = job.then_some(0);
                c.health = Health::Healthy;
            }
            Action::Stop { id, .. } => {
                let c = w
                    .containers
                    .iter_mut()
                    .find(|c| &c.id == id)
                    .expect("stop target exists");
                c.state = RunState::Exited;
            }
            Action::Remove { id, .. } => {
                let before = w.containers.len();
                w.containers.retain(|c| &c.id != id);
                assert_eq!(before, w.containers.len() + 1, "remove target exists");
            }
            Action::Rename { id, to, .. } => {
                let c = w
                    .containers
                    .iter_mut()
                    .find(|c| &c.id == id)
                    .expect("rename target exists");
                c.name = to.clone();
            }
            Action::Pin { .. } | Action::Unpin { .. } => {}
        }
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// From any earlier revision, rounds of plan-then-apply converge, and then planning again
    /// yields nothing.
    #[test]
    fn applying_the_plan_and_planning_again_yields_nothing(
        from_r in prop::array::uniform3(0u32..4), from_i in prop::array::uniform3(1u8..3),
        to_r in prop::array::uniform3(0u32..4), to_i in prop::array::uniform3(1u8..3),
        jobs in any::<bool>(),
    ) {
        let mut w = World::default();
        for (d, rounds_limit) in [(desired(&compose_doc(from_r, from_i, jobs)), 6), (desired(&compose_doc(to_r, to_i, jobs)), 6)] {
            let mut rounds = 0;
            loop {
                let p = run(&d, &w);
                if p.is_empty() {
                    prop_assert!(p.waits().next().is_none(), "converged with waits:\n{}", p);
                    // Converged means: exactly the desired containers, each on its current revision.
                    let proj = d.projects.values().next().unwrap();
                    for svc in proj.services.values() {
                        let mine: Vec<&ContainerSummary> = w.containers.iter().filter(|c| c.labels.get(labels::SERVICE) == Some(&svc.name)).collect();
                        let want = if svc.job { 1 } else { svc.replicas as usize };
                        prop_assert_eq!(mine.len(), want, "service {}", svc.name);
                        prop_assert!(mine.iter().all(|c| c.labels.get(labels::SPEC_HASH) == Some(&svc.spec_hash)));
                    }
                    prop_assert_eq!(w.containers.len(), proj.services.values().map(|s| if s.job { 1 } else { s.replicas as usize }).sum::<usize>());
                    break;
                }
                rounds += 1;
                prop_assert!(rounds <= rounds_limit, "no convergence after {} rounds:\n{}", rounds_limit, p);
                apply(&mut w, &p);
            }
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
    // The job ran and exited 0: recorded.
    let ran = base
        .clone()
        .job("shop", "migrate", &hash(&d, "migrate"), Some(0));
    let mut records = Records::new();
    let changed = record_jobs(&mut records, &d, &ran.observed(), 1_700_000_000);
    assert_eq!(changed, [("shop".to_string(), "migrate".to_string())]);
    assert!(
        record_jobs(&mut records, &d, &ran.observed(), 1_700_000_001).is_empty(),
        "recorded once"
    );
    // Its container removed by hand: not run again, and web may start.
    let p = plan(&d, &base.observed(), &records, PlanOptions::default(), T0);
    assert!(!p.to_string().contains("migrate"), "{p}");
    assert!(p.to_string().contains("shop/web  create shop-web-1"), "{p}");
    // Without the record it would run again.
    let again = plan(
        &d,
        &base.observed(),
        &Records::new(),
        PlanOptions::default(),
        T0,
    );
    assert!(
        again
            .to_string()
            .contains("shop/migrate  create shop-migrate-1"),
        "{again}"
    );
}
