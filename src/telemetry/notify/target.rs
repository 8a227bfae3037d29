//! Notification receivers as `--notify` names them: `[FORMAT+]http[s]://HOST[:PORT]/PATH`
//! with an optional `#events=…&severity=…&projects=…` filter. Pure.
//!
//! The fragment is never sent over HTTP, so it is free for berth's per-receiver options:
//! - `events=rollout_failed,reverted`: only these kinds (any kind, also those not sent by
//!   default such as `rollout_started`); without it the [`super::meaningful`] ones.
//! - `severity=warning`: only this severity and louder (`info`, `warning`, `error`).
//! - `projects=shop,blog`: only events of these projects (berth-wide events, which belong to
//!   no project, still pass).

use std::collections::BTreeSet;

use crate::http_client::HttpUrl;

/// Message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The event as JSON.
    Json,
    /// Slack (and Mattermost, Rocket.Chat) incoming webhooks: `{"text": …}`.
    Slack,
    /// Discord webhooks: `{"content": …}`.
    Discord,
    /// Microsoft Teams workflow webhooks: a message with an Adaptive Card.
    Teams,
    /// ntfy: the text as the body, title, priority and tags in headers.
    Ntfy,
    /// Gotify: `{"title", "message", "priority"}`.
    Gotify,
}

impl Format {
    /// The scheme prefix (`slack` in `slack+https://`).
    pub fn prefix(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Teams => "teams",
            Format::Ntfy => "ntfy",
            Format::Gotify => "gotify",
        }
    }

    const ALL: [Format; 6] = [
        Format::Json,
        Format::Slack,
        Format::Discord,
        Format::Teams,
        Format::Ntfy,
        Format::Gotify,
    ];
}

/// Every event kind berth records (what `events=` may name).
pub const KINDS: &[&str] = &[
    "rollout_started",
    "rollout_succeeded",
    "rollout_failed",
    "rollout_paused",
    "reverted",
    "degraded",
    "quarantine_lifted",
    "self_heal",
    "blocked",
    "desired_state_invalid",
    "reconcile_error",
    "recovered",
    "pull_failed",
    "project_removed",
    "update_found",
    "update_applied",
    "update_skipped",
    "update_failed",
    "update_check_failed",
];

/// Which events a receiver gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these kinds (`None`: the meaningful ones).
    pub events: Option<BTreeSet<String>>,
    /// At least this loud: 0 info, 1 warning, 2 error.
    pub min_severity: u8,
    /// Only these projects (`None`: all).
    pub projects: Option<BTreeSet<String>>,
}

/// The rank of a severity word (unknown words count as info).
pub fn severity_rank(s: &str) -> u8 {
    match s {
        "error" => 2,
        "warning" => 1,
        _ => 0,
    }
}

impl Filter {
    /// Whether an event of `kind`, `severity` and `project` goes to this receiver.
    pub fn accepts(&self, kind: &str, severity: &str, project: &str) -> bool {
        let kind_ok = match &self.events {
            Some(kinds) => kinds.contains(kind),
            None => super::meaningful(kind),
        };
        let project_ok = match &self.projects {
            Some(p) => project.is_empty() || p.contains(project),
            None => true,
        };
        kind_ok && project_ok && severity_rank(severity) >= self.min_severity
    }

    fn parse(spec: &str, whole: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        for part in spec.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("{whole}: expected KEY=VALUE in the filter, got {part:?}")
            })?;
            let list = || -> BTreeSet<String> {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            match key {
                "events" => {
                    let kinds = list();
                    if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                        return Err(format!(
                            "{whole}: unknown event kind {bad:?} (known: {})",
                            KINDS.join(", ")
                        ));
                    }
                    f.events = Some(kinds);
                }
                "severity" => {
                    f.min_severity = match value {
                        "info" => 0,
                        "warning" => 1,
                        "error" => 2,
                        other => {
                            return Err(format!(
                                "{whole}: severity {other:?}: expected info, warning or error"
                            ));
                        }
                    }
                }
                "projects" => f.projects = Some(list()),
                other => {
                    return Err(format!(
                        "{whole}: unknown filter {other:?} (expected events=, severity=, projects=)"
                    ));
                }
            }
        }
        Ok(f)
    }
}

/// A webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Format.
    pub format: Format,
    /// Where it is POSTed.
    pub url: HttpUrl,
    /// Which events it gets.
    pub filter: Filter,
}

impl std::fmt::Display for Target {
    /// The format and origin only: a webhook's path or query is often its secret (Slack's,
    /// Discord's, Gotify's token), so it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.url.path == "/" { "/" } else { "/…" };
        match self.format {
            Format::Json => write!(f, "{}{path}", self.url.origin()),
            other => write!(f, "{}+{}{path}", other.prefix(), self.url.origin()),
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let (url_text, filter) = match s.split_once('#') {
            Some((u, f)) => (u, Filter::parse(f, s)?),
            None => (s, Filter::default()),
        };
        let (format, rest) = match url_text.split_once("+") {
            Some((prefix, rest)) if rest.starts_with("http://") || rest.starts_with("https://") => {
                let format = Format::ALL
                    .into_iter()
                    .find(|f| f.prefix() == prefix)
                    .ok_or_else(|| {
                        format!(
                            "{s}: unknown format {prefix:?} (expected json, slack, discord, teams, ntfy or gotify)"
                        )
                    })?;
                (format, rest)
            }
            _ => (Format::Json, url_text),
        };
        let url: HttpUrl = rest.parse().map_err(|e: String| {
            format!(
                "{e} (a receiver is [FORMAT+]http[s]://HOST[:PORT]/PATH[#FILTER], FORMAT one of json, slack, discord, teams, ntfy, gotify)"
            )
        })?;
        Ok(Target {
            format,
            url,
            filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_their_format_and_hide_their_path() {
        let t: Target = "http://127.0.0.1:8080/hook?x=1".parse().unwrap();
        assert_eq!(
            (
                t.format,
                t.url.host.as_str(),
                t.url.port,
                t.url.path.as_str()
            ),
            (Format::Json, "127.0.0.1", 8080, "/hook?x=1")
        );
        let s: Target = "slack+https://hooks.slack.com/services/T/B/SECRET"
            .parse()
            .unwrap();
        assert_eq!(
            (s.format, s.url.tls, s.url.port),
            (Format::Slack, true, 443)
        );
        assert_eq!(s.to_string(), "slack+https://hooks.slack.com:443/…");
        let n: Target = "ntfy+https://ntfy.sh/berth-alerts".parse().unwrap();
        assert_eq!(n.format, Format::Ntfy);
        let g: Target = "gotify+http://[::1]:9/message?token=x".parse().unwrap();
        assert_eq!((g.format, g.url.host.as_str()), (Format::Gotify, "::1"));
        for (text, format) in [
            (
                "discord+https://discord.com/api/webhooks/1/x",
                Format::Discord,
            ),
            ("teams+https://x.logic.azure.com/workflows/1", Format::Teams),
            ("json+https://example.org/", Format::Json),
        ] {
            assert_eq!(text.parse::<Target>().unwrap().format, format, "{text}");
        }
        assert!("ftp://x".parse::<Target>().is_err());
        assert!("http://u:p@x/".parse::<Target>().is_err());
        let err = "pager+https://x/".parse::<Target>().unwrap_err();
        assert!(err.contains("unknown format \"pager\""), "{err}");
    }

    #[test]
    fn filters_pick_kinds_severity_and_projects() {
        let t: Target = "https://x/#events=rollout_started,reverted&severity=warning&projects=shop"
            .parse()
            .unwrap();
        let f = &t.filter;
        assert!(f.accepts("reverted", "error", "shop"));
        assert!(!f.accepts("reverted", "error", "blog"), "other project");
        assert!(f.accepts("reverted", "error", ""), "berth-wide events pass");
        assert!(!f.accepts("rollout_started", "info", "shop"), "too quiet");
        assert!(!f.accepts("degraded", "error", "shop"), "kind not listed");
        let all: Target = "https://x/".parse().unwrap();
        assert!(all.filter.accepts("degraded", "error", "any"));
        assert!(
            !all.filter.accepts("rollout_started", "info", "any"),
            "not meaningful"
        );
        let err = "https://x/#events=rollout_faild"
            .parse::<Target>()
            .unwrap_err();
        assert!(
            err.contains("unknown event kind \"rollout_faild\""),
            "{err}"
        );
        assert!("https://x/#severity=loud".parse::<Target>().is_err());
        assert!("https://x/#color=red".parse::<Target>().is_err());
    }
}
