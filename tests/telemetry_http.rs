//! berth's HTTP server and notification delivery, in process on 127.0.0.1: routes and
//! methods, content negotiation of /metrics, the git webhook route and its body limit,
//! slow-client and slow-handler limits, graceful shutdown; notifications retried on 5xx, not
//! on 4xx, and a full queue dropping its oldest message while the receiver is slow; the
//! port-handoff proxy's series in `/metrics` (an in-process proxy), and `berth_proxy_up 0`
//! without delay when it does not answer.

mod support {
    pub mod receiver;
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth::http_client::Client;
use berth::telemetry::events::{EventRecord, NewEvent};
use berth::telemetry::http::{GitHook, Server, ServerOptions};
use berth::telemetry::notify::{Notifier, NotifyOptions, Target};
use berth::telemetry::time::Timestamp;
use berth::telemetry::{Telemetry, TelemetryOptions};
use support::receiver::{Behaviour, Receiver};

/// One raw HTTP/1.1 exchange: (status, headers+body text).
fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
    )
}

fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Hub-Signature-256: sha256=abc\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

async fn serve(opts: ServerOptions) -> (Arc<Telemetry>, Server) {
    let tel = Telemetry::new(TelemetryOptions::default());
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), tel.clone(), opts)
        .await
        .unwrap();
    (tel, server)
}

/// Runs blocking client code off the runtime's threads.
async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn echo_hook(delay: Duration) -> GitHook {
    Arc::new(move |headers, body| {
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let sig = headers
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            (202, format!("sig={sig} bytes={}\n", body.len()))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_methods_and_metrics_negotiation() {
    let (_tel, server) = serve(ServerOptions::default()).await;
    let a = server.local_addr();
    let r = client(move || {
        [
            get(a, "/healthz", ""),
            get(a, "/readyz", ""),
            get(a, "/api/v1/status", ""),
            get(a, "/metrics", ""),
            get(a, "/metrics", "Accept: text/plain;version=0.0.4\r\n"),
            get(
                a,
                "/metrics",
                "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n",
            ),
            get(a, "/nope", ""),
            post(a, "/metrics", ""),
            post(a, "/hooks/git", "{}"),
            get(a, "/api/v1/events?since=tomorrow", ""),
            get(a, "/api/v1/events?since=0&limit=5", ""),
            raw(
                a,
                "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ),
        ]
    })
    .await;
    assert_eq!(r[0].0, 200);
    assert_eq!(r[1].0, 503, "not ready before a round: {}", r[1].1);
    assert!(r[1].1.contains("no reconcile round"));
    assert_eq!(r[2].0, 503);
    assert_eq!(r[3].0, 200);
    // No Accept (like `curl`): the classic format, as Prometheus' client libraries answer.
    assert!(
        r[3].1.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r[3].1
    );
    assert!(!r[3].1.contains("# EOF"));
    assert!(r[4].1.contains("content-type: text/plain; version=0.0.4"));
    assert!(r[4].1.contains("# TYPE berth_reconcile_total counter"));
    assert!(!r[4].1.contains("# EOF"));
    assert!(
        r[5].1
            .contains("content-type: application/openmetrics-text; version=1.0.0")
    );
    assert!(r[5].1.trim_end().ends_with("# EOF"));
    assert_eq!(r[6].0, 404);
    assert_eq!(r[7].0, 405);
    assert!(r[7].1.contains("allow: GET, HEAD"));
    assert_eq!(r[8].0, 404, "no hook configured: {}", r[8].1);
    assert_eq!(r[9].0, 400);
    assert_eq!(r[10].0, 200);
    assert!(r[10].1.contains("\"next_seq\": 1"), "{}", r[10].1);
    assert_eq!(r[11].0, 200);
    assert!(
        r[11].1.ends_with("\r\n\r\n"),
        "HEAD has no body: {:?}",
        r[11].1
    );
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_git_hook_gets_headers_and_body_within_the_limit() {
    let (_tel, server) = serve(ServerOptions {
        max_body: 1000,
        git_hook: Some(echo_hook(Duration::ZERO)),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let r = client(move || {
        let big = "x".repeat(5000);
        [
            post(a, "/hooks/git", "{\"ref\":\"refs/heads/main\"}"),
            get(a, "/hooks/git", ""),
            post(a, "/hooks/git", &big),
            // Chunked, so no Content-Length to refuse it up front.
            raw(
                a,
                &format!(
                    "POST /hooks/git HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
                    big.len()
                ),
            ),
        ]
    })
    .await;
    assert_eq!(r[0].0, 202, "{}", r[0].1);
    assert!(r[0].1.contains("sig=sha256=abc bytes=25"), "{}", r[0].1);
    assert_eq!(r[1].0, 405);
    assert!(r[1].1.contains("allow: POST"));
    assert_eq!(r[2].0, 413, "{}", r[2].1);
    assert_eq!(r[3].0, 413, "{}", r[3].1);
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_and_slow_handlers_are_cut_off() {
    let (_tel, server) = serve(ServerOptions {
        header_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        git_hook: Some(echo_hook(Duration::from_secs(30))),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let (closed_after, slow_handler) = client(move || {
        // Headers that never end: the server closes the connection.
        let mut s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let start = Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (start.elapsed(), post(a, "/hooks/git", "{}"))
    })
    .await;
    assert!(
        closed_after < Duration::from_secs(5),
        "a client that never finishes its headers is dropped (took {closed_after:?})"
    );
    assert_eq!(slow_handler.0, 503, "{}", slow_handler.1);
    server.shutdown(Duration::from_secs(5)).await;
}

/// `n` connections that each send part of a request head and then trickle one header byte
/// every `every` (until `stop`): the slowloris pattern.
fn trickle(
    a: SocketAddr,
    n: usize,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let mut conns: Vec<TcpStream> = (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&a, Duration::from_secs(10)).ok())
        .collect();
    for c in &mut conns {
        let _ = c.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    std::thread::spawn(move || {
        // Bounded: at most ten minutes of trickling.
        for _ in 0..(600_000 / every.as_millis().max(1)) {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            for c in &mut conns {
                let _ = c.write_all(b"a");
            }
            std::thread::sleep(every);
        }
        conns.len()
    })
}

/// `GET /healthz` on a fresh connection: (status, how long the answer took).
fn timed_healthz(a: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let Ok(mut s) = TcpStream::connect_timeout(&a, Duration::from_secs(30)) else {
        return (0, started.elapsed());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_slow_connections_do_not_keep_healthz_waiting() {
    // Headers may take an hour: only the connection bound can make room for /healthz, so
    // an answer while the 200 slow clients still hold their connections proves it does.
    let (_tel, server) = serve(ServerOptions {
        header_timeout: Duration::from_secs(3600),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = trickle(a, 200, Duration::from_millis(500), stop.clone());
    let (code, took) = client(move || timed_healthz(a)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = client(move || slow.join().unwrap()).await;
    assert_eq!(opened, 200);
    assert_eq!(code, 200, "/healthz was not answered (waited {took:?})");
    eprintln!("/healthz with 200 slow connections open: {took:?}");
    server.shutdown(Duration::from_secs(5)).await;
}

/// The numbers of the report: `/healthz` latency with 200 slow connections and the default
/// limits. `cargo test --test telemetry_http -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (prints latencies), not a check"]
async fn measure_healthz_latency_with_200_slow_connections() {
    let (_tel, server) = serve(ServerOptions::default()).await;
    let a = server.local_addr();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = trickle(a, 200, Duration::from_millis(500), stop.clone());
    let mut took = Vec::new();
    for _ in 0..5 {
        let (code, t) = client(move || timed_healthz(a)).await;
        assert_eq!(code, 200);
        took.push(t);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    client(move || slow.join().unwrap()).await;
    took.sort();
    eprintln!("/healthz with 200 slow connections (default limits), 5 requests in a row: {took:?}");
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish_then_refuses_new_ones() {
    let (_tel, server) = serve(ServerOptions {
        git_hook: Some(echo_hook(Duration::from_millis(500))),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let in_flight = tokio::task::spawn_blocking(move || post(a, "/hooks/git", "{}"));
    // The request is being handled (the hook sleeps) when the shutdown starts.
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.shutdown(Duration::from_secs(5)).await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.0, 202, "{}", r.1);
    assert!(TcpStream::connect(a).is_err(), "no longer listening");
}

fn record(seq: u64, kind: &str) -> EventRecord {
    let log = berth::telemetry::events::EventLog::in_memory(10);
    let mut e = log.push(
        NewEvent {
            project: "shop".into(),
            service: "web".into(),
            kind: kind.into(),
            reason: "deadline".into(),
            message: format!("event {seq}"),
            revision: Some(2),
            severity: "error",
            logs: None,
        },
        1_700_000_000,
    );
    e.seq = seq;
    e.time = Timestamp(1_700_000_000);
    e
}

fn fast() -> NotifyOptions {
    NotifyOptions {
        queue: 16,
        attempts: 3,
        backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_retry_server_errors_and_not_refusals() {
    let flaky = Receiver::start(Behaviour::Answer, &[500, 503, 200], Duration::ZERO);
    let refusing = Receiver::start(Behaviour::Answer, &[400], Duration::ZERO);
    let targets: Vec<Target> = vec![
        format!("http://127.0.0.1:{}/hook", flaky.port)
            .parse()
            .unwrap(),
        format!("slack+http://127.0.0.1:{}/slack", refusing.port)
            .parse()
            .unwrap(),
    ];
    let n = Notifier::start(targets, fast(), Client::plain());
    n.send(&record(1, "rollout_started")); // not meaningful: never sent
    n.send(&record(2, "reverted"));
    assert!(n.flush(Duration::from_secs(10)).await);
    let got = flaky.received();
    assert_eq!(got.len(), 3, "two failures, then delivered: {got:#?}");
    let e: serde_json::Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(
        (e["seq"].as_u64(), e["kind"].as_str()),
        (Some(2), Some("reverted"))
    );
    assert!(
        got[2]
            .headers
            .contains(&("content-type".into(), "application/json".into()))
    );
    let refused = refusing.received();
    assert_eq!(refused.len(), 1, "a 4xx is final: {refused:#?}");
    assert_eq!(
        refused[0].body,
        r#"{"text":":rotating_light: *shop/web* reverted: event 2"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_only_delays_its_own_queue_which_drops_its_oldest() {
    let slow = Receiver::start(Behaviour::Answer, &[200], Duration::from_millis(400));
    let silent = Receiver::start(Behaviour::Silent, &[], Duration::ZERO);
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let quick = Receiver::start(Behaviour::Answer, &[200], Duration::ZERO);
    let opts = NotifyOptions {
        queue: 2,
        attempts: 1,
        ..fast()
    };
    let slow_n = Notifier::start(
        vec![format!("http://127.0.0.1:{}/", slow.port).parse().unwrap()],
        opts,
        Client::plain(),
    );
    let others = Notifier::start(
        vec![
            format!("http://127.0.0.1:{}/", silent.port)
                .parse()
                .unwrap(),
            format!("http://127.0.0.1:{dead_port}/").parse().unwrap(),
            format!("http://127.0.0.1:{}/", quick.port).parse().unwrap(),
        ],
        NotifyOptions {
            queue: 64,
            ..fast()
        },
        Client::plain(),
    );
    slow_n.send(&record(1, "rollout_failed"));
    // 1 is in flight at the slow receiver; 2..5 arrive while it answers.
    slow.wait_for("the first message", Duration::from_secs(5), |r| {
        r.len() == 1
    });
    for seq in 2..=5 {
        slow_n.send(&record(seq, "rollout_failed"));
    }
    // Meanwhile the silent and the dead receivers do not hold up the quick one.
    for seq in 1..=3 {
        others.send(&record(seq, "degraded"));
    }
    quick.wait_for("three messages", Duration::from_secs(5), |r| r.len() == 3);
    assert!(slow_n.flush(Duration::from_secs(10)).await);
    let seqs: Vec<u64> = slow
        .received()
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [1, 4, 5], "the queue of 2 kept the newest");
}

/// A log writer the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn listening_beyond_loopback_warns_and_names_the_risk() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let tel = Telemetry::new(TelemetryOptions::default());
    let text = || String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();

    let local = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        tel.clone(),
        ServerOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(text(), "", "loopback is quiet");
    local.shutdown(Duration::from_secs(1)).await;

    let open = Server::bind("0.0.0.0:0".parse().unwrap(), tel, ServerOptions::default())
        .await
        .unwrap();
    let said = text();
    assert!(said.contains("WARN"), "{said}");
    assert!(said.contains("not a loopback address"), "{said}");
    assert!(said.contains("without authentication"), "{said}");
    assert!(said.contains("token"), "{said}");
    open.shutdown(Duration::from_secs(1)).await;
}

/// Reports one round to the hub: `loaded` is this round's load, `desired` the state applied.
fn round(
    tel: &Telemetry,
    n: u64,
    loaded: &berth::desired::Loaded,
    desired: &berth::desired::model::DesiredState,
) {
    use berth::controller::{RoundReport, RoundResult};
    tel.observe(
        &RoundReport {
            round: n,
            started: std::time::SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(1),
            loaded,
            desired: Some(desired),
            observed: None,
            records: None,
            plan: None,
            events: &[],
            failures: &[],
            result: RoundResult::Settled,
        },
        1_700_000_000 + n,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_with_the_reason_while_the_desired_state_is_invalid() {
    use berth::desired::{LoadOptions, load_inline};
    let (tel, server) = serve(ServerOptions::default()).await;
    let a = server.local_addr();
    let good = load_inline(
        "services: {web: {image: busybox}}\n",
        &LoadOptions::default(),
    );
    let bad = load_inline("services: {web: {}}\n", &LoadOptions::default());
    let d = good.state.clone().unwrap();
    assert!(bad.diagnostics.has_errors());

    round(&tel, 1, &good, &d);
    assert_eq!(client(move || get(a, "/readyz", "")).await.0, 200);
    // The last good state keeps being applied, but what is desired is broken: not ready.
    round(&tel, 2, &bad, &d);
    let (code, body) = client(move || get(a, "/readyz", "")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("the desired state is invalid"), "{body}");
    round(&tel, 3, &good, &d);
    assert_eq!(client(move || get(a, "/readyz", "")).await.0, 200);
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_stops_answering_shows_in_readyz_and_status_at_once() {
    use berth::desired::{LoadOptions, load_inline};
    let answering = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = answering.clone();
    let (tel, server) = serve(ServerOptions {
        engine_check: Some(Arc::new(move || {
            (!flag.load(std::sync::atomic::Ordering::Relaxed))
                .then(|| "engine not answering for 3s: ping timed out".to_string())
        })),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let good = load_inline(
        "services: {web: {image: busybox}}\n",
        &LoadOptions::default(),
    );
    round(&tel, 1, &good, &good.state.clone().unwrap());
    assert_eq!(client(move || get(a, "/readyz", "")).await.0, 200);

    // The last round went well; the engine froze since.
    answering.store(false, std::sync::atomic::Ordering::Relaxed);
    let (code, body) = client(move || get(a, "/readyz", "")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("engine not answering"), "{body}");
    let (code, body) = client(move || get(a, "/api/v1/status", "")).await;
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value =
        serde_json::from_str(body.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(json["engine_reachable"], false, "{json:#}");
    let cond = json["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "EngineReachable")
        .unwrap();
    assert_eq!(cond["status"], "False", "{cond}");
    assert_eq!(cond["reason"], "NotAnswering", "{cond}");
    assert!(cond["message"].as_str().unwrap().contains("not answering"));

    answering.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(client(move || get(a, "/readyz", "")).await.0, 200);
    server.shutdown(Duration::from_secs(5)).await;
}

/// A routes file in `dir` with one TCP listener, `shop/db:5432`, bound on a free loopback
/// port, its one backend a listener of the test.
fn handoff_routes(dir: &std::path::Path, backend: SocketAddr) -> berth::proxy::routes::Routes {
    use berth::proxy::routes::{Backend, Listener, Routes};
    let routes = Routes {
        listeners: vec![Listener {
            name: "shop/db:5432".into(),
            bind: "127.0.0.1:0".parse().unwrap(),
            mode: berth::desired::model::HandoffMode::Tcp,
            proxy_protocol: false,
            drain_timeout_ms: 1000,
            backends: vec![Backend {
                name: "shop-db-1".into(),
                addr: backend,
            }],
        }],
        ..Routes::default()
    };
    berth::proxy::file::write(&berth::proxy::file::path(dir), &routes).unwrap();
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_join_the_proxys_series_per_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let routes = handoff_routes(tmp.path(), backend.local_addr().unwrap());
    let proxy = berth::proxy::Proxy::new();
    proxy.apply(&routes, &berth::proxy::routes_id(&routes.to_json()));
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr().unwrap();
    let admin_task = tokio::spawn(berth::proxy::admin::serve(admin, Arc::clone(&proxy)));
    let (_tel, server) = serve(ServerOptions {
        proxy: Some(berth::proxy::look::ProxyWatch::new(tmp.path(), admin_addr)),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    // One connection through the proxy, held open: one request handed over, one active.
    let bound = proxy.bound("shop/db:5432").expect("the listener is bound");
    let _held = tokio::net::TcpStream::connect(bound).await.unwrap();
    let (_accepted, _) = tokio::time::timeout(Duration::from_secs(10), backend.accept())
        .await
        .expect("the proxy connects to the backend")
        .unwrap();
    let (code, m) = client(move || get(a, "/metrics", "")).await;
    assert_eq!(code, 200);
    for line in [
        "\nberth_proxy_up 1\n",
        "\nberth_proxy_requests_total{listener=\"shop/db:5432\",backend=\"shop-db-1\"} 1\n",
        "\nberth_proxy_errors_total{listener=\"shop/db:5432\",backend=\"shop-db-1\"} 0\n",
        "\nberth_proxy_active_connections{listener=\"shop/db:5432\",backend=\"shop-db-1\",state=\"routed\"} 1\n",
        "\nberth_proxy_unserved_total{listener=\"shop/db:5432\"} 0\n",
        "\n# TYPE berth_proxy_requests_total counter\n",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    // berth's own series are still there.
    assert!(m.contains("\nberth_build_info{"), "{m}");
    admin_task.abort();
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_does_not_answer_is_up_0_and_the_scrape_still_answers() {
    let tmp = tempfile::tempdir().unwrap();
    handoff_routes(tmp.path(), "127.0.0.1:9".parse().unwrap());
    // An address nothing listens on: bound, then released.
    let gone = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_tel, server) = serve(ServerOptions {
        proxy: Some(berth::proxy::look::ProxyWatch::new(tmp.path(), gone)),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let (code, m) = client(move || get(a, "/metrics", "")).await;
    assert_eq!(code, 200);
    assert!(m.contains("\nberth_proxy_up 0\n"), "{m}");
    assert!(!m.contains("berth_proxy_requests"), "{m}");
    assert!(m.contains("\nberth_build_info{"), "{m}");

    // No service hands off a port: no proxy series at all.
    berth::proxy::file::write(
        &berth::proxy::file::path(tmp.path()),
        &berth::proxy::routes::Routes::default(),
    )
    .unwrap();
    let (_, m) = client(move || get(a, "/metrics", "")).await;
    assert!(!m.contains("berth_proxy"), "{m}");
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_accepts_and_never_answers_is_up_0_after_its_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    handoff_routes(tmp.path(), "127.0.0.1:9".parse().unwrap());
    // Connections complete (the kernel's backlog) and nothing is ever read or answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (_tel, server) = serve(ServerOptions {
        proxy: Some(berth::proxy::look::ProxyWatch::new(
            tmp.path(),
            silent.local_addr().unwrap(),
        )),
        ..ServerOptions::default()
    })
    .await;
    let a = server.local_addr();
    let started = Instant::now();
    let (code, m) = client(move || get(a, "/metrics", "")).await;
    // A number for the notes, not an assertion: the look is bounded by proxy::look::TIMEOUT.
    eprintln!("scrape with a silent proxy took {:?}", started.elapsed());
    assert_eq!(code, 200);
    assert!(m.contains("\nberth_proxy_up 0\n"), "{m}");
    drop(silent);
    server.shutdown(Duration::from_secs(5)).await;
}
