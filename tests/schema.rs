//! The editor schema for `x-berth` (manifests/berth.schema.json) against every `x-berth` block
//! berth ships or tests with: the quickstart and the corpus must pass it, blocks with a wrong
//! type or a missing probe target must fail it, and so must the x-berth cases of tests/broken.
//!
//! The schema checks raw text before interpolation and is stricter than berth (unknown keys
//! fail here, berth only warns); the loader stays the authority on what is valid.

use std::path::{Path, PathBuf};

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

/// Compose file names berth reads (docs/format.md#layout) and their override files.
const COMPOSE_FILES: [&str; 8] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read_json(rel: &str) -> Value {
    let path = repo(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str::<Value>(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn berth_schema() -> Validator {
    jsonschema::draft7::new(&read_json("manifests/berth.schema.json")).expect("schema compiles")
}

/// Serves `berth.schema.json` to the overlay's relative `$ref`; nothing is fetched.
struct Local;

impl Retrieve for Local {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.as_str().ends_with("/berth.schema.json") {
            Ok(read_json("manifests/berth.schema.json"))
        } else {
            Err(format!("unexpected schema reference {}", uri.as_str()).into())
        }
    }
}

fn overlay_schema() -> Validator {
    jsonschema::draft7::options()
        .with_retriever(Local)
        .build(&read_json("manifests/compose-berth.schema.json"))
        .expect("overlay compiles")
}

/// Every Compose file under `rel`, recursively, in a stable order.
fn compose_files(rel: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| COMPOSE_FILES.contains(&n))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo(rel), &mut out);
    out
}

/// The `x-berth` blocks of one Compose document, with their path for messages.
fn blocks(doc: &Value) -> Vec<(String, &Value)> {
    let mut v = Vec::new();
    if let Some(b) = doc.get("x-berth") {
        v.push(("x-berth".to_string(), b));
    }
    if let Some(services) = doc.get("services").and_then(Value::as_object) {
        for (name, svc) in services {
            if let Some(b) = svc.get("x-berth") {
                v.push((format!("services.{name}.x-berth"), b));
            }
        }
    }
    v
}

fn errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

fn shipped_files() -> Vec<PathBuf> {
    let mut files = compose_files("examples/quickstart");
    files.extend(compose_files("tests/corpus"));
    files
}

#[test]
fn the_schemas_are_valid_draft_7() {
    for rel in [
        "manifests/berth.schema.json",
        "manifests/compose-berth.schema.json",
    ] {
        let schema = read_json(rel);
        if let Err(e) = jsonschema::draft7::meta::validate(&schema) {
            panic!("{rel} is not a valid draft-07 schema: {e}");
        }
    }
}

#[test]
fn every_x_berth_block_of_the_quickstart_and_the_corpus_passes() {
    let schema = berth_schema();
    let files = shipped_files();
    assert!(
        files.len() >= 20,
        "only {} Compose files found",
        files.len()
    );

    let (mut checked, mut top_level, mut failures) = (0, 0, Vec::new());
    let mut kinds = std::collections::BTreeSet::new();
    for f in &files {
        let doc = yaml(&std::fs::read_to_string(f).unwrap());
        for (path, block) in blocks(&doc) {
            checked += 1;
            top_level += usize::from(path == "x-berth");
            for probe in ["readiness", "liveness"] {
                if let Some(p) = block.get(probe).and_then(Value::as_object) {
                    kinds.extend(
                        ["http", "tcp", "exec"]
                            .into_iter()
                            .filter(|k| p.contains_key(*k)),
                    );
                }
            }
            for e in errors(&schema, block) {
                failures.push(format!("{}: {path} {e}", f.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The walk really found the blocks: enough of them, at both levels, of every probe kind.
    assert!(checked >= 40, "only {checked} x-berth blocks found");
    assert!(
        top_level >= 3,
        "only {top_level} top-level x-berth blocks found"
    );
    assert_eq!(kinds.len(), 3, "probe kinds seen: {kinds:?}");
}

#[test]
fn every_shipped_compose_file_passes_the_overlay() {
    let overlay = overlay_schema();
    let mut failures = Vec::new();
    for f in shipped_files() {
        let doc = yaml(&std::fs::read_to_string(&f).unwrap());
        for e in errors(&overlay, &doc) {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_documented_example_and_every_value_form_pass() {
    let schema = berth_schema();
    let ok = [
        // docs/format.md#x-berth, as written there.
        r#"
readiness:
  http: { port: 8080, path: /health, status: "200-399", body_contains: "ok" }
  interval: 2s
  timeout: 1s
  success_threshold: 1
  failure_threshold: 3
liveness:
  tcp: { port: 5432 }
min_ready: 10s
progress_deadline: 2m
auto_revert: true
smoke: { image: "curlimages/curl:8.7.1", command: ["curl", "-f", "http://web:8080/"], timeout: 60s }
hold: false
"#,
        "readiness: { http: { port: 80, status: 200 } }",
        "readiness: { http: { port: \"8080\", status: \"204\" } }",
        "readiness: { exec: pg_isready -U app }",
        "readiness: { exec: [pg_isready, -U, app], interval: 500ms, timeout: 1m30s }",
        "liveness: { tcp: { port: 6379 }, interval: 1.5s, failure_threshold: 10 }",
        "smoke: { command: make smoke }",
        "smoke: { image: ghcr.io/example/smoke:1, command: [run], timeout: 2m }",
        "progress_deadline: 0",
        "progress_deadline: +90s",
        "auto_revert: \"false\"",
        "readiness: { tcp: { port: 80 }, success_threshold: \"2\" }",
        "min_ready: ${MIN_READY:-10s}",
        "readiness: { http: { port: \"${PORT}\", path: \"${HEALTH_PATH:-/health}\" } }",
        "handoff: http",
        "handoff: { mode: http, ports: { 5432: tcp }, drain_timeout: 20s, proxy_protocol: true }",
        "{}",
    ];
    for text in ok {
        let e = errors(&schema, &yaml(text));
        assert!(e.is_empty(), "{text}\n{}", e.join("\n"));
    }
}

#[test]
fn wrong_blocks_fail() {
    let schema = berth_schema();
    let bad = [
        ("not a mapping", "[readiness]"),
        ("probe without a target", "readiness: { interval: 2s }"),
        (
            "two targets",
            "readiness: { http: { port: 80 }, tcp: { port: 80 } }",
        ),
        (
            "http without port",
            "readiness: { http: { path: /health } }",
        ),
        ("port out of range", "readiness: { tcp: { port: 70000 } }"),
        (
            "port of the wrong type",
            "readiness: { tcp: { port: [80] } }",
        ),
        (
            "status out of range",
            "readiness: { http: { port: 80, status: \"600-100\" } }",
        ),
        (
            "path without slash",
            "readiness: { http: { port: 80, path: health } }",
        ),
        ("empty exec", "readiness: { exec: [] }"),
        (
            "zero threshold",
            "readiness: { tcp: { port: 80 }, success_threshold: 0 }",
        ),
        (
            "threshold as text",
            "readiness: { tcp: { port: 80 }, failure_threshold: three }",
        ),
        ("duration without unit", "min_ready: 10"),
        ("unknown unit", "progress_deadline: 1x"),
        ("boolean as text", "auto_revert: \"yes\""),
        ("boolean as number", "hold: 1"),
        ("smoke with nothing to run", "smoke: { timeout: 60s }"),
        (
            "smoke without command",
            "smoke: { image: ghcr.io/example/smoke:1 }",
        ),
        ("negative duration", "min_ready: -10s"),
        ("unknown key", "readyness: { tcp: { port: 80 } }"),
        ("unknown handoff mode", "handoff: udp"),
        (
            "handoff port not a number",
            "handoff: { ports: { web: http } }",
        ),
        ("unknown handoff key", "handoff: { mode: tcp, drain: 5s }"),
        (
            "unknown probe key",
            "readiness: { tcp: { port: 80 }, retries: 3 }",
        ),
    ];
    let mut passed = Vec::new();
    for (what, text) in bad {
        if schema.is_valid(&yaml(text)) {
            passed.push(format!("{what}: {text}"));
        }
    }
    assert!(
        passed.is_empty(),
        "accepted but should fail:\n{}",
        passed.join("\n")
    );

    // The overlay catches the same mistake inside a whole Compose file, at either level.
    let overlay = overlay_schema();
    for text in [
        "services:\n  web:\n    image: app:1\n    x-berth:\n      min_ready: 10\n",
        "x-berth:\n  auto_revert: maybe\nservices:\n  web:\n    image: app:1\n",
    ] {
        assert!(!overlay.is_valid(&yaml(text)), "overlay accepted:\n{text}");
    }
}

#[test]
fn the_x_berth_cases_of_tests_broken_fail_the_schema_too() {
    let schema = berth_schema();
    for name in [
        "readiness-without-target",
        "probe-status-range",
        "x-berth-unknown-key",
    ] {
        let rel = format!("tests/broken/{name}.yaml");
        let doc = yaml(&std::fs::read_to_string(repo(&rel)).unwrap());
        let found = blocks(&doc);
        assert!(!found.is_empty(), "{rel}: no x-berth block");
        assert!(
            found.iter().any(|(_, b)| !schema.is_valid(b)),
            "{rel}: every x-berth block passes the schema"
        );
    }
}
