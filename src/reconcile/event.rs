//! Rollout events: what happened to a service that a person (or, later, a notification) should
//! hear about — a rollout started, succeeded, failed, was reverted; a service degraded; a
//! quarantine lifted; a self-heal restart.
//!
//! Pure data. The planner decides which events a round produces (they follow from its
//! decisions); the executor fills in the failed container's last log lines before anything
//! removes it, and logs each event at its [`Severity`].

use std::fmt;

use super::reason::EventReason;

/// What kind of thing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A rollout (update, revert or rollback) began.
    RolloutStarted,
    /// A revision passed the gate and is the stable one now.
    RolloutSucceeded,
    /// A revision did not pass the gate (or its pre-deploy / smoke gate failed).
    RolloutFailed,
    /// A failed rollout stopped where it was (`failure_action: pause`, `auto_revert: false`).
    RolloutPaused,
    /// The previous revision runs again after a failure.
    Reverted,
    /// berth gave up: the revert target failed too, or self-heal hit its limit.
    Degraded,
    /// A quarantined revision may be tried again (desired state changed, `berth retry`).
    QuarantineLifted,
    /// A container that died, was stopped or is unhealthy was restarted or recreated.
    SelfHeal,
}

/// How loud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Routine.
    Info,
    /// Needs a look.
    Warning,
    /// Needs someone now.
    Error,
}

impl EventKind {
    /// How loud this kind is.
    pub fn severity(self) -> Severity {
        match self {
            EventKind::RolloutStarted
            | EventKind::RolloutSucceeded
            | EventKind::QuarantineLifted => Severity::Info,
            EventKind::SelfHeal | EventKind::RolloutPaused => Severity::Warning,
            EventKind::RolloutFailed | EventKind::Reverted | EventKind::Degraded => Severity::Error,
        }
    }

    /// `snake_case` name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RolloutStarted => "rollout_started",
            EventKind::RolloutSucceeded => "rollout_succeeded",
            EventKind::RolloutFailed => "rollout_failed",
            EventKind::RolloutPaused => "rollout_paused",
            EventKind::Reverted => "reverted",
            EventKind::Degraded => "degraded",
            EventKind::QuarantineLifted => "quarantine_lifted",
            EventKind::SelfHeal => "self_heal",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// Kind.
    pub kind: EventKind,
    /// The revision it is about.
    pub revision: Option<u64>,
    /// Why, typed: the event's `reason` and metric label.
    #[serde(skip)]
    pub reason: EventReason,
    /// What happened, in words.
    pub message: String,
    /// A container whose last log lines belong in the event (the failed candidate); the
    /// executor fetches them into `logs` before any step removes it.
    #[serde(skip)]
    pub logs_of: Option<String>,
    /// Those log lines.
    pub logs: Option<String>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}: {}",
            self.project,
            self.service,
            self.kind.as_str(),
            self.message
        )?;
        if let Some(logs) = self.logs.as_deref().filter(|l| !l.trim().is_empty()) {
            write!(f, "\n  last log lines:")?;
            for line in logs.lines() {
                write!(f, "\n  | {line}")?;
            }
        }
        Ok(())
    }
}
