//! Loader rules on inline YAML: every diagnostic with its exact position and message, and
//! the typed model for the syntaxes compose accepts.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::desired::model::*;
use berth::desired::{LoadOptions, load_inline};
use indoc::indoc;

fn opts() -> LoadOptions {
    let mut env = BTreeMap::new();
    env.insert("TAG".to_string(), "1.4.2".to_string());
    env.insert("EMPTY".to_string(), String::new());
    LoadOptions {
        env,
        ..LoadOptions::default()
    }
}

/// Diagnostics as printed by `berth validate`.
fn diags(yaml: &str) -> String {
    load_inline(yaml, &opts()).diagnostics.to_string()
}

fn project(yaml: &str) -> Project {
    let l = load_inline(yaml, &opts());
    let state = l
        .state
        .unwrap_or_else(|| panic!("expected valid, got:\n{}", l.diagnostics));
    state.projects.into_values().next().expect("one project")
}

fn service(yaml: &str, name: &str) -> Service {
    project(yaml).services.remove(name).expect("service")
}

#[test]
fn unknown_depends_on_target_suggests_the_closest_name() {
    assert_eq!(
        diags(indoc! {"
            services:
              web:
                image: app:1
                depends_on: [databse]
              database:
                image: pg:16
        "}),
        "compose.yaml:4:18: error: depends_on names \"databse\", which is not a service of project \"project\" (did you mean \"database\"?)\n"
    );
}

#[test]
fn dependency_cycles_are_named() {
    let d = diags(indoc! {"
        services:
          a: {image: x:1, depends_on: [b]}
          b: {image: x:1, depends_on: [c]}
          c: {image: x:1, depends_on: [a]}
    "});
    assert_eq!(
        d,
        "compose.yaml:4:32: error: dependency cycle: a -> b -> c -> a; break it by removing one of these depends_on entries\n"
    );
}

#[test]
fn self_dependency_is_an_error() {
    let d = diags("services:\n  a: {image: x:1, depends_on: [a]}\n");
    assert!(
        d.contains("compose.yaml:2:32: error: service \"a\" depends on itself"),
        "{d}"
    );
}

#[test]
fn invalid_image_and_unpinned_images() {
    let d = diags(indoc! {"
        services:
          a: {image: My/App:1}
          b: {image: app}
          c: {image: app:latest}
          d: {image: app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}
    "});
    let lines: Vec<&str> = d.lines().collect();
    assert_eq!(lines.len(), 3, "{d}");
    assert!(
        lines[0].starts_with("compose.yaml:2:14: error: invalid image reference \"My/App:1\""),
        "{d}"
    );
    assert!(
        lines[1].starts_with("compose.yaml:3:14: warning: image \"app\" is not pinned (no tag"),
        "{d}"
    );
    assert!(
        lines[2].starts_with(
            "compose.yaml:4:14: warning: image \"app:latest\" is not pinned (tag latest)"
        ),
        "{d}"
    );
}

#[test]
fn build_without_image_is_accepted() {
    assert_eq!(diags("services:\n  web:\n    build: .\n"), "");
}

#[test]
fn container_names_and_host_ports_clash() {
    let d = diags(indoc! {"
        services:
          a:
            image: x:1
            container_name: one
            ports: ['8080:80']
          b:
            image: x:1
            container_name: one
            ports: ['127.0.0.1:8080:81']
          c:
            image: x:1
            ports: ['8080:80/udp', '127.0.0.2:9000:9000', '127.0.0.3:9000:9000']
    "});
    assert_eq!(
        d,
        "compose.yaml:8:21: error: container_name \"one\" of project/b is already used by project/a (compose.yaml:4:21); container names are unique per host\n\
         compose.yaml:9:13: error: host port 8080/tcp of project/b is already published by project/a (compose.yaml:5:13); pick another host port\n"
    );
}

#[test]
fn invalid_values_each_have_a_position() {
    let d = diags(indoc! {"
        services:
          web:
            image: app:1
            stop_grace_period: 1x
            shm_size: 12q
            ports: ['70000:80']
            deploy:
              replicas: -1
            healthcheck:
              interval: 30
    "});
    let lines: Vec<&str> = d.lines().collect();
    assert_eq!(lines.len(), 5, "{d}");
    assert!(
        lines[0].starts_with("compose.yaml:4:24: error: invalid duration \"1x\""),
        "{d}"
    );
    assert!(
        lines[1].starts_with("compose.yaml:5:15: error: invalid size \"12q\""),
        "{d}"
    );
    assert!(
        lines[2].starts_with("compose.yaml:6:13: error: invalid port \"70000:80\""),
        "{d}"
    );
    assert!(
        lines[3].starts_with(
            "compose.yaml:8:17: error: services.web.deploy.replicas must be a whole number from 0"
        ),
        "{d}"
    );
    assert!(lines[4].starts_with("compose.yaml:10:17: error: invalid duration 30 for services.web.healthcheck.interval: add a unit"), "{d}");
}

#[test]
fn probe_without_target_and_bad_status() {
    let d = diags(indoc! {"
        services:
          web:
            image: app:1
            x-berth:
              readiness:
                interval: 2s
              liveness:
                http: {port: 8080, status: '600-100'}
    "});
    let lines: Vec<&str> = d.lines().collect();
    assert_eq!(lines.len(), 2, "{d}");
    assert!(
        lines[0].starts_with(
            "compose.yaml:5:7: error: services.web.x-berth.readiness has no target: add one of http"
        ),
        "{d}"
    );
    assert!(lines[1].starts_with("compose.yaml:8:36: error: invalid services.web.x-berth.liveness.http.status \"600-100\""), "{d}");
}

#[test]
fn unknown_and_unsupported_keys_warn_with_their_path() {
    let d = diags(indoc! {"
        services:
          web:
            image: app:1
            imagee: app:2
            pid: host
            x-anything: ok
        volumess: {}
    "});
    assert_eq!(
        d,
        "compose.yaml:4:5: warning: unknown key services.web.imagee is ignored (did you mean \"image\"?)\n\
         compose.yaml:5:5: warning: services.web.pid is not supported by berth and is ignored\n\
         compose.yaml:7:1: warning: unknown key .volumess is ignored (did you mean \"volumes\"?)\n"
    );
}

#[test]
fn yaml_errors_are_positioned() {
    assert_eq!(
        diags("services:\n  web:\n    image: a:1\n    image: a:2\n"),
        "compose.yaml:4:5: error: duplicate key \"image\": each key may appear once in a mapping\n"
    );
    let d = diags("services:\n  web:\n\timage: a:1\n");
    assert!(d.starts_with("compose.yaml:3:"), "{d}");
}

#[test]
fn interpolation_unset_is_a_warning_and_malformed_is_an_error() {
    let d = diags(indoc! {"
        services:
          web:
            image: app:${TAG}
            environment:
              A: ${MISSING}
              B: ${BROKEN
              C: ${REQUIRED:?set REQUIRED in the host env file}
    "});
    let lines: Vec<&str> = d.lines().collect();
    assert_eq!(lines.len(), 3, "{d}");
    assert_eq!(
        lines[0],
        "compose.yaml:5:10: warning: variable \"MISSING\" is not set; substituting an empty string"
    );
    assert!(
        lines[1]
            .starts_with("compose.yaml:6:10: error: invalid interpolation format for \"${BROKEN\""),
        "{d}"
    );
    assert!(lines[2].starts_with("compose.yaml:7:10: error: required variable REQUIRED is missing a value: set REQUIRED in the host env file"), "{d}");
}

#[test]
fn keys_are_never_interpolated() {
    let p = project("services:\n  web:\n    image: app:1\n    labels:\n      ${TAG}: v\n");
    assert!(p.services["web"].labels.contains_key("${TAG}"));
}

#[test]
fn undeclared_networks_volumes_and_secrets_are_errors() {
    let d = diags(indoc! {"
        services:
          web:
            image: app:1
            networks: [fronted]
            volumes: ['data:/data', './here:/here']
            secrets: [token]
        networks:
          front: {}
    "});
    assert_eq!(
        d,
        "compose.yaml:4:16: error: service \"web\" uses network \"fronted\", which is not declared under top-level networks: (did you mean \"front\"?)\n\
         compose.yaml:5:15: error: service \"web\" uses volume \"data\", which is not declared under top-level volumes:\n\
         compose.yaml:6:15: error: service \"web\" uses secret \"token\", which is not declared under top-level secrets:\n"
    );
}

#[test]
fn jobs_are_marked_and_restarting_jobs_refused() {
    let p = project(indoc! {"
        services:
          migrate: {image: app:1, restart: 'no'}
          web:
            image: app:1
            restart: always
            depends_on:
              migrate: {condition: service_completed_successfully}
    "});
    assert!(p.services["migrate"].job);
    assert!(!p.services["web"].job);
    let d = diags(indoc! {"
        services:
          migrate: {image: app:1, restart: always}
          web:
            image: app:1
            depends_on:
              migrate: {condition: service_completed_successfully}
    "});
    assert!(d.starts_with("compose.yaml:6:7: error: service \"web\" waits for \"migrate\" to complete successfully, but \"migrate\" restarts (always)"), "{d}");
}

#[test]
fn replicas_with_fixed_names_or_ports_are_refused() {
    let d = diags(indoc! {"
        services:
          web:
            image: app:1
            container_name: web
            ports: ['80:80']
            deploy: {replicas: 2}
    "});
    assert_eq!(d.lines().count(), 2, "{d}");
    assert!(d.contains("has 2 replicas and a container_name"), "{d}");
    assert!(d.contains("compose.yaml:5:13: error: service \"web\" has 2 replicas but publishes fixed host port 80"), "{d}");
}

#[test]
fn short_and_long_port_syntax_give_the_same_model() {
    let short = service(
        "services:\n  w:\n    image: a:1\n    ports: ['127.0.0.1:8080:80/udp', '9000-9001:9000-9001']\n",
        "w",
    );
    let long = service(
        indoc! {"
            services:
              w:
                image: a:1
                ports:
                  - {target: 80, published: '8080', host_ip: 127.0.0.1, protocol: udp}
                  - {target: 9000, published: 9000}
                  - {target: 9001, published: 9001}
        "},
        "w",
    );
    let strip = |s: &Service| {
        s.ports
            .iter()
            .map(|p| (p.host_ip.clone(), p.published, p.target, p.protocol))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&short), strip(&long));
    assert_eq!(strip(&short).len(), 3);
    assert_eq!(short.spec_hash, long.spec_hash);
}

#[test]
fn short_and_long_volume_syntax_give_the_same_model() {
    let short = service(
        "services:\n  w:\n    image: a:1\n    volumes: ['data:/data:ro', '/srv/conf:/etc/app']\nvolumes: {data: {}}\n",
        "w",
    );
    let long = service(
        indoc! {"
            services:
              w:
                image: a:1
                volumes:
                  - {type: bind, source: /srv/conf, target: /etc/app}
                  - {type: volume, source: data, target: /data, read_only: true}
            volumes:
              data:
        "},
        "w",
    );
    assert_eq!(short.volumes.len(), 2);
    assert_eq!(short.spec_hash, long.spec_hash);
}

#[test]
fn environment_list_and_map_are_the_same() {
    let a = service(
        "services:\n  w:\n    image: a:1\n    environment: [A=1, B=two]\n",
        "w",
    );
    let b = service(
        "services:\n  w:\n    image: a:1\n    environment: {B: two, A: 1}\n",
        "w",
    );
    assert_eq!(a.environment, b.environment);
    assert_eq!(a.spec_hash, b.spec_hash);
}

#[test]
fn depends_on_short_form_means_service_started_and_implicit_edges_are_added() {
    let s = service(
        indoc! {"
            services:
              w:
                image: a:1
                depends_on: [db]
                links: ['cache:c']
                volumes_from: [files]
                network_mode: service:vpn
              db: {image: a:1}
              cache: {image: a:1}
              files: {image: a:1}
              vpn: {image: a:1}
        "},
        "w",
    );
    let deps: Vec<(&str, Condition, bool)> = s
        .depends_on
        .iter()
        .map(|(k, d)| (k.as_str(), d.condition, d.implicit))
        .collect();
    assert_eq!(
        deps,
        [
            ("cache", Condition::ServiceStarted, true),
            ("db", Condition::ServiceStarted, false),
            ("files", Condition::ServiceStarted, true),
            ("vpn", Condition::ServiceStarted, true),
        ]
    );
}

#[test]
fn healthcheck_forms_and_durations() {
    let s = service(
        indoc! {"
            services:
              w:
                image: a:1
                healthcheck:
                  test: curl -f http://localhost/
                  interval: 1m30s
                  timeout: 500ms
                  retries: 3
        "},
        "w",
    );
    let h = s.healthcheck.unwrap();
    assert_eq!(h.test, ["CMD-SHELL", "curl -f http://localhost/"]);
    assert_eq!(h.interval, Some(Duration::from_secs(90)));
    assert_eq!(h.timeout, Some(Duration::from_millis(500)));
    let d = diags("services:\n  w:\n    image: a:1\n    healthcheck:\n      test: [curl, x]\n");
    assert!(
        d.starts_with(
            "compose.yaml:5:14: error: services.w.healthcheck.test must start with \"CMD\""
        ),
        "{d}"
    );
    let off = service(
        "services:\n  w:\n    image: a:1\n    healthcheck: {disable: true}\n",
        "w",
    );
    assert!(off.healthcheck.unwrap().disabled());
}

#[test]
fn profiles_skip_inactive_services_unless_activated() {
    let yaml = "services:\n  web: {image: a:1}\n  debug: {image: a:1, profiles: [debug]}\n";
    let p = project(yaml);
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
    assert_eq!(p.inactive_services, ["debug"]);
    let mut o = opts();
    o.profiles = vec!["debug".into()];
    let l = load_inline(yaml, &o);
    assert_eq!(l.state.unwrap().projects["project"].services.len(), 2);
}

#[test]
fn update_config_maps_onto_the_rollout_policy_and_x_berth_overrides_project_defaults() {
    let s = service(
        indoc! {"
            x-berth:
              progress_deadline: 5m
              auto_revert: true
              readiness: {tcp: {port: 5432}}
            services:
              web:
                image: a:1
                deploy:
                  replicas: 4
                  update_config: {parallelism: 2, delay: 10s, order: stop-first, monitor: 30s, failure_action: pause}
                x-berth:
                  readiness:
                    http: {port: 8080, path: /health, status: 200, body_contains: ok}
                    success_threshold: 2
        "},
        "web",
    );
    assert_eq!(s.replicas, 4);
    assert_eq!(s.rollout.update.parallelism, 2);
    assert_eq!(s.rollout.update.delay, Duration::from_secs(10));
    assert_eq!(s.rollout.update.order, Some(Order::StopFirst));
    assert_eq!(s.rollout.min_ready, Duration::from_secs(30));
    assert_eq!(s.rollout.progress_deadline, Duration::from_secs(300));
    // x-berth.auto_revert (project default) wins over failure_action: pause.
    assert!(s.berth.auto_revert);
    let r = s.berth.readiness.unwrap();
    assert_eq!(r.success_threshold, 2);
    assert_eq!(
        r.check,
        ProbeCheck::Http {
            port: 8080,
            path: "/health".into(),
            status: (200, 200),
            body_contains: Some("ok".into())
        }
    );
    // Without x-berth.auto_revert, failure_action decides.
    let p = service(
        "services:\n  w:\n    image: a:1\n    deploy: {update_config: {failure_action: continue}}\n",
        "w",
    );
    assert!(!p.berth.auto_revert);
}

#[test]
fn spec_hash_ignores_replicas_probes_and_order_but_not_the_container() {
    let base = "services:\n  w:\n    image: a:1\n    environment: {A: '1'}\n";
    let h = |y: &str| service(y, "w").spec_hash;
    let h0 = h(base);
    assert_eq!(h0.len(), 64);
    assert_eq!(h0, h(&format!("{base}    deploy: {{replicas: 3}}\n")));
    assert_eq!(
        h0,
        h(&format!(
            "{base}    x-berth: {{readiness: {{tcp: {{port: 1}}}}, min_ready: 1s}}\n"
        ))
    );
    assert_eq!(h0, h(&format!("{base}    stop_grace_period: 30s\n")));
    assert_ne!(
        h0,
        h("services:\n  w:\n    image: a:2\n    environment: {A: '1'}\n")
    );
    assert_ne!(
        h0,
        h("services:\n  w:\n    image: a:1\n    environment: {A: '2'}\n")
    );
    assert_ne!(h0, h(&format!("{base}    command: [x]\n")));
    assert_ne!(h0, h(&format!("{base}    ports: ['80']\n")));
    assert_ne!(h0, h(&format!("{base}    labels: [a=b]\n")));
}

#[test]
fn anchors_and_merge_keys_hash_like_the_expanded_file() {
    let anchored = indoc! {"
        x-common: &common
          image: a:1
          environment: {A: '1'}
          restart: always
        services:
          w:
            <<: *common
    "};
    let expanded =
        "services:\n  w:\n    restart: always\n    environment: {A: '1'}\n    image: a:1\n";
    assert_eq!(
        service(anchored, "w").spec_hash,
        service(expanded, "w").spec_hash
    );
}

#[test]
fn project_name_rules() {
    let d = diags("name: My_Project!\nservices:\n  w: {image: a:1}\n");
    assert!(
        d.starts_with(
            "compose.yaml:1:7: error: invalid project name \"My_Project!\": use lowercase"
        ),
        "{d}"
    );
    let p = project("name: shop${EMPTY}-eu\nservices:\n  w: {image: a:1}\n");
    assert_eq!(p.name, "shop-eu");
}

#[test]
fn never_panics_on_odd_documents() {
    for y in [
        "",
        "[]",
        "services: []",
        "services: {w: null}",
        "services: {w: []}",
        "42",
        "services:\n  w:\n    ports: {a: b}\n",
        "services: {w: {image: a:1, environment: [[1]]}}",
    ] {
        let _ = load_inline(y, &opts());
    }
}

#[test]
fn secret_modes_are_read_like_compose() {
    let s = service(
        &format!(
            "services:\n  w:\n    image: a:1\n    secrets:\n      \
             - {{source: s, mode: 0440}}\n      \
             - {{source: s, target: /a, mode: '0400'}}\n      \
             - {{source: s, target: /b, mode: 0o600}}\n\
             secrets:\n  s: {{file: {}/Cargo.toml}}\n",
            env!("CARGO_MANIFEST_DIR")
        ),
        "w",
    );
    let modes: Vec<Option<u32>> = s.secrets.iter().map(|m| m.mode).collect();
    assert_eq!(modes, [Some(0o440), Some(0o400), Some(0o600)]);
}

#[test]
fn a_secret_or_config_from_a_variable_is_refused_where_a_service_mounts_it() {
    // Declared but unused it is fine; mounted it would reach the container as nothing.
    assert_eq!(
        diags("services:\n  w: {image: a:1}\nsecrets:\n  s: {environment: TAG}\n"),
        ""
    );
    assert_eq!(
        diags(indoc! {"
            services:
              w:
                image: a:1
                secrets: [s]
                configs: [{source: c, target: /etc/c}]
            secrets:
              s: {environment: TAG}
            configs:
              c: {environment: TAG}
        "}),
        "compose.yaml:4:15: error: service \"w\" mounts secret \"s\", whose value comes from the variable TAG (environment:), which berth cannot mount yet; write the value to a file readable by root only and use file: instead (or pass TAG to the service as an environment variable)\n\
         compose.yaml:5:15: error: service \"w\" mounts config \"c\", whose value comes from the variable TAG (environment:), which berth cannot mount yet; write the value to a file readable by root only and use file: instead (or pass TAG to the service as an environment variable)\n"
    );
}

#[test]
fn missing_env_files_are_errors_unless_optional() {
    let d = diags(
        "services:\n  w:\n    image: a:1\n    env_file: [{path: ./none.env, required: false}]\n",
    );
    assert_eq!(d, "");
    let d = diags("services:\n  w:\n    image: a:1\n    env_file: ./none.env\n");
    assert_eq!(
        d,
        "compose.yaml:4:15: error: env file none.env not found (set required: false if it is optional)\n"
    );
}

/// Found by the fuzzer: a rule tripped by defaults and `monitor` had no position.
#[test]
fn min_ready_from_monitor_reaching_the_default_deadline_points_at_monitor() {
    let d = diags(
        "services:\n  web:\n    image: nginx:1.27\n    deploy:\n      update_config:\n        monitor: 2m\n",
    );
    assert_eq!(
        d,
        "compose.yaml:6:18: error: service \"web\": min_ready (2m) must be shorter than progress_deadline (2m), or no rollout can ever succeed\n"
    );
}

// ---- issue 15: what Compose accepts, with compose's semantics ----

/// A project directory with the given files, loaded from disk.
fn load_dir(
    files: &[(&str, &str)],
    env: &[(&str, &str)],
) -> (tempfile::TempDir, berth::desired::Loaded) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("shop");
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let o = LoadOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    };
    let l = berth::desired::load(&dir, &o);
    (t, l)
}

fn only_project(l: &berth::desired::Loaded) -> &Project {
    let s = l
        .state
        .as_ref()
        .unwrap_or_else(|| panic!("{}", l.diagnostics));
    s.projects.values().next().unwrap()
}

#[test]
fn project_name_follows_compose_precedence_and_says_where_it_came_from() {
    let compose = "name: fromfile\nservices:\n  web: {image: app:1}\n";
    let (_t, l) = load_dir(
        &[("compose.yaml", "services:\n  web: {image: app:1}\n")],
        &[],
    );
    assert_eq!(
        (only_project(&l).name.as_str(), only_project(&l).name_source),
        ("shop", NameSource::Directory)
    );
    let (_t, l) = load_dir(&[("compose.yaml", compose)], &[]);
    assert_eq!(
        (only_project(&l).name.as_str(), only_project(&l).name_source),
        ("fromfile", NameSource::NameKey)
    );
    let (_t, l) = load_dir(
        &[
            ("compose.yaml", compose),
            (".env", "COMPOSE_PROJECT_NAME=fromdotenv\n"),
        ],
        &[],
    );
    assert_eq!(
        (only_project(&l).name.as_str(), only_project(&l).name_source),
        ("fromdotenv", NameSource::DotEnv)
    );
    let (_t, l) = load_dir(
        &[
            ("compose.yaml", compose),
            (".env", "COMPOSE_PROJECT_NAME=fromdotenv\n"),
        ],
        &[("COMPOSE_PROJECT_NAME", "fromenv")],
    );
    assert_eq!(
        (only_project(&l).name.as_str(), only_project(&l).name_source),
        ("fromenv", NameSource::Environment)
    );
}

#[test]
fn compose_file_and_profiles_come_from_dotenv() {
    let (_t, l) = load_dir(
        &[
            ("compose.yaml", "services:\n  web: {image: app:1}\n"),
            (
                "prod.yaml",
                "services:\n  web: {image: app:2}\n  dbg: {image: dbg:1, profiles: [debug]}\n",
            ),
            (
                ".env",
                "COMPOSE_FILE=compose.yaml;prod.yaml\nCOMPOSE_PATH_SEPARATOR=;\nCOMPOSE_PROFILES=debug\n",
            ),
        ],
        &[],
    );
    let p = only_project(&l);
    assert_eq!(p.services["web"].image.as_deref(), Some("app:2"));
    assert!(p.services.contains_key("dbg"), "{:?}", p.inactive_services);
    assert_eq!(
        p.files,
        ["shop/compose.yaml", "shop/prod.yaml"].map(|f| f.trim_start_matches("shop/"))
    );
}

#[test]
fn extends_in_the_same_file_and_from_another_file_keeps_positions() {
    let (_t, l) = load_dir(
        &[
            (
                "compose.yaml",
                indoc! {"
                    services:
                      base: {image: app:1, environment: {A: '1'}}
                      web:
                        extends: base
                        environment: {B: '2'}
                      worker:
                        extends: {file: common/base.yaml, service: job}
                        environment: [C=3]
                "},
            ),
            (
                "common/base.yaml",
                "services:\n  job:\n    image: worker:1\n    env_file: job.env\n    ports: ['80']\n",
            ),
            ("common/job.env", "FROM_FILE=yes\n"),
        ],
        &[],
    );
    let p = only_project(&l);
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("app:1"));
    assert_eq!(web.environment.keys().collect::<Vec<_>>(), ["A", "B"]);
    let worker = &p.services["worker"];
    assert_eq!(worker.image.as_deref(), Some("worker:1"));
    assert!(
        worker.environment.contains_key("FROM_FILE"),
        "the env file is read relative to common/"
    );
    assert!(worker.environment.contains_key("C"));
    assert_eq!(worker.ports[0].loc.to_string(), "common/base.yaml:5:13");
    let (_t, l) = load_dir(
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    extends: {file: other.yaml, service: nope}\n",
            ),
            ("other.yaml", "services:\n  a: {image: a:1}\n"),
        ],
        &[],
    );
    let d = l.diagnostics.to_string();
    assert!(
        d.contains("compose.yaml:3:21: error: service \"web\" extends \"nope\", which is not defined in other.yaml\n"),
        "{d}"
    );
}

#[test]
fn include_imports_services_with_their_own_paths_and_positions() {
    let (_t, l) = load_dir(
        &[
            (
                "compose.yaml",
                "include:\n  - db/compose.yaml\nservices:\n  web: {image: app:1, depends_on: [db]}\n",
            ),
            (
                "db/compose.yaml",
                "services:\n  db:\n    image: postgres:${PG}\n    env_file: db.env\nvolumes:\n  data: {}\n",
            ),
            ("db/.env", "PG=16\n"),
            ("db/db.env", "POSTGRES_PASSWORD=x\n"),
        ],
        &[],
    );
    let p = only_project(&l);
    assert_eq!(p.services["db"].image.as_deref(), Some("postgres:16"));
    assert!(
        p.services["db"]
            .environment
            .contains_key("POSTGRES_PASSWORD")
    );
    assert!(p.volumes.contains_key("data"));
    assert_eq!(p.services["db"].loc.file.as_ref(), "db/compose.yaml");
}

#[test]
fn reset_and_override_tags_follow_compose() {
    let (_t, l) = load_dir(
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    image: app:1\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n",
            ),
            (
                "compose.override.yaml",
                "services:\n  web:\n    ports: !reset []\n    environment: !override {C: '3'}\n",
            ),
        ],
        &[],
    );
    let web = &only_project(&l).services["web"];
    assert!(web.ports.is_empty());
    assert_eq!(web.environment.keys().collect::<Vec<_>>(), ["C"]);
    assert!(
        diags("services:\n  web: {image: !custom app:1}\n")
            .contains("compose.yaml:2:24: error: unsupported YAML tag !custom")
    );
}

#[test]
fn several_documents_in_one_file_merge_and_the_error_has_no_internal_hint() {
    let p = project("services:\n  web: {image: app:1}\n---\nservices:\n  web: {image: app:2}\n");
    assert_eq!(p.services["web"].image.as_deref(), Some("app:2"));
    assert!(!diags("services: [\n---\n").contains("from_str_multiple"));
}

#[test]
fn the_alias_budget_counts_expanded_nodes_and_points_at_the_alias() {
    let mut y = String::from("x-img: &img app:1\nservices:\n");
    for i in 0..300 {
        y.push_str(&format!("  s{i}:\n    image: *img\n"));
    }
    assert_eq!(project(&y).services.len(), 300);
    // 10 × 10 × … expands past 250,000 nodes at the sixth level.
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for (prev, cur) in ["a", "b", "c", "d", "e", "f"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g"])
    {
        bomb.push_str(&format!(
            "{cur}: &{cur} [{}]\n",
            vec![format!("*{prev}"); 10].join(",")
        ));
    }
    let d = diags(&bomb);
    assert!(
        d.contains("error: YAML aliases expand to more than 250000 nodes"),
        "{d}"
    );
    // `f: &f [*e, *e, …]`: each `*e` replays ~111,000 nodes; the second crosses the budget.
    assert!(
        d.starts_with("compose.yaml:6:11: error:"),
        "at the alias, not the end: {d}"
    );
}

#[test]
fn legacy_and_swarm_forms_compose_accepts() {
    let p = project(indoc! {"
        services:
          web:
            image: app:1
            init: yes
            ports: ['8000-8010:80']
            extra_hosts: ['db=10.0.0.5', 'cache:10.0.0.6']
        networks:
          old: {external: {name: shared}}
        volumes:
          keep: {external: {name: kept}}
        secrets:
          swarm: {external: true}
        configs:
          app: {content: 'port=1'}
    "});
    let web = &p.services["web"];
    assert_eq!(web.init, Some(true));
    assert_eq!(
        (
            web.ports[0].published,
            web.ports[0].published_end,
            web.ports[0].target
        ),
        (Some(8000), Some(8010), 80)
    );
    assert_eq!(
        web.extra_hosts,
        [
            ("cache".into(), "10.0.0.6".into()),
            ("db".into(), "10.0.0.5".into())
        ]
    );
    assert_eq!(
        (p.networks["old"].name.as_str(), p.networks["old"].external),
        ("shared", true)
    );
    assert_eq!(
        (p.volumes["keep"].name.as_str(), p.volumes["keep"].external),
        ("kept", true)
    );
    assert_eq!(p.configs["app"].content.as_deref(), Some("port=1"));
    let d =
        diags("services:\n  web: {image: app:1, secrets: [s]}\nsecrets:\n  s: {external: true}\n");
    assert!(
        d.contains("compose.yaml:2:33: error: service \"web\" uses external secret \"s\""),
        "{d}"
    );
    // Engine API 1.41 cannot carry a file's text: a service mounting one is refused clearly
    // rather than run without the file.
    let d = diags("services:\n  web: {image: app:1, configs: [c]}\nconfigs:\n  c: {content: x}\n");
    assert!(
        d.contains("compose.yaml:2:33: error: service \"web\" mounts config \"c\", whose text is given as content:"),
        "{d}"
    );
}

#[test]
fn environment_entries_with_spaces_around_the_equals_are_refused() {
    let d = diags("services:\n  web:\n    image: app:1\n    environment:\n      - DEBUG = true\n");
    assert!(d.starts_with("compose.yaml:5:9: error:"), "{d}");
}

#[test]
fn on_failure_jobs_are_retried_jobs() {
    let p = project(indoc! {"
        services:
          migrate: {image: app:1, restart: on-failure}
          web:
            image: app:1
            depends_on:
              migrate: {condition: service_completed_successfully}
    "});
    assert!(p.services["migrate"].job);
    assert_eq!(
        p.services["migrate"].restart,
        Restart::OnFailure { max: None }
    );
}

#[test]
fn ipam_platform_runtime_security_opt_and_pull_policy_are_carried() {
    let p = project(indoc! {"
        services:
          web:
            image: app:1
            platform: linux/arm64
            runtime: runc
            security_opt: ['no-new-privileges:true']
            pull_policy: always
            networks:
              back: {ipv4_address: 172.28.0.10}
        networks:
          back:
            ipam:
              config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1}]
    "});
    let web = &p.services["web"];
    assert_eq!(web.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(web.runtime.as_deref(), Some("runc"));
    assert_eq!(web.security_opt, ["no-new-privileges:true"]);
    assert_eq!(web.pull_policy, PullPolicy::Always);
    let ipam = p.networks["back"].ipam.as_ref().unwrap();
    assert_eq!(ipam.config[0].subnet.as_deref(), Some("172.28.0.0/16"));
    assert_eq!(ipam.config[0].gateway.as_deref(), Some("172.28.0.1")); // Sent now (see reconcile::container_spec).
    let d = diags(indoc! {"
        services:
          web: {image: app:1, platform: linux/arm64, runtime: runc, security_opt: [a], pull_policy: always, networks: [back]}
        networks:
          back: {enable_ipv6: true, attachable: true, ipam: {config: [{subnet: 172.28.0.0/16}]}}
    "});
    assert!(!d.contains("platform is read"), "{d}");
    assert!(!d.contains("runtime is read"), "{d}");
    assert!(!d.contains("security_opt is read"), "{d}");
    assert!(!d.contains("ipam is read"), "{d}");
    assert!(!d.contains("enable_ipv6 is read"), "{d}");
}

#[test]
fn pull_policy_says_where_berth_differs_from_compose_up() {
    let d = diags(indoc! {"
        services:
          a: {image: app:1, pull_policy: never}
          b: {image: app:1, pull_policy: missing}
          c: {image: app:1, pull_policy: always}
          d: {image: app:1, pull_policy: daily}
          e: {image: app:1, pull_policy: build}
    "});
    let follow = "berth pulls an image only when it is missing and rolls out only when the desired state changes, so a tag pushed again is not followed; to follow it, use x-berth.update: {policy: digest}";
    assert_eq!(
        d,
        format!(
            "compose.yaml:4:34: warning: services.c.pull_policy \"always\": {follow}\n\
             compose.yaml:5:34: warning: services.d.pull_policy \"daily\": {follow}\n\
             compose.yaml:6:34: error: services.e.pull_policy: build needs a build: section to build the image from; add one or use another pull_policy\n"
        )
    );
}

#[test]
fn the_json_report_lists_every_project_when_one_is_invalid() {
    let t = tempfile::tempdir().unwrap();
    for (dir, text) in [
        ("a", "services:\n  web: {image: app:1}\n"),
        (
            "b",
            "services:\n  web: {image: app:1, restart: sometimes}\n",
        ),
        ("c", "services: [\n"),
    ] {
        std::fs::create_dir_all(t.path().join(dir)).unwrap();
        std::fs::write(t.path().join(dir).join("compose.yaml"), text).unwrap();
    }
    let l = berth::desired::load(t.path(), &LoadOptions::default());
    let v = serde_json::to_value(berth::report::json(&l)).unwrap();
    assert_eq!(v["valid"], false);
    let got: Vec<(String, u64)> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("a".into(), 0), ("b".into(), 1), ("c".into(), 1)]);
}

#[test]
fn an_on_failure_job_is_created_with_the_engine_retrying_it() {
    use berth::engine::labels::Role;
    use berth::reconcile::container_spec::container_create;
    let p = project(indoc! {"
        services:
          migrate: {image: app:1, restart: 'on-failure:3'}
          once: {image: app:1}
          web:
            image: app:1
            restart: on-failure
            depends_on:
              migrate: {condition: service_completed_successfully}
              once: {condition: service_completed_successfully}
    "});
    let c = container_create(&p, &p.services["migrate"], 1, Role::Job, "sha256:x");
    assert_eq!((c.restart.as_str(), c.restart_max), ("on-failure", Some(3)));
    let c = container_create(&p, &p.services["once"], 1, Role::Job, "sha256:x");
    assert_eq!((c.restart.as_str(), c.restart_max), ("no", None));
}

#[test]
fn include_cycles_and_missing_files_are_errors_at_the_include() {
    let (_t, l) = load_dir(
        &[
            (
                "compose.yaml",
                "include: [a/compose.yaml]\nservices:\n  web: {image: app:1}\n",
            ),
            (
                "a/compose.yaml",
                "include: [../compose.yaml]\nservices:\n  a: {image: app:1}\n",
            ),
        ],
        &[],
    );
    let d = l.diagnostics.to_string();
    assert!(
        d.contains("a/compose.yaml:1:11: error: include cycle"),
        "{d}"
    );
    let (_t, l) = load_dir(
        &[(
            "compose.yaml",
            "include: [nope.yaml]\nservices:\n  web: {image: app:1}\n",
        )],
        &[],
    );
    let d = l.diagnostics.to_string();
    assert!(
        d.starts_with("compose.yaml:1:11: error: failed to read nope.yaml"),
        "{d}"
    );
}
