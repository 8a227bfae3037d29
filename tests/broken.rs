//! Each file in tests/broken is a Compose file with a known problem; its `# expect: LINE:COL
//! SEVERITY SUBSTRING` header lines name every diagnostic it must produce. Each file is loaded
//! as `compose.yaml` of its own project directory, as `berth validate` would.

use std::path::{Path, PathBuf};

use berth::desired::{LoadOptions, load};

struct Expect {
    line: u32,
    col: u32,
    severity: String,
    text: String,
}

fn expectations(text: &str) -> Vec<Expect> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|rest| {
            let mut it = rest.splitn(3, ' ');
            let pos = it.next().unwrap_or_default();
            let (line, col) = pos.split_once(':').expect("LINE:COL");
            Expect {
                line: line.parse().expect("line"),
                col: col.parse().expect("col"),
                severity: it.next().expect("severity").to_string(),
                text: it.next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_broken_file_gives_its_positioned_diagnostics() {
    let files = files();
    assert!(files.len() >= 20, "only {} broken files", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let expects = expectations(&text);
        assert!(!expects.is_empty(), "{} has no # expect: line", f.display());
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("compose.yaml"), &text).unwrap();
        let loaded = load(t.path(), &LoadOptions::default());
        let got: Vec<String> = loaded
            .diagnostics
            .sorted()
            .iter()
            .map(|d| d.to_string())
            .collect();
        for e in &expects {
            let prefix = format!("compose.yaml:{}:{}: {}: ", e.line, e.col, e.severity);
            let found = got.iter().any(|g| {
                g.starts_with(&prefix) && g.to_lowercase().contains(&e.text.to_lowercase())
            });
            if !found {
                failures.push(format!(
                    "{}: expected `{prefix}…{}…`, got:\n  {}",
                    f.file_name().unwrap().to_string_lossy(),
                    e.text,
                    got.join("\n  ")
                ));
            }
        }
        let wants_error = expects.iter().any(|e| e.severity == "error");
        if wants_error != loaded.state.is_none() {
            failures.push(format!(
                "{}: valid={} but expected errors={wants_error}",
                f.display(),
                loaded.state.is_some()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
