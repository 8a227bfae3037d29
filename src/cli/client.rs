//! Asking a running berth over HTTP (`berth status`, `berth events`) through berth's one HTTP
//! client.

use std::time::Duration;

use berth::http_client::{Client, HttpUrl, Request, tls};

/// How long berth waits for the running berth's answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read (a status or a page of events).
const MAX_ANSWER: usize = 64 << 20;

/// GET `path` from `server` (http[s]://HOST:PORT[/prefix]); the body of a 200.
pub async fn get(server: &str, path: &str) -> anyhow::Result<bytes::Bytes> {
    let mut url: HttpUrl = server.parse().map_err(anyhow::Error::msg)?;
    let prefix = url.path.trim_end_matches('/');
    url.path = format!("{prefix}{path}");
    let client = if url.tls {
        Client::with_tls(tls::client_config(None)?.0)
    } else {
        Client::plain()
    };
    let req = Request {
        method: "GET",
        headers: &[("Accept", "application/json")],
        body: None,
    };
    let answer = client.timeout(TIMEOUT).send(&url, req, MAX_ANSWER).await?;
    if answer.truncated {
        anyhow::bail!("the answer is larger than {} MiB", MAX_ANSWER >> 20);
    }
    if answer.status != 200 {
        anyhow::bail!(
            "HTTP {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body).trim()
        );
    }
    Ok(bytes::Bytes::from(answer.body))
}
