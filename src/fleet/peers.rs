//! Reading the peers: each earlier-wave host's `GET /api/v1/status`, with the fleet's shared
//! token, bounded by a timeout, all at once.
//!
//! IO (network), for the controller and `berth fleet status`; what the controller gets is a
//! typed [`PeerView`] for the pure `wave` decision, what `fleet status` gets is each whole
//! status (or why there is none) for the pure `overview`. A peer that does not answer in time, answers with an error status or
//! with something that is not a status is `Unreachable`, with the reason for people — never a
//! guess at its state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::peer::PeerView;
use crate::http_client::{Client, HttpUrl, Request};
use crate::telemetry::status::Status;

/// Largest status answer read from a peer.
const MAX_STATUS_BYTES: usize = 8 << 20;

/// The fleet's shared token (`--fleet-token-file`): sent to peers as a bearer token, and
/// required by this host's API from clients that are not on loopback. Never printed.
#[derive(Clone)]
pub struct FleetToken(Arc<str>);

impl std::fmt::Debug for FleetToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetToken(…)")
    }
}

/// Why the token file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// It could not be read.
    #[error("failed to read the fleet token file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It holds nothing.
    #[error("failed to use the fleet token file {path}: it is empty")]
    Empty {
        /// The file.
        path: String,
    },
}

impl FleetToken {
    /// Reads the token from `path` (surrounding whitespace trimmed); it is masked in every
    /// output from now on.
    pub fn from_file(path: &std::path::Path) -> Result<FleetToken, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: path.display().to_string(),
            });
        }
        crate::redact::add([token.to_string()]);
        Ok(FleetToken(Arc::from(token)))
    }

    /// A token from its value (tests).
    pub fn new(value: &str) -> FleetToken {
        FleetToken(Arc::from(value))
    }

    /// True when `header` (an `Authorization` value) carries this token; constant time.
    pub fn admits(&self, header: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        given.as_bytes().ct_eq(self.0.as_bytes()).into()
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

/// Asks every `(host, status URL)` at once; each answer bounded by `timeout`.
pub async fn read_all(
    client: &Client,
    peers: &[(String, String)],
    token: Option<&FleetToken>,
    timeout: Duration,
) -> BTreeMap<String, PeerView> {
    read_statuses(client, peers, token, timeout)
        .await
        .into_iter()
        .map(|(host, answer)| {
            let view = match answer {
                Ok(status) => PeerView::Answered(super::report::from_status(&status)),
                Err(why) => PeerView::Unreachable(why),
            };
            (host, view)
        })
        .collect()
}

/// Asks every `(host, status URL)` for its whole status at once, each answer bounded by
/// `timeout`: the status, or why there is none (for people).
pub async fn read_statuses(
    client: &Client,
    peers: &[(String, String)],
    token: Option<&FleetToken>,
    timeout: Duration,
) -> BTreeMap<String, Result<Status, String>> {
    let asks = peers.iter().map(|(host, url)| async move {
        let answer = match tokio::time::timeout(timeout, read_one(client, url, token)).await {
            Ok(v) => v,
            Err(_) => Err(format!("no answer within {}s", timeout.as_secs())),
        };
        (host.clone(), answer)
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .collect()
}

async fn read_one(
    client: &Client,
    base: &str,
    token: Option<&FleetToken>,
) -> Result<Status, String> {
    let url: HttpUrl = format!("{base}/api/v1/status").parse()?;
    let bearer = token.map(FleetToken::bearer);
    let mut headers = vec![("Accept", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    let req = Request {
        method: "GET",
        headers: &headers,
        body: None,
    };
    let resp = client
        .send(&url, req, MAX_STATUS_BYTES)
        .await
        .map_err(|e| crate::errors::chain(&e))?;
    if resp.status != 200 {
        return Err(format!("{} answered HTTP {}", url.origin(), resp.status));
    }
    serde_json::from_slice::<Status>(&resp.body).map_err(|e| {
        format!(
            "{} answered something that is not a berth status: {e}",
            url.origin()
        )
    })
}
