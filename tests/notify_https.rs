//! Notifications over HTTPS to a real TLS receiver on 127.0.0.1 whose certificate a test CA
//! (made here with rcgen) signed: delivered in each receiver's native format when berth
//! trusts the CA file (`--notify-ca`), refused when it does not, and filtered per receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth::http_client::{Client, tls};
use berth::telemetry::events::{EventLog, EventRecord, NewEvent};
use berth::telemetry::notify::{Notifier, NotifyOptions, Target};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A test CA and a server certificate for 127.0.0.1 it signed.
struct Pki {
    ca_pem: String,
    server: rustls::ServerConfig,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "berth test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    #[allow(deprecated)] // ring: see src/http_client/tls.rs
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server,
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// An HTTPS receiver answering 200 to every request; `handshake_failures` counts TLS
/// handshakes that did not complete.
struct TlsReceiver {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    handshake_failures: Arc<Mutex<u32>>,
}

impl TlsReceiver {
    async fn start(config: rustls::ServerConfig) -> TlsReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(0));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (s, f) = (seen.clone(), failures.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, s, f) = (acceptor.clone(), s.clone(), f.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(_) => {
                            *f.lock().unwrap() += 1;
                            return;
                        }
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Bounded: a request of at most 1 MiB within 5 s.
                    let read = tokio::time::timeout(Duration::from_secs(5), async {
                        while buf.len() < 1 << 20 {
                            let n = tls.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                            if let Some(seen) = complete(&buf) {
                                return Some(seen);
                            }
                        }
                        None
                    })
                    .await;
                    if let Ok(Some(seen)) = read {
                        s.lock().unwrap().push(seen);
                    }
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsReceiver {
            port,
            seen,
            handshake_failures: failures,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// The request in `buf` once its headers and `Content-Length` body are all there.
fn complete(buf: &[u8]) -> Option<Seen> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body = &buf[end + 4..];
    (body.len() >= len).then(|| Seen {
        request_line,
        headers,
        body: String::from_utf8_lossy(&body[..len]).to_string(),
    })
}

fn record(project: &str, kind: &str, severity: &'static str) -> EventRecord {
    EventLog::in_memory(4).push(
        NewEvent {
            project: project.into(),
            service: "web".into(),
            kind: kind.into(),
            reason: "deadline".into(),
            message: "r2 failed; r1 runs again".into(),
            revision: Some(1),
            severity,
            logs: None,
        },
        1_700_000_000,
    )
}

fn fast() -> NotifyOptions {
    NotifyOptions {
        queue: 16,
        attempts: 2,
        backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
    }
}

fn ca_file(pki: &Pki) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test-ca.pem");
    std::fs::write(&path, &pki.ca_pem).unwrap();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_arrives_over_https_when_the_ca_is_trusted() {
    let pki = pki();
    let rx = TlsReceiver::start(pki.server.clone()).await;
    let (_dir, ca) = ca_file(&pki);
    let (config, roots) = tls::client_config(Some(&ca)).unwrap();
    assert_eq!(roots.extra, 1);
    let p = rx.port;
    let targets: Vec<Target> = [
        format!("https://127.0.0.1:{p}/json"),
        format!("slack+https://127.0.0.1:{p}/services/T/B/SECRET"),
        format!("discord+https://localhost:{p}/api/webhooks/1/tok"),
        format!("teams+https://127.0.0.1:{p}/workflows/1"),
        format!("ntfy+https://127.0.0.1:{p}/berth-alerts"),
        format!("gotify+https://127.0.0.1:{p}/message?token=abc"),
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    let n = Notifier::start(targets, fast(), Client::with_tls(config));
    n.send(&record("shop", "reverted", "error"));
    assert!(n.flush(Duration::from_secs(20)).await, "all delivered");
    let seen = rx.seen();
    assert_eq!(seen.len(), 6, "{seen:#?}");
    let by_path = |p: &str| {
        seen.iter()
            .find(|s| s.request_line.starts_with(&format!("POST {p} ")))
            .unwrap_or_else(|| panic!("no request to {p}: {seen:#?}"))
            .clone()
    };
    let json = |s: &Seen| serde_json::from_str::<serde_json::Value>(&s.body).unwrap();
    assert_eq!(json(&by_path("/json"))["kind"], "reverted");
    assert_eq!(
        json(&by_path("/services/T/B/SECRET"))["text"],
        ":rotating_light: *shop/web* reverted: r2 failed; r1 runs again"
    );
    assert_eq!(
        json(&by_path("/api/webhooks/1/tok"))["content"],
        "🚨 **shop/web** reverted: r2 failed; r1 runs again"
    );
    assert_eq!(
        json(&by_path("/workflows/1"))["attachments"][0]["content"]["type"],
        "AdaptiveCard"
    );
    let gotify = json(&by_path("/message?token=abc"));
    assert_eq!(
        (gotify["title"].as_str(), gotify["priority"].as_u64()),
        (Some("shop/web reverted"), Some(8))
    );
    let ntfy = by_path("/berth-alerts");
    assert_eq!(ntfy.body, "r2 failed; r1 runs again");
    assert!(
        ntfy.headers
            .contains(&("title".into(), "shop/web reverted".into())),
        "{ntfy:?}"
    );
    assert!(
        ntfy.headers.contains(&("priority".into(), "high".into())),
        "{ntfy:?}"
    );
    assert_eq!(*rx.handshake_failures.lock().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let pki = pki();
    let rx = TlsReceiver::start(pki.server.clone()).await;
    // The system's roots only: the test CA is not among them.
    let (config, _) = tls::client_config(None).unwrap();
    let target: Target = format!("https://127.0.0.1:{}/hook", rx.port)
        .parse()
        .unwrap();
    let n = Notifier::start(vec![target], fast(), Client::with_tls(config));
    n.send(&record("shop", "reverted", "error"));
    assert!(n.flush(Duration::from_secs(20)).await, "given up on");
    assert!(rx.seen().is_empty(), "nothing reached the receiver");
    assert!(*rx.handshake_failures.lock().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiver_gets_what_its_filter_takes() {
    let pki = pki();
    let rx = TlsReceiver::start(pki.server.clone()).await;
    let (_dir, ca) = ca_file(&pki);
    let (config, _) = tls::client_config(Some(&ca)).unwrap();
    let p = rx.port;
    let targets: Vec<Target> = [
        format!("https://127.0.0.1:{p}/all"),
        format!("https://127.0.0.1:{p}/shop-errors#severity=error&projects=shop"),
        format!("https://127.0.0.1:{p}/starts#events=rollout_started"),
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    let n = Notifier::start(targets, fast(), Client::with_tls(config));
    n.send(&record("shop", "rollout_started", "info"));
    n.send(&record("shop", "reverted", "error"));
    n.send(&record("blog", "reverted", "error"));
    n.send(&record("shop", "rollout_succeeded", "info"));
    assert!(n.flush(Duration::from_secs(20)).await);
    let mut got: Vec<(String, String, String)> = rx
        .seen()
        .iter()
        .map(|s| {
            let e: serde_json::Value = serde_json::from_str(&s.body).unwrap();
            let path = s
                .request_line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string();
            (
                path,
                e["project"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String, String)> = [
        ("/all", "blog", "reverted"),
        ("/all", "shop", "reverted"),
        ("/all", "shop", "rollout_succeeded"),
        ("/shop-errors", "shop", "reverted"),
        ("/starts", "shop", "rollout_started"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want);
}
