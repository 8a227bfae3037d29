//! The operator's manual controls (docs/rollouts.md#manual-control): `berth history`, `retry`,
//! `hold`, `release` and `rollback`, each on one service's revision record.
//!
//! Pure: every command is a function of the service's [`ServiceRecord`] (which carries its
//! current [`Control`]) and `now` (unix seconds), returning the new `Control` with what to tell
//! the operator, or a refusal; [`history`] renders a record as the table `berth history`
//! prints. The CLI (`cli/control.rs`) does the IO: it loads the record, writes only the control
//! file ([`crate::store::Store::save_control`] — the running controller owns the record itself)
//! and wakes a running `berth run` with SIGHUP ([`crate::lock::wake_controller`]). The controller reads the control file at every
//! round; the rules it applies live in `reconcile::rollout`.

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::Value;

use crate::store::{Control, Outcome, Revision, RolloutKind, ServiceRecord};
use crate::util::id::short;
use crate::util::time::Civil;

/// A service named on the command line as `PROJECT/SERVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// The Compose project.
    pub project: String,
    /// The service in it.
    pub service: String,
}

impl FromStr for ServiceRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((p, svc)) if !p.is_empty() && !svc.is_empty() && !svc.contains('/') => {
                Ok(ServiceRef {
                    project: p.to_string(),
                    service: svc.to_string(),
                })
            }
            _ => Err(format!(
                "expected PROJECT/SERVICE (e.g. shop/web), got {s:?}"
            )),
        }
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.service)
    }
}

/// Parses a revision as `N` or `rN` (how `berth history` shows it).
pub fn parse_revision(s: &str) -> Result<u64, String> {
    s.strip_prefix('r')
        .unwrap_or(s)
        .parse()
        .map_err(|_| format!("expected a revision number such as 3 or r3, got {s:?}"))
}

/// Why a manual control was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The service has no record file: berth never rolled it out with this data dir.
    #[error("failed to find a record of {service} in {}: {}", .dir.display(), known_list(.known))]
    NoRecord {
        /// The service asked for.
        service: String,
        /// The `state/` directory searched.
        dir: PathBuf,
        /// The services that do have records, as `project/service`.
        known: Vec<String>,
    },
    /// `rollback --to N` named a revision that is not in the history.
    #[error("failed to roll back {service}: there is no r{number} in its history ({})", revision_list(.have))]
    NoSuchRevision {
        /// The service.
        service: String,
        /// The revision asked for.
        number: u64,
        /// The revisions the record has.
        have: Vec<u64>,
    },
    /// The revision never proved itself (or failed later).
    #[error(
        "failed to roll back {service} to r{number}: it is not stable (it {}); only a revision that was ready and stable can be rolled back to",
        outcome_words(*.outcome)
    )]
    NotStable {
        /// The service.
        service: String,
        /// The revision asked for.
        number: u64,
        /// What became of it.
        outcome: Outcome,
    },
    /// No `--to`, and no revision runs as the current one to go back from.
    #[error(
        "failed to choose a revision to roll back {service} to: none runs as the current one; name one with --to N (see `berth history {service}`)"
    )]
    NoCurrent {
        /// The service.
        service: String,
    },
    /// No `--to`, and nothing stable is older than the current revision.
    #[error(
        "failed to choose a revision to roll back {service} to: there is no stable revision older than the current r{current}"
    )]
    NoEarlierStable {
        /// The service.
        service: String,
        /// The current revision.
        current: u64,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no service has a record there yet (has `berth apply` or `berth run` used this --data-dir?)"
            .into()
    } else {
        format!("services with records: {}", known.join(", "))
    }
}

fn revision_list(have: &[u64]) -> String {
    if have.is_empty() {
        "the history is empty".into()
    } else {
        let list: Vec<String> = have.iter().map(|n| format!("r{n}")).collect();
        format!("it has {}", list.join(", "))
    }
}

fn outcome_words(o: Outcome) -> &'static str {
    match o {
        Outcome::InProgress => "is still being rolled out",
        Outcome::Succeeded => "runs now but never became stable",
        Outcome::Failed => "failed",
        Outcome::Reverted => "failed and was reverted",
        Outcome::Superseded => "was replaced before it became stable",
    }
}

/// A command's decision: the control file to write and what to tell the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The new control (unchanged: nothing is written).
    pub control: Control,
    /// What happens, in words (one or more lines, no trailing newline).
    pub message: String,
}

/// `berth retry`: quarantines and degradation recorded until `now` are lifted by the
/// controller, which then tries the desired revision again.
pub fn retry(name: &ServiceRef, rec: &ServiceRecord, now: u64) -> Change {
    let mut control = rec.control.clone();
    control.retry_at = Some(now);
    let mut lines = Vec::new();
    if rec.quarantined.is_empty() {
        lines.push(format!("{name}: nothing is quarantined"));
    } else {
        for q in &rec.quarantined {
            lines.push(format!(
                "{name}: lifting the quarantine of {} ({}): berth tries it again if the desired state still asks for it",
                short(&q.spec_hash),
                q.reason
            ));
        }
    }
    if let Some(g) = &rec.degraded {
        lines.push(format!(
            "{name}: lifting the degraded state ({}): berth acts on it again",
            g.reason
        ));
    }
    if control.hold.is_some() || control.rollback_to.is_some() {
        lines.push(format!(
            "{name}: still held by `berth {}`: nothing is rolled out until `berth release {name}`",
            if control.rollback_to.is_some() {
                "rollback"
            } else {
                "hold"
            }
        ));
    }
    Change {
        control,
        message: lines.join("\n"),
    }
}

/// `berth hold`: the controller keeps the service exactly as it runs.
pub fn hold(name: &ServiceRef, rec: &ServiceRecord, now: u64) -> Change {
    let mut control = rec.control.clone();
    let message = match control.hold {
        Some(since) => format!("{name}: already held since {}; nothing changes", utc(since)),
        None => {
            control.hold = Some(now);
            format!(
                "{name}: held: berth keeps it exactly as it runs (no rollout, no revert) until `berth release {name}`"
            )
        }
    };
    Change { control, message }
}

/// `berth release`: ends a hold and a rollback; the service returns to the desired state.
pub fn release(name: &ServiceRef, rec: &ServiceRecord) -> Change {
    let mut control = rec.control.clone();
    let message = match (control.hold.take(), control.rollback_to.take()) {
        (None, None) => format!("{name}: not held; nothing changes"),
        (_, Some(n)) => format!(
            "{name}: released from the rollback to r{n}: berth rolls it to the desired state again"
        ),
        (Some(_), None) => {
            format!("{name}: released: berth rolls it to the desired state again")
        }
    };
    Change { control, message }
}

/// `berth rollback [--to N]`: the controller rolls the service back to revision N through the
/// readiness gate and holds it there until `berth release`. Without `to`, N is the newest
/// stable revision older than the current one.
pub fn rollback(
    name: &ServiceRef,
    rec: &ServiceRecord,
    to: Option<u64>,
) -> Result<Change, ControlError> {
    let service = name.to_string();
    let target = match to {
        Some(number) => {
            let r = rec
                .revision(number)
                .ok_or_else(|| ControlError::NoSuchRevision {
                    service: service.clone(),
                    number,
                    have: rec.revisions.iter().map(|r| r.number).collect(),
                })?;
            if !r.stable {
                return Err(ControlError::NotStable {
                    service,
                    number,
                    outcome: r.outcome,
                });
            }
            r
        }
        None => {
            let current = rec.current().ok_or_else(|| ControlError::NoCurrent {
                service: service.clone(),
            })?;
            rec.revisions
                .iter()
                .rev()
                .find(|r| r.stable && r.number < current.number)
                .ok_or(ControlError::NoEarlierStable {
                    service,
                    current: current.number,
                })?
        }
    };
    let mut control = rec.control.clone();
    control.rollback_to = Some(target.number);
    let mut lines = vec![format!(
        "{name}: rolling back to r{} ({}, spec {}) through the readiness gate; it stays there until `berth release {name}`",
        target.number,
        image(target),
        short(&target.spec_hash)
    )];
    if rec.current().is_some_and(|c| c.number == target.number) {
        lines.push(format!(
            "{name}: r{} already runs: it is held there",
            target.number
        ));
    }
    if let Some(prev) = rec.control.rollback_to.filter(|p| *p != target.number) {
        lines.push(format!("{name}: replaces the rollback to r{prev}"));
    }
    if target.template.is_none() {
        lines.push(format!(
            "{name}: note: r{} was adopted from containers berth did not create and has no recorded template: rolling back to it only works while its kept container exists",
            target.number
        ));
    }
    Ok(Change {
        control,
        message: lines.join("\n"),
    })
}

/// `berth history --json`: the record as stored, with its control. Container templates are left
/// out (they hold the service's environment, secrets included); `has_template` says whether
/// there is one.
pub fn history_json(name: &ServiceRef, rec: &ServiceRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if let Some(revs) = v.get_mut("revisions").and_then(Value::as_array_mut) {
        for r in revs {
            if let Some(r) = r.as_object_mut() {
                let has = r.remove("template").is_some_and(|t| !t.is_null());
                r.insert("has_template".into(), Value::Bool(has));
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("project".into(), Value::String(name.project.clone()));
    out.insert("service".into(), Value::String(name.service.clone()));
    if let Value::Object(fields) = v {
        out.extend(fields);
    }
    out.insert(
        "control".into(),
        serde_json::to_value(&rec.control).unwrap_or(Value::Null),
    );
    Value::Object(out)
}

/// What each revision changed from the one before it (`reconcile::diff`), and the last log
/// lines kept of failed ones.
fn changes(out: &mut String, name: &ServiceRef, rec: &ServiceRecord) {
    let pairs: Vec<String> = rec
        .revisions
        .windows(2)
        .filter(|w| !w[1].image_id.is_empty())
        .map(|w| {
            format!(
                "  r{} (from r{}): {}",
                w[1].number,
                w[0].number,
                crate::reconcile::diff::between(&w[0], &w[1])
            )
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(out, "\nchanges:");
        for p in pairs {
            let _ = writeln!(out, "{p}");
        }
    }
    for r in rec.revisions.iter().filter(|r| r.logs.is_some()) {
        let Some(logs) = r.logs.as_deref() else {
            continue;
        };
        let _ = writeln!(
            out,
            "\nr{} last log lines (berth logs {name} --revision r{}):",
            r.number, r.number
        );
        for line in logs.lines() {
            let _ = writeln!(out, "  | {line}");
        }
    }
}

/// `berth history`: the revisions (oldest first, the current one marked `*`, the one a rollout
/// in progress goes to `>`), then what holds
/// the service: quarantines, degradation, the rollout in progress, the operator's control.
pub fn history(name: &ServiceRef, rec: &ServiceRecord, now: u64) -> String {
    let mut out = String::new();
    let current = rec.current().map(|r| r.number);
    // The revision a rollout in progress goes to (an update, a revert, an operator's
    // rollback): it is not the current one until it passed, but it is the one starting now.
    let going = rec
        .active
        .as_ref()
        .filter(|a| Some(a.revision) != current)
        .map(|a| {
            let verb = match a.kind {
                RolloutKind::Update => "rolling out",
                RolloutKind::Revert { .. } => "reverting to",
                RolloutKind::Rollback => "rolling back to",
            };
            (a.revision, format!("; {verb} r{} (marked >)", a.revision))
        });
    let (going_n, going_words) = going.map_or((None, String::new()), |(n, w)| (Some(n), w));
    let count = match rec.revisions.len() {
        1 => "1 revision".to_string(),
        n => format!("{n} revisions"),
    };
    let _ = match current {
        _ if rec.revisions.is_empty() => writeln!(out, "{name}: no revisions recorded"),
        Some(c) => writeln!(out, "{name}: {count}, current r{c} (marked *){going_words}"),
        None => writeln!(
            out,
            "{name}: {count}, none runs as the current one{going_words}"
        ),
    };
    if !rec.revisions.is_empty() {
        out.push('\n');
        let mut rows = vec![
            [
                "",
                "REV",
                "IMAGE",
                "ID",
                "SPEC",
                "CREATED (UTC)",
                "READY",
                "STABLE",
                "OUTCOME",
                "PIN",
                "REASON",
            ]
            .map(String::from),
        ];
        for r in &rec.revisions {
            rows.push([
                if Some(r.number) == current {
                    "*"
                } else if Some(r.number) == going_n {
                    ">"
                } else {
                    ""
                }
                .into(),
                format!("r{}", r.number),
                image_ref(r).into(),
                short(r.image_id.strip_prefix("sha256:").unwrap_or(&r.image_id)).into(),
                short(&r.spec_hash).into(),
                utc(r.created_at),
                r.ready_at.map_or("-".into(), |t| {
                    format!("+{}", duration(t.saturating_sub(r.created_at)))
                }),
                if r.stable { "yes" } else { "no" }.into(),
                outcome(r.outcome).into(),
                r.pin.clone().unwrap_or_else(|| "-".into()),
                r.reason.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        table(&mut out, &rows);
        // A revision whose image build failed has neither image nor template: nothing to say.
        for r in rec
            .revisions
            .iter()
            .filter(|r| r.template.is_none() && !r.image_id.is_empty())
        {
            let _ = writeln!(
                out,
                "  r{}: no recorded template (adopted from containers berth did not create): a rollback to it works only while its kept container exists",
                r.number
            );
        }
    }
    out.push('\n');
    let ago = |t: u64| format!("{} ({} ago)", utc(t), duration(now.saturating_sub(t)));

    let mut quarantined = rec.quarantined.iter().map(|q| {
        format!(
            "{} since {}: {}",
            short(&q.spec_hash),
            ago(q.since),
            q.reason
        )
    });
    field(
        &mut out,
        "quarantined",
        quarantined.next().unwrap_or_else(|| "none".into()),
    );
    for more in quarantined {
        field(&mut out, "", more);
    }

    field(
        &mut out,
        "degraded",
        match &rec.degraded {
            Some(g) => format!("since {}: {}", ago(g.since), g.reason),
            None => "no".into(),
        },
    );

    field(
        &mut out,
        "rollout",
        match &rec.active {
            None => "none".into(),
            Some(a) => {
                let kind = match a.kind {
                    RolloutKind::Update => "update".to_string(),
                    RolloutKind::Revert { failed } => format!("revert (r{failed} failed)"),
                    RolloutKind::Rollback => "rollback".to_string(),
                };
                let passed = a
                    .slots
                    .values()
                    .filter(|s| s.passed_at.is_some() && !s.failed)
                    .count();
                let failed = a.slots.values().filter(|s| s.failed).count();
                let waiting = a.slots.len() - passed - failed;
                let mut s = format!(
                    "{kind} to r{}, started {}: {}",
                    a.revision,
                    ago(a.started_at),
                    counted(passed, "replica passed", "replicas passed")
                );
                if failed > 0 {
                    let _ = write!(s, ", {failed} failed (tolerated)");
                }
                if waiting > 0 {
                    let _ = write!(s, ", {waiting} in the gate");
                }
                for (what, run) in [("pre_deploy", &a.pre_deploy), ("smoke", &a.smoke)] {
                    match run.as_ref().map(|r| r.exit_code) {
                        Some(Some(code)) => {
                            let _ = write!(s, "; {what} exited {code}");
                        }
                        Some(None) => {
                            let _ = write!(s, "; {what} running");
                        }
                        None => {}
                    }
                }
                if let Some(p) = &a.paused {
                    let _ = write!(s, "; paused: {p}");
                }
                s
            }
        },
    );

    let c = &rec.control;
    let mut parts = Vec::new();
    if let Some(t) = c.hold {
        parts.push(format!("held since {}", ago(t)));
    }
    if let Some(n) = c.rollback_to {
        parts.push(format!(
            "rolled back to r{n} (held there until `berth release`)"
        ));
    }
    if let Some(t) = c.retry_at {
        parts.push(format!("retry asked {}", ago(t)));
    }
    field(
        &mut out,
        "control",
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join("; ")
        },
    );

    if let Some(last) = rec.restarts.last() {
        field(
            &mut out,
            "restarts",
            format!(
                "{} recently, the last {}",
                counted(
                    rec.restarts.len(),
                    "self-heal restart",
                    "self-heal restarts"
                ),
                ago(*last)
            ),
        );
    }
    let mut jobs = rec.jobs.iter().map(|j| {
        // Runs recorded before berth numbered jobs have only their spec hash.
        let which = match j.number {
            0 => short(&j.spec_hash).to_string(),
            n => format!("r{n} ({})", short(&j.spec_hash)),
        };
        format!("{which} exited {} at {}", j.exit_code, ago(j.finished_at))
    });
    if let Some(first) = jobs.next() {
        field(&mut out, "job runs", first);
        for more in jobs {
            field(&mut out, "", more);
        }
    }
    changes(&mut out, name, rec);
    out
}

fn field(out: &mut String, label: &str, value: String) {
    let _ = writeln!(out, "{label:<12} {value}");
}

fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Aligned columns, two spaces apart; the last column is not padded.
fn table<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}", w = widths[i]);
                line.push_str(if i == 0 { " " } else { "  " });
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn image_ref(r: &Revision) -> &str {
    if r.image_ref.is_empty() {
        "(adopted)"
    } else {
        &r.image_ref
    }
}

fn image(r: &Revision) -> String {
    let id = short(r.image_id.strip_prefix("sha256:").unwrap_or(&r.image_id));
    format!("{} {id}", image_ref(r))
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::InProgress => "in progress",
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Reverted => "reverted",
        Outcome::Superseded => "superseded",
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(secs: u64) -> String {
    let c = Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// A duration in the two largest units: `45s`, `2m5s`, `3h2m`, `4d3h`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

#[cfg(test)]
mod tests {
    use indoc::indoc;

    use super::*;
    use crate::engine::ContainerCreate;
    use crate::store::{GateRun, Rollout, Slot};

    /// 2025-03-01 12:00:00 UTC.
    const T0: u64 = 1_740_830_400;

    fn web() -> ServiceRef {
        "shop/web".parse().unwrap()
    }

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// r1 adopted (no template), r2 stable, r3 failed and reverted, r4 rolling out.
    fn busy() -> ServiceRecord {
        let mut rec = ServiceRecord::default();
        rec.begin(&hash('a'), "", "sha256:1111111111111111", T0);
        rec.mark_ready(1, T0).unwrap();
        rec.mark_stable(1).unwrap();
        for (n, (c, image, id)) in [
            ('b', "app:1", "sha256:2222222222222222"),
            ('c', "app:2", "sha256:3333333333333333"),
        ]
        .into_iter()
        .enumerate()
        {
            let t = T0 + 600 * (n as u64 + 1);
            let r = rec.begin(&hash(c), image, id, t).number;
            rec.revision_mut(r).unwrap().template = Some(ContainerCreate::default());
        }
        rec.mark_ready(2, T0 + 608).unwrap();
        rec.mark_stable(2).unwrap();
        rec.revision_mut(2).unwrap().pin = Some("berth-pin/shop/web:r2".into());
        rec.mark_failed(3, "not ready within 1m", T0 + 1260)
            .unwrap();
        rec.mark_reverted(3).unwrap();
        let r4 = rec
            .begin(&hash('d'), "app:3", "sha256:4444444444444444", T0 + 1800)
            .number;
        rec.revision_mut(r4).unwrap().template = Some(ContainerCreate::default());
        rec.active = Some(Rollout {
            revision: 4,
            kind: RolloutKind::Update,
            started_at: T0 + 1800,
            slots: [
                (
                    1,
                    Slot {
                        started_at: T0 + 1805,
                        ready_since: Some(T0 + 1810),
                        passed_at: Some(T0 + 1820),
                        failed: false,
                        seen_running: false,
                        ..Slot::default()
                    },
                ),
                (
                    2,
                    Slot {
                        started_at: T0 + 1825,
                        ..Slot::default()
                    },
                ),
            ]
            .into(),
            pre_deploy: Some(GateRun {
                started_at: T0 + 1801,
                exit_code: Some(0),
            }),
            smoke: None,
            paused: None,
        });
        rec
    }

    #[test]
    fn history_shows_revisions_quarantine_and_the_active_rollout() {
        let mut rec = busy();
        rec.control.hold = Some(T0 + 1900);
        rec.record_job(&hash('m'), 0, T0 + 5);
        assert_eq!(
            history(&web(), &rec, T0 + 1930),
            indoc! {"
            shop/web: 4 revisions, current r2 (marked *); rolling out r4 (marked >)

              REV  IMAGE      ID            SPEC          CREATED (UTC)        READY  STABLE  OUTCOME      PIN                    REASON
              r1   (adopted)  111111111111  aaaaaaaaaaaa  2025-03-01 12:00:00  +0s    yes     superseded   -                      -
            * r2   app:1      222222222222  bbbbbbbbbbbb  2025-03-01 12:10:00  +8s    yes     succeeded    berth-pin/shop/web:r2  -
              r3   app:2      333333333333  cccccccccccc  2025-03-01 12:20:00  -      no      reverted     -                      not ready within 1m
            > r4   app:3      444444444444  dddddddddddd  2025-03-01 12:30:00  -      no      in progress  -                      -
              r1: no recorded template (adopted from containers berth did not create): a rollback to it works only while its kept container exists

            quarantined  cccccccccccc since 2025-03-01 12:21:00 (11m10s ago): not ready within 1m
            degraded     no
            rollout      update to r4, started 2025-03-01 12:30:00 (2m10s ago): 1 replica passed, 1 in the gate; pre_deploy exited 0
            control      held since 2025-03-01 12:31:40 (30s ago)
            job runs     r1 (mmmmmmmmmmmm) exited 0 at 2025-03-01 12:00:05 (32m5s ago)

            changes:
              r2 (from r1): image 111111111111 → app:1 (other fields: not recorded for the earlier revision)
              r3 (from r2): image app:1 → app:2
              r4 (from r3): image app:2 → app:3
        "}
        );
    }

    #[test]
    fn history_of_a_degraded_rolled_back_service() {
        let mut rec = busy();
        rec.active = Some(Rollout {
            revision: 2,
            kind: RolloutKind::Revert { failed: 3 },
            started_at: T0 + 1261,
            slots: Default::default(),
            pre_deploy: None,
            smoke: Some(GateRun {
                started_at: T0 + 1262,
                exit_code: None,
            }),
            paused: Some("smoke exited 1".into()),
        });
        rec.degraded = Some(crate::store::Degraded {
            since: T0 + 1300,
            reason: "r2 failed too: exited 1".into(),
            spec_hash: hash('c'),
        });
        rec.quarantined.push(crate::store::Quarantine {
            spec_hash: hash('e'),
            since: T0 + 10,
            reason: "smoke exited 2".into(),
            log: None,
        });
        rec.restarts = vec![T0 + 3000, T0 + 3060];
        rec.control = Control {
            hold: None,
            rollback_to: Some(1),
            retry_at: Some(T0 + 90_000),
        };
        let text = history(&web(), &rec, T0 + 2 * 86_400 + 3 * 3600);
        let tail = text
            .split_once("\n\n")
            .unwrap()
            .1
            .split_once("\n\n")
            .unwrap()
            .1;
        assert_eq!(
            tail,
            indoc! {"
            quarantined  cccccccccccc since 2025-03-01 12:21:00 (2d2h ago): not ready within 1m
                         eeeeeeeeeeee since 2025-03-01 12:00:10 (2d2h ago): smoke exited 2
            degraded     since 2025-03-01 12:21:40 (2d2h ago): r2 failed too: exited 1
            rollout      revert (r3 failed) to r2, started 2025-03-01 12:21:01 (2d2h ago): 0 replicas passed; smoke running; paused: smoke exited 1
            control      rolled back to r1 (held there until `berth release`); retry asked 2025-03-02 13:00:00 (1d2h ago)
            restarts     2 self-heal restarts recently, the last 2025-03-01 12:51:00 (2d2h ago)

            changes:
              r2 (from r1): image 111111111111 → app:1 (other fields: not recorded for the earlier revision)
              r3 (from r2): image app:1 → app:2
              r4 (from r3): image app:2 → app:3
        "}
        );
    }

    #[test]
    fn history_of_an_empty_record() {
        assert_eq!(
            history(&web(), &ServiceRecord::default(), T0),
            indoc! {"
            shop/web: no revisions recorded

            quarantined  none
            degraded     no
            rollout      none
            control      none
        "}
        );
    }

    #[test]
    fn json_leaves_templates_out_and_carries_the_control() {
        let mut rec = busy();
        rec.revision_mut(2).unwrap().template = Some(ContainerCreate {
            env: vec!["DB_PASSWORD=hunter2".into()],
            ..ContainerCreate::default()
        });
        rec.control.rollback_to = Some(2);
        let v = history_json(&web(), &rec);
        assert!(!v.to_string().contains("hunter2"));
        assert_eq!(v["project"], "shop");
        assert_eq!(v["service"], "web");
        assert_eq!(v["revisions"][0]["has_template"], false);
        assert_eq!(v["revisions"][1]["has_template"], true);
        assert!(v["revisions"][1].get("template").is_none());
        assert_eq!(v["revisions"][2]["outcome"], "reverted");
        assert_eq!(v["quarantined"][0]["reason"], "not ready within 1m");
        assert_eq!(v["active"]["kind"], "update");
        assert_eq!(v["control"]["rollback_to"], 2);
    }

    #[test]
    fn rollback_defaults_to_the_newest_stable_revision_before_the_current_one() {
        let c = rollback(&web(), &busy(), None).unwrap();
        assert_eq!(c.control.rollback_to, Some(1));
        assert_eq!(
            c.message,
            "shop/web: rolling back to r1 ((adopted) 111111111111, spec aaaaaaaaaaaa) through the readiness gate; it stays there until `berth release shop/web`\nshop/web: note: r1 was adopted from containers berth did not create and has no recorded template: rolling back to it only works while its kept container exists"
        );
    }

    #[test]
    fn rollback_to_a_stable_revision_keeps_the_other_controls() {
        let mut rec = busy();
        rec.control.hold = Some(T0);
        rec.control.retry_at = Some(T0);
        let c = rollback(&web(), &rec, Some(2)).unwrap();
        assert_eq!(
            c.control,
            Control {
                hold: Some(T0),
                rollback_to: Some(2),
                retry_at: Some(T0)
            }
        );
        assert_eq!(
            c.message,
            "shop/web: rolling back to r2 (app:1 222222222222, spec bbbbbbbbbbbb) through the readiness gate; it stays there until `berth release shop/web`\nshop/web: r2 already runs: it is held there"
        );
    }

    #[test]
    fn rollback_refusals() {
        let rec = busy();
        let cases: &[(&ServiceRecord, Option<u64>, &str)] = &[
            (
                &rec,
                Some(9),
                "failed to roll back shop/web: there is no r9 in its history (it has r1, r2, r3, r4)",
            ),
            (
                &rec,
                Some(3),
                "failed to roll back shop/web to r3: it is not stable (it failed and was reverted); only a revision that was ready and stable can be rolled back to",
            ),
            (
                &rec,
                Some(4),
                "failed to roll back shop/web to r4: it is not stable (it is still being rolled out); only a revision that was ready and stable can be rolled back to",
            ),
            (
                &ServiceRecord::default(),
                None,
                "failed to choose a revision to roll back shop/web to: none runs as the current one; name one with --to N (see `berth history shop/web`)",
            ),
        ];
        for (rec, to, want) in cases {
            let err = rollback(&web(), rec, *to).unwrap_err();
            assert_eq!(err.to_string(), *want, "--to {to:?}");
        }
        let mut first = ServiceRecord::default();
        first.begin("a", "app:1", "sha256:1", T0);
        first.mark_stable(1).unwrap();
        assert_eq!(
            rollback(&web(), &first, None).unwrap_err().to_string(),
            "failed to choose a revision to roll back shop/web to: there is no stable revision older than the current r1"
        );
    }

    #[test]
    fn retry_names_what_it_lifts() {
        let c = retry(&web(), &busy(), T0 + 5000);
        assert_eq!(c.control.retry_at, Some(T0 + 5000));
        assert_eq!(
            c.message,
            "shop/web: lifting the quarantine of cccccccccccc (not ready within 1m): berth tries it again if the desired state still asks for it"
        );

        let c = retry(&web(), &ServiceRecord::default(), T0);
        assert_eq!(c.control.retry_at, Some(T0));
        assert_eq!(c.message, "shop/web: nothing is quarantined");

        let rec = ServiceRecord {
            degraded: Some(crate::store::Degraded {
                since: T0,
                reason: "5 self-heal restarts within 10m".into(),
                spec_hash: hash('a'),
            }),
            control: Control {
                hold: Some(T0),
                ..Control::default()
            },
            ..ServiceRecord::default()
        };
        assert_eq!(
            retry(&web(), &rec, T0 + 1).message,
            indoc! {"
                shop/web: nothing is quarantined
                shop/web: lifting the degraded state (5 self-heal restarts within 10m): berth acts on it again
                shop/web: still held by `berth hold`: nothing is rolled out until `berth release shop/web`"}
        );
    }

    #[test]
    fn hold_and_release() {
        let mut rec = ServiceRecord::default();
        let held = hold(&web(), &rec, T0);
        assert_eq!(held.control.hold, Some(T0));
        rec.control = held.control;
        let again = hold(&web(), &rec, T0 + 60);
        assert_eq!(again.control, rec.control);
        assert_eq!(
            again.message,
            "shop/web: already held since 2025-03-01 12:00:00; nothing changes"
        );

        rec.control.rollback_to = Some(1);
        rec.control.retry_at = Some(T0);
        let released = release(&web(), &rec);
        assert_eq!(
            released.control,
            Control {
                retry_at: Some(T0),
                ..Control::default()
            }
        );
        assert_eq!(
            released.message,
            "shop/web: released from the rollback to r1: berth rolls it to the desired state again"
        );
        rec.control = released.control;
        assert_eq!(release(&web(), &rec).control, rec.control);
    }

    #[test]
    fn service_refs_and_revisions_parse() {
        assert_eq!(
            "shop/web".parse::<ServiceRef>().unwrap(),
            ServiceRef {
                project: "shop".into(),
                service: "web".into()
            }
        );
        for bad in ["shop", "/web", "shop/", "a/b/c", ""] {
            assert!(bad.parse::<ServiceRef>().is_err(), "{bad:?}");
        }
        assert_eq!(parse_revision("3"), Ok(3));
        assert_eq!(parse_revision("r12"), Ok(12));
        assert!(parse_revision("r").is_err());
        assert!(parse_revision("-1").is_err());
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(T0), "2025-03-01 12:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59");
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (125, "2m5s"),
            (3600, "1h"),
            (3720, "1h2m"),
            (86_400, "1d"),
            (90_000, "1d1h"),
            (86_400 + 60, "1d"),
        ];
        for (secs, want) in cases {
            assert_eq!(duration(secs), want, "{secs}");
        }
    }
}
