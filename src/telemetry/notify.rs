//! Notification webhooks (`--notify URL`): meaningful transitions only — a rollout succeeded,
//! failed (or paused after failing), was reverted; a service degraded; a pull keeps failing;
//! a project left the desired state; the desired state turned invalid; something recovered — POSTed as generic JSON or as a Slack-compatible
//! message (`{"text": …}`, which Slack, Mattermost and Rocket.Chat incoming webhooks accept).
//!
//! A target is `http://HOST[:PORT]/PATH` (generic JSON: the event object) or
//! `slack+http://HOST[:PORT]/PATH` (Slack format). Plain HTTP only: berth has no TLS client,
//! so an `https://` receiver (Slack's own hooks) needs a relay on the host, e.g. a local
//! proxy that forwards to it.
//!
//! Delivery never blocks reconciliation: [`Notifier::send`] appends to a bounded queue per
//! target (full: the oldest message is dropped, with a warning) and returns; one task per
//! target delivers in order, each attempt under a timeout, retrying 5xx, 429 and connection
//! errors with exponential backoff, giving up on other 4xx. A slow or dead receiver only
//! delays its own queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::events::EventRecord;
use crate::errors::chain;

/// Message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The event as JSON.
    Json,
    /// `{"text": "..."}`.
    Slack,
}

/// A webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Format.
    pub format: Format,
    /// Host (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query.
    pub path: String,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.format {
            Format::Json => "http",
            Format::Slack => "slack+http",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    /// `http://host[:port]/path` or `slack+http://host[:port]/path`.
    fn from_str(s: &str) -> Result<Target, String> {
        let (format, rest) = if let Some(r) = s.strip_prefix("slack+http://") {
            (Format::Slack, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (Format::Json, r)
        } else if s.starts_with("https://") || s.starts_with("slack+https://") {
            return Err(format!(
                "{s}: berth sends notifications over plain HTTP only; put a relay on the host in front of an https:// receiver"
            ));
        } else {
            return Err(format!(
                "{s}: expected http://HOST[:PORT]/PATH (JSON) or slack+http://HOST[:PORT]/PATH (Slack format)"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("{s}: credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| format!("{s}: unterminated [IPv6] host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{s}: unexpected {after:?} after the host")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{s}: invalid port {p:?}"))?,
            None => 80,
        };
        Ok(Target {
            format,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// How delivery behaves.
#[derive(Debug, Clone, Copy)]
pub struct NotifyOptions {
    /// Messages waiting per target before the oldest is dropped.
    pub queue: usize,
    /// Attempts per message.
    pub attempts: u32,
    /// First retry delay (doubles, up to 60 s).
    pub backoff: Duration,
    /// One attempt's limit (connect, send, response).
    pub timeout: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            queue: 64,
            attempts: 5,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The event kinds that are sent (the rest are only logged and kept in the event log).
pub fn meaningful(kind: &str) -> bool {
    matches!(
        kind,
        "rollout_succeeded"
            | "rollout_failed"
            | "rollout_paused"
            | "reverted"
            | "degraded"
            | "desired_state_invalid"
            | "reconcile_error"
            | "recovered"
            // Once per distinct error, not every round.
            | "pull_failed"
            | "project_removed"
    )
}

/// The body POSTed for `e`.
pub fn payload(format: Format, e: &EventRecord) -> String {
    match format {
        Format::Json => serde_json::to_string(e).unwrap_or_default(),
        Format::Slack => {
            let icon = match e.severity.as_str() {
                "error" => ":rotating_light:",
                "warning" => ":warning:",
                _ => ":white_check_mark:",
            };
            let scope = match (e.project.as_str(), e.service.as_str()) {
                ("", _) => "berth".to_string(),
                (p, "") => p.to_string(),
                (p, s) => format!("{p}/{s}"),
            };
            let what = e.kind.replace('_', " ");
            let mut text = format!("{icon} *{scope}* {what}: {}", e.message);
            if let Some(logs) = &e.logs {
                text.push_str(&format!("\n```\n{logs}\n```"));
            }
            serde_json::json!({ "text": text }).to_string()
        }
    }
}

struct Queue {
    items: Mutex<VecDeque<EventRecord>>,
    wake: tokio::sync::Notify,
    /// Messages delivered or given up on (for `flush`).
    done: AtomicU64,
    /// Messages accepted.
    accepted: AtomicU64,
}

/// Delivery to every target.
pub struct Notifier {
    targets: Vec<(Target, Arc<Queue>)>,
    opts: NotifyOptions,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Notifier {
    /// Starts one delivery task per target (call inside a tokio runtime).
    pub fn start(targets: Vec<Target>, opts: NotifyOptions) -> Notifier {
        let mut out = Vec::new();
        let mut tasks = Vec::new();
        for t in targets {
            let q = Arc::new(Queue {
                items: Mutex::new(VecDeque::new()),
                wake: tokio::sync::Notify::new(),
                done: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
            });
            tasks.push(tokio::spawn(deliver(t.clone(), q.clone(), opts)));
            out.push((t, q));
        }
        Notifier {
            targets: out,
            opts,
            tasks,
        }
    }

    /// Queues `e` for every target if it is [`meaningful`]; never blocks.
    pub fn send(&self, e: &EventRecord) {
        if !meaningful(&e.kind) {
            return;
        }
        for (t, q) in &self.targets {
            let dropped = {
                let mut items = q.items.lock().unwrap_or_else(|p| p.into_inner());
                let dropped = if items.len() >= self.opts.queue.max(1) {
                    items.pop_front()
                } else {
                    None
                };
                items.push_back(e.clone());
                dropped
            };
            if let Some(d) = dropped {
                q.done.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target = %t, seq = d.seq, kind = %d.kind, "notification queue full; dropped the oldest message");
            }
            q.accepted.fetch_add(1, Ordering::Relaxed);
            q.wake.notify_one();
        }
    }

    /// Waits until every queued message was delivered or given up on, or `limit` passed;
    /// true when all were.
    pub async fn flush(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let pending = self
                .targets
                .iter()
                .any(|(_, q)| q.done.load(Ordering::Relaxed) < q.accepted.load(Ordering::Relaxed));
            if !pending {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn deliver(target: Target, q: Arc<Queue>, opts: NotifyOptions) {
    loop {
        let next = q
            .items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let Some(e) = next else {
            q.wake.notified().await;
            continue;
        };
        let body = payload(target.format, &e);
        let mut delay = opts.backoff;
        for attempt in 1..=opts.attempts.max(1) {
            match tokio::time::timeout(opts.timeout, post(&target, &body)).await {
                Ok(Ok(code)) if (200..300).contains(&code) => {
                    tracing::debug!(target = %target, seq = e.seq, code, "notification delivered");
                    break;
                }
                Ok(Ok(code)) if code != 429 && (400..500).contains(&code) => {
                    tracing::warn!(target = %target, seq = e.seq, code, "notification refused; not retried");
                    break;
                }
                outcome => {
                    let why = match outcome {
                        Ok(Ok(code)) => format!("HTTP {code}"),
                        Ok(Err(err)) => err,
                        Err(_) => format!("no answer within {:?}", opts.timeout),
                    };
                    if attempt == opts.attempts.max(1) {
                        tracing::warn!(target = %target, seq = e.seq, attempts = attempt, error = %why, "notification not delivered; giving up");
                        break;
                    }
                    tracing::debug!(target = %target, seq = e.seq, attempt, error = %why, retry_in = ?delay, "notification failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(60));
                }
            }
        }
        q.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// One POST; the response status.
async fn post(t: &Target, body: &str) -> Result<u16, String> {
    let (code, _) = request(
        &t.host,
        t.port,
        hyper::Method::POST,
        &t.path,
        Some(("application/json", body.to_string())),
        &[],
    )
    .await?;
    Ok(code)
}

/// A plain HTTP/1.1 request on a fresh connection: (status, body). Used for notifications and
/// by the CLI against `--server`.
pub async fn request(
    host: &str,
    port: u16,
    method: hyper::Method,
    path: &str,
    body: Option<(&str, String)>,
    headers: &[(&str, &str)],
) -> Result<(u16, Bytes), String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {}", chain(&e)))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port}: {}", chain(&e)))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("berth/", env!("CARGO_PKG_VERSION")),
        );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (content_type, payload) = body.unwrap_or(("text/plain", String::new()));
    if !payload.is_empty() {
        req = req.header(hyper::header::CONTENT_TYPE, content_type);
    }
    let req = req
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| format!("bad request: {}", chain(&e)))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request to {host}:{port}: {}", chain(&e)))?;
        let code = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response from {host}:{port}: {}", chain(&e)))?
            .to_bytes();
        Ok((code, body))
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::time::Timestamp;

    #[test]
    fn targets_parse_with_their_format() {
        let t: Target = "http://127.0.0.1:8080/hook?x=1".parse().unwrap();
        assert_eq!(
            (t.format, t.host.as_str(), t.port, t.path.as_str()),
            (Format::Json, "127.0.0.1", 8080, "/hook?x=1")
        );
        let s: Target = "slack+http://[::1]:9/services/T/B".parse().unwrap();
        assert_eq!(
            (s.format, s.host.as_str(), s.port),
            (Format::Slack, "::1", 9)
        );
        assert_eq!(s.to_string(), "slack+http://[::1]:9/services/T/B");
        let bare: Target = "http://relay".parse().unwrap();
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        assert!("https://hooks.example/x".parse::<Target>().is_err());
        assert!("ftp://x".parse::<Target>().is_err());
        assert!("http://u:p@x/".parse::<Target>().is_err());
    }

    #[test]
    fn slack_messages_name_the_service_and_the_kind() {
        let e = EventRecord {
            seq: 3,
            time: Timestamp(0),
            project: "shop".into(),
            service: "web".into(),
            kind: "reverted".into(),
            reason: "deadline".into(),
            message: "r2 failed; r1 runs again".into(),
            revision: Some(1),
            severity: "error".into(),
            logs: None,
        };
        assert_eq!(
            payload(Format::Slack, &e),
            r#"{"text":":rotating_light: *shop/web* reverted: r2 failed; r1 runs again"}"#
        );
        assert!(payload(Format::Json, &e).contains(r#""kind":"reverted""#));
        assert!(
            !payload(Format::Json, &e).contains("logs"),
            "no logs, no field"
        );
        assert!(meaningful("reverted") && !meaningful("rollout_started"));
        assert!(meaningful("pull_failed") && meaningful("project_removed"));
    }

    #[test]
    fn the_last_output_lines_travel_with_the_event() {
        let e = EventRecord {
            seq: 4,
            time: Timestamp(0),
            project: "shop".into(),
            service: "web".into(),
            kind: "rollout_failed".into(),
            reason: "build_failed".into(),
            message: "r3 failed: image build failed: COPY failed".into(),
            revision: Some(3),
            severity: "error".into(),
            logs: Some("Step 2/2 : COPY missing /x".into()),
        };
        assert_eq!(
            payload(Format::Slack, &e),
            r#"{"text":":rotating_light: *shop/web* rollout failed: r3 failed: image build failed: COPY failed\n```\nStep 2/2 : COPY missing /x\n```"}"#
        );
        assert!(payload(Format::Json, &e).contains(r#""logs":"Step 2/2 : COPY missing /x""#));
    }
}
