//! `berth diff`: each service of the desired state against berth's record of what runs (its
//! current revision), field by field with `reconcile::diff` — what the next `apply` would
//! roll out, said the way a person compares two compose files.
//!
//! Pure: takes the desired state and the records; `cli/diff` reads them (no engine: drift of
//! the containers themselves is `berth plan`'s business).

use std::fmt;

use crate::desired::model::{DesiredState, Project, Service};
use crate::engine::labels::Role;
use crate::reconcile::container_spec::container_create;
use crate::reconcile::diff::{self, Diff};
use crate::store::{Outcome, Records, Revision, ServiceRecord};

/// What one desired service is, compared with what berth recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compared {
    /// The current revision has the desired spec.
    Unchanged {
        /// The current revision.
        revision: u64,
    },
    /// The desired spec differs from the current revision's.
    Changed {
        /// The current revision.
        from: u64,
        /// What differs.
        diff: Diff,
        /// The newest revision in the history with the desired spec.
        known: Option<u64>,
        /// The desired spec failed and is quarantined: the next apply does not roll it out.
        quarantined: bool,
    },
    /// berth has no current revision of it: the next apply deploys it.
    New,
    /// A job: the revision that ran last, and whether the desired spec ran already.
    Job {
        /// The desired spec's job revision number.
        desired: u64,
        /// It ran already (not run again).
        ran: bool,
        /// The job revision that ran last, when it is another.
        last: Option<u64>,
    },
}

/// One service's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// What it is.
    pub compared: Compared,
}

impl Entry {
    /// Whether the next apply would roll something out for it.
    pub fn differs(&self) -> bool {
        match &self.compared {
            Compared::Unchanged { .. } => false,
            Compared::Job { ran, .. } => !ran,
            Compared::Changed { quarantined, .. } => !quarantined,
            Compared::New => true,
        }
    }
}

/// Every service of `desired` (only `project`'s when given), in name order.
pub fn compare(desired: &DesiredState, records: &Records, project: Option<&str>) -> Vec<Entry> {
    let empty = ServiceRecord::default();
    let mut out = Vec::new();
    for p in desired
        .projects
        .values()
        .filter(|p| project.is_none_or(|name| p.name == name))
    {
        for svc in p.services.values() {
            let rec = records
                .get(&(p.name.clone(), svc.name.clone()))
                .unwrap_or(&empty);
            out.push(Entry {
                project: p.name.clone(),
                service: svc.name.clone(),
                compared: one(p, svc, rec),
            });
        }
    }
    out
}

fn one(p: &Project, svc: &Service, rec: &ServiceRecord) -> Compared {
    let hash = &svc.spec_hash;
    if svc.job {
        let last = rec.jobs.last().map(|j| j.number).filter(|n| *n > 0);
        let desired = rec.job_number(hash);
        return Compared::Job {
            desired,
            ran: rec.job_done(hash),
            last: last.filter(|n| *n != desired),
        };
    }
    let Some(current) = rec.current() else {
        return Compared::New;
    };
    if current.spec_hash == *hash {
        return Compared::Unchanged {
            revision: current.number,
        };
    }
    let wanted = Revision {
        number: 0,
        spec_hash: hash.clone(),
        image_ref: svc.image.clone().unwrap_or_default(),
        // Resolved at rollout; the reference is what is compared.
        image_id: String::new(),
        stable: false,
        created_at: 0,
        ready_at: None,
        outcome: Outcome::InProgress,
        reason: None,
        pin: None,
        template: Some(container_create(p, svc, 1, Role::Replica, "")),
        build: None,
        failure: None,
        policy: diff::policy_of(svc),
        logs: None,
    };
    let known = rec
        .revisions
        .iter()
        .rev()
        .find(|r| r.spec_hash == *hash)
        .map(|r| r.number);
    Compared::Changed {
        from: current.number,
        diff: diff::between(current, &wanted),
        known,
        quarantined: rec.is_quarantined(hash),
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}  ", self.project, self.service)?;
        match &self.compared {
            Compared::Unchanged { revision } => write!(f, "r{revision}: no change"),
            Compared::New => write!(f, "not deployed yet: the next apply deploys it"),
            Compared::Changed {
                from,
                diff,
                known,
                quarantined,
            } => {
                write!(f, "r{from} → desired: {diff}")?;
                match (known, quarantined) {
                    (Some(n), true) => write!(
                        f,
                        " (the spec of r{n}, which failed: quarantined, not rolled out until it changes or `berth retry`)"
                    ),
                    (None, true) => write!(
                        f,
                        " (failed before: quarantined, not rolled out until it changes or `berth retry`)"
                    ),
                    (Some(n), false) => write!(f, " (the spec r{n} had)"),
                    (None, false) => Ok(()),
                }
            }
            Compared::Job {
                desired,
                ran: true,
                last: None,
            } => write!(f, "job r{desired}: ran, no change"),
            Compared::Job {
                desired,
                ran: true,
                last: Some(last),
            } => write!(
                f,
                "job r{desired} ran already (r{last} ran since): not run again"
            ),
            Compared::Job {
                desired,
                ran: false,
                last: Some(last),
            } => write!(
                f,
                "job r{last} ran last; the desired spec runs as r{desired}"
            ),
            Compared::Job {
                desired,
                ran: false,
                last: None,
            } => write!(f, "job r{desired}: not run yet"),
        }
    }
}

/// The report: one line per service, or a line saying nothing differs.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    if entries.iter().all(|e| !e.differs()) {
        out.push_str("No changes: every service runs its desired spec.\n");
    }
    out
}
