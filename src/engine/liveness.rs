//! Is the engine answering right now? A background task pings the engine on a short
//! interval under a short deadline and remembers the answer, so that `/readyz` and the status
//! API say "engine not answering" within seconds of the engine freezing (a SIGSTOPped or
//! wedged dockerd accepts connections but never answers), instead of waiting for a round's
//! calls to run into their 30 s deadline. IO: the shell around the pure [`verdict`]; it
//! decides nothing for the reconcile loop, it only informs readiness and status.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::docker::DockerEngine;

/// How often the engine is pinged.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(2);
/// How long a ping may take before the engine counts as not answering.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(2);

/// One ping: `Ok` when the engine answered, else why not (in words).
pub type Ping =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What the last ping said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Answer {
    /// No ping has finished yet.
    #[default]
    Unknown,
    /// The last ping was answered.
    Answered,
    /// The last ping failed or timed out, the first of a run of failures at `since`.
    NotAnswering {
        /// Why the last ping failed.
        error: String,
        /// When the engine stopped answering.
        since: Instant,
    },
}

/// Why the engine counts as not answering at `now`, or `None` while it answers (or has not
/// been asked yet: readiness then rests on the last round, as before).
pub fn verdict(answer: &Answer, now: Instant) -> Option<String> {
    match answer {
        Answer::NotAnswering { error, since } => Some(format!(
            "engine not answering for {}s: {error}",
            now.saturating_duration_since(*since).as_secs()
        )),
        Answer::Unknown | Answer::Answered => None,
    }
}

/// The next answer after a ping's result.
fn next(answer: &Answer, result: Result<(), String>, now: Instant) -> Answer {
    match (result, answer) {
        (Ok(()), _) => Answer::Answered,
        (Err(error), Answer::NotAnswering { since, .. }) => Answer::NotAnswering {
            error,
            since: *since,
        },
        (Err(error), _) => Answer::NotAnswering { error, since: now },
    }
}

/// A running watch; the task stops when this is dropped.
pub struct Liveness {
    answer: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Liveness {
    /// Pings now and then every `every`, each ping bounded by `limit` (must be called inside
    /// a tokio runtime).
    pub fn watch(ping: Ping, every: Duration, limit: Duration) -> Liveness {
        let answer = Arc::new(Mutex::new(Answer::Unknown));
        let shared = answer.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let result = match tokio::time::timeout(limit, ping()).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer to a ping within {}s", limit.as_secs())),
                };
                let mut a = shared.lock().unwrap_or_else(|p| p.into_inner());
                let was_answering = !matches!(*a, Answer::NotAnswering { .. });
                *a = next(&a, result, Instant::now());
                match (&*a, was_answering) {
                    (Answer::NotAnswering { error, .. }, true) => {
                        tracing::warn!(%error, "the engine is not answering");
                    }
                    (Answer::Answered, false) => tracing::info!("the engine answers again"),
                    _ => {}
                }
            }
        });
        Liveness { answer, task }
    }

    /// Watches a Docker engine with the default interval and deadline.
    pub fn watch_docker(engine: DockerEngine) -> Liveness {
        let ping: Ping = Arc::new(move || {
            let engine = engine.clone();
            Box::pin(async move {
                engine
                    .ping_within(DEFAULT_LIMIT)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        Liveness::watch(ping, DEFAULT_EVERY, DEFAULT_LIMIT)
    }

    /// Why the engine does not answer now (`None`: it answered the last ping, or none
    /// finished yet).
    pub fn not_answering(&self) -> Option<String> {
        let a = self.answer.lock().unwrap_or_else(|p| p.into_inner());
        verdict(&a, Instant::now())
    }

    /// The check the HTTP server consults for `/readyz` and `/api/v1/status`.
    pub fn check(self: &Arc<Self>) -> crate::telemetry::http::EngineCheck {
        let me = self.clone();
        Arc::new(move || me.not_answering())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_ping_says_since_when_and_an_answer_clears_it() {
        let t0 = Instant::now();
        let a = next(&Answer::Unknown, Err("timed out".into()), t0);
        let b = next(
            &a,
            Err("timed out again".into()),
            t0 + Duration::from_secs(4),
        );
        assert_eq!(
            verdict(&b, t0 + Duration::from_secs(6)).as_deref(),
            Some("engine not answering for 6s: timed out again")
        );
        let c = next(&b, Ok(()), t0 + Duration::from_secs(8));
        assert_eq!(verdict(&c, t0 + Duration::from_secs(8)), None);
        assert_eq!(verdict(&Answer::Unknown, t0), None);
    }
}
