//! Which image a service's update policy picks among what the registry has, and whether the
//! maintenance window and minimum age let it through now.
//!
//! Pure: the registry's answers, the quarantined versions and `now` come in as values.
//! Never a pre-release under `semver`, never a tag outside the range, never a quarantined
//! version, never a step back.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::time::Duration;

use super::spec::{Policy, UpdateSpec};

/// What a policy makes of a registry's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Nothing newer fits the policy.
    UpToDate,
    /// Move to this tag.
    Tag(String),
}

/// Why a chosen update waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Outside the maintenance window; it opens in this long.
    OutsideWindow {
        /// Until the window opens.
        opens_in: Duration,
    },
    /// The image is younger than `min_age`.
    TooNew {
        /// Its age now.
        age: Duration,
        /// The age it must reach.
        min_age: Duration,
    },
    /// `min_age` is set but the image says nothing of when it was created.
    UnknownAge,
}

impl Skip {
    /// Stable label for metrics and event reasons.
    pub fn label(self) -> &'static str {
        match self {
            Skip::OutsideWindow { .. } => "outside_window",
            Skip::TooNew { .. } => "too_new",
            Skip::UnknownAge => "unknown_age",
        }
    }
}

/// The sentence a person reads (`berth updates`, `berth status`, events); never parsed.
impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::OutsideWindow { opens_in } => write!(
                f,
                "outside its window (opens in {}m)",
                opens_in.as_secs().div_ceil(60)
            ),
            Skip::TooNew { age, min_age } => write!(
                f,
                "younger than min_age ({}s of {}s)",
                age.as_secs(),
                min_age.as_secs()
            ),
            Skip::UnknownAge => write!(f, "min_age set but the image has no creation time"),
        }
    }
}

/// The highest tag among `tags` that `policy` allows, newer than `current`, and not in
/// `quarantined`. `Policy::Digest` keeps the tag: see [`digest_moved`].
pub fn choose(
    policy: &Policy,
    current: &str,
    tags: &[String],
    quarantined: &BTreeSet<String>,
) -> Choice {
    let eligible = tags.iter().filter(|t| !quarantined.contains(*t));
    let best = match policy {
        Policy::Digest => None,
        Policy::Semver { range } => {
            let Ok(req) = semver::VersionReq::parse(range) else {
                return Choice::UpToDate;
            };
            let now = parse_version(current);
            // Keep the running tag's spelling: `v1.4.0` moves to `v1.5.0`, `1.4.0` to `1.5.0`.
            let v_prefix = now.as_ref().map(|(v, _)| *v);
            eligible
                .filter_map(|t| parse_version(t).map(|(v, ver)| (t, v, ver)))
                .filter(|(_, v, ver)| {
                    ver.pre.is_empty()
                        && req.matches(ver)
                        && v_prefix.is_none_or(|p| p == *v)
                        && now.as_ref().is_none_or(|(_, n)| ver > n)
                })
                .max_by(|a, b| a.2.cmp(&b.2).then_with(|| b.0.cmp(a.0)))
                .map(|(t, _, _)| t.clone())
        }
        Policy::Pattern { pattern, allow } => {
            let re = match pattern {
                Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
                    Ok(re) => Some(re),
                    Err(_) => return Choice::UpToDate,
                },
                None => None,
            };
            eligible
                .filter(|t| re.as_ref().is_none_or(|re| re.is_match(t)))
                .filter(|t| allow.is_empty() || allow.contains(t))
                .filter(|t| natural_cmp(t, current) == Ordering::Greater)
                .max_by(|a, b| natural_cmp(a, b).then_with(|| b.cmp(a)))
                .cloned()
        }
    };
    best.map_or(Choice::UpToDate, Choice::Tag)
}

/// Under `Policy::Digest`: whether the tag's digest in the registry (`remote`) differs from
/// the one written or running (`current`; `None` when unknown, which counts as moved) and is
/// not quarantined.
pub fn digest_moved(current: Option<&str>, remote: &str, quarantined: &BTreeSet<String>) -> bool {
    current != Some(remote) && !quarantined.contains(remote)
}

/// Whether an update may be applied now (`now_unix` seconds since the epoch); `created_unix`
/// is when the image was built, if it says.
pub fn admit(spec: &UpdateSpec, now_unix: u64, created_unix: Option<u64>) -> Result<(), Skip> {
    if let Some(window) = spec.window {
        let minute = ((now_unix % 86_400) / 60) as u16;
        let wait = window.minutes_until_open(minute);
        if wait > 0 {
            // The next window opens at the start of a minute; count from this minute's start.
            let opens_in = u64::from(wait) * 60 - now_unix % 60;
            return Err(Skip::OutsideWindow {
                opens_in: Duration::from_secs(opens_in),
            });
        }
    }
    if let Some(min_age) = spec.min_age {
        let Some(created) = created_unix else {
            return Err(Skip::UnknownAge);
        };
        let age = Duration::from_secs(now_unix.saturating_sub(created));
        if age < min_age {
            return Err(Skip::TooNew { age, min_age });
        }
    }
    Ok(())
}

/// A tag read as a semantic version: `1.4.2`, `v1.4.2`, `1.5.0-rc.1`; the bool says whether
/// it had the `v`.
pub fn parse_version(tag: &str) -> Option<(bool, semver::Version)> {
    let (v, rest) = match tag.strip_prefix('v') {
        Some(rest) => (true, rest),
        None => (false, tag),
    };
    semver::Version::parse(rest).ok().map(|ver| (v, ver))
}

/// Natural order: runs of digits compare as numbers (`1.10` after `1.9`), the rest as text.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let n = digits.iter().take_while(|c| **c == b'0').count();
    &digits[n.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::spec::{DEFAULT_INTERVAL, Window};

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn semver(range: &str) -> Policy {
        Policy::Semver {
            range: range.into(),
        }
    }

    #[test]
    fn semver_picks_the_highest_in_range_and_no_prerelease() {
        let t = tags(&[
            "1.4.0",
            "1.4.3",
            "1.5.0",
            "1.6.0-rc.1",
            "2.0.0",
            "latest",
            "1.5",
        ]);
        let none = BTreeSet::new();
        assert_eq!(
            choose(&semver("^1.4"), "1.4.0", &t, &none),
            Choice::Tag("1.5.0".into())
        );
        assert_eq!(
            choose(&semver("~1.4"), "1.4.0", &t, &none),
            Choice::Tag("1.4.3".into())
        );
        assert_eq!(
            choose(&semver("^1.4"), "1.5.0", &t, &none),
            Choice::UpToDate
        );
        assert_eq!(
            choose(&semver(">=1"), "1.5.0", &t, &none),
            Choice::Tag("2.0.0".into())
        );
    }

    #[test]
    fn semver_skips_quarantined_and_keeps_the_v_spelling() {
        let t = tags(&["v1.4.0", "v1.4.1", "v1.4.2", "1.4.9"]);
        let q: BTreeSet<String> = ["v1.4.2".to_string()].into();
        assert_eq!(
            choose(&semver("^1.4"), "v1.4.0", &t, &q),
            Choice::Tag("v1.4.1".into())
        );
    }

    #[test]
    fn pattern_orders_naturally_within_the_allow_list() {
        let p = Policy::Pattern {
            pattern: Some(r"build-\d+".into()),
            allow: vec![],
        };
        let t = tags(&["build-9", "build-10", "build-2", "other-99"]);
        let none = BTreeSet::new();
        assert_eq!(
            choose(&p, "build-9", &t, &none),
            Choice::Tag("build-10".into())
        );
        let allow = Policy::Pattern {
            pattern: None,
            allow: vec!["build-9".into(), "build-2".into()],
        };
        assert_eq!(
            choose(&allow, "build-2", &t, &none),
            Choice::Tag("build-9".into())
        );
        assert_eq!(choose(&allow, "build-9", &t, &none), Choice::UpToDate);
    }

    #[test]
    fn digest_moves_unless_quarantined() {
        let q: BTreeSet<String> = ["sha256:bad".to_string()].into();
        assert!(digest_moved(Some("sha256:a"), "sha256:b", &q));
        assert!(!digest_moved(Some("sha256:a"), "sha256:a", &q));
        assert!(!digest_moved(Some("sha256:a"), "sha256:bad", &q));
        assert!(digest_moved(None, "sha256:b", &q));
    }

    #[test]
    fn admit_waits_for_the_window_and_the_minimum_age() {
        let spec = UpdateSpec {
            policy: Policy::Digest,
            interval: DEFAULT_INTERVAL,
            window: Some(Window::parse("02:00-05:00").unwrap()),
            min_age: Some(Duration::from_secs(3600)),
        };
        let day = 86_400 * 20_000;
        // 01:59:30: the window opens in 30 s.
        assert_eq!(
            admit(&spec, day + 7170, Some(0)),
            Err(Skip::OutsideWindow {
                opens_in: Duration::from_secs(30)
            })
        );
        let three = day + 3 * 3600;
        assert_eq!(admit(&spec, three, Some(three - 7200)), Ok(()));
        assert_eq!(
            admit(&spec, three, Some(three - 60)),
            Err(Skip::TooNew {
                age: Duration::from_secs(60),
                min_age: Duration::from_secs(3600)
            })
        );
        assert_eq!(admit(&spec, three, None), Err(Skip::UnknownAge));
    }

    #[test]
    fn natural_order_reads_numbers() {
        assert_eq!(natural_cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(natural_cmp("1.09", "1.9"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "b"), Ordering::Less);
        assert_eq!(natural_cmp("1.0", "1.0.1"), Ordering::Less);
    }
}
