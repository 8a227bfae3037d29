//! The executor and the apply loop on the in-memory engine: call counts, ordering, failures
//! that stay within their service, and jobs.
//!
//! `apply` reads the wall clock, so every project here sets `x-berth: {min_ready: 0s}`: a
//! started container passes the readiness gate on the next round instead of after 5 s.
//! A stable revision's image is pinned by a never-started container (`berth.pin` label);
//! [`replicas`] leaves those out.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use berth::apply::{ApplyOptions, ApplyReport, apply};
use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
use berth::engine::RunState;
use berth::engine::fake::{FakeContainer, FakeEngine, Fault};
use berth::reconcile::execute::PIN_LABEL;

fn desired(yaml: &str) -> DesiredState {
    let l = load_inline(yaml, &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        timeout: Duration::from_millis(300),
        poll: Duration::from_millis(10),
        parallelism: 1,
        ..ApplyOptions::default()
    }
}

async fn run(engine: &Arc<FakeEngine>, d: &DesiredState) -> ApplyReport {
    apply(
        engine,
        d,
        opts(),
        &Arc::new(AtomicBool::new(false)),
        None,
        |_| {},
    )
    .await
    .expect("apply")
}

/// The engine's containers except pin containers.
fn replicas(engine: &FakeEngine) -> Vec<FakeContainer> {
    engine
        .containers()
        .into_iter()
        .filter(|c| !c.spec.labels.contains_key(PIN_LABEL))
        .collect()
}

/// `yaml` (a project) with readiness holds of zero (see the module doc).
fn desired_fast(yaml: &str) -> DesiredState {
    desired(&format!("x-berth: {{min_ready: 0s}}\n{yaml}"))
}

const STACK: &str =
    "name: shop\nservices:\n  a: {image: 'app:1'}\n  b: {image: 'app:1'}\n  c: {image: 'tool:2'}\n";

async fn run_with(
    engine: &Arc<FakeEngine>,
    d: &DesiredState,
    store: &berth::store::Store,
) -> ApplyReport {
    apply(
        engine,
        d,
        // Converging runs: a bound a loaded CI machine cannot hit (300 ms was, at load 8).
        ApplyOptions {
            timeout: Duration::from_secs(20),
            ..opts()
        },
        &Arc::new(AtomicBool::new(false)),
        Some(store),
        |_| {},
    )
    .await
    .expect("apply")
}

#[tokio::test]
async fn cold_deploy_pulls_once_per_image_and_a_converged_round_costs_one_call() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_remote_image("app:1", "sha256:app1");
    engine.add_remote_image("tool:2", "sha256:tool2");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let d = desired_fast(STACK);
    let r = run_with(&engine, &d, &store).await;
    assert!(r.ok(), "{r:?}");
    let calls = engine.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("pull_image")).count(),
        2,
        "{calls:?}"
    );
    let first_container = calls
        .iter()
        .position(|c| c.starts_with("create_container"))
        .unwrap();
    let last_pull = calls
        .iter()
        .rposition(|c| c.starts_with("pull_image"))
        .unwrap();
    assert!(
        last_pull < first_container,
        "every pull happens before any container: {calls:?}"
    );
    let running = replicas(&engine);
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|c| c.state == RunState::Running));
    assert!(
        engine
            .containers()
            .iter()
            .all(|c| c.spec.image.starts_with("sha256:")),
        "created from image IDs"
    );
    // Each service's stable revision is pinned: a container that is never started.
    let pins: Vec<(String, RunState)> = engine
        .containers()
        .into_iter()
        .filter(|c| c.spec.labels.contains_key(PIN_LABEL))
        .map(|c| (c.name, c.state))
        .collect();
    assert_eq!(
        pins,
        [
            ("berth-pin.shop.a.r1".to_string(), RunState::Created),
            ("berth-pin.shop.b.r1".to_string(), RunState::Created),
            ("berth-pin.shop.c.r1".to_string(), RunState::Created),
        ]
    );

    // The next pass reads the records the first one saved: nothing to do or to record.
    engine.clear_calls();
    let r = run_with(&engine, &d, &store).await;
    assert!(r.ok() && r.steps == 0, "{r:?}");
    // A process's first round also lists the inventory once, for its housekeeping sweep (pin
    // tags no record owns, networks of pruned projects); a no-op round after it is one call.
    assert_eq!(
        engine.calls(),
        [
            "list_containers",
            "list_networks",
            "list_volumes",
            "list_images"
        ],
        "a no-op first round: the containers and the housekeeping inventory"
    );
}

#[tokio::test]
async fn a_failing_service_does_not_stop_the_others() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    engine.add_image("tool:2", "sha256:tool2");
    engine.fail_next(
        "create_container shop-b-1",
        Fault::Failed("disk full".into()),
    );
    let r = run(&engine, &desired_fast(STACK)).await;
    assert!(!r.ok());
    assert_eq!(r.failures.len(), 1, "{r:?}");
    assert_eq!(r.failures[0].step.to_string(), "shop/b  create shop-b-1");
    // The engine's error travels typed, and its words reach the report.
    assert!(
        matches!(
            r.failures[0].error.engine(),
            Some(berth::engine::EngineError::Failed { message, .. }) if message == "disk full"
        ),
        "{:?}",
        r.failures[0].error
    );
    assert!(r.failures[0].error.to_string().contains("disk full"));
    let names: Vec<String> = replicas(&engine).into_iter().map(|c| c.name).collect();
    assert!(
        names.contains(&"shop-a-1".to_string()) && names.contains(&"shop-c-1".to_string()),
        "{names:?}"
    );
    // The next apply finishes the job.
    let r = run(&engine, &desired_fast(STACK)).await;
    assert!(r.ok(), "{r:?}");
}

#[tokio::test]
async fn a_failed_pull_stops_nothing_and_is_reported() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let old = desired_fast("name: shop\nservices:\n  a: {image: 'app:1'}\n");
    assert!(run_with(&engine, &old, &store).await.ok());
    // app:2 cannot be pulled: the running app:1 container must stay, untouched.
    let new = desired_fast("name: shop\nservices:\n  a: {image: 'app:2'}\n");
    engine.clear_calls();
    let r = run_with(&engine, &new, &store).await;
    assert!(!r.ok());
    assert_eq!(r.failures.len(), 1, "{r:?}");
    assert_eq!(
        r.failures[0].step.to_string(),
        "shop/a  pull app:2",
        "{r:?}"
    );
    let changes: Vec<String> = engine
        .calls()
        .into_iter()
        .filter(|c| {
            ["create_", "start_", "stop_", "remove_", "rename_"]
                .iter()
                .any(|op| c.starts_with(op))
        })
        .collect();
    assert!(changes.is_empty(), "nothing changed: {changes:?}");
    assert_eq!(replicas(&engine).len(), 1);
    let a = engine.container("shop-a-1").expect("still there");
    assert_eq!(
        (a.state, a.spec.image.as_str()),
        (RunState::Running, "sha256:app1")
    );
}

#[tokio::test]
async fn a_job_runs_before_its_dependents_and_its_failure_blocks_them() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    let d = desired(
        "name: shop\nservices:\n  migrate: {image: 'app:1', restart: 'no'}\n  web:\n    image: 'app:1'\n    depends_on: {migrate: {condition: service_completed_successfully}}\n",
    );
    // The job starts; web waits (the fake's job keeps running until we end it).
    let r = run(&engine, &d).await;
    assert!(!r.ok() && r.waiting.len() == 2, "{r:?}");
    assert!(engine.container("shop-web-1").is_none());
    engine.set_logs("shop-migrate-1", "migrating\nerror: table exists\n");
    engine.kill("shop-migrate-1", 3);
    let r = run(&engine, &d).await;
    assert_eq!(r.blocked.len(), 2, "{r:?}");
    let (_, logs) = &r.blocked[0];
    assert!(
        logs.as_deref().unwrap_or_default().contains("table exists"),
        "{r:?}"
    );
    assert!(
        engine.container("shop-web-1").is_none(),
        "web must not start after a failed job"
    );
}

#[tokio::test]
async fn engine_unreachable_while_observing_is_an_error_not_a_state() {
    let engine = Arc::new(FakeEngine::new());
    engine.fail_next("list_containers", Fault::Unreachable);
    let e = apply(
        &engine,
        &desired(STACK),
        opts(),
        &Arc::new(AtomicBool::new(false)),
        None,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(format!("{e:#}").contains("observe"), "{e:#}");
}

#[tokio::test]
async fn an_empty_desired_state_is_refused_while_managed_containers_run() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    engine.add_image("tool:2", "sha256:tool2");
    assert!(run(&engine, &desired_fast(STACK)).await.ok());
    let empty = desired("name: shop\nservices: {}\n");
    let e = apply(
        &engine,
        &empty,
        opts(),
        &Arc::new(AtomicBool::new(false)),
        None,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("refusing to remove them all"), "{e}");
    assert_eq!(replicas(&engine).len(), 3, "nothing was removed");
    let allowed = ApplyOptions {
        allow_empty: true,
        ..opts()
    };
    let r = apply(
        &engine,
        &empty,
        allowed,
        &Arc::new(AtomicBool::new(false)),
        None,
        |_| {},
    )
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(replicas(&engine).is_empty());
}

#[tokio::test]
async fn a_job_run_outlives_its_container_through_the_store() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let d = desired_fast(
        "name: shop\nservices:\n  migrate: {image: 'app:1', restart: 'no'}\n  web:\n    image: 'app:1'\n    depends_on: {migrate: {condition: service_completed_successfully}}\n",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let _ = apply(&engine, &d, opts(), &stop, Some(&store), |_| {})
        .await
        .unwrap();
    engine.kill("shop-migrate-1", 0);
    let r = apply(&engine, &d, opts(), &stop, Some(&store), |_| {})
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(
        store
            .load("shop", "migrate")
            .unwrap()
            .job_done(&d.projects["shop"].services["migrate"].spec_hash)
    );
    // Removed by hand: the job is not run again.
    engine.remove_by_hand("shop-migrate-1");
    engine.clear_calls();
    let r = apply(&engine, &d, opts(), &stop, Some(&store), |_| {})
        .await
        .unwrap();
    assert!(r.ok() && r.steps == 0, "{r:?}");
    assert!(
        !engine.calls().iter().any(|c| c.contains("migrate")),
        "{:?}",
        engine.calls()
    );
}

#[tokio::test]
async fn a_pin_holder_left_by_a_lost_data_dir_is_replaced_not_trusted() {
    use berth::engine::{ContainerCreate, Engine};
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    engine.add_image("app:0", "sha256:older");
    // A holder of the name r1's pin will use, from before the data dir was lost, holding
    // another image.
    engine
        .create_container(&ContainerCreate {
            name: "berth-pin.shop.web.r1".into(),
            image: "sha256:older".into(),
            ..ContainerCreate::default()
        })
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let d = desired_fast("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    let r = apply(
        &engine,
        &d,
        opts(),
        &Arc::new(AtomicBool::new(false)),
        Some(&store),
        |_| {},
    )
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    let holder = engine
        .inspect_container("berth-pin.shop.web.r1")
        .await
        .unwrap();
    assert_eq!(holder.image_id, "sha256:app1");
}

/// Project `shop` on disk with built services `a`, `b`, `c` (each `build: ./<name>`).
fn built_stack() -> (tempfile::TempDir, DesiredState) {
    let t = tempfile::tempdir().unwrap();
    let mut yaml = String::from("name: shop\nx-berth: {min_ready: 0s}\nservices:\n");
    for s in ["a", "b", "c"] {
        yaml.push_str(&format!("  {s}: {{build: ./{s}}}\n"));
        std::fs::create_dir_all(t.path().join(s)).unwrap();
        std::fs::write(
            t.path().join(s).join("Dockerfile"),
            format!("FROM scratch\nLABEL s={s}\n"),
        )
        .unwrap();
    }
    std::fs::write(t.path().join("compose.yaml"), yaml).unwrap();
    let l = berth::desired::load(t.path(), &LoadOptions::default());
    let d = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
    (t, d)
}

#[tokio::test]
async fn builds_run_two_at_a_time_whatever_the_service_parallelism() {
    let (_t, d) = built_stack();
    let engine = Arc::new(FakeEngine::new());
    engine.set_build_time(Duration::from_millis(100));
    let report = apply(
        &engine,
        &d,
        ApplyOptions {
            timeout: Duration::from_secs(5),
            parallelism: 8,
            ..opts()
        },
        &Arc::new(AtomicBool::new(false)),
        None,
        |_| {},
    )
    .await
    .expect("apply");
    assert!(report.converged, "{report:?}");
    let builds = engine
        .calls()
        .iter()
        .filter(|c| c.starts_with("build_image"))
        .count();
    assert_eq!(builds, 3);
    assert_eq!(
        engine.builds_peak(),
        berth::reconcile::execute::BUILD_PARALLELISM
    );
}

#[tokio::test]
async fn a_failed_build_is_quarantined_through_the_store_and_not_built_again() {
    let (_t, d) = built_stack();
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let engine = Arc::new(FakeEngine::new());
    let a = d.projects["shop"].services["a"].image.clone().unwrap();
    engine.fail_next(
        &format!("build_image {a}"),
        Fault::BuildFailed(
            "COPY failed: no such file".into(),
            Some("Step 1/2 : FROM scratch".into()),
        ),
    );
    let report = run_with(&engine, &d, &store).await;
    assert!(!report.converged);
    let failed = report
        .events
        .iter()
        .find(|e| e.service == "a" && e.kind == berth::reconcile::event::EventKind::RolloutFailed)
        .unwrap_or_else(|| panic!("{:#?}", report.events));
    assert!(
        failed
            .message
            .contains("image build failed: COPY failed: no such file"),
        "{}",
        failed.message
    );
    assert_eq!(failed.logs.as_deref(), Some("Step 1/2 : FROM scratch"));
    let names: Vec<String> = replicas(&engine).into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        vec!["shop-b-1", "shop-c-1"],
        "b and c run; a has nothing"
    );

    // A later apply (a new process: only the store remembers) does not build it again.
    engine.clear_calls();
    let report = run_with(&engine, &d, &store).await;
    assert!(
        !engine.calls().iter().any(|c| c.starts_with("build_image")),
        "{:#?}",
        engine.calls()
    );
    assert!(
        report
            .blocked
            .iter()
            .any(|(n, _)| n.to_string().starts_with("shop/a  blocked: revision"))
    );
    assert!(
        store
            .load("shop", "a")
            .unwrap()
            .is_quarantined(&d.projects["shop"].services["a"].spec_hash)
    );
}

/// Catches the first round's result, then stops the controller.
struct FirstRound {
    result: std::sync::Mutex<Option<berth::controller::RoundResult>>,
    stop: Arc<AtomicBool>,
    wake: berth::controller::Controller,
}

impl berth::controller::RoundObserver for FirstRound {
    fn round(&self, report: &berth::controller::RoundReport<'_>) {
        let mut r = self.result.lock().unwrap();
        if r.is_none() {
            *r = Some(report.result.clone());
        }
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.trigger();
    }
}

/// Defect 1 of issue 13: a record that cannot be read reached the status as "failed to read
/// …/web.json" without the operating system's reason. (A directory stands in for the file:
/// tests may run as root, which reads any file whatever its mode.)
#[tokio::test]
async fn an_unreadable_record_names_its_cause_in_the_round_error() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    std::fs::create_dir_all(data.path().join("state/shop/a.json")).unwrap();
    let d = desired_fast("name: shop\nservices:\n  a: {image: 'app:1'}\n");
    let stop = Arc::new(AtomicBool::new(false));
    let wakeups = berth::controller::Wakeups::new();
    let observer = Arc::new(FirstRound {
        result: std::sync::Mutex::new(None),
        stop: stop.clone(),
        wake: wakeups.handle(),
    });
    let load = move || berth::desired::Loaded {
        state: Some(d.clone()),
        diagnostics: Default::default(),
        projects: Vec::new(),
        root: std::path::PathBuf::from("/srv/stacks"),
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        berth::controller::run(
            engine.clone(),
            load,
            berth::controller::RunOptions::default(),
            stop,
            wakeups,
            Some(store),
            Some(observer.clone() as Arc<dyn berth::controller::RoundObserver>),
        ),
    )
    .await
    .expect("the controller stops after its first round");
    let result = observer.result.lock().unwrap().clone();
    let Some(berth::controller::RoundResult::Error(message)) = result else {
        panic!("expected a round error, got {result:?}");
    };
    assert!(message.contains("a.json"), "{message}");
    // The cause, not only the operation: "Is a directory (os error 21)".
    assert!(message.contains("os error"), "{message}");
}

/// Issue 14 item 6: `--prune` removed a pruned project's containers but never the networks
/// berth created for it. They go once the containers are gone (in the same pass); a network
/// berth did not create and the project's volumes stay.
#[tokio::test]
async fn prune_removes_the_networks_berth_created_once_the_containers_are_gone() {
    use berth::engine::{Engine, NetworkCreate};
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    let shop = desired_fast(
        "name: shop\nservices:\n  web: {image: 'app:1', networks: [front, default], volumes: ['data:/d']}\nnetworks:\n  front: {}\nvolumes:\n  data: {}\n",
    );
    assert!(run(&engine, &shop).await.ok());
    // Someone else's network in the same project's name space: not berth's.
    engine
        .create_network(&NetworkCreate {
            name: "shop_theirs".into(),
            driver: None,
            driver_opts: Default::default(),
            internal: false,
            labels: [("com.docker.compose.project".to_string(), "shop".to_string())].into(),
            ipam: None,
            enable_ipv6: false,
            attachable: false,
        })
        .await
        .unwrap();
    let names = |engine: Arc<FakeEngine>| async move {
        let mut n: Vec<String> = engine
            .list_networks()
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(engine.clone()).await,
        ["shop_default", "shop_front", "shop_theirs"]
    );
    let other = desired_fast("name: other\nservices:\n  x: {image: 'app:1'}\n");
    // Without --prune nothing of shop goes.
    assert!(run(&engine, &other).await.ok());
    assert_eq!(names(engine.clone()).await.len(), 4, "other_default added");
    let pruned = apply(
        &engine,
        &other,
        ApplyOptions {
            plan: berth::reconcile::plan::PlanOptions { prune: true },
            ..opts()
        },
        &Arc::new(AtomicBool::new(false)),
        None,
        |_| {},
    )
    .await
    .expect("apply");
    assert!(pruned.ok(), "{pruned:?}");
    assert!(
        !replicas(&engine)
            .iter()
            .any(|c| c.name.starts_with("shop-")),
        "shop's containers are removed"
    );
    assert_eq!(
        names(engine.clone()).await,
        ["other_default", "shop_theirs"]
    );
    let volumes: Vec<String> = engine
        .list_volumes()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(volumes, ["shop_data"], "volumes are never removed");
}

/// Issue 14 item 8: a kill between saving a record without a pin and the unpin left the pin
/// tag and its holder behind for good; a pin made before a kill saved its record likewise.
/// The next process's first round sweeps every pin tag (and holder) of its projects that no
/// record owns, and only those.
#[tokio::test]
async fn pins_no_record_owns_are_swept_on_the_next_run() {
    use berth::engine::{ContainerCreate, Engine};
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1", "sha256:app1");
    engine.add_image("app:0", "sha256:app0");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let d = desired_fast("name: shop\nservices:\n  web: {image: 'app:1'}\n");
    assert!(run_with(&engine, &d, &store).await.ok());
    // What a kill during the unpin of r0 leaves: the tag and its never-started holder.
    engine
        .tag_image("sha256:app0", "berth-pin/shop/web", "r0")
        .await
        .unwrap();
    engine
        .create_container(&ContainerCreate {
            name: "berth-pin.shop.web.r0".into(),
            image: "sha256:app0".into(),
            labels: [
                ("berth.managed".to_string(), "true".to_string()),
                (PIN_LABEL.to_string(), "berth-pin/shop/web:r0".to_string()),
            ]
            .into(),
            ..ContainerCreate::default()
        })
        .await
        .unwrap();
    // Another data directory's project (another berth before this one): not this berth's to judge.
    engine
        .tag_image("sha256:app0", "berth-pin/elsewhere/api", "r1")
        .await
        .unwrap();
    let pins = |engine: Arc<FakeEngine>| async move {
        let mut tags: Vec<String> = engine
            .list_images()
            .await
            .unwrap()
            .into_iter()
            .flat_map(|i| i.tags)
            .filter(|t| t.starts_with("berth-pin/"))
            .collect();
        tags.sort();
        let holders: Vec<String> = engine
            .containers()
            .into_iter()
            .filter(|c| c.spec.labels.contains_key(PIN_LABEL))
            .map(|c| c.name)
            .collect();
        (tags, holders)
    };
    assert_eq!(
        pins(engine.clone()).await,
        (
            vec![
                "berth-pin/elsewhere/api:r1".to_string(),
                "berth-pin/shop/web:r0".to_string(),
                "berth-pin/shop/web:r1".to_string()
            ],
            vec![
                "berth-pin.shop.web.r1".to_string(),
                "berth-pin.shop.web.r0".to_string()
            ]
        )
    );
    let r = run_with(&engine, &d, &store).await;
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        pins(engine.clone()).await,
        (
            vec![
                "berth-pin/elsewhere/api:r1".to_string(),
                "berth-pin/shop/web:r1".to_string()
            ],
            vec!["berth-pin.shop.web.r1".to_string()]
        ),
        "of shop's pins only the one the record owns is left; another project's is untouched"
    );
    // Nothing else to sweep: the next pass only lists.
    engine.clear_calls();
    let r = run_with(&engine, &d, &store).await;
    assert!(r.ok() && r.steps == 0, "{r:?}");
}
