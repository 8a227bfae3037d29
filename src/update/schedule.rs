//! When `berth run` checks a service for updates, and what it does with what a check found.
//!
//! Pure: a [`Schedule`] is berth run's memory of its checks (when each service was last
//! checked, consecutive failures, which repositories are being checked right now, which
//! updates it wrote), and every decision is a method taking `now`. The background task in
//! [`super::auto`] asks [`Schedule::due`] at each tick, starts one check per returned
//! [`Batch`] (one repository: one tag list), hands the findings to [`Schedule::finish`] and
//! carries out the [`Act`]s it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::check::{Finding, Update};
use super::choose::Skip;
use super::spec::UpdateSpec;

/// The longest wait after consecutive failed checks, unless the interval itself is longer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// A service: (project, service).
pub type Key = (String, String);

/// What berth remembers of one service's checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastCheck {
    /// When the last check ended (seconds since the epoch); `None`: check at once.
    pub at: Option<u64>,
    /// Consecutive checks that failed (registry unreachable, refused, unparseable).
    pub failures: u32,
}

/// Whether a service is checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Check it this tick.
    Now,
    /// Not before this long.
    In(Duration),
}

/// The wait between two checks: the interval, doubled for each consecutive failure (a
/// registry that fails is not hammered), at most [`MAX_BACKOFF`] or the interval if longer.
pub fn wait(spec: &UpdateSpec, failures: u32) -> Duration {
    if failures == 0 {
        return spec.interval;
    }
    let doubled = spec
        .interval
        .checked_mul(1u32 << failures.min(16))
        .unwrap_or(Duration::MAX);
    doubled.min(MAX_BACKOFF.max(spec.interval))
}

/// Whether a service with `spec`, last checked as `last`, is due at `now_unix`. The first
/// check is at once; later ones after [`wait`]. A clock that went back counts from `now`.
pub fn due(spec: &UpdateSpec, last: LastCheck, now_unix: u64) -> Due {
    let Some(at) = last.at else {
        return Due::Now;
    };
    let wait = wait(spec, last.failures);
    let elapsed = Duration::from_secs(now_unix.saturating_sub(at));
    if elapsed >= wait {
        Due::Now
    } else {
        Due::In(wait - elapsed)
    }
}

/// What to do with one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Nothing newer: nothing to do.
    Nothing,
    /// Write the update (directory) or commit and push it (git); the rollout follows.
    Apply(Update),
    /// Already written, the source has not caught up yet: do not write it twice.
    AlreadyApplied(Update),
    /// A newer image waits: outside the window, or younger than `min_age`.
    Skip(Update, Skip),
    /// The check failed (the error with its causes); the next one backs off.
    Failed(String),
}

impl Act {
    /// Stable label for metrics (`berth_update_checks_total{result}`) and status.
    pub fn label(&self) -> &'static str {
        match self {
            Act::Nothing => "up_to_date",
            Act::Apply(_) => "pending",
            Act::AlreadyApplied(_) => "applied",
            Act::Skip(..) => "skipped",
            Act::Failed(_) => "failed",
        }
    }

    /// Whether a newer image than the source's waits (found, skipped, or written and not yet
    /// in the source).
    pub fn pending(&self) -> bool {
        matches!(self, Act::Apply(_) | Act::AlreadyApplied(_) | Act::Skip(..))
    }
}

/// What to do with `finding`; `applied` is the last update written for this service (when
/// the source still shows its `from`, the same update is not written again).
pub fn act(finding: &Finding, current_image: &str, applied: Option<&Update>) -> Act {
    match finding {
        Finding::UpToDate => Act::Nothing,
        Finding::Failed(e) => Act::Failed(e.clone()),
        Finding::Skipped(u, skip) => Act::Skip(u.clone(), *skip),
        Finding::Pending(u) => match applied {
            Some(a) if a.to == u.to && a.from == current_image => Act::AlreadyApplied(u.clone()),
            _ => Act::Apply(u.clone()),
        },
    }
}

/// The next [`LastCheck`] after a check at `now_unix` that ended in `finding`.
pub fn after(last: LastCheck, finding: &Finding, now_unix: u64) -> LastCheck {
    LastCheck {
        at: Some(now_unix),
        failures: match finding {
            Finding::Failed(_) => last.failures.saturating_add(1),
            _ => 0,
        },
    }
}

/// A service with an update policy, as the desired state has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The service.
    pub key: Key,
    /// The repository its image is in (`registry/name`): services sharing one are checked
    /// together, with one tag list.
    pub repository: String,
    /// The image as the desired state has it (interpolated).
    pub image: String,
    /// Its update policy.
    pub spec: UpdateSpec,
}

/// One check to start: the due services of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The repository.
    pub repository: String,
    /// Its services that are due, in key order.
    pub services: Vec<Key>,
}

/// berth run's memory of its update checks.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    last: BTreeMap<Key, LastCheck>,
    in_flight: BTreeSet<String>,
    written: BTreeMap<Key, Update>,
}

impl Schedule {
    /// The checks to start at `now_unix`: the due candidates grouped by repository, leaving
    /// out every repository whose check is still running (never two checks of one repository
    /// at once: its services wait for the next tick after it ends).
    pub fn due(&self, candidates: &[Candidate], now_unix: u64) -> Vec<Batch> {
        let mut by_repo: BTreeMap<&str, Vec<Key>> = BTreeMap::new();
        for c in candidates {
            if self.in_flight.contains(&c.repository) {
                continue;
            }
            let last = self.last.get(&c.key).copied().unwrap_or_default();
            if due(&c.spec, last, now_unix) == Due::Now {
                by_repo
                    .entry(c.repository.as_str())
                    .or_default()
                    .push(c.key.clone());
            }
        }
        by_repo
            .into_iter()
            .map(|(repository, mut services)| {
                services.sort();
                Batch {
                    repository: repository.to_string(),
                    services,
                }
            })
            .collect()
    }

    /// `batch`'s check started: its repository is busy until [`Schedule::finish`].
    pub fn begin(&mut self, batch: &Batch) {
        self.in_flight.insert(batch.repository.clone());
    }

    /// The check of `repository` ended at `now_unix` with one finding per service (with the
    /// image the service had when the check began): what to do for each.
    pub fn finish(
        &mut self,
        repository: &str,
        results: &[(Key, String, Finding)],
        now_unix: u64,
    ) -> Vec<(Key, Act)> {
        self.in_flight.remove(repository);
        results
            .iter()
            .map(|(key, image, finding)| {
                let last = self.last.entry(key.clone()).or_default();
                *last = after(*last, finding, now_unix);
                (key.clone(), act(finding, image, self.written.get(key)))
            })
            .collect()
    }

    /// `update` was written into the source (or pushed) for `key`.
    pub fn applied(&mut self, key: &Key, update: &Update) {
        self.written.insert(key.clone(), update.clone());
    }

    /// The service's next check is at once (e.g. the source changed under a running check).
    pub fn recheck(&mut self, key: &Key) {
        if let Some(last) = self.last.get_mut(key) {
            last.at = None;
        }
    }

    /// The source now has `image` for `key`. When that is the `to` of an update berth wrote,
    /// the update landed: it is forgotten and the service is checked again at once, so that
    /// status and metrics stop showing it as pending. Returns whether it landed.
    pub fn source_has(&mut self, key: &Key, image: &str) -> bool {
        if self.written.get(key).is_some_and(|u| u.to == image) {
            self.written.remove(key);
            self.recheck(key);
            return true;
        }
        false
    }

    /// Forgets the services not in `keys` (their policy or the service went away).
    pub fn retain(&mut self, keys: &BTreeSet<Key>) {
        self.last.retain(|k, _| keys.contains(k));
        self.written.retain(|k, _| keys.contains(k));
    }

    /// Whether a check of `repository` is running.
    pub fn is_checking(&self, repository: &str) -> bool {
        self.in_flight.contains(repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::choose;
    use crate::update::spec::{Policy, Window};

    fn spec(interval: u64) -> UpdateSpec {
        UpdateSpec {
            policy: Policy::Semver { range: "^1".into() },
            interval: Duration::from_secs(interval),
            window: None,
            min_age: None,
        }
    }

    fn update() -> Update {
        Update {
            from: "r/app:1.0.0".into(),
            to: "r/app:1.1.0".into(),
            version: "1.1.0".into(),
        }
    }

    fn key(s: &str) -> Key {
        ("shop".into(), s.into())
    }

    fn candidate(service: &str, repository: &str, interval: u64) -> Candidate {
        Candidate {
            key: key(service),
            repository: repository.into(),
            image: format!("{repository}:1.0.0"),
            spec: spec(interval),
        }
    }

    #[test]
    fn first_check_is_at_once_then_every_interval() {
        let s = spec(60);
        assert_eq!(due(&s, LastCheck::default(), 1000), Due::Now);
        let last = after(LastCheck::default(), &Finding::UpToDate, 1000);
        assert_eq!(due(&s, last, 1000), Due::In(Duration::from_secs(60)));
        assert_eq!(due(&s, last, 1059), Due::In(Duration::from_secs(1)));
        assert_eq!(due(&s, last, 1060), Due::Now);
        // A clock that went back waits the whole interval, not forever.
        assert_eq!(due(&s, last, 10), Due::In(Duration::from_secs(60)));
    }

    #[test]
    fn failed_checks_back_off_and_a_success_resets() {
        let s = spec(60);
        let failed = Finding::Failed("failed to reach the registry".into());
        let one = after(LastCheck::default(), &failed, 0);
        assert_eq!(one.failures, 1);
        assert_eq!(due(&s, one, 119), Due::In(Duration::from_secs(1)));
        assert_eq!(due(&s, one, 120), Due::Now);
        let two = after(one, &failed, 0);
        assert_eq!(due(&s, two, 239), Due::In(Duration::from_secs(1)));
        let mut last = two;
        for _ in 0..40 {
            last = after(last, &failed, 0);
        }
        assert_eq!(wait(&s, last.failures), MAX_BACKOFF);
        // An interval longer than the cap is kept.
        assert_eq!(
            wait(&spec(2 * 3600), 5),
            Duration::from_secs(2 * 3600),
            "never checks more often than the interval"
        );
        let ok = after(last, &Finding::UpToDate, 500);
        assert_eq!(
            ok,
            LastCheck {
                at: Some(500),
                failures: 0
            }
        );
    }

    #[test]
    fn due_services_of_one_repository_are_one_batch() {
        let s = Schedule::default();
        let batches = s.due(
            &[
                candidate("web", "r/app", 60),
                candidate("api", "r/other", 60),
                candidate("worker", "r/app", 60),
            ],
            1000,
        );
        assert_eq!(
            batches,
            [
                Batch {
                    repository: "r/app".into(),
                    services: vec![key("web"), key("worker")],
                },
                Batch {
                    repository: "r/other".into(),
                    services: vec![key("api")],
                },
            ]
        );
    }

    #[test]
    fn a_repository_being_checked_is_not_checked_again_until_it_ends() {
        let mut s = Schedule::default();
        let cands = [candidate("web", "r/app", 1), candidate("api", "r/other", 1)];
        let batches = s.due(&cands, 1000);
        s.begin(&batches[0]);
        assert!(s.is_checking("r/app"));
        // The slow r/app check still runs 10 s later: only r/other is started again.
        let again = s.due(&cands, 1010);
        assert_eq!(
            again
                .iter()
                .map(|b| b.repository.as_str())
                .collect::<Vec<_>>(),
            ["r/other"]
        );
        let acts = s.finish(
            "r/app",
            &[(key("web"), "r/app:1.0.0".into(), Finding::UpToDate)],
            1011,
        );
        assert_eq!(acts, [(key("web"), Act::Nothing)]);
        assert!(!s.is_checking("r/app"));
        // Checked at 1011 with a 1 s interval: due again at 1012.
        assert!(s.due(&cands[..1], 1011).is_empty());
        assert_eq!(s.due(&cands[..1], 1012).len(), 1);
    }

    #[test]
    fn a_written_update_is_not_written_twice_and_landing_rechecks_at_once() {
        let mut s = Schedule::default();
        let u = update();
        let cands = [candidate("web", "r/app", 600)];
        let b = s.due(&cands, 0).remove(0);
        s.begin(&b);
        let acts = s.finish(
            "r/app",
            &[(key("web"), u.from.clone(), Finding::Pending(u.clone()))],
            5,
        );
        assert_eq!(acts, [(key("web"), Act::Apply(u.clone()))]);
        s.applied(&key("web"), &u);
        // The source still shows 1.0.0 at the next check: not written again.
        let acts = s.finish(
            "r/app",
            &[(key("web"), u.from.clone(), Finding::Pending(u.clone()))],
            700,
        );
        assert_eq!(acts, [(key("web"), Act::AlreadyApplied(u.clone()))]);
        assert!(s.due(&cands, 701).is_empty());
        // The source shows something else: not the update landing.
        assert!(!s.source_has(&key("web"), "r/app:1.0.0"));
        // It shows 1.1.0: landed, checked again at once (pending ends).
        assert!(s.source_has(&key("web"), &u.to));
        assert_eq!(s.due(&cands, 701).len(), 1);
        assert!(!s.source_has(&key("web"), &u.to), "once");
    }

    #[test]
    fn pending_is_applied_once_and_skips_keep_their_reason() {
        let u = update();
        let pending = Finding::Pending(u.clone());
        assert_eq!(act(&pending, "r/app:1.0.0", None), Act::Apply(u.clone()));
        // Written, the source still shows 1.0.0: not written again.
        assert_eq!(
            act(&pending, "r/app:1.0.0", Some(&u)),
            Act::AlreadyApplied(u.clone())
        );
        // The source moved on (e.g. an operator reverted the file): applied again.
        assert_eq!(
            act(&pending, "r/app:0.9.0", Some(&u)),
            Act::Apply(u.clone())
        );
        assert_eq!(
            act(&Finding::UpToDate, "r/app:1.1.0", Some(&u)),
            Act::Nothing
        );
        let skip = Skip::UnknownAge;
        let skipped = act(&Finding::Skipped(u.clone(), skip), "r/app:1.0.0", None);
        assert_eq!(skipped, Act::Skip(u, skip));
        assert!(skipped.pending());
        assert_eq!(skipped.label(), "skipped");
        assert!(!Act::Failed("x".into()).pending());
    }

    #[test]
    fn services_that_lose_their_policy_are_forgotten() {
        let mut s = Schedule::default();
        let u = update();
        s.finish(
            "r/app",
            &[(key("web"), u.from.clone(), Finding::Pending(u.clone()))],
            5,
        );
        s.applied(&key("web"), &u);
        s.retain(&BTreeSet::new());
        // A service that comes back starts afresh: checked at once, nothing written.
        assert_eq!(s.due(&[candidate("web", "r/app", 600)], 6).len(), 1);
        assert!(!s.source_has(&key("web"), &u.to));
    }

    #[test]
    fn window_and_min_age_turn_a_due_check_into_a_skip() {
        // 03:00 UTC on day 10; the window is 02:00-05:00.
        let now = 10 * 86_400 + 3 * 3600;
        let mut s = spec(60);
        s.window = Some(Window::parse("02:00-05:00").unwrap());
        s.min_age = Some(Duration::from_secs(3600));
        assert_eq!(due(&s, LastCheck::default(), now), Due::Now);
        assert_eq!(choose::admit(&s, now, Some(now - 7200)), Ok(()));
        assert_eq!(
            choose::admit(&s, now, Some(now - 60)),
            Err(Skip::TooNew {
                age: Duration::from_secs(60),
                min_age: Duration::from_secs(3600)
            })
        );
        // 06:00: outside the window, 20 h until it opens.
        let late = now + 3 * 3600;
        assert_eq!(
            choose::admit(&s, late, Some(now - 7200)),
            Err(Skip::OutsideWindow {
                opens_in: Duration::from_secs(20 * 3600)
            })
        );
        let finding = Finding::Skipped(
            update(),
            Skip::OutsideWindow {
                opens_in: Duration::from_secs(20 * 3600),
            },
        );
        assert!(matches!(act(&finding, "r/app:1.0.0", None), Act::Skip(..)));
    }
}
