//! Unit tests of the fake engine itself.

use super::*;
use crate::engine::{Attachments, EXEC_OUTPUT_LIMIT, HealthcheckSpec, NetworkAttach};

const IMAGE: &str = "sha256:aaaa";

fn spec(name: &str) -> ContainerCreate {
    ContainerCreate {
        name: name.into(),
        image: IMAGE.into(),
        command: None,
        entrypoint: None,
        env: Vec::new(),
        labels: BTreeMap::from([
            ("berth.managed".into(), "true".into()),
            ("berth.project".into(), "shop".into()),
        ]),
        ..ContainerCreate::default()
    }
}

fn engine() -> FakeEngine {
    let e = FakeEngine::new();
    e.add_image("app:1", IMAGE);
    e
}

fn network(name: &str) -> NetworkCreate {
    NetworkCreate {
        name: name.into(),
        driver: None,
        driver_opts: BTreeMap::new(),
        internal: false,
        labels: BTreeMap::new(),
        ipam: None,
        enable_ipv6: false,
        attachable: false,
    }
}

const GRACE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn containers_move_from_created_to_running_to_exited() {
    let e = engine();
    let id = e.create_container(&spec("shop-web-1")).await.unwrap();
    assert_eq!(e.container(&id).unwrap().state, RunState::Created);
    e.start_container("shop-web-1").await.unwrap();
    assert_eq!(e.container(&id).unwrap().state, RunState::Running);
    e.stop_container(&id, GRACE, None).await.unwrap();
    let listed = e.list_containers(&[]).await.unwrap();
    assert_eq!(listed[0].state, RunState::Exited);
    assert_eq!(listed[0].exit_code, Some(0));
    assert_eq!(listed[0].networks, ["bridge"]);
    e.remove_container(&id).await.unwrap();
    assert!(e.list_containers(&[]).await.unwrap().is_empty());
    assert_eq!(
        e.calls(),
        [
            "create_container shop-web-1",
            "start_container shop-web-1",
            "stop_container shop-web-1",
            "list_containers",
            "remove_container shop-web-1",
            "list_containers",
        ]
    );
}

#[tokio::test]
async fn a_taken_name_is_a_conflict() {
    let e = engine();
    e.create_container(&spec("shop-web-1")).await.unwrap();
    let err = e.create_container(&spec("shop-web-1")).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    e.create_container(&spec("shop-web-2")).await.unwrap();
    let err = e
        .rename_container("shop-web-2", "shop-web-1")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn removing_a_running_container_is_a_conflict() {
    let e = engine();
    e.create_container(&spec("shop-web-1")).await.unwrap();
    e.start_container("shop-web-1").await.unwrap();
    let err = e.remove_container("shop-web-1").await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    assert!(!err.is_already_done());
}

#[tokio::test]
async fn repeated_starts_and_stops_are_not_modified() {
    let e = engine();
    e.create_container(&spec("shop-web-1")).await.unwrap();
    let err = e
        .stop_container("shop-web-1", GRACE, None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotModified { .. }), "{err}");
    e.start_container("shop-web-1").await.unwrap();
    let err = e.start_container("shop-web-1").await.unwrap_err();
    assert!(matches!(err, EngineError::NotModified { .. }), "{err}");
    assert!(err.is_already_done());
    e.stop_container("shop-web-1", GRACE, None).await.unwrap();
    let err = e
        .stop_container("shop-web-1", GRACE, None)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::NotModified { .. }), "{err}");
}

#[tokio::test]
async fn unknown_containers_are_not_found_by_name_id_or_prefix() {
    let e = engine();
    let id = e.create_container(&spec("shop-web-1")).await.unwrap();
    for op in ["start", "remove", "logs"] {
        let err = match op {
            "start" => e.start_container("nope").await.unwrap_err(),
            "remove" => e.remove_container("nope").await.unwrap_err(),
            _ => e.logs_tail("nope", 5).await.unwrap_err(),
        };
        assert!(matches!(err, EngineError::NotFound { .. }), "{op}: {err}");
    }
    e.start_container(&id[..12]).await.unwrap();
    e.stop_container(&id, GRACE, None).await.unwrap();
    e.remove_container("/shop-web-1").await.unwrap();
    let err = e.remove_container(&id).await.unwrap_err();
    assert!(err.is_already_done(), "{err}");
}

#[tokio::test]
async fn create_needs_an_existing_image_id_and_networks() {
    let e = engine();
    let mut by_tag = spec("a");
    by_tag.image = "app:1".into();
    let err = e.create_container(&by_tag).await.unwrap_err();
    assert!(matches!(err, EngineError::Failed { .. }), "{err}");
    assert!(!err.is_already_done());

    let mut on_net = spec("b");
    on_net.networks = vec![NetworkAttach {
        network: "shop_default".into(),
        aliases: vec!["web".into()],
        ipv4_address: None,
        ipv6_address: None,
    }];
    let err = e.create_container(&on_net).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create container b: network shop_default not found"
    );
    e.create_network(&network("shop_default")).await.unwrap();
    e.create_container(&on_net).await.unwrap();
    let listed = e.list_containers(&[]).await.unwrap();
    assert_eq!(listed[0].networks, ["shop_default"]);
}

#[tokio::test]
async fn networks_conflict_by_name_and_volumes_are_idempotent() {
    let e = engine();
    e.create_network(&network("shop_default")).await.unwrap();
    let err = e
        .create_network(&network("shop_default"))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    let volume = VolumeCreate {
        name: "shop_db".into(),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: BTreeMap::new(),
    };
    e.create_volume(&volume).await.unwrap();
    e.create_volume(&volume).await.unwrap();
    assert_eq!(e.list_volumes().await.unwrap().len(), 1);
    assert_eq!(e.list_networks().await.unwrap().len(), 1);
}

#[tokio::test]
async fn label_filters_match_any_of_them() {
    let e = engine();
    e.create_container(&spec("shop-web-1")).await.unwrap();
    let mut other = spec("other");
    other.labels = BTreeMap::from([("com.docker.compose.project".into(), "shop".into())]);
    e.create_container(&other).await.unwrap();
    let mut stranger = spec("stranger");
    stranger.labels = BTreeMap::new();
    e.create_container(&stranger).await.unwrap();

    let names =
        |list: Vec<ContainerSummary>| -> Vec<String> { list.into_iter().map(|c| c.name).collect() };
    let managed = e
        .list_containers(&["berth.managed=true".into()])
        .await
        .unwrap();
    assert_eq!(names(managed), ["shop-web-1"]);
    let either = e
        .list_containers(&[
            "berth.managed=true".into(),
            "com.docker.compose.project".into(),
        ])
        .await
        .unwrap();
    assert_eq!(names(either), ["shop-web-1", "other"]);
}

#[tokio::test]
async fn the_outside_world_kills_removes_and_reports_health() {
    let e = engine();
    let mut checked = spec("shop-web-1");
    checked.healthcheck = Some(HealthcheckSpec {
        test: vec!["CMD".into(), "true".into()],
        interval: None,
        timeout: None,
        retries: None,
        start_period: None,
        start_interval: None,
    });
    e.create_container(&checked).await.unwrap();
    e.start_container("shop-web-1").await.unwrap();
    let health = |e: &FakeEngine| e.container("shop-web-1").unwrap().summary().health;
    assert_eq!(health(&e), Health::Starting);
    e.set_health("shop-web-1", Health::Healthy);
    assert_eq!(health(&e), Health::Healthy);
    e.kill("shop-web-1", 137);
    let c = e.container("shop-web-1").unwrap().summary();
    assert_eq!(
        (c.state, c.exit_code, c.health),
        (RunState::Exited, Some(137), Health::None)
    );
    e.remove_by_hand("shop-web-1");
    assert!(e.container("shop-web-1").is_none());
    let actions: Vec<String> = e.events_so_far().into_iter().map(|ev| ev.action).collect();
    assert_eq!(
        actions,
        [
            "create",
            "start",
            "health_status: healthy",
            "die",
            "destroy"
        ]
    );
}

#[tokio::test]
async fn injected_faults_fail_the_next_matching_call_once() {
    let e = engine();
    e.fail_next(
        "create_container shop-web-2",
        Fault::Failed("no space".into()),
    );
    e.fail_next("list_containers", Fault::Unreachable);
    e.create_container(&spec("shop-web-1")).await.unwrap();
    let err = e.create_container(&spec("shop-web-2")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create container shop-web-2: no space"
    );
    assert!(e.container("shop-web-2").is_none());
    let err = e.list_containers(&[]).await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err}");
    assert_eq!(err.op().as_str(), "list containers");
    assert_eq!(e.list_containers(&[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn pulls_fetch_only_what_the_registry_has() {
    let e = FakeEngine::new();
    e.add_remote_image("app:2", "sha256:bbbb");
    let err = e.pull_image("app:3", None).await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    assert!(e.list_images().await.unwrap().is_empty());
    assert_eq!(e.pull_image("app:2", None).await.unwrap(), "sha256:bbbb");
    let images = e.list_images().await.unwrap();
    assert_eq!(images[0].tags, ["app:2"]);
}

#[tokio::test]
async fn events_replay_since_and_follow_with_the_label() {
    let e = engine();
    e.create_container(&spec("shop-web-1")).await.unwrap();
    let mut stranger = spec("stranger");
    stranger.labels = BTreeMap::new();
    e.create_container(&stranger).await.unwrap();
    let mut rx = e.events(0, "berth.managed=true").await.unwrap();
    e.start_container("stranger").await.unwrap();
    e.start_container("shop-web-1").await.unwrap();
    let first = rx.recv().await.unwrap().unwrap();
    let second = rx.recv().await.unwrap().unwrap();
    assert_eq!(
        (first.action.as_str(), second.action.as_str()),
        ("create", "start")
    );
    assert_eq!(second.attributes["name"], "shop-web-1");
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn inspect_shows_addresses_and_ports_only_while_running() {
    let e = engine();
    e.create_network(&network("shop_default")).await.unwrap();
    let mut web = spec("shop-web-1");
    web.networks = vec![NetworkAttach {
        network: "shop_default".into(),
        aliases: vec!["web".into()],
        ipv4_address: None,
        ipv6_address: None,
    }];
    web.ports = vec![crate::engine::PortBinding {
        target: 8080,
        protocol: "tcp".into(),
        host_ip: Some("127.0.0.1".into()),
        published: Some(18080),
        published_end: None,
    }];
    let id = e.create_container(&web).await.unwrap();
    let created = e.inspect_container(&id).await.unwrap();
    assert_eq!(
        (created.state, created.started_at.as_deref()),
        (RunState::Created, None)
    );
    assert!(created.ip_addresses.is_empty() && created.ports.is_empty());
    e.start_container(&id).await.unwrap();
    let d = e.inspect_container("shop-web-1").await.unwrap();
    assert_eq!(d.ip_addresses["shop_default"], "172.20.0.4");
    assert_eq!(
        d.ports,
        [(8080, "tcp".to_owned(), Some("127.0.0.1".to_owned()), 18080)]
    );
    assert_eq!(d.started_at.as_deref(), Some("2023-11-14T22:13:22Z"));
    assert_eq!(
        (d.image_id.as_str(), d.network_mode.as_str()),
        (IMAGE, "default")
    );
    e.kill(&id, 3);
    let d = e.inspect_container(&id).await.unwrap();
    assert_eq!((d.state, d.exit_code), (RunState::Exited, Some(3)));
    assert!(d.ip_addresses.is_empty());
    let err = e.inspect_container("nope").await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn exec_answers_what_set_exec_says_in_running_containers() {
    let e = engine();
    let id = e.create_container(&spec("shop-web-1")).await.unwrap();
    let cmd = vec!["check".to_owned()];
    let err = e.exec(&id, &cmd, GRACE).await.unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    e.start_container(&id).await.unwrap();
    let ok = e.exec(&id, &cmd, GRACE).await.unwrap();
    assert_eq!((ok.exit_code, ok.output.as_str()), (0, ""));
    e.set_exec(&id, 3, &"x".repeat(10_000));
    let out = e.exec(&id, &cmd, GRACE).await.unwrap();
    assert_eq!((out.exit_code, out.output.len()), (3, EXEC_OUTPUT_LIMIT));
    e.fail_next("exec", Fault::Timeout);
    let err = e.exec(&id, &cmd, GRACE).await.unwrap_err();
    assert!(matches!(err, EngineError::Timeout { .. }), "{err}");
    assert_eq!(err.op().as_str(), "exec in container");
    assert!(e.calls().contains(&"exec shop-web-1 check".to_owned()));
}

#[tokio::test]
async fn pin_tags_keep_an_image_and_untagging_leaves_the_other_tags() {
    let e = engine();
    e.tag_image(IMAGE, "berth-pin/shop-web", "r1")
        .await
        .unwrap();
    let tags = |e: &FakeEngine| e.lock().images[0].tags.clone();
    assert_eq!(tags(&e), ["app:1", "berth-pin/shop-web:r1"]);
    let err = e.tag_image("sha256:none", "x", "y").await.unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");

    e.remove_image_tag("app:1").await.unwrap();
    assert_eq!(tags(&e), ["berth-pin/shop-web:r1"]);
    let err = e.remove_image_tag("app:1").await.unwrap_err();
    assert!(err.is_already_done(), "{err}");
    // The last reference of an image a container uses stays.
    e.create_container(&spec("shop-web-1")).await.unwrap();
    let err = e
        .remove_image_tag("berth-pin/shop-web:r1")
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
    e.remove_container("shop-web-1").await.unwrap();
    e.remove_image_tag("berth-pin/shop-web:r1").await.unwrap();
    assert!(e.list_images().await.unwrap().is_empty());
}

#[tokio::test]
async fn logs_tail_returns_the_last_lines() {
    let e = engine();
    e.create_container(&spec("shop-web-1")).await.unwrap();
    e.set_logs("shop-web-1", "one\ntwo\nthree\n");
    assert_eq!(e.logs_tail("shop-web-1", 2).await.unwrap(), "two\nthree\n");
}

#[tokio::test]
async fn start_rules_go_by_label_then_name_then_image() {
    let e = engine();
    e.set_start_health(Health::Healthy);
    e.on_start(Started::Image(IMAGE.into()), OnStart::Exits(1));
    e.on_start(Started::Name("shop-web-2".into()), OnStart::Restarted(2));
    e.on_start(Started::Label("berth.role=smoke".into()), OnStart::Exits(3));
    let mut checked = spec("shop-web-1");
    checked.healthcheck = Some(HealthcheckSpec {
        test: vec!["CMD".into(), "true".into()],
        interval: None,
        timeout: None,
        retries: None,
        start_period: None,
        start_interval: None,
    });
    let mut smoke = spec("shop-web-2");
    smoke.labels.insert("berth.role".into(), "smoke".into());
    for s in [&checked, &smoke] {
        e.create_container(s).await.unwrap();
        e.start_container(&s.name).await.unwrap();
    }
    let c = e.container("shop-web-1").unwrap();
    assert_eq!((c.state, c.exit_code), (RunState::Exited, Some(1)));
    let c = e.container("shop-web-2").unwrap();
    assert_eq!((c.state, c.exit_code), (RunState::Exited, Some(3)));

    e.on_start(Started::Image(IMAGE.into()), OnStart::Runs);
    e.start_container("shop-web-1").await.unwrap();
    let c = e.container("shop-web-1").unwrap();
    assert_eq!((c.state, c.health), (RunState::Running, Health::Healthy));
    e.clear_start_rules();
    e.on_start(
        Started::Name("shop-web-2".into()),
        OnStart::Reports(Health::Unhealthy),
    );
    e.start_container("shop-web-2").await.unwrap();
    let c = e.container("shop-web-2").unwrap();
    assert_eq!((c.state, c.health), (RunState::Running, Health::Unhealthy));
}

#[tokio::test]
async fn build_results_give_the_set_id_or_fail_with_the_message() {
    let e = FakeEngine::new();
    let spec = |tag: &str| BuildSpec {
        context_dir: std::path::PathBuf::from("/nonexistent"),
        dockerfile: "Dockerfile".into(),
        dockerfile_inline: None,
        tag: tag.into(),
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        network: None,
        extra_hosts: Vec::new(),
        shm_size: None,
        timeout: GRACE,
    };
    e.set_build_result("app:1", Ok("sha256:app1".into()));
    e.set_build_result("app:2", Err("step 2/3: exit code 1".into()));
    assert_eq!(e.build_image(&spec("app:1")).await.unwrap(), "sha256:app1");
    let err = e.build_image(&spec("app:2")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to build image app:2: step 2/3: exit code 1"
    );
    assert!(
        e.build_image(&spec("app:3"))
            .await
            .unwrap()
            .starts_with('i')
    );
    let tags: Vec<String> = e
        .list_images()
        .await
        .unwrap()
        .into_iter()
        .flat_map(|i| i.tags)
        .collect();
    assert_eq!(tags, ["app:1", "app:3"]);
}

#[tokio::test]
async fn inserted_containers_are_listed_as_given_and_snapshots_diverge() {
    let e = engine();
    let made = ContainerSummary {
        id: "compose-made".into(),
        name: "shop-web-1".into(),
        image_id: "sha256:other".into(),
        labels: BTreeMap::from([("com.docker.compose.project".into(), "shop".into())]),
        state: RunState::Running,
        health: Health::Healthy,
        exit_code: None,
        networks: vec!["shop_default".into()],
        created: 7,
        actual: None,
    };
    e.insert_container(made.clone());
    // Listed as given, plus what it actually has (no ports, no mounts, its address).
    let listed = ContainerSummary {
        actual: Some(Attachments {
            ports: Some(Vec::new()),
            mounts: Vec::new(),
            addresses: [("shop_default".to_string(), [172, 20, 0, 2].into())].into(),
        }),
        ..made
    };
    assert_eq!(e.list_containers(&[]).await.unwrap(), [listed]);
    let copy = e.snapshot();
    copy.kill("shop-web-1", 137);
    assert_eq!(e.container("shop-web-1").unwrap().state, RunState::Running);
    assert_eq!(
        copy.container("shop-web-1").unwrap().state,
        RunState::Exited
    );
    e.stop_container("compose-made", GRACE, None).await.unwrap();
    e.remove_container("shop-web-1").await.unwrap();
    assert!(e.list_containers(&[]).await.unwrap().is_empty());
}
