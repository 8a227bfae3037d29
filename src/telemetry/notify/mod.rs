//! Notification webhooks (`--notify URL`): meaningful transitions only — a rollout succeeded,
//! failed (or paused after failing), was reverted; a service degraded; a pull keeps failing;
//! a project left the desired state; the desired state turned invalid; something recovered —
//! POSTed over HTTP or HTTPS in the receiver's own format: generic JSON (the event), Slack,
//! Discord, Microsoft Teams, ntfy or Gotify (`format`), each receiver with its own filter of
//! kinds, severity and projects (`target`).
//!
//! HTTPS goes through berth's one HTTP client (`crate::http_client`): rustls with the system's
//! root certificates (the bundled Mozilla roots where the system has none) plus an optional
//! extra CA file (`--notify-ca`).
//!
//! Delivery never blocks reconciliation: [`Notifier::send`] appends to a bounded queue per
//! target (full: the oldest message is dropped, with a warning) and returns; one task per
//! target delivers in order, each attempt under a timeout, retrying 5xx, 429 and connection
//! errors with exponential backoff, giving up on other 4xx. A slow or dead receiver only
//! delays its own queue.

pub mod format;
pub mod target;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::events::EventRecord;
use crate::errors::chain;
use crate::http_client::{Client, HttpError, Request};
pub use format::{Message, payload};
pub use target::{Filter, Format, Target};

/// How much of a receiver's answer is read (only its status matters).
const MAX_ANSWER: usize = 16 * 1024;

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
            // berth changed the desired state itself, or could not.
            | "update_applied"
            | "update_failed"
    )
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
    /// Starts one delivery task per target (call inside a tokio runtime); `client` must have
    /// TLS set up when a target is `https://`.
    pub fn start(targets: Vec<Target>, opts: NotifyOptions, client: Client) -> Notifier {
        let mut out = Vec::new();
        let mut tasks = Vec::new();
        for t in targets {
            let q = Arc::new(Queue {
                items: Mutex::new(VecDeque::new()),
                wake: tokio::sync::Notify::new(),
                done: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
            });
            tasks.push(tokio::spawn(deliver(
                t.clone(),
                q.clone(),
                opts,
                client.clone(),
            )));
            out.push((t, q));
        }
        Notifier {
            targets: out,
            opts,
            tasks,
        }
    }

    /// Queues `e` for every target whose filter takes it (by default: [`meaningful`] kinds);
    /// never blocks.
    pub fn send(&self, e: &EventRecord) {
        for (t, q) in &self.targets {
            if !t.filter.accepts(&e.kind, &e.severity, &e.project) {
                continue;
            }
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

async fn deliver(target: Target, q: Arc<Queue>, opts: NotifyOptions, client: Client) {
    let client = client.timeout(opts.timeout);
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
        let message = payload(target.format, &e);
        let mut delay = opts.backoff;
        for attempt in 1..=opts.attempts.max(1) {
            match post(&client, &target, &message).await {
                Ok(code) if (200..300).contains(&code) => {
                    tracing::debug!(target = %target, seq = e.seq, code, "notification delivered");
                    break;
                }
                Ok(code) if code != 429 && (400..500).contains(&code) => {
                    tracing::warn!(target = %target, seq = e.seq, code, "notification refused; not retried");
                    break;
                }
                outcome => {
                    let why = match outcome {
                        Ok(code) => format!("HTTP {code}"),
                        Err(HttpError::Timeout { after, .. }) => {
                            format!("no answer within {after:?}")
                        }
                        Err(err) => chain(&err),
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
async fn post(client: &Client, t: &Target, m: &Message) -> Result<u16, HttpError> {
    let headers: Vec<(&str, &str)> = m.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let req = Request {
        method: "POST",
        headers: &headers,
        body: Some((m.content_type, m.body.as_bytes())),
    };
    Ok(client.send(&t.url, req, MAX_ANSWER).await?.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meaningful_kinds_are_the_transitions_a_person_acts_on() {
        assert!(meaningful("reverted") && !meaningful("rollout_started"));
        assert!(meaningful("pull_failed") && meaningful("project_removed"));
        assert!(meaningful("update_applied") && !meaningful("update_skipped"));
        assert!(target::KINDS.iter().filter(|k| meaningful(k)).count() >= 9);
    }
}
