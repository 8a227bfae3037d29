//! berth's one small HTTP/1.1 client, used by the probes (`reconcile::probe`), the
//! notification webhooks (`telemetry::notify`) and the CLI asking a running berth
//! (`cli/client`). IO: it connects (TCP, and TLS for `https://` through `tls`), writes one
//! request with `Connection: close` and reads the answer until it is complete, the peer
//! closes, or a size limit is reached; `wire` is the pure format, `url` the URL grammar.
//! Callers bound each exchange with their own timeout.

pub mod tls;
pub mod url;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use url::HttpUrl;
pub use wire::HttpResponse;

use crate::errors::chain;

/// The `User-Agent` of requests other than probes.
pub const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// One request's method, path, extra headers and body (content type, bytes).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// Headers besides `Host`, `Content-Type`, `Content-Length` and `Connection`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body and its content type.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// A client: plain HTTP, and HTTPS when it has a TLS configuration.
#[derive(Clone, Default)]
pub struct Client {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Client {
    /// A client for `http://` only.
    pub fn plain() -> Client {
        Client { tls: None }
    }

    /// A client for `http://` and `https://` with this TLS configuration (see [`tls`]).
    pub fn with_tls(config: Arc<rustls::ClientConfig>) -> Client {
        Client { tls: Some(config) }
    }

    /// Sends `req` to `url` on a fresh connection; reads at most `max` bytes of the answer.
    pub async fn send(
        &self,
        url: &HttpUrl,
        req: Request<'_>,
        max: usize,
    ) -> Result<HttpResponse, String> {
        let authority = url.authority();
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("connect to {authority}: {}", chain(&e)))?;
        let _ = tcp.set_nodelay(true);
        let mut headers = vec![("User-Agent", USER_AGENT)];
        headers.extend_from_slice(req.headers);
        let bytes = wire::request_bytes(req.method, &url.path, &authority, &headers, req.body);
        if !url.tls {
            return exchange(tcp, &bytes, max)
                .await
                .map_err(|e| format!("{authority}: {e}"));
        }
        let Some(config) = &self.tls else {
            return Err(format!("{authority}: this client has no TLS set up"));
        };
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("{}: not a TLS server name: {e}", url.host))?;
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {authority}: {}", chain(&e)))?;
        exchange(stream, &bytes, max)
            .await
            .map_err(|e| format!("{authority}: {e}"))
    }
}

/// One probe's `GET path` to `addr` (plain HTTP, `User-Agent: berth-probe`, `Accept: */*`);
/// reads at most `max` bytes.
pub async fn probe_get(addr: SocketAddr, path: &str, max: usize) -> Result<HttpResponse, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = wire::request_bytes(
        "GET",
        path,
        &addr.to_string(),
        &[("User-Agent", "berth-probe"), ("Accept", "*/*")],
        None,
    );
    exchange(stream, &request, max).await
}

/// Writes `request` to `stream` and reads the answer until it is complete, the peer closes, or
/// `max` bytes arrived (then `truncated` unless it was complete).
pub async fn exchange<S>(mut stream: S, request: &[u8], max: usize) -> Result<HttpResponse, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("send request: {e}"))?;
    let _ = stream.flush().await;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut truncated = false;
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A reset (or a TLS peer closing without close_notify) after a complete answer
            // is still an answer.
            Err(_) if wire::response_complete(&buf) => break,
            Err(e) => return Err(format!("read response: {e}")),
        };
        if n == 0 {
            break;
        }
        let room = max - buf.len();
        buf.extend_from_slice(&chunk[..n.min(room)]);
        if n > room || buf.len() >= max {
            truncated = n > room || !wire::response_complete(&buf);
            break;
        }
        if wire::response_complete(&buf) {
            break;
        }
    }
    wire::parse_response(&buf, truncated)
}
