//! The port-handoff proxy (`berth::proxy`) on loopback, no Docker: switches of backends
//! under a steady stream of requests (HTTP keep-alive and TCP) lose nothing, old backends
//! drain, several backends share a port, upgrades and forwarding headers work, and the routes
//! file is followed (an invalid one keeps the last routes).
//!
//! Backends and clients are tasks in the test; every wait is bounded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use berth::desired::model::HandoffMode;
use berth::proxy::routes::{Backend, Listener, Routes};
use berth::proxy::{Proxy, routes_id};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(20);

/// An HTTP backend answering with its name: `/slow` after 800 ms, `/xff` with the
/// forwarding headers it saw, an `Upgrade` with 101 and then an echo of the bytes.
async fn http_backend(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |mut req: Request<hyper::body::Incoming>| async move {
                        if req.headers().contains_key("upgrade") {
                            let up = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                if let Ok(u) = up.await {
                                    let mut u = TokioIo::new(u);
                                    let mut buf = [0u8; 64];
                                    while let Ok(n) = u.read(&mut buf).await {
                                        if n == 0 || u.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            });
                            let r = Response::builder()
                                .status(101)
                                .header("connection", "upgrade")
                                .header("upgrade", "echo")
                                .body(Full::new(Bytes::new()))
                                .unwrap();
                            return Ok::<_, Infallible>(r);
                        }
                        let body = match req.uri().path() {
                            "/slow" => {
                                tokio::time::sleep(Duration::from_millis(800)).await;
                                name.to_string()
                            }
                            "/xff" => format!(
                                "{}|{}|{}",
                                req.headers()["x-forwarded-for"].to_str().unwrap(),
                                req.headers()["x-forwarded-proto"].to_str().unwrap(),
                                req.headers()["forwarded"].to_str().unwrap()
                            ),
                            "/echo" => {
                                let b = req.into_body().collect().await.unwrap().to_bytes();
                                format!("{name}:{}", b.len())
                            }
                            _ => name.to_string(),
                        };
                        Ok(Response::new(Full::new(Bytes::from(body))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, task)
}

/// A TCP backend that writes its name, then echoes.
async fn tcp_backend(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                if s.write_all(name.as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn routes(mode: HandoffMode, backends: &[(&str, SocketAddr)], drain_ms: u64) -> Routes {
    Routes {
        format: berth::proxy::routes::FORMAT,
        listeners: vec![Listener {
            name: "t/web:80".into(),
            bind: "127.0.0.1:0".parse().unwrap(),
            mode,
            proxy_protocol: false,
            drain_timeout_ms: drain_ms,
            backends: backends
                .iter()
                .map(|(n, a)| Backend {
                    name: (*n).into(),
                    addr: *a,
                })
                .collect(),
        }],
    }
}

fn apply(p: &Proxy, r: &Routes) {
    p.apply(r, &routes_id(&r.to_json()));
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn client(addr: SocketAddr) -> Sender {
    let s = TcpStream::connect(addr).await.unwrap();
    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    tx
}

async fn get(tx: &mut Sender, path: &str) -> (StatusCode, String) {
    tx.ready().await.unwrap();
    let req = Request::get(path)
        .header("host", "shop.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(LIMIT, tx.send_request(req))
        .await
        .expect("bounded")
        .expect("the proxy answers on the same keep-alive connection");
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_switch_keeps_the_keep_alive_connection_and_fails_no_request() {
    let (a, _ta) = http_backend("a").await;
    let (b, _tb) = http_backend("b").await;
    let proxy = Proxy::new();
    apply(&proxy, &routes(HandoffMode::Http, &[("web-a", a)], 5000));
    let addr = proxy.bound("t/web:80").unwrap();
    let mut tx = client(addr).await;
    let mut seen = Vec::new();
    for i in 0..200 {
        if i == 100 {
            apply(&proxy, &routes(HandoffMode::Http, &[("web-b", b)], 5000));
        }
        let (status, body) = get(&mut tx, "/").await;
        assert_eq!(status, StatusCode::OK, "request {i}: {body}");
        seen.push(body);
    }
    assert!(seen[..100].iter().all(|s| s == "a"));
    assert!(
        seen[100..].iter().all(|s| s == "b"),
        "after the switch every request goes to the new backend, on the same client connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_request_drains_on_the_old_backend_after_the_switch() {
    let (a, _ta) = http_backend("a").await;
    let (b, _tb) = http_backend("b").await;
    let proxy = Proxy::new();
    apply(&proxy, &routes(HandoffMode::Http, &[("web-a", a)], 5000));
    let addr = proxy.bound("t/web:80").unwrap();
    let mut slow = client(addr).await;
    let in_flight = tokio::spawn(async move { get(&mut slow, "/slow").await });
    // Bounded wait until the slow request is counted active on a.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while proxy.state().listeners[0].backends[0].active == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow request never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    apply(&proxy, &routes(HandoffMode::Http, &[("web-b", b)], 5000));
    let st = proxy.state();
    let draining: Vec<_> = st.listeners[0]
        .backends
        .iter()
        .filter(|b| !b.routed)
        .collect();
    assert_eq!(draining.len(), 1, "{st:?}");
    assert_eq!(
        (draining[0].name.as_str(), draining[0].active),
        ("web-a", 1)
    );
    let mut fresh = client(addr).await;
    assert_eq!(get(&mut fresh, "/").await.1, "b");
    assert_eq!(in_flight.await.unwrap(), (StatusCode::OK, "a".to_string()));
    let st = proxy.state();
    assert_eq!(st.listeners[0].backends.len(), 1, "drained: {st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_backends_share_one_port_round_robin() {
    let (a, _ta) = http_backend("a").await;
    let (b, _tb) = http_backend("b").await;
    let (c, _tc) = http_backend("c").await;
    let proxy = Proxy::new();
    apply(
        &proxy,
        &routes(
            HandoffMode::Http,
            &[("web-1", a), ("web-2", b), ("web-3", c)],
            1000,
        ),
    );
    let mut tx = client(proxy.bound("t/web:80").unwrap()).await;
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..30 {
        *counts.entry(get(&mut tx, "/").await.1).or_insert(0) += 1;
    }
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [
            ("a".to_string(), 10),
            ("b".to_string(), 10),
            ("c".to_string(), 10)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_backend_is_skipped_and_counted() {
    let (a, _ta) = http_backend("a").await;
    // A port that was just free: nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = Proxy::new();
    apply(
        &proxy,
        &routes(HandoffMode::Http, &[("dead", dead), ("web-a", a)], 1000),
    );
    let mut tx = client(proxy.bound("t/web:80").unwrap()).await;
    for _ in 0..4 {
        assert_eq!(get(&mut tx, "/").await, (StatusCode::OK, "a".to_string()));
    }
    let st = proxy.state();
    assert!(st.listeners[0].backends[0].errors >= 1, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_sees_the_client_address_and_streams_bodies() {
    let (a, _ta) = http_backend("a").await;
    let proxy = Proxy::new();
    apply(&proxy, &routes(HandoffMode::Http, &[("web-a", a)], 1000));
    let mut tx = client(proxy.bound("t/web:80").unwrap()).await;
    let (_, body) = get(&mut tx, "/xff").await;
    assert_eq!(
        body,
        "127.0.0.1|http|for=127.0.0.1;proto=http;host=\"shop.test\""
    );
    tx.ready().await.unwrap();
    let big = Bytes::from(vec![b'x'; 3 << 20]);
    let resp = tx
        .send_request(Request::post("/echo").body(Full::new(big)).unwrap())
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], format!("a:{}", 3 << 20).as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_becomes_a_byte_pipe_that_outlives_a_switch() {
    let (a, _ta) = http_backend("a").await;
    let (b, _tb) = http_backend("b").await;
    let proxy = Proxy::new();
    apply(&proxy, &routes(HandoffMode::Http, &[("web-a", a)], 5000));
    let mut s = TcpStream::connect(proxy.bound("t/web:80").unwrap())
        .await
        .unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(LIMIT, s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    apply(&proxy, &routes(HandoffMode::Http, &[("web-b", b)], 5000));
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(LIMIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
    let st = proxy.state();
    let a_state = st.listeners[0]
        .backends
        .iter()
        .find(|b| b.name == "web-a")
        .expect("draining");
    assert_eq!((a_state.routed, a_state.active), (false, 1));
}

async fn tcp_hello(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.expect("never refused");
    let mut buf = [0u8; 1];
    tokio::time::timeout(LIMIT, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    (s, String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_switch_sends_new_connections_to_the_new_backend_and_drains_old_ones() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let proxy = Proxy::new();
    apply(&proxy, &routes(HandoffMode::Tcp, &[("db-a", a)], 600));
    let addr = proxy.bound("t/web:80").unwrap();
    let (mut old, who) = tcp_hello(addr).await;
    assert_eq!(who, "a");
    apply(&proxy, &routes(HandoffMode::Tcp, &[("db-b", b)], 600));
    for _ in 0..20 {
        assert_eq!(tcp_hello(addr).await.1, "b");
    }
    // The old connection still works while it drains ...
    old.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    old.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"x");
    // ... and is closed once the drain timeout ran out.
    let n = tokio::time::timeout(LIMIT, old.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed after the drain timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_backend_gets_a_proxy_protocol_v2_header_when_asked() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = l.local_addr().unwrap();
    let proxy = Proxy::new();
    let mut r = routes(HandoffMode::Tcp, &[("db", backend)], 1000);
    r.listeners[0].proxy_protocol = true;
    apply(&proxy, &r);
    let addr = proxy.bound("t/web:80").unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    let client_port = c.local_addr().unwrap().port();
    let (mut s, _) = tokio::time::timeout(LIMIT, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut h = [0u8; 28];
    tokio::time::timeout(LIMIT, s.read_exact(&mut h))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
    assert_eq!(&h[16..20], &[127, 0, 0, 1]);
    assert_eq!(u16::from_be_bytes([h[24], h[25]]), client_port);
    assert_eq!(u16::from_be_bytes([h[26], h[27]]), addr.port());
    c.write_all(b"hi").await.unwrap();
    let mut two = [0u8; 2];
    s.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_file_is_followed_and_an_invalid_one_keeps_the_last_routes() {
    let (a, _ta) = http_backend("a").await;
    let (b, _tb) = http_backend("b").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.json");
    std::fs::write(
        &path,
        routes(HandoffMode::Http, &[("web-a", a)], 1000).to_json(),
    )
    .unwrap();
    let proxy = Proxy::new();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let proxy = Arc::clone(&proxy);
        let path = path.clone();
        tokio::spawn(async move {
            berth::proxy::watch(&path, &proxy, async {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    let until = |want: &'static str, proxy: Arc<Proxy>| async move {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(addr) = proxy.bound("t/web:80") {
                let mut tx = client(addr).await;
                if get(&mut tx, "/").await.1 == want {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never served by {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    until("a", Arc::clone(&proxy)).await;
    let first_addr = proxy.bound("t/web:80").unwrap();
    std::fs::write(&path, "{ not json").unwrap();
    tokio::time::sleep(berth::proxy::POLL * 3).await;
    until("a", Arc::clone(&proxy)).await;
    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(berth::proxy::POLL * 3).await;
    until("a", Arc::clone(&proxy)).await;
    std::fs::write(
        &path,
        routes(HandoffMode::Http, &[("web-b", b)], 1000).to_json(),
    )
    .unwrap();
    until("b", Arc::clone(&proxy)).await;
    assert_eq!(
        proxy.bound("t/web:80"),
        Some(first_addr),
        "a switch keeps the listening socket"
    );
    stop_tx.send(()).unwrap();
    tokio::time::timeout(LIMIT, watcher).await.unwrap().unwrap();
}

/// Sends requests until `stop`, each on a new connection (`Connection: close`) or all on one
/// keep-alive connection; returns (ok, failed).
async fn sampler(
    addr: SocketAddr,
    keep_alive: bool,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (u32, u32) {
    use std::sync::atomic::Ordering;
    let (mut ok, mut failed) = (0, 0);
    let mut kept: Option<Sender> = None;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
        let mut tx = match kept.take() {
            Some(tx) => tx,
            None => match TcpStream::connect(addr).await {
                Ok(s) => {
                    let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    tx
                }
                Err(_) => {
                    failed += 1;
                    continue;
                }
            },
        };
        let mut req = Request::get("/").header("host", "t");
        if !keep_alive {
            req = req.header("connection", "close");
        }
        let result = async {
            tx.ready().await?;
            let resp = tx
                .send_request(req.body(Full::new(Bytes::new())).unwrap())
                .await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        };
        match tokio::time::timeout(LIMIT, result).await {
            Ok(Ok(StatusCode::OK)) => ok += 1,
            _ => failed += 1,
        }
        if keep_alive {
            kept = Some(tx);
        }
    }
    (ok, failed)
}

async fn tcp_sampler(addr: SocketAddr, stop: Arc<std::sync::atomic::AtomicBool>) -> (u32, u32) {
    use std::sync::atomic::Ordering;
    let (mut ok, mut failed) = (0, 0);
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
        let hello = async {
            let mut s = TcpStream::connect(addr).await?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await?;
            Ok::<_, std::io::Error>(())
        };
        match tokio::time::timeout(LIMIT, hello).await {
            Ok(Ok(())) => ok += 1,
            _ => failed += 1,
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_switches_with_old_replicas_stopped_fail_no_request_and_refuse_no_connection() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let proxy = Proxy::new();
    let (first, mut old_task) = http_backend("r0").await;
    apply(
        &proxy,
        &routes(HandoffMode::Http, &[("web-r0", first)], 2000),
    );
    let mut tcp_routes = routes(HandoffMode::Tcp, &[("db-r0", tcp_backend("0").await)], 2000);
    tcp_routes.listeners[0].name = "t/db:5432".into();
    let mut both = routes(HandoffMode::Http, &[("web-r0", first)], 2000);
    both.listeners.push(tcp_routes.listeners[0].clone());
    apply(&proxy, &both);
    let http_addr = proxy.bound("t/web:80").unwrap();
    let tcp_addr = proxy.bound("t/db:5432").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let samplers = [
        tokio::spawn(sampler(http_addr, true, Arc::clone(&stop))),
        tokio::spawn(sampler(http_addr, false, Arc::clone(&stop))),
        tokio::spawn(tcp_sampler(tcp_addr, Arc::clone(&stop))),
    ];
    for i in 1..=20 {
        // Like a rollout: the new replica is up, the switch, then the old one stops.
        let (next, task) = http_backend(["a", "b"][i % 2]).await;
        both.listeners[0].backends = vec![Backend {
            name: format!("web-r{i}"),
            addr: next,
        }];
        both.listeners[1].backends = vec![Backend {
            name: format!("db-r{i}"),
            addr: tcp_backend("1").await,
        }];
        apply(&proxy, &both);
        tokio::time::sleep(Duration::from_millis(40)).await;
        old_task.abort();
        old_task = task;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for (i, s) in samplers.into_iter().enumerate() {
        let (ok, failed) = tokio::time::timeout(LIMIT, s).await.unwrap().unwrap();
        eprintln!("sampler {i}: {ok} ok, {failed} failed");
        assert_eq!(failed, 0, "sampler {i}: {ok} ok, {failed} failed");
        assert!(ok > 0, "sampler {i} sent nothing");
        total += ok;
    }
    assert!(total > 60, "only {total} requests across 20 switches");
}
