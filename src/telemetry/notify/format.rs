//! What a notification looks like in each receiver's own format (Slack, Discord, Microsoft
//! Teams, ntfy, Gotify, or the event as JSON). Pure: an event in, a body, its content type
//! and any headers out.

use serde_json::json;

use super::target::Format;
use crate::telemetry::events::EventRecord;

/// Discord refuses a `content` longer than this.
const DISCORD_MAX: usize = 2000;

/// One message ready to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// Extra headers (ntfy's title, priority and tags).
    pub headers: Vec<(&'static str, String)>,
}

impl Message {
    fn json(value: serde_json::Value) -> Message {
        Message {
            content_type: "application/json",
            body: value.to_string(),
            headers: Vec::new(),
        }
    }
}

/// `project/service`, `project`, or `berth` for berth-wide events.
fn scope(e: &EventRecord) -> String {
    match (e.project.as_str(), e.service.as_str()) {
        ("", _) => "berth".to_string(),
        (p, "") => p.to_string(),
        (p, s) => format!("{p}/{s}"),
    }
}

/// `shop/web rollout failed`.
fn title(e: &EventRecord) -> String {
    format!("{} {}", scope(e), e.kind.replace('_', " "))
}

/// Safe as an HTTP header value: printable ASCII only (no CR/LF to inject headers).
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// At most `max` characters, marked when cut.
fn cut(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The body POSTed for `e` in `format`.
pub fn payload(format: Format, e: &EventRecord) -> Message {
    let (emoji, shortcode) = match e.severity.as_str() {
        "error" => ("🚨", "rotating_light"),
        "warning" => ("⚠️", "warning"),
        _ => ("✅", "white_check_mark"),
    };
    let what = e.kind.replace('_', " ");
    match format {
        Format::Json => Message::json(serde_json::to_value(e).unwrap_or_default()),
        Format::Slack => {
            let mut text = format!(":{shortcode}: *{}* {what}: {}", scope(e), e.message);
            if let Some(logs) = &e.logs {
                text.push_str(&format!("\n```\n{logs}\n```"));
            }
            Message::json(json!({ "text": text }))
        }
        Format::Discord => {
            let head = format!("{emoji} **{}** {what}: {}", scope(e), e.message);
            let text = match &e.logs {
                // The logs' end matters most; keep the message whole and cut the logs first.
                Some(logs) => {
                    let room = DISCORD_MAX.saturating_sub(head.chars().count() + 9);
                    let chars: Vec<char> = logs.chars().collect();
                    let tail: String = chars[chars.len().saturating_sub(room)..].iter().collect();
                    format!("{head}\n```\n{tail}\n```")
                }
                None => head,
            };
            Message::json(json!({ "username": "berth", "content": cut(text, DISCORD_MAX) }))
        }
        Format::Teams => {
            let color = match e.severity.as_str() {
                "error" => "Attention",
                "warning" => "Warning",
                _ => "Good",
            };
            let mut body = vec![
                json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder",
                       "color": color, "wrap": true, "text": format!("{emoji} {}", title(e))}),
                json!({"type": "TextBlock", "wrap": true, "text": e.message}),
            ];
            if let Some(logs) = &e.logs {
                body.push(
                    json!({"type": "TextBlock", "wrap": true, "fontType": "Monospace",
                                 "text": logs}),
                );
            }
            Message::json(json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }],
            }))
        }
        Format::Ntfy => {
            let priority = match e.severity.as_str() {
                "error" => "high",
                "warning" => "default",
                _ => "low",
            };
            let mut body = e.message.clone();
            if let Some(logs) = &e.logs {
                body.push_str(&format!("\n\n{logs}"));
            }
            Message {
                content_type: "text/plain; charset=utf-8",
                body,
                headers: vec![
                    ("Title", header_text(&title(e))),
                    ("Priority", priority.to_string()),
                    ("Tags", format!("{shortcode},berth")),
                ],
            }
        }
        Format::Gotify => {
            let priority = match e.severity.as_str() {
                "error" => 8,
                "warning" => 5,
                _ => 2,
            };
            let mut message = e.message.clone();
            if let Some(logs) = &e.logs {
                message.push_str(&format!("\n\n{logs}"));
            }
            Message::json(json!({ "title": title(e), "message": message, "priority": priority }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::time::Timestamp;

    fn event(kind: &str, severity: &str, logs: Option<&str>) -> EventRecord {
        EventRecord {
            seq: 3,
            time: Timestamp(0),
            project: "shop".into(),
            service: "web".into(),
            kind: kind.into(),
            reason: "deadline".into(),
            message: "r2 failed; r1 runs again".into(),
            revision: Some(1),
            severity: severity.into(),
            logs: logs.map(str::to_string),
        }
    }

    #[test]
    fn slack_messages_name_the_service_and_the_kind() {
        let e = event("reverted", "error", None);
        assert_eq!(
            payload(Format::Slack, &e).body,
            r#"{"text":":rotating_light: *shop/web* reverted: r2 failed; r1 runs again"}"#
        );
        let json = payload(Format::Json, &e);
        assert!(json.body.contains(r#""kind":"reverted""#));
        assert!(!json.body.contains("logs"), "no logs, no field");
    }

    #[test]
    fn the_last_output_lines_travel_with_the_event() {
        let mut e = event(
            "rollout_failed",
            "error",
            Some("Step 2/2 : COPY missing /x"),
        );
        e.message = "r3 failed: image build failed: COPY failed".into();
        assert_eq!(
            payload(Format::Slack, &e).body,
            r#"{"text":":rotating_light: *shop/web* rollout failed: r3 failed: image build failed: COPY failed\n```\nStep 2/2 : COPY missing /x\n```"}"#
        );
        assert!(
            payload(Format::Json, &e)
                .body
                .contains(r#""logs":"Step 2/2 : COPY missing /x""#)
        );
        for format in [Format::Discord, Format::Teams, Format::Ntfy, Format::Gotify] {
            let m = payload(format, &e);
            assert!(m.body.contains("COPY missing /x"), "{format:?}: {}", m.body);
        }
    }

    #[test]
    fn each_receiver_gets_its_native_shape() {
        let e = event("reverted", "error", None);
        let discord: serde_json::Value =
            serde_json::from_str(&payload(Format::Discord, &e).body).unwrap();
        assert_eq!(
            discord["content"],
            "🚨 **shop/web** reverted: r2 failed; r1 runs again"
        );
        let teams: serde_json::Value =
            serde_json::from_str(&payload(Format::Teams, &e).body).unwrap();
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["body"][0]["text"], "🚨 shop/web reverted");
        assert_eq!(card["content"]["body"][0]["color"], "Attention");
        let gotify: serde_json::Value =
            serde_json::from_str(&payload(Format::Gotify, &e).body).unwrap();
        assert_eq!(
            gotify,
            json!({"title": "shop/web reverted", "message": "r2 failed; r1 runs again", "priority": 8})
        );
        let ntfy = payload(Format::Ntfy, &event("rollout_succeeded", "info", None));
        assert_eq!(ntfy.body, "r2 failed; r1 runs again");
        assert_eq!(
            ntfy.headers,
            vec![
                ("Title", "shop/web rollout succeeded".to_string()),
                ("Priority", "low".to_string()),
                ("Tags", "white_check_mark,berth".to_string()),
            ]
        );
    }

    #[test]
    fn headers_cannot_be_injected_and_discord_stays_within_its_limit() {
        let mut e = event("degraded", "warning", Some(&"x".repeat(5000)));
        e.service = "web\r\nX-Evil: 1".into();
        let ntfy = payload(Format::Ntfy, &e);
        assert_eq!(ntfy.headers[0].1, "shop/web??X-Evil: 1 degraded");
        let discord: serde_json::Value =
            serde_json::from_str(&payload(Format::Discord, &e).body).unwrap();
        let content = discord["content"].as_str().unwrap();
        assert!(content.chars().count() <= DISCORD_MAX, "{}", content.len());
        assert!(content.starts_with("⚠️ **shop/web"), "{content}");
    }
}
