//! Live progress of `berth apply`: each service's phase, revision, ready replicas, what it
//! waits for and the time left before its rollout's deadline, as text.
//!
//! Pure: [`rows`] turns one round's status model (`telemetry::status`), the desired state, the
//! records and `now` into typed [`Row`]s; [`frame`] renders them as the table a terminal
//! redraws in place, [`line`] as the line a pipe or a file gets when a row changes, and
//! [`changed`] says which rows did. `cli::apply` decides when to draw and where.

use std::fmt::Write as _;

use crate::desired::DesiredState;
use crate::reconcile::plan::Records;
use crate::telemetry::status::{Phase, Status};

/// One service's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `project/service`.
    pub scope: String,
    /// Its phase.
    pub phase: Phase,
    /// The revision being rolled out, else the one that runs.
    pub revision: Option<u64>,
    /// Ready replicas.
    pub ready: u32,
    /// Desired replicas.
    pub replicas: u32,
    /// What it waits for, or why it is in its phase (empty when idle).
    pub reason: String,
    /// Seconds before the rollout's progress deadline, for a replica under the gate.
    pub left: Option<u64>,
}

impl Row {
    /// The same row, but for the time left (which changes every second).
    fn same_state(&self, other: &Row) -> bool {
        Row {
            left: None,
            ..self.clone()
        } == Row {
            left: None,
            ..other.clone()
        }
    }
}

/// The rows of every desired service, in the status' order.
pub fn rows(status: &Status, desired: &DesiredState, records: &Records, now: u64) -> Vec<Row> {
    status
        .services
        .iter()
        .map(|s| {
            let key = (s.project.clone(), s.service.clone());
            let rec = records.get(&key);
            let deadline = desired
                .projects
                .get(&s.project)
                .and_then(|p| p.services.get(&s.service))
                .map(|svc| svc.rollout.progress_deadline.as_secs());
            let active = rec.and_then(|r| r.active.as_ref());
            let left = active.zip(deadline).and_then(|(a, d)| {
                a.slots
                    .values()
                    .filter(|slot| slot.passed_at.is_none() && !slot.failed)
                    .map(|slot| (slot.started_at + d).saturating_sub(now))
                    .min()
            });
            let revision = active
                .map(|a| a.revision)
                .or(s.desired.revision)
                .or_else(|| rec.and_then(|r| r.current()).map(|r| r.number));
            Row {
                scope: format!("{}/{}", s.project, s.service),
                phase: s.phase,
                revision,
                ready: s.ready,
                replicas: s.replicas,
                reason: if s.phase == Phase::Idle {
                    String::new()
                } else {
                    s.reason.clone()
                },
                left: if s.phase == Phase::Progressing {
                    left
                } else {
                    None
                },
            }
        })
        .collect()
}

/// The rows of `next` whose state (all but the time left) differs from `prev`'s.
pub fn changed<'a>(prev: &[Row], next: &'a [Row]) -> Vec<&'a Row> {
    next.iter()
        .filter(|r| !prev.iter().any(|p| p.scope == r.scope && p.same_state(r)))
        .collect()
}

/// One row as a line (a pipe, a file, the journal): no colour, no alignment.
pub fn line(r: &Row) -> String {
    let mut s = format!("{} {}", r.scope, r.phase.as_str());
    if let Some(n) = r.revision {
        let _ = write!(s, " r{n}");
    }
    let _ = write!(s, " ready {}/{}", r.ready, r.replicas);
    if !r.reason.is_empty() {
        let _ = write!(s, ": {}", r.reason);
    }
    if let Some(left) = r.left {
        let _ = write!(s, " ({left}s before the deadline)");
    }
    s
}

/// The heartbeat off a terminal: the services still moving, after `elapsed` seconds.
pub fn heartbeat(rows: &[Row], elapsed: u64) -> Vec<String> {
    rows.iter()
        .filter(|r| r.phase == Phase::Progressing)
        .map(|r| format!("… {elapsed}s: {}", line(r)))
        .collect()
}

/// The table a terminal redraws in place, one line per service, `colour` for the phase.
pub fn frame(rows: &[Row], elapsed: u64, colour: bool) -> String {
    let scope_w = rows.iter().map(|r| r.scope.len()).max().unwrap_or(0);
    let phase_w = rows
        .iter()
        .map(|r| r.phase.as_str().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for r in rows {
        let phase = r.phase.as_str();
        let pad = " ".repeat(phase_w - phase.len());
        let phase = if colour {
            format!("\x1b[{}m{phase}\x1b[0m", ansi(r.phase))
        } else {
            phase.to_string()
        };
        let rev = r.revision.map(|n| format!("r{n}")).unwrap_or_default();
        let _ = write!(
            out,
            "{:<scope_w$}  {phase}{pad}  {rev:<4}  {:>5}",
            r.scope,
            format!("{}/{}", r.ready, r.replicas)
        );
        if !r.reason.is_empty() {
            let _ = write!(out, "  {}", r.reason);
        }
        if let Some(left) = r.left {
            let _ = write!(out, "  ({left}s left)");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{elapsed}s");
    out
}

/// The SGR colour of a phase: green settled, yellow moving, red needs a look.
fn ansi(p: Phase) -> &'static str {
    match p {
        Phase::Idle => "32",
        Phase::Progressing => "33",
        Phase::Held => "36",
        Phase::Failing | Phase::Reverted | Phase::Degraded | Phase::Blocked => "31",
    }
}
