//! What a service's `x-berth.update` asks for: the policy that picks a new image, how often to
//! look, and when an update may be applied.
//!
//! Pure data, validated by the loader (`desired::convert::update`); `choose` acts on it. Not
//! part of the spec hash: changing an update policy never recreates a container.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Default time between two registry checks of a service (`x-berth.update.interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// A service's `x-berth.update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateSpec {
    /// How a new image is picked.
    pub policy: Policy,
    /// Time between two checks.
    pub interval: Duration,
    /// When an update may be applied (UTC, daily); `None` is any time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// How old an image must be (since its `created` time) before it is applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_age: Option<Duration>,
}

/// How a new image is picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum Policy {
    /// The highest semantic version tag inside `range` (a `semver` requirement such as
    /// `^1.4` or `>=1.2, <2`), never a pre-release, higher than the running tag.
    Semver {
        /// The requirement as written (checked by the loader).
        range: String,
    },
    /// The same tag, pointing at a new digest (`latest`, `1`, `stable`).
    Digest,
    /// The highest tag matching the regular expression `pattern` (whole tag), compared as
    /// versions when both parse as such and as text otherwise; with `allow`, only those tags.
    Pattern {
        /// Regular expression a tag must match as a whole (checked by the loader).
        #[serde(skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        /// Tags allowed, in no particular order; empty means any tag `pattern` matches.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        allow: Vec<String>,
    },
}

impl Policy {
    /// Stable label for metrics and events.
    pub fn label(&self) -> &'static str {
        match self {
            Policy::Semver { .. } => "semver",
            Policy::Digest => "digest",
            Policy::Pattern { .. } => "pattern",
        }
    }
}

/// A daily maintenance window in UTC, `HH:MM-HH:MM`; the end may be before the start (the
/// window then spans midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Minutes after midnight UTC at which the window opens.
    pub start: u16,
    /// Minutes after midnight UTC at which it closes (exclusive).
    pub end: u16,
}

impl Window {
    /// Parses `HH:MM-HH:MM`; a message saying what is wrong otherwise.
    pub fn parse(text: &str) -> Result<Window, String> {
        let hint = "use HH:MM-HH:MM in UTC, e.g. 02:00-05:00";
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("invalid window {text:?}: {hint}"))?;
        let minute = |s: &str| -> Option<u16> {
            let (h, m) = s.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        match (minute(a), minute(b)) {
            (Some(start), Some(end)) if start != end => Ok(Window { start, end }),
            (Some(_), Some(_)) => Err(format!(
                "invalid window {text:?}: it opens and closes at the same minute"
            )),
            _ => Err(format!("invalid window {text:?}: {hint}")),
        }
    }

    /// Whether `minute` (after midnight UTC) is inside the window.
    pub fn contains(&self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Minutes from `minute` until the window next opens (0 when it is open).
    pub fn minutes_until_open(&self, minute: u16) -> u16 {
        if self.contains(minute) {
            0
        } else {
            (self.start + 24 * 60 - minute) % (24 * 60)
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_parses_and_spans_midnight() {
        let w = Window::parse("22:30-02:00").unwrap();
        assert_eq!(w.to_string(), "22:30-02:00");
        assert!(w.contains(23 * 60));
        assert!(w.contains(60));
        assert!(!w.contains(2 * 60));
        assert_eq!(w.minutes_until_open(21 * 60), 90);
        let d = Window::parse("02:00-05:00").unwrap();
        assert!(d.contains(2 * 60) && !d.contains(5 * 60));
        assert_eq!(d.minutes_until_open(6 * 60), 20 * 60);
    }

    #[test]
    fn window_rejects_bad_text() {
        for bad in ["2-5", "02:00", "25:00-01:00", "02:00-02:00", "02:60-03:00"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }
}
