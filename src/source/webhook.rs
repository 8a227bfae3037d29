//! `POST /hooks/git`: a push webhook that makes the git source fetch now.
//!
//! Pure checks first: [`authenticate`] accepts GitHub's and Gitea's `X-Hub-Signature-256`
//! (`sha256=` + HMAC-SHA256 of the body, hex), Gitea's `X-Gitea-Signature` (the same HMAC
//! without the prefix) and GitLab's `X-Gitlab-Token` (the secret itself), all compared in
//! constant time; [`decide`] turns a request into a response and whether to fetch: only a push
//! to the tracked ref fetches, a bad or missing signature is 401 and fetches nothing. The
//! handler ([`hook`]) only pokes the sync thread, whose one-slot queue coalesces bursts into
//! one fetch.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Largest body accepted (GitHub caps push payloads at 25 MB; state repos push far less).
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// The environment variable that may hold the webhook secret.
pub const SECRET_ENV: &str = "BERTH_WEBHOOK_SECRET";

/// The handler type the HTTP server routes `POST /hooks/git` to: request headers (lower-case
/// names) and body in, status code and body out.
pub type GitHook = Arc<
    dyn Fn(Vec<(String, String)>, Vec<u8>) -> Pin<Box<dyn Future<Output = (u16, String)> + Send>>
        + Send
        + Sync,
>;

/// The shared secret; never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from bytes (surrounding whitespace removed); `None` when empty.
    pub fn new(bytes: &[u8]) -> Option<Secret> {
        let s = bytes.trim_ascii();
        (!s.is_empty()).then(|| Secret(s.to_vec()))
    }

    /// From a file (trailing newline removed).
    pub fn from_file(path: &Path) -> std::io::Result<Option<Secret>> {
        Ok(Secret::new(&std::fs::read(path)?))
    }

    /// From [`SECRET_ENV`].
    pub fn from_env() -> Option<Secret> {
        std::env::var_os(SECRET_ENV).and_then(|v| Secret::new(v.as_encoded_bytes()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A valid HMAC signature (GitHub, Gitea).
    Signature,
    /// A matching GitLab token.
    Token,
    /// A signature or token header was there and did not match.
    Bad,
    /// No signature or token header.
    Missing,
}

/// Checks the request's signature (or GitLab token) against the secret, in constant time.
pub fn authenticate(secret: &Secret, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Auth {
    let hmac_ok = |hex: &str| {
        let Some(sig) = unhex(hex.trim()) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.0) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    };
    if let Some(v) = header("x-hub-signature-256") {
        return match v.trim().strip_prefix("sha256=") {
            Some(hex) if hmac_ok(hex) => Auth::Signature,
            _ => Auth::Bad,
        };
    }
    if let Some(v) = header("x-gitea-signature") {
        return if hmac_ok(&v) {
            Auth::Signature
        } else {
            Auth::Bad
        };
    }
    if let Some(v) = header("x-gitlab-token") {
        return if bool::from(v.as_bytes().ct_eq(&secret.0)) {
            Auth::Token
        } else {
            Auth::Bad
        };
    }
    Auth::Missing
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What to answer and whether to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// HTTP status.
    pub status: u16,
    /// Response body (one line).
    pub body: String,
    /// Fetch now.
    pub fetch: bool,
}

fn answer(status: u16, body: impl Into<String>, fetch: bool) -> Decision {
    Decision {
        status,
        body: body.into(),
        fetch,
    }
}

/// Decides on a webhook request: authentication first (401 and no fetch when it fails), then
/// the event (pings are answered, other events ignored), then the pushed ref against
/// `tracked` (`None`: the repository's default branch, as the payload names it).
pub fn decide(
    secret: &Secret,
    tracked: Option<&str>,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Decision {
    if body.len() > MAX_BODY {
        return answer(413, "payload too large", false);
    }
    match authenticate(secret, header, body) {
        Auth::Signature | Auth::Token => {}
        Auth::Bad => return answer(401, "bad signature", false),
        Auth::Missing => {
            return answer(
                401,
                "missing signature (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)",
                false,
            );
        }
    }
    let event = [
        "x-github-event",
        "x-gitea-event",
        "x-gogs-event",
        "x-gitlab-event",
    ]
    .iter()
    .find_map(|h| header(h))
    .unwrap_or_default();
    let event = event.trim().to_ascii_lowercase();
    if event == "ping" {
        return answer(200, "pong", false);
    }
    if !event.is_empty() && !matches!(event.as_str(), "push" | "push hook" | "tag push hook") {
        return answer(200, format!("ignored: {event} event"), false);
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
        return answer(
            400,
            "expected a JSON push payload (content type application/json)",
            false,
        );
    };
    let Some(pushed) = payload.get("ref").and_then(|r| r.as_str()) else {
        return answer(400, "push payload without \"ref\"", false);
    };
    let default_branch = ["repository", "project"]
        .iter()
        .find_map(|k| payload.get(k)?.get("default_branch")?.as_str());
    if pushes_tracked(pushed, tracked, default_branch) {
        answer(202, format!("fetching: push to {pushed}"), true)
    } else {
        let t = tracked.map_or_else(
            || {
                format!(
                    "the default branch ({})",
                    default_branch.unwrap_or("unknown")
                )
            },
            str::to_string,
        );
        answer(
            200,
            format!("ignored: push to {pushed}, tracking {t}"),
            false,
        )
    }
}

/// Whether a push to `pushed` (a full ref name) moves the tracked ref.
pub fn pushes_tracked(pushed: &str, tracked: Option<&str>, default_branch: Option<&str>) -> bool {
    match tracked {
        None => default_branch.is_some_and(|b| pushed == format!("refs/heads/{b}")),
        Some(t) if t.starts_with("refs/") => pushed == t,
        Some(t) => pushed == format!("refs/heads/{t}") || pushed == format!("refs/tags/{t}"),
    }
}

/// The `POST /hooks/git` handler: decides, logs, and calls `fetch` for pushes to the tracked
/// ref (`fetch` must not block: the git source's poke only queues a fetch).
pub fn hook(
    secret: Secret,
    tracked: Option<String>,
    fetch: Arc<dyn Fn() + Send + Sync>,
) -> GitHook {
    Arc::new(move |headers: Vec<(String, String)>, body: Vec<u8>| {
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let d = decide(&secret, tracked.as_deref(), &lookup, &body);
        if d.fetch {
            tracing::info!("webhook: {}", d.body);
            fetch();
        } else if d.status >= 400 {
            tracing::warn!(status = d.status, "webhook refused: {}", d.body);
        } else {
            tracing::debug!("webhook: {}", d.body);
        }
        Box::pin(async move { (d.status, d.body) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        br#"{"ref":"refs/heads/main","repository":{"default_branch":"main"},"after":"abc"}"#;

    fn secret() -> Secret {
        Secret::new(b"It's a Secret to Everybody\n").unwrap()
    }

    fn sign(body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"It's a Secret to Everybody").unwrap();
        mac.update(body);
        format!(
            "sha256={}",
            crate::source::hex(&mac.finalize().into_bytes())
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n: &str| v.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    }

    #[test]
    fn github_documented_example_signature_verifies() {
        // The example from GitHub's "Validating webhook deliveries" documentation.
        let h = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(
            authenticate(&secret(), &h, b"Hello, World!"),
            Auth::Signature
        );
        assert_eq!(authenticate(&secret(), &h, b"Hello, World?"), Auth::Bad);
    }

    #[test]
    fn push_to_tracked_branch_with_good_signature_fetches() {
        let sig = sign(BODY);
        let h = headers(&[("x-hub-signature-256", &sig), ("x-github-event", "push")]);
        let d = decide(&secret(), Some("main"), &h, BODY);
        assert_eq!((d.status, d.fetch), (202, true), "{d:?}");
        // Default branch from the payload when no ref is tracked.
        assert!(decide(&secret(), None, &h, BODY).fetch);
    }

    #[test]
    fn bad_or_missing_signature_is_401_and_no_fetch() {
        let wrong = headers(&[
            ("x-hub-signature-256", "sha256=00ff"),
            ("x-github-event", "push"),
        ]);
        let d = decide(&secret(), Some("main"), &wrong, BODY);
        assert_eq!((d.status, d.fetch), (401, false));
        let not_hex = headers(&[("x-hub-signature-256", "sha256=zz")]);
        assert_eq!(decide(&secret(), Some("main"), &not_hex, BODY).status, 401);
        let none = headers(&[("x-github-event", "push")]);
        let d = decide(&secret(), Some("main"), &none, BODY);
        assert_eq!((d.status, d.fetch), (401, false));
        // A signature of another body.
        let other = sign(b"{}");
        let h = headers(&[("x-hub-signature-256", &other)]);
        assert_eq!(decide(&secret(), Some("main"), &h, BODY).status, 401);
    }

    #[test]
    fn gitlab_token_and_gitea_signature() {
        let h = headers(&[
            ("x-gitlab-token", "It's a Secret to Everybody"),
            ("x-gitlab-event", "Push Hook"),
        ]);
        let gl = br#"{"ref":"refs/heads/main","project":{"default_branch":"main"}}"#;
        assert_eq!(decide(&secret(), None, &h, gl).status, 202);
        let h = headers(&[("x-gitlab-token", "guess"), ("x-gitlab-event", "Push Hook")]);
        assert_eq!(decide(&secret(), None, &h, gl).status, 401);
        let sig = sign(BODY);
        let h = headers(&[
            ("x-gitea-signature", sig.trim_start_matches("sha256=")),
            ("x-gitea-event", "push"),
        ]);
        assert_eq!(decide(&secret(), Some("main"), &h, BODY).status, 202);
    }

    #[test]
    fn pushes_elsewhere_and_other_events_are_ignored() {
        let body = br#"{"ref":"refs/heads/feature","repository":{"default_branch":"main"}}"#;
        let sig = sign(body);
        let h = headers(&[("x-hub-signature-256", &sig), ("x-github-event", "push")]);
        let d = decide(&secret(), Some("main"), &h, body);
        assert_eq!((d.status, d.fetch), (200, false));
        assert_eq!(d.body, "ignored: push to refs/heads/feature, tracking main");
        assert!(!decide(&secret(), None, &h, body).fetch);
        let sig = sign(BODY);
        let ping = headers(&[("x-hub-signature-256", &sig), ("x-github-event", "ping")]);
        assert_eq!(decide(&secret(), Some("main"), &ping, BODY).body, "pong");
        let issue = headers(&[("x-hub-signature-256", &sig), ("x-github-event", "issues")]);
        assert!(!decide(&secret(), Some("main"), &issue, BODY).fetch);
    }

    #[test]
    fn tracked_ref_matching() {
        assert!(pushes_tracked("refs/heads/main", Some("main"), None));
        assert!(pushes_tracked("refs/tags/v1", Some("v1"), None));
        assert!(pushes_tracked(
            "refs/heads/main",
            Some("refs/heads/main"),
            None
        ));
        assert!(!pushes_tracked("refs/heads/mainline", Some("main"), None));
        assert!(!pushes_tracked(
            "refs/heads/main",
            Some("0123456789abcdef0123456789abcdef01234567"),
            None
        ));
        assert!(!pushes_tracked("refs/heads/main", None, None));
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let big = vec![b' '; MAX_BODY + 1];
        let h = headers(&[]);
        assert_eq!(decide(&secret(), None, &h, &big).status, 413);
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", secret()), "Secret([redacted])");
        assert!(Secret::new(b" \n").is_none());
    }
}
