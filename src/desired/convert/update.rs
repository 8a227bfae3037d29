//! `x-berth.update`: the image update policy of a service (see `update::spec`), checked here
//! so that a bad range, pattern or window is a positioned error at load.
//!
//! Pure. Accepted shapes:
//! `update: {policy: semver, range: "^1.4", interval: 10m, window: "02:00-05:00", min_age: 1h}`,
//! `update: {policy: digest}`, `update: {policy: pattern, pattern: 'build-\d+', allow: [..]}`.

use super::read::Reader;
use crate::desired::diag::Loc;
use crate::desired::node::Node;
use crate::update::spec::{DEFAULT_INTERVAL, Policy, UpdateSpec, Window};

const KEYS: &[&str] = &[
    "policy", "range", "pattern", "allow", "interval", "window", "min_age",
];

/// Reads `x-berth.update` (`n`, written at `key`); `None` after recording why not.
pub fn read_update(
    r: &mut Reader<'_>,
    key: &Loc,
    n: &Node,
    what: &str,
    image: Option<&str>,
) -> Option<UpdateSpec> {
    let entries = r.map(n, what)?;
    r.check_keys(entries, what, KEYS, &[]);
    let w = |k: &str| format!("{what}.{k}");
    let text = |r: &mut Reader<'_>, k: &str| n.get(k).and_then(|v| r.string(v, &w(k)));
    let Some(policy_node) = n.get("policy") else {
        r.error(
            key,
            format!("{what} needs a policy: semver, digest or pattern"),
        );
        return None;
    };
    let only = |r: &mut Reader<'_>, allowed: &[&str], policy: &str| {
        for k in ["range", "pattern", "allow"] {
            if !allowed.contains(&k)
                && let Some(v) = n.get(k)
            {
                r.error(
                    &v.loc,
                    format!("{} has no meaning with policy {policy}", w(k)),
                );
            }
        }
    };
    let policy = match policy_node.scalar_text().as_deref() {
        Some("semver") => {
            only(r, &["range"], "semver");
            let range = match n.get("range") {
                Some(v) => {
                    let range = r.string(v, &w("range"))?;
                    if let Err(e) = semver::VersionReq::parse(&range) {
                        r.error(
                            &v.loc,
                            format!(
                                "invalid {} {range:?}: {e}; use e.g. \"^1.4\", \"~2.1\" or \">=1.2, <2\"",
                                w("range")
                            ),
                        );
                        return None;
                    }
                    range
                }
                None => "*".to_string(),
            };
            Policy::Semver { range }
        }
        Some("digest") => {
            only(r, &[], "digest");
            Policy::Digest
        }
        Some("pattern") => {
            only(r, &["pattern", "allow"], "pattern");
            let pattern = text(r, "pattern");
            if let (Some(p), Some(v)) = (&pattern, n.get("pattern"))
                && let Err(e) = regex::Regex::new(&format!("^(?:{p})$"))
            {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or("").trim().to_string();
                r.error(&v.loc, format!("invalid {} {p:?}: {first}", w("pattern")));
                return None;
            }
            let allow = n
                .get("allow")
                .map(|v| r.strings(v, &w("allow")))
                .unwrap_or_default();
            if pattern.is_none() && allow.is_empty() {
                r.error(
                    &policy_node.loc,
                    format!("policy pattern needs {} or {}", w("pattern"), w("allow")),
                );
                return None;
            }
            Policy::Pattern { pattern, allow }
        }
        _ => {
            r.error(
                &policy_node.loc,
                format!(
                    "invalid {} {}: use semver, digest or pattern",
                    w("policy"),
                    policy_node.shown()
                ),
            );
            return None;
        }
    };
    let interval = match n.get("interval") {
        Some(v) => match r.duration(v, &w("interval"))? {
            d if d.as_secs() < 10 => {
                r.error(
                    &v.loc,
                    format!(
                        "{} must be at least 10s (each check asks the registry)",
                        w("interval")
                    ),
                );
                return None;
            }
            d => d,
        },
        None => DEFAULT_INTERVAL,
    };
    let window = match n.get("window") {
        Some(v) => {
            let t = r.string(v, &w("window"))?;
            match Window::parse(&t) {
                Ok(win) => Some(win),
                Err(e) => {
                    r.error(&v.loc, format!("{}: {e}", w("window")));
                    return None;
                }
            }
        }
        None => None,
    };
    let min_age = n.get("min_age").and_then(|v| r.duration(v, &w("min_age")));
    if let Some(image) = image {
        check_image(r, key, what, &policy, image);
    }
    Some(UpdateSpec {
        policy,
        interval,
        window,
        min_age,
    })
}

/// The image must be one the policy can move: a tag, no digest pin (but for `digest`).
fn check_image(r: &mut Reader<'_>, key: &Loc, what: &str, policy: &Policy, image: &str) {
    let Ok(parsed) = crate::desired::syntax::image_ref::parse_image_ref(image) else {
        return; // The image's own error is reported where it is written.
    };
    if parsed.tag.is_none() {
        r.error(
            key,
            format!("{what}: the image {image:?} has no tag for the update policy to move"),
        );
    } else if parsed.digest.is_some() && !matches!(policy, Policy::Digest) {
        r.error(
            key,
            format!(
                "{what}: the image {image:?} is pinned by digest; only policy digest moves a digest"
            ),
        );
    }
}
