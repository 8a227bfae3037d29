//! The engine contract: what berth relies on from an [`Engine`], written once and run against
//! both the in-memory engine (`tests/engine_contract.rs`, plain `cargo test`) and Docker
//! (`tests/engine_contract_docker.rs`, the engine tier). When the fake and Docker disagree on
//! something berth decides by, one of these checks fails on one side.
//!
//! Each check takes a [`Harness`]: the engine, a unique name prefix, a label that marks
//! everything the check creates (the real harness removes by it), and an image that runs until
//! stopped. Where Docker's answers legitimately differ from the fake's (Docker answers a start
//! of a running container with success, the fake with `NotModified`), the contract states what
//! berth needs: the step counts as done.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::engine::{
    ContainerCreate, Engine, EngineError, EngineResult, NetworkAttach, NetworkCreate, PortBinding,
    RunState, VolumeCreate,
};

/// What a contract check runs against.
pub trait Harness {
    /// The engine under test.
    type E: Engine;
    /// The engine.
    fn engine(&self) -> &Self::E;
    /// A prefix no other test (or test run) uses; every name a check creates starts with it.
    fn prefix(&self) -> &str;
    /// `key=value` that every object a check creates carries.
    fn label(&self) -> (String, String);
    /// The ID of an image whose default command runs until it is stopped and that has
    /// `/bin/busybox` (the test images do).
    fn image(&self) -> String;
    /// A `since` for `events` that replays nothing from before the check began.
    fn since(&self) -> i64;
    /// Records a network or volume name for cleanup.
    fn created(&self, kind: &str, name: &str);
    /// Records an image tag for cleanup.
    fn tagged(&self, reference: &str);
}

const GRACE: Duration = Duration::from_secs(2);

fn labels<H: Harness>(h: &H) -> BTreeMap<String, String> {
    let (k, v) = h.label();
    BTreeMap::from([(k, v), ("berth.managed".to_owned(), "true".to_owned())])
}

fn filter<H: Harness>(h: &H) -> String {
    let (k, v) = h.label();
    format!("{k}={v}")
}

fn name<H: Harness>(h: &H, n: &str) -> String {
    format!("{}-{n}", h.prefix())
}

fn spec<H: Harness>(h: &H, n: &str) -> ContainerCreate {
    ContainerCreate {
        name: name(h, n),
        image: h.image(),
        labels: labels(h),
        ..ContainerCreate::default()
    }
}

/// The step is done: it succeeded, or the engine said it already was.
fn done(r: EngineResult<()>, what: &str) {
    if let Err(e) = r {
        assert!(e.is_already_done(), "{what}: {e}");
    }
}

async fn state<H: Harness>(h: &H, key: &str) -> RunState {
    h.engine().inspect_container(key).await.unwrap().state
}

/// Containers move created → running → exited and are gone after a remove; starting a running
/// container, stopping a stopped one and removing a removed one count as done.
pub async fn lifecycle<H: Harness>(h: &H) {
    let e = h.engine();
    let id = e.create_container(&spec(h, "life")).await.unwrap();
    assert_eq!(state(h, &id).await, RunState::Created);
    e.start_container(&id).await.unwrap();
    assert_eq!(state(h, &id).await, RunState::Running);
    done(e.start_container(&id).await, "start of a running container");
    e.stop_container(&id, GRACE, None).await.unwrap();
    let d = e.inspect_container(&id).await.unwrap();
    assert_eq!(d.state, RunState::Exited);
    assert!(
        d.exit_code.is_some(),
        "an exited container has an exit code"
    );
    done(
        e.stop_container(&id, GRACE, None).await,
        "stop of a stopped container",
    );
    e.remove_container(&id).await.unwrap();
    let listed = e.list_containers(&[filter(h)]).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let err = e.remove_container(&id).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    assert!(err.is_already_done());
}

/// Names and IDs both address a container; unknown ones are `NotFound`.
pub async fn names_and_ids_address_containers<H: Harness>(h: &H) {
    let e = h.engine();
    let n = name(h, "addr");
    let id = e.create_container(&spec(h, "addr")).await.unwrap();
    e.start_container(&n).await.unwrap();
    assert_eq!(e.inspect_container(&n).await.unwrap().id, id);
    assert_eq!(e.inspect_container(&id).await.unwrap().name, n);
    e.stop_container(&n, GRACE, None).await.unwrap();
    e.remove_container(&n).await.unwrap();
    let unknown = name(h, "nobody");
    for (op, err) in [
        ("start", e.start_container(&unknown).await.unwrap_err()),
        ("remove", e.remove_container(&unknown).await.unwrap_err()),
        (
            "inspect",
            e.inspect_container(&unknown).await.map(|_| ()).unwrap_err(),
        ),
        (
            "logs",
            e.logs_tail(&unknown, 5).await.map(|_| ()).unwrap_err(),
        ),
    ] {
        assert!(matches!(err, EngineError::NotFound { .. }), "{op}: {err}");
    }
}

/// A taken name is a `Conflict`, at create and at rename; a rename moves the name.
pub async fn taken_names_conflict_and_renames_move_names<H: Harness>(h: &H) {
    let e = h.engine();
    let a = e.create_container(&spec(h, "a")).await.unwrap();
    let err = e.create_container(&spec(h, "a")).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    assert!(!err.is_already_done());
    e.create_container(&spec(h, "b")).await.unwrap();
    let err = e.rename_container(&a, &name(h, "b")).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    e.rename_container(&a, &name(h, "c")).await.unwrap();
    assert_eq!(e.inspect_container(&a).await.unwrap().name, name(h, "c"));
    let err = e.inspect_container(&name(h, "a")).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    let mut names: Vec<String> = e
        .list_containers(&[filter(h)])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.sort();
    assert_eq!(names, [name(h, "b"), name(h, "c")]);
}

/// Removing a running container is a `Conflict` and not "already done": berth stops first.
pub async fn removing_a_running_container_conflicts<H: Harness>(h: &H) {
    let e = h.engine();
    let id = e.create_container(&spec(h, "busy")).await.unwrap();
    e.start_container(&id).await.unwrap();
    let err = e.remove_container(&id).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    assert!(!err.is_already_done());
    assert_eq!(state(h, &id).await, RunState::Running);
    e.stop_container(&id, GRACE, None).await.unwrap();
    e.remove_container(&id).await.unwrap();
}

/// Label filters select containers carrying any of them; others are left out.
pub async fn list_selects_by_any_label<H: Harness>(h: &H) {
    let e = h.engine();
    let (k, v) = h.label();
    let mut first = spec(h, "first");
    first
        .labels
        .insert("contract.group".into(), format!("{v}-1"));
    let mut second = spec(h, "second");
    second
        .labels
        .insert("contract.group".into(), format!("{v}-2"));
    let mut third = spec(h, "third");
    third
        .labels
        .insert("contract.group".into(), format!("{v}-3"));
    for s in [&first, &second, &third] {
        e.create_container(s).await.unwrap();
    }
    let names = |list: Vec<berth::engine::ContainerSummary>| {
        let mut v: Vec<String> = list.into_iter().map(|c| c.name).collect();
        v.sort();
        v
    };
    let one = e
        .list_containers(&[format!("contract.group={v}-1")])
        .await
        .unwrap();
    assert_eq!(names(one), [first.name.clone()]);
    let either = e
        .list_containers(&[
            format!("contract.group={v}-1"),
            format!("contract.group={v}-3"),
        ])
        .await
        .unwrap();
    assert_eq!(names(either), [first.name.clone(), third.name.clone()]);
    let all = e.list_containers(&[format!("{k}={v}")]).await.unwrap();
    assert_eq!(all.len(), 3);
    let c = all.iter().find(|c| c.name == second.name).unwrap();
    assert_eq!(c.labels["contract.group"], format!("{v}-2"));
    assert_eq!(c.image_id, h.image());
    assert_eq!(c.state, RunState::Created);
}

/// Networks: created with their labels, a taken name conflicts, containers on them list them
/// and get an address there while they run; a container whose network does not exist never
/// runs, and that is `Failed` (never `NotFound`, which would read as "already done").
pub async fn networks_hold_containers<H: Harness>(h: &H) {
    let e = h.engine();
    let net = name(h, "net");
    h.created("network", &net);
    let create = NetworkCreate {
        name: net.clone(),
        driver: None,
        driver_opts: BTreeMap::new(),
        internal: false,
        labels: labels(h),
        ipam: None,
        enable_ipv6: false,
        attachable: false,
    };
    e.create_network(&create).await.unwrap();
    let listed = e.list_networks().await.unwrap();
    let found = listed
        .iter()
        .find(|n| n.name == net)
        .expect("network listed");
    assert_eq!(found.labels, labels(h));
    let err = e.create_network(&create).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");

    let attach = |network: &str| NetworkAttach {
        network: network.to_owned(),
        aliases: vec!["web".into()],
        ipv4_address: None,
        ipv6_address: None,
    };
    let mut web = spec(h, "web");
    web.networks = vec![attach(&net)];
    web.ports = vec![PortBinding {
        target: 8080,
        protocol: "tcp".into(),
        host_ip: Some("127.0.0.1".into()),
        published: None,
        published_end: None,
    }];
    web.exposed = vec!["8080/tcp".into()];
    let id = e.create_container(&web).await.unwrap();
    let summary = e.list_containers(&[filter(h)]).await.unwrap();
    assert_eq!(summary[0].networks, std::slice::from_ref(&net));
    e.start_container(&id).await.unwrap();
    let d = e.inspect_container(&id).await.unwrap();
    assert!(d.ip_addresses.contains_key(&net), "{d:?}");
    assert_eq!(d.network_mode, "default");
    let (target, protocol, host_ip, host_port) = d.ports.first().cloned().expect("a port");
    assert_eq!((target, protocol.as_str()), (8080, "tcp"));
    assert_eq!(host_ip.as_deref(), Some("127.0.0.1"));
    assert_ne!(host_port, 0, "an ephemeral host port is bound");
    e.stop_container(&id, GRACE, None).await.unwrap();
    let d = e.inspect_container(&id).await.unwrap();
    assert!(
        d.ip_addresses.is_empty(),
        "a stopped container has no address: {d:?}"
    );
    assert!(
        d.ports.is_empty(),
        "a stopped container binds no port: {d:?}"
    );

    let mut lost = spec(h, "lost");
    lost.networks = vec![attach(&name(h, "no-such-net"))];
    let err = match e.create_container(&lost).await {
        Err(err) => err,
        Ok(id) => e.start_container(&id).await.unwrap_err(),
    };
    assert!(matches!(err, EngineError::Failed { .. }), "{err}");
    assert!(!err.is_already_done());
}

/// Volumes: a create of an existing volume succeeds and leaves one volume.
pub async fn volumes_are_created_once<H: Harness>(h: &H) {
    let e = h.engine();
    let vol = name(h, "data");
    h.created("volume", &vol);
    let create = VolumeCreate {
        name: vol.clone(),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: labels(h),
    };
    e.create_volume(&create).await.unwrap();
    e.create_volume(&create).await.unwrap();
    let listed: Vec<_> = e
        .list_volumes()
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.name == vol)
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels, labels(h));
}

/// Images: a tag is listed on its image; untagging one of several tags leaves the image and
/// its other tags; untagging a missing tag is `NotFound`; creating from an unknown image is
/// `Failed`.
pub async fn tags_come_and_go<H: Harness>(h: &H) {
    let e = h.engine();
    let image = h.image();
    let repo = format!("berth-pin/contract-{}", h.prefix());
    let reference = format!("{repo}:r1");
    h.tagged(&reference);
    e.tag_image(&image, &repo, "r1").await.unwrap();
    let tags_of = |images: Vec<berth::engine::ImageSummary>| {
        images
            .into_iter()
            .find(|i| i.id == image)
            .map(|i| i.tags)
            .unwrap_or_default()
    };
    let tags = tags_of(e.list_images().await.unwrap());
    assert!(tags.contains(&reference), "{tags:?}");
    assert!(tags.len() >= 2, "the image keeps its own tag too: {tags:?}");
    e.remove_image_tag(&reference).await.unwrap();
    let tags = tags_of(e.list_images().await.unwrap());
    assert!(!tags.contains(&reference), "{tags:?}");
    assert!(!tags.is_empty(), "the other tags stay: {tags:?}");
    let err = e.remove_image_tag(&reference).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    assert!(err.is_already_done());

    let mut missing = spec(h, "noimage");
    missing.image = format!("sha256:{}", "0".repeat(64));
    let err = e.create_container(&missing).await.unwrap_err();
    assert!(matches!(err, EngineError::Failed { .. }), "{err}");
}

/// Exec runs in a running container and reports the exit code; in a stopped one it is a
/// `Conflict`.
pub async fn exec_needs_a_running_container<H: Harness>(h: &H) {
    let e = h.engine();
    let id = e.create_container(&spec(h, "exec")).await.unwrap();
    let cmd = vec!["/bin/busybox".to_owned(), "true".to_owned()];
    let err = e.exec(&id, &cmd, GRACE).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    e.start_container(&id).await.unwrap();
    let out = e.exec(&id, &cmd, Duration::from_secs(10)).await.unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
}

/// Events of a container carrying the filter's label: create, start and die, in that order;
/// containers without the label are not reported.
pub async fn events_follow_labelled_containers<H: Harness>(h: &H) {
    let e = h.engine();
    let mut rx = e.events(h.since(), &filter(h)).await.unwrap();
    let mut stranger = spec(h, "stranger");
    stranger.labels = BTreeMap::from([("contract.other".to_owned(), h.prefix().to_owned())]);
    let s = e.create_container(&stranger).await.unwrap();
    let id = e.create_container(&spec(h, "watched")).await.unwrap();
    e.start_container(&id).await.unwrap();
    e.stop_container(&id, GRACE, None).await.unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(&"die".to_owned()) {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no die event within 20 s; seen: {seen:?}"))
            .expect("the stream stays open")
            .unwrap();
        assert_ne!(event.id, s, "an event of a container without the label");
        assert_eq!(event.id, id);
        seen.push(event.action);
    }
    let order: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|a| matches!(*a, "create" | "start" | "die"))
        .collect();
    assert_eq!(order, ["create", "start", "die"], "{seen:?}");
    e.remove_container(&s).await.unwrap();
}

/// Defines one `#[tokio::test]` per contract check, each running it on a fresh harness from
/// `$make` (an expression). Every check is listed here once, so both engines run all of them.
macro_rules! suite {
    ($make:expr) => {
        $crate::support::contract::suite!(@each $make;
            lifecycle,
            names_and_ids_address_containers,
            taken_names_conflict_and_renames_move_names,
            removing_a_running_container_conflicts,
            list_selects_by_any_label,
            networks_hold_containers,
            volumes_are_created_once,
            tags_come_and_go,
            exec_needs_a_running_container,
            events_follow_labelled_containers,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let harness = $make;
            $crate::support::contract::$check(&harness).await;
        }
    )*};
}
pub(crate) use suite;
