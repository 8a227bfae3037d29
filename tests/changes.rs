//! `berth diff` (`berth::changes`): each desired service against the revision berth recorded
//! as running, as golden text. The records come from real rollouts on the in-memory engine.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use berth::apply::{ApplyOptions, apply};
use berth::changes::{compare, render};
use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
use berth::engine::fake::{FakeEngine, OnStart, Started};
use berth::reconcile::round::load_records;
use berth::store::Store;
use indoc::indoc;

fn desired(yaml: &str) -> DesiredState {
    let l = load_inline(yaml, &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// shop: web (image, environment, port) and a migrate job web waits for.
fn shop(image: &str, key: &str, port: u16, migrate: &str) -> DesiredState {
    desired(&format!(
        "name: shop\nx-berth: {{min_ready: 0s}}\nservices:\n  web:\n    image: '{image}'\n    environment: {{API_KEY: '{key}', MODE: prod}}\n    ports: ['127.0.0.1:{port}:8080']\n    depends_on: {{migrate: {{condition: service_completed_successfully}}}}\n  migrate:\n    image: 'app:1'\n    restart: 'no'\n    command: [migrate, '{migrate}']\n"
    ))
}

async fn converge(engine: &Arc<FakeEngine>, d: &DesiredState, store: &Store) {
    let opts = ApplyOptions {
        timeout: Duration::from_secs(20),
        poll: Duration::from_millis(10),
        parallelism: 1,
        ..ApplyOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let r = apply(engine, d, opts, &stop, Some(store), |_| {})
        .await
        .expect("apply");
    assert!(r.ok(), "{r:?}");
}

#[tokio::test]
async fn diff_says_what_the_desired_state_changes_field_by_field_with_values_hidden() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_remote_image("app:1", "sha256:app1");
    engine.add_remote_image("app:2", "sha256:app2");
    // The migration finishes at once.
    engine.on_start(Started::Name("shop-migrate-1".into()), OnStart::Exits(0));
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).unwrap();
    let d1 = shop("app:1", "one", 8080, "v1");
    converge(&engine, &d1, &store).await;

    // Nothing changed.
    let records = load_records(&store, &d1).unwrap();
    assert_eq!(
        render(&compare(&d1, &records, None)),
        indoc! {"
            shop/migrate  job r1: ran, no change
            shop/web  r1: no change
            No changes: every service runs its desired spec.
        "}
    );

    // A new image, a secret rotated, another port, a new migration; a project not deployed.
    let d2 = shop("app:2", "two", 9090, "v2");
    let mut both = d2.clone();
    let other = desired("name: other\nservices:\n  x: {image: 'app:1'}\n");
    both.projects.extend(other.projects);
    let records = load_records(&store, &both).unwrap();
    let entries = compare(&both, &records, None);
    assert_eq!(
        render(&entries),
        indoc! {"
            other/x  not deployed yet: the next apply deploys it
            shop/migrate  job r1 ran last; the desired spec runs as r2
            shop/web  r1 → desired: image app:1 → app:2; environment API_KEY changed (value hidden); ports +127.0.0.1:9090:8080/tcp -127.0.0.1:8080:8080/tcp
        "}
    );
    assert!(!render(&entries).contains("two"), "a value never shows");
    // One project only.
    assert_eq!(compare(&both, &records, Some("other")).len(), 1);

    // Rolled out, then back to d1's spec: r1 had it.
    converge(&engine, &d2, &store).await;
    let records = load_records(&store, &d1).unwrap();
    assert_eq!(
        render(&compare(&d1, &records, Some("shop"))),
        indoc! {"
            shop/migrate  job r1 ran already (r2 ran since): not run again
            shop/web  r2 → desired: image app:2 → app:1; environment API_KEY changed (value hidden); ports +127.0.0.1:8080:8080/tcp -127.0.0.1:9090:8080/tcp (the spec r1 had)
        "}
    );
}
