//! Where a service is going this round: the desired revision, the stable one a failure
//! reverts to, or the one an operator rolled back to — and whether it already runs there.
//!
//! Pure; the driver (`mod.rs`) asks it once per pass.

use super::{Hold, Input, Output};
use crate::engine::labels::Role;
use crate::engine::{ContainerCreate, labels};
use crate::reconcile::action::short;
use crate::reconcile::container_spec::{canonical_name, container_create};
use crate::reconcile::observed::normalize_reference;
use crate::reconcile::reason::{BlockReason, HeldReason};
use crate::store::{Outcome, Revision, RolloutKind, ServiceRecord};

/// Where the service is going this round.
pub(super) struct Target {
    pub(super) hash: String,
    pub(super) kind: RolloutKind,
    /// The recorded revision, once there is one.
    pub(super) revision: Option<u64>,
    /// The image ID, when known.
    pub(super) image_id: Option<String>,
    /// Stored container template (revert, rollback); `None`: built from the desired service.
    pub(super) template: Option<ContainerCreate>,
}

impl Target {
    pub(super) fn spec(&self, input: &Input<'_>, n: u32) -> ContainerCreate {
        match &self.template {
            Some(t) => renumber(t, input, n),
            None => container_create(
                input.project,
                input.svc,
                n,
                Role::Replica,
                self.image_id.as_deref().unwrap_or_default(),
            ),
        }
    }

    pub(super) fn canonical(&self, input: &Input<'_>, n: u32) -> String {
        match &self.template {
            Some(t) if n == 1 => t.name.clone(),
            _ => canonical_name(input.project, input.svc, n),
        }
    }
}

/// The stored template of replica 1, as replica `n`.
pub(super) fn renumber(t: &ContainerCreate, input: &Input<'_>, n: u32) -> ContainerCreate {
    let mut spec = t.clone();
    if n != 1 {
        spec.name = labels::container_name(&input.project.name, &input.svc.name, n);
    }
    spec.labels
        .insert(labels::compose::NUMBER.into(), n.to_string());
    spec
}

/// Decides the target revision; `None` (with a hold) when there is nothing to aim for.
pub(super) fn target(input: &Input<'_>, rec: &ServiceRecord, out: &mut Output) -> Option<Target> {
    let d = &input.svc.spec_hash;
    let stored = |r: &Revision, kind| Target {
        hash: r.spec_hash.clone(),
        kind,
        revision: Some(r.number),
        image_id: Some(r.image_id.clone()),
        template: r.template.clone(),
    };
    if let Some(n) = rec.control.rollback_to {
        return match rec.revision(n) {
            Some(r) => {
                out.holds.push(Hold::Held(HeldReason::RolledBack(n)));
                Some(stored(r, RolloutKind::Rollback))
            }
            None => {
                out.holds
                    .push(Hold::Blocked(BlockReason::RollbackMissing { to: n }));
                None
            }
        };
    }
    if rec.is_quarantined(d) {
        if let Some(a) = &rec.active
            && let (RolloutKind::Revert { .. }, Some(r)) = (a.kind, rec.revision(a.revision))
        {
            return Some(stored(r, a.kind));
        }
        let failed = rec
            .revisions
            .iter()
            .rev()
            .find(|r| r.spec_hash == *d)
            .map_or(0, |r| r.number);
        return match rec.revert_target(d) {
            Some(p) => Some(stored(p, RolloutKind::Revert { failed })),
            None => {
                out.holds.push(Hold::Blocked(BlockReason::NoRevertTarget {
                    revision: short(d).to_string(),
                }));
                None
            }
        };
    }
    let revision = rec
        .active
        .as_ref()
        .and_then(|a| rec.revision(a.revision))
        .filter(|r| r.spec_hash == *d && r.outcome == Outcome::InProgress)
        .or_else(|| rec.current().filter(|r| r.spec_hash == *d))
        // A spec and image that already ran as a stable revision (the spec changed and
        // changed back, an operator's rollback was released) roll out again under that
        // revision's number: a new number means a new spec or image. Known once the image
        // list is at hand (`begin` asks for it first).
        .or_else(|| {
            let reference = normalize_reference(input.svc.image.as_deref()?);
            rec.reusable(d, input.images?.get(&reference)?)
        });
    Some(Target {
        hash: d.clone(),
        kind: RolloutKind::Update,
        revision: revision.map(|r| r.number),
        image_id: revision.map(|r| r.image_id.clone()),
        template: None,
    })
}

/// The target runs as the current revision: no rollout, only self-heal.
pub(super) fn established(rec: &ServiceRecord, target: &Target) -> bool {
    match (target.kind, target.revision) {
        (_, None) => false,
        (RolloutKind::Update, Some(n)) | (RolloutKind::Rollback, Some(n)) => {
            rec.current().is_some_and(|c| c.number == n)
        }
        // A revert is over once it is no longer active (the failed revision's record says
        // Reverted); the target stays the current revision throughout.
        (RolloutKind::Revert { failed }, Some(n)) => {
            rec.current().is_some_and(|c| c.number == n)
                && rec
                    .revision(failed)
                    .is_none_or(|r| r.outcome != Outcome::Failed)
        }
    }
}
