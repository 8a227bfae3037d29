//! What `berth run`'s update checks (`crate::update::auto`) tell people and machines: per
//! service the last check in the status (`update`: pending, applied, skipped and why, or the
//! check's error), the events `update_found`, `update_skipped` (reason `outside_window`,
//! `too_new`, `unknown_age`), `update_applied`, `update_failed` and `update_check_failed`, and
//! the metrics `berth_updates_pending{project,service}` and
//! `berth_update_checks_total{result}`.
//!
//! Called from the update task, not from a round: it takes the hub's lock briefly, and hands
//! events to the event log and notifier like a round's. An event is announced once per service
//! and what it is about (the same skipped version at every interval is not news; a new
//! version, a new reason or a new error is). Messages carry image references and the errors'
//! causes, which name registries but never hold their credentials.

use std::collections::BTreeMap;

use super::status::{Status, UpdateStatus};
use super::time::Timestamp;
use super::{State, Telemetry, log_event, service_event};
use crate::desired::DesiredState;
use crate::update::auto::Report;
use crate::update::schedule::Act;

/// The kind of an update event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpdateEventKind {
    /// A newer image fits the policy and may be applied now.
    Found,
    /// It was written into the directory, or committed and pushed.
    Applied,
    /// A newer image fits but waits (window, minimum age).
    Skipped,
    /// Writing or pushing it failed.
    ApplyFailed,
    /// The registry could not be asked.
    CheckFailed,
}

impl UpdateEventKind {
    /// The event's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "update_found",
            Self::Applied => "update_applied",
            Self::Skipped => "update_skipped",
            Self::ApplyFailed => "update_failed",
            Self::CheckFailed => "update_check_failed",
        }
    }

    fn severity(self) -> &'static str {
        match self {
            Self::Found | Self::Applied | Self::Skipped => "info",
            Self::CheckFailed => "warning",
            Self::ApplyFailed => "error",
        }
    }
}

/// One event a report makes, before de-duplication.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UpdateEvent {
    kind: UpdateEventKind,
    /// Stable label: the policy (found, applied), the skip's label, `apply_failed`,
    /// `registry`.
    reason: &'static str,
    message: String,
    /// What makes it news: the same `about` again is not announced again.
    about: String,
}

/// What the hub remembers of a service's update checks.
#[derive(Debug, Clone, Default)]
pub(super) struct UpdateMemory {
    /// The last check, for the status.
    status: Option<UpdateStatus>,
    /// What was last announced per kind.
    announced: BTreeMap<UpdateEventKind, String>,
}

impl Telemetry {
    /// Takes in one service's update check that ended at `now` (unix seconds).
    pub fn update_report(&self, r: &Report, now: u64) {
        let status = status_of(r, now);
        self.metrics
            .update_check(&r.project, &r.service, &status.state, r.act.pending());
        let key = (r.project.clone(), r.service.clone());
        let mut fresh = Vec::new();
        {
            let mut st = self.lock();
            let memory = st.updates.entry(key.clone()).or_default();
            memory.status = Some(status);
            match &r.act {
                // Nothing newer: what was announced is over.
                Act::Nothing => memory.announced.clear(),
                // A check that worked ends a failing streak.
                _ if !matches!(r.act, Act::Failed(_)) => {
                    memory.announced.remove(&UpdateEventKind::CheckFailed);
                }
                _ => {}
            }
            for e in events(r) {
                let news = e.kind == UpdateEventKind::Applied
                    || memory.announced.get(&e.kind) != Some(&e.about);
                if e.kind == UpdateEventKind::Applied {
                    memory.announced.remove(&UpdateEventKind::ApplyFailed);
                }
                if news {
                    memory.announced.insert(e.kind, e.about.clone());
                    fresh.push(service_event(
                        &r.project,
                        &r.service,
                        e.kind.as_str(),
                        e.reason,
                        e.message,
                        None,
                        e.kind.severity(),
                    ));
                }
            }
            let now_status = st_status(&st.updates, &key);
            if let Some(status) = st.status.as_mut() {
                overlay_one(status, &key, now_status);
            }
        }
        for e in fresh {
            log_event(&e);
            let rec = self.events.push(e, now);
            if let Some(n) = &self.notifier {
                n.send(&rec);
            }
        }
    }
}

fn st_status(
    updates: &std::collections::HashMap<(String, String), UpdateMemory>,
    key: &(String, String),
) -> Option<UpdateStatus> {
    updates.get(key).and_then(|m| m.status.clone())
}

fn overlay_one(status: &mut Status, key: &(String, String), update: Option<UpdateStatus>) {
    if let Some(s) = status
        .services
        .iter_mut()
        .find(|s| s.project == key.0 && s.service == key.1)
    {
        s.update = update;
    }
}

impl Telemetry {
    /// After a round: forgets the services that no longer have an update policy in
    /// `desired` (their status and `berth_updates_pending` series go), and puts each
    /// remaining service's last check into `status`.
    pub(super) fn overlay_updates(
        &self,
        st: &mut State,
        status: &mut Status,
        desired: Option<&DesiredState>,
    ) {
        if let Some(desired) = desired {
            let keep = |(p, s): &(String, String)| {
                desired
                    .projects
                    .get(p)
                    .and_then(|p| p.services.get(s))
                    .is_some_and(|s| s.berth.update.is_some())
            };
            let gone: Vec<(String, String)> =
                st.updates.keys().filter(|k| !keep(k)).cloned().collect();
            for k in gone {
                st.updates.remove(&k);
                self.metrics.update_forget(&k.0, &k.1);
            }
        }
        for s in &mut status.services {
            s.update = st_status(&st.updates, &(s.project.clone(), s.service.clone()));
        }
    }
}

/// The status of a report's check.
fn status_of(r: &Report, now: u64) -> UpdateStatus {
    let (from, to, reason, message) = match &r.act {
        Act::Nothing => (
            None,
            None,
            None,
            "no newer image fits the policy".to_string(),
        ),
        Act::Apply(u) => (
            Some(u.from.clone()),
            Some(u.to.clone()),
            None,
            match &r.applied {
                Some(Ok(to)) => format!("written: {to}; the rollout follows"),
                Some(Err(e)) => format!("failed to write it: {e}"),
                None => "found".to_string(),
            },
        ),
        Act::AlreadyApplied(u) => (
            Some(u.from.clone()),
            Some(u.to.clone()),
            None,
            "written; waiting for the source to roll it in".to_string(),
        ),
        Act::Skip(u, skip) => (
            Some(u.from.clone()),
            Some(u.to.clone()),
            Some(skip.label().to_string()),
            format!("waits: {skip}"),
        ),
        Act::Failed(e) => (None, None, None, e.clone()),
    };
    let state = match (&r.act, &r.applied) {
        (Act::Apply(_), Some(Ok(_))) => "applied",
        (act, _) => act.label(),
    };
    UpdateStatus {
        policy: r.policy.to_string(),
        state: state.to_string(),
        checked_at: Timestamp(now),
        from,
        to,
        reason,
        message,
    }
}

/// The events a report makes (before de-duplication).
fn events(r: &Report) -> Vec<UpdateEvent> {
    match &r.act {
        Act::Nothing | Act::AlreadyApplied(_) => Vec::new(),
        Act::Failed(e) => vec![UpdateEvent {
            kind: UpdateEventKind::CheckFailed,
            reason: "registry",
            message: format!("failed to check for updates: {e}"),
            about: e.clone(),
        }],
        Act::Skip(u, skip) => vec![UpdateEvent {
            kind: UpdateEventKind::Skipped,
            reason: skip.label(),
            message: format!("{} -> {} waits: {skip}", u.from, u.to),
            about: format!("{} {}", u.to, skip.label()),
        }],
        Act::Apply(u) => {
            let mut out = vec![UpdateEvent {
                kind: UpdateEventKind::Found,
                reason: r.policy,
                message: format!("{} -> {} ({} policy)", u.from, u.to, r.policy),
                about: u.to.clone(),
            }];
            match &r.applied {
                Some(Ok(to)) => out.push(UpdateEvent {
                    kind: UpdateEventKind::Applied,
                    reason: r.policy,
                    message: format!("{} -> {}: {to}", u.from, u.to),
                    about: u.to.clone(),
                }),
                Some(Err(e)) => out.push(UpdateEvent {
                    kind: UpdateEventKind::ApplyFailed,
                    reason: "apply_failed",
                    message: format!("failed to apply {} -> {}: {e}", u.from, u.to),
                    about: e.clone(),
                }),
                None => {}
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TelemetryOptions;
    use crate::telemetry::events::Since;
    use crate::update::check::Update;
    use crate::update::choose::Skip;
    use std::time::Duration;

    fn report(act: Act, applied: Option<Result<String, String>>) -> Report {
        Report {
            project: "shop".into(),
            service: "web".into(),
            policy: "semver",
            act,
            applied,
        }
    }

    fn update() -> Update {
        Update {
            from: "r/app:1.0.0".into(),
            to: "r/app:1.1.0".into(),
            version: "1.1.0".into(),
        }
    }

    fn kinds(t: &Telemetry) -> Vec<(String, String)> {
        t.events_since(Since::All, 100)
            .into_iter()
            .map(|e| (e.kind, e.reason))
            .collect()
    }

    #[test]
    fn a_skip_then_an_apply_are_announced_once_each() {
        let t = Telemetry::new(TelemetryOptions::default());
        let u = update();
        let window = |m: u64| Skip::OutsideWindow {
            opens_in: Duration::from_secs(m * 60),
        };
        t.update_report(&report(Act::Skip(u.clone(), window(30)), None), 10);
        // The same version waiting for the same reason, a minute later: not news.
        t.update_report(&report(Act::Skip(u.clone(), window(29)), None), 70);
        t.update_report(
            &report(Act::Apply(u.clone()), Some(Ok("compose.yaml".into()))),
            1900,
        );
        t.update_report(&report(Act::AlreadyApplied(u.clone()), None), 2000);
        assert_eq!(
            kinds(&t),
            [
                ("update_skipped".to_string(), "outside_window".to_string()),
                ("update_found".to_string(), "semver".to_string()),
                ("update_applied".to_string(), "semver".to_string()),
            ]
        );
        let text = t.metrics_text(false);
        assert!(
            text.contains(r#"berth_updates_pending{project="shop",service="web"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"berth_update_checks_total{result="skipped"} 2"#),
            "{text}"
        );
        // Written at 1900, still written at 2000.
        assert!(
            text.contains(r#"berth_update_checks_total{result="applied"} 2"#),
            "{text}"
        );
        t.update_report(&report(Act::Nothing, None), 2600);
        let text = t.metrics_text(false);
        assert!(
            text.contains(r#"berth_updates_pending{project="shop",service="web"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn a_failing_registry_is_announced_once_until_a_check_works() {
        let t = Telemetry::new(TelemetryOptions::default());
        let failed = || {
            report(
                Act::Failed("registry 127.0.0.1:5000 refused the tag list of app (401)".into()),
                None,
            )
        };
        t.update_report(&failed(), 10);
        t.update_report(&failed(), 20);
        t.update_report(&report(Act::Nothing, None), 30);
        t.update_report(&failed(), 40);
        assert_eq!(
            kinds(&t),
            [
                ("update_check_failed".to_string(), "registry".to_string()),
                ("update_check_failed".to_string(), "registry".to_string()),
            ]
        );
        let text = t.metrics_text(false);
        assert!(
            text.contains(r#"berth_update_checks_total{result="failed"} 3"#),
            "{text}"
        );
    }

    #[test]
    fn a_failed_write_is_an_error_event_and_stays_pending() {
        let t = Telemetry::new(TelemetryOptions::default());
        let u = update();
        let r = report(
            Act::Apply(u.clone()),
            Some(Err("failed to write compose.yaml".into())),
        );
        t.update_report(&r, 10);
        t.update_report(&r, 20);
        let events = t.events_since(Since::All, 100);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].kind, "update_failed");
        assert_eq!(events[1].severity, "error");
        let s = status_of(&r, 20);
        assert_eq!(s.state, "pending");
        assert_eq!(
            s.message,
            "failed to write it: failed to write compose.yaml"
        );
    }

    #[test]
    fn the_status_says_what_waits_and_why() {
        let u = update();
        let s = status_of(
            &report(
                Act::Skip(
                    u,
                    Skip::TooNew {
                        age: Duration::from_secs(60),
                        min_age: Duration::from_secs(3600),
                    },
                ),
                None,
            ),
            5,
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "policy": "semver",
                "state": "skipped",
                "checked_at": "1970-01-01T00:00:05Z",
                "from": "r/app:1.0.0",
                "to": "r/app:1.1.0",
                "reason": "too_new",
                "message": "waits: younger than min_age (60s of 3600s)",
            })
        );
    }
}
