//! berth's own readiness and liveness probes (`x-berth.readiness`, `x-berth.liveness`), run by
//! berth itself so that the image needs no tool (no curl, no shell) for them.
//!
//! [`check`] runs one probe once and says what it saw; [`ProbeTracker`] is pure and turns a
//! series of those results into a verdict by the probe's success and failure thresholds. The
//! caller (the rollout gate, self-heal) owns the interval and the clock.
//!
//! - HTTP: one `GET` over a plain TCP socket (berth's one HTTP client, `crate::http_client`,
//!   with `Connection: close`); passes when the status is within the probe's range and, if
//!   set, the body contains `body_contains`. At most [`MAX_RESPONSE`] bytes of the body are
//!   read; a longer body is judged on its beginning. Chunked bodies are decoded.
//! - TCP: passes when a connection is accepted.
//! - Exec: the command runs in the container through Docker's exec API ([`Engine::exec`]);
//!   passes on exit code 0.
//!
//! Every check is bounded by the probe's `timeout`; a container that is not running fails at
//! once.
//!
//! # How a probe reaches the container
//!
//! HTTP and TCP probes connect from the host running berth, to the probe's container port:
//! 1. `network_mode: host`: the container shares the host's network, so `127.0.0.1:<port>`.
//! 2. Otherwise the container's IPv4 address on its first network (by network name) that gives
//!    it one. On Linux, bridge networks (the default and compose's) are routed from the host,
//!    so the address is reachable without publishing anything.
//! 3. A container with no address (`network_mode: none`, `container:<other>`, a network driver
//!    that gives none) falls back to where that container port is published on the host: a
//!    binding on all interfaces or on loopback is reached at `127.0.0.1` (`::` and `::1` at
//!    `::1`), one on a specific host address at that address.
//! 4. Otherwise the probe fails and says that the container cannot be reached.
//!
//! Docker Desktop and rootless Docker do not route container addresses to the host; there a
//! probe needs a published port and the container on a network where it gets no address, or a
//! probe of the exec kind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpStream;

use crate::desired::model::{Probe, ProbeCheck};
use crate::engine::{ContainerDetails, Engine, EngineError, RunState};
use crate::errors::chain;
use crate::http_client::{HttpError, HttpResponse, probe_get};

/// The most of an HTTP response's body a probe reads.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// How much of an exec probe's output its failure detail quotes (its end).
const DETAIL_OUTPUT: usize = 200;

/// What one run of a probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Passed.
    pub ok: bool,
    /// What happened, for events and logs (`HTTP 503 from 172.20.0.2:8080/health, want
    /// 200-399`).
    pub detail: String,
}

impl ProbeResult {
    fn pass(detail: String) -> Self {
        ProbeResult { ok: true, detail }
    }

    fn fail(detail: String) -> Self {
        ProbeResult { ok: false, detail }
    }
}

/// Runs `probe` once against the container `details` describes (inspected just before).
pub async fn check<E: Engine>(
    engine: &E,
    details: &ContainerDetails,
    probe: &Probe,
) -> ProbeResult {
    if details.state != RunState::Running {
        return ProbeResult::fail(format!(
            "container {} is not running ({:?})",
            details.name, details.state
        ));
    }
    match &probe.check {
        ProbeCheck::Http {
            port,
            path,
            status,
            body_contains,
        } => {
            let addr = match address(details, *port) {
                Ok(a) => a,
                Err(e) => return ProbeResult::fail(e),
            };
            let path = if path.starts_with('/') {
                path.clone()
            } else {
                format!("/{path}")
            };
            let url = format!("{addr}{path}");
            match probe_get(addr, &path, MAX_RESPONSE, probe.timeout).await {
                Err(HttpError::Timeout { after, .. }) => {
                    ProbeResult::fail(format!("GET {url}: no answer within {after:?}"))
                }
                Err(e) => ProbeResult::fail(format!("GET {url}: {}", chain(&e))),
                Ok(response) => judge_http(&url, &response, *status, body_contains.as_deref()),
            }
        }
        ProbeCheck::Tcp { port } => {
            let addr = match address(details, *port) {
                Ok(a) => a,
                Err(e) => return ProbeResult::fail(e),
            };
            match tokio::time::timeout(probe.timeout, TcpStream::connect(addr)).await {
                Err(_) => ProbeResult::fail(format!(
                    "connect to {addr}: no answer within {:?}",
                    probe.timeout
                )),
                Ok(Err(e)) => ProbeResult::fail(format!("connect to {addr}: {e}")),
                Ok(Ok(_)) => ProbeResult::pass(format!("connected to {addr}")),
            }
        }
        ProbeCheck::Exec { command } => {
            match engine.exec(&details.id, command, probe.timeout).await {
                Ok(outcome) if outcome.exit_code == 0 => {
                    ProbeResult::pass(format!("{command:?} exited 0"))
                }
                Ok(outcome) => {
                    let tail = crate::engine::output_tail(
                        outcome.output.trim_end().as_bytes(),
                        DETAIL_OUTPUT,
                    );
                    ProbeResult::fail(format!("{command:?} exited {}: {tail}", outcome.exit_code))
                }
                Err(EngineError::Timeout { .. }) => ProbeResult::fail(format!(
                    "{command:?} did not finish within {:?}",
                    probe.timeout
                )),
                Err(e) => ProbeResult::fail(format!("{command:?}: {}", chain(&e))),
            }
        }
    }
}

/// Where an HTTP or TCP probe of container port `port` connects (see the module doc).
pub fn address(details: &ContainerDetails, port: u16) -> Result<SocketAddr, String> {
    if details.network_mode == "host" {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(ip) = details
        .ip_addresses
        .values()
        .find_map(|ip| ip.parse::<IpAddr>().ok())
    {
        return Ok(SocketAddr::new(ip, port));
    }
    let published = details
        .ports
        .iter()
        .filter(|(target, proto, _, _)| *target == port && proto == "tcp")
        .map(|(_, _, host_ip, host_port)| {
            let ip = match host_ip.as_deref() {
                None | Some("0.0.0.0") => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                Some("::") => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                Some(other) => other.parse::<IpAddr>().ok(),
            };
            ip.map(|ip| SocketAddr::new(ip, *host_port))
        });
    // Prefer loopback over a specific host address.
    let mut fallback = None;
    for addr in published.flatten() {
        if addr.ip().is_loopback() {
            return Ok(addr);
        }
        fallback.get_or_insert(addr);
    }
    fallback.ok_or_else(|| {
        format!(
            "cannot reach container {}: it has no IP address and does not publish port {port}/tcp",
            details.name
        )
    })
}

fn judge_http(
    url: &str,
    response: &HttpResponse,
    (low, high): (u16, u16),
    body_contains: Option<&str>,
) -> ProbeResult {
    let status = response.status;
    if status < low || status > high {
        return ProbeResult::fail(format!("HTTP {status} from {url}, want {low}-{high}"));
    }
    if let Some(needle) = body_contains {
        let body = String::from_utf8_lossy(&response.body);
        if !body.contains(needle) {
            let within = if response.truncated {
                format!(" (first {} KiB read)", MAX_RESPONSE / 1024)
            } else {
                String::new()
            };
            return ProbeResult::fail(format!(
                "HTTP {status} from {url}, but the body lacks {needle:?}{within}"
            ));
        }
    }
    ProbeResult::pass(format!("HTTP {status} from {url}"))
}

/// A probe's verdict so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeStatus {
    /// Neither threshold reached yet.
    Unknown,
    /// `success_threshold` consecutive passes, and no `failure_threshold` failures since.
    Passing,
    /// `failure_threshold` consecutive failures, and no `success_threshold` passes since.
    Failing,
}

/// Consecutive-result thresholds, as Kubernetes counts them: the verdict starts `Unknown`,
/// turns `Passing` after `success_threshold` passes in a row and `Failing` after
/// `failure_threshold` failures in a row, and otherwise stays what it was. Thresholds of 0
/// count as 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTracker {
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    status: ProbeStatus,
}

impl ProbeTracker {
    /// A tracker with `probe`'s thresholds.
    pub fn new(probe: &Probe) -> Self {
        Self::with_thresholds(probe.success_threshold, probe.failure_threshold)
    }

    /// A tracker with these thresholds.
    pub fn with_thresholds(success_threshold: u32, failure_threshold: u32) -> Self {
        ProbeTracker {
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
            successes: 0,
            failures: 0,
            status: ProbeStatus::Unknown,
        }
    }

    /// Counts one result; the verdict after it.
    pub fn record(&mut self, ok: bool) -> ProbeStatus {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= self.success_threshold {
                self.status = ProbeStatus::Passing;
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.failure_threshold {
                self.status = ProbeStatus::Failing;
            }
        }
        self.status
    }

    /// The verdict so far.
    pub fn status(&self) -> ProbeStatus {
        self.status
    }

    /// Passes in a row so far.
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// Failures in a row so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::engine::fake::{FakeEngine, Fault};
    use crate::engine::{ContainerCreate, Health};

    fn details(ips: &[(&str, &str)], ports: &[(u16, Option<&str>, u16)]) -> ContainerDetails {
        ContainerDetails {
            restart_count: 0,
            id: "c1".into(),
            name: "shop-web-1".into(),
            state: RunState::Running,
            health: Health::None,
            exit_code: None,
            started_at: None,
            network_mode: "shop_default".into(),
            ip_addresses: ips
                .iter()
                .map(|(n, ip)| (n.to_string(), ip.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ports: ports
                .iter()
                .map(|(t, ip, p)| (*t, "tcp".to_owned(), ip.map(str::to_owned), *p))
                .collect(),
            image_id: "sha256:aa".into(),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_probe_reaches_the_container_ip_on_its_first_network() {
        let d = details(
            &[("b_net", "172.21.0.5"), ("a_net", "172.20.0.5")],
            &[(8080, None, 40000)],
        );
        assert_eq!(address(&d, 8080), Ok(addr("172.20.0.5:8080")));
    }

    #[test]
    fn without_an_ip_a_probe_uses_the_published_loopback_port() {
        let d = details(&[], &[(8080, Some("10.1.2.3"), 40001), (8080, None, 40000)]);
        assert_eq!(address(&d, 8080), Ok(addr("127.0.0.1:40000")));
        let d = details(&[], &[(8080, Some("::"), 40002)]);
        assert_eq!(address(&d, 8080), Ok(addr("[::1]:40002")));
        let d = details(&[], &[(8080, Some("10.1.2.3"), 40001)]);
        assert_eq!(address(&d, 8080), Ok(addr("10.1.2.3:40001")));
        let err = address(&details(&[], &[(9090, None, 40000)]), 8080).unwrap_err();
        assert!(err.contains("does not publish port 8080/tcp"), "{err}");
    }

    #[test]
    fn host_network_mode_probes_loopback_at_the_container_port() {
        let mut d = details(&[], &[]);
        d.network_mode = "host".into();
        assert_eq!(address(&d, 8080), Ok(addr("127.0.0.1:8080")));
    }

    #[test]
    fn status_range_and_body_decide_an_http_probe() {
        let response = |status, body: &str| HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
            truncated: false,
            headers: Default::default(),
        };
        let url = "172.20.0.2:8080/health";
        assert!(judge_http(url, &response(200, "ok 1"), (200, 399), None).ok);
        let r = judge_http(url, &response(503, "never ready"), (200, 399), None);
        assert_eq!(
            r.detail,
            "HTTP 503 from 172.20.0.2:8080/health, want 200-399"
        );
        assert!(!r.ok);
        assert!(judge_http(url, &response(200, "ok 1"), (200, 399), Some("ok")).ok);
        let r = judge_http(url, &response(200, "ok 1"), (200, 399), Some("ok 2"));
        assert!(!r.ok && r.detail.contains("lacks \"ok 2\""), "{r:?}");
    }

    #[test]
    fn thresholds_decide_the_verdict() {
        use ProbeStatus::{Failing as F, Passing as P, Unknown as U};
        // (success_threshold, failure_threshold, results, verdict after each)
        let table: &[(u32, u32, &str, &[ProbeStatus])] = &[
            (1, 1, "+-+", &[P, F, P]),
            (2, 3, "++", &[U, P]),
            (2, 3, "+-+", &[U, U, U]),
            (2, 3, "++---++", &[U, P, P, P, F, F, P]),
            (1, 3, "--+--", &[U, U, P, P, P]),
            (3, 1, "++-+++", &[U, U, F, F, F, P]),
            (0, 0, "+-", &[P, F]),
        ];
        for (s, f, results, want) in table {
            let mut t = ProbeTracker::with_thresholds(*s, *f);
            let got: Vec<ProbeStatus> = results.chars().map(|c| t.record(c == '+')).collect();
            assert_eq!(&got, want, "success {s}, failure {f}, results {results}");
        }
    }

    fn http_probe(port: u16, timeout: Duration) -> Probe {
        Probe {
            check: ProbeCheck::Http {
                port,
                path: "health?full=1".into(),
                status: (200, 399),
                body_contains: Some("ok".into()),
            },
            interval: Duration::from_secs(1),
            timeout,
            success_threshold: 1,
            failure_threshold: 1,
        }
    }

    #[tokio::test]
    async fn http_probes_pass_on_a_good_answer_and_say_why_they_fail() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let engine = FakeEngine::new();
        let mut host = details(&[], &[]);
        host.network_mode = "host".into();

        // Answers each of two connections: 200 "ok", then nothing at all.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            drop(s);
            let (silent, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(silent);
        });
        let probe = http_probe(port, Duration::from_secs(5));
        let r = check(&engine, &host, &probe).await;
        assert!(r.ok, "{r:?}");
        let r = check(
            &engine,
            &host,
            &http_probe(port, Duration::from_millis(200)),
        )
        .await;
        assert_eq!(
            r.detail,
            format!("GET 127.0.0.1:{port}/health?full=1: no answer within 200ms")
        );
        assert!(!r.ok);
        server.abort();
        let _ = server.await;

        // Nothing listens any more: the cause is kept.
        let r = check(&engine, &host, &probe).await;
        assert!(
            !r.ok
                && r.detail.starts_with(&format!(
                    "GET 127.0.0.1:{port}/health?full=1: failed to connect to 127.0.0.1:{port}: "
                )),
            "{r:?}"
        );
    }

    fn exec_probe(command: &[&str]) -> Probe {
        Probe {
            check: ProbeCheck::Exec {
                command: command.iter().map(|c| c.to_string()).collect(),
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 1,
        }
    }

    #[tokio::test]
    async fn exec_probes_pass_on_exit_zero_only() {
        let e = FakeEngine::new();
        e.add_image("app:1", "sha256:aa");
        let spec = ContainerCreate {
            name: "shop-web-1".into(),
            image: "sha256:aa".into(),
            ..ContainerCreate::default()
        };
        let id = e.create_container(&spec).await.unwrap();
        let probe = exec_probe(&["check"]);
        let stopped = e.inspect_container(&id).await.unwrap();
        let r = check(&e, &stopped, &probe).await;
        assert!(!r.ok && r.detail.contains("not running"), "{r:?}");

        e.start_container(&id).await.unwrap();
        let running = e.inspect_container(&id).await.unwrap();
        assert!(check(&e, &running, &probe).await.ok);
        e.set_exec(&id, 2, "first\nno database\n");
        let r = check(&e, &running, &probe).await;
        assert_eq!(r.detail, "[\"check\"] exited 2: first\nno database");
        e.fail_next("exec", Fault::Timeout);
        let r = check(&e, &running, &probe).await;
        assert_eq!(r.detail, "[\"check\"] did not finish within 1s");
    }
}
