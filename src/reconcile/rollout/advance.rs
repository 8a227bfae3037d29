//! Moving an active rollout forward: the `pre_deploy` gate, every replica's step in batches,
//! then the smoke gate and completion.
//!
//! Pure; called by the driver while a rollout is active.

use super::*;

/// Moves the active rollout forward.
pub(super) fn advance(input: &Input<'_>, rec: &mut ServiceRecord, out: &mut Output) -> Flow {
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
            RolloutKind::Update => None,
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

    let (ord, why) = order(svc);
    let parallelism = pol.update.parallelism.max(1) as usize;
    let mut in_flight = a.slots.values().filter(|s| s.passed_at.is_none()).count();
    let last_pass = a.slots.values().filter_map(|s| s.passed_at).max();
    let batch_open = last_pass.is_none_or(|t| now >= t + pol.update.delay.as_secs());
    let failed_hash = match a.kind {
        RolloutKind::Revert { failed } => rec.revision(failed).map(|r| r.spec_hash.clone()),
        _ => None,
    };
    let keep = |c: &ObservedContainer| {
        if Some(&c.identity.spec_hash) == failed_hash.as_ref() {
            Fate::Discard
        } else if rec
            .revisions
            .iter()
            .any(|r| r.stable && r.spec_hash == c.identity.spec_hash)
        {
            Fate::Keep
        } else {
            Fate::Remove
        }
    };
    let mut waits: Vec<String> = Vec::new();
    for n in 1..=svc.replicas {
        let canonical = target.canonical(input, n);
        let (tc, olds) = split_slot(out, svc, &mine, &target.hash, n, &canonical);
        let olds = dedupe_olds(out, svc, olds, &keep);
        let slot = a.slots.get(&n).copied();
        let cause = match a.kind {
            RolloutKind::Update if olds.is_empty() => format!("r{} replica {n}", rev.number),
            RolloutKind::Update if olds.iter().any(|c| !c.identity.managed) => format!(
                "r{} replica {n}: taking over from docker compose, {why}",
                rev.number
            ),
            RolloutKind::Update => format!("r{} replica {n}: {why}", rev.number),
            RolloutKind::Revert { failed } => {
                format!("revert to r{} (r{failed} failed) replica {n}", rev.number)
            }
            RolloutKind::Rollback => format!("rollback to r{} replica {n}", rev.number),
        };
        if let (Some(err), Some(s)) = (input.step_error, slot)
            && s.passed_at.is_none()
        {
            return fail(
                input,
                rec,
                &mut a,
                out,
                tc.map(|c| c.id.clone()),
                FailReason::Failed,
                format!("replica {n}'s new container could not be started: {err}"),
            );
        }
        match (tc, slot) {
            (_, Some(s)) if s.passed_at.is_some() => {
                // Passed: finish the swap; a passed replica that died is self-heal territory.
                swap(out, svc, tc, &olds, &canonical, &keep, &cause);
                match tc {
                    None => create_start(out, &target, input, n, &canonical, &cause),
                    Some(c) if matches!(c.state, RunState::Exited | RunState::Created) => {
                        out.steps.push((
                            start(c),
                            format!("{cause}: exited after passing; restarting"),
                        ))
                    }
                    _ => {}
                }
            }
            (None, Some(s)) => {
                let deadline = s.started_at + pol.progress_deadline.as_secs();
                if now >= deadline {
                    return fail(
                        input,
                        rec,
                        &mut a,
                        out,
                        None,
                        FailReason::Failed,
                        format!(
                            "replica {n}'s new container could not be created or started (see the failed steps)"
                        ),
                    );
                }
                make_room(out, svc, &olds, &canonical, &keep, &cause);
                create_start(out, &target, input, n, &canonical, &cause);
                waits.push(format!("replica {n}: starting"));
            }
            (None, None) => {
                let fresh = olds.is_empty();
                if !fresh && (in_flight >= parallelism || !batch_open) {
                    waits.push(format!(
                        "replica {n}: waits for its batch (parallelism {parallelism})"
                    ));
                    continue;
                }
                if !fresh {
                    in_flight += 1;
                }
                a.slots.insert(
                    n,
                    Slot {
                        started_at: now,
                        ..Slot::default()
                    },
                );
                let old_running = olds.iter().any(|c| c.state == RunState::Running);
                if ord == Order::StartFirst && old_running && a.kind == RolloutKind::Update {
                    let temp = format!("{canonical}-{}", short(&target.hash));
                    create_start(out, &target, input, n, &temp, &cause);
                } else {
                    make_room(out, svc, &olds, &canonical, &keep, &cause);
                    create_start(out, &target, input, n, &canonical, &cause);
                }
                waits.push(format!("replica {n}: starting"));
            }
            (Some(c), None) => {
                // The target's container exists before its slot began: a kept container
                // (revert, rollback) or one that was already there.
                let fresh = olds.is_empty();
                if !fresh
                    && c.state != RunState::Running
                    && (in_flight >= parallelism || !batch_open)
                {
                    waits.push(format!(
                        "replica {n}: waits for its batch (parallelism {parallelism})"
                    ));
                    continue;
                }
                let mut slot = Slot {
                    started_at: now,
                    ..Slot::default()
                };
                if c.state == RunState::Running {
                    if matches!(a.kind, RolloutKind::Revert { .. }) {
                        // It never stopped: nothing to verify.
                        slot.passed_at = Some(now);
                        a.slots.insert(n, slot);
                        swap(out, svc, Some(c), &olds, &canonical, &keep, &cause);
                        continue;
                    }
                } else {
                    if !fresh {
                        in_flight += 1;
                    }
                    let old_running = olds.iter().any(|o| o.state == RunState::Running);
                    if !(ord == Order::StartFirst && old_running && a.kind == RolloutKind::Update) {
                        make_room(out, svc, &olds, &canonical, &keep, &cause);
                        if c.name != canonical {
                            out.steps.push((rename(c, &canonical), cause.clone()));
                        }
                    }
                    out.steps.push((start(c), cause.clone()));
                }
                a.slots.insert(n, slot);
                waits.push(format!("replica {n}: starting"));
            }
            (Some(c), Some(mut s)) => {
                if c.state == RunState::Created {
                    out.steps
                        .push((start(c), format!("{cause}: created, not started")));
                    waits.push(format!("replica {n}: starting"));
                    continue;
                }
                // Stopped before it ever ran here: berth's own start did not happen (a crash
                // between the record and the step) — start it again rather than judge it.
                // An exit code other than a stop's means it ran and failed.
                if c.state == RunState::Exited
                    && !s.seen_running
                    && matches!(c.exit_code, None | Some(0 | 137 | 143))
                    && now < s.started_at + pol.progress_deadline.as_secs()
                {
                    let old_running = olds.iter().any(|o| o.state == RunState::Running);
                    if !(ord == Order::StartFirst && old_running && a.kind == RolloutKind::Update) {
                        make_room(out, svc, &olds, &canonical, &keep, &cause);
                        if c.name != canonical {
                            out.steps.push((rename(c, &canonical), cause.clone()));
                        }
                    }
                    out.steps.push((start(c), format!("{cause}: start again")));
                    waits.push(format!("replica {n}: starting"));
                    continue;
                }
                if c.state == RunState::Running && !s.seen_running {
                    s.seen_running = true;
                    a.slots.insert(n, s);
                }
                let probe = svc.berth.readiness.as_ref().map(|_| {
                    input
                        .probes
                        .get(&c.id)
                        .and_then(|p| p.readiness)
                        .unwrap_or(ProbeStatus::Unknown)
                });
                if c.state == RunState::Running && !input.restart_counts.contains_key(&c.id) {
                    out.inspect.push(c.id.clone());
                }
                let candidate = Candidate {
                    state: c.state,
                    exit_code: c.exit_code,
                    health: c.health,
                    probe,
                    restarts: input.restart_counts.get(&c.id).copied().unwrap_or(0),
                };
                let mut mem = GateMemory {
                    started_at: s.started_at,
                    ready_since: s.ready_since,
                };
                let verdict = gate::evaluate(&pol, &candidate, &mut mem, now);
                s.ready_since = mem.ready_since;
                match verdict {
                    Verdict::Ready => {
                        s.passed_at = Some(now);
                        a.slots.insert(n, s);
                        swap(out, svc, Some(c), &olds, &canonical, &keep, &cause);
                    }
                    Verdict::Progressing { reason } => {
                        a.slots.insert(n, s);
                        waits.push(format!("replica {n}: {reason}"));
                    }
                    Verdict::Failed { kind, reason } => {
                        let ratio =
                            f64::from(a.slots.values().filter(|s| s.failed).count() as u32 + 1)
                                / f64::from(svc.replicas.max(1));
                        let tolerated = a.kind == RolloutKind::Update
                            && (pol.update.failure_action == FailureAction::Continue
                                || ratio <= pol.update.max_failure_ratio);
                        if tolerated {
                            s.failed = true;
                            s.passed_at = Some(now);
                            a.slots.insert(n, s);
                            out.events.push(Event {
                                logs_of: Some(c.id.clone()),
                                ..event(
                                    input,
                                    EventKind::RolloutFailed,
                                    EventReason::Tolerated(kind),
                                    Some(rev.number),
                                    format!(
                                        "replica {n} of r{} failed ({reason}); tolerated by failure_action/max_failure_ratio, the rollout goes on",
                                        rev.number
                                    ),
                                )
                            });
                            continue;
                        }
                        return fail(
                            input,
                            rec,
                            &mut a,
                            out,
                            Some(c.id.clone()),
                            kind,
                            format!("replica {n}: {reason}"),
                        );
                    }
                }
            }
        }
    }
    if !waits.is_empty() {
        out.holds.push(Hold::Wait(waits.join("; ")));
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
