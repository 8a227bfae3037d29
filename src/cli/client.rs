//! Asking a running berth over HTTP (`berth status`, `berth events`).

use std::time::Duration;

use berth::telemetry::notify::{self, Target};

/// GET `path` from `server` (http://HOST:PORT[/prefix]); the body of a 200.
pub async fn get(server: &str, path: &str) -> anyhow::Result<bytes::Bytes> {
    let t: Target = server.parse().map_err(anyhow::Error::msg)?;
    let prefix = t.path.trim_end_matches('/');
    let full = format!("{prefix}{path}");
    let (code, body) = tokio::time::timeout(
        Duration::from_secs(10),
        notify::request(
            &t.host,
            t.port,
            hyper::Method::GET,
            &full,
            None,
            &[("accept", "application/json")],
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within 10s"))?
    .map_err(anyhow::Error::msg)?;
    if code != 200 {
        anyhow::bail!("HTTP {code}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(body)
}
