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
    /// A rollout's candidate was stopped while berth was not watching (the engine or berth
    /// restarted): started again, its gate starts over. Not a verdict on the revision.
    StoppedUnwatched,
    /// The image recorded for the running revision is gone from the engine (pruned): the
    /// reference is resolved again and the service converges through the gate.
    ImageLost,
}

impl HealReason {
    /// Every reason, for metric families that start at 0.
    pub const ALL: [HealReason; 8] = [
        HealReason::Exited,
        HealReason::Stopped,
        HealReason::Missing,
        HealReason::Unhealthy,
        HealReason::Liveness,
        HealReason::NotStarted,
        HealReason::StoppedUnwatched,
        HealReason::ImageLost,
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
            HealReason::StoppedUnwatched => "stopped_unwatched",
            HealReason::ImageLost => "image_lost",
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
            HealReason::StoppedUnwatched => {
                "the candidate was stopped while berth was not watching"
            }
            HealReason::ImageLost => "the revision's image is gone",
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
    Wait(WaitReason),
    /// Nothing changes until the desired state does (the job it needs failed).
    Blocked(BlockReason),
}

/// Which one-shot gate of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// `x-berth.pre_deploy`, before the first replacement.
    PreDeploy,
    /// `x-berth.smoke`, after the last replica passed.
    Smoke,
}

impl GateKind {
    /// The gate's word in names and notes (`pre-deploy`, `smoke`).
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::PreDeploy => "pre-deploy",
            GateKind::Smoke => "smoke",
        }
    }
}

/// What a dependency has not done yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyState {
    /// A job that has not exited 0 yet (`service_completed_successfully`).
    NotCompleted,
    /// A job that has not started yet.
    NotStarted,
    /// Not all its replicas run (or it has steps this round).
    NotRunning,
    /// A replica is not healthy (`service_healthy`).
    NotHealthy,
    /// `service_completed_successfully` on a service that never completes.
    NeverCompletes,
}

/// Where one replica of a rollout stands, when it is not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaWait {
    /// Its container is being created or started.
    Starting,
    /// Its batch has not begun (`parallelism`, `delay`).
    Batch {
        /// `update_config.parallelism`.
        parallelism: usize,
    },
    /// The readiness gate's words on what it still waits for.
    Gate(String),
    /// Handoff: it passed, and the proxy's routes that send it traffic (and take it from the
    /// old container) are being written.
    Switching,
    /// Handoff: the old container left the routes and its open connections finish before it
    /// is stopped.
    Draining {
        /// Seconds left at most.
        seconds: u64,
    },
    /// Handoff: it runs but the engine reports no network address for it yet.
    NoAddress,
    /// Handoff: it goes (a scale-down) and the proxy's routes that stop sending it traffic
    /// are being written.
    Leaving,
}

/// Why a service waits: a later round continues by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// The image list is needed to decide (not listed this round).
    LookingUpImage,
    /// The new revision's image is pulled or built before anything is stopped.
    Fetching {
        /// Built (`build:`) rather than pulled.
        build: bool,
        /// The image reference.
        reference: String,
    },
    /// Replicas of an active rollout, by number.
    Replicas(Vec<(u32, ReplicaWait)>),
    /// Self-heal waits out its backoff.
    HealBackoff {
        /// Seconds left.
        seconds: u64,
        /// Restarts within the window so far.
        restarts: usize,
        /// What the restart is for.
        cause: String,
    },
    /// A one-shot gate container runs.
    GateRunning(GateKind),
    /// A one-shot gate's image is being looked up.
    GateLookingUpImage(GateKind),
    /// A one-shot gate's image is pulled.
    GatePulling(GateKind, String),
    /// A dependency is not in its condition yet.
    Dependency {
        /// The dependency.
        dep: String,
        /// What it has not done.
        state: DependencyState,
    },
    /// The job's container runs.
    JobRunning,
    /// The fleet's wave rule: an earlier wave has not taken the revision yet (see
    /// `fleet::wave`).
    Wave(crate::fleet::wave::WaveWait),
}

impl WaitReason {
    /// Stable label; never parsed back.
    pub fn label(&self) -> &'static str {
        match self {
            WaitReason::LookingUpImage | WaitReason::GateLookingUpImage(_) => "image_lookup",
            WaitReason::Fetching { build: true, .. } => "building",
            WaitReason::Fetching { build: false, .. } | WaitReason::GatePulling(..) => "pulling",
            WaitReason::Replicas(_) => "rolling",
            WaitReason::HealBackoff { .. } => "self_heal_backoff",
            WaitReason::GateRunning(_) => "gate_running",
            WaitReason::Dependency { .. } => "dependency",
            WaitReason::JobRunning => "job_running",
            WaitReason::Wave(w) => w.label(),
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::LookingUpImage => f.write_str("looking up the image"),
            WaitReason::Fetching { build, reference } => {
                let how = if *build { "building" } else { "pulling" };
                write!(f, "{how} {reference} before anything is stopped")
            }
            WaitReason::Replicas(waits) => {
                for (i, (n, w)) in waits.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    match w {
                        ReplicaWait::Starting => write!(f, "replica {n}: starting")?,
                        ReplicaWait::Batch { parallelism } => write!(
                            f,
                            "replica {n}: waits for its batch (parallelism {parallelism})"
                        )?,
                        ReplicaWait::Gate(why) => write!(f, "replica {n}: {why}")?,
                        ReplicaWait::Switching => {
                            write!(f, "replica {n}: switching traffic to it (proxy routes)")?
                        }
                        ReplicaWait::Draining { seconds } => write!(
                            f,
                            "replica {n}: the old container drains (at most {seconds}s left)"
                        )?,
                        ReplicaWait::Leaving => {
                            write!(f, "replica {n}: leaving the proxy's routes before it goes")?
                        }
                        ReplicaWait::NoAddress => write!(
                            f,
                            "replica {n}: waits for its network address (to route to it)"
                        )?,
                    }
                }
                Ok(())
            }
            WaitReason::HealBackoff {
                seconds,
                restarts,
                cause,
            } => write!(
                f,
                "self-heal backs off {seconds}s after {restarts} restart(s): {cause}"
            ),
            WaitReason::GateRunning(g) => write!(f, "{} gate running", g.as_str()),
            WaitReason::GateLookingUpImage(g) => {
                write!(f, "{} gate: looking up its image", g.as_str())
            }
            WaitReason::GatePulling(g, reference) => {
                write!(f, "{} gate: pulling {reference}", g.as_str())
            }
            WaitReason::Dependency { dep, state } => match state {
                DependencyState::NotCompleted => {
                    write!(f, "{dep} has not completed successfully yet")
                }
                DependencyState::NotStarted => write!(f, "{dep} has not started yet"),
                DependencyState::NotRunning => write!(f, "{dep} is not running yet"),
                DependencyState::NotHealthy => write!(f, "{dep} is not healthy yet"),
                DependencyState::NeverCompletes => write!(
                    f,
                    "{dep} is not a job (restart: \"no\"), so it never completes"
                ),
            },
            WaitReason::JobRunning => f.write_str("job is running"),
            WaitReason::Wave(w) => w.fmt(f),
        }
    }
}

/// Why nothing changes until the desired state does or a person acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockReason {
    /// berth gave up on the service (see [`FailReason`]); the words say why.
    Degraded(String),
    /// A failed rollout paused; why it failed.
    Paused(String),
    /// The desired revision (short hash) failed and is quarantined; the previous one runs.
    Quarantined {
        /// The revision's short spec hash.
        revision: String,
        /// Why it failed.
        reason: String,
    },
    /// The desired revision failed and there is nothing stable to revert to.
    NoRevertTarget {
        /// The revision's short spec hash.
        revision: String,
    },
    /// `berth rollback` named a revision the history does not have.
    RollbackMissing {
        /// The revision asked for.
        to: u64,
    },
    /// The service's record names a revision it lacks (a bug or a hand-edited file).
    RecordInconsistent(String),
    /// An external network does not exist.
    ExternalNetwork(String),
    /// An external volume does not exist.
    ExternalVolume(String),
    /// The job's current revision failed.
    JobFailed {
        /// Its exit code, when known.
        code: Option<i64>,
    },
    /// The job's current revision cannot run (its image build failed).
    JobNotRun {
        /// The job's revision number (`rN`).
        revision: u64,
        /// Why.
        reason: String,
    },
    /// A job this service depends on could not be built.
    DependencyBuildFailed(String),
    /// A job this service depends on failed.
    DependencyFailed {
        /// The job.
        dep: String,
        /// Its exit code.
        code: i64,
    },
    /// The image is not on the host and `pull_policy: never` forbids pulling it.
    ImageAbsent {
        /// The image reference.
        reference: String,
    },
    /// The revision failed on a host of an earlier wave (see `fleet::wave`).
    WaveHold(crate::fleet::wave::WaveHold),
}

impl BlockReason {
    /// Stable label; never parsed back.
    pub fn label(&self) -> &'static str {
        match self {
            BlockReason::Degraded(_) => "degraded",
            BlockReason::Paused(_) => "paused",
            BlockReason::Quarantined { .. } => "quarantined",
            BlockReason::NoRevertTarget { .. } => "no_revert_target",
            BlockReason::RollbackMissing { .. } => "rollback_missing",
            BlockReason::RecordInconsistent(_) => "record_inconsistent",
            BlockReason::ExternalNetwork(_) => "external_network_missing",
            BlockReason::ExternalVolume(_) => "external_volume_missing",
            BlockReason::JobFailed { .. } => "job_failed",
            BlockReason::JobNotRun { .. } => "job_not_run",
            BlockReason::DependencyBuildFailed(_) | BlockReason::DependencyFailed { .. } => {
                "dependency_failed"
            }
            BlockReason::ImageAbsent { .. } => "image_absent",
            BlockReason::WaveHold(_) => "wave_failed_earlier",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RETRY: &str = "change the desired state or `berth retry`";
        match self {
            BlockReason::Degraded(why) => write!(
                f,
                "degraded: {why}; berth keeps what runs and changes nothing until the desired state changes or `berth retry`"
            ),
            BlockReason::Paused(why) => {
                write!(f, "rollout paused after a failure: {why}; {RETRY}")
            }
            BlockReason::Quarantined { revision, reason } => write!(
                f,
                "revision {revision} failed and is quarantined ({reason}); the previous revision runs; {RETRY}"
            ),
            BlockReason::NoRevertTarget { revision } => write!(
                f,
                "revision {revision} failed and is quarantined; there is no earlier stable revision to revert to, so what runs is left as is; {RETRY}"
            ),
            BlockReason::RollbackMissing { to } => write!(
                f,
                "`berth rollback` asked for r{to}, which is not in the history; `berth release` returns to the desired state"
            ),
            BlockReason::RecordInconsistent(why) => {
                write!(f, "berth's record of this service is inconsistent: {why}")
            }
            BlockReason::ExternalNetwork(name) => write!(
                f,
                "external network {name} does not exist; create it or drop external: true"
            ),
            BlockReason::ExternalVolume(name) => write!(
                f,
                "external volume {name} does not exist; create it or drop external: true"
            ),
            BlockReason::JobFailed { code } => write!(
                f,
                "job failed with exit code {}; change the desired state (or fix what it needs) to run it again",
                code.map_or("unknown".to_string(), |c| c.to_string())
            ),
            BlockReason::JobNotRun { revision, reason } => {
                write!(f, "job r{revision} not run: {reason}; {RETRY}")
            }
            BlockReason::DependencyBuildFailed(dep) => {
                write!(f, "job {dep}'s image build failed")
            }
            BlockReason::DependencyFailed { dep, code } => {
                write!(f, "job {dep} failed with exit code {code}")
            }
            BlockReason::ImageAbsent { reference } => write!(
                f,
                "image {reference} is not on this host and pull_policy: never forbids pulling it; load it (docker load) or build it, or change pull_policy"
            ),
            BlockReason::WaveHold(hold) => hold.fmt(f),
        }
    }
}

/// Why a service is held (informational: the operator or the Compose file asked for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldReason {
    /// `x-berth.hold`.
    Compose,
    /// `berth hold`.
    Operator,
    /// `berth rollback` to this revision.
    RolledBack(u64),
}

impl HeldReason {
    /// Stable label; never parsed back.
    pub fn label(&self) -> &'static str {
        match self {
            HeldReason::Compose => "x_berth_hold",
            HeldReason::Operator => "berth_hold",
            HeldReason::RolledBack(_) => "berth_rollback",
        }
    }
}

impl fmt::Display for HeldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeldReason::Compose => f.write_str("held by x-berth.hold; nothing changes"),
            HeldReason::Operator => f.write_str("held by `berth hold`; `berth release` resumes"),
            HeldReason::RolledBack(n) => write!(
                f,
                "rolled back to r{n} by `berth rollback`; `berth release` returns to the desired state"
            ),
        }
    }
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
