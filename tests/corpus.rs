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

/// The Compose reference implementation's loader fixtures (compose-spec/compose-go), kept
/// outside this repository in `../shared/corpus/compose-go` (override with
/// `BERTH_COMPOSE_GO_CORPUS`): berth's verdict (valid / invalid) must be the verdict
/// compose-go's own tests assert, except for the fixtures in [`DELIBERATE`].
mod compose_go {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use berth::desired::merge;
    use berth::desired::node::Node;
    use berth::desired::{LoadOptions, load};

    /// Fixtures where berth deliberately differs from compose-go, with the reason.
    pub const DELIBERATE: &[(&str, &str)] = &[
        // Swarm objects: berth runs on one Engine and has no Swarm secret/config store.
        (
            "loader_loader__TestWithoutUnnecessaryResourcesOption_AllResourceKinds",
            SWARM,
        ),
        ("loader_loader__TestXService", SWARM),
        ("loader_tests_configs__TestServiceConfigs", SWARM),
        ("loader_tests_secrets__TestServiceSecrets", SWARM),
        ("loader_tests_template_driver__TestSecretDriver", SWARM),
        // Checks compose leaves to `up`, which berth makes before deploying anything.
        (
            "loader_tests_secrets__TestTopLevelSecrets",
            "a secret's file: must exist (compose fails at `up`; berth says so at validate)",
        ),
        (
            "loader_loader_yaml__TestParseYAMLFilesMergeOverride",
            NO_IMAGE,
        ),
        (
            "loader_loader__TestLoadWithRemoteResources",
            "remote include/extends (git, oci) are not read: the desired state is the repository; the service is then left without image",
        ),
        (
            "loader_override__TestOverrideSelfExtends",
            "two services publish host port 8091: compose fails at `up`, berth refuses the file",
        ),
        (
            "loader_loader__TestLoadNetworksWarnOnDeprecatedExternalName",
            NO_SERVICES,
        ),
        (
            "loader_loader__TestLoadSecretsWarnOnDeprecatedExternalName",
            NO_SERVICES,
        ),
        (
            "loader_loader__TestLoadVolumesWarnOnDeprecatedExternalName",
            NO_SERVICES,
        ),
        ("loader_loader__TestLoadWithNestedResources", NO_SERVICES),
        // What the Engine API berth speaks (1.41) or the host cannot do.
        (
            "loader_testdata_compose-test-extends-with-context-url.yaml",
            "a build context URL: berth builds only from the desired-state repository, so a revision is what was committed",
        ),
        (
            "loader_tests_volumes__TestImageVolume",
            "type: image mounts need Engine API 1.47; berth speaks 1.41",
        ),
        (
            "loader_tests_volumes__TestNpipeVolume",
            "type: npipe is a Windows named pipe; berth runs Linux containers",
        ),
        // Unknown keys: berth warns with the key's path and deploys the rest, compose refuses.
        ("loader_loader__TestInvalidResource", UNKNOWN_KEY),
        (
            "loader_loader__TestLoadTmpfsVolumeAdditionalPropertyNotAllowed",
            UNKNOWN_KEY,
        ),
    ];
    const SWARM: &str = "a service uses an external or driver-backed secret/config: that lives in a Swarm store, which berth (one Engine, no Swarm) does not have";
    const NO_IMAGE: &str =
        "a service with neither image nor build: compose fails at `up`, berth refuses the file";
    const NO_SERVICES: &str = "a project without services deploys nothing: berth reports the file rather than silently running nothing";
    const UNKNOWN_KEY: &str =
        "an unknown key is a warning with its path (the rest deploys as written), not an error";

    fn corpus() -> PathBuf {
        match std::env::var_os("BERTH_COMPOSE_GO_CORPUS") {
            Some(p) => PathBuf::from(p),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/compose-go"),
        }
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }

    /// Creates the build contexts, Dockerfiles and files the fixture's YAML files name but
    /// compose-go's loader never reads (the corpus leaves Dockerfiles out and asks for this):
    /// empty files, a one-line Dockerfile. compose-go does not look at a build context; berth
    /// hashes it, so it must exist.
    fn create_named_files(root: &Path) {
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    create_named_by(&p);
                }
            }
        }
    }

    fn create_named_by(file: &Path) {
        let dir = file.parent().unwrap();
        let Ok(text) = std::fs::read_to_string(file) else {
            return;
        };
        let Ok(doc) = merge::parse(&std::sync::Arc::from("f.yaml"), &text) else {
            return;
        };
        let rel = |p: &str| -> Option<PathBuf> {
            (!p.contains('$') && !p.starts_with('/') && !p.contains("://")).then(|| dir.join(p))
        };
        let touch = |p: PathBuf| {
            if !p.exists() {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, "").unwrap();
            }
        };
        let mkdir = |p: PathBuf| {
            if !p.exists() {
                std::fs::create_dir_all(&p).unwrap();
            }
        };
        let services = doc.get("services").and_then(Node::as_map).unwrap_or(&[]);
        let mkdir_df = |d: PathBuf| {
            mkdir(d.clone());
            if !d.join("Dockerfile").exists() {
                std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
            }
        };
        for (_, svc) in services {
            match svc.get("build") {
                Some(b) if b.as_str().is_some() => {
                    if let Some(d) = rel(b.as_str().unwrap()) {
                        mkdir_df(d);
                    }
                }
                Some(b) => {
                    let ctx = b.get("context").and_then(Node::as_str).unwrap_or(".");
                    if let Some(d) = rel(ctx) {
                        mkdir(d.clone());
                        let df = b
                            .get("dockerfile")
                            .and_then(Node::as_str)
                            .unwrap_or("Dockerfile");
                        if !df.starts_with('/') && !d.join(df).exists() {
                            std::fs::create_dir_all(d.join(df).parent().unwrap()).unwrap();
                            std::fs::write(d.join(df), "FROM scratch\n").unwrap();
                        }
                    }
                }
                None => {}
            }
            let env_files: Vec<&Node> = match svc.get("env_file") {
                Some(n) if n.as_seq().is_some() => n.as_seq().unwrap().iter().collect(),
                Some(n) => vec![n],
                None => vec![],
            };
            for f in env_files {
                let p = f.as_str().or_else(|| f.get("path").and_then(Node::as_str));
                if let Some(p) = p.and_then(rel) {
                    touch(p);
                }
            }
        }
        for top in ["secrets", "configs"] {
            for (_, o) in doc.get(top).and_then(Node::as_map).unwrap_or(&[]) {
                if let Some(p) = o.get("file").and_then(Node::as_str).and_then(rel) {
                    touch(p);
                }
            }
        }
    }

    /// berth's verdict on every fixture: (dir, expected valid, berth valid, first error).
    pub fn verdicts() -> Vec<(String, bool, bool, String)> {
        let root = corpus();
        let expect = std::fs::read_to_string(root.join("expect.tsv")).unwrap_or_else(|e| {
            panic!(
                "the compose-go fixtures are missing ({}: {e}); they live outside the repository \
                 in ../shared/corpus/compose-go, or set BERTH_COMPOSE_GO_CORPUS",
                root.display()
            )
        });
        let mut out = Vec::new();
        for line in expect.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (dir, expected) = (cols[0], cols[1] == "valid");
            let t = tempfile::tempdir().unwrap();
            // The directory name is the fallback project name; keep it a valid one.
            let work = t.path().join("fixture");
            copy_dir(&root.join(dir), &work);
            create_named_files(&work);
            let l = load(&work, &LoadOptions::default());
            let first = l
                .diagnostics
                .sorted()
                .into_iter()
                .find(|d| d.severity == berth::desired::Severity::Error)
                .map(|d| d.to_string())
                .unwrap_or_default();
            out.push((dir.to_string(), expected, l.state.is_some(), first));
        }
        out
    }

    #[test]
    fn berth_agrees_with_compose_go_on_its_fixtures() {
        let all = verdicts();
        assert!(all.len() >= 200, "only {} fixtures", all.len());
        let deliberate: BTreeMap<&str, &str> = DELIBERATE.iter().copied().collect();
        let mut disagree = Vec::new();
        let mut agree = 0;
        for (dir, expected, got, first) in &all {
            if expected == got {
                agree += 1;
                assert!(
                    !deliberate.contains_key(dir.as_str()),
                    "{dir} is listed as a deliberate difference but berth agrees"
                );
            } else if !deliberate.contains_key(dir.as_str()) {
                let want = if *expected { "valid" } else { "invalid" };
                disagree.push(format!("{dir}: compose-go says {want}; berth: {first}"));
            }
        }
        eprintln!(
            "compose-go fixtures: {agree} of {} agree, {} deliberate differences",
            all.len(),
            deliberate.len()
        );
        assert!(
            disagree.is_empty(),
            "{} disagreements:\n{}",
            disagree.len(),
            disagree.join("\n")
        );
    }
}
