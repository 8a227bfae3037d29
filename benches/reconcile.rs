//! Benchmark (not a test): reconciling 100 services on the real engine, side by side with the
//! engine's own floor and docker-compose, in one run.
//!
//! Prints: the engine floor (create+start of 100 containers through the API, 8 at a time);
//! berth's cold apply of the same 100 services; berth's no-op reconcile (observe + plan) —
//! time and engine calls; docker-compose `up -d` cold and no-op for the same file.
//! Needs a running engine and `scripts/build-images`. Cleans up after itself.
//! Run: `cargo bench --bench reconcile`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use berth::apply::{ApplyOptions, apply};
use berth::desired::{LoadOptions, load};
use berth::engine::docker::DockerEngine;
use berth::engine::{ContainerCreate, Engine};
use berth::reconcile::plan::PlanOptions;
use berth::reconcile::round::{load_records, plan_only};

const N: usize = 100;
const IMAGE: &str = "berth-test-busybox:1";

fn docker(args: &[&str]) -> String {
    let o = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn cleanup(project: &str) {
    let ids = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    for chunk in ids.chunks(50) {
        let mut a = vec!["rm", "-f"];
        a.extend_from_slice(chunk);
        docker(&a);
    }
    for n in docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ])
    .split_whitespace()
    {
        docker(&["network", "rm", n]);
    }
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        Command::new(root.join("scripts/build-images"))
            .status()
            .expect("build-images")
            .success()
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("benchrec");
    std::fs::create_dir_all(&dir).unwrap();
    // No readiness hold: the bench measures berth's overhead over create+start, not a gate.
    let mut yaml = String::from("x-berth: {min_ready: 0s}\nservices:\n");
    for i in 0..N {
        yaml.push_str(&format!(
            "  s{i:03}:\n    image: {IMAGE}\n    stop_grace_period: 1s\n"
        ));
    }
    std::fs::write(dir.join("compose.yaml"), &yaml).unwrap();
    let loaded = load(&dir, &LoadOptions::default());
    let desired = loaded
        .state
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics));
    cleanup("benchrec");
    cleanup("benchfloor");
    cleanup("benchcompose");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = Arc::new(DockerEngine::connect(None).expect("engine"));
        let info = engine.info().await.expect("engine reachable");
        let image = docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE])
            .trim()
            .to_string();
        println!(
            "engine {} (API {}), {N} services of {IMAGE}",
            info.version, info.api_version
        );

        // 1. The engine's floor: create+start through the API, 8 at a time, no planning.
        let net = berth::engine::NetworkCreate {
            name: "benchfloor_default".into(),
            driver: None,
            driver_opts: Default::default(),
            internal: false,
            labels: [(
                "com.docker.compose.project".to_string(),
                "benchfloor".to_string(),
            )]
            .into(),
            ipam: None,
            enable_ipv6: false,
            attachable: false,
        };
        engine.create_network(&net).await.expect("network");
        let t = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(8));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..N {
            let (engine, sem, image) = (engine.clone(), sem.clone(), image.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await;
                let spec = ContainerCreate {
                    name: format!("benchfloor-s{i:03}-1"),
                    image,
                    labels: [(
                        "com.docker.compose.project".to_string(),
                        "benchfloor".to_string(),
                    )]
                    .into(),
                    networks: vec![berth::engine::NetworkAttach {
                        network: "benchfloor_default".into(),
                        aliases: vec![],
                        ipv4_address: None,
                        ipv6_address: None,
                    }],
                    restart: "no".into(),
                    ..ContainerCreate::default()
                };
                let id = engine.create_container(&spec).await.expect("create");
                engine.start_container(&id).await.expect("start");
            });
        }
        while set.join_next().await.is_some() {}
        let floor = t.elapsed();
        cleanup("benchfloor");

        // 2. berth cold apply.
        let stop = Arc::new(AtomicBool::new(false));
        let opts = ApplyOptions {
            parallelism: 8,
            timeout: Duration::from_secs(600),
            ..ApplyOptions::default()
        };
        let t = Instant::now();
        let store = berth::store::Store::open(&tmp.path().join("data")).expect("store");
        let report = apply(&engine, &desired, opts, &stop, Some(&store), |_| {})
            .await
            .expect("apply");
        let cold = t.elapsed();
        assert!(report.ok(), "cold apply did not converge: {report:?}");

        let records = load_records(&store, &desired).expect("records");
        let now = berth::apply::unix_now();
        // 3. No-op reconciles: observe + plan, time and engine calls per round.
        let mut times = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..30 {
            let before = engine.calls_made();
            let t = Instant::now();
            let plan = plan_only(
                &engine,
                &desired,
                records.clone(),
                PlanOptions::default(),
                None,
                now,
            )
            .await
            .expect("observe")
            .plan;
            times.push(t.elapsed());
            calls.push(engine.calls_made() - before);
            assert!(plan.is_empty(), "not a no-op:\n{plan}");
        }
        times.sort();
        let plan_only = {
            let observed = plan_only(
                &engine,
                &desired,
                records.clone(),
                PlanOptions::default(),
                None,
                now,
            )
            .await
            .unwrap()
            .observed;
            let t = Instant::now();
            for _ in 0..100 {
                std::hint::black_box(berth::reconcile::plan::plan(
                    &desired,
                    &observed,
                    &records,
                    PlanOptions::default(),
                    now,
                ));
            }
            t.elapsed() / 100
        };
        cleanup("benchrec");

        // 4. docker-compose, same file.
        let compose = |args: &[&str]| {
            let t = Instant::now();
            // Bounded: docker-compose 1.29 once hung here mid-way (35 of 100 created, idle).
            let ok = Command::new("timeout")
                .args([
                    "300",
                    "docker-compose",
                    "-p",
                    "benchcompose",
                    "-f",
                    "compose.yaml",
                ])
                .args(args)
                .current_dir(&dir)
                .stdin(std::process::Stdio::null())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            (t.elapsed(), ok)
        };
        let (compose_cold, ok1) = compose(&["up", "-d"]);
        let (compose_noop, ok2) = compose(&["up", "-d"]);
        cleanup("benchcompose");

        println!();
        println!("cold start of {N} services");
        println!(
            "  engine floor (API create+start, 8 at a time)   {:>8.2} s",
            floor.as_secs_f64()
        );
        println!(
            "  berth apply (parallelism 8)                     {:>8.2} s  ({:.2}x the floor)",
            cold.as_secs_f64(),
            cold.as_secs_f64() / floor.as_secs_f64()
        );
        if ok1 {
            println!(
                "  docker-compose up -d                            {:>8.2} s",
                compose_cold.as_secs_f64()
            );
        } else {
            println!("  docker-compose up -d                            failed or not installed");
        }
        println!("no-op reconcile of {N} running services (30 rounds)");
        println!(
            "  berth observe+plan   median {:.1} ms, max {:.1} ms, engine calls per round: {:?}",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            calls
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<u64>>()
        );
        println!(
            "  berth plan alone     {:.3} ms ({:.1} µs per service)",
            plan_only.as_secs_f64() * 1e3,
            plan_only.as_secs_f64() * 1e6 / N as f64
        );
        if ok1 && ok2 {
            println!("  docker-compose up -d {:.2} s", compose_noop.as_secs_f64());
        }
    });
}
