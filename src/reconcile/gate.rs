//! The readiness gate of a rollout (docs/concepts.md#the-readiness-gate): is a candidate container ready, still
//! progressing, or failed?
//!
//! Pure: it takes what was observed of the candidate (engine state, Docker health, the verdict
//! of berth's readiness probe), the rollout policy, what the caller remembers of this
//! candidate ([`GateMemory`]) and `now` (unix seconds). Ready means: running, Docker
//! healthcheck `healthy` when the service has one, berth's readiness probe `Passing` when it
//! has one — all held without a break for `min_ready`, all before `progress_deadline` counted
//! from the candidate's start, counting only time berth was watching ([`look`]: a restart of
//! berth, or of the engine, is not held against the candidate). The rollout machinery calls
//! [`look`] then [`evaluate`] on every round and acts on the verdict: swap, keep waiting, or
//! revert.

use std::time::Duration;

use super::probe::ProbeStatus;
use super::reason::FailReason;
use crate::desired::model::RolloutPolicy;
use crate::desired::syntax::units::format_duration;
use crate::engine::{Health, RunState};

/// What was observed of the candidate this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Engine state.
    pub state: RunState,
    /// Exit code when exited.
    pub exit_code: Option<i64>,
    /// Docker health (`None` when the container has no healthcheck).
    pub health: Health,
    /// berth's readiness probe verdict; `None` when the service has no readiness probe.
    pub probe: Option<ProbeStatus>,
    /// How often Docker restarted it (its restart policy at work: it crashed).
    pub restarts: u32,
}

/// What the caller keeps between rounds for one candidate (persisted in the record's slot, so
/// a restarted berth judges the candidate on the same clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateMemory {
    /// When the candidate was started (unix seconds): the deadline counts from here.
    pub started_at: u64,
    /// Since when every condition has held without a break.
    pub ready_since: Option<u64>,
    /// When berth last looked at the candidate (unix seconds); `None` before the first look
    /// (the look of the round that started it counts: `started_at`).
    pub watched_at: Option<u64>,
    /// Seconds since `started_at` during which berth was not watching (down, or unable to
    /// reach the engine): they do not count towards the deadline.
    pub unwatched: u64,
}

/// The longest pause between two looks at a candidate that still counts as watching it:
/// 10 s, or a quarter of `progress_deadline` when that is shorter (at least a second). Rounds
/// look every 100–250 ms while a rollout runs; a longer pause means berth was down, or could
/// not reach the engine, or backed off.
pub fn watch_gap(policy: &RolloutPolicy) -> u64 {
    (policy.progress_deadline.as_secs() / 4).clamp(1, 10)
}

/// How berth looked at the candidate this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Without a break since the last look.
    Continuous,
    /// After a time berth was not watching (a pause longer than [`watch_gap`], or the engine
    /// went away and came back since the last round): what happened in between is no verdict.
    AfterGap {
        /// The seconds not watched, added to [`GateMemory::unwatched`].
        seconds: u64,
    },
}

/// Records a look at the candidate at `now`: a pause longer than [`watch_gap`] since the last
/// one, or `engine_lost` (the engine did not answer between the last round and this one), is
/// time berth was not watching. Only the first [`watch_gap`] of such a pause counts towards the
/// deadline, and `min_ready` starts again (it must be held while watched). Call it before
/// [`evaluate`] on every look.
pub fn look(policy: &RolloutPolicy, mem: &mut GateMemory, now: u64, engine_lost: bool) -> Look {
    let last = mem.watched_at.unwrap_or(mem.started_at).max(mem.started_at);
    let pause = now.saturating_sub(last);
    let gap = watch_gap(policy);
    mem.watched_at = Some(now);
    if pause <= gap && !engine_lost {
        return Look::Continuous;
    }
    let seconds = pause.saturating_sub(gap.min(pause));
    mem.unwatched += seconds;
    mem.ready_since = None;
    Look::AfterGap { seconds }
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ready and held for `min_ready`: the rollout may proceed.
    Ready,
    /// Not yet; `reason` says what is missing.
    Progressing {
        /// What the candidate waits for.
        reason: String,
    },
    /// It will not become ready: revert (or pause/continue, per `failure_action`).
    Failed {
        /// Why, typed.
        kind: FailReason,
        /// Why, for the event and status.
        reason: String,
    },
}

/// Evaluates the gate; updates `mem.ready_since`.
pub fn evaluate(policy: &RolloutPolicy, c: &Candidate, mem: &mut GateMemory, now: u64) -> Verdict {
    // Someone else is removing it (`docker rm -f`): that is no verdict on the revision. Once it
    // is gone the replica is missing and is created again within the same deadline.
    let removing = c.state == RunState::Removing;
    if c.state == RunState::Exited {
        mem.ready_since = None;
        let code = c.exit_code.map_or("unknown".to_string(), |c| c.to_string());
        return Verdict::Failed {
            kind: FailReason::Exited,
            reason: format!("exited with code {code} before becoming ready"),
        };
    }
    if c.restarts > 0 {
        mem.ready_since = None;
        return Verdict::Failed {
            kind: FailReason::Crashed,
            reason: format!(
                "crashed and was restarted by Docker {} time(s) before becoming ready",
                c.restarts
            ),
        };
    }
    // Docker says unhealthy only after `retries` failed checks past `start_period`: final.
    if c.state == RunState::Running && c.health == Health::Unhealthy {
        mem.ready_since = None;
        return Verdict::Failed {
            kind: FailReason::Unhealthy,
            reason: "Docker healthcheck reports unhealthy".into(),
        };
    }
    let missing = if removing {
        Some("being removed by someone else; it will be created again".to_string())
    } else if c.state != RunState::Running {
        Some("not running yet".to_string())
    } else if c.health == Health::Starting {
        Some("Docker healthcheck is starting".to_string())
    } else {
        match c.probe {
            Some(ProbeStatus::Passing) | None => None,
            Some(ProbeStatus::Unknown) => Some("readiness probe has not passed yet".to_string()),
            Some(ProbeStatus::Failing) => Some("readiness probe is failing".to_string()),
        }
    };
    // Only time berth watched counts (see `look`).
    let elapsed = Duration::from_secs(
        now.saturating_sub(mem.started_at)
            .saturating_sub(mem.unwatched),
    );
    let reason = match missing {
        Some(reason) => {
            mem.ready_since = None;
            reason
        }
        None => {
            let since = *mem.ready_since.get_or_insert(now);
            let held = Duration::from_secs(now.saturating_sub(since));
            if held >= policy.min_ready {
                return Verdict::Ready;
            }
            format!(
                "ready, holding for min_ready ({} of {})",
                format_duration(held),
                format_duration(policy.min_ready)
            )
        }
    };
    if elapsed >= policy.progress_deadline {
        return Verdict::Failed {
            kind: FailReason::Deadline,
            reason: format!(
                "not ready within progress_deadline ({}): {reason}",
                format_duration(policy.progress_deadline)
            ),
        };
    }
    Verdict::Progressing { reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::{FailureAction, UpdatePolicy};

    fn policy(min_ready: u64, deadline: u64) -> RolloutPolicy {
        RolloutPolicy {
            update: UpdatePolicy {
                parallelism: 1,
                delay: Duration::ZERO,
                order: None,
                failure_action: FailureAction::Rollback,
                max_failure_ratio: 0.0,
            },
            min_ready: Duration::from_secs(min_ready),
            progress_deadline: Duration::from_secs(deadline),
        }
    }

    fn running(health: Health, probe: Option<ProbeStatus>) -> Candidate {
        Candidate {
            state: RunState::Running,
            exit_code: None,
            health,
            probe,
            restarts: 0,
        }
    }

    /// Feeds (time, observation) pairs; returns the verdicts.
    fn run(p: &RolloutPolicy, steps: &[(u64, Candidate)]) -> Vec<Verdict> {
        let mut mem = GateMemory {
            started_at: 0,
            ready_since: None,
            watched_at: None,
            unwatched: 0,
        };
        steps
            .iter()
            .map(|(t, c)| evaluate(p, c, &mut mem, *t))
            .collect()
    }

    #[test]
    fn a_candidate_removed_by_someone_else_is_no_verdict() {
        let p = policy(10, 120);
        let ok = running(Health::None, None);
        let removing = Candidate {
            state: RunState::Removing,
            ..ok
        };
        let v = run(&p, &[(1, ok), (3, removing)]);
        assert_eq!(names(&v), ["progressing", "progressing"]);
        // The deadline still holds.
        assert_eq!(names(&run(&p, &[(130, removing)])), ["failed"]);
    }

    fn names(v: &[Verdict]) -> Vec<&'static str> {
        v.iter()
            .map(|v| match v {
                Verdict::Ready => "ready",
                Verdict::Progressing { .. } => "progressing",
                Verdict::Failed { .. } => "failed",
            })
            .collect()
    }

    #[test]
    fn ready_only_after_holding_for_min_ready() {
        let p = policy(10, 120);
        let ok = running(Health::None, None);
        let v = run(&p, &[(1, ok), (5, ok), (10, ok), (11, ok)]);
        assert_eq!(
            names(&v),
            ["progressing", "progressing", "progressing", "ready"]
        );
        assert_eq!(
            v[1],
            Verdict::Progressing {
                reason: "ready, holding for min_ready (4s of 10s)".into()
            }
        );
    }

    #[test]
    fn a_break_restarts_the_min_ready_window() {
        let p = policy(10, 120);
        let ok = running(Health::Healthy, Some(ProbeStatus::Passing));
        let bad = running(Health::Healthy, Some(ProbeStatus::Failing));
        let v = run(&p, &[(1, ok), (9, bad), (10, ok), (19, ok), (20, ok)]);
        assert_eq!(
            names(&v),
            [
                "progressing",
                "progressing",
                "progressing",
                "progressing",
                "ready"
            ]
        );
        assert_eq!(
            v[1],
            Verdict::Progressing {
                reason: "readiness probe is failing".into()
            }
        );
    }

    #[test]
    fn docker_health_and_the_probe_must_both_pass() {
        let p = policy(0, 60);
        assert_eq!(
            names(&run(
                &p,
                &[(1, running(Health::Starting, Some(ProbeStatus::Passing)))]
            )),
            ["progressing"]
        );
        assert_eq!(
            names(&run(
                &p,
                &[(1, running(Health::Healthy, Some(ProbeStatus::Unknown)))]
            )),
            ["progressing"]
        );
        assert_eq!(
            names(&run(
                &p,
                &[(1, running(Health::Healthy, Some(ProbeStatus::Passing)))]
            )),
            ["ready"]
        );
        assert_eq!(
            names(&run(&p, &[(1, running(Health::None, None))])),
            ["ready"]
        );
    }

    #[test]
    fn the_deadline_fails_a_candidate_that_is_not_ready_and_names_why() {
        let p = policy(5, 30);
        let v = run(
            &p,
            &[
                (10, running(Health::Starting, None)),
                (30, running(Health::Starting, None)),
            ],
        );
        assert_eq!(
            v[1],
            Verdict::Failed {
                kind: FailReason::Deadline,
                reason: "not ready within progress_deadline (30s): Docker healthcheck is starting"
                    .into()
            }
        );
        // Still holding min_ready at the deadline is a failure too.
        let ok = running(Health::None, None);
        assert_eq!(
            names(&run(&p, &[(28, ok), (30, ok)])),
            ["progressing", "failed"]
        );
    }

    #[test]
    fn a_candidate_that_exits_fails_at_once() {
        let p = policy(5, 300);
        let dead = Candidate {
            state: RunState::Exited,
            exit_code: Some(1),
            health: Health::None,
            probe: None,
            restarts: 0,
        };
        assert_eq!(
            run(&p, &[(2, dead)]),
            [Verdict::Failed {
                kind: FailReason::Exited,
                reason: "exited with code 1 before becoming ready".into()
            }]
        );
    }

    #[test]
    fn unhealthy_and_crash_loops_fail_at_once() {
        let p = policy(5, 300);
        assert_eq!(
            run(&p, &[(2, running(Health::Unhealthy, None))]),
            [Verdict::Failed {
                kind: FailReason::Unhealthy,
                reason: "Docker healthcheck reports unhealthy".into()
            }]
        );
        let looping = Candidate {
            restarts: 2,
            ..running(Health::None, None)
        };
        assert_eq!(
            run(&p, &[(2, looping)]),
            [Verdict::Failed {
                kind: FailReason::Crashed,
                reason: "crashed and was restarted by Docker 2 time(s) before becoming ready"
                    .into()
            }]
        );
    }

    #[test]
    fn a_pause_longer_than_the_watch_gap_does_not_count_towards_the_deadline() {
        let p = policy(0, 120);
        assert_eq!(watch_gap(&p), 10);
        assert_eq!(watch_gap(&policy(0, 2)), 1);
        let mut mem = GateMemory {
            started_at: 100,
            ready_since: Some(101),
            watched_at: None,
            unwatched: 0,
        };
        assert_eq!(look(&p, &mut mem, 102, false), Look::Continuous);
        assert_eq!(mem.ready_since, Some(101));
        // berth down from 102 to 1102: only the first 10 s count.
        assert_eq!(
            look(&p, &mut mem, 1102, false),
            Look::AfterGap { seconds: 990 }
        );
        assert_eq!((mem.unwatched, mem.ready_since), (990, None));
        let ok = running(Health::None, None);
        assert_eq!(
            evaluate(&p, &ok, &mut mem, 1102),
            Verdict::Ready,
            "12 s watched of a 120 s deadline"
        );
        // The engine went away between two rounds: no time is lost, but min_ready restarts.
        mem.ready_since = Some(1102);
        assert_eq!(
            look(&p, &mut mem, 1103, true),
            Look::AfterGap { seconds: 0 }
        );
        assert_eq!((mem.unwatched, mem.ready_since), (990, None));
    }
}
