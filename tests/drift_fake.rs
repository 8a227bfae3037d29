//! Issue 14, bug 1 on the in-memory engine: a candidate that lacks a network its spec asks for
//! (berth killed between the create call and the network connect) is repaired (connected)
//! before it is promoted; one that lacks a published port is replaced.
//!
//! The gate needs the candidate ready for `min_ready: 1s` (wall clock, as `apply` reads it): a
//! first `apply` with a short timeout leaves the rollout inside the gate, as a kill would; the
//! candidate then loses a network, and the next `apply` (a restarted berth) must converge to a
//! candidate on every network.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use berth::apply::{ApplyOptions, ApplyReport, apply};
use berth::desired::model::DesiredState;
use berth::desired::{LoadOptions, load_inline};
use berth::engine::RunState;
use berth::engine::fake::{FakeContainer, FakeEngine};
use berth::reconcile::execute::PIN_LABEL;

const V1: &str = "name: shop
x-berth: {min_ready: 1s}
services:
  web:
    image: 'app:{v}'
    ports: ['127.0.0.1:8080:80']
    networks: [front, back]
networks:
  front: {}
  back: {}
";

fn desired(v: u32) -> DesiredState {
    let l = load_inline(&V1.replace("{v}", &v.to_string()), &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

async fn run(
    engine: &Arc<FakeEngine>,
    d: &DesiredState,
    store: &berth::store::Store,
    timeout: Duration,
) -> ApplyReport {
    let opts = ApplyOptions {
        timeout,
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

fn replicas(engine: &FakeEngine) -> Vec<FakeContainer> {
    engine
        .containers()
        .into_iter()
        .filter(|c| !c.spec.labels.contains_key(PIN_LABEL))
        .collect()
}

fn networks(c: &FakeContainer) -> Vec<String> {
    let mut n: Vec<String> = c
        .spec
        .networks
        .iter()
        .map(|n| n.network.clone())
        .filter(|n| !c.detached.contains(n))
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn a_candidate_missing_a_network_is_connected_before_it_is_promoted() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_remote_image("app:1", "sha256:app1");
    engine.add_remote_image("app:2", "sha256:app2");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let r = run(&engine, &desired(1), &store, Duration::from_secs(10)).await;
    assert!(r.ok(), "{r:?}");

    // The rollout to app:2 stops inside the gate, as when berth is killed there.
    let r = run(&engine, &desired(2), &store, Duration::from_millis(300)).await;
    assert!(!r.ok(), "still in the gate: {r:?}");
    let candidate = replicas(&engine)
        .into_iter()
        .find(|c| c.spec.image == "sha256:app2")
        .expect("a candidate");
    engine.detach_network(&candidate.id, "shop_back");

    let r = run(&engine, &desired(2), &store, Duration::from_secs(10)).await;
    assert!(r.ok(), "{r:?}");
    let web = replicas(&engine);
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(web[0].name, "shop-web-1");
    assert_eq!(web[0].spec.image, "sha256:app2");
    assert_eq!(web[0].state, RunState::Running);
    assert_eq!(networks(&web[0]), ["shop_back", "shop_front"]);
    assert_eq!(
        web[0].id, candidate.id,
        "the candidate was repaired, not replaced"
    );
    let calls = engine.calls();
    let connect = format!("connect_network {} to shop_back", candidate.name);
    // A published port makes the rollout stop-first: the candidate has its name from the
    // start, and its promotion shows as the pin of r2.
    let promoted = "tag_image sha256:app2 berth-pin/shop/web:r2";
    let (c, p) = (
        calls.iter().position(|c| *c == connect),
        calls.iter().position(|c| c == promoted),
    );
    assert!(c.is_some() && c < p, "connected, then promoted: {calls:?}");
}

#[tokio::test]
async fn a_candidate_without_its_published_port_is_replaced() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_remote_image("app:1", "sha256:app1");
    engine.add_remote_image("app:2", "sha256:app2");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let r = run(&engine, &desired(1), &store, Duration::from_secs(10)).await;
    assert!(r.ok(), "{r:?}");
    let r = run(&engine, &desired(2), &store, Duration::from_millis(300)).await;
    assert!(!r.ok(), "still in the gate: {r:?}");
    let candidate = replicas(&engine)
        .into_iter()
        .find(|c| c.spec.image == "sha256:app2")
        .expect("a candidate");
    engine.unbind_ports(&candidate.id);

    let r = run(&engine, &desired(2), &store, Duration::from_secs(10)).await;
    assert!(r.ok(), "{r:?}");
    let web = replicas(&engine);
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(web[0].spec.image, "sha256:app2");
    assert!(!web[0].unbound);
    assert_ne!(web[0].id, candidate.id, "the candidate was replaced");
}

#[tokio::test]
async fn a_stable_replica_that_lost_a_network_is_reconnected() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_remote_image("app:1", "sha256:app1");
    let data = tempfile::tempdir().unwrap();
    let store = berth::store::Store::open(data.path()).unwrap();
    let r = run(&engine, &desired(1), &store, Duration::from_secs(10)).await;
    assert!(r.ok(), "{r:?}");
    let before = replicas(&engine);
    assert_eq!(networks(&before[0]), ["shop_back", "shop_front"]);
    engine.detach_network(&before[0].id, "shop_front");

    let r = run(&engine, &desired(1), &store, Duration::from_secs(10)).await;
    assert!(r.ok(), "{r:?}");
    let after = replicas(&engine);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(after[0].state, RunState::Running);
    assert_eq!(networks(&after[0]), ["shop_back", "shop_front"]);
}
