//! The report a peer's status makes: its `/api/v1/status` (telemetry's [`Status`]) read as
//! the wave decision needs it — per project and service, the revision it wants and whether
//! that revision is ready (since when), not ready yet, or failed there.
//!
//! Pure. The only place that looks inside the status JSON for the fleet; kept apart from
//! `peer` (the vocabulary the rollout sees through `wave`) so that `reconcile` does not come
//! to depend on `telemetry`, which depends on it.

use std::collections::BTreeMap;

use super::peer::{PeerReport, PeerService, PeerState};
use crate::telemetry::status::{Phase, Status};

/// The report a peer's status makes.
pub fn from_status(status: &Status) -> PeerReport {
    let mut projects: BTreeMap<String, BTreeMap<String, PeerService>> = BTreeMap::new();
    for s in &status.services {
        let failed_rollout = s
            .last_rollout
            .as_ref()
            .is_some_and(|r| matches!(r.result.as_str(), "failed" | "reverted"));
        let state = match s.phase {
            Phase::Idle if s.ready >= s.replicas => PeerState::Ready { since: s.since.0 },
            Phase::Reverted | Phase::Degraded => PeerState::Failed,
            Phase::Blocked if failed_rollout => PeerState::Failed,
            _ => PeerState::NotReady,
        };
        projects.entry(s.project.clone()).or_default().insert(
            s.service.clone(),
            PeerService {
                hash: s.desired.hash.clone(),
                state,
            },
        );
    }
    PeerReport { projects }
}
