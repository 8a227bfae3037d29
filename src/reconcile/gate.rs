//! The readiness gate of a rollout (docs/concepts.md#the-readiness-gate): is a candidate container ready, still
//! progressing, or failed?
//!
//! Pure: it takes what was observed of the candidate (engine state, Docker health, the verdict
//! of berth's readiness probe), the rollout policy, what the caller remembers of this
//! candidate ([`GateMemory`]) and `now` (unix seconds). Ready means: running, Docker
//! healthcheck `healthy` when the service has one, berth's readiness probe `Passing` when it
//! has one — all held without a break for `min_ready`, all before `progress_deadline` counted
//! from the candidate's start. The rollout machinery (next step of issue 4) calls it on every
//! round and acts on the verdict: swap, keep waiting, or revert.

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

/// What the caller keeps between rounds for one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateMemory {
    /// When the candidate was started (unix seconds): the deadline counts from here.
    pub started_at: u64,
    /// Since when every condition has held without a break.
    pub ready_since: Option<u64>,
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
    if matches!(c.state, RunState::Exited | RunState::Removing) {
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
    let missing = if c.state != RunState::Running {
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
    let elapsed = Duration::from_secs(now.saturating_sub(mem.started_at));
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
        };
        steps
            .iter()
            .map(|(t, c)| evaluate(p, c, &mut mem, *t))
            .collect()
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
}
