//! The manual controls as an operator runs them — `berth history|retry|hold|release|rollback`
//! against a data dir populated through the store: what they print, that they write only the
//! control file, their refusals, and the SIGHUP that wakes a running `berth run`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth::engine::ContainerCreate;
use berth::store::{Control, ServiceRecord, Store};

/// 2025-03-01 12:00:00 UTC.
const T0: u64 = 1_740_830_400;

fn berth(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("BERTH_DATA_DIR")
        .env_remove("RUST_LOG")
        .output()
        .expect("run berth")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn hash(c: char) -> String {
    c.to_string().repeat(64)
}

fn now() -> u64 {
    berth::apply::unix_now()
}

/// shop/web: r1 stable, r2 stable and current (pinned), r3 failed, reverted and quarantined;
/// shop/db: r1 current.
fn data_dir() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let mut web = ServiceRecord::default();
    for (i, (c, image)) in [('a', "app:1"), ('b', "app:2"), ('c', "app:3")]
        .into_iter()
        .enumerate()
    {
        let t = T0 + 600 * i as u64;
        let n = web
            .begin(&hash(c), image, &format!("sha256:{}", hash(c)), t)
            .number;
        web.revision_mut(n).unwrap().template = Some(ContainerCreate::default());
        if c != 'c' {
            web.mark_ready(n, t + 5).unwrap();
            web.mark_stable(n).unwrap();
        }
    }
    web.revision_mut(2).unwrap().pin = Some("berth-pin/shop/web:r2".into());
    web.mark_failed(3, "not ready within 1m", T0 + 1260)
        .unwrap();
    web.mark_reverted(3).unwrap();
    store.save("shop", "web", &web).unwrap();

    let mut db = ServiceRecord::default();
    db.begin(&hash('d'), "postgres:16", "sha256:dddd", T0);
    db.mark_stable(1).unwrap();
    store.save("shop", "db", &db).unwrap();
    t
}

fn control_file(d: &Path) -> PathBuf {
    d.join("state/shop/web.control.json")
}

fn read_control(d: &Path) -> Control {
    serde_json::from_slice(&std::fs::read(control_file(d)).unwrap()).unwrap()
}

fn record_bytes(d: &Path) -> Vec<u8> {
    std::fs::read(d.join("state/shop/web.json")).unwrap()
}

#[test]
fn history_prints_the_revisions_and_marks_the_current_one() {
    let t = data_dir();
    let o = berth(&["history", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "shop/web: 3 revisions, current r2 (marked *)");
    assert_eq!(
        lines[2],
        "  REV  IMAGE  ID            SPEC          CREATED (UTC)        READY  STABLE  OUTCOME     PIN                    REASON"
    );
    assert_eq!(
        lines[4],
        "* r2   app:2  bbbbbbbbbbbb  bbbbbbbbbbbb  2025-03-01 12:10:00  +5s    yes     succeeded   berth-pin/shop/web:r2  -"
    );
    assert_eq!(
        lines[5],
        "  r3   app:3  cccccccccccc  cccccccccccc  2025-03-01 12:20:00  -      no      reverted    -                      not ready within 1m"
    );
    assert!(
        out.contains("\nquarantined  cccccccccccc since 2025-03-01 12:21:00 ("),
        "{out}"
    );
    assert!(out.contains("\ncontrol      none\n"), "{out}");
}

#[test]
fn history_json_is_the_record_with_its_control() {
    let t = data_dir();
    berth(&["hold", "shop/web"], t.path());
    let o = berth(&["history", "shop/web", "--json"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["project"], "shop");
    assert_eq!(v["revisions"].as_array().unwrap().len(), 3);
    assert_eq!(v["revisions"][2]["outcome"], "reverted");
    assert_eq!(v["revisions"][2]["has_template"], true);
    assert_eq!(v["quarantined"][0]["spec_hash"], hash('c'));
    assert!(v["control"]["hold"].as_u64().is_some());
}

#[test]
fn unknown_service_exits_1_listing_the_services_with_records() {
    let t = data_dir();
    for cmd in ["history", "retry", "hold", "release", "rollback"] {
        let o = berth(&[cmd, "shop/wbe"], t.path());
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert!(o.stdout.is_empty(), "{cmd}");
        assert_eq!(
            text(&o.stderr),
            format!(
                "berth: failed to find a record of shop/wbe in {}: services with records: shop/db, shop/web\n",
                t.path().join("state").display()
            ),
            "{cmd}"
        );
    }
    assert!(!t.path().join("state/shop/wbe.control.json").exists());
}

#[test]
fn an_unused_data_dir_is_refused_and_left_untouched() {
    let t = tempfile::tempdir().unwrap();
    let o = berth(&["hold", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("no service has a record there yet"), "{err}");
    assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
}

#[test]
fn usage_errors_exit_2() {
    let t = data_dir();
    for args in [
        &["history"][..],
        &["hold", "shop"],
        &["hold", "shop/web/x"],
        &["rollback", "shop/web", "--to", "x"],
        &["retry", "shop/web", "extra"],
    ] {
        assert_eq!(berth(args, t.path()).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn retry_names_the_quarantined_revision_and_writes_only_the_control_file() {
    let t = data_dir();
    let record = record_bytes(t.path());
    let before = now();
    let o = berth(&["retry", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let retry_at = read_control(t.path()).retry_at.unwrap();
    assert!((before..=now()).contains(&retry_at));
    assert_eq!(
        text(&o.stdout),
        format!(
            "shop/web: lifting the quarantine of cccccccccccc (not ready within 1m): berth tries it again if the desired state still asks for it\n\
             no berth run holds {}: the change takes effect at the next `berth apply` or `berth run`\n",
            t.path().display()
        )
    );
    assert_eq!(record_bytes(t.path()), record);

    let o = berth(&["retry", "shop/db"], t.path());
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).starts_with("shop/db: nothing is quarantined\n"));
}

#[test]
fn hold_then_release() {
    let t = data_dir();
    let record = record_bytes(t.path());
    let o = berth(&["hold", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("shop/web: held: "));
    let held = read_control(t.path());
    assert!(held.hold.is_some());
    assert_eq!(held.rollback_to, None);

    // holding again changes nothing
    let o = berth(&["hold", "shop/web"], t.path());
    assert!(text(&o.stdout).contains("already held since"));
    assert_eq!(read_control(t.path()), held);

    berth(&["rollback", "shop/web"], t.path());
    let o = berth(&["release", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).starts_with("shop/web: released from the rollback to r1: "),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(read_control(t.path()), Control::default());
    assert_eq!(record_bytes(t.path()), record);
}

#[test]
fn rollback_defaults_to_the_stable_revision_before_the_current_one() {
    let t = data_dir();
    let o = berth(&["rollback", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("shop/web: rolling back to r1 (app:1 aaaaaaaaaaaa, spec aaaaaaaaaaaa) through the readiness gate; it stays there until `berth release shop/web`\n"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(read_control(t.path()).rollback_to, Some(1));

    let o = berth(&["rollback", "shop/web", "--to", "r2"], t.path());
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(read_control(t.path()).rollback_to, Some(2));
}

#[test]
fn rollback_refusals_exit_1_and_write_nothing() {
    let t = data_dir();
    let cases: &[(&[&str], &str)] = &[
        (
            &["rollback", "shop/web", "--to", "9"],
            "berth: failed to roll back shop/web: there is no r9 in its history (it has r1, r2, r3)\n",
        ),
        (
            &["rollback", "shop/web", "--to", "3"],
            "berth: failed to roll back shop/web to r3: it is not stable (it failed and was reverted); only a revision that was ready and stable can be rolled back to\n",
        ),
        (
            &["rollback", "shop/db"],
            "berth: failed to choose a revision to roll back shop/db to: there is no stable revision older than the current r1\n",
        ),
    ];
    for (args, want) in cases {
        let o = berth(args, t.path());
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&o.stderr), *want, "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    assert!(!control_file(t.path()).exists());
    assert!(!t.path().join("state/shop/db.control.json").exists());
}

/// A process that looks like `berth run` to the CLI: named `berth`, `run` among its arguments,
/// the data dir's lock file open with its holder line, and a SIGHUP trap that leaves a mark.
struct FakeController {
    child: Child,
}

impl Drop for FakeController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_control_change_wakes_the_running_controller_with_sighup() {
    let t = data_dir();
    let lock = t.path().join("berth.lock");
    let mark = t.path().join("hup");
    let script = t.path().join("controller.sh");
    std::fs::write(
        &script,
        "trap 'echo hup > \"$3\"; exit 0' HUP\n\
         exec 9<>\"$2\"\n\
         printf 'berth run (pid %s)' $$ >&9\n\
         while :; do sleep 0.05; done\n",
    )
    .unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg("exec -a berth bash \"$0\" run \"$1\" \"$2\"")
        .arg(&script)
        .arg(&lock)
        .arg(&mark)
        .stdin(Stdio::null());
    // bash cannot trap a signal that was ignored when it started, and under `nohup` (a CI
    // runner, a test run started in the background) SIGHUP is: give the fake controller the
    // default disposition, as `berth run` installs its own handler whatever it inherits.
    // SAFETY: only signal(2), async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("run bash");
    let pid = child.id();
    let _guard = FakeController { child };
    wait_for("the fake controller's lock", || {
        std::fs::read_to_string(&lock).is_ok_and(|s| s == format!("berth run (pid {pid})"))
    });

    let o = berth(&["hold", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).ends_with(&format!("woke berth run (pid {pid}): it reconciles now\n")),
        "{}",
        text(&o.stdout)
    );
    wait_for("the SIGHUP mark", || mark.exists());
}

#[test]
fn a_stale_lock_holder_is_not_signalled() {
    let t = data_dir();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(
        t.path().join("berth.lock"),
        format!("berth run (pid {pid})"),
    )
    .unwrap();
    let o = berth(&["hold", "shop/web"], t.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout)
            .ends_with("the change takes effect at the next `berth apply` or `berth run`\n"),
        "{}",
        text(&o.stdout)
    );
}
