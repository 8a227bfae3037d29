//! The planner's one-shot jobs: a job runs once per revision (its container with the current
//! hash, or berth's record of that run, says it ran); a job whose image build failed is
//! quarantined; finished runs are recorded.
//!
//! Pure, part of the planner.

use super::{
    Action, Note, Planner, Records, push_create_start, push_removal, short, start, stop_params,
};
use crate::desired::model::{DesiredState, Project, Service};
use crate::engine::RunState;
use crate::engine::labels::Role;
use crate::reconcile::event::{Event, EventKind};
use crate::reconcile::observed::{ObservedContainer, ObservedState};
use crate::reconcile::reason::{BlockReason, EventReason, FailReason, WaitReason};
use crate::store::ServiceRecord;

impl Planner<'_> {
    /// A job whose image build failed does not run: its revision is quarantined (recorded,
    /// with an event carrying the build's last lines) until the desired state changes or
    /// `berth retry`; its dependents wait. Returns the note that blocks it.
    pub(super) fn job_build_failure(&mut self, project: &Project, svc: &Service) -> Option<Note> {
        svc.build.as_ref()?;
        let key = (project.name.clone(), svc.name.clone());
        let empty = ServiceRecord::default();
        let rec = self.records.get(&key).unwrap_or(&empty);
        let mut changed = rec.clone();
        changed.clear_quarantine_unless(&svc.spec_hash);
        if let Some(t) = changed.control.retry_at {
            changed.quarantined.retain(|q| q.since > t);
        }
        let reference = svc.image.as_deref().unwrap_or_default();
        if let Some(error) = self.observed.build_failures.get(reference)
            && !changed.is_quarantined(&svc.spec_hash)
        {
            let (summary, tail) = (&error.summary, error.log.clone());
            let reason = format!("image build failed: {summary}");
            changed.quarantined.push(crate::store::Quarantine {
                spec_hash: svc.spec_hash.clone(),
                since: self.now,
                reason: reason.clone(),
                log: tail.clone(),
            });
            self.plan.events.push(Event {
                project: project.name.clone(),
                service: svc.name.clone(),
                kind: EventKind::RolloutFailed,
                reason: EventReason::Failure(FailReason::BuildFailed),
                revision: None,
                message: format!(
                    "job r{} not run: {reason}; its dependents wait; change the desired state or `berth retry`",
                    changed.job_number(&svc.spec_hash)
                ),
                logs_of: None,
                logs: tail,
            });
        }
        let note = changed
            .quarantined
            .iter()
            .find(|q| q.spec_hash == svc.spec_hash)
            .map(|q| Note::Blocked {
                project: project.name.clone(),
                service: Some(svc.name.clone()),
                reason: BlockReason::JobNotRun {
                    revision: changed.job_number(&svc.spec_hash),
                    reason: q.reason.clone(),
                },
            });
        if changed != *rec {
            self.plan.records.insert(key, changed);
        }
        note
    }

    /// The recorded run of `svc`'s current revision, if any.
    pub(super) fn job_record(&self, project: &str, svc: &Service) -> Option<i64> {
        self.records
            .get(&(project.to_string(), svc.name.clone()))
            .and_then(|r| r.job_run(&svc.spec_hash))
            .map(|j| j.exit_code)
    }

    /// A job runs once per revision: its container with the current hash, or berth's record
    /// of that run (the container may have been removed since), says it ran.
    pub(super) fn job_steps(
        &self,
        project: &Project,
        svc: &Service,
        mine: &[&ObservedContainer],
        steps: &mut Vec<(Action, String)>,
    ) -> Option<Note> {
        let (grace, signal) = stop_params(svc);
        let (current, old): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) = mine
            .iter()
            .partition(|c| c.identity.managed && c.identity.spec_hash == svc.spec_hash);
        if let Some(c) = current.first() {
            return match (c.state, c.exit_code) {
                (RunState::Exited, Some(0)) => None,
                (RunState::Exited, code) => Some(Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason: BlockReason::JobFailed { code },
                }),
                (RunState::Created, _) => {
                    steps.push((start(c), "job created but not started".into()));
                    None
                }
                _ => Some(Note::Wait {
                    project: project.name.clone(),
                    service: svc.name.clone(),
                    reason: WaitReason::JobRunning,
                }),
            };
        }
        match self.job_record(&project.name, svc) {
            Some(0) => return None,
            Some(code) => {
                return Some(Note::Blocked {
                    project: project.name.clone(),
                    service: Some(svc.name.clone()),
                    reason: BlockReason::JobFailed { code: Some(code) },
                });
            }
            None => {}
        }
        // Jobs are numbered like services' revisions: `rN` per spec, from the record.
        let empty = ServiceRecord::default();
        let rec = self
            .records
            .get(&(project.name.clone(), svc.name.clone()))
            .unwrap_or(&empty);
        let number = rec.job_number(&svc.spec_hash);
        let cause = match old.first() {
            Some(c) if c.identity.managed => match rec.job_run(&c.identity.spec_hash) {
                Some(j) if j.number > 0 => {
                    format!("job r{number} not run yet (r{} ran last)", j.number)
                }
                _ => format!(
                    "job r{number} not run yet (last ran {})",
                    short(&c.identity.spec_hash)
                ),
            },
            Some(_) => "taking over from docker compose".to_string(),
            None => format!("job r{number} not run yet"),
        };
        for c in &old {
            push_removal(steps, c, grace, signal.clone(), &cause);
        }
        push_create_start(steps, project, svc, 1, Role::Job, cause);
        None
    }
}

/// Records every finished run of a job's current revision that berth has not recorded yet;
/// returns the (project, service) records that changed and must be saved.
pub fn record_jobs(
    records: &mut Records,
    desired: &DesiredState,
    observed: &ObservedState,
    now: u64,
) -> Vec<(String, String)> {
    let mut changed = Vec::new();
    for p in desired.projects.values() {
        for svc in p.services.values().filter(|s| s.job) {
            let finished = observed.service(&p.name, &svc.name).find(|c| {
                c.identity.managed
                    && c.identity.spec_hash == svc.spec_hash
                    && c.state == RunState::Exited
            });
            let Some(code) = finished.and_then(|c| c.exit_code) else {
                continue;
            };
            let key = (p.name.clone(), svc.name.clone());
            let rec = records.entry(key.clone()).or_default();
            if rec.job_run(&svc.spec_hash).map(|j| j.exit_code) != Some(code) {
                rec.record_job(&svc.spec_hash, code, now);
                changed.push(key);
            }
        }
    }
    changed
}
