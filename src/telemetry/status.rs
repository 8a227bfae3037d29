//! The status model: per project/service what is desired, what runs, how much of it is ready,
//! the phase it is in and why, Kubernetes-style conditions, the last rollout; plus the source's
//! revision and validity with its diagnostics.
//!
//! Pure: [`build`] takes what one round saw ([`StatusInput`]: desired, observed, records, plan,
//! load diagnostics, `now`) and the previous [`Status`] (so that phase and condition transition
//! times survive across rounds) and returns the new one. The controller's telemetry builds it
//! after every round; `berth status` without a running controller builds the same model from
//! one observe + plan. [`Status`] serialises to the `/api/v1/status` JSON and renders as the
//! table `berth status` prints ([`Status::table`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::{Timestamp, age};
use crate::desired::model::{Project, Service};
use crate::desired::{DesiredState, Diagnostics};
use crate::engine::labels::Role;
use crate::engine::{Health, RunState};
use crate::reconcile::action::Action;
use crate::reconcile::execute::Failure;
use crate::reconcile::observed::{ObservedContainer, ObservedState};
use crate::reconcile::plan::{Note, Plan, Records};
use crate::reconcile::probe::ProbeStatus;
use crate::reconcile::reason::{BlockReason, WaitReason};
use crate::reconcile::rollout::{self, HeldBy};
use crate::store::{Outcome, RolloutKind, ServiceRecord};
use crate::util::id::short;

/// Most diagnostics carried in a status (the rest are counted).
const MAX_DIAGNOSTICS: usize = 50;

/// Where the desired state comes from (set by whoever runs the source: a directory, a git
/// checkout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `dir` or `git`.
    pub kind: String,
    /// The directory, or the repository URL (without credentials).
    pub location: String,
    /// The revision applied (a commit); `None`: a fingerprint of the desired state is used.
    pub revision: Option<String>,
}

/// The phase of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Runs the desired revision, all replicas ready, nothing to do.
    Idle,
    /// A rollout, a dependency wait, or a readiness wait is under way.
    Progressing,
    /// The image the desired revision needs could not be fetched this round (a pull that
    /// keeps failing): berth retries with backoff; the reason carries the engine's error.
    Failing,
    /// The desired revision failed and the previous one runs again.
    Reverted,
    /// berth gave up (the revert failed too, or self-heal hit its limit): needs a human.
    Degraded,
    /// Held by `x-berth.hold`, `berth hold` or `berth rollback`.
    Held,
    /// Nothing changes until the desired state does (a failed job, a paused rollout, a
    /// failed revision with nothing to revert to, a missing external object).
    Blocked,
}

impl Phase {
    /// The name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "Idle",
            Phase::Progressing => "Progressing",
            Phase::Failing => "Failing",
            Phase::Reverted => "Reverted",
            Phase::Degraded => "Degraded",
            Phase::Held => "Held",
            Phase::Blocked => "Blocked",
        }
    }
}

/// A Kubernetes-style condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// `Ready`, `Progressing`, `Degraded` (services); `DesiredStateValid`, `EngineReachable`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word.
    pub reason: String,
    /// In words.
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: Timestamp,
}

/// What is desired of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredRevision {
    /// berth's spec hash, first 12 hex digits.
    pub hash: String,
    /// The image as written.
    pub image: String,
    /// Its revision number, once a rollout of it began.
    pub revision: Option<u64>,
}

/// A revision that has running containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningRevision {
    /// Revision number (`None`: not in berth's records, e.g. a `docker compose` container).
    pub revision: Option<u64>,
    /// Spec hash, first 12 hex digits (empty for containers compose made).
    pub hash: String,
    /// The image as written when it was rolled out, when known.
    pub image: Option<String>,
    /// Running containers.
    pub containers: u32,
    /// Of those, ready.
    pub ready: u32,
}

/// The newest rollout of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRollout {
    /// Revision number.
    pub revision: u64,
    /// `in_progress`, `succeeded`, `failed`, `reverted` or `superseded`.
    pub result: String,
    /// When it began.
    pub started_at: Timestamp,
    /// Why it failed.
    pub reason: Option<String>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// A one-shot job (ready = ran to completion with exit 0).
    pub job: bool,
    /// What is desired.
    pub desired: DesiredRevision,
    /// What runs.
    pub running: Vec<RunningRevision>,
    /// Ready replicas (jobs: 1 when the current revision completed with exit 0).
    pub ready: u32,
    /// Desired replicas (jobs: 1).
    pub replicas: u32,
    /// Phase.
    pub phase: Phase,
    /// Since when the phase holds.
    pub since: Timestamp,
    /// Why (empty when Idle).
    pub reason: String,
    /// Conditions: Ready, Progressing, Degraded.
    pub conditions: Vec<Condition>,
    /// The newest rollout.
    pub last_rollout: Option<LastRollout>,
    /// `berth run`'s last image update check (`x-berth.update`); absent without a policy,
    /// before the first check, and in a status `berth status DIR` builds itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStatus>,
    /// Port handoff (`x-berth.handoff`): per published port, who receives traffic and what
    /// drains (`telemetry::traffic` joins it in when berth's HTTP server answers); absent for
    /// a service without handoff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<PortTraffic>,
    /// The fleet's wave gate on this service's new revision (waiting for an earlier wave, or
    /// held because it failed there); absent outside a fleet with waves and when it may go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<WaveGate>,
}

/// One handed-off port of a service: the routes berth wrote and what its proxy said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortTraffic {
    /// The proxy's listener: `project/service:published`.
    pub listener: String,
    /// The replicas (container names) that receive new requests or connections.
    pub routed: Vec<String>,
    /// The proxy answered berth's look (false: the counts below are unknown, and `routed`
    /// is what berth asked for).
    pub proxy_up: bool,
    /// Requests (http) or connections (tcp) in progress on the routed replicas.
    pub active: u64,
    /// Replicas switched away that still finish requests or connections.
    pub draining: Vec<Draining>,
}

/// A replica switched away from that still has work in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draining {
    /// Its container name.
    pub replica: String,
    /// Requests (http) or connections (tcp) it still finishes.
    pub connections: u64,
}

/// The fleet's wave gate on a service, as its status shows it (`fleet::wave`'s decision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveGate {
    /// `waiting` (an earlier wave has not taken the revision yet) or `held` (it failed there).
    pub state: String,
    /// Stable label of the reason (`wave_soaking`, `wave_peer_unreachable`,
    /// `wave_earlier_not_ready`, `wave_failed_earlier`).
    pub reason: String,
    /// The earlier-wave host the gate waits for or failed on.
    pub host: String,
    /// The reason, for people.
    pub message: String,
}

/// A service's last image update check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// The policy: `semver`, `digest` or `pattern`.
    pub policy: String,
    /// `up_to_date`, `pending` (found and not written: writing it failed, see `message`),
    /// `applied` (written or pushed, the source has not rolled it in yet), `skipped` (waits: see `reason`) or `failed` (the
    /// check failed: see `message`).
    pub state: String,
    /// When the check ended.
    pub checked_at: Timestamp,
    /// The image the source has (`pending`, `applied`, `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The image found (`pending`, `applied`, `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Why a `skipped` update waits: `outside_window`, `too_new`, `unknown_age`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// In words: why it waits, where it was written, why writing or the check failed.
    pub message: String,
}

/// One diagnostic of the last load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDiagnostic {
    /// `file:line:col`.
    pub location: String,
    /// `error` or `warning`.
    pub severity: String,
    /// What is wrong.
    pub message: String,
}

/// The desired-state source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// `dir` or `git`.
    pub kind: String,
    /// Directory or repository.
    pub location: String,
    /// The revision applied: a commit, or a fingerprint of the desired state.
    pub revision: Option<String>,
    /// The last load was valid (when not, the last good state keeps being applied).
    pub valid: bool,
    /// Errors in the last load.
    pub errors: usize,
    /// Warnings in the last load.
    pub warnings: usize,
    /// The diagnostics (at most 50).
    pub diagnostics: Vec<SourceDiagnostic>,
}

/// The last reconcile round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundStatus {
    /// Round number, from 1.
    pub number: u64,
    /// When it ended.
    pub at: Timestamp,
    /// How long it took.
    pub duration_ms: u64,
    /// `settled`, `progressing`, `failed`, `error` or `no_desired_state`.
    pub result: String,
    /// What went wrong, for `error`.
    pub error: Option<String>,
}

/// Containers with a managed project's compose labels that berth did not create and leaves
/// alone (a service not in the project, a replica beyond `replicas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotOurs {
    /// Project.
    pub project: String,
    /// Service, as their labels say.
    pub service: String,
    /// Their names.
    pub containers: Vec<String>,
}

/// A project that runs but is no longer desired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    /// Project.
    pub project: String,
    /// Its containers.
    pub containers: usize,
}

/// Everything `berth status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// When this status was built.
    pub generated_at: Timestamp,
    /// The round it comes from (`None`: built by `berth status` itself).
    pub round: Option<RoundStatus>,
    /// The source.
    pub source: SourceStatus,
    /// Whether the engine answered at the last round (`None`: not asked yet).
    pub engine_reachable: Option<bool>,
    /// DesiredStateValid, EngineReachable.
    pub conditions: Vec<Condition>,
    /// Desired services, by project and name.
    pub services: Vec<ServiceStatus>,
    /// Projects no longer desired that still run.
    pub orphans: Vec<Orphan>,
    /// Containers of managed projects that berth did not create: left alone.
    #[serde(default)]
    pub not_ours: Vec<NotOurs>,
    /// This host's name in the fleet's hosts file (`--host` or the machine's name); absent
    /// without a hosts file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// How a round ended, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundInfo {
    /// Round number.
    pub number: u64,
    /// How long it took.
    pub duration: Duration,
    /// `settled`, `progressing`, `failed`, `error`, `no_desired_state`.
    pub result: &'static str,
    /// The error of an `error` round.
    pub error: Option<String>,
}

/// What a status is built from.
pub struct StatusInput<'a> {
    /// Now (unix seconds).
    pub now: u64,
    /// The round (`None` for `berth status` without a controller).
    pub round: Option<RoundInfo>,
    /// Where the desired state comes from.
    pub source: &'a SourceInfo,
    /// The last load's diagnostics.
    pub diagnostics: &'a Diagnostics,
    /// The desired state applied (the last good one).
    pub desired: Option<&'a DesiredState>,
    /// What the engine showed (`None`: not reached this round).
    pub observed: Option<&'a ObservedState>,
    /// berth's records.
    pub records: Option<&'a Records>,
    /// The round's plan.
    pub plan: Option<&'a Plan>,
    /// The round's failed steps (a failed pull makes its service `Failing`).
    pub failures: &'a [Failure],
    /// berth's prober runs (false for `berth status` without a controller: a service's
    /// readiness probe then counts as passing when it has no verdict).
    pub probes_tracked: bool,
}

/// Builds the status; `previous` keeps phase and condition transition times.
pub fn build(input: &StatusInput<'_>, previous: Option<&Status>) -> Status {
    let now = input.now;
    let valid = !input.diagnostics.has_errors();
    let revision = input
        .source
        .revision
        .clone()
        .or_else(|| input.desired.map(fingerprint));
    let diagnostics = input
        .diagnostics
        .sorted()
        .into_iter()
        .take(MAX_DIAGNOSTICS)
        .map(|d| SourceDiagnostic {
            location: d.loc.to_string(),
            severity: d.severity.to_string(),
            message: d.message.clone(),
        })
        .collect();
    let source = SourceStatus {
        kind: input.source.kind.clone(),
        location: input.source.location.clone(),
        revision,
        valid,
        errors: input.diagnostics.errors(),
        warnings: input.diagnostics.warnings(),
        diagnostics,
    };
    let engine_reachable = match (input.observed, &input.round) {
        (Some(_), _) => Some(true),
        (None, Some(r)) if r.result == "error" && input.desired.is_some() => Some(false),
        (None, _) => previous.and_then(|p| p.engine_reachable),
    };
    let prev_top = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    let (valid_reason, valid_message) = if valid {
        (
            "Loaded",
            "the desired state loaded without errors".to_string(),
        )
    } else {
        (
            "Invalid",
            format!(
                "{} error(s); the last good desired state keeps being applied",
                input.diagnostics.errors()
            ),
        )
    };
    let mut conditions = vec![condition(
        prev_top,
        "DesiredStateValid",
        Some(valid),
        valid_reason,
        valid_message,
        now,
    )];
    let engine_error = input.round.as_ref().and_then(|r| r.error.clone());
    conditions.push(condition(
        prev_top,
        "EngineReachable",
        engine_reachable,
        match engine_reachable {
            Some(true) => "Reachable",
            Some(false) => "ReconcileError",
            None => "NotAsked",
        },
        match engine_reachable {
            Some(true) => "the engine answered at the last round".to_string(),
            Some(false) => engine_error.unwrap_or_default(),
            None => "no round has reached the engine yet".to_string(),
        },
        now,
    ));

    let services = match (input.desired, input.observed) {
        (Some(desired), Some(observed)) => {
            let empty = Records::new();
            let records = input.records.unwrap_or(&empty);
            let empty_plan = Plan::default();
            let plan = input.plan.unwrap_or(&empty_plan);
            let ctx = Ctx {
                now,
                observed,
                records,
                plan,
                failures: input.failures,
                probes_tracked: input.probes_tracked,
            };
            let prev: BTreeMap<(&str, &str), &ServiceStatus> = previous
                .map(|p| {
                    p.services
                        .iter()
                        .map(|s| ((s.project.as_str(), s.service.as_str()), s))
                        .collect()
                })
                .unwrap_or_default();
            desired
                .projects
                .values()
                .flat_map(|p| p.services.values().map(move |s| (p, s)))
                .map(|(p, s)| {
                    ctx.service(p, s, prev.get(&(p.name.as_str(), s.name.as_str())).copied())
                })
                .collect()
        }
        // The engine was not reached: what was known stays.
        _ => previous.map(|p| p.services.clone()).unwrap_or_default(),
    };
    let orphans = match input.plan {
        Some(plan) => plan
            .notes
            .iter()
            .filter_map(|n| match n {
                Note::Orphan {
                    project,
                    containers,
                } => Some(Orphan {
                    project: project.clone(),
                    containers: *containers,
                }),
                _ => None,
            })
            .collect(),
        None => previous.map(|p| p.orphans.clone()).unwrap_or_default(),
    };
    let not_ours = match input.plan {
        Some(plan) => plan
            .notes
            .iter()
            .filter_map(|n| match n {
                Note::NotOurs {
                    project,
                    service,
                    containers,
                } => Some(NotOurs {
                    project: project.clone(),
                    service: service.clone(),
                    containers: containers.clone(),
                }),
                _ => None,
            })
            .collect(),
        None => previous.map(|p| p.not_ours.clone()).unwrap_or_default(),
    };
    Status {
        generated_at: Timestamp(now),
        round: input.round.as_ref().map(|r| RoundStatus {
            number: r.number,
            at: Timestamp(now),
            duration_ms: r.duration.as_millis() as u64,
            result: r.result.to_string(),
            error: r.error.clone(),
        }),
        source,
        engine_reachable,
        conditions,
        services,
        orphans,
        not_ours,
        host: input
            .desired
            .and_then(|d| d.fleet.as_ref())
            .and_then(|f| f.this_host.clone())
            .or_else(|| previous.and_then(|p| p.host.clone())),
    }
}

/// A short fingerprint of the desired state (every service's spec hash): what a directory
/// source reports as its revision.
pub fn fingerprint(desired: &DesiredState) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in desired.projects.values() {
        for s in p.services.values() {
            h.update(format!("{}/{}={}\n", p.name, s.name, s.spec_hash));
        }
    }
    let digest = h.finalize();
    digest[..6].iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

struct Ctx<'a> {
    now: u64,
    observed: &'a ObservedState,
    records: &'a Records,
    plan: &'a Plan,
    failures: &'a [Failure],
    probes_tracked: bool,
}

impl Ctx<'_> {
    fn service(&self, p: &Project, s: &Service, prev: Option<&ServiceStatus>) -> ServiceStatus {
        let now = self.now;
        let default = ServiceRecord::default();
        let rec = self
            .records
            .get(&(p.name.clone(), s.name.clone()))
            .unwrap_or(&default);
        let number_of = |hash: &str| {
            rec.revisions
                .iter()
                .rev()
                .find(|r| !hash.is_empty() && r.spec_hash == hash)
        };
        let desired = DesiredRevision {
            hash: short(&s.spec_hash).to_string(),
            image: s.image.clone().unwrap_or_else(|| "(build)".into()),
            // A job is numbered by its runs (`rN` like a service's revisions).
            revision: if s.job {
                Some(rec.job_number(&s.spec_hash))
            } else {
                number_of(&s.spec_hash).map(|r| r.number)
            },
        };
        // Running replicas by revision.
        let mut by_hash: BTreeMap<&str, RunningRevision> = BTreeMap::new();
        let mut ready = 0u32;
        for c in self
            .observed
            .service(&p.name, &s.name)
            .filter(|c| c.identity.role == Role::Replica && c.state == RunState::Running)
            // Extra replicas berth did not create are not the service's (see `Note::NotOurs`).
            .filter(|c| c.identity.managed || c.identity.number <= s.replicas)
        {
            let is_ready = self.ready(s, c);
            ready += u32::from(is_ready);
            let known = number_of(&c.identity.spec_hash);
            let e = by_hash
                .entry(c.identity.spec_hash.as_str())
                .or_insert_with(|| RunningRevision {
                    revision: if s.job {
                        job_number(rec, s, &c.identity.spec_hash)
                    } else {
                        known.map(|r| r.number)
                    },
                    hash: short(&c.identity.spec_hash).to_string(),
                    image: known.map(|r| r.image_ref.clone()),
                    containers: 0,
                    ready: 0,
                });
            e.containers += 1;
            e.ready += u32::from(is_ready);
        }
        let mut running: Vec<RunningRevision> = by_hash.into_values().collect();
        running.sort_by_key(|r| (r.revision.is_none(), r.revision));
        let (ready, replicas) = if s.job {
            let done = rec.job_run(&s.spec_hash).is_some_and(|j| j.exit_code == 0);
            (u32::from(done), 1)
        } else {
            (ready, s.replicas)
        };
        let (phase, reason, hint) = self.phase(p, s, rec, ready, replicas);
        let since = match prev {
            Some(pr) if pr.phase == phase => pr.since,
            _ => Timestamp(hint.filter(|t| *t <= now).unwrap_or(now)),
        };
        let prev_conds = prev.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
        let all_ready = ready >= replicas;
        let ready_message = if s.job {
            match rec.job_run(&s.spec_hash) {
                Some(j) => format!("the job exited with code {}", j.exit_code),
                None => "the job has not completed".to_string(),
            }
        } else {
            format!("{ready}/{replicas} replicas ready")
        };
        let conditions = vec![
            condition(
                prev_conds,
                "Ready",
                Some(all_ready),
                match (all_ready, s.job) {
                    (true, false) => "AllReplicasReady",
                    (false, false) => "ReplicasNotReady",
                    (true, true) => "Completed",
                    (false, true) => "NotCompleted",
                },
                ready_message,
                now,
            ),
            condition(
                prev_conds,
                "Progressing",
                Some(phase == Phase::Progressing),
                if phase == Phase::Progressing {
                    "InProgress"
                } else {
                    "Complete"
                },
                if phase == Phase::Progressing {
                    reason.clone()
                } else {
                    String::new()
                },
                now,
            ),
            condition(
                prev_conds,
                "Degraded",
                Some(phase == Phase::Degraded),
                if phase == Phase::Degraded {
                    "GaveUp"
                } else {
                    "AsExpected"
                },
                if phase == Phase::Degraded {
                    reason.clone()
                } else {
                    String::new()
                },
                now,
            ),
        ];
        let last_rollout = rec.newest().map(|r| LastRollout {
            revision: r.number,
            result: outcome(r.outcome).to_string(),
            started_at: Timestamp(r.created_at),
            reason: r.reason.clone(),
        });
        ServiceStatus {
            project: p.name.clone(),
            service: s.name.clone(),
            job: s.job,
            desired,
            running,
            ready,
            replicas,
            phase,
            since,
            reason,
            conditions,
            last_rollout,
            update: None,
            traffic: Vec::new(),
            wave: self.wave_gate(p, s),
        }
    }

    /// The wave gate the plan notes on the service (a wave wait or a wave hold), typed.
    fn wave_gate(&self, p: &Project, s: &Service) -> Option<WaveGate> {
        self.plan.notes.iter().find_map(|n| match n {
            Note::Wait {
                project,
                service,
                reason: WaitReason::Wave(w),
            } if *project == p.name && *service == s.name => Some(WaveGate {
                state: "waiting".into(),
                reason: w.label().into(),
                host: w.host().into(),
                message: w.to_string(),
            }),
            Note::Blocked {
                project,
                service,
                reason: reason @ BlockReason::WaveHold(h),
            } if *project == p.name && service.as_deref().is_none_or(|x| x == s.name) => {
                Some(WaveGate {
                    state: "held".into(),
                    reason: reason.label().into(),
                    host: h.host.clone(),
                    message: h.to_string(),
                })
            }
            _ => None,
        })
    }

    /// The round's failed pull of the service's image (its own pull step, or the pull of the
    /// same reference for another service), worded with the whole error chain.
    fn pull_failure(&self, p: &Project, s: &Service) -> Option<String> {
        self.failures.iter().find_map(|f| {
            let step = f.step.step()?;
            let Action::Pull { reference, .. } = &step.action else {
                return None;
            };
            let own = step.project == p.name && step.service.as_deref() == Some(s.name.as_str());
            (own || s.image.as_deref() == Some(reference.as_str())).then(|| {
                format!(
                    "pull of {reference} failing: {}; retried with backoff",
                    f.error
                )
            })
        })
    }

    /// Ready for the status: running, Docker health healthy (or none), berth's readiness probe
    /// passing when the service has one.
    fn ready(&self, s: &Service, c: &ObservedContainer) -> bool {
        if c.state != RunState::Running || matches!(c.health, Health::Starting | Health::Unhealthy)
        {
            return false;
        }
        if s.berth.readiness.is_none() {
            return true;
        }
        match self.observed.probes.get(&c.id).and_then(|v| v.readiness) {
            Some(ProbeStatus::Passing) => true,
            Some(_) => false,
            None => !self.probes_tracked,
        }
    }

    /// Phase, reason, and (for a first sighting) when it began according to the records.
    fn phase(
        &self,
        p: &Project,
        s: &Service,
        rec: &ServiceRecord,
        ready: u32,
        replicas: u32,
    ) -> (Phase, String, Option<u64>) {
        let mine = |project: &str, service: Option<&str>| {
            project == p.name && service.is_none_or(|x| x == s.name)
        };
        let notes = &self.plan.notes;
        let held = notes.iter().find_map(|n| match n {
            Note::Held {
                project,
                service,
                reason,
            } if mine(project, Some(service)) => Some(reason.to_string()),
            _ => None,
        });
        let blocked = notes.iter().find_map(|n| match n {
            Note::Blocked {
                project,
                service,
                reason,
            } if mine(project, service.as_deref()) => Some(reason.to_string()),
            _ => None,
        });
        let wait = notes.iter().find_map(|n| match n {
            Note::Wait {
                project,
                service,
                reason,
            } if mine(project, Some(service)) => Some(reason.to_string()),
            _ => None,
        });
        let failing = self.pull_failure(p, s);
        // The phase the rollout state machine acts on, computed in one place (`rollout::phase`);
        // this only words it.
        match rollout::phase(s, rec) {
            rollout::Phase::Held(by) => {
                let why = held.unwrap_or_else(|| match by {
                    HeldBy::Compose => "x-berth.hold".to_string(),
                    HeldBy::Rollback { to } => format!("berth rollback to r{to}"),
                    HeldBy::Operator { .. } => "berth hold".to_string(),
                });
                return (Phase::Held, why, rec.control.hold);
            }
            rollout::Phase::Degraded(d) => {
                return (Phase::Degraded, d.reason.clone(), Some(d.since));
            }
            rollout::Phase::Paused { rollout: a, reason } => {
                return (
                    Phase::Blocked,
                    format!("rollout of r{} paused: {reason}", a.revision),
                    Some(a.started_at),
                );
            }
            rollout::Phase::Rolling(a) => {
                if let Some(why) = failing {
                    return (Phase::Failing, why, Some(a.started_at));
                }
                let what = match a.kind {
                    RolloutKind::Update => format!("rolling out r{}", a.revision),
                    RolloutKind::Revert { failed } => {
                        format!("reverting to r{} after r{failed} failed", a.revision)
                    }
                    RolloutKind::Rollback => format!("rolling back to r{}", a.revision),
                };
                let detail = wait.map(|w| format!(": {w}")).unwrap_or_default();
                return (
                    Phase::Progressing,
                    format!("{what}{detail}"),
                    Some(a.started_at),
                );
            }
            rollout::Phase::Quarantined(q) => {
                let failed = rec
                    .revisions
                    .iter()
                    .rev()
                    .find(|r| r.spec_hash == s.spec_hash);
                let n = failed.map_or(String::new(), |r| format!("r{} ", r.number));
                // The failed build's last lines follow on lines of their own (the table shows
                // them under the services; the JSON carries them in the reason).
                let log = q
                    .log
                    .as_deref()
                    .map(|l| format!("\nlast build output:\n{l}"))
                    .unwrap_or_default();
                if failed.is_some_and(|r| r.outcome == Outcome::Reverted) {
                    let current = rec
                        .current()
                        .map_or(String::new(), |c| format!("; r{} runs", c.number));
                    return (
                        Phase::Reverted,
                        format!("{n}failed: {}{current}{log}", q.reason),
                        Some(q.since),
                    );
                }
                return (
                    Phase::Blocked,
                    format!(
                        "{n}failed: {}; quarantined until the desired state changes or `berth retry`{log}",
                        q.reason
                    ),
                    Some(q.since),
                );
            }
            rollout::Phase::Steady => {}
        }
        if let Some(why) = failing {
            return (Phase::Failing, why, None);
        }
        if let Some(why) = blocked {
            return (Phase::Blocked, why, None);
        }
        if let Some(why) = wait {
            return (Phase::Progressing, why, None);
        }
        let step = self
            .plan
            .steps
            .iter()
            .find(|st| st.project == p.name && st.service.as_deref() == Some(s.name.as_str()));
        if let Some(st) = step {
            return (
                Phase::Progressing,
                format!("{}: {}", st.action, st.cause),
                None,
            );
        }
        if ready < replicas {
            let why = if s.job {
                "the job has not completed yet".to_string()
            } else {
                format!("{ready} of {replicas} replicas ready")
            };
            return (Phase::Progressing, why, None);
        }
        (Phase::Idle, String::new(), None)
    }
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::InProgress => "in_progress",
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Reverted => "reverted",
        Outcome::Superseded => "superseded",
    }
}

/// A condition whose transition time is kept from `previous` while its status holds.
fn condition(
    previous: &[Condition],
    kind: &str,
    status: Option<bool>,
    reason: &str,
    message: String,
    now: u64,
) -> Condition {
    let status = match status {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let last_transition_time = previous
        .iter()
        .find(|c| c.kind == kind && c.status == status)
        .map_or(Timestamp(now), |c| c.last_transition_time);
    Condition {
        kind: kind.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time,
    }
}

/// Widest reason shown in the table (the JSON has it whole).
const REASON_WIDTH: usize = 100;

impl Status {
    /// The wave gate of every gated project (its first gated service's), by project.
    pub fn wave_gates(&self) -> BTreeMap<&str, &WaveGate> {
        let mut out = BTreeMap::new();
        for s in &self.services {
            if let Some(g) = &s.wave {
                out.entry(s.project.as_str()).or_insert(g);
            }
        }
        out
    }

    /// The table `berth status` prints, as of `now`.
    pub fn table(&self, now: u64) -> String {
        let mut out = String::new();
        let src = &self.source;
        let revision = src
            .revision
            .as_deref()
            .map(|r| format!(" @ {r}"))
            .unwrap_or_default();
        let validity = if src.valid {
            "valid".to_string()
        } else {
            format!(
                "INVALID ({} error(s)), applying the last good state",
                src.errors
            )
        };
        let _ = writeln!(
            out,
            "source: {} {}{revision}: {validity}",
            src.kind, src.location
        );
        let engine = match self.engine_reachable {
            Some(true) => "reachable",
            Some(false) => "UNREACHABLE",
            None => "not asked yet",
        };
        match &self.round {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "engine: {engine}; round {} {} ago: {} in {}ms{}",
                    r.number,
                    age(now, r.at.0),
                    r.result,
                    r.duration_ms,
                    r.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(out, "engine: {engine}; built by observing the engine now");
            }
        }
        out.push('\n');
        let rows: Vec<[String; 7]> = self
            .services
            .iter()
            .map(|s| {
                [
                    format!("{}/{}", s.project, s.service),
                    desired_cell(&s.desired),
                    running_cell(s),
                    format!("{}/{}", s.ready, s.replicas),
                    s.phase.as_str().to_string(),
                    age(now, s.since.0),
                    reason_cell(&s.reason),
                ]
            })
            .collect();
        let header = [
            "PROJECT/SERVICE",
            "DESIRED",
            "RUNNING",
            "READY",
            "PHASE",
            "SINCE",
            "REASON",
        ];
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: &[&str]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ", w = widths[i]);
                }
            }
            let _ = writeln!(out, "{}", l.trim_end());
        };
        line(&header);
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            line(&cells);
        }
        if self.services.is_empty() {
            let _ = writeln!(out, "(no services)");
        }

        for n in &self.not_ours {
            let _ = writeln!(
                out,
                "{}/{}: not berth's: {} (no berth.managed label); left alone",
                n.project,
                n.service,
                n.containers.join(", ")
            );
        }
        for o in &self.orphans {
            let _ = writeln!(
                out,
                "{}: orphaned, {} container(s) of a project no longer in the desired state (`berth prune {0}` removes it)",
                o.project, o.containers
            );
        }
        // Image updates that are not simply up to date.
        let updates: Vec<String> = self
            .services
            .iter()
            .filter_map(|s| {
                let u = s.update.as_ref().filter(|u| u.state != "up_to_date")?;
                let change = match (&u.from, &u.to) {
                    (Some(from), Some(to)) => format!(" {from} -> {to}"),
                    _ => String::new(),
                };
                Some(format!(
                    "{}/{}: update {}{change}: {} (checked {} ago)",
                    s.project,
                    s.service,
                    u.state,
                    u.message,
                    age(now, u.checked_at.0)
                ))
            })
            .collect();
        if !updates.is_empty() {
            out.push('\n');
            for l in updates {
                let _ = writeln!(out, "{l}");
            }
        }
        // Port handoff: who receives traffic, what drains.
        let traffic: Vec<String> = self
            .services
            .iter()
            .flat_map(|s| s.traffic.iter())
            .map(traffic_line)
            .collect();
        if !traffic.is_empty() {
            out.push('\n');
            for l in traffic {
                let _ = writeln!(out, "{l}");
            }
        }
        // A reason's further lines (a failed build's last output) under the table.
        for s in &self.services {
            let mut extra = s.reason.lines().skip(1).peekable();
            if extra.peek().is_some() {
                let _ = writeln!(out, "\n{}/{}:", s.project, s.service);
                for l in extra {
                    let _ = writeln!(out, "  {}", l.trim_end());
                }
            }
        }
        if !src.diagnostics.is_empty() {
            out.push('\n');
            for d in &src.diagnostics {
                let _ = writeln!(out, "{}: {}: {}", d.location, d.severity, d.message);
            }
            let shown = src.diagnostics.len();
            if src.errors + src.warnings > shown {
                let _ = writeln!(out, "... and {} more", src.errors + src.warnings - shown);
            }
        }
        out
    }

    /// True when every service is Idle or Held and the desired state is valid.
    pub fn healthy(&self) -> bool {
        self.source.valid
            && self.engine_reachable != Some(false)
            && self
                .services
                .iter()
                .all(|s| matches!(s.phase, Phase::Idle | Phase::Held))
    }
}

/// A job container's revision number: its recorded run's, or the next one for the desired
/// spec (running now); `None` for an older spec berth has no run of.
fn job_number(rec: &ServiceRecord, s: &Service, hash: &str) -> Option<u64> {
    match rec.job_run(hash) {
        Some(j) if j.number > 0 => Some(j.number),
        _ => (hash == s.spec_hash).then(|| rec.job_number(hash)),
    }
}

fn desired_cell(d: &DesiredRevision) -> String {
    match d.revision {
        Some(n) => format!("r{n} {}", d.image),
        None => format!("{} {}", d.hash.get(..8).unwrap_or(&d.hash), d.image),
    }
}

fn running_cell(s: &ServiceStatus) -> String {
    if s.running.is_empty() {
        return "-".into();
    }
    let names: BTreeSet<String> = s
        .running
        .iter()
        .map(|r| match (r.revision, r.hash.as_str()) {
            (Some(n), _) => format!("r{n}"),
            (None, "") => "compose".to_string(),
            (None, h) => h.get(..8).unwrap_or(h).to_string(),
        })
        .collect();
    names.into_iter().collect::<Vec<_>>().join(",")
}

/// `shop/web:8080: traffic to shop-web-1-cadf6d6e6604 (3 active); draining shop-web-1-40fbf138c201 (1 connection)`.
fn traffic_line(t: &PortTraffic) -> String {
    let routed = if t.routed.is_empty() {
        "no replica".to_string()
    } else {
        t.routed.join(", ")
    };
    if !t.proxy_up {
        return format!(
            "{}: traffic to {routed}; the proxy does not answer (connections unknown)",
            t.listener
        );
    }
    let mut line = format!("{}: traffic to {routed} ({} active)", t.listener, t.active);
    if !t.draining.is_empty() {
        let d: Vec<String> = t
            .draining
            .iter()
            .map(|d| {
                let s = if d.connections == 1 { "" } else { "s" };
                format!("{} ({} connection{s})", d.replica, d.connections)
            })
            .collect();
        let _ = write!(line, "; draining {}", d.join(", "));
    }
    line
}

fn reason_cell(reason: &str) -> String {
    let first = reason.lines().next().unwrap_or_default();
    if first.chars().count() > REASON_WIDTH {
        let cut: String = first.chars().take(REASON_WIDTH - 3).collect();
        format!("{cut}...")
    } else {
        first.to_string()
    }
}
