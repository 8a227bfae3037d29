//! The shipped monitoring (deploy/prometheus, deploy/grafana): every berth metric the rules
//! and the dashboard query is one berth exposes. That the rules pass `promtool` (check and unit
//! tests) is in `tools_docker.rs` (the engine tier: it needs Prometheus's tools).

use std::collections::BTreeSet;
use std::path::PathBuf;

use berth::telemetry::metrics::Metrics;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `berth_*` series name berth exposes (classic text format names).
fn exposed() -> BTreeSet<String> {
    let m = Metrics::new();
    m.rollout(
        "p",
        "s",
        "succeeded",
        Some(std::time::Duration::from_secs(1)),
    );
    m.self_heal("p", "s", "exited");
    m.probe_failure("p", "s", "readiness");
    m.source(true, "dir", Some("abc"));
    // A host whose services hand off ports: berth_proxy_up is exposed.
    m.proxy(berth::proxy::metrics::Seen::NotAnswering);
    let svc: berth::telemetry::status::ServiceStatus = serde_json::from_value(serde_json::json!({
        "project": "p", "service": "s", "job": false,
        "desired": {"hash": "abc", "image": "app:1", "revision": 1},
        "running": [], "ready": 1, "replicas": 1, "phase": "Idle",
        "since": "2024-05-01T12:00:00Z", "reason": "", "conditions": [], "last_rollout": null
    }))
    .unwrap();
    m.services(&[svc], &Default::default());
    m.prometheus_text()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("berth_") {
        let start = i + pos;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let preceded = start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        if !preceded {
            let name = &text[start..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            out.insert(base.to_string());
        }
        i = end.max(start + 1);
    }
    out
}

#[test]
fn the_rules_and_the_dashboard_query_only_metrics_berth_exposes() {
    let exposed = exposed();
    for name in [
        "berth_reconcile_total",
        "berth_reconcile_duration_seconds",
        "berth_desired_state_valid",
        "berth_desired_state_info",
        "berth_last_applied_timestamp_seconds",
        "berth_service_ready",
        "berth_service_info",
        "berth_rollouts_total",
        "berth_rollout_duration_seconds",
        "berth_reverts_total",
        "berth_self_heals_total",
        "berth_probe_failures_total",
        "berth_docker_api_errors_total",
        "berth_build_info",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed:?}");
    }
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/berth-alerts.yml")).unwrap();
    let dashboard =
        std::fs::read_to_string(root().join("deploy/grafana/berth-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10));
    for (file, text) in [
        ("berth-alerts.yml", &rules),
        ("berth-dashboard.json", &dashboard),
    ] {
        let used = referenced(text);
        assert!(!used.is_empty(), "{file}");
        for name in used {
            assert!(
                exposed.contains(&name),
                "{file} queries {name}, which berth does not expose"
            );
        }
    }
}
