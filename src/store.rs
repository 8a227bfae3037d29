//! Revision store: berth's small on-disk record of rollouts in `DATA_DIR/state/`, the part of
//! crash safety that container labels cannot carry — revision history, which revision is known
//! good, which image pins exist, which spec hashes are quarantined, which one-shot jobs ran.
//!
//! Two halves. [`ServiceRecord`] and its methods are pure: no IO, no clock reads (time comes in
//! as `now`, unix seconds), so the rollout rules are tested as plain data. [`Store`] is the IO:
//! one JSON file per service, `state/<project>/<service>.json`, each with `"version": 1` at the
//! top level, written atomically (temp file in the same directory, `sync_all`, rename over the
//! target, fsync the directory). A file that does not parse is an error that names the file,
//! never a silent reset: losing the record would lose the pinned previous revision.
//!
//! In the flow: the controller loads every record before a pass and hands them to the planner
//! as `records`; the executor saves a service's record after each transition it makes (begin,
//! ready, stable, failed, reverted, pruned, job finished), before it moves on. One berth per
//! data directory holds the [`crate::lock`], so there are no concurrent writers. The calls are
//! blocking; the files are small.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::ContainerCreate;

/// The on-disk format version this berth reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// How many revisions a service keeps by default (plus the last stable one).
pub const DEFAULT_HISTORY_LIMIT: usize = 5;

/// Longest project or service name stored; keeps `.<service>.json.tmp` within file-name limits.
const MAX_NAME_LEN: usize = 200;

/// berth's own records (see `crate::store`) by (project, service): what labels cannot
/// carry, such as a job run whose container was removed since.
pub type Records = std::collections::BTreeMap<(String, String), ServiceRecord>;

/// What became of a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Being rolled out.
    InProgress,
    /// Rolled out and stable; the revision that runs now.
    Succeeded,
    /// Did not become ready (or its job or smoke gate failed); its hash is quarantined.
    Failed,
    /// Failed, and the previous revision was brought back.
    Reverted,
    /// Replaced by a newer revision (either after running, or abandoned mid-rollout).
    Superseded,
}

/// One rollout of a service: a spec hash and the image ID it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// Monotonic per service, from 1; never reused, even after pruning.
    pub number: u64,
    /// The service's spec hash (see `desired::hash`).
    pub spec_hash: String,
    /// The image reference as written in the compose file.
    pub image_ref: String,
    /// The image ID it resolved to at pull time; the container is created from this.
    pub image_id: String,
    /// Proven good: was ready and held it long enough. A revert only targets stable revisions.
    pub stable: bool,
    /// When the rollout began (unix seconds).
    pub created_at: u64,
    /// When it was last seen ready (unix seconds).
    pub ready_at: Option<u64>,
    /// What became of it.
    pub outcome: Outcome,
    /// Why it failed, in words for `berth history` and events.
    pub reason: Option<String>,
    /// The berth tag pinning its image, e.g. `berth-pin/<project>/<service>:r<N>`.
    pub pin: Option<String>,
    /// The container of replica 1 as berth created it (image = `image_id`): what a revert or a
    /// rollback recreates when the revision's kept container is gone. Holds the service's
    /// environment, which is why state files are written readable by their owner only.
    #[serde(default)]
    pub template: Option<ContainerCreate>,
    /// For a built image (`build:`): the digests of what it was built from, so that the next
    /// build can say what changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::desired::model::BuildParts>,
    /// Why it failed, typed (the label of its events); `None` in records written before
    /// berth kept it, and for revisions that did not fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::reconcile::reason::FailReason>,
    /// berth's policy for it (`deploy.update_config`, `rollback_config`, `x-berth`) as JSON,
    /// so that `reconcile::diff` can say what changed; `None` in records written before
    /// berth kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// The last log lines of its failed candidate or gate (redacted), kept after the
    /// container is gone (`berth logs --revision`, `berth history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// What a rollout is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// Towards the desired state.
    Update,
    /// Back to the last stable revision after revision `failed` failed.
    Revert {
        /// The revision that failed.
        failed: u64,
    },
    /// Operator-requested (`berth rollback`).
    Rollback,
}

/// One replica's progress through the readiness gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// When berth (re)started this replica's candidate (unix seconds): the deadline counts
    /// from here.
    pub started_at: u64,
    /// Since when every readiness condition has held.
    pub ready_since: Option<u64>,
    /// When it passed the gate (or its failure was tolerated).
    pub passed_at: Option<u64>,
    /// It failed and the failure was tolerated (`failure_action: continue`,
    /// `max_failure_ratio`).
    pub failed: bool,
    /// Its candidate was seen running: an exit after this is a failure; one before it (a kept
    /// container whose start a crash interrupted) only means "start it again".
    #[serde(default)]
    pub seen_running: bool,
    /// When berth last looked at its candidate (unix seconds): a restarted berth knows how
    /// long it was not watching. `None` in records written before berth kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_at: Option<u64>,
    /// Seconds since `started_at` berth was not watching: they do not count towards
    /// `progress_deadline`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unwatched: u64,
    /// Port handoff: when berth wrote the proxy routes that send this replica's traffic to its
    /// candidate (unix seconds); the old container drains from then on before it is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A one-shot gate container's run (`x-berth.pre_deploy`, `x-berth.smoke`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRun {
    /// When it was started (unix seconds).
    pub started_at: u64,
    /// Exit code, once it finished.
    pub exit_code: Option<i64>,
}

/// The rollout in progress: moving a service's replicas to one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    /// The revision being rolled out (or reverted/rolled back to).
    pub revision: u64,
    /// Why.
    pub kind: RolloutKind,
    /// When it began (unix seconds).
    pub started_at: u64,
    /// Per replica number.
    #[serde(default)]
    pub slots: std::collections::BTreeMap<u32, Slot>,
    /// `x-berth.pre_deploy` run, before the first replacement.
    #[serde(default)]
    pub pre_deploy: Option<GateRun>,
    /// `x-berth.smoke` run, after every replica is ready.
    #[serde(default)]
    pub smoke: Option<GateRun>,
    /// Stopped after a failure (`failure_action: pause`, or `auto_revert: false`): nothing
    /// more happens until the desired state changes or `berth retry`.
    #[serde(default)]
    pub paused: Option<String>,
}

/// The service could not be brought to a ready revision (the revert target failed too, or
/// self-heal gave up): berth keeps what runs and does nothing more until the desired state
/// changes or `berth retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Degraded {
    /// Since when (unix seconds).
    pub since: u64,
    /// Why, in words.
    pub reason: String,
    /// The desired spec hash when it happened: a change of the desired state ends it.
    pub spec_hash: String,
}

/// What an operator asked for with the CLI. Written only by the CLI (its own file,
/// `<service>.control.json`), read by the controller: the two never write the same file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Control {
    /// `berth hold`: keep the service exactly as it runs (unix seconds since).
    pub hold: Option<u64>,
    /// `berth rollback --to N`: run revision N (through the gate) and hold it there until
    /// `berth release`.
    pub rollback_to: Option<u64>,
    /// `berth retry` (unix seconds): quarantines and degradations older than this are lifted.
    pub retry_at: Option<u64>,
}

/// A spec hash that failed: berth will not roll it out again until the desired state changes
/// or an operator says `berth retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// The failed spec hash.
    pub spec_hash: String,
    /// Since when (unix seconds).
    pub since: u64,
    /// Why the revision failed.
    pub reason: String,
    /// The last lines of the output of the failed step, when it has any (a failed image
    /// build's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// A one-shot job that ran to completion for a spec hash. Kept so the job is not run again
/// for the same revision even if its container is removed by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    /// The job's spec hash.
    pub spec_hash: String,
    /// When it exited (unix seconds).
    pub finished_at: u64,
    /// Its exit code; non-zero blocks its dependents.
    pub exit_code: i64,
    /// Its revision number (`rN`, like a service's): one per spec hash, from 1, never
    /// reused; 0 in records written before berth numbered jobs.
    #[serde(default)]
    pub number: u64,
}

/// A container docker compose made that berth adopted in place: its configuration was what
/// berth would create for `spec_hash`. Docker cannot add berth's labels to a container, so this
/// record is what makes it berth's (see `reconcile::adopt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoption {
    /// The container's engine ID.
    pub container: String,
    /// The spec hash it runs, as berth's own containers carry it in a label.
    pub spec_hash: String,
    /// A one-shot job's finished run (not a replica).
    #[serde(default)]
    pub job: bool,
    /// When it was adopted (unix seconds).
    pub at: u64,
}

/// Everything berth remembers about one service. Revisions are kept oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceRecord {
    /// Revision history, oldest first.
    pub revisions: Vec<Revision>,
    /// Quarantined spec hashes.
    pub quarantined: Vec<Quarantine>,
    /// Completed one-shot job runs, oldest first, at most one per spec hash.
    pub jobs: Vec<JobRun>,
    /// The rollout in progress.
    pub active: Option<Rollout>,
    /// Set when berth gave up on the service (see [`Degraded`]).
    pub degraded: Option<Degraded>,
    /// Self-heal restarts (unix seconds), oldest first, within the self-heal window.
    pub restarts: Vec<u64>,
    /// Containers docker compose made that berth adopted in place.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<Adoption>,
    /// The highest job revision number given so far (jobs only; see [`JobRun::number`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub last_job: u64,
    /// Port handoff: replicas taken out of the proxy's routes outside a rollout (a scale-down),
    /// by their name in the routes, with when (unix seconds): removed once drained.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unrouted: std::collections::BTreeMap<String, u64>,
    /// Operator control, from its own file (never written by the controller).
    #[serde(skip)]
    pub control: Control,
}

/// A transition named a revision the record does not have (a bug, or a hand-edited file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no revision r{number} in this service's record")]
pub struct UnknownRevision {
    /// The revision asked for.
    pub number: u64,
}

impl ServiceRecord {
    /// Starts a rollout of `spec_hash` and returns its revision (`InProgress`, next number).
    ///
    /// Idempotent across a crash: if the newest revision is `InProgress` with the same hash,
    /// that one is returned unchanged. Any other `InProgress` revision is `Superseded`.
    pub fn begin(
        &mut self,
        spec_hash: &str,
        image_ref: &str,
        image_id: &str,
        now: u64,
    ) -> &Revision {
        let reuse = self
            .revisions
            .last()
            .is_some_and(|r| r.outcome == Outcome::InProgress && r.spec_hash == spec_hash);
        if !reuse {
            for r in &mut self.revisions {
                if r.outcome == Outcome::InProgress {
                    r.outcome = Outcome::Superseded;
                }
            }
            let number = self.revisions.last().map_or(1, |r| r.number + 1);
            self.revisions.push(Revision {
                number,
                spec_hash: spec_hash.to_string(),
                image_ref: image_ref.to_string(),
                image_id: image_id.to_string(),
                stable: false,
                created_at: now,
                ready_at: None,
                outcome: Outcome::InProgress,
                reason: None,
                pin: None,
                template: None,
                build: None,
                failure: None,
                policy: None,
                logs: None,
            });
        }
        self.revisions
            .last()
            .expect("a revision was just pushed or found")
    }

    /// The revision numbered `number`.
    pub fn revision(&self, number: u64) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.number == number)
    }

    /// The revision numbered `number`, to change (e.g. to set its `pin`).
    pub fn revision_mut(&mut self, number: u64) -> Option<&mut Revision> {
        self.revisions.iter_mut().find(|r| r.number == number)
    }

    /// The newest revision.
    pub fn newest(&self) -> Option<&Revision> {
        self.revisions.last()
    }

    fn get_mut(&mut self, number: u64) -> Result<&mut Revision, UnknownRevision> {
        self.revision_mut(number).ok_or(UnknownRevision { number })
    }

    /// Records that revision `number` is ready at `now` (the start of its `min_ready` hold).
    pub fn mark_ready(&mut self, number: u64, now: u64) -> Result<(), UnknownRevision> {
        self.get_mut(number)?.ready_at = Some(now);
        Ok(())
    }

    /// Records that revision `number` is stable: it becomes `Succeeded` (the current one) and
    /// a revert target; every other `Succeeded` or `InProgress` revision becomes `Superseded`,
    /// newer ones too (a revision taken up again, see [`Self::reusable`]).
    pub fn mark_stable(&mut self, number: u64) -> Result<(), UnknownRevision> {
        let rev = self.get_mut(number)?;
        rev.stable = true;
        rev.outcome = Outcome::Succeeded;
        for r in self.revisions.iter_mut().filter(|r| r.number != number) {
            if matches!(r.outcome, Outcome::Succeeded | Outcome::InProgress) {
                r.outcome = Outcome::Superseded;
            }
        }
        Ok(())
    }

    /// The revision a rollout of `spec_hash` with image `image_id` takes up again instead of
    /// a new number: the newest one with that spec and image that proved stable and was set
    /// aside since (the spec changed and changed back, an operator's rollback was released).
    /// A revision that failed is not one: trying its spec again is a new revision.
    pub fn reusable(&self, spec_hash: &str, image_id: &str) -> Option<&Revision> {
        self.revisions.iter().rev().find(|r| {
            r.spec_hash == spec_hash
                && r.image_id == image_id
                && r.stable
                && r.outcome == Outcome::Superseded
        })
    }

    /// Takes revision `number` up again for a rollout (see [`Self::reusable`]): it is
    /// `InProgress` again, and any other `InProgress` revision is `Superseded`.
    pub fn resume(&mut self, number: u64) -> Result<(), UnknownRevision> {
        self.get_mut(number)?.outcome = Outcome::InProgress;
        for r in self.revisions.iter_mut().filter(|r| r.number != number) {
            if r.outcome == Outcome::InProgress {
                r.outcome = Outcome::Superseded;
            }
        }
        Ok(())
    }

    /// Records that revision `number` failed for `reason` and quarantines its spec hash.
    /// A failed revision is no longer stable, so it is never a revert target.
    pub fn mark_failed(
        &mut self,
        number: u64,
        reason: &str,
        now: u64,
    ) -> Result<(), UnknownRevision> {
        let rev = self.get_mut(number)?;
        rev.outcome = Outcome::Failed;
        rev.stable = false;
        rev.reason = Some(reason.to_string());
        let spec_hash = rev.spec_hash.clone();
        if !self.is_quarantined(&spec_hash) {
            self.quarantined.push(Quarantine {
                spec_hash,
                since: now,
                reason: reason.to_string(),
                log: None,
            });
        }
        Ok(())
    }

    /// Records that revision `number` runs again after an operator's rollback: it becomes
    /// `Succeeded` and every other `Succeeded` or `InProgress` revision `Superseded`.
    pub fn mark_current(&mut self, number: u64) -> Result<(), UnknownRevision> {
        self.get_mut(number)?;
        for r in &mut self.revisions {
            if r.number == number {
                r.outcome = Outcome::Succeeded;
            } else if matches!(r.outcome, Outcome::Succeeded | Outcome::InProgress) {
                r.outcome = Outcome::Superseded;
            }
        }
        Ok(())
    }

    /// The revision that runs now: the newest `Succeeded` one.
    pub fn current(&self) -> Option<&Revision> {
        self.revisions
            .iter()
            .rev()
            .find(|r| r.outcome == Outcome::Succeeded)
    }

    /// Records that revision `number`'s image is gone from the engine (pruned with its pin):
    /// nothing can be created from it, so it is no longer current nor a revert target, and its
    /// pin tag went with the image. The service's reference is resolved again as a new
    /// revision.
    pub fn mark_image_lost(&mut self, number: u64, reason: String) -> Result<(), UnknownRevision> {
        let r = self.get_mut(number)?;
        r.outcome = Outcome::Superseded;
        r.stable = false;
        r.pin = None;
        r.reason = Some(reason);
        Ok(())
    }

    /// Records that failed revision `number` was reverted: the previous one runs again.
    pub fn mark_reverted(&mut self, number: u64) -> Result<(), UnknownRevision> {
        self.get_mut(number)?.outcome = Outcome::Reverted;
        Ok(())
    }

    /// The newest stable revision.
    pub fn last_stable(&self) -> Option<&Revision> {
        self.revisions.iter().rev().find(|r| r.stable)
    }

    /// Where to revert to after `failed_hash` failed: the current revision (what ran before)
    /// when it is stable, else the newest stable revision, in both cases with a different spec
    /// hash. Never a revision identical to the one that failed.
    pub fn revert_target(&self, failed_hash: &str) -> Option<&Revision> {
        self.current()
            .into_iter()
            .chain(self.revisions.iter().rev())
            .find(|r| r.stable && r.spec_hash != failed_hash)
    }

    /// Whether `spec_hash` is quarantined.
    pub fn is_quarantined(&self, spec_hash: &str) -> bool {
        self.quarantined.iter().any(|q| q.spec_hash == spec_hash)
    }

    /// Lifts the quarantine of `spec_hash` (`berth retry`); returns whether there was one.
    pub fn retry(&mut self, spec_hash: &str) -> bool {
        let before = self.quarantined.len();
        self.quarantined.retain(|q| q.spec_hash != spec_hash);
        self.quarantined.len() != before
    }

    /// The desired state now has `current_hash`: quarantines of every other hash are lifted
    /// (and returned, for the event). A quarantine of `current_hash` itself stays.
    pub fn clear_quarantine_unless(&mut self, current_hash: &str) -> Vec<Quarantine> {
        let (keep, lifted) = std::mem::take(&mut self.quarantined)
            .into_iter()
            .partition(|q| q.spec_hash == current_hash);
        self.quarantined = keep;
        lifted
    }

    /// Drops old history: keeps the newest `limit` revisions (at least the newest one, so
    /// numbers stay monotonic) plus the last stable one, and returns the removed ones, oldest
    /// first, so the caller can unpin their images and remove their stopped containers.
    /// Job runs beyond the newest `limit` (at least one) are dropped too.
    pub fn prune_history(&mut self, limit: usize) -> Vec<Revision> {
        let limit = limit.max(1);
        let keep_stable = self.last_stable().map(|r| r.number);
        // A revision taken up again may be older than the limit and run now.
        let keep_current = self.current().map(|r| r.number);
        let first_recent = self.revisions.len().saturating_sub(limit);
        let (kept, removed) = std::mem::take(&mut self.revisions)
            .into_iter()
            .enumerate()
            .partition::<Vec<_>, _>(|(i, r)| {
                *i >= first_recent
                    || Some(r.number) == keep_stable
                    || Some(r.number) == keep_current
            });
        self.revisions = kept.into_iter().map(|(_, r)| r).collect();
        let extra_jobs = self.jobs.len().saturating_sub(limit);
        self.jobs.drain(..extra_jobs);
        removed.into_iter().map(|(_, r)| r).collect()
    }

    /// Records that the job with `spec_hash` ran to completion with `exit_code` at `now`
    /// (replacing an earlier run of the same hash).
    pub fn record_job(&mut self, spec_hash: &str, exit_code: i64, now: u64) {
        let number = self.job_number(spec_hash);
        self.last_job = self.last_job.max(number);
        self.jobs.retain(|j| j.spec_hash != spec_hash);
        self.jobs.push(JobRun {
            spec_hash: spec_hash.to_string(),
            finished_at: now,
            exit_code,
            number,
        });
    }

    /// The revision number of the job with `spec_hash`: its recorded run's, or the next one
    /// (what its run gets when it is recorded).
    pub fn job_number(&self, spec_hash: &str) -> u64 {
        self.job_run(spec_hash)
            .map(|j| j.number)
            .filter(|n| *n > 0)
            .unwrap_or(self.last_job + 1)
    }

    /// Whether the job with `spec_hash` already ran to completion, whatever its exit code:
    /// it is not run again for this revision. See [`Self::job_run`] for how it ended.
    pub fn job_done(&self, spec_hash: &str) -> bool {
        self.job_run(spec_hash).is_some()
    }

    /// The completed run of the job with `spec_hash`.
    pub fn job_run(&self, spec_hash: &str) -> Option<&JobRun> {
        self.jobs.iter().find(|j| j.spec_hash == spec_hash)
    }
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done, e.g. `read`, `rename into place`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A state file exists but does not parse.
    #[error(
        "failed to read berth state {path}: the file is corrupt; berth will not reset it on its own — repair it, or move it aside to start this service's revision history afresh (its pins and quarantines are then forgotten)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A state file of a format this berth does not know (written by a newer berth?).
    #[error(
        "failed to read berth state {path}: format version {found} is not supported (this berth reads version {FORMAT_VERSION}); was it written by a newer berth?"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: u64,
    },
    /// A record could not be encoded.
    #[error("failed to encode berth state for {path}")]
    Encode {
        /// The file it was for.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A project or service name that is not safe as a file name.
    #[error(
        "failed to locate berth state for {kind} {name:?}: not a valid {kind} name ({allowed})"
    )]
    InvalidName {
        /// `project` or `service`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What is allowed.
        allowed: &'static str,
    },
}

#[derive(Serialize)]
struct FileOut<'a> {
    version: u32,
    #[serde(flatten)]
    record: &'a ServiceRecord,
}

#[derive(Deserialize)]
struct Header {
    version: u64,
}

/// The revision store of one data directory: `DATA_DIR/state/`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens the store under `data_dir`, creating `state/` if needed.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let dir = data_dir.join("state");
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            op: "create directory",
            path: dir.clone(),
            source,
        })?;
        Ok(Store { dir })
    }

    /// The `state/` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `project`/`service`'s record, after checking both names are path-safe.
    pub fn path(&self, project: &str, service: &str) -> Result<PathBuf, StoreError> {
        check_project(project)?;
        check_service(service)?;
        Ok(self.dir.join(project).join(format!("{service}.json")))
    }

    /// Loads `project`/`service`'s record, with the operator's [`Control`] from its own file;
    /// a missing file is an empty record. Leftover temp files from an interrupted save are not
    /// read.
    pub fn load(&self, project: &str, service: &str) -> Result<ServiceRecord, StoreError> {
        let mut record = self.load_record(project, service)?;
        record.control = self.load_control(project, service)?;
        Ok(record)
    }

    /// The operator's control file of `project`/`service` (empty when there is none).
    pub fn load_control(&self, project: &str, service: &str) -> Result<Control, StoreError> {
        let path = self.control_path(project, service)?;
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Corrupt { path, source }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Control::default()),
            Err(source) => Err(StoreError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// Saves the operator's control file (the CLI's; the controller never writes it).
    pub fn save_control(
        &self,
        project: &str,
        service: &str,
        control: &Control,
    ) -> Result<(), StoreError> {
        let path = self.control_path(project, service)?;
        let mut bytes =
            serde_json::to_vec_pretty(control).map_err(|source| StoreError::Encode {
                path: path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        self.write_atomic(project, &path, &bytes)
    }

    /// The control file of `project`/`service`.
    pub fn control_path(&self, project: &str, service: &str) -> Result<PathBuf, StoreError> {
        check_project(project)?;
        check_service(service)?;
        Ok(self
            .dir
            .join(project)
            .join(format!("{service}.control.json")))
    }

    /// Forgets `project`/`service`: its record and control files go (missing ones are not an
    /// error), and the project's directory once it is empty (`berth prune PROJECT`).
    pub fn forget(&self, project: &str, service: &str) -> Result<(), StoreError> {
        for path in [
            self.path(project, service)?,
            self.control_path(project, service)?,
        ] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        op: "remove",
                        path,
                        source,
                    });
                }
            }
        }
        // Leftover temp files keep it: then the directory stays, which is harmless.
        let _ = fs::remove_dir(self.dir.join(project));
        Ok(())
    }

    /// The services that have a record, as (project, service), sorted.
    pub fn services(&self) -> Result<Vec<(String, String)>, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io {
                op: "list",
                path,
                source,
            }
        };
        let mut out = Vec::new();
        for p in fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let p = p.map_err(io(&self.dir))?;
            let Some(project) = p.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !p.path().is_dir() {
                continue;
            }
            for f in fs::read_dir(p.path()).map_err(io(&p.path()))? {
                let f = f.map_err(io(&p.path()))?;
                let name = f.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Some(service) = name.strip_suffix(".json")
                    && !service.starts_with('.')
                    && !service.ends_with(".control")
                {
                    out.push((project.clone(), service.to_string()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn load_record(&self, project: &str, service: &str) -> Result<ServiceRecord, StoreError> {
        let path = self.path(project, service)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ServiceRecord::default()),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        let header: Header = match serde_json::from_slice(&bytes) {
            Ok(header) => header,
            Err(source) => return Err(StoreError::Corrupt { path, source }),
        };
        if header.version != u64::from(FORMAT_VERSION) {
            return Err(StoreError::UnsupportedVersion {
                path,
                found: header.version,
            });
        }
        // Through a `Value` rather than `#[serde(flatten)]`: flattening buffers the content in
        // a form that cannot turn the string keys of `slots` back into numbers.
        let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(source) => return Err(StoreError::Corrupt { path, source }),
        };
        if let Some(map) = value.as_object_mut() {
            map.remove("version");
        }
        serde_json::from_value(value).map_err(|source| StoreError::Corrupt { path, source })
    }

    /// Saves `project`/`service`'s record atomically: a crash leaves either the old file or the
    /// new one, never a mix. A temp file left by an earlier crash is replaced and renamed away.
    pub fn save(
        &self,
        project: &str,
        service: &str,
        record: &ServiceRecord,
    ) -> Result<(), StoreError> {
        let path = self.path(project, service)?;
        let mut bytes = serde_json::to_vec_pretty(&FileOut {
            version: FORMAT_VERSION,
            record,
        })
        .map_err(|source| StoreError::Encode {
            path: path.clone(),
            source,
        })?;
        bytes.push(b'\n');
        self.write_atomic(project, &path, &bytes)
    }

    /// Writes `bytes` to `path` (in `project`'s directory) atomically, readable by the owner
    /// only: records hold container templates, environment included.
    fn write_atomic(&self, project: &str, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let project_dir = self.dir.join(project);
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record");
        let tmp = project_dir.join(format!(".{file_name}.tmp"));
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { op, path, source }
        };
        if !project_dir.is_dir() {
            fs::create_dir_all(&project_dir).map_err(io("create directory", &project_dir))?;
            sync_dir(&self.dir)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        file.write_all(bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        sync_dir(&project_dir)
    }
}

/// Makes a directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        op: "sync directory",
        path: dir.to_path_buf(),
        source,
    };
    File::open(dir).map_err(io)?.sync_all().map_err(io)
}

/// Compose project names: `[a-z0-9][a-z0-9_-]*`.
fn check_project(name: &str) -> Result<(), StoreError> {
    let ok = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            kind: "project",
            name: name.to_string(),
            allowed: "[a-z0-9][a-z0-9_-]*, at most 200 characters",
        })
    }
}

/// Compose service names: `[a-zA-Z0-9._-]+`, but not `.` or `..`.
fn check_service(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            kind: "service",
            name: name.to_string(),
            allowed: "[a-zA-Z0-9._-]+ other than . and .., at most 200 characters",
        })
    }
}

#[cfg(test)]
mod tests;
