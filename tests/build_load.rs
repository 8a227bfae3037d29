//! `build:` in the loader: both forms into the typed model, the context resolved against the
//! project directory and refused (with its position) when it leaves the desired-state root.

use std::path::Path;

use berth::desired::model::Build;
use berth::desired::{LoadOptions, load};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn build_of(root: &Path, service: &str) -> Build {
    let l = load(root, &LoadOptions::default());
    let state = l
        .state
        .unwrap_or_else(|| panic!("expected valid, got:\n{}", l.diagnostics));
    let p = state.projects.into_values().next().unwrap();
    p.services[service].build.clone().expect("build")
}

#[test]
fn long_form_reads_every_field_and_resolves_the_context_in_the_project() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "shop/app/Dockerfile.prod", "FROM scratch\n");
    write(
        t.path(),
        "shop/compose.yaml",
        "services:\n  web:\n    image: shop/web:1\n    build:\n      context: ./app\n      \
         dockerfile: Dockerfile.prod\n      args:\n        A: 1\n        B:\n      target: run\n      \
         labels: [l=v]\n      network: none\n      extra_hosts: [\"h:10.0.0.1\"]\n      shm_size: 64m\n",
    );
    let b = build_of(t.path(), "web");
    assert_eq!(b.context, "./app");
    assert_eq!(
        b.context_dir,
        t.path().join("shop/app").canonicalize().unwrap()
    );
    assert_eq!(b.dockerfile.as_deref(), Some("Dockerfile.prod"));
    assert_eq!(b.args.get("A").map(String::as_str), Some("1"));
    assert!(
        !b.args.contains_key("B"),
        "unset variable without value is left out"
    );
    assert_eq!(b.target.as_deref(), Some("run"));
    assert_eq!(b.labels.get("l").map(String::as_str), Some("v"));
    assert_eq!(b.network.as_deref(), Some("none"));
    assert_eq!(
        b.extra_hosts,
        vec![("h".to_string(), "10.0.0.1".to_string())]
    );
    assert_eq!(b.shm_size, Some(64 * 1024 * 1024));
}

#[test]
fn short_form_is_the_context() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "app/Dockerfile", "FROM scratch\n");
    write(
        t.path(),
        "compose.yaml",
        "services:\n  web:\n    image: web:1\n    build: app\n",
    );
    let b = build_of(t.path(), "web");
    assert_eq!(b.context_dir, t.path().join("app").canonicalize().unwrap());
    assert_eq!(b.dockerfile, None);
}

#[test]
fn context_escaping_the_root_is_refused_with_its_position() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    write(
        &root,
        "shop/compose.yaml",
        "services:\n  web:\n    image: web:1\n    build: ../..\n",
    );
    let l = load(&root, &LoadOptions::default());
    assert!(l.state.is_none());
    let d = l.diagnostics.to_string();
    assert!(
        d.starts_with("shop/compose.yaml:4:12: error: build context \"../..\" resolves to "),
        "{d}"
    );
    assert!(d.contains("outside the desired-state root"), "{d}");
}

#[test]
fn a_refused_build_only_service_gets_one_error_not_also_no_image() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    write(
        &root,
        "compose.yaml",
        "services:\n  web:\n    build:\n      context: ../elsewhere\n",
    );
    std::fs::create_dir_all(t.path().join("elsewhere")).unwrap();
    let l = load(&root, &LoadOptions::default());
    assert_eq!(l.diagnostics.errors(), 1, "{}", l.diagnostics);
    let d = l.diagnostics.to_string();
    assert!(d.contains("outside the desired-state root"), "{d}");
    assert!(!d.contains("has no image"), "{d}");
}

#[test]
fn context_escaping_through_a_symlink_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(t.path().join("outside")).unwrap();
    write(
        &root,
        "compose.yaml",
        "services:\n  web:\n    image: web:1\n    build:\n      context: link\n",
    );
    std::os::unix::fs::symlink(t.path().join("outside"), root.join("link")).unwrap();
    let d = load(&root, &LoadOptions::default()).diagnostics.to_string();
    assert!(
        d.starts_with("compose.yaml:5:16: error: build context \"link\" resolves to "),
        "{d}"
    );
}

#[test]
fn remote_context_is_refused() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "compose.yaml",
        "services:\n  web:\n    image: web:1\n    build: https://github.com/x/y.git\n",
    );
    let d = load(t.path(), &LoadOptions::default())
        .diagnostics
        .to_string();
    assert!(
        d.contains(
            "compose.yaml:4:12: error: build context \"https://github.com/x/y.git\" is remote"
        ),
        "{d}"
    );
}

#[test]
fn missing_context_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "compose.yaml",
        "services:\n  web:\n    image: web:1\n    build: nope\n",
    );
    let d = load(t.path(), &LoadOptions::default())
        .diagnostics
        .to_string();
    assert_eq!(
        d,
        "compose.yaml:4:12: error: build context nope not found\n"
    );
}

fn hash_of(root: &Path) -> String {
    build_of(root, "web").content_hash
}

fn context_project(t: &Path) {
    write(t, "app/Dockerfile", "FROM scratch\nCOPY . /\n");
    write(t, "app/bin/tool", "v1");
    write(t, "app/notes.log", "ignored");
    write(t, "app/.dockerignore", "*.log\ncache\n");
    write(t, "app/cache/big", "ignored too");
    write(
        t,
        "compose.yaml",
        "services:\n  web:\n    image: web:1\n    build: app\n",
    );
}

#[test]
fn content_hash_is_stable_when_nothing_changed() {
    let t = tempfile::tempdir().unwrap();
    context_project(t.path());
    let a = hash_of(t.path());
    assert_eq!(a.len(), 64);
    assert_eq!(hash_of(t.path()), a);
}

#[test]
fn content_hash_ignores_files_the_dockerignore_excludes() {
    let t = tempfile::tempdir().unwrap();
    context_project(t.path());
    let a = hash_of(t.path());
    write(t.path(), "app/notes.log", "changed");
    write(t.path(), "app/cache/big", "changed");
    write(t.path(), "app/cache/new", "new");
    assert_eq!(hash_of(t.path()), a);
}

#[test]
fn content_hash_changes_with_a_file_the_dockerfile_args_and_the_image_name() {
    let t = tempfile::tempdir().unwrap();
    context_project(t.path());
    let a = hash_of(t.path());
    write(t.path(), "app/bin/tool", "v2");
    let b = hash_of(t.path());
    assert_ne!(b, a, "changed file");
    write(t.path(), "app/Dockerfile", "FROM scratch\nCOPY bin /\n");
    let c = hash_of(t.path());
    assert_ne!(c, b, "changed Dockerfile");
    write(t.path(), "app/bin/new", "x");
    let d = hash_of(t.path());
    assert_ne!(d, c, "added file");
    write(
        t.path(),
        "compose.yaml",
        "services:\n  web:\n    image: web:2\n    build: app\n",
    );
    let e = hash_of(t.path());
    assert_ne!(e, d, "image name");
    write(
        t.path(),
        "compose.yaml",
        "services:\n  web:\n    image: web:2\n    build:\n      context: app\n      args: [A=1]\n",
    );
    assert_ne!(hash_of(t.path()), e, "args");
}

#[test]
fn content_hash_sees_a_same_size_rewrite() {
    let t = tempfile::tempdir().unwrap();
    context_project(t.path());
    let a = hash_of(t.path());
    write(t.path(), "app/bin/tool", "v9");
    assert_ne!(hash_of(t.path()), a);
}

#[test]
fn missing_dockerfile_is_a_positioned_error() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "app/x", "");
    write(
        t.path(),
        "compose.yaml",
        "services:\n  web:\n    image: web:1\n    build: app\n",
    );
    let d = load(t.path(), &LoadOptions::default())
        .diagnostics
        .to_string();
    assert!(
        d.starts_with("compose.yaml:4:12: error: build context app: failed to read "),
        "{d}"
    );
}

#[test]
fn build_timeout_is_read_from_x_berth_with_a_default_and_zero_is_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "Dockerfile", "FROM scratch\n");
    write(
        t.path(),
        "compose.yaml",
        "name: shop\nx-berth: {build_timeout: 5m}\nservices:\n  a: {build: .}\n  \
         b: {build: ., x-berth: {build_timeout: 90s}}\n  c: {image: 'app:1'}\n",
    );
    let l = load(t.path(), &LoadOptions::default());
    let state = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
    let s = &state.projects["shop"].services;
    assert_eq!(
        s["a"].berth.build_timeout,
        std::time::Duration::from_secs(300)
    );
    assert_eq!(
        s["b"].berth.build_timeout,
        std::time::Duration::from_secs(90)
    );

    write(
        t.path(),
        "compose.yaml",
        "name: shop\nservices:\n  a:\n    build: .\n    x-berth: {build_timeout: 0s}\n",
    );
    let d = load(t.path(), &LoadOptions::default())
        .diagnostics
        .to_string();
    assert!(
        d.starts_with(
            "compose.yaml:5:30: error: services.a.x-berth.build_timeout must be longer than 0"
        ),
        "{d}"
    );

    write(
        t.path(),
        "compose.yaml",
        "name: shop\nservices:\n  a: {build: .}\n",
    );
    let l = load(t.path(), &LoadOptions::default());
    assert_eq!(
        l.state.unwrap().projects["shop"].services["a"]
            .berth
            .build_timeout,
        std::time::Duration::from_secs(30 * 60)
    );
}

#[test]
fn a_dockerfile_beside_the_context_is_sent_by_its_text_and_one_outside_the_root_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    write(&root, "app/main.txt", "x");
    write(&root, "Dockerfile.web", "FROM scratch\nCOPY main.txt /\n");
    write(
        &root,
        "compose.yaml",
        "services:\n  web:\n    build:\n      context: app\n      dockerfile: ../Dockerfile.web\n",
    );
    let b = build_of(&root, "web");
    assert_eq!(
        b.dockerfile_inline.as_deref(),
        Some("FROM scratch\nCOPY main.txt /\n")
    );

    // A symlink in the context that leads out of the root is refused, not followed.
    write(t.path(), "outside/Dockerfile", "FROM scratch\n");
    std::os::unix::fs::symlink(t.path().join("outside/Dockerfile"), root.join("app/Df")).unwrap();
    write(
        &root,
        "compose.yaml",
        "services:\n  web:\n    build:\n      context: app\n      dockerfile: Df\n",
    );
    let d = load(&root, &LoadOptions::default()).diagnostics.to_string();
    assert!(
        d.starts_with(
            "compose.yaml:5:19: error: services.web.build.dockerfile \"Df\" is outside the desired-state root"
        ),
        "{d}"
    );
}
