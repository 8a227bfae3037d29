//! How the container runs: `healthcheck:`, `restart:`, `ulimits:`, `logging:`,
//! `pull_policy:` and `extra_hosts:`.

use std::collections::BTreeMap;

use crate::desired::convert::read::Reader;
use crate::desired::model::*;
use crate::desired::node::{Node, Value};

pub(super) fn read_healthcheck(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Healthcheck> {
    let entries = r.map(n, what)?;
    r.check_keys(
        entries,
        what,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        &[],
    );
    let disabled = n
        .get("disable")
        .and_then(|d| r.bool(d, &format!("{what}.disable")))
        .unwrap_or(false);
    let test = match n.get("test") {
        _ if disabled => vec!["NONE".to_string()],
        None => Vec::new(),
        Some(t) => match &t.value {
            Value::Seq(_) => {
                let v = r.strings(t, &format!("{what}.test"));
                match v.first().map(String::as_str) {
                    Some("NONE") | Some("CMD") | Some("CMD-SHELL") => {}
                    _ => r.error(t.as_seq().and_then(|s| s.first()).map_or(&t.loc, |f| &f.loc), format!("{what}.test must start with \"CMD\", \"CMD-SHELL\" or \"NONE\" (or be a string, run with the shell)")),
                }
                v
            }
            _ => match t.as_str() {
                Some(s) => vec!["CMD-SHELL".into(), s.to_string()],
                None => {
                    r.error(
                        &t.loc,
                        format!("{what}.test must be a string or a list, found {}", t.kind()),
                    );
                    Vec::new()
                }
            },
        },
    };
    Some(Healthcheck {
        test,
        interval: n
            .get("interval")
            .and_then(|d| r.duration(d, &format!("{what}.interval"))),
        timeout: n
            .get("timeout")
            .and_then(|d| r.duration(d, &format!("{what}.timeout"))),
        retries: n
            .get("retries")
            .and_then(|d| r.u32(d, &format!("{what}.retries"))),
        start_period: n
            .get("start_period")
            .and_then(|d| r.duration(d, &format!("{what}.start_period"))),
        start_interval: n
            .get("start_interval")
            .and_then(|d| r.duration(d, &format!("{what}.start_interval"))),
    })
}

pub(super) fn read_restart(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Restart> {
    let s = match &n.value {
        Value::Bool(false) => "no".to_string(),
        _ => r.string(n, what)?,
    };
    let parsed = match s.as_str() {
        "no" => Some(Restart::No),
        "always" => Some(Restart::Always),
        "unless-stopped" => Some(Restart::UnlessStopped),
        "on-failure" => Some(Restart::OnFailure { max: None }),
        other => other
            .strip_prefix("on-failure:")
            .and_then(|m| m.parse().ok())
            .map(|m| Restart::OnFailure { max: Some(m) }),
    };
    if parsed.is_none() {
        r.error(
            &n.loc,
            format!(
                "invalid restart policy {}: use \"no\", always, on-failure[:N] or unless-stopped",
                n.shown()
            ),
        );
    }
    parsed
}

pub(super) fn read_ulimits(r: &mut Reader<'_>, n: &Node, what: &str) -> BTreeMap<String, Ulimit> {
    let mut out = BTreeMap::new();
    for (k, v) in r.map(n, what).unwrap_or_default() {
        let w = format!("{what}.{}", k.name);
        let lim = if v.as_map().is_some() {
            let soft = v.get("soft").and_then(|x| r.i64(x, &format!("{w}.soft")));
            let hard = v.get("hard").and_then(|x| r.i64(x, &format!("{w}.hard")));
            match (soft, hard) {
                (Some(soft), Some(hard)) => Some(Ulimit { soft, hard }),
                _ => {
                    r.error(&v.loc, format!("{w} needs both soft: and hard:"));
                    None
                }
            }
        } else {
            r.i64(v, &w).map(|x| Ulimit { soft: x, hard: x })
        };
        if let Some(l) = lim {
            out.insert(k.name.clone(), l);
        }
    }
    out
}

pub(super) fn read_logging(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Logging> {
    let entries = r.map(n, what)?;
    r.check_keys(entries, what, &["driver", "options"], &[]);
    Some(Logging {
        driver: n
            .get("driver")
            .and_then(|d| r.string(d, &format!("{what}.driver"))),
        options: n
            .get("options")
            .map(|o| r.string_map(o, &format!("{what}.options")))
            .unwrap_or_default(),
    })
}

/// compose's `every_<n>` durations: Go durations plus `d` (days) and `w` (weeks) units.
pub(super) fn every(d: &str) -> Option<std::time::Duration> {
    let day = 24 * 3600;
    for (suffix, secs) in [("d", day), ("w", 7 * day)] {
        if let Some(n) = d.strip_suffix(suffix).and_then(|n| n.parse::<u64>().ok()) {
            return Some(std::time::Duration::from_secs(n.checked_mul(secs)?));
        }
    }
    crate::desired::syntax::units::parse_duration(d).ok()
}

/// `pull_policy`: compose's values, `if_not_present` as `missing`, `daily`/`weekly`/
/// `every_<duration>` as a maximum age.
pub(super) fn read_pull_policy(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<PullPolicy> {
    let s = r.string(n, what)?;
    let day = std::time::Duration::from_secs(24 * 3600);
    Some(match s.as_str() {
        "missing" | "if_not_present" => PullPolicy::Missing,
        "always" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        "build" => PullPolicy::Build,
        "daily" => PullPolicy::Every(day),
        "weekly" => PullPolicy::Every(day * 7),
        other => match other.strip_prefix("every_").and_then(every) {
            Some(d) => PullPolicy::Every(d),
            None => {
                r.error(
                    &n.loc,
                    format!(
                        "invalid {what} {}: use always, never, missing, build, daily, weekly or every_<duration>",
                        n.shown()
                    ),
                );
                return None;
            }
        },
    })
}

/// What `pull_policy` means under berth, said where it differs from `docker compose up`:
/// `build` needs `build:`; `always` and the refresh ages pull at every `up` in compose, but
/// berth pulls only a missing image and rolls out only when the desired state changes, so the
/// warning names `x-berth.update` (policy `digest`), which follows a tag pushed again.
/// `missing` and `never` (see `BlockReason::ImageAbsent`) are honoured as they are.
pub(super) fn check_pull_policy(
    r: &mut Reader<'_>,
    n: &Node,
    policy: PullPolicy,
    has_build: bool,
    what: &str,
) {
    match policy {
        PullPolicy::Missing | PullPolicy::Never => {}
        PullPolicy::Build if has_build => {}
        PullPolicy::Build => r.error(
            &n.loc,
            format!("{what}: build needs a build: section to build the image from; add one or use another pull_policy"),
        ),
        PullPolicy::Always | PullPolicy::Every(_) => r.warning(
            &n.loc,
            format!(
                "{what} {}: berth pulls an image only when it is missing and rolls out only when the desired state changes, so a tag pushed again is not followed; to follow it, use x-berth.update: {{policy: digest}}",
                n.shown()
            ),
        ),
    }
}

/// `extra_hosts`: a list of `host=ip` / `host:ip`, or a mapping of a host to one address or
/// a list of them (compose's long syntax: one entry per address).
pub(super) fn read_extra_hosts(r: &mut Reader<'_>, n: &Node, what: &str) -> Vec<(String, String)> {
    if let Some(m) = n.as_map() {
        let mut out = Vec::new();
        for (k, v) in m {
            match v.as_seq() {
                Some(items) => {
                    for i in items {
                        if let Some(ip) = r.string(i, &format!("{what}.{}", k.name)) {
                            out.push((k.name.clone(), ip));
                        }
                    }
                }
                None => {
                    if let Some(ip) = r.string(v, &format!("{what}.{}", k.name)) {
                        out.push((k.name.clone(), ip));
                    }
                }
            }
        }
        return out;
    }
    r.key_values(n, what, &['=', ':'])
        .into_iter()
        .map(|(h, (ip, _))| (h, ip.unwrap_or_default()))
        .collect()
}
