//! Reading the fleet's peers (`fleet::peers`, `fleet::peer`), in process on 127.0.0.1: a
//! peer's status becomes a typed report (phases to ready/not ready/failed), the shared token is
//! sent, and every way a peer can fail to answer — refused, an HTTP error, something that is not
//! a status, silence — is `Unreachable` with a reason, never a guess.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::fleet::peer::{PeerReport, PeerService, PeerState, PeerView};
use berth::fleet::peers::{FleetToken, read_all};
use berth::http_client::Client;
use berth::telemetry::status::{
    DesiredRevision, LastRollout, Phase, ServiceStatus, SourceStatus, Status,
};
use berth::telemetry::time::Timestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn service(name: &str, phase: Phase, ready: u32, rollout: Option<&str>) -> ServiceStatus {
    ServiceStatus {
        project: "shop".into(),
        service: name.into(),
        job: false,
        desired: DesiredRevision {
            hash: format!("{name}-hash"),
            image: "app:1".into(),
            revision: Some(2),
        },
        running: vec![],
        ready,
        replicas: 2,
        phase,
        since: Timestamp(1_000),
        reason: String::new(),
        conditions: vec![],
        last_rollout: rollout.map(|result| LastRollout {
            revision: 2,
            result: result.into(),
            started_at: Timestamp(900),
            reason: None,
        }),
        update: None,
        traffic: vec![],
        wave: None,
    }
}

fn status(services: Vec<ServiceStatus>) -> Status {
    Status {
        generated_at: Timestamp(1_100),
        round: None,
        source: SourceStatus {
            kind: "dir".into(),
            location: "/srv/fleet".into(),
            revision: None,
            valid: true,
            errors: 0,
            warnings: 0,
            diagnostics: vec![],
        },
        engine_reachable: Some(true),
        conditions: vec![],
        services,
        orphans: vec![],
        not_ours: vec![],
        host: None,
    }
}

#[test]
fn a_status_becomes_ready_not_ready_or_failed_per_service() {
    let s = status(vec![
        service("idle", Phase::Idle, 2, Some("succeeded")),
        service("short", Phase::Idle, 1, None),
        service("rolling", Phase::Progressing, 2, Some("in_progress")),
        service("reverted", Phase::Reverted, 2, Some("reverted")),
        service("quarantined", Phase::Blocked, 0, Some("failed")),
        service("held", Phase::Blocked, 2, Some("succeeded")),
        service("degraded", Phase::Degraded, 1, None),
    ]);
    let report = berth::fleet::report::from_status(&s);
    let states: BTreeMap<&str, PeerState> = report.projects["shop"]
        .iter()
        .map(|(k, v)| (k.as_str(), v.state))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("degraded", PeerState::Failed),
            ("held", PeerState::NotReady),
            ("idle", PeerState::Ready { since: 1_000 }),
            ("quarantined", PeerState::Failed),
            ("reverted", PeerState::Failed),
            ("rolling", PeerState::NotReady),
            ("short", PeerState::NotReady),
        ])
    );
    assert_eq!(report.projects["shop"]["idle"].hash, "idle-hash");
}

#[test]
fn the_token_admits_only_its_own_bearer_value() {
    let t = FleetToken::new("s3cret");
    assert!(t.admits(Some("Bearer s3cret")));
    assert!(!t.admits(Some("Bearer s3cret2")));
    assert!(!t.admits(Some("s3cret")));
    assert!(!t.admits(Some("Basic s3cret")));
    assert!(!t.admits(None));
    assert_eq!(format!("{t:?}"), "FleetToken(…)");
}

/// How the canned peer answers.
#[derive(Clone, Copy)]
enum Answer {
    Status,
    Unauthorized,
    Garbage,
    Silent,
}

/// A peer on 127.0.0.1 answering one way; returns its base URL and a channel with the request
/// head it received.
async fn peer(answer: Answer) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let _ = tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .await;
            let (code, body) = match answer {
                Answer::Status => (
                    "200 OK",
                    serde_json::to_string(&status(vec![service("web", Phase::Idle, 2, None)]))
                        .expect("json"),
                ),
                Answer::Unauthorized => ("401 Unauthorized", "no\n".to_string()),
                Answer::Garbage => ("200 OK", "{\"hello\": 1}".to_string()),
                Answer::Silent => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    continue;
                }
            };
            let resp = format!(
                "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn peers_are_read_with_the_token_and_every_failure_is_unreachable() {
    let (ok, mut seen) = peer(Answer::Status).await;
    let (unauthorized, _) = peer(Answer::Unauthorized).await;
    let (garbage, _) = peer(Answer::Garbage).await;
    let (silent, _) = peer(Answer::Silent).await;
    // A port nothing listens on: bind one, then close it.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let peers: Vec<(String, String)> = [
        ("ok", ok),
        ("unauthorized", unauthorized),
        ("garbage", garbage),
        ("silent", silent),
        ("closed", closed),
    ]
    .into_iter()
    .map(|(h, u)| (h.to_string(), u))
    .collect();
    let token = FleetToken::new("s3cret");
    let started = std::time::Instant::now();
    let views = read_all(
        &Client::plain(),
        &peers,
        Some(&token),
        Duration::from_secs(1),
    )
    .await;
    // All at once: the silent peer costs its timeout once, not once per peer.
    assert!(started.elapsed() < Duration::from_secs(5));
    let head = seen.recv().await.expect("the peer saw a request");
    assert!(
        head.starts_with("GET /api/v1/status HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        // Header names are case-insensitive (hyper sends them in lower case).
        head.to_ascii_lowercase()
            .contains("\r\nauthorization: bearer s3cret\r\n"),
        "{head}"
    );
    let mut want = PeerReport::default();
    want.projects.entry("shop".into()).or_default().insert(
        "web".into(),
        PeerService {
            hash: "web-hash".into(),
            state: PeerState::Ready { since: 1_000 },
        },
    );
    assert_eq!(views["ok"], PeerView::Answered(want));
    let why = |h: &str| match &views[h] {
        PeerView::Unreachable(e) => e.clone(),
        other => panic!("{h}: {other:?}"),
    };
    assert!(
        why("unauthorized").ends_with("answered HTTP 401"),
        "{}",
        why("unauthorized")
    );
    assert!(
        why("garbage").contains("answered something that is not a berth status"),
        "{}",
        why("garbage")
    );
    assert_eq!(why("silent"), "no answer within 1s");
    assert!(
        why("closed").starts_with("failed to connect to 127.0.0.1:"),
        "{}",
        why("closed")
    );
    assert_eq!(views.len(), 5);
}
