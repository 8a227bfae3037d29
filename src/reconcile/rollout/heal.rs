//! Self-heal: once the target runs, a replica that exited, vanished or is unhealthy is
//! restarted or recreated with exponential backoff; too many restarts in a window mark the
//! service `Degraded` instead of looping.
//!
//! Pure; the driver's branch for an established target.

use std::time::Duration;

use super::containers::{
    create_start, removal, remove_gates, rename, replicas, split_slot, start, stop,
};
use super::target::Target;
use super::{Flow, Hold, Input, Output, event};
use crate::engine::{Health, RunState};
use crate::reconcile::action::short;
use crate::reconcile::event::EventKind;
use crate::reconcile::probe::ProbeStatus;
use crate::reconcile::reason::{EventReason, FailReason, HealReason, WaitReason};
use crate::store::{Degraded, ServiceRecord};

/// Self-heal restarts allowed within [`HEAL_WINDOW`] before the service is `Degraded`.
pub const HEAL_LIMIT: usize = 5;
/// The self-heal window.
pub const HEAL_WINDOW: Duration = Duration::from_secs(600);
/// Longest pause between two self-heal restarts.
pub(super) const HEAL_MAX_BACKOFF: u64 = 60;

/// The target runs: restart or recreate what died, vanished or is unhealthy; clean leftovers.
pub(super) fn self_heal(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    target: &Target,
    out: &mut Output,
) -> Flow {
    let svc = input.svc;
    let now = input.now;
    let mine = replicas(input);
    if let Some(flow) = image_lost(input, rec, target, &mine, out) {
        return flow;
    }
    remove_gates(input, out, "the rollout it gated is over");
    let mut heals: Vec<(u32, HealReason, String)> = Vec::new();
    for n in 1..=svc.replicas {
        let canonical = target.canonical(input, n);
        let (tc, olds) = split_slot(out, svc, &mine, &target.hash, n, &canonical);
        // What remains of earlier revisions: the rollout that kept them is over.
        for o in &olds {
            let cause = if o.identity.managed {
                format!("left over from revision {}", short(&o.identity.spec_hash))
            } else {
                "taking over from docker compose".to_string()
            };
            removal(out, o, svc, &cause);
        }
        match tc {
            // Missing (removed by hand, or a scale-up): recreated at once; not a crash, so
            // it neither backs off nor counts towards the restart limit.
            None => {
                let cause = format!("replica {n} is missing; creating it");
                create_start(out, target, input, n, &canonical, &cause);
                out.events.push(event(
                    input,
                    EventKind::SelfHeal,
                    EventReason::Heal(HealReason::Missing),
                    target.revision,
                    cause,
                ));
            }
            Some(c) => {
                if c.name != canonical && !mine.iter().any(|o| o.name == canonical) {
                    out.steps
                        .push((rename(c, &canonical), format!("replica {n} takes its name")));
                }
                let liveness = input.probes.get(&c.id).and_then(|p| p.liveness);
                match c.state {
                    RunState::Created => heals.push((
                        n,
                        HealReason::NotStarted,
                        format!("replica {n} was created but not started"),
                    )),
                    RunState::Exited => heals.push(match c.exit_code {
                        Some(code) => (
                            n,
                            HealReason::Exited,
                            format!("replica {n} exited with code {code}; restarting"),
                        ),
                        None => (
                            n,
                            HealReason::Stopped,
                            format!("replica {n} is stopped; restarting"),
                        ),
                    }),
                    RunState::Running if c.health == Health::Unhealthy => heals.push((
                        n,
                        HealReason::Unhealthy,
                        format!("replica {n} is unhealthy (Docker healthcheck); restarting"),
                    )),
                    RunState::Running
                        if svc.berth.liveness.is_some()
                            && liveness == Some(ProbeStatus::Failing) =>
                    {
                        heals.push((
                            n,
                            HealReason::Liveness,
                            format!("replica {n} fails its liveness probe; restarting"),
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
    if heals.is_empty() {
        return Flow::Done;
    }
    // Exponential backoff between restarts; a limit per window ends in Degraded.
    let k = rec.restarts.len();
    if k >= HEAL_LIMIT {
        let reason = format!(
            "restarted {k} times within {}; giving up on self-heal ({})",
            crate::desired::syntax::units::format_duration(HEAL_WINDOW),
            heals[0].2
        );
        rec.degraded = Some(Degraded {
            since: now,
            reason: reason.clone(),
            spec_hash: svc.spec_hash.clone(),
        });
        out.events.push(event(
            input,
            EventKind::Degraded,
            EventReason::Failure(FailReason::SelfHealLimit),
            target.revision,
            format!("{reason}; DEGRADED"),
        ));
        return Flow::Again;
    }
    if let Some(last) = rec.restarts.last() {
        let wait = (1u64 << (k.min(6) as u32)).min(HEAL_MAX_BACKOFF);
        if now < last + wait {
            out.holds.push(Hold::Wait(WaitReason::HealBackoff {
                seconds: last + wait - now,
                restarts: k,
                cause: heals[0].2.clone(),
            }));
            return Flow::Done;
        }
    }
    rec.restarts.push(now);
    for (n, why, cause) in heals {
        let canonical = target.canonical(input, n);
        match mine
            .iter()
            .copied()
            .filter(|c| c.identity.number == n && c.identity.spec_hash == target.hash)
            .min_by_key(|c| (c.state != RunState::Running, c.name != canonical))
        {
            None => create_start(out, target, input, n, &canonical, &cause),
            Some(c) => {
                if c.state == RunState::Running {
                    out.steps.push((stop(c, svc), cause.clone()));
                }
                out.steps.push((start(c), cause.clone()));
            }
        }
        out.events.push(event(
            input,
            EventKind::SelfHeal,
            EventReason::Heal(why),
            target.revision,
            cause,
        ));
    }
    Flow::Done
}

/// A replica must be created but the image recorded for the target revision is gone from the
/// engine (its containers and pin removed by a clean-up, then `docker image prune -a`):
/// creating from the recorded ID would fail on every round. The revision is recorded as lost
/// (no longer current; its pin went with the image), an event says so, and the next pass
/// resolves the service's reference again (a present tag, else a pull or a build) as a new
/// revision through the gate. Only for the desired revision: a revert or a rollback to a
/// revision whose image is gone fails as any revert that cannot create its container does.
fn image_lost(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    target: &Target,
    mine: &[&crate::reconcile::observed::ObservedContainer],
    out: &mut Output,
) -> Option<Flow> {
    let id = target.image_id.as_deref().filter(|id| !id.is_empty())?;
    let number = target.revision?;
    // Unlisted this round: a create makes the service unsettled, so the round lists them.
    let images = input.images?;
    if target.kind != crate::store::RolloutKind::Update
        || target.hash != input.svc.spec_hash
        || images.values().any(|v| v == id)
    {
        return None;
    }
    let missing = (1..=input.svc.replicas).any(|n| {
        !mine
            .iter()
            .any(|c| c.identity.number == n && c.identity.spec_hash == target.hash)
    });
    if !missing {
        return None;
    }
    let reference = input.svc.image.clone().unwrap_or_default();
    let reason = format!(
        "its image {} is gone from the engine (pruned?); {reference} is resolved again",
        short(id)
    );
    super::settle(out, rec.mark_image_lost(number, reason.clone()));
    out.events.push(event(
        input,
        EventKind::SelfHeal,
        EventReason::Heal(HealReason::ImageLost),
        Some(number),
        format!("r{number}: {reason}"),
    ));
    Some(Flow::Again)
}
