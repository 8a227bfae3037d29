//! The one-shot gates of a rollout (`pre_deploy` before the first replacement, `smoke` after
//! the last): one container each, run once per rollout, its exit code recorded.
//!
//! Pure; `advance` runs them and hands a failure to `revert::fail`.

use std::time::Duration;

use super::containers::{removal, start};
use super::revert::fail;
use super::target::Target;
use super::{Flow, Hold, Input, Output};
use crate::desired::model::Smoke;
use crate::engine::labels::Role;
use crate::engine::{RunState, labels};
use crate::reconcile::action::{Action, ImageSource};
use crate::reconcile::observed::{ObservedContainer, normalize_reference};
use crate::reconcile::reason::{FailReason, GateKind, WaitReason};
use crate::store::{GateRun, Rollout, ServiceRecord};

/// Runs a one-shot gate of the active rollout `a`; `Some(flow)` when the rollout cannot go on
/// this round (the gate runs, or it failed and `fail` decided what comes next).
pub(super) fn gate_step(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    a: &mut Rollout,
    target: &Target,
    role: Role,
    gate: &Smoke,
    out: &mut Output,
) -> Option<Flow> {
    match one_shot(input, target, a, role, gate, out) {
        GateState::Passed => None,
        GateState::Waiting => {
            rec.active = Some(a.clone());
            Some(Flow::Done)
        }
        GateState::Failed(reason, id) => {
            let (what, timed_out) = if role == Role::Smoke {
                ("smoke test", FailReason::SmokeFailed)
            } else {
                ("pre_deploy", FailReason::PreDeployFailed)
            };
            let kind = match reason {
                GateFailure::Exited(_) => FailReason::Exited,
                GateFailure::TimedOut(_) => timed_out,
            };
            Some(fail(
                input,
                rec,
                a,
                out,
                id,
                kind,
                format!("{what} {reason}"),
            ))
        }
    }
}

pub(super) enum GateState {
    Passed,
    Waiting,
    /// Why, and the container whose logs say more.
    Failed(GateFailure, Option<String>),
}

/// How a one-shot gate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GateFailure {
    /// Its command exited with this code.
    Exited(i64),
    /// It did not finish within its timeout.
    TimedOut(Duration),
}

impl std::fmt::Display for GateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateFailure::Exited(code) => write!(f, "exited with code {code}"),
            GateFailure::TimedOut(t) => write!(
                f,
                "did not finish within its timeout ({})",
                crate::desired::syntax::units::format_duration(*t)
            ),
        }
    }
}

/// Runs a one-shot gate container (`pre_deploy`, `smoke`) once per rollout.
pub(super) fn one_shot(
    input: &Input<'_>,
    target: &Target,
    a: &mut Rollout,
    role: Role,
    gate: &Smoke,
    out: &mut Output,
) -> GateState {
    let now = input.now;
    let svc = input.svc;
    let (kind, run) = match role {
        Role::Smoke => (GateKind::Smoke, &mut a.smoke),
        _ => (GateKind::PreDeploy, &mut a.pre_deploy),
    };
    let what = kind.as_str();
    let name = format!("{}-{}-{what}", input.project.name, svc.name);
    let mine: Vec<&ObservedContainer> = input
        .containers
        .iter()
        .copied()
        .filter(|c| c.identity.role == role)
        .collect();
    let cause = format!("r{} {what} gate", target.revision.unwrap_or(0));
    if let Some(GateRun {
        exit_code: Some(code),
        ..
    }) = run
    {
        for c in &mine {
            removal(out, c, svc, &format!("{cause}: finished"));
        }
        return if *code == 0 {
            GateState::Passed
        } else {
            GateState::Failed(GateFailure::Exited(*code), None)
        };
    }
    let current = mine
        .iter()
        .find(|c| c.identity.spec_hash == target.hash)
        .copied();
    match (run.clone(), current) {
        (Some(r), Some(c)) => {
            if c.state == RunState::Exited {
                let code = c.exit_code.unwrap_or(-1);
                *run = Some(GateRun {
                    started_at: r.started_at,
                    exit_code: Some(code),
                });
                if code == 0 {
                    removal(out, c, svc, &format!("{cause}: passed"));
                    return GateState::Passed;
                }
                // The container stays until the failure is handled: its logs go in the event.
                return GateState::Failed(GateFailure::Exited(code), Some(c.id.clone()));
            }
            if now >= r.started_at + gate.timeout.as_secs() {
                *run = Some(GateRun {
                    started_at: r.started_at,
                    exit_code: Some(-1),
                });
                return GateState::Failed(GateFailure::TimedOut(gate.timeout), Some(c.id.clone()));
            }
            if c.state == RunState::Created {
                out.steps.push((start(c), cause));
            }
            out.holds.push(Hold::Wait(WaitReason::GateRunning(kind)));
            GateState::Waiting
        }
        (_, _) => {
            for c in mine
                .iter()
                .filter(|c| Some(c.id.as_str()) != current.map(|c| c.id.as_str()))
            {
                removal(out, c, svc, &format!("{cause}: left over"));
            }
            let image = match &gate.image {
                None => target.image_id.clone().unwrap_or_default(),
                Some(reference) => match input
                    .images
                    .and_then(|i| i.get(&normalize_reference(reference)))
                {
                    Some(id) => id.clone(),
                    None if input.images.is_none() => {
                        out.needs_inventory = true;
                        out.holds
                            .push(Hold::Wait(WaitReason::GateLookingUpImage(kind)));
                        return GateState::Waiting;
                    }
                    None => {
                        out.pulls.push(reference.clone());
                        out.holds
                            .push(Hold::Wait(WaitReason::GatePulling(kind, reference.clone())));
                        return GateState::Waiting;
                    }
                },
            };
            let mut spec = target.spec(input, 1);
            spec.name = name.clone();
            spec.image = image.clone();
            spec.command = Some(gate.command.clone());
            spec.ports.clear();
            // Not under the service's name: its name must resolve to the service only.
            for n in &mut spec.networks {
                n.aliases.clear();
            }
            spec.hostname = None;
            spec.healthcheck = None;
            spec.restart = "no".into();
            spec.restart_max = None;
            spec.labels
                .insert(labels::ROLE.into(), role.as_str().into());
            spec.labels
                .insert(labels::compose::ONEOFF.into(), "True".into());
            if let Some(c) = current {
                removal(out, c, svc, &format!("{cause}: restarting the gate"));
            }
            out.steps.push((
                Action::Create {
                    spec: Box::new(spec),
                    image: ImageSource::Id(image),
                },
                cause.clone(),
            ));
            out.steps.push((
                Action::Start {
                    target: name.clone(),
                    name,
                },
                cause,
            ));
            *run = Some(GateRun {
                started_at: now,
                exit_code: None,
            });
            out.holds.push(Hold::Wait(WaitReason::GateRunning(kind)));
            GateState::Waiting
        }
    }
}
