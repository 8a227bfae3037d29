//! The git source against real repositories (`file://` remotes in temp dirs): a commit is
//! served, a bad commit keeps the last good one until a fix, force-pushes and deleted refs,
//! signed and unsigned commits under `--verify-signatures`, tags and SHAs, fetch failures,
//! restarts, atomic switching and tree cleanup. No Docker: the loader is berth's own.

mod support {
    pub mod gitrepo;
}

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth::desired::{self, LoadOptions, Loaded};
use berth::source::git::{GitAuth, GitOptions, GitSource, checkout_once};
use berth::source::{LoadFn, SourceStatus};
use support::gitrepo::{Remote, git};

fn options(remote: &Remote) -> GitOptions {
    GitOptions {
        url: remote.url(),
        reference: Some("main".into()),
        path: None,
        // Long: the tests poke the source (as the webhook does) instead of waiting.
        interval: Duration::from_secs(3600),
        verify_signatures: false,
        allowed_signers: None,
        auth: GitAuth::default(),
    }
}

fn loader() -> LoadFn {
    Arc::new(|root: &Path, run_root: Option<&Path>| {
        let opts = LoadOptions {
            run_root: run_root.map(Path::to_path_buf),
            ..LoadOptions::default()
        };
        desired::load(root, &opts)
    })
}

struct Started {
    source: Arc<GitSource>,
    changes: Arc<AtomicU64>,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        self.source.stop();
    }
}

fn start(opts: GitOptions) -> Started {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    start_in(opts, data, tmp)
}

fn start_in(opts: GitOptions, data: PathBuf, tmp: tempfile::TempDir) -> Started {
    let changes = Arc::new(AtomicU64::new(0));
    let c = changes.clone();
    let source = GitSource::start(
        opts,
        &data,
        loader(),
        Arc::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .expect("start the git source");
    Started {
        source,
        changes,
        data,
        _tmp: tmp,
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn status(s: &Started) -> SourceStatus {
    s.source.status().snapshot()
}

fn serves(s: &Started, sha: &str) -> bool {
    status(s).revision.is_some_and(|r| r.id == sha)
}

/// The image of app/web in a load (None when invalid).
fn image(l: &Loaded) -> Option<String> {
    l.state
        .as_ref()?
        .projects
        .get("app")?
        .services
        .get("web")?
        .image
        .clone()
}

/// Pokes until `f` holds (a poke during a fetch queues one more: no poke is lost).
fn poke_until(s: &Started, what: &str, f: impl FnMut() -> bool) {
    s.source.poke();
    wait_until(what, f);
}

#[test]
fn a_new_commit_is_served_with_its_author_time_and_message() {
    let remote = Remote::new();
    let first = remote.commit_image("deploy v1", "busybox:1");
    let s = start(options(&remote));
    wait_until("the first commit", || serves(&s, &first));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:1"));

    let second = remote.commit_image("bump web to v2\n\nbody line", "busybox:2");
    let before = s.changes.load(Ordering::Relaxed);
    poke_until(&s, "the second commit", || serves(&s, &second));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:2"));
    assert!(s.changes.load(Ordering::Relaxed) > before);
    let st = status(&s);
    let commit = st.revision.unwrap().commit.unwrap();
    assert_eq!(commit.sha, second);
    assert_eq!(commit.author, "Test Author <author@example.com>");
    assert_eq!(commit.message, "bump web to v2\n\nbody line");
    assert_eq!(commit.subject(), "bump web to v2");
    assert!(commit.time > 1_600_000_000);
    assert_eq!(st.good.unwrap().id, second);
    assert!(st.refused.is_none());
    assert!(st.fetch.unwrap().error.is_none());
    // `current` names the tree served; old trees beyond the previous one are removed.
    let link = std::fs::read_link(s.data.join("git/current")).unwrap();
    assert_eq!(link, Path::new("trees").join(&second));
    let third = remote.commit_image("v3", "busybox:3");
    poke_until(&s, "the third commit", || serves(&s, &third));
    let mut want = vec![second.clone(), third.clone()];
    want.sort();
    let trees = || {
        let mut t: Vec<String> = std::fs::read_dir(s.data.join("git/trees"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        t.sort();
        t
    };
    // The old tree is removed right after the switch, not in the same instant: wait for it
    // (bounded), then check nothing else went.
    wait_until("the first tree to be collected", || trees() == want);
    assert_eq!(trees(), want, "the first tree is collected");
}

#[test]
fn a_bad_commit_keeps_the_last_good_state_until_a_fix() {
    let remote = Remote::new();
    let good = remote.commit_image("good", "busybox:1");
    let s = start(options(&remote));
    wait_until("the good commit", || serves(&s, &good));
    assert!(
        s.source.load().state.is_some(),
        "the controller's first load"
    );

    let bad = remote.commit(
        "typo",
        &[("app/compose.yaml", "services:\n  web: {imag: x}\n")],
    );
    poke_until(&s, "the bad commit", || serves(&s, &bad));
    let st = status(&s);
    assert_eq!(
        st.good.as_ref().unwrap().id,
        good,
        "good stays the last valid commit"
    );
    let refused = st.refused.unwrap();
    assert_eq!(refused.id, bad);
    assert!(
        refused.reason.starts_with("invalid desired state"),
        "{}",
        refused.reason
    );
    // The controller sees the diagnostics (it keeps its last good state itself).
    let l = s.source.load();
    assert!(l.state.is_none());
    assert!(
        l.diagnostics.to_string().contains("app/compose.yaml"),
        "{}",
        l.diagnostics
    );

    let fix = remote.commit_image("fix", "busybox:2");
    poke_until(&s, "the fix", || serves(&s, &fix));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:2"));
    let st = status(&s);
    assert_eq!(st.good.unwrap().id, fix);
    assert!(st.refused.is_none());
}

#[test]
fn a_restart_serves_the_last_good_tree_while_the_remote_is_down_or_invalid() {
    let remote = Remote::new();
    let good = remote.commit_image("good", "busybox:1");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |data: &Path| {
        start_in(
            options(&remote),
            data.to_path_buf(),
            tempfile::tempdir().unwrap(),
        )
    };
    {
        let s = run(&data);
        wait_until("the good commit", || serves(&s, &good));
    }
    // Restart with the remote unreachable: the last good tree is served from disk.
    let moved = remote.dir.with_file_name("gone");
    std::fs::rename(&remote.dir, &moved).unwrap();
    {
        let s = run(&data);
        assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:1"));
        wait_until("the failed fetch", || {
            status(&s).fetch.is_some_and(|f| f.error.is_some())
        });
        let st = status(&s);
        assert_eq!(st.fetch.as_ref().unwrap().failures, 1);
        assert_eq!(
            st.revision.unwrap().id,
            good,
            "a failed fetch keeps the state"
        );
    }
    std::fs::rename(&moved, &remote.dir).unwrap();
    // Restart with an invalid head: the controller gets the good state first, then the
    // diagnostics (it keeps the good state itself from then on).
    let bad = remote.commit("broken", &[("app/compose.yaml", "services: [\n")]);
    let s = run(&data);
    wait_until("the bad commit", || serves(&s, &bad));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:1"));
    let l = s.source.load();
    assert!(l.state.is_none() && l.diagnostics.errors() > 0);
    drop(tmp);
}

#[test]
fn a_force_push_is_followed() {
    let remote = Remote::new();
    remote.commit_image("one", "busybox:1");
    let two = remote.commit_image("two", "busybox:2");
    let s = start(options(&remote));
    wait_until("commit two", || serves(&s, &two));
    // Rewrite history: drop `two`, commit something else in its place.
    git(&remote.dir, &["reset", "-q", "--hard", "HEAD~1"]);
    let rewritten = remote.commit_image("two, rewritten", "busybox:22");
    poke_until(&s, "the rewritten commit", || serves(&s, &rewritten));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:22"));
}

#[test]
fn a_deleted_ref_keeps_the_last_commit_and_a_recreated_one_is_followed() {
    let remote = Remote::new();
    remote.commit_image("main", "busybox:1");
    git(&remote.dir, &["checkout", "-q", "-b", "release"]);
    let rel = remote.commit_image("release", "busybox:2");
    git(&remote.dir, &["checkout", "-q", "main"]);
    let mut opts = options(&remote);
    opts.reference = Some("release".into());
    let s = start(opts);
    wait_until("the release branch", || serves(&s, &rel));
    git(&remote.dir, &["branch", "-q", "-D", "release"]);
    let fetched = |s: &Started| status(s).fetch.map(|f| f.at).unwrap_or(0);
    let t0 = fetched(&s);
    std::thread::sleep(Duration::from_millis(1100));
    poke_until(&s, "a fetch after the deletion", || fetched(&s) > t0);
    std::thread::sleep(Duration::from_millis(100));
    assert!(serves(&s, &rel));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:2"));
    git(&remote.dir, &["checkout", "-q", "-b", "release"]);
    let again = remote.commit_image("release again", "busybox:3");
    poke_until(&s, "the recreated branch", || serves(&s, &again));
}

#[test]
fn tags_shas_and_subdirectories() {
    let remote = Remote::new();
    let one = remote.commit(
        "one",
        &[(
            "stacks/prod/app/compose.yaml",
            "services:\n  web:\n    image: busybox:1\n",
        )],
    );
    git(&remote.dir, &["tag", "v1"]);
    remote.commit(
        "two",
        &[(
            "stacks/prod/app/compose.yaml",
            "services:\n  web:\n    image: busybox:2\n",
        )],
    );
    for reference in ["v1", one.as_str()] {
        let mut opts = options(&remote);
        opts.reference = Some(reference.into());
        opts.path = Some("stacks/prod".into());
        let s = start(opts);
        wait_until("the pinned commit", || serves(&s, &one));
        assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:1"));
    }
    // The remote's default branch when no ref is given.
    let mut opts = options(&remote);
    opts.reference = None;
    opts.path = Some("stacks/prod".into());
    let s = start(opts);
    wait_until("HEAD", || serves(&s, &remote.head()));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:2"));
}

#[test]
fn verify_signatures_refuses_unsigned_and_unknown_keys_and_accepts_trusted_ones() {
    let remote = Remote::new();
    let (key, allowed) = remote.signing_key("deploy");
    let (stranger, _) = remote.signing_key("stranger");
    let signed = remote.commit_image_signed("signed v1", "busybox:1", &key);
    let mut opts = options(&remote);
    opts.verify_signatures = true;
    opts.allowed_signers = Some(allowed);
    let s = start(opts);
    wait_until("the signed commit", || serves(&s, &signed));

    let unsigned = remote.commit_image("unsigned v2", "busybox:2");
    poke_until(&s, "the refusal", || {
        status(&s).refused.is_some_and(|r| r.id == unsigned)
    });
    let st = status(&s);
    assert_eq!(st.refused.unwrap().reason, "the commit is not signed");
    assert_eq!(
        st.revision.unwrap().id,
        signed,
        "the last good commit stays"
    );
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:1"));

    let foreign = remote.commit_image_signed("stranger v3", "busybox:3", &stranger);
    poke_until(&s, "the refusal", || {
        status(&s).refused.is_some_and(|r| r.id == foreign)
    });
    let reason = status(&s).refused.unwrap().reason;
    assert!(
        reason.starts_with("its signature was not accepted"),
        "{reason}"
    );
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:1"));

    let trusted = remote.commit_image_signed("signed v4", "busybox:4", &key);
    poke_until(&s, "the trusted commit", || serves(&s, &trusted));
    assert_eq!(image(&s.source.load()).as_deref(), Some("busybox:4"));
    assert!(status(&s).refused.is_none());
}

#[test]
fn a_burst_of_pokes_coalesces_into_few_fetches() {
    let remote = Remote::new();
    let first = remote.commit_image("one", "busybox:1");
    let s = start(options(&remote));
    wait_until("the first commit", || serves(&s, &first));
    let second = remote.commit_image("two", "busybox:2");
    for _ in 0..100 {
        s.source.poke();
    }
    wait_until("the second commit", || serves(&s, &second));
    std::thread::sleep(Duration::from_millis(300));
    // One change for the first commit, one for the second: a hundred pokes, one switch.
    assert_eq!(s.changes.load(Ordering::Relaxed), 2);
}

#[test]
fn checkout_once_gives_validate_and_plan_a_tree_and_cleans_up() {
    let remote = Remote::new();
    let sha = remote.commit_image("v1", "busybox:1");
    let co = checkout_once(&options(&remote)).unwrap();
    assert_eq!(co.commit.sha, sha);
    let root = co.root.clone();
    assert_eq!(
        image(&desired::load(&root, &LoadOptions::default())).as_deref(),
        Some("busybox:1")
    );
    drop(co);
    assert!(!root.exists());
    let mut missing = options(&remote);
    missing.reference = Some("nope".into());
    let err = checkout_once(&missing).err().unwrap().to_string();
    assert!(err.contains("nope not found on the remote"), "{err}");
}

#[test]
fn relative_bind_mounts_keep_one_path_and_revision_across_commits() {
    let remote = Remote::new();
    let compose = "services:\n  web:\n    image: busybox:1\n    env_file: web.env\n    volumes: [\"./conf:/etc/conf:ro\"]\n";
    let one = remote.commit(
        "one",
        &[
            ("app/compose.yaml", compose),
            ("app/conf/site.conf", "v1"),
            ("app/web.env", "A=1\n"),
        ],
    );
    let s = start(options(&remote));
    wait_until("commit one", || serves(&s, &one));
    let web = |l: &Loaded| l.state.as_ref().unwrap().projects["app"].services["web"].clone();
    let first = web(&s.source.load());
    let good = s.data.join("git/good");
    assert_eq!(
        first.volumes[0].source.as_deref(),
        Some(good.join("app/conf").to_str().unwrap()),
        "mounted through the good symlink, not the commit's tree"
    );
    // Only the mounted file's content changes: same path, same revision (as with compose).
    let two = remote.commit("two", &[("app/conf/site.conf", "v2")]);
    poke_until(&s, "commit two", || serves(&s, &two));
    let second = web(&s.source.load());
    assert_eq!(second.volumes, first.volumes);
    assert_eq!(second.spec_hash, first.spec_hash);
    assert_eq!(
        std::fs::read_to_string(good.join("app/conf/site.conf")).unwrap(),
        "v2",
        "the symlink names the new tree"
    );
    // An env file change is a new revision.
    let three = remote.commit("three", &[("app/web.env", "A=2\n")]);
    poke_until(&s, "commit three", || serves(&s, &three));
    assert_ne!(web(&s.source.load()).spec_hash, first.spec_hash);
}

/// One HTTP request's head from a git client, answered 404: what git sent.
fn capture_one_request(listener: std::net::TcpListener) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, BufReader, Write};
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        for _ in 0..100 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut w = stream;
        let _ = w
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        head
    })
}

#[test]
fn url_credentials_reach_git_in_memory_only_and_an_old_config_is_cleaned() {
    use berth::source::git::Repo;
    let tmp = tempfile::tempdir().unwrap();
    let git_dir = tmp.path().join("repo.git");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://alice:s3cret%40pw@127.0.0.1:{port}/r.git");
    // A clone an older berth made: the credentials are in its config.
    git(tmp.path(), &["init", "--bare", "--quiet", "repo.git"]);
    git(&git_dir, &["config", "remote.origin.url", &url]);
    let config = || std::fs::read_to_string(git_dir.join("config")).unwrap();
    assert!(config().contains("s3cret"));

    let mut opts = options(&Remote::new());
    opts.url = url.clone();
    let repo = Repo::open(&git_dir, &opts).unwrap();
    assert!(!config().contains("s3cret"), "config:\n{}", config());
    assert!(!config().contains("alice"), "config:\n{}", config());
    assert!(config().contains(&format!("http://127.0.0.1:{port}/r.git")));

    let server = capture_one_request(listener);
    let err = repo.fetch(Some("main")).unwrap_err().to_string();
    let head = server.join().unwrap();
    // base64("alice:s3cret@pw")
    assert!(
        head.contains("Authorization: Basic YWxpY2U6czNjcmV0QHB3"),
        "git sent:\n{head}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!config().contains("s3cret"), "config:\n{}", config());
    assert_eq!(
        opts.location(),
        format!("http://127.0.0.1:{port}/r.git (ref main)")
    );
}
