//! Why things happen, as closed sets: the vocabulary the planner, the rollout state machine,
//! the executor and telemetry share.
//!
//! Pure data, no IO. A decision travels as one of these enums; `Display` is the sentence a
//! person reads and `label()` the stable word for metric labels and event `reason` fields.
//! Neither is ever parsed back: code that needs to know why matches on the enum.

use std::fmt;

/// Why a self-heal restarted or recreated a replica (`berth_self_heals_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealReason {
    /// The replica's container is gone (removed by hand, or a scale-up).
    Missing,
    /// It exited with a code.
    Exited,
    /// It is stopped (no exit code).
    Stopped,
    /// Docker's healthcheck reports it unhealthy.
    Unhealthy,
    /// berth's liveness probe fails.
    Liveness,
    /// It was created but never started.
    NotStarted,
}

impl HealReason {
    /// Every reason, for metric families that start at 0.
    pub const ALL: [HealReason; 6] = [
        HealReason::Exited,
        HealReason::Stopped,
        HealReason::Missing,
        HealReason::Unhealthy,
        HealReason::Liveness,
        HealReason::NotStarted,
    ];

    /// Stable label; never parsed back.
    pub fn label(self) -> &'static str {
        match self {
            HealReason::Missing => "missing",
            HealReason::Exited => "exited",
            HealReason::Stopped => "stopped",
            HealReason::Unhealthy => "unhealthy",
            HealReason::Liveness => "liveness",
            HealReason::NotStarted => "not_started",
        }
    }
}

impl fmt::Display for HealReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealReason::Missing => "the replica is missing",
            HealReason::Exited => "the replica exited",
            HealReason::Stopped => "the replica is stopped",
            HealReason::Unhealthy => "the replica is unhealthy",
            HealReason::Liveness => "the replica fails its liveness probe",
            HealReason::NotStarted => "the replica was created but not started",
        })
    }
}

/// Why a rollout, a revert or a service failed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The image build failed.
    BuildFailed,
    /// Self-heal restarted too often within its window.
    SelfHealLimit,
    /// The candidate was not ready within `progress_deadline`.
    Deadline,
    /// The candidate (or a gate container) exited before becoming ready.
    Exited,
    /// Docker restarted the candidate (its restart policy at work).
    Crashed,
    /// Docker's healthcheck reports the candidate unhealthy.
    Unhealthy,
    /// The smoke test did not pass.
    SmokeFailed,
    /// The `pre_deploy` gate did not pass.
    PreDeployFailed,
    /// Anything else: a create or start the engine refused, a revision that cannot be
    /// recreated.
    Failed,
}

impl FailReason {
    /// Stable label; never parsed back.
    pub fn label(self) -> &'static str {
        match self {
            FailReason::BuildFailed => "build_failed",
            FailReason::SelfHealLimit => "self_heal_limit",
            FailReason::Deadline => "deadline",
            FailReason::Exited => "exited",
            FailReason::Crashed => "crashed",
            FailReason::Unhealthy => "unhealthy",
            FailReason::SmokeFailed => "smoke_failed",
            FailReason::PreDeployFailed => "pre_deploy_failed",
            FailReason::Failed => "failed",
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailReason::BuildFailed => "the image build failed",
            FailReason::SelfHealLimit => "self-heal gave up",
            FailReason::Deadline => "not ready within progress_deadline",
            FailReason::Exited => "exited before becoming ready",
            FailReason::Crashed => "crashed before becoming ready",
            FailReason::Unhealthy => "unhealthy",
            FailReason::SmokeFailed => "the smoke test failed",
            FailReason::PreDeployFailed => "the pre_deploy gate failed",
            FailReason::Failed => "failed",
        })
    }
}

/// Why an event happened: its `reason` field and metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReason {
    /// A rollout towards the desired state began.
    Update,
    /// A revert to the last stable revision began.
    Revert,
    /// An operator's rollback began.
    Rollback,
    /// A revision passed every gate.
    Ready,
    /// `berth retry` lifted a quarantine.
    Retry,
    /// The desired state changed, lifting a quarantine.
    DesiredStateChanged,
    /// A self-heal restart.
    Heal(HealReason),
    /// A failure that stops the rollout (reverted, paused, degraded).
    Failure(FailReason),
    /// A replica's failure that `failure_action`/`max_failure_ratio` tolerate: the rollout
    /// goes on.
    Tolerated(FailReason),
}

impl EventReason {
    /// Stable label; never parsed back.
    pub fn label(self) -> &'static str {
        match self {
            EventReason::Update => "update",
            EventReason::Revert => "revert",
            EventReason::Rollback => "rollback",
            EventReason::Ready => "ready",
            EventReason::Retry => "retry",
            EventReason::DesiredStateChanged => "desired_state_changed",
            EventReason::Heal(h) => h.label(),
            EventReason::Failure(f) | EventReason::Tolerated(f) => f.label(),
        }
    }
}

impl fmt::Display for EventReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventReason::Update => f.write_str("update"),
            EventReason::Revert => f.write_str("revert"),
            EventReason::Rollback => f.write_str("rollback"),
            EventReason::Ready => f.write_str("ready and stable"),
            EventReason::Retry => f.write_str("berth retry"),
            EventReason::DesiredStateChanged => f.write_str("the desired state changed"),
            EventReason::Heal(h) => h.fmt(f),
            EventReason::Failure(r) => r.fmt(f),
            EventReason::Tolerated(r) => write!(f, "{r} (tolerated)"),
        }
    }
}

/// Why a service cannot start now because of a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmet {
    /// A later round will do: the dependency is on its way (running, starting, completing).
    Wait(String),
    /// Nothing changes until the desired state does (the job it needs failed).
    Blocked(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_within_each_set() {
        let heal: std::collections::BTreeSet<_> =
            HealReason::ALL.iter().map(|h| h.label()).collect();
        assert_eq!(heal.len(), HealReason::ALL.len());
        assert_eq!(EventReason::Tolerated(FailReason::Exited).label(), "exited");
        assert_eq!(
            EventReason::Heal(HealReason::NotStarted).label(),
            "not_started"
        );
    }
}
