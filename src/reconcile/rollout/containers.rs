//! The container moves a rollout is made of: which containers fill a replica's slot, what
//! becomes of the old ones (kept, removed, discarded), and the engine actions that create,
//! start, stop, rename and remove them.
//!
//! Pure: each function appends steps to the [`Output`].

use std::time::Duration;

use super::target::Target;
use super::{Input, Output};
use crate::desired::model::Service;
use crate::engine::RunState;
use crate::engine::labels::Role;
use crate::reconcile::action::{Action, ImageSource, short};
use crate::reconcile::observed::ObservedContainer;

pub(super) fn replicas<'a>(input: &Input<'a>) -> Vec<&'a ObservedContainer> {
    input
        .containers
        .iter()
        .copied()
        .filter(|c| c.identity.role == Role::Replica)
        .collect()
}

/// Replica `n`'s containers: the one of the target revision to keep (running first, then the
/// one with the canonical name; other duplicates are removed) and the others.
pub(super) fn split_slot<'a>(
    out: &mut Output,
    svc: &Service,
    mine: &[&'a ObservedContainer],
    target_hash: &str,
    n: u32,
    canonical: &str,
) -> (Option<&'a ObservedContainer>, Vec<&'a ObservedContainer>) {
    let (mut tcs, olds): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) = mine
        .iter()
        .copied()
        .filter(|c| c.identity.number == n)
        .partition(|c| c.identity.spec_hash == target_hash);
    tcs.sort_by_key(|c| (c.state != RunState::Running, c.name != canonical));
    for extra in tcs.iter().skip(1) {
        removal(out, extra, svc, &format!("duplicate of replica {n}"));
    }
    (tcs.first().copied(), olds)
}

/// What becomes of an old container when its replica is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// A stable revision's: stopped and kept (renamed away) until the rollout is over.
    Keep,
    /// Stopped (with its grace period) and removed.
    Remove,
    /// The failed revision's: killed and removed at once.
    Discard,
}

/// Keeps at most one container per kept revision in a slot; removes the rest.
pub(super) fn dedupe_olds<'a>(
    out: &mut Output,
    svc: &Service,
    mut olds: Vec<&'a ObservedContainer>,
    keep: &dyn Fn(&ObservedContainer) -> Fate,
) -> Vec<&'a ObservedContainer> {
    olds.sort_by_key(|c| (c.identity.spec_hash.clone(), c.state != RunState::Running));
    let mut seen = std::collections::BTreeSet::new();
    let mut kept = Vec::new();
    for c in olds {
        if keep(c) == Fate::Keep && !seen.insert(c.identity.spec_hash.clone()) {
            removal(out, c, svc, "duplicate of a kept container");
            continue;
        }
        kept.push(c);
    }
    kept
}

/// Frees the canonical name and stops what must not run beside the candidate: kept
/// containers are stopped and renamed away, others stopped and removed.
pub(super) fn make_room(
    out: &mut Output,
    svc: &Service,
    olds: &[&ObservedContainer],
    canonical: &str,
    keep: &dyn Fn(&ObservedContainer) -> Fate,
    cause: &str,
) {
    for o in olds {
        if keep(o) == Fate::Discard {
            discard(out, o, svc, cause);
        } else if keep(o) == Fate::Keep {
            if matches!(o.state, RunState::Running | RunState::Paused) {
                out.steps
                    .push((stop(o, svc), format!("{cause}: stop (kept for a revert)")));
            }
            if o.name == canonical {
                out.steps.push((
                    rename(o, &retired_name(canonical, o)),
                    format!("{cause}: keep the old container under another name"),
                ));
            }
        } else {
            removal(out, o, svc, cause);
        }
    }
}

/// After a replica passed: the old containers stop (kept ones renamed away), the candidate
/// takes the canonical name.
pub(super) fn swap(
    out: &mut Output,
    svc: &Service,
    tc: Option<&ObservedContainer>,
    olds: &[&ObservedContainer],
    canonical: &str,
    keep: &dyn Fn(&ObservedContainer) -> Fate,
    cause: &str,
) {
    make_room(out, svc, olds, canonical, keep, cause);
    if let Some(c) = tc
        && c.name != canonical
    {
        out.steps
            .push((rename(c, canonical), format!("{cause}: takes the name")));
    }
}

/// The name a kept container gets: `<canonical>-<hash12>` (or its ID for a compose-made one).
pub(super) fn retired_name(canonical: &str, c: &ObservedContainer) -> String {
    let tag = if c.identity.spec_hash.is_empty() {
        short(&c.id)
    } else {
        short(&c.identity.spec_hash)
    };
    format!("{canonical}-{tag}")
}

pub(super) fn create_start(
    out: &mut Output,
    target: &Target,
    input: &Input<'_>,
    n: u32,
    name: &str,
    cause: &str,
) {
    let mut spec = target.spec(input, n);
    spec.name = name.to_string();
    let image = ImageSource::Id(target.image_id.clone().unwrap_or_default());
    out.steps.push((
        Action::Create {
            spec: Box::new(spec),
            image,
        },
        cause.to_string(),
    ));
    out.steps.push((
        Action::Start {
            target: name.to_string(),
            name: name.to_string(),
        },
        cause.to_string(),
    ));
}

/// Removes `pre_deploy` and `smoke` containers (their result is in the record).
pub(super) fn remove_gates(input: &Input<'_>, out: &mut Output, cause: &str) {
    for c in input
        .containers
        .iter()
        .filter(|c| matches!(c.identity.role, Role::Smoke | Role::PreDeploy))
    {
        removal(out, c, input.svc, cause);
    }
}

pub(super) fn start(c: &ObservedContainer) -> Action {
    start_as(c, &c.name)
}

/// Starts `c` (by ID), shown under `name`: the name it has when the step runs, after a
/// rename earlier in the same plan.
pub(super) fn start_as(c: &ObservedContainer, name: &str) -> Action {
    Action::Start {
        target: c.id.clone(),
        name: name.to_string(),
    }
}

pub(super) fn stop(c: &ObservedContainer, svc: &Service) -> Action {
    Action::Stop {
        id: c.id.clone(),
        name: c.name.clone(),
        grace: svc.stop_grace_period.unwrap_or(Duration::from_secs(10)),
        signal: svc.stop_signal.clone(),
    }
}

pub(super) fn rename(c: &ObservedContainer, to: &str) -> Action {
    Action::Rename {
        id: c.id.clone(),
        name: c.name.clone(),
        to: to.to_string(),
    }
}

pub(super) fn removal(out: &mut Output, c: &ObservedContainer, svc: &Service, cause: &str) {
    if out
        .steps
        .iter()
        .any(|(a, _)| matches!(a, Action::Remove { id, .. } if *id == c.id))
    {
        return;
    }
    let stopped = out
        .steps
        .iter()
        .any(|(a, _)| matches!(a, Action::Stop { id, .. } if *id == c.id));
    if matches!(c.state, RunState::Running | RunState::Paused) && !stopped {
        out.steps.push((stop(c, svc), cause.to_string()));
    }
    // The name it has by then: a rename earlier in this round may have changed it.
    let name = out
        .steps
        .iter()
        .rev()
        .find_map(|(a, _)| match a {
            Action::Rename { id, to, .. } if *id == c.id => Some(to.clone()),
            _ => None,
        })
        .unwrap_or_else(|| c.name.clone());
    out.steps.push((
        Action::Remove {
            id: c.id.clone(),
            name,
        },
        cause.to_string(),
    ));
}

/// Removes a container that failed its gate: no grace period (it is not serving, and a
/// revert should not wait for it).
pub(super) fn discard(out: &mut Output, c: &ObservedContainer, svc: &Service, cause: &str) {
    if matches!(c.state, RunState::Running | RunState::Paused) {
        out.steps.push((
            Action::Stop {
                id: c.id.clone(),
                name: c.name.clone(),
                grace: Duration::ZERO,
                signal: None,
            },
            cause.to_string(),
        ));
    }
    removal(out, c, svc, cause);
}
