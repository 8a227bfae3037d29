//! The corpus of realistic Compose projects (tests/corpus) and the examples must validate
//! without errors: berth reads existing files unchanged.

use std::path::{Path, PathBuf};

use berth::desired::{LoadOptions, load};

fn dirs(parent: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(parent);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn opts() -> LoadOptions {
    // Only what the files themselves provide: the tests must not depend on the caller's env.
    LoadOptions::default()
}

#[test]
fn every_corpus_project_validates() {
    let all = dirs("tests/corpus");
    assert!(
        all.len() >= 15,
        "the corpus has only {} projects",
        all.len()
    );
    let mut failed = Vec::new();
    let mut services = 0;
    for d in &all {
        let l = load(d, &opts());
        match &l.state {
            Some(s) => services += s.projects.values().map(|p| p.services.len()).sum::<usize>(),
            None => failed.push(format!("{}:\n{}", d.display(), l.diagnostics)),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert!(services >= 50, "only {services} services in the corpus");
}

#[test]
fn a_directory_of_projects_loads_each_subdirectory() {
    let l = load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/multi"),
        &opts(),
    );
    let state = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
    assert!(state.projects.len() >= 3, "{:?}", state.projects.keys());
}

#[test]
fn examples_validate_without_warnings() {
    for d in dirs("examples") {
        // Examples that need host-side secrets ship `host.env.example` (what an operator puts
        // in --env-dir as `<project>.env`); without it they are refused at the line.
        let env = tempfile::tempdir().unwrap();
        let mut o = opts();
        let sample = d.join("host.env.example");
        if sample.is_file() {
            let project = d.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::copy(&sample, env.path().join(format!("{project}.env"))).unwrap();
            o.env_dir = Some(env.path().to_path_buf());
        }
        let l = load(&d, &o);
        assert!(l.state.is_some(), "{}:\n{}", d.display(), l.diagnostics);
        assert_eq!(
            l.diagnostics.warnings(),
            0,
            "{}:\n{}",
            d.display(),
            l.diagnostics
        );
    }
}

#[test]
fn the_whole_corpus_as_one_host_reports_clashes_across_projects() {
    // Loading two copies of one project as a multi-project root: same container names and
    // host ports on one host must be refused.
    let t = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        let d = t.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("compose.yaml"),
            format!("name: p{sub}\nservices:\n  web:\n    image: app:1\n    container_name: web\n    ports: ['8080:80']\n"),
        )
        .unwrap();
    }
    let l = load(t.path(), &opts());
    assert!(l.state.is_none());
    let text = l.diagnostics.to_string();
    assert!(text.contains("b/compose.yaml:5:21: error: container_name \"web\" of pb/web is already used by pa/web (a/compose.yaml:5:21)"), "{text}");
    assert!(text.contains("b/compose.yaml:6:13: error: host port 8080/tcp of pb/web is already published by pa/web (a/compose.yaml:6:13)"), "{text}");
}
