//! Image pins: a revision's image is tagged `berth-pin/<project>/<service>:r<N>` so that a
//! revert finds it even after `docker image prune`.
//!
//! Pure: decides `Pin` steps and records the pin on the revision; `execute` makes them.

use super::{Input, Output};
use crate::reconcile::action::Action;
use crate::store::ServiceRecord;

/// Pins revision `n`'s image with a berth tag (idempotent on the engine).
pub(super) fn pin(input: &Input<'_>, rec: &mut ServiceRecord, n: u64, out: &mut Output) {
    let Some(r) = rec.revision_mut(n) else { return };
    if r.pin.is_some() || r.image_id.is_empty() {
        return;
    }
    let (repo, tag) = pin_reference(&input.project.name, &input.svc.name, n);
    r.pin = Some(format!("{repo}:{tag}"));
    out.steps.push((
        Action::Pin {
            image_id: r.image_id.clone(),
            repo,
            tag,
        },
        format!("keep r{n}'s image for a revert (docker image prune cannot remove it)"),
    ));
}

/// What every pin's repository starts with (the planner sweeps pin tags no record owns).
pub const PIN_REPOSITORY_PREFIX: &str = "berth-pin/";

/// `berth-pin/<project>/<service>` and `r<N>`; the service name lower-cased and reduced to
/// what a repository path allows.
pub fn pin_reference(project: &str, service: &str, n: u64) -> (String, String) {
    let svc: String = service
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let svc = svc.trim_matches('-');
    let svc = if svc.is_empty() { "service" } else { svc };
    (
        format!("{PIN_REPOSITORY_PREFIX}{project}/{svc}"),
        format!("r{n}"),
    )
}
