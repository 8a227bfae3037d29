//! `berth prune PROJECT` on the in-memory engine: one orphaned project goes — its
//! containers, the networks berth created for it, its pins and its records — and nothing of
//! any other project; a project still desired is refused untouched.
//!
//! Every project sets `x-berth: {min_ready: 0s}` so that `apply` (wall clock) converges in
//! a few rounds.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use berth::apply::{ApplyOptions, apply};
use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
use berth::engine::Engine;
use berth::engine::fake::FakeEngine;
use berth::prune::{PruneError, Watch, prune};
use berth::reconcile::execute::PIN_LABEL;
use berth::reconcile::plan::{Action, Plan, Preview, PruneOptions, PruneRefusal};
use berth::store::Store;

fn desired(yaml: &str) -> DesiredState {
    let l = load_inline(
        &format!("x-berth: {{min_ready: 0s}}\n{yaml}"),
        &LoadOptions::default(),
    );
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// Answers the preview with `yes` and keeps what it saw.
#[derive(Default)]
struct Seen {
    no: bool,
    previews: Vec<Preview>,
    plans: Vec<Plan>,
}

impl Watch for Seen {
    fn confirm(&mut self, preview: &Preview) -> bool {
        self.previews.push(preview.clone());
        !self.no
    }
    fn plan(&mut self, plan: &Plan) {
        self.plans.push(plan.clone());
    }
}

async fn converge(engine: &Arc<FakeEngine>, d: &DesiredState, store: &Store) {
    let r = apply(
        engine,
        d,
        ApplyOptions {
            timeout: Duration::from_secs(20),
            poll: Duration::from_millis(10),
            parallelism: 1,
            ..ApplyOptions::default()
        },
        &Arc::new(AtomicBool::new(false)),
        Some(store),
        |_| {},
    )
    .await
    .expect("apply");
    assert!(r.ok(), "{r:?}");
}

/// (container name, project) of every container, pins included.
fn containers(engine: &FakeEngine) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = engine
        .containers()
        .into_iter()
        .map(|c| {
            let project = c
                .spec
                .labels
                .get("com.docker.compose.project")
                .cloned()
                .unwrap_or_default();
            (c.name, project)
        })
        .collect();
    v.sort();
    v
}

async fn networks(engine: &FakeEngine) -> Vec<String> {
    let mut n: Vec<String> = engine
        .list_networks()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    n.sort();
    n
}

fn shop(image: &str) -> String {
    format!(
        "name: shop\nservices:\n  web: {{image: '{image}', networks: [front]}}\n  db: {{image: 'db:1'}}\nnetworks:\n  front: {{}}\n"
    )
}

const OTHER: &str = "name: other\nservices:\n  x: {image: 'app:1'}\n";

/// shop (two revisions of web, so r1 is pinned) and other, both converged; then shop leaves
/// the desired state.
async fn two_projects() -> (Arc<FakeEngine>, tempfile::TempDir, Store) {
    let engine = Arc::new(FakeEngine::new());
    for (r, id) in [
        ("app:1", "sha256:app1"),
        ("app:2", "sha256:app2"),
        ("db:1", "sha256:db1"),
    ] {
        engine.add_remote_image(r, id);
    }
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    converge(&engine, &desired(&shop("app:1")), &store).await;
    converge(&engine, &desired(&shop("app:2")), &store).await;
    converge(&engine, &desired(OTHER), &store).await;
    (engine, data, store)
}

#[tokio::test]
async fn prune_removes_one_orphaned_project_and_nothing_else() {
    let (engine, _data, store) = two_projects().await;
    let before = containers(&engine);
    assert!(
        engine
            .containers()
            .iter()
            .any(|c| c.spec.labels.contains_key(PIN_LABEL) && c.name == "berth-pin.shop.web.r1"),
        "shop's r1 is pinned before: {before:?}"
    );
    assert!(networks(&engine).await.contains(&"shop_front".to_string()));
    assert!(store.services().unwrap().iter().any(|(p, _)| p == "shop"));
    let others: Vec<(String, String)> = before
        .iter()
        .filter(|(n, p)| p != "shop" && !n.starts_with("berth-pin.shop."))
        .cloned()
        .collect();

    let mut seen = Seen::default();
    let report = prune(
        &engine,
        &desired(OTHER),
        "shop",
        PruneOptions::default(),
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("prune");
    assert!(report.ok(), "{report:?}");
    assert!(!report.nothing());
    // Typed steps, only of shop: containers, then networks, pins.
    let actions: Vec<&Action> = report.steps.iter().map(|s| &s.action).collect();
    assert!(
        report.steps.iter().all(|s| s.project == "shop"),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::RemoveNetwork { name } if name == "shop_front")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| matches!(a, Action::Unpin { .. })),
        "{actions:?}"
    );
    assert!(!seen.plans.is_empty());
    // Shown once, before the first step, with what went.
    assert_eq!(seen.previews.len(), 1);
    let shown = seen.previews[0].to_string();
    assert!(
        shown.starts_with("berth prune shop removes:\n  containers shop-db-1, shop-web-1\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  networks   shop_default, shop_front\n"),
        "{shown}"
    );
    assert!(shown.contains("berth-pin/shop/web:r1"), "{shown}");
    assert!(shown.ends_with("  records    db, web\n"), "{shown}");

    assert_eq!(containers(&engine), others, "only shop's containers went");
    let nets = networks(&engine).await;
    assert!(nets.iter().all(|n| !n.starts_with("shop_")), "{nets:?}");
    assert!(nets.contains(&"other_default".to_string()), "{nets:?}");
    let mut forgotten = report.forgotten.clone();
    forgotten.sort();
    assert_eq!(forgotten, ["db", "web"]);
    assert!(
        store.services().unwrap().iter().all(|(p, _)| p != "shop"),
        "shop's records are gone: {:?}",
        store.services()
    );
    assert!(!store.dir().join("shop").exists());
    assert!(store.services().unwrap().iter().any(|(p, _)| p == "other"));

    // Nothing of shop is left: a second prune finds nothing and does nothing.
    let mut seen = Seen::default();
    let again = prune(
        &engine,
        &desired(OTHER),
        "shop",
        PruneOptions::default(),
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("prune again");
    assert!(again.nothing(), "{again:?}");
    assert!(seen.previews.is_empty(), "nothing to show, nothing asked");
    assert_eq!(containers(&engine), others);
}

#[tokio::test]
async fn prune_refuses_a_desired_project_and_touches_nothing() {
    let (engine, _data, store) = two_projects().await;
    let before = containers(&engine);
    let nets = networks(&engine).await;
    let calls = engine.calls().len();
    let mut seen = Seen::default();
    let err = prune(
        &engine,
        &desired(OTHER),
        "other",
        PruneOptions {
            force: false,
            volumes: true,
        },
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect_err("refused");
    assert!(seen.previews.is_empty() && seen.plans.is_empty());
    let PruneError::Refused(PruneRefusal::Desired { project }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(project, "other");
    assert!(
        err.to_string().contains("still in the desired state"),
        "{err}"
    );
    assert_eq!(engine.calls().len(), calls, "not even observed");
    assert_eq!(containers(&engine), before);
    assert_eq!(networks(&engine).await, nets);
    assert!(store.services().unwrap().iter().any(|(p, _)| p == "other"));
}

#[tokio::test]
async fn a_declined_preview_removes_nothing() {
    let (engine, _data, store) = two_projects().await;
    let before = containers(&engine);
    let nets = networks(&engine).await;
    let mut seen = Seen {
        no: true,
        ..Seen::default()
    };
    let report = prune(
        &engine,
        &desired(OTHER),
        "shop",
        PruneOptions::default(),
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("prune");
    assert!(report.declined && !report.ok(), "{report:?}");
    assert!(report.steps.is_empty() && seen.plans.is_empty());
    assert_eq!(seen.previews.len(), 1);
    assert_eq!(containers(&engine), before);
    assert_eq!(networks(&engine).await, nets);
    assert!(store.services().unwrap().iter().any(|(p, _)| p == "shop"));
}

const VOL: &str = "name: vol\nservices:\n  db: {image: 'db:1', volumes: ['data:/var/lib/db']}\nvolumes:\n  data: {}\n";
const VOL2: &str = "name: vol2\nservices:\n  db: {image: 'db:1', volumes: ['data:/var/lib/db']}\nvolumes:\n  data: {}\n";

/// Projects vol and vol2, each with a named volume, converged; vol2 stays desired.
async fn two_with_volumes() -> (Arc<FakeEngine>, tempfile::TempDir, Store) {
    let engine = Arc::new(FakeEngine::new());
    engine.add_remote_image("db:1", "sha256:db1");
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    converge(&engine, &desired(VOL), &store).await;
    converge(&engine, &desired(VOL2), &store).await;
    (engine, data, store)
}

async fn volumes(engine: &FakeEngine) -> Vec<String> {
    let mut v: Vec<String> = engine
        .list_volumes()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn volumes_are_kept_unless_asked_and_then_only_the_pruned_projects() {
    let (engine, _data, store) = two_with_volumes().await;
    assert_eq!(volumes(&engine).await, ["vol2_data", "vol_data"]);
    let mut seen = Seen::default();
    let report = prune(
        &engine,
        &desired(VOL2),
        "vol",
        PruneOptions::default(),
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("prune");
    assert!(report.ok(), "{report:?}");
    assert_eq!(volumes(&engine).await, ["vol2_data", "vol_data"], "kept");
    assert_eq!(
        seen.previews[0].to_string(),
        indoc::indoc! {"
            berth prune vol removes:
              containers vol-db-1
              networks   vol_default
              images     berth-pin/vol/db:r1
              records    db
              kept       volumes vol_data (--volumes removes them and their data)
        "}
    );

    // Again with --volumes: only the volume is left of vol, and it goes; vol2's stays.
    let mut seen = Seen::default();
    let report = prune(
        &engine,
        &desired(VOL2),
        "vol",
        PruneOptions {
            force: false,
            volumes: true,
        },
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("prune --volumes");
    assert!(report.ok() && !report.nothing(), "{report:?}");
    assert_eq!(
        seen.previews[0].to_string(),
        "berth prune vol removes:\n  volumes    vol_data\n"
    );
    let actions: Vec<String> = report.steps.iter().map(|s| s.action.to_string()).collect();
    assert_eq!(actions, ["remove volume vol_data"]);
    assert_eq!(volumes(&engine).await, ["vol2_data"]);
}

#[tokio::test]
async fn force_prunes_a_desired_project_with_its_volumes_in_one_go() {
    let (engine, _data, store) = two_with_volumes().await;
    let opts = PruneOptions {
        force: true,
        volumes: true,
    };
    let mut seen = Seen::default();
    let report = prune(
        &engine,
        &desired(VOL2),
        "vol2",
        opts,
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("forced");
    assert!(report.ok(), "{report:?}");
    // The container goes before its volume, in the same round.
    let actions: Vec<String> = seen.plans[0]
        .steps
        .iter()
        .map(|s| s.action.to_string())
        .collect();
    assert!(
        actions.contains(&"remove vol2-db-1".to_string())
            && actions.contains(&"remove volume vol2_data".to_string()),
        "{actions:?}"
    );
    assert_eq!(volumes(&engine).await, ["vol_data"]);
    assert!(
        containers(&engine).iter().all(|(_, p)| p != "vol2"),
        "{:?}",
        containers(&engine)
    );
    assert!(store.services().unwrap().iter().all(|(p, _)| p != "vol2"));
}

#[tokio::test]
async fn a_prune_cut_short_by_a_failed_step_keeps_the_records_and_a_second_run_finishes() {
    let (engine, _data, store) = two_projects().await;
    engine.fail_next(
        "remove_network shop_front",
        berth::engine::fake::Fault::Failed("the engine said no".into()),
    );
    let first = prune(
        &engine,
        &desired(OTHER),
        "shop",
        PruneOptions::default(),
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut Seen::default(),
    )
    .await
    .expect("prune");
    assert!(!first.ok() && first.failures.len() == 1, "{first:?}");
    assert!(first.forgotten.is_empty());
    assert!(store.services().unwrap().iter().any(|(p, _)| p == "shop"));
    assert!(networks(&engine).await.contains(&"shop_front".to_string()));

    let mut seen = Seen::default();
    let second = prune(
        &engine,
        &desired(OTHER),
        "shop",
        PruneOptions::default(),
        Some(&store),
        &Arc::new(AtomicBool::new(false)),
        &mut seen,
    )
    .await
    .expect("prune again");
    assert!(second.ok(), "{second:?}");
    // What was left is shown: no container any more, the network, the pins, the records.
    let shown = seen.previews[0].to_string();
    assert!(!shown.contains("containers"), "{shown}");
    assert!(shown.contains("  networks   shop_front\n"), "{shown}");
    assert!(shown.contains("  records    db, web\n"), "{shown}");
    assert!(store.services().unwrap().iter().all(|(p, _)| p != "shop"));
    assert!(
        !networks(&engine)
            .await
            .iter()
            .any(|n| n.starts_with("shop_"))
    );
}
