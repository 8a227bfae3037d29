//! What a peer reports, as the wave decision reads it: per project and service, the revision
//! it wants (the spec hash its status shows) and whether that revision is ready (since when),
//! not ready yet, or failed there; plus this host's own revision of a project, in the same
//! terms.
//!
//! Pure: built from the peer's `/api/v1/status` ([`Status`], fetched by `peers`) and from the
//! desired state. No other module looks inside the status JSON for the fleet.

use std::collections::BTreeMap;

use crate::desired::model::Project;
use crate::telemetry::status::{Phase, Status};
use crate::util::id::short;

/// A project's revision as hosts compare it: service name → spec hash (first 12 hex digits,
/// as statuses show it).
pub type ProjectRevision = BTreeMap<String, String>;

/// The revision of `project` this host wants.
pub fn revision_of(project: &Project) -> ProjectRevision {
    project
        .services
        .values()
        .map(|s| (s.name.clone(), short(&s.spec_hash).to_string()))
        .collect()
}

/// How a peer's service stands with the revision it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Runs it, every replica ready, nothing to do (phase Idle) since then (unix seconds).
    Ready {
        /// Since when.
        since: u64,
    },
    /// Not there yet: rolling out, waiting, held, fetching an image.
    NotReady,
    /// It failed there: reverted, quarantined with nothing to revert to, or degraded.
    Failed,
}

/// One service on a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerService {
    /// The spec hash it wants (12 hex digits).
    pub hash: String,
    /// How that revision stands there.
    pub state: PeerState,
}

/// What one peer answered: its projects' services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// Project → service → how it stands.
    pub projects: BTreeMap<String, BTreeMap<String, PeerService>>,
}

impl PeerReport {
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
}

/// A peer as this host sees it this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerView {
    /// It could not be asked, or did not answer with a status (the error, for people).
    Unreachable(String),
    /// It answered.
    Answered(PeerReport),
}
