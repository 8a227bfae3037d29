//! Issue 15, adopting what already matches, on the in-memory engine: containers docker compose
//! made exactly as berth would make them are adopted in place (same IDs, never stopped), a job
//! compose ran to exit 0 with the same spec is not run again and its dependents go on, the
//! adoption is in berth's store and later rounds treat the containers as berth's; a container
//! that differs is recreated and `plan` says why without showing a variable's value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use berth::apply::{ApplyOptions, ApplyReport, apply};
use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
use berth::engine::fake::{FakeContainer, FakeEngine};
use berth::engine::labels::{Role, compose};
use berth::engine::{Engine, NetworkCreate, RunState, VolumeCreate};
use berth::reconcile::container_spec::container_create;
use berth::reconcile::execute::PIN_LABEL;
use berth::reconcile::plan::PlanOptions;
use berth::reconcile::round::plan_only;

const STACK: &str = "name: shop
x-berth: {min_ready: 0s}
services:
  db:
    image: 'pg:16'
    environment: {POSTGRES_PASSWORD: '{pw}'}
    volumes: ['data:/var/lib/postgresql/data']
  migrate:
    image: 'app:1'
    command: ['migrate']
    restart: 'no'
    depends_on: [db]
  web:
    image: 'app:1'
    ports: ['127.0.0.1:41180:80']
    depends_on:
      migrate: {condition: service_completed_successfully}
volumes:
  data: {}
";

fn desired(pw: &str) -> DesiredState {
    let l = load_inline(&STACK.replace("{pw}", pw), &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// What docker compose would have made for `service` of `d`: berth's create body with
/// compose's labels instead of berth's and compose 1.29's name.
async fn compose_made(engine: &FakeEngine, d: &DesiredState, service: &str, image: &str) -> String {
    let project = &d.projects["shop"];
    let svc = &project.services[service];
    let role = if svc.job { Role::Job } else { Role::Replica };
    let mut spec = container_create(project, svc, 1, role, image);
    spec.name = format!("shop_{service}_1");
    spec.labels = BTreeMap::from([
        (compose::PROJECT.to_string(), "shop".to_string()),
        (compose::SERVICE.to_string(), service.to_string()),
        (compose::NUMBER.to_string(), "1".to_string()),
        (compose::VERSION.to_string(), "1.29.2".to_string()),
    ]);
    let id = engine.create_container(&spec).await.expect("create");
    engine.start_container(&id).await.expect("start");
    id
}

async fn compose_up(engine: &FakeEngine, d: &DesiredState) -> (String, String, String) {
    engine.add_image("pg:16", "sha256:pg16");
    engine.add_image("app:1", "sha256:app1");
    let compose_labels = |kind: &str, key: &str| {
        BTreeMap::from([
            (compose::PROJECT.to_string(), "shop".to_string()),
            (kind.to_string(), key.to_string()),
        ])
    };
    engine
        .create_network(&NetworkCreate {
            name: "shop_default".into(),
            driver: None,
            driver_opts: BTreeMap::new(),
            internal: false,
            labels: compose_labels(compose::NETWORK, "default"),
            ipam: None,
            enable_ipv6: false,
            attachable: false,
        })
        .await
        .expect("network");
    engine
        .create_volume(&VolumeCreate {
            name: "shop_data".into(),
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: compose_labels(compose::VOLUME, "data"),
        })
        .await
        .expect("volume");
    let db = compose_made(engine, d, "db", "sha256:pg16").await;
    let migrate = compose_made(engine, d, "migrate", "sha256:app1").await;
    engine.kill(&migrate, 0);
    let web = compose_made(engine, d, "web", "sha256:app1").await;
    engine.clear_calls();
    (db, migrate, web)
}

async fn run(
    engine: &Arc<FakeEngine>,
    d: &DesiredState,
    store: &berth::store::Store,
) -> ApplyReport {
    let opts = ApplyOptions {
        timeout: Duration::from_secs(10),
        poll: Duration::from_millis(20),
        parallelism: 1,
        ..ApplyOptions::default()
    };
    apply(
        engine,
        d,
        opts,
        &Arc::new(AtomicBool::new(false)),
        Some(store),
        |_| {},
    )
    .await
    .expect("apply")
}

fn workloads(engine: &FakeEngine) -> Vec<FakeContainer> {
    engine
        .containers()
        .into_iter()
        .filter(|c| !c.spec.labels.contains_key(PIN_LABEL))
        .collect()
}

#[tokio::test]
async fn containers_compose_made_as_berth_would_are_adopted_and_the_job_is_not_run_again() {
    let engine = Arc::new(FakeEngine::new());
    let d = desired("s3cret");
    let (db, migrate, web) = compose_up(&engine, &d).await;

    let plan = plan_only(
        &engine,
        &d,
        Default::default(),
        PlanOptions::default(),
        None,
        1,
    )
    .await
    .expect("plan")
    .plan;
    let text = plan.to_string();
    assert!(text.contains("shop/db  shop_db_1: adopted"), "{text}");
    assert!(text.contains("shop/web  shop_web_1: adopted"), "{text}");
    assert!(
        text.contains("shop/migrate  shop_migrate_1: job done (exited 0 under docker compose"),
        "{text}"
    );
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| s.action.to_string().starts_with("create")
                && !s.action.to_string().contains("berth-pin")),
        "nothing is recreated:\n{text}"
    );

    let data = tempfile::tempdir().expect("tempdir");
    let store = berth::store::Store::open(data.path()).expect("store");
    let r = run(&engine, &d, &store).await;
    assert!(r.ok(), "{r:?}");
    let after: BTreeMap<String, (String, RunState)> = workloads(&engine)
        .into_iter()
        .map(|c| {
            (
                c.spec.labels[compose::SERVICE].clone(),
                (c.id.clone(), c.state),
            )
        })
        .collect();
    assert_eq!(
        after,
        BTreeMap::from([
            ("db".to_string(), (db.clone(), RunState::Running)),
            ("migrate".to_string(), (migrate.clone(), RunState::Exited)),
            ("web".to_string(), (web.clone(), RunState::Running)),
        ]),
        "same containers, none stopped or recreated"
    );
    let calls = engine.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("stop_container")
            || c.starts_with("start_container")
            || c.starts_with("remove_container")),
        "nothing stopped, started or removed: {calls:?}"
    );
    // The store says they are berth's; a new berth (records read again) changes nothing.
    let rec = store.load("shop", "web").expect("record");
    assert_eq!(rec.adopted.len(), 1, "{rec:?}");
    assert_eq!(rec.adopted[0].container, web);
    assert_eq!(
        rec.adopted[0].spec_hash,
        d.projects["shop"].services["web"].spec_hash
    );
    assert!(
        store.load("shop", "migrate").expect("record").adopted[0].job,
        "the job's run is adopted as a job"
    );
    engine.clear_calls();
    let r = run(&engine, &d, &store).await;
    assert!(r.ok(), "{r:?}");
    let plan = plan_only(
        &engine,
        &d,
        berth::reconcile::round::load_records(&store, &d).expect("records"),
        PlanOptions::default(),
        None,
        2,
    )
    .await
    .expect("plan")
    .plan;
    assert!(
        plan.steps.is_empty() && plan.notes.is_empty(),
        "settled:\n{plan}"
    );

    // An update rolls the adopted container like any of berth's: the db's new password
    // replaces it (stop-first: it mounts a named volume), its volume stays.
    let d2 = desired("n3w");
    let r = run(&engine, &d2, &store).await;
    assert!(r.ok(), "{r:?}");
    let dbs: Vec<FakeContainer> = workloads(&engine)
        .into_iter()
        .filter(|c| {
            c.spec
                .labels
                .get(compose::SERVICE)
                .is_some_and(|s| s == "db")
        })
        .collect();
    assert_eq!(
        dbs.len(),
        1,
        "the adopted db is replaced, not kept beside: {dbs:?}"
    );
    assert_ne!(dbs[0].id, db);
    assert_eq!(dbs[0].state, RunState::Running);
}

#[tokio::test]
async fn a_container_that_differs_is_recreated_and_plan_says_why_without_the_value() {
    let engine = Arc::new(FakeEngine::new());
    // Compose ran the db with another password than the file now says.
    let (db, _, web) = compose_up(&engine, &desired("old-pw")).await;
    let d = desired("new-pw");
    let plan = plan_only(
        &engine,
        &d,
        Default::default(),
        PlanOptions::default(),
        None,
        1,
    )
    .await
    .expect("plan")
    .plan;
    let text = plan.to_string();
    assert!(
        text.contains(
            "shop/db  shop_db_1: recreated: environment POSTGRES_PASSWORD: another value"
        ),
        "{text}"
    );
    assert!(
        !text.contains("old-pw") && !text.contains("new-pw"),
        "{text}"
    );
    assert!(text.contains("shop/web  shop_web_1: adopted"), "{text}");

    let data = tempfile::tempdir().expect("tempdir");
    let store = berth::store::Store::open(data.path()).expect("store");
    let r = run(&engine, &d, &store).await;
    assert!(r.ok(), "{r:?}");
    let ids: Vec<String> = workloads(&engine).into_iter().map(|c| c.id).collect();
    assert!(!ids.contains(&db), "the db was recreated: {ids:?}");
    assert!(ids.contains(&web), "the web container was kept: {ids:?}");
}
