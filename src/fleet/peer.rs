//! What a peer reports, as the wave decision reads it: per project and service, the revision
//! it wants (the spec hash its status shows) and whether that revision is ready (since when),
//! not ready yet, or failed there; plus this host's own revision of a project, in the same
//! terms.
//!
//! Pure vocabulary: `report` builds a [`PeerReport`] from a peer's `/api/v1/status` (fetched by
//! `peers`); [`revision_of`] reads the desired state. Nothing here imports the status model, so
//! the rollout, which reads `wave`'s decision, does not depend on telemetry.

use std::collections::BTreeMap;

use crate::desired::model::Project;
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

/// A peer as this host sees it this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerView {
    /// It could not be asked, or did not answer with a status (the error, for people).
    Unreachable(String),
    /// It answered.
    Answered(PeerReport),
}
