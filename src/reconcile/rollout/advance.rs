//! Moving an active rollout forward: the `pre_deploy` gate, every replica's step in batches,
//! then the smoke gate and completion.
//!
//! Pure; called by the driver while a rollout is active.

use super::complete::complete;
use super::containers::{remove_gates, replicas};
use super::gates::gate_step;
use super::handoff::Routing;
use super::policy::{order_in, policy};
use super::replica::{Batch, ReplicaStep};
use super::revert::fail;
use super::target::Target;
use super::{Flow, Hold, Input, Output, replica};
use crate::engine::labels::Role;
use crate::reconcile::reason::{FailReason, ReplicaWait, WaitReason};
use crate::store::{RolloutKind, ServiceRecord};

/// Moves the active rollout forward.
pub(super) fn advance(
    input: &Input<'_>,
    rec: &mut ServiceRecord,
    out: &mut Output,
    routing: &mut Option<Routing>,
) -> Flow {
    let svc = input.svc;
    let now = input.now;
    let Some(mut a) = rec.active.clone() else {
        return Flow::Done;
    };
    let Some(rev) = rec.revision(a.revision).cloned() else {
        rec.active = None;
        return Flow::Again;
    };
    let target = Target {
        hash: rev.spec_hash.clone(),
        kind: a.kind,
        revision: Some(rev.number),
        image_id: Some(rev.image_id.clone()),
        template: match a.kind {
            // An update towards the desired revision builds from the service; one towards an
            // earlier revision (finished while the desired one waits for its wave) from the
            // template recorded with it.
            RolloutKind::Update if rev.spec_hash == svc.spec_hash => None,
            _ => rev.template.clone(),
        },
    };
    if target.kind != RolloutKind::Update && target.template.is_none() {
        // An adopted revision: only its kept containers can bring it back.
        let any = replicas(input)
            .iter()
            .any(|c| c.identity.spec_hash == target.hash);
        if !any {
            return fail(
                input,
                rec,
                &mut a,
                out,
                None,
                FailReason::Failed,
                format!(
                    "r{} has no kept container and no recorded template to recreate it from",
                    rev.number
                ),
            );
        }
    }
    let pol = policy(svc, a.kind);
    let mine = replicas(input);
    if a.kind != RolloutKind::Update {
        remove_gates(input, out, "the rollout it gated is over");
    }
    let replacing = mine.iter().any(|c| c.identity.spec_hash != target.hash);

    // pre_deploy: before the first replacement of an update.
    if a.kind == RolloutKind::Update
        && replacing
        && a.slots.is_empty()
        && let Some(gate) = &svc.berth.pre_deploy
        && let Some(flow) = gate_step(input, rec, &mut a, &target, Role::PreDeploy, gate, out)
    {
        return flow;
    }

    let (ord, why) = order_in(input);
    let last_pass = a.slots.values().filter_map(|s| s.passed_at).max();
    let mut batch = Batch {
        input,
        target: &target,
        revision: rev.number,
        kind: a.kind,
        pol,
        order: ord,
        why,
        parallelism: pol.update.parallelism.max(1) as usize,
        in_flight: a.slots.values().filter(|s| s.passed_at.is_none()).count(),
        batch_open: last_pass.is_none_or(|t| now >= t + pol.update.delay.as_secs()),
        failed_hash: match a.kind {
            RolloutKind::Revert { failed } => rec.revision(failed).map(|r| r.spec_hash.clone()),
            _ => None,
        },
        stable: rec
            .revisions
            .iter()
            .filter(|r| r.stable)
            .map(|r| r.spec_hash.clone())
            .collect(),
        mine,
        routing: routing.take(),
    };
    let mut waits: Vec<(u32, ReplicaWait)> = Vec::new();
    let mut failed = None;
    for n in 1..=svc.replicas {
        match replica::step(&mut batch, &mut a, out, n) {
            ReplicaStep::Done => {}
            ReplicaStep::Waiting(why) => waits.push((n, why)),
            ReplicaStep::Failed {
                logs_of,
                kind,
                reason,
            } => {
                failed = Some((logs_of, kind, reason));
                break;
            }
        }
    }
    *routing = batch.routing.take();
    if let Some((logs_of, kind, reason)) = failed {
        return fail(input, rec, &mut a, out, logs_of, kind, reason);
    }
    if !waits.is_empty() {
        out.holds.push(Hold::Wait(WaitReason::Replicas(waits)));
        rec.active = Some(a);
        return Flow::Done;
    }
    // Every replica passed. Smoke gate for updates and rollbacks.
    if !matches!(a.kind, RolloutKind::Revert { .. })
        && let Some(gate) = &svc.berth.smoke
        && let Some(flow) = gate_step(input, rec, &mut a, &target, Role::Smoke, gate, out)
    {
        return flow;
    }
    complete(input, rec, a, &target, out);
    Flow::Done
}
