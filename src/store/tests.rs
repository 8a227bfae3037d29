//! Unit tests of the revision store: the `ServiceRecord` rules and the files on disk.

use super::*;
use proptest::prelude::*;

const T0: u64 = 1_700_000_000;

/// A record with one revision per `(hash, stable)`, numbered from 1.
fn record(revs: &[(&str, bool)]) -> ServiceRecord {
    let mut rec = ServiceRecord::default();
    for (i, (hash, stable)) in revs.iter().enumerate() {
        let n = rec
            .begin(hash, "app:latest", &format!("sha256:{hash}"), T0 + i as u64)
            .number;
        if *stable {
            rec.mark_ready(n, T0 + i as u64).unwrap();
            rec.mark_stable(n).unwrap();
        }
    }
    rec
}

/// A record with one revision per flag, each with its own hash.
fn distinct(stable: &[bool]) -> ServiceRecord {
    let hashes: Vec<String> = (0..stable.len()).map(|i| format!("h{i}")).collect();
    let revs: Vec<(&str, bool)> = hashes
        .iter()
        .map(String::as_str)
        .zip(stable.iter().copied())
        .collect();
    record(&revs)
}

fn numbers(revs: &[Revision]) -> Vec<u64> {
    revs.iter().map(|r| r.number).collect()
}

#[test]
fn begin_numbers_revisions_and_resumes_an_in_progress_one_with_the_same_hash() {
    let mut rec = ServiceRecord::default();
    assert_eq!(rec.begin("a", "app:1", "sha256:a", T0).number, 1);
    rec.mark_stable(1).unwrap();
    assert_eq!(rec.begin("b", "app:2", "sha256:b", T0 + 1).number, 2);
    // berth restarted mid-rollout: the same hash resumes revision 2.
    let again = rec.begin("b", "app:2", "sha256:b", T0 + 9);
    assert_eq!((again.number, again.created_at), (2, T0 + 1));
    // the desired state changed mid-rollout: 2 is abandoned.
    assert_eq!(rec.begin("c", "app:3", "sha256:c", T0 + 10).number, 3);
    assert_eq!(rec.revision(2).unwrap().outcome, Outcome::Superseded);
    assert_eq!(rec.revision(1).unwrap().outcome, Outcome::Succeeded);
    assert_eq!(rec.newest().unwrap().outcome, Outcome::InProgress);
}

#[test]
fn begin_after_a_finished_revision_with_the_same_hash_is_a_new_revision() {
    let mut rec = record(&[("a", false)]);
    rec.mark_failed(1, "not ready", T0).unwrap();
    rec.retry("a");
    assert_eq!(rec.begin("a", "app:1", "sha256:a", T0 + 1).number, 2);
}

#[test]
fn stable_revision_supersedes_the_older_running_one() {
    let mut rec = record(&[("a", true), ("b", false)]);
    rec.mark_ready(2, T0 + 5).unwrap();
    rec.mark_stable(2).unwrap();
    let r1 = rec.revision(1).unwrap();
    let r2 = rec.revision(2).unwrap();
    assert_eq!((r1.outcome, r1.stable), (Outcome::Superseded, true));
    assert_eq!(
        (r2.outcome, r2.stable, r2.ready_at),
        (Outcome::Succeeded, true, Some(T0 + 5))
    );
    assert_eq!(rec.last_stable().unwrap().number, 2);
}

#[test]
fn failed_then_reverted_keeps_the_reason() {
    let mut rec = record(&[("a", true), ("b", false)]);
    rec.mark_failed(2, "not ready within 60s", T0 + 60).unwrap();
    assert_eq!(rec.revision(2).unwrap().outcome, Outcome::Failed);
    rec.mark_reverted(2).unwrap();
    let r2 = rec.revision(2).unwrap();
    assert_eq!(r2.outcome, Outcome::Reverted);
    assert_eq!(r2.reason.as_deref(), Some("not ready within 60s"));
    assert_eq!(rec.revision(1).unwrap().outcome, Outcome::Succeeded);
}

#[test]
fn transitions_on_an_unknown_revision_are_errors() {
    let mut rec = record(&[("a", true)]);
    assert_eq!(rec.mark_ready(7, T0), Err(UnknownRevision { number: 7 }));
    assert_eq!(rec.mark_stable(7), Err(UnknownRevision { number: 7 }));
    assert_eq!(
        rec.mark_failed(7, "x", T0),
        Err(UnknownRevision { number: 7 })
    );
    assert_eq!(rec.mark_reverted(7), Err(UnknownRevision { number: 7 }));
    assert!(rec.quarantined.is_empty());
    assert_eq!(
        UnknownRevision { number: 7 }.to_string(),
        "no revision r7 in this service's record"
    );
}

#[test]
fn revert_target_table() {
    // (history as (hash, stable), failed hash, expected target)
    type History<'a> = &'a [(&'a str, bool)];
    let cases: &[(History, &str, Option<u64>)] = &[
        (&[], "a", None),
        (&[("a", true), ("b", false)], "b", Some(1)),
        // never to an identical spec
        (&[("a", true), ("b", true), ("b", false)], "b", Some(1)),
        (&[("a", true), ("a", false)], "a", None),
        // non-stable revisions are skipped
        (&[("a", true), ("b", false), ("c", false)], "c", Some(1)),
        (&[("a", false), ("b", false)], "b", None),
        // the newest qualifying one wins
        (&[("a", true), ("b", true), ("c", false)], "c", Some(2)),
    ];
    for (revs, failed, want) in cases {
        let rec = record(revs);
        let got = rec.revert_target(failed).map(|r| r.number);
        assert_eq!(got, *want, "history {revs:?}, failed {failed}");
    }
}

#[test]
fn revert_target_skips_a_stable_revision_that_later_failed() {
    let mut rec = record(&[("a", true), ("b", true), ("c", false)]);
    rec.mark_failed(2, "previous revision failed too", T0)
        .unwrap();
    assert_eq!(rec.revert_target("c").map(|r| r.number), Some(1));
    assert_eq!(rec.last_stable().map(|r| r.number), Some(1));
}

#[test]
fn quarantine_lifecycle() {
    let mut rec = record(&[("a", true), ("b", false)]);
    assert!(!rec.is_quarantined("b"));

    rec.mark_failed(2, "unhealthy", T0 + 30).unwrap();
    assert!(rec.is_quarantined("b"));
    assert_eq!(
        rec.quarantined,
        vec![Quarantine {
            spec_hash: "b".into(),
            since: T0 + 30,
            reason: "unhealthy".into(),
            log: None,
        }]
    );

    // a resync with the same desired state keeps it
    assert!(rec.clear_quarantine_unless("b").is_empty());
    assert!(rec.is_quarantined("b"));

    // failing again does not duplicate it
    let n = rec.begin("b", "app:2", "sha256:b", T0 + 40).number;
    rec.mark_failed(n, "unhealthy", T0 + 70).unwrap();
    assert_eq!(rec.quarantined.len(), 1);

    // `berth retry` lifts it
    assert!(rec.retry("b"));
    assert!(!rec.is_quarantined("b"));
    assert!(!rec.retry("b"));

    // a change of the desired state lifts the others'
    let n = rec.begin("b", "app:2", "sha256:b", T0 + 80).number;
    rec.mark_failed(n, "unhealthy", T0 + 90).unwrap();
    let lifted = rec.clear_quarantine_unless("c");
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0].spec_hash, "b");
    assert!(!rec.is_quarantined("b"));
}

#[test]
fn prune_history_table() {
    // (stable flags, limit, kept numbers)
    let cases: &[(&[bool], usize, &[u64])] = &[
        (&[], 5, &[]),
        (&[true, true, true], 5, &[1, 2, 3]),
        (&[true; 7], 5, &[3, 4, 5, 6, 7]),
        // the last stable one is kept even when older than the limit
        (
            &[true, true, false, false, false, false, false],
            5,
            &[2, 3, 4, 5, 6, 7],
        ),
        (&[true, false, false], 1, &[1, 3]),
        (&[false, false, false], 2, &[2, 3]),
        // the newest is always kept, so numbers stay monotonic
        (&[true, false, false], 0, &[1, 3]),
        (&[false, false], 0, &[2]),
    ];
    for (stable, limit, want) in cases {
        let mut rec = distinct(stable);
        let before = rec.revisions.len();
        let removed = rec.prune_history(*limit);
        assert_eq!(
            numbers(&rec.revisions),
            *want,
            "stable {stable:?}, limit {limit}"
        );
        assert_eq!(removed.len() + rec.revisions.len(), before);
    }
}

#[test]
fn pruned_revisions_are_returned_oldest_first_with_their_pins() {
    let mut rec = record(&[("a", true), ("b", true), ("c", true)]);
    rec.revision_mut(1).unwrap().pin = Some("berth-pin/shop-web:r1".into());
    let removed = rec.prune_history(1);
    assert_eq!(numbers(&removed), [1, 2]);
    assert_eq!(removed[0].pin.as_deref(), Some("berth-pin/shop-web:r1"));
    assert_eq!(rec.begin("d", "app:4", "sha256:d", T0).number, 4);
}

#[test]
fn job_runs() {
    let mut rec = ServiceRecord::default();
    assert!(!rec.job_done("m1"));
    rec.record_job("m1", 0, T0);
    assert!(rec.job_done("m1"));
    assert!(!rec.job_done("m2"));

    // a failed run is done too: it is not run again for this revision
    rec.record_job("m2", 3, T0 + 1);
    assert!(rec.job_done("m2"));
    assert_eq!(rec.job_run("m2").unwrap().exit_code, 3);

    // running it again (after `berth retry`) replaces the earlier run
    rec.record_job("m2", 0, T0 + 2);
    assert_eq!(rec.jobs.len(), 2);
    assert_eq!(
        rec.job_run("m2"),
        Some(&JobRun {
            spec_hash: "m2".into(),
            finished_at: T0 + 2,
            exit_code: 0,
            number: 2,
        })
    );

    // job runs fall out of history like revisions
    for i in 0..6 {
        rec.record_job(&format!("n{i}"), 0, T0 + 10 + i);
    }
    rec.prune_history(5);
    assert_eq!(rec.jobs.len(), 5);
    // numbered like revisions: one per spec, never reused after the history was cut
    assert_eq!((rec.job_number("m1"), rec.job_number("n5")), (9, 8));
    assert_eq!(rec.job_number("new"), 9);
    rec.record_job("n5", 1, T0 + 30);
    assert_eq!(rec.job_run("n5").unwrap().number, 8);
    assert!(!rec.job_done("m1"));
    assert!(rec.job_done("n5"));
}

proptest! {
    #[test]
    fn prune_history_keeps_the_last_stable_and_at_most_limit_plus_one(
        stable in proptest::collection::vec(any::<bool>(), 0..20),
        limit in 0usize..8,
    ) {
        let mut rec = distinct(&stable);
        let original = rec.revisions.clone();
        let last_stable = rec.last_stable().map(|r| r.number);
        let removed = rec.prune_history(limit);

        prop_assert_eq!(rec.last_stable().map(|r| r.number), last_stable);
        prop_assert!(!removed.iter().any(|r| Some(r.number) == last_stable));
        prop_assert!(rec.revisions.len() <= limit.max(1) + 1);
        prop_assert_eq!(rec.newest().map(|r| r.number), original.last().map(|r| r.number));
        // a partition of the original, order kept
        let mut all = [removed, rec.revisions.clone()].concat();
        all.sort_by_key(|r| r.number);
        prop_assert_eq!(all, original);
    }
}

fn sample() -> ServiceRecord {
    let mut rec = record(&[("a", true), ("b", false)]);
    rec.revision_mut(1).unwrap().pin = Some("berth-pin/shop-web:r1".into());
    rec.mark_failed(2, "health check failed: \"curl\" exited 7", T0 + 60)
        .unwrap();
    rec.record_job("m", 0, T0 + 5);
    rec
}

#[test]
fn a_record_mid_rollout_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rec = record(&[("a", true), ("b", false)]);
    let mut slots = std::collections::BTreeMap::new();
    slots.insert(
        2,
        Slot {
            started_at: T0,
            ready_since: Some(T0 + 1),
            passed_at: None,
            failed: false,
            seen_running: false,
            watched_at: Some(T0 + 2),
            unwatched: 30,
            switched_at: None,
        },
    );
    rec.active = Some(Rollout {
        revision: 1,
        kind: RolloutKind::Revert { failed: 2 },
        started_at: T0,
        slots,
        pre_deploy: Some(GateRun {
            started_at: T0,
            exit_code: Some(0),
        }),
        smoke: None,
        paused: None,
    });
    rec.degraded = Some(Degraded {
        since: T0,
        reason: "x".into(),
        spec_hash: "b".into(),
    });
    rec.restarts = vec![T0, T0 + 2];
    store.save("shop", "web", &rec).unwrap();
    assert_eq!(store.load("shop", "web").unwrap(), rec);
    let control = Control {
        hold: Some(T0),
        rollback_to: Some(1),
        retry_at: None,
    };
    store.save_control("shop", "web", &control).unwrap();
    let loaded = store.load("shop", "web").unwrap();
    assert_eq!(loaded.control, control);
    assert_eq!(
        store.services().unwrap(),
        vec![("shop".to_string(), "web".to_string())]
    );
}

#[test]
fn save_then_load_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    assert!(t.path().join("state").is_dir());
    let rec = sample();
    store.save("shop", "web", &rec).unwrap();
    assert_eq!(store.load("shop", "web").unwrap(), rec);
    assert!(t.path().join("state/shop/web.json").is_file());

    // overwriting works and leaves no temp file behind
    let mut rec2 = rec.clone();
    rec2.mark_reverted(2).unwrap();
    store.save("shop", "web", &rec2).unwrap();
    assert_eq!(store.load("shop", "web").unwrap(), rec2);
    let names: Vec<_> = fs::read_dir(t.path().join("state/shop"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["web.json"]);
}

#[test]
fn missing_record_loads_empty() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    assert_eq!(store.load("shop", "web").unwrap(), ServiceRecord::default());
}

#[test]
fn file_carries_version_1_at_the_top_level() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    store.save("shop", "web", &sample()).unwrap();
    let text = fs::read_to_string(t.path().join("state/shop/web.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["revisions"][1]["outcome"], "failed");
    assert_eq!(json["quarantined"][0]["spec_hash"], "b");
}

#[test]
fn crash_leftover_temp_file_is_ignored_on_load_and_removed_on_save() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let rec = sample();
    store.save("shop", "web", &rec).unwrap();
    // berth died after writing half a temp file, before the rename
    let tmp = t.path().join("state/shop/.web.json.tmp");
    fs::write(&tmp, b"{\"version\": 1, \"revisions\": [{\"num").unwrap();
    assert_eq!(store.load("shop", "web").unwrap(), rec);

    let mut rec2 = rec.clone();
    rec2.retry("b");
    store.save("shop", "web", &rec2).unwrap();
    assert!(!tmp.exists());
    assert_eq!(store.load("shop", "web").unwrap(), rec2);
}

#[test]
fn crash_before_the_first_rename_leaves_no_record() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    fs::create_dir_all(t.path().join("state/shop")).unwrap();
    fs::write(t.path().join("state/shop/.web.json.tmp"), b"{").unwrap();
    assert_eq!(store.load("shop", "web").unwrap(), ServiceRecord::default());
}

#[test]
fn truncated_record_is_a_corrupt_error_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    store.save("shop", "web", &sample()).unwrap();
    let path = t.path().join("state/shop/web.json");
    let full = fs::read(&path).unwrap();
    for len in [0, 1, full.len() / 2, full.len() - 3] {
        fs::write(&path, &full[..len]).unwrap();
        let err = store.load("shop", "web").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { path: p, .. } if *p == path),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("move it aside"), "{msg}");
        assert!(std::error::Error::source(&err).is_some());
    }
    // never silently reset: the file is still there as it was
    assert_eq!(fs::read(&path).unwrap(), &full[..full.len() - 3]);
}

#[test]
fn unknown_format_version_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    fs::create_dir_all(t.path().join("state/shop")).unwrap();
    fs::write(
        t.path().join("state/shop/web.json"),
        br#"{"version": 2, "revs": 7}"#,
    )
    .unwrap();
    let err = store.load("shop", "web").unwrap_err();
    assert!(
        matches!(err, StoreError::UnsupportedVersion { found: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer berth"), "{err}");

    fs::write(
        t.path().join("state/shop/web.json"),
        br#"{"revisions": []}"#,
    )
    .unwrap();
    let err = store.load("shop", "web").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn unsafe_names_are_refused_and_nothing_is_written() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let long = "a".repeat(201);
    let cases: &[(&str, &str, &str)] = &[
        ("../shop", "web", "project"),
        ("Shop", "web", "project"),
        ("", "web", "project"),
        ("_shop", "web", "project"),
        ("shop/x", "web", "project"),
        (&long, "web", "project"),
        ("shop", "..", "service"),
        ("shop", ".", "service"),
        ("shop", "", "service"),
        ("shop", "../web", "service"),
        ("shop", "a/b", "service"),
        ("shop", "web\0", "service"),
        ("shop", &long, "service"),
    ];
    for (project, service, kind) in cases {
        let err = store.save(project, service, &sample()).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidName { kind: k, .. } if k == kind),
            "{project:?}/{service:?}: {err:?}"
        );
        assert!(store.load(project, service).is_err());
    }
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);

    // what compose allows is fine
    for (project, service) in [("shop-2_x", "Web.v2_a-b"), ("0", ".hidden")] {
        store.save(project, service, &sample()).unwrap();
        assert_eq!(store.load(project, service).unwrap(), sample());
    }
}

#[test]
fn a_stable_spec_and_image_that_comes_back_is_reusable_under_its_number() {
    // r1 a (stable), r2 b (stable, current), r3 c failed.
    let mut rec = record(&[("a", true), ("b", true), ("c", false)]);
    rec.mark_failed(3, "not ready", T0).unwrap();
    assert_eq!(rec.reusable("a", "sha256:a").map(|r| r.number), Some(1));
    // The same spec whose tag names another image now, a failed spec, the current one and a
    // spec never seen: a new revision (or none needed).
    assert!(rec.reusable("a", "sha256:other").is_none());
    assert!(rec.reusable("c", "sha256:c").is_none());
    assert!(rec.reusable("b", "sha256:b").is_none());
    assert!(rec.reusable("d", "sha256:d").is_none());

    // Taken up again: in progress, then stable; it is the current one and r2 is not.
    rec.resume(1).unwrap();
    assert_eq!(rec.revision(1).unwrap().outcome, Outcome::InProgress);
    assert_eq!(rec.current().unwrap().number, 2);
    rec.mark_stable(1).unwrap();
    assert_eq!(rec.current().unwrap().number, 1);
    assert_eq!(rec.revision(2).unwrap().outcome, Outcome::Superseded);
    // A failure from here reverts to what ran (r1), not to the newest stable number (r2).
    assert_eq!(rec.revert_target("e").map(|r| r.number), Some(1));
    // No new number was counted.
    assert_eq!(rec.begin("e", "app:5", "sha256:e", T0).number, 4);
}

#[test]
fn prune_history_keeps_a_current_revision_older_than_the_limit() {
    let mut rec = distinct(&[true, true, true, true]);
    rec.resume(1).unwrap();
    rec.mark_stable(1).unwrap();
    let removed = rec.prune_history(1);
    // Kept: r4, the newest (and the newest stable in the list), and r1, which runs.
    assert_eq!(numbers(&rec.revisions), [1, 4]);
    assert_eq!(numbers(&removed), [2, 3]);
    assert_eq!(rec.current().unwrap().number, 1);
}
