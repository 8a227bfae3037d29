//! A Registry HTTP API v2 client for the update checks: tag lists (paginated), manifest
//! digests, multi-arch indexes and the `created` time of an image's config.
//!
//! IO (network), through berth's one HTTP client (`crate::http_client`): one connection per
//! request, bounded by [`REQUEST_TIMEOUT`], over TLS unless the registry is on loopback with
//! no certificate directory, as the Docker engine does. The CA trusted beside the system's
//! roots is the one the engine trusts too: `/etc/docker/certs.d/HOST:PORT/*.crt`
//! (`http_client::tls::client_config_for_ca_dir`). Auth is what the registry asks for in its
//! `WWW-Authenticate` answer: a bearer token from its token service (the `realm`, with
//! `service` and `scope`), or basic auth; the credentials are [`Auth::lookup`]'s, so the
//! checks see the same registries as the pulls. Tokens are kept per repository for the
//! client's life (one check round). Credentials and tokens never appear in an error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use sha2::{Digest, Sha256};

use crate::desired::syntax::image_ref::ImageRef;
use crate::engine::auth::{Auth, DOCKER_HUB, registry_of};
use crate::http_client::tls::{self, TlsError};
use crate::http_client::{self, HttpError, HttpUrl};

/// Where the Docker engine (and so berth) looks for a registry's CA: `DIR/HOST:PORT/*.crt`.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";
/// Limit of one request, connection to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body read (a tag list of a very busy repository stays well below).
const BODY_LIMIT: usize = 16 << 20;
/// Tags asked for per page.
const PAGE: u32 = 1000;
/// Most pages followed for one tag list.
const MAX_PAGES: usize = 200;
/// What a manifest request accepts: indexes (multi-arch) and single manifests, OCI and Docker.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A failed registry request. Never quotes a credential or a token.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The exchange failed: connect, TLS handshake, HTTP, or no answer in time.
    #[error("failed to talk to registry {host}")]
    Transport {
        /// `host:port`.
        host: String,
        /// Why.
        #[source]
        source: HttpError,
    },
    /// The TLS set-up (the registry's CA directory) failed.
    #[error("failed to set up TLS for registry {host}")]
    Tls {
        /// `host:port`.
        host: String,
        /// Why.
        #[source]
        source: TlsError,
    },
    /// 401/403 after authenticating (or with nothing to authenticate with).
    #[error("registry {host} refused {what} ({status}); {trail}")]
    Denied {
        /// The registry.
        host: String,
        /// What was asked.
        what: String,
        /// 401 or 403.
        status: u16,
        /// Where berth looked for credentials.
        trail: String,
    },
    /// Any other unexpected status.
    #[error("registry {host} answered {status} to {what}")]
    Status {
        /// The registry.
        host: String,
        /// What was asked.
        what: String,
        /// The status.
        status: u16,
    },
    /// An answer berth cannot read.
    #[error("registry {host} sent an unreadable {what}: {detail}")]
    Invalid {
        /// The registry.
        host: String,
        /// What.
        what: String,
        /// Why it is unreadable.
        detail: String,
    },
}

/// One repository in one registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    /// The registry's canonical host (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path (`library/nginx` on Docker Hub, `org/app`).
    pub name: String,
}

impl Repository {
    /// The repository an image reference names.
    pub fn of(image: &ImageRef) -> Self {
        let registry = match &image.domain {
            Some(d) => registry_of(&format!("{d}/{}", image.path)),
            None => DOCKER_HUB.to_string(),
        };
        let name = if registry == DOCKER_HUB && !image.path.contains('/') {
            format!("library/{}", image.path)
        } else {
            image.path.clone()
        };
        Repository { registry, name }
    }

    /// The host the API is on (Docker Hub's API is not at `docker.io`).
    fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

/// One image's manifest as far as the checks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The digest of what the tag points at (an index for a multi-arch image): what the
    /// engine records as the image's repo digest after a pull.
    pub digest: String,
    /// The platforms an index offers (`linux/amd64`); empty for a single manifest.
    pub platforms: Vec<String>,
    /// When the image (this host's platform) was created, seconds since the epoch.
    pub created: Option<u64>,
}

/// A client for one check round: tokens and TLS set-ups are kept for its life.
pub struct Client {
    auth: Option<Auth>,
    certs_dir: PathBuf,
    timeout: Duration,
    tokens: Mutex<HashMap<Repository, HeaderValue>>,
    tls: Mutex<HashMap<String, Arc<rustls::ClientConfig>>>,
    requests: AtomicU64,
    tag_lists: AtomicU64,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// A client that takes credentials from `auth` (anonymous without) and CAs from
    /// [`DEFAULT_CERTS_DIR`].
    pub fn new(auth: Option<Auth>) -> Self {
        Client {
            auth,
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            timeout: REQUEST_TIMEOUT,
            tokens: Mutex::new(HashMap::new()),
            tls: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            tag_lists: AtomicU64::new(0),
        }
    }

    /// Looks for registry CAs in `dir` instead (tests).
    pub fn with_certs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.certs_dir = dir.into();
        self
    }

    /// HTTP requests sent so far (token requests included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Tag-list pages asked for so far.
    pub fn tag_list_requests(&self) -> u64 {
        self.tag_lists.load(Ordering::Relaxed)
    }

    /// Every tag of `repo`, following the `Link` pages.
    pub async fn tags(&self, repo: &Repository) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        let mut path = format!("/v2/{}/tags/list?n={PAGE}", repo.name);
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            self.tag_lists.fetch_add(1, Ordering::Relaxed);
            let a = self
                .get(repo, Method::GET, &path, None, "the tag list")
                .await?;
            let page: Page =
                serde_json::from_slice(&a.body).map_err(|e| RegistryError::Invalid {
                    host: repo.registry.clone(),
                    what: "tag list".into(),
                    detail: e.to_string(),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next_link(&a.headers) {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
        Ok(tags)
    }

    /// The digest `reference` (a tag or digest) points at, from a `HEAD` of its manifest.
    pub async fn digest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<String, RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let a = self
            .get(
                repo,
                Method::HEAD,
                &path,
                Some(MANIFEST_ACCEPT),
                "a manifest",
            )
            .await?;
        match a
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(d) => Ok(d.to_string()),
            // Not every registry sends it on HEAD: hash the manifest itself.
            None => Ok(self.manifest(repo, reference).await?.digest),
        }
    }

    /// The manifest of `reference`: its digest, the platforms of an index, and when this
    /// host's platform's image was created (from its config blob).
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<ManifestInfo, RegistryError> {
        let invalid = |detail: String| RegistryError::Invalid {
            host: repo.registry.clone(),
            what: "manifest".into(),
            detail,
        };
        let path = format!("/v2/{}/manifests/{reference}", repo.name);
        let a = self
            .get(
                repo,
                Method::GET,
                &path,
                Some(MANIFEST_ACCEPT),
                "a manifest",
            )
            .await?;
        let digest = a
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| format!("sha256:{}", hex(&Sha256::digest(&a.body))));
        let doc: serde_json::Value =
            serde_json::from_slice(&a.body).map_err(|e| invalid(e.to_string()))?;
        let mut platforms = Vec::new();
        let mut single = doc;
        if let Some(list) = single.get("manifests").and_then(|m| m.as_array()).cloned() {
            let want = host_platform();
            let mut chosen = None;
            for m in &list {
                let p = m.get("platform");
                let field = |k: &str| {
                    p.and_then(|p| p.get(k))
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let name = format!("{}/{}", field("os"), field("architecture"));
                if name == want && chosen.is_none() {
                    chosen = m.get("digest").and_then(|d| d.as_str()).map(str::to_string);
                }
                platforms.push(name);
            }
            let Some(d) = chosen else {
                return Ok(ManifestInfo {
                    digest,
                    platforms,
                    created: None,
                });
            };
            let path = format!("/v2/{}/manifests/{d}", repo.name);
            let a = self
                .get(
                    repo,
                    Method::GET,
                    &path,
                    Some(MANIFEST_ACCEPT),
                    "a manifest",
                )
                .await?;
            single = serde_json::from_slice(&a.body).map_err(|e| invalid(e.to_string()))?;
        }
        let created = match single
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(|d| d.as_str())
        {
            Some(config) => {
                let path = format!("/v2/{}/blobs/{config}", repo.name);
                let a = self
                    .get(repo, Method::GET, &path, None, "an image config")
                    .await?;
                serde_json::from_slice::<serde_json::Value>(&a.body)
                    .ok()
                    .and_then(|c| c.get("created")?.as_str().and_then(parse_rfc3339))
            }
            None => None,
        };
        Ok(ManifestInfo {
            digest,
            platforms,
            created,
        })
    }

    /// One request, authenticating once when the registry asks (401 with
    /// `WWW-Authenticate`); a 2xx answer or an error.
    async fn get(
        &self,
        repo: &Repository,
        method: Method,
        path: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Answer, RegistryError> {
        let host = repo.api_host().to_string();
        let cached = self.lock_tokens().get(repo).cloned();
        let mut a = self
            .send(&host, method.clone(), path, accept, cached.as_ref())
            .await?;
        let mut trail = String::from("no credentials were needed");
        if a.status == StatusCode::UNAUTHORIZED {
            let challenge = a
                .headers
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .unwrap_or_default();
            let (authorization, t) = self.authorize(repo, &challenge).await?;
            trail = t;
            if let Some(value) = authorization {
                self.lock_tokens().insert(repo.clone(), value.clone());
                a = self
                    .send(&host, method.clone(), path, accept, Some(&value))
                    .await?;
            }
        }
        // One redirect (a blob served from elsewhere); its credentials are in its URL.
        if a.status.is_redirection()
            && let Some(to) = a
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.parse::<Uri>().ok())
            && let (Some(h), Some(pq)) = (to.authority(), to.path_and_query())
        {
            a = self
                .send(h.as_str(), method, pq.as_str(), accept, None)
                .await?;
        }
        match a.status {
            s if s.is_success() => Ok(a),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Denied {
                host: repo.registry.clone(),
                what: format!("{what} of {}", repo.name),
                status: a.status.as_u16(),
                trail,
            }),
            s => Err(RegistryError::Status {
                host: repo.registry.clone(),
                what: format!("{what} of {}", repo.name),
                status: s.as_u16(),
            }),
        }
    }

    /// The `Authorization` value a `WWW-Authenticate` challenge asks for, and where the
    /// credentials were looked for (for a refusal's message).
    async fn authorize(
        &self,
        repo: &Repository,
        challenge: &str,
    ) -> Result<(Option<HeaderValue>, String), RegistryError> {
        let lookup = match &self.auth {
            Some(auth) => Some(
                auth.lookup(&format!("{}/{}", repo.registry, repo.name))
                    .await,
            ),
            None => None,
        };
        let trail = match &lookup {
            Some(l) => l.trail.to_string(),
            None => "berth has no Docker config to take credentials from".to_string(),
        };
        let basic = lookup
            .as_ref()
            .and_then(|l| l.credentials.as_ref())
            .and_then(|c| c.basic_authorization());
        let (scheme, params) = parse_challenge(challenge);
        let value = if scheme.eq_ignore_ascii_case("basic") {
            basic
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let Some(realm) = params.get("realm") else {
                return Ok((None, trail));
            };
            let scope = params
                .get("scope")
                .cloned()
                .unwrap_or_else(|| format!("repository:{}:pull", repo.name));
            let mut query = format!("scope={}", encode(&scope));
            if let Some(service) = params.get("service") {
                query = format!("service={}&{query}", encode(service));
            }
            let url = format!(
                "{realm}{}{query}",
                if realm.contains('?') { '&' } else { '?' }
            );
            Some(self.token(repo, &url, basic.as_deref()).await?)
        } else {
            None
        };
        Ok((
            value
                .and_then(|v| HeaderValue::from_str(&v).ok())
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                }),
            trail,
        ))
    }

    /// A bearer token from the token service at `url`.
    async fn token(
        &self,
        repo: &Repository,
        url: &str,
        basic: Option<&str>,
    ) -> Result<String, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let invalid = |detail: &str| RegistryError::Invalid {
            host: repo.registry.clone(),
            what: "token service address".into(),
            detail: detail.to_string(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let host = uri
            .authority()
            .ok_or_else(|| invalid("no host"))?
            .to_string();
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let auth = basic.and_then(|b| HeaderValue::from_str(b).ok());
        let a = self
            .send(&host, Method::GET, pq, None, auth.as_ref())
            .await?;
        if !a.status.is_success() {
            return Err(RegistryError::Denied {
                host: repo.registry.clone(),
                what: format!("a token for {}", repo.name),
                status: a.status.as_u16(),
                trail: "the token service said no".into(),
            });
        }
        let t: Token = serde_json::from_slice(&a.body).map_err(|_| RegistryError::Invalid {
            host: repo.registry.clone(),
            what: "token".into(),
            detail: "not the JSON a token service sends".into(),
        })?;
        t.token
            .or(t.access_token)
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| RegistryError::Invalid {
                host: repo.registry.clone(),
                what: "token".into(),
                detail: "no token in it".into(),
            })
    }

    /// Sends one request to `host` (`name[:port]`) and reads the whole answer.
    async fn send(
        &self,
        host: &str,
        method: Method,
        path: &str,
        accept: Option<&str>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Answer, RegistryError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let tls = self.tls_for(host)?;
        let (name, port) = socket_of(host);
        let url = HttpUrl {
            tls: tls.is_some(),
            host: name,
            port,
            path: path.to_string(),
        };
        let client = match tls {
            Some(config) => http_client::Client::with_tls(config),
            None => http_client::Client::plain(),
        }
        .timeout(self.timeout);
        let mut headers = Vec::new();
        if let Some(a) = accept {
            headers.push(("Accept", a));
        }
        // A header value berth made from a token is visible ASCII; anything else is not sent.
        if let Some(v) = authorization.and_then(|v| v.to_str().ok()) {
            headers.push(("Authorization", v));
        }
        let req = http_client::Request {
            method: method.as_str(),
            headers: &headers,
            body: None,
        };
        let a = client.send(&url, req, BODY_LIMIT).await.map_err(|source| {
            RegistryError::Transport {
                host: host.to_string(),
                source,
            }
        })?;
        if a.truncated {
            return Err(RegistryError::Invalid {
                host: host.to_string(),
                what: "answer".into(),
                detail: format!("larger than {} MiB", BODY_LIMIT >> 20),
            });
        }
        Ok(Answer {
            status: StatusCode::from_u16(a.status).map_err(|e| RegistryError::Invalid {
                host: host.to_string(),
                what: "answer".into(),
                detail: e.to_string(),
            })?,
            headers: a.headers,
            body: a.body,
        })
    }

    /// The TLS set-up for `host`, or `None` for plain HTTP: a loopback registry without a
    /// certificate directory, which the engine also reaches over HTTP.
    fn tls_for(&self, host: &str) -> Result<Option<Arc<rustls::ClientConfig>>, RegistryError> {
        let dir = self.certs_dir.join(host);
        if !dir.is_dir() && is_loopback(host) {
            return Ok(None);
        }
        let mut cache = self.tls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(host) {
            return Ok(Some(c.clone()));
        }
        let (config, _) =
            tls::client_config_for_ca_dir(&dir).map_err(|source| RegistryError::Tls {
                host: host.to_string(),
                source,
            })?;
        cache.insert(host.to_string(), config.clone());
        Ok(Some(config))
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<Repository, HeaderValue>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `host` without its port, and the port (443 when none is written).
fn split_port(host: &str) -> (&str, u16) {
    if let Some((h, p)) = host.rsplit_once(':')
        && !h.ends_with(':')
        && let Ok(port) = p.parse()
        && (!h.contains(':') || h.ends_with(']'))
    {
        return (h, port);
    }
    (host, 443)
}

fn socket_of(host: &str) -> (String, u16) {
    let (name, port) = split_port(host);
    let port = if port == 443 && is_loopback(host) && !host.contains(':') {
        80
    } else {
        port
    };
    (
        name.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    )
}

fn is_loopback(host: &str) -> bool {
    let (name, _) = split_port(host);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// `os/arch` of this host as registries name them.
fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("linux/{arch}")
}

/// The path of a `Link: <…>; rel="next"` header (relative or absolute).
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    for part in link.split(',') {
        let (target, params) = part.split_once(';')?;
        if params.contains("rel=\"next\"") || params.contains("rel=next") {
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            return match target.parse::<Uri>() {
                Ok(u) if u.authority().is_some() => u.path_and_query().map(|p| p.to_string()),
                _ => Some(target.to_string()),
            };
        }
    }
    None
}

/// `Bearer realm="…",service="…",scope="…"` → (`Bearer`, parameters).
fn parse_challenge(text: &str) -> (String, HashMap<String, String>) {
    let text = text.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = after.trim_start_matches([',', ' ']);
    }
    (scheme.to_string(), params)
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `2024-05-01T12:34:56.123Z` (or with an offset) → seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let (y, m, day): (i64, u32, u32) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => (&time[..i], &time[i..]),
        None => (time, "Z"),
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.split(':');
    let (hh, mm, ss): (i64, i64, i64) = (
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
    );
    let off = match offset.as_bytes().first() {
        Some(b'+' | b'-') => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (oh, om) = offset[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
        _ => 0,
    };
    let days = crate::util::time::days_from_civil(y, m, day);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss - off).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters_are_read() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let (s, p) = parse_challenge(r#"Basic realm="berth-test""#);
        assert_eq!((s.as_str(), p["realm"].as_str()), ("Basic", "berth-test"));
    }

    #[test]
    fn next_link_gives_the_path() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        h.insert(
            header::LINK,
            HeaderValue::from_static(r#"<https://r.example/v2/app/tags/list?last=c>; rel="next""#),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/app/tags/list?last=c"));
    }

    #[test]
    fn repositories_of_docker_hub_get_library() {
        let r = |s| Repository::of(&crate::desired::syntax::image_ref::parse_image_ref(s).unwrap());
        assert_eq!(r("nginx:1").name, "library/nginx");
        assert_eq!(r("nginx:1").registry, "docker.io");
        assert_eq!(r("127.0.0.1:5000/org/app:1").registry, "127.0.0.1:5000");
        assert_eq!(r("127.0.0.1:5000/org/app:1").name, "org/app");
    }

    #[test]
    fn hosts_split_into_socket_addresses() {
        assert_eq!(socket_of("127.0.0.1:5000"), ("127.0.0.1".into(), 5000));
        assert_eq!(socket_of("ghcr.io"), ("ghcr.io".into(), 443));
        assert_eq!(socket_of("[::1]:5000"), ("::1".into(), 5000));
        assert!(is_loopback("localhost:5000") && !is_loopback("ghcr.io"));
    }

    #[test]
    fn rfc3339_times_are_read() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(parse_rfc3339("1970-01-02T01:00:00.5+01:00"), Some(86_400));
    }
}
