//! The status model, pure: golden table and JSON for a project whose services are in every
//! phase, transition times kept across rounds, and the telemetry hub's events, metrics and
//! readiness after rounds reported the way the controller reports them.
//!
//! Golden files live in tests/golden/; `BLESS=1 cargo test --test telemetry_status` rewrites
//! them (review the diff).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use berth::controller::{RoundObserver as _, RoundReport, RoundResult};
use berth::desired::model::DesiredState;
use berth::desired::{Diagnostics, LoadOptions, Loaded, Loc, load_inline};
use berth::engine::labels::{self, compose};
use berth::engine::{ContainerSummary, Health, RunState};
use berth::reconcile::event::{Event, EventKind};
use berth::reconcile::observed::ObservedState;
use berth::reconcile::plan::{PlanOptions, Records, plan};
use berth::reconcile::reason::{EventReason, FailReason, HealReason};
use berth::store::{Degraded, Outcome, Quarantine, Revision, RolloutKind, ServiceRecord};
use berth::telemetry::events::Since;
use berth::telemetry::status::{self, Phase, SourceInfo, Status, StatusInput};
use berth::telemetry::{Telemetry, TelemetryOptions};

const T0: u64 = 1_700_000_000;

const YAML: &str = r#"
name: shop
services:
  web:
    image: app:2
    deploy: {replicas: 2}
  api:
    image: api:3
  worker:
    image: worker:5
  db:
    image: postgres:16
  cache:
    image: redis:7
    x-berth: {hold: true}
"#;

fn desired() -> DesiredState {
    let l = load_inline(YAML, &LoadOptions::default());
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

fn hash(d: &DesiredState, service: &str) -> String {
    d.projects["shop"].services[service].spec_hash.clone()
}

fn container(
    service: &str,
    n: u32,
    spec_hash: &str,
    state: RunState,
    health: Health,
) -> ContainerSummary {
    let mut l = BTreeMap::new();
    l.insert(labels::MANAGED.to_string(), "true".to_string());
    l.insert(labels::PROJECT.to_string(), "shop".to_string());
    l.insert(labels::SERVICE.to_string(), service.to_string());
    l.insert(labels::SPEC_HASH.to_string(), spec_hash.to_string());
    l.insert(labels::ROLE.to_string(), "replica".to_string());
    l.insert(compose::NUMBER.to_string(), n.to_string());
    ContainerSummary {
        id: format!("id-{service}-{n}-{}", &spec_hash[..4.min(spec_hash.len())]),
        name: labels::container_name("shop", service, n),
        image_id: "sha256:img".into(),
        labels: l,
        state,
        health,
        exit_code: (state == RunState::Exited).then_some(1),
        networks: vec!["shop_default".into()],
        created: T0 as i64,
        actual: None,
    }
}

fn revision(number: u64, spec_hash: &str, image: &str, outcome: Outcome, at: u64) -> Revision {
    Revision {
        number,
        spec_hash: spec_hash.into(),
        image_ref: image.into(),
        image_id: format!("sha256:{number:064}"),
        stable: outcome == Outcome::Succeeded,
        created_at: at,
        ready_at: None,
        outcome,
        reason: None,
        pin: None,
        template: None,
        build: None,
        failure: None,
        policy: None,
        logs: None,
    }
}

/// web idle, api reverted, worker mid-rollout, db degraded, cache held.
fn world(d: &DesiredState) -> (ObservedState, Records) {
    let old_api = "a1".repeat(32);
    let old_worker = "b2".repeat(32);
    let mut records = Records::new();
    let key = |s: &str| ("shop".to_string(), s.to_string());
    records.insert(
        key("web"),
        ServiceRecord {
            revisions: vec![
                revision(
                    1,
                    &"c3".repeat(32),
                    "app:1",
                    Outcome::Superseded,
                    T0 - 86_400,
                ),
                revision(2, &hash(d, "web"), "app:2", Outcome::Succeeded, T0 - 3600),
            ],
            ..ServiceRecord::default()
        },
    );
    let mut failed = revision(2, &hash(d, "api"), "api:3", Outcome::Reverted, T0 - 900);
    failed.reason = Some(
        "image build failed: COPY failed: stat missing: file does not exist; nothing running was changed"
            .to_string(),
    );
    records.insert(
        key("api"),
        ServiceRecord {
            revisions: vec![
                revision(1, &old_api, "api:2", Outcome::Succeeded, T0 - 7200),
                failed,
            ],
            quarantined: vec![Quarantine {
                spec_hash: hash(d, "api"),
                since: T0 - 700,
                reason: "image build failed: COPY failed: stat missing: file does not exist; nothing running was changed".into(),
                log: Some("Step 1/2 : FROM scratch\n ---> \nStep 2/2 : COPY missing /x".into()),
            }],
            ..ServiceRecord::default()
        },
    );
    records.insert(
        key("worker"),
        ServiceRecord {
            revisions: vec![
                revision(3, &old_worker, "worker:4", Outcome::Succeeded, T0 - 7200),
                revision(
                    4,
                    &hash(d, "worker"),
                    "worker:5",
                    Outcome::InProgress,
                    T0 - 40,
                ),
            ],
            active: Some(berth::store::Rollout {
                revision: 4,
                kind: RolloutKind::Update,
                started_at: T0 - 40,
                slots: BTreeMap::new(),
                pre_deploy: None,
                smoke: None,
                paused: None,
            }),
            ..ServiceRecord::default()
        },
    );
    records.insert(
        key("db"),
        ServiceRecord {
            revisions: vec![revision(1, &hash(d, "db"), "postgres:16", Outcome::Succeeded, T0 - 86_400)],
            degraded: Some(Degraded {
                since: T0 - 300,
                reason: "restarted 5 times within 10m; giving up on self-heal (replica 1 exited with code 1)".into(),
                spec_hash: hash(d, "db"),
            }),
            ..ServiceRecord::default()
        },
    );
    records.insert(
        key("cache"),
        ServiceRecord {
            revisions: vec![revision(
                1,
                &hash(d, "cache"),
                "redis:7",
                Outcome::Succeeded,
                T0 - 86_400,
            )],
            ..ServiceRecord::default()
        },
    );
    let observed = ObservedState::from_lists(vec![
        container("web", 1, &hash(d, "web"), RunState::Running, Health::None),
        container("web", 2, &hash(d, "web"), RunState::Running, Health::None),
        container("api", 1, &old_api, RunState::Running, Health::Healthy),
        container("worker", 1, &old_worker, RunState::Running, Health::None),
        container("db", 1, &hash(d, "db"), RunState::Exited, Health::None),
        container(
            "cache",
            1,
            &hash(d, "cache"),
            RunState::Running,
            Health::None,
        ),
    ]);
    (observed, records)
}

fn source() -> SourceInfo {
    SourceInfo {
        kind: "dir".into(),
        location: "/srv/stacks".into(),
        revision: None,
    }
}

fn build(now: u64, diagnostics: &Diagnostics, previous: Option<&Status>) -> Status {
    let d = desired();
    let (observed, records) = world(&d);
    let p = plan(&d, &observed, &records, PlanOptions::default(), now);
    status::build(
        &StatusInput {
            now,
            round: Some(status::RoundInfo {
                number: 7,
                duration: Duration::from_millis(12),
                result: "progressing",
                error: None,
            }),
            source: &source(),
            diagnostics,
            desired: Some(&d),
            observed: Some(&observed),
            records: Some(&records),
            plan: Some(&p),
            failures: &[],
            probes_tracked: true,
        },
        previous,
    )
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs (BLESS=1 rewrites it; review the diff)",
        path.display()
    );
}

#[test]
fn the_table_shows_every_phase_at_a_glance() {
    let s = build(T0, &Diagnostics::default(), None);
    golden("status_table.txt", &s.table(T0 + 5));
}

#[test]
fn the_json_carries_revisions_conditions_and_the_source() {
    let s = build(T0, &Diagnostics::default(), None);
    let json = serde_json::to_string_pretty(&s).unwrap() + "\n";
    golden("status.json", &json);
    // It reads back into the same model (`berth status --server` does that).
    let back: Status = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
}

#[test]
fn an_invalid_desired_state_is_shown_with_its_diagnostics() {
    let mut diags = Diagnostics::default();
    diags.error(
        &Loc::new("shop/compose.yaml".into(), 4, 12),
        "depends_on names \"databse\", which is not a service here (did you mean \"database\"?)",
    );
    let s = build(T0, &diags, None);
    assert!(!s.source.valid);
    golden("status_invalid_table.txt", &s.table(T0));
}

#[test]
fn phases_follow_the_records() {
    let s = build(T0, &Diagnostics::default(), None);
    let phases: Vec<(&str, Phase)> = s
        .services
        .iter()
        .map(|x| (x.service.as_str(), x.phase))
        .collect();
    assert_eq!(
        phases,
        [
            ("api", Phase::Reverted),
            ("cache", Phase::Held),
            ("db", Phase::Degraded),
            ("web", Phase::Idle),
            ("worker", Phase::Progressing),
        ]
    );
    // A first sighting dates a phase from the records when they know.
    let since: BTreeMap<&str, u64> = s
        .services
        .iter()
        .map(|x| (x.service.as_str(), x.since.0))
        .collect();
    assert_eq!(since["db"], T0 - 300);
    assert_eq!(since["worker"], T0 - 40);
    assert_eq!(since["api"], T0 - 700);
}

#[test]
fn transition_times_are_kept_while_nothing_changes() {
    let first = build(T0, &Diagnostics::default(), None);
    let later = build(T0 + 60, &Diagnostics::default(), Some(&first));
    for (a, b) in first.services.iter().zip(&later.services) {
        assert_eq!(a.since, b.since, "{}", a.service);
        assert_eq!(a.conditions, b.conditions, "{}", a.service);
    }
    // The source turns invalid: its condition moves, the services' do not.
    let mut diags = Diagnostics::default();
    diags.error(&Loc::file("shop/compose.yaml"), "broken");
    let broken = build(T0 + 120, &diags, Some(&later));
    let valid = |s: &Status| s.conditions[0].clone();
    assert_eq!(valid(&broken).status, "False");
    assert_eq!(valid(&broken).last_transition_time.0, T0 + 120);
    assert_eq!(valid(&later).last_transition_time.0, T0);
}

fn loaded(diagnostics: Diagnostics) -> Loaded {
    Loaded {
        state: None,
        diagnostics,
        projects: Vec::new(),
        root: PathBuf::from("/srv/stacks"),
    }
}

fn event(
    service: &str,
    kind: EventKind,
    reason: EventReason,
    revision: u64,
    message: &str,
) -> Event {
    Event {
        project: "shop".into(),
        service: service.into(),
        kind,
        reason,
        revision: Some(revision),
        message: message.into(),
        // A container's log lines, as the executor fills them in.
        logs_of: Some("c0ffee".into()),
        logs: Some("secret-looking log line".into()),
    }
}

#[test]
fn the_hub_turns_rounds_into_events_metrics_and_readiness() {
    let tel = Telemetry::new(TelemetryOptions {
        source: source(),
        ..TelemetryOptions::default()
    });
    assert!(tel.readiness().is_err(), "not ready before the first round");
    let d = desired();
    let (observed, records) = world(&d);
    let p = plan(&d, &observed, &records, PlanOptions::default(), T0);
    let ok = loaded(Diagnostics::default());
    let report = |round, loaded: &Loaded, events: &[Event], result| {
        tel.observe(
            &RoundReport {
                round,
                started: SystemTime::UNIX_EPOCH,
                duration: Duration::from_millis(5),
                loaded,
                desired: Some(&d),
                observed: Some(&observed),
                records: Some(&records),
                plan: Some(&p),
                events,
                failures: &[],
                result,
            },
            T0 + round,
        )
    };
    report(
        1,
        &ok,
        &[
            event(
                "worker",
                EventKind::RolloutStarted,
                EventReason::Update,
                4,
                "rolling out r4 (abc), start-first",
            ),
            event(
                "api",
                EventKind::RolloutFailed,
                EventReason::Failure(FailReason::Deadline),
                2,
                "r2 (def) failed: not ready within progress_deadline (2m): x; reverting to r1",
            ),
            event(
                "api",
                EventKind::Reverted,
                EventReason::Failure(FailReason::Failed),
                1,
                "r2 failed (x); r1 runs again and is ready",
            ),
            event(
                "web",
                EventKind::SelfHeal,
                EventReason::Heal(HealReason::Exited),
                2,
                "replica 1 exited with code 137; restarting",
            ),
        ],
        RoundResult::Progressing,
    );
    assert_eq!(tel.readiness(), Ok(()));
    let mut broken = Diagnostics::default();
    broken.error(
        &Loc::new("shop/compose.yaml".into(), 3, 1),
        "unexpected key",
    );
    report(2, &loaded(broken), &[], RoundResult::Settled);
    report(3, &ok, &[], RoundResult::Settled);

    let events = tel.events_since(Since::All, 100);
    let kinds: Vec<(String, String, String)> = events
        .iter()
        .map(|e| (e.service.clone(), e.kind.clone(), e.reason.clone()))
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        kinds,
        [
            s("worker", "rollout_started", "update"),
            s("api", "rollout_failed", "deadline"),
            s("api", "reverted", "failed"),
            s("web", "self_heal", "exited"),
            s("", "desired_state_invalid", "load_errors"),
            s("", "recovered", "desired_state_valid"),
        ]
    );
    assert!(
        events[4].message.contains("shop/compose.yaml:3:1"),
        "{}",
        events[4].message
    );
    // Container logs never leave berth's own log.
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains("secret-looking"), "{json}");
    assert!(events.iter().all(|e| e.logs.is_none()));
    assert_eq!(tel.events_since(Since::Seq(4), 100).len(), 2);

    let m = tel.metrics_text(true);
    for line in [
        "berth_rollouts_total{project=\"shop\",service=\"api\",result=\"failed\"} 1",
        "berth_rollouts_total{project=\"shop\",service=\"api\",result=\"reverted\"} 1",
        "berth_reverts_total{project=\"shop\",service=\"api\"} 1",
        "berth_rollouts_total{project=\"shop\",service=\"web\",result=\"succeeded\"} 0",
        "berth_self_heals_total{project=\"shop\",service=\"web\",reason=\"exited\"} 1",
        "berth_self_heals_total{project=\"shop\",service=\"db\",reason=\"liveness\"} 0",
        "berth_service_ready{project=\"shop\",service=\"web\"} 1",
        "berth_service_ready{project=\"shop\",service=\"db\"} 0",
        "berth_desired_state_valid 1",
        "berth_reconcile_total{result=\"settled\"} 2",
        "berth_reconcile_total{result=\"progressing\"} 1",
        "berth_last_applied_timestamp_seconds 1700000003",
    ] {
        assert!(m.contains(line), "missing {line} in:\n{m}");
    }
    // No container IDs or digests in any label.
    assert!(!m.contains("id-web") && !m.contains("sha256"), "{m}");

    // An engine error: not ready, an event, and recovery when the engine answers again.
    tel.observe(
        &RoundReport {
            round: 4,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(5),
            loaded: &ok,
            desired: Some(&d),
            observed: None,
            records: None,
            plan: None,
            events: &[],
            failures: &[],
            result: RoundResult::Error("failed to list containers: engine unreachable".into()),
        },
        T0 + 4,
    );
    assert!(tel.readiness().unwrap_err().contains("engine unreachable"));
    let st = tel.status().unwrap();
    assert_eq!(st.engine_reachable, Some(false));
    assert_eq!(
        st.services.len(),
        5,
        "what was known stays while the engine is away"
    );
    report(5, &ok, &[], RoundResult::Settled);
    let last: Vec<String> = tel
        .events_since(Since::Seq(6), 100)
        .into_iter()
        .map(|e| format!("{} {}", e.kind, e.reason))
        .collect();
    assert_eq!(
        last,
        ["reconcile_error reconcile_failed", "recovered reconcile_ok"]
    );
    assert_eq!(tel.readiness(), Ok(()));

    // The observer entry point the controller calls works the same way.
    tel.round(&RoundReport {
        round: 6,
        started: SystemTime::now(),
        duration: Duration::ZERO,
        loaded: &ok,
        desired: Some(&d),
        observed: Some(&observed),
        records: Some(&records),
        plan: Some(&p),
        events: &[],
        failures: &[],
        result: RoundResult::Settled,
    });
    assert_eq!(tel.status().unwrap().round.unwrap().number, 6);
}

#[test]
fn a_failed_builds_output_travels_with_its_event() {
    let tel = Telemetry::new(TelemetryOptions {
        source: source(),
        ..TelemetryOptions::default()
    });
    let d = desired();
    let (observed, records) = world(&d);
    let p = plan(&d, &observed, &records, PlanOptions::default(), T0);
    let ok = loaded(Diagnostics::default());
    let failed = Event {
        logs_of: None,
        logs: Some("Step 2/2 : COPY missing /x".into()),
        ..event(
            "api",
            EventKind::RolloutFailed,
            EventReason::Failure(FailReason::BuildFailed),
            3,
            "r3 (abc) failed: image build failed: COPY failed: stat missing: file does not exist; nothing running was changed; reverting to r1",
        )
    };
    tel.observe(
        &RoundReport {
            round: 1,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(5),
            loaded: &ok,
            desired: Some(&d),
            observed: Some(&observed),
            records: Some(&records),
            plan: Some(&p),
            events: &[failed],
            failures: &[],
            result: RoundResult::Progressing,
        },
        T0 + 1,
    );
    let events = tel.events_since(Since::All, 10);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].reason, "build_failed");
    assert_eq!(
        events[0].logs.as_deref(),
        Some("Step 2/2 : COPY missing /x")
    );
}

/// Defect 2 of issue 13: a service both degraded and held (`berth hold`) was Held to the
/// rollout state machine (its plan note) but Degraded on the status page, which worked the
/// phase out again in another order. Both now read `rollout::phase`; each pair of conditions
/// shows the phase the state machine acts on.
#[test]
fn a_service_in_two_conditions_has_one_phase_for_the_state_machine_and_the_status() {
    use berth::reconcile::plan::Note;
    let d = desired();
    let (observed, records) = world(&d);
    let key = ("shop".to_string(), "db".to_string());
    let degraded = records[&key].clone();
    assert!(degraded.degraded.is_some());
    let mut held = degraded.clone();
    held.control.hold = Some(T0 - 10);
    let mut rolled_back_while_paused = ServiceRecord {
        active: Some(berth::store::Rollout {
            revision: 1,
            kind: RolloutKind::Update,
            started_at: T0 - 30,
            slots: BTreeMap::new(),
            pre_deploy: None,
            smoke: None,
            paused: Some("replica 1: exited with code 1 before becoming ready".into()),
        }),
        ..degraded.clone()
    };
    rolled_back_while_paused.degraded = None;
    rolled_back_while_paused.control.rollback_to = Some(1);
    for (rec, want) in [
        (degraded, Phase::Degraded),
        (held, Phase::Held),
        (rolled_back_while_paused, Phase::Blocked),
    ] {
        let mut records = records.clone();
        records.insert(key.clone(), rec);
        let p = plan(&d, &observed, &records, PlanOptions::default(), T0);
        let note = p.notes.iter().find_map(|n| match n {
            Note::Held { service, .. } if service == "db" => Some(Phase::Held),
            Note::Blocked {
                service: Some(service),
                ..
            } if service == "db" => Some(Phase::Blocked),
            _ => None,
        });
        let s = status::build(
            &StatusInput {
                now: T0,
                round: None,
                source: &source(),
                diagnostics: &Diagnostics::default(),
                desired: Some(&d),
                observed: Some(&observed),
                records: Some(&records),
                plan: Some(&p),
                failures: &[],
                probes_tracked: true,
            },
            None,
        );
        let db = s.services.iter().find(|x| x.service == "db").unwrap();
        assert_eq!(db.phase, want, "{}", db.reason);
        // The state machine held or blocked it the same way (Degraded is its kind of blocked).
        let machine = if want == Phase::Degraded {
            Phase::Blocked
        } else {
            want
        };
        assert_eq!(note, Some(machine), "{:?}", p.notes);
    }
}

/// Issue 14 item 13: a pull that keeps failing showed `Progressing` ("pull app:9: image not
/// present locally") round after round. It is `Failing` with the engine's error, and the event
/// log hears about it once per distinct error, not at every retry.
#[test]
fn a_pull_that_keeps_failing_is_failing_with_its_error_and_one_event_per_error() {
    use berth::engine::{EngineError, EngineOp};
    use berth::reconcile::execute::{FailedStep, Failure, StepError};
    use berth::reconcile::plan::Action;

    let tel = Telemetry::new(TelemetryOptions {
        source: source(),
        ..TelemetryOptions::default()
    });
    let d = {
        let l = load_inline(
            "name: shop\nservices:\n  web: {image: 'app:9'}\n",
            &LoadOptions::default(),
        );
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    };
    let observed = ObservedState::from_lists(Vec::new()).with_inventory(vec![], vec![], vec![]);
    let records = Records::new();
    let p = plan(&d, &observed, &records, PlanOptions::default(), T0);
    let pull = p
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::Pull { .. }))
        .expect("a pull is planned")
        .clone();
    let failure = |message: &str| Failure {
        step: FailedStep::Step(Box::new(pull.clone())),
        error: StepError::Engine(EngineError::Failed {
            op: EngineOp::PullImage,
            target: "app:9".into(),
            message: message.into(),
        }),
    };
    let ok = loaded(Diagnostics::default());
    let round = |n: u64, failures: &[Failure]| {
        tel.observe(
            &RoundReport {
                round: n,
                started: SystemTime::UNIX_EPOCH,
                duration: Duration::from_millis(5),
                loaded: &ok,
                desired: Some(&d),
                observed: Some(&observed),
                records: Some(&records),
                plan: Some(&p),
                events: &[],
                failures,
                result: RoundResult::Failed,
            },
            T0 + n,
        );
        let s = tel.status().expect("status");
        let web = s.services.iter().find(|x| x.service == "web").unwrap();
        (web.phase, web.reason.clone())
    };
    let denied = [failure("pull access denied for app")];
    for n in 1..=3 {
        let (phase, reason) = round(n, &denied);
        assert_eq!(phase, Phase::Failing, "{reason}");
        assert!(
            reason.contains("pull access denied for app"),
            "the engine's error: {reason}"
        );
    }
    let pulls = |tel: &Telemetry| {
        tel.events_since(Since::All, 50)
            .into_iter()
            .filter(|e| e.kind == "pull_failed")
            .map(|e| e.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pulls(&tel).len(),
        1,
        "one event for three rounds of one error"
    );
    // Another error is news; the same one again after a round without a try is not.
    round(4, &[failure("TLS handshake timeout")]);
    round(5, &[]);
    round(6, &[failure("TLS handshake timeout")]);
    let seen = pulls(&tel);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].contains("TLS handshake timeout"), "{seen:?}");
}

/// Issue 14 item 12: a project whose compose file was deleted left the status without a word.
/// The event log says so (once), and the status keeps it as an orphan whose containers run
/// until `--prune`.
#[test]
fn a_project_removed_from_the_desired_state_is_announced_and_kept_as_an_orphan() {
    let tel = Telemetry::new(TelemetryOptions {
        source: source(),
        ..TelemetryOptions::default()
    });
    let shop = desired();
    let (observed, records) = world(&shop);
    let other = {
        let l = load_inline(
            "name: other\nservices:\n  x: {image: 'app:1'}\n",
            &LoadOptions::default(),
        );
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    };
    let ok = loaded(Diagnostics::default());
    let round = |n: u64, d: &DesiredState| {
        let p = plan(d, &observed, &records, PlanOptions::default(), T0);
        tel.observe(
            &RoundReport {
                round: n,
                started: SystemTime::UNIX_EPOCH,
                duration: Duration::from_millis(5),
                loaded: &ok,
                desired: Some(d),
                observed: Some(&observed),
                records: Some(&records),
                plan: Some(&p),
                events: &[],
                failures: &[],
                result: RoundResult::Progressing,
            },
            T0 + n,
        );
    };
    round(1, &shop);
    round(2, &other);
    round(3, &other);
    let removed: Vec<_> = tel
        .events_since(Since::All, 50)
        .into_iter()
        .filter(|e| e.kind == "project_removed")
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0].project, "shop");
    assert!(
        removed[0]
            .message
            .contains("keep running until berth runs with --prune"),
        "{}",
        removed[0].message
    );
    let status = tel.status().expect("status");
    assert!(
        status
            .orphans
            .iter()
            .any(|o| o.project == "shop" && o.containers > 0),
        "{:?}",
        status.orphans
    );
}

/// Issue 17: jobs showed their spec hash where services show `rN`. A job's revision is the
/// number of its run.
#[test]
fn a_job_shows_its_revision_number_like_a_service() {
    let d = {
        let l = load_inline(
            "name: shop\nservices:\n  migrate: {image: 'app:1', restart: 'no'}\n  web:\n    image: 'app:1'\n    depends_on: {migrate: {condition: service_completed_successfully}}\n",
            &LoadOptions::default(),
        );
        l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
    };
    let mut rec = ServiceRecord::default();
    rec.record_job("an-older-spec", 0, T0 - 60);
    rec.record_job(&hash(&d, "migrate"), 0, T0);
    let mut records = Records::new();
    records.insert(("shop".into(), "migrate".into()), rec);
    let observed = ObservedState::from_lists(Vec::new());
    let p = plan(&d, &observed, &records, PlanOptions::default(), T0);
    let s = status::build(
        &StatusInput {
            now: T0,
            round: None,
            source: &source(),
            diagnostics: &Diagnostics::default(),
            desired: Some(&d),
            observed: Some(&observed),
            records: Some(&records),
            plan: Some(&p),
            failures: &[],
            probes_tracked: true,
        },
        None,
    );
    let job = s.services.iter().find(|x| x.service == "migrate").unwrap();
    assert_eq!(job.desired.revision, Some(2));
    let table = s.table(T0);
    let row = table
        .lines()
        .find(|l| l.contains("migrate"))
        .unwrap_or_default();
    assert!(row.contains("r2 app:1"), "{table}");
}
