//! `DockerEngine::build_image` against the real engine (issue 8): the context tarred and
//! streamed in-process, `.dockerignore` honoured, `dockerfile_inline`, build args and labels,
//! and a broken Dockerfile failing with its last log lines. Offline only: `FROM scratch` plus
//! Debian's static busybox copied into the context. Each test tags its own images
//! (`berthtest-build-<pid>-<n>`) and removes them when it ends.

mod support {
    pub mod tier;
}

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth::engine::docker::DockerEngine;
use berth::engine::{BuildSpec, Engine, EngineError};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn docker(args: &[&str]) -> (bool, String) {
    let o = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// An image tag this test owns, removed at the end.
struct Tag(String);

impl Tag {
    fn new() -> Tag {
        support::tier::require_engine();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Tag(format!("berthtest-build-{}-{n}:t", std::process::id()))
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// `dockerfile` with a `LABEL` naming `tag` right after `FROM`: the test's build layers are
/// its own. Identical steps would share the engine's build cache with the other tests, whose
/// clean-up (`docker rmi`, which also deletes untagged parents) could then delete a cached
/// layer in the middle of this test's build ("unknown parent image ID").
fn own_cache(tag: &Tag, dockerfile: &str) -> String {
    dockerfile.replacen(
        "FROM scratch\n",
        &format!("FROM scratch\nLABEL berthtest.cache=\"{}\"\n", tag.0),
        1,
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A context with the static busybox and `text` as its Dockerfile.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::copy("/bin/busybox", t.path().join("busybox")).unwrap();
    write(t.path(), "Dockerfile", dockerfile);
    t
}

fn spec(dir: &Path, tag: &Tag) -> BuildSpec {
    BuildSpec {
        context_dir: dir.to_path_buf(),
        dockerfile: "Dockerfile".into(),
        dockerfile_inline: None,
        tag: tag.0.clone(),
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        network: None,
        extra_hosts: Vec::new(),
        shm_size: None,
        timeout: Duration::from_secs(120),
    }
}

/// Runs `cmd` in a throwaway container of `image` (no network).
fn run(image: &str, cmd: &[&str]) -> (bool, String) {
    let mut args = vec!["run", "--rm", "--network", "none", image];
    args.extend_from_slice(cmd);
    docker(&args)
}

#[tokio::test]
async fn builds_from_the_context_honouring_dockerignore_args_and_labels() {
    let engine = DockerEngine::connect(None).unwrap();
    let ctx = context(
        "FROM scratch\nARG GREETING\nCOPY busybox /bin/busybox\nCOPY . /ctx/\n\
         LABEL greeting=$GREETING\n",
    );
    write(ctx.path(), "app/kept.txt", "kept");
    write(ctx.path(), "app/skip.log", "ignored");
    write(ctx.path(), "secret/key", "ignored");
    write(ctx.path(), ".dockerignore", "*/*.log\nsecret\n");
    let tag = Tag::new();
    let mut s = spec(ctx.path(), &tag);
    s.args.insert("GREETING".into(), "hello".into());
    s.labels.insert("berthtest.build".into(), "1".into());
    let id = engine.build_image(&s).await.unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    let (ok, out) = run(&tag.0, &["/bin/busybox", "find", "/ctx"]);
    assert!(ok, "{out}");
    assert!(out.contains("/ctx/app/kept.txt"), "{out}");
    assert!(!out.contains("skip.log"), "{out}");
    assert!(!out.contains("secret"), "{out}");
    let (_, labels) = docker(&["inspect", "-f", "{{json .Config.Labels}}", &tag.0]);
    assert!(labels.contains("\"greeting\":\"hello\""), "{labels}");
    assert!(labels.contains("\"berthtest.build\":\"1\""), "{labels}");
}

#[tokio::test]
async fn dockerfile_inline_is_used_instead_of_the_file() {
    let engine = DockerEngine::connect(None).unwrap();
    let ctx = context("FROM scratch\nBROKEN\n");
    let tag = Tag::new();
    let mut s = spec(ctx.path(), &tag);
    s.dockerfile_inline = Some(own_cache(&tag, "FROM scratch\nCOPY busybox /bin/busybox\n"));
    engine.build_image(&s).await.unwrap();
    let (ok, out) = run(&tag.0, &["/bin/busybox", "echo", "inline-ok"]);
    assert!(ok && out.contains("inline-ok"), "{out}");
}

#[tokio::test]
async fn a_broken_dockerfile_fails_with_its_last_log_lines() {
    let engine = DockerEngine::connect(None).unwrap();
    let tag = Tag::new();
    let ctx = context(&own_cache(
        &tag,
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY missing-file /x\n",
    ));
    let err = engine
        .build_image(&spec(ctx.path(), &tag))
        .await
        .unwrap_err();
    let EngineError::BuildFailed { .. } = &err else {
        panic!("expected BuildFailed, got {err:?}");
    };
    assert_eq!(err.op().as_str(), "build image");
    let text = err.to_string();
    assert!(text.contains("missing-file"), "{text}");
    assert!(
        text.contains("Step 4/4") || text.contains("COPY missing-file"),
        "{text}"
    );
    let (exists, _) = docker(&["image", "inspect", &tag.0]);
    assert!(!exists, "nothing tagged");
}
