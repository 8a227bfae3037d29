//! Property tests of the spec hash: spelling never matters, content always does.

use berth::desired::{LoadOptions, load_inline};
use proptest::prelude::*;

fn hash(yaml: &str) -> String {
    let l = load_inline(yaml, &LoadOptions::default());
    let s = l
        .state
        .unwrap_or_else(|| panic!("{yaml}\n{}", l.diagnostics));
    s.projects["project"].services["w"].spec_hash.clone()
}

/// Service fields as `key: value` lines (flow style so each is one line).
const FIELDS: &[&str] = &[
    "image: app:1.2.3",
    "command: [serve, --port, '8080']",
    "environment: {A: '1', B: two, C: ''}",
    "ports: ['127.0.0.1:8080:8080', '9090']",
    "volumes: ['data:/data', {type: tmpfs, target: /tmp}]",
    "labels: {team: web, tier: front}",
    "healthcheck: {test: [CMD, probe], interval: 10s, retries: 3}",
    "restart: unless-stopped",
    "user: '1000:1000'",
    "cap_drop: [ALL]",
    "deploy: {replicas: 1, resources: {limits: {memory: 64m}}}",
    "x-berth: {readiness: {http: {port: 8080, path: /health}}}",
];

fn doc(order: &[usize], env_as_list: bool) -> String {
    let mut s = String::from("volumes: {data: {}}\nservices:\n  w:\n");
    for &i in order {
        let f = if env_as_list && FIELDS[i].starts_with("environment") {
            "environment: [B=two, C=, A=1]"
        } else {
            FIELDS[i]
        };
        s.push_str(&format!("    {f}\n"));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn key_order_and_environment_form_do_not_change_the_hash(
        order in Just((0..FIELDS.len()).collect::<Vec<_>>()).prop_shuffle(),
        env_as_list in any::<bool>(),
    ) {
        let canonical: Vec<usize> = (0..FIELDS.len()).collect();
        prop_assert_eq!(hash(&doc(&order, env_as_list)), hash(&doc(&canonical, false)));
    }

    #[test]
    fn any_environment_value_change_changes_the_hash(value in "[a-zA-Z0-9 ._-]{0,12}") {
        prop_assume!(value != "two");
        let base: Vec<usize> = (0..FIELDS.len()).collect();
        let changed = doc(&base, false).replace("B: two", &format!("B: '{value}'"));
        prop_assert_ne!(hash(&changed), hash(&doc(&base, false)));
    }

    #[test]
    fn replicas_and_probe_settings_never_change_the_hash(replicas in 0u32..50, port in 1u16..65535) {
        let base: Vec<usize> = (0..FIELDS.len()).collect();
        let changed = doc(&base, false)
            .replace("'127.0.0.1:8080:8080', ", "").replace("replicas: 1", &format!("replicas: {replicas}"))
            .replace("http: {port: 8080", &format!("http: {{port: {port}"));
        let unpublished = doc(&base, false).replace("'127.0.0.1:8080:8080', ", "");
        prop_assert_eq!(hash(&changed), hash(&unpublished));
    }
}

#[test]
fn anchored_and_merged_blocks_hash_like_the_written_out_service() {
    let anchored = "x-base: &base\n  image: app:1.2.3\n  environment: &env {A: '1'}\nservices:\n  w:\n    <<: *base\n    labels: {x: y}\n";
    let plain =
        "services:\n  w:\n    labels: {x: y}\n    environment: {A: '1'}\n    image: app:1.2.3\n";
    assert_eq!(hash(anchored), hash(plain));
}
