//! berth's one HTTP/1.1 client, used by the probes (`reconcile::probe`), the notification
//! webhooks (`telemetry::notify`), the CLI asking a running berth (`cli/client`) and the
//! registry checks (`update::registry`). IO: it connects (TCP, and TLS for `https://` through
//! `tls`), sends one request with `Connection: close` through hyper's client connection
//! (`hyper::client::conn::http1`) and reads the answer's body up to a byte limit: a longer
//! body is cut there and marked `truncated`, not an error. `url` is the URL grammar, `error`
//! the typed failures. Every exchange, connect to last byte, is bounded by the client's
//! timeout ([`DEFAULT_TIMEOUT`] unless the caller sets its own with [`Client::timeout`]).

mod error;
pub mod tls;
pub mod url;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub use error::HttpError;
pub use url::HttpUrl;

/// The `User-Agent` of requests other than probes.
pub const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// An HTTP answer as far as the client read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The response headers (`WWW-Authenticate`, `Link`, `Docker-Content-Digest` …).
    pub headers: HeaderMap,
    /// The body (decoded if chunked), possibly cut at the read limit.
    pub body: Vec<u8>,
    /// The body was longer than the read limit.
    pub truncated: bool,
}

impl HttpResponse {
    /// The value of header `name` when it is there and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request's method, extra headers and body (content type, bytes).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, `HEAD` …
    pub method: &'a str,
    /// Headers sent as given, after (and replacing) the client's `Host`, `User-Agent` and
    /// `Connection: close`: `Authorization`, `Accept`, a probe's own `User-Agent` …
    pub headers: &'a [(&'a str, &'a str)],
    /// The body and its content type (`Content-Length` follows from it).
    pub body: Option<(&'a str, &'a [u8])>,
}

/// How long an exchange (connect to last byte) may take unless the caller says otherwise
/// ([`Client::timeout`]): no request of berth's waits for ever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client: plain HTTP, and HTTPS when it has a TLS configuration; every exchange bounded by
/// its timeout.
#[derive(Clone)]
pub struct Client {
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Client {
        Client {
            tls: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client for `http://` only, with [`DEFAULT_TIMEOUT`].
    pub fn plain() -> Client {
        Client::default()
    }

    /// A client for `http://` and `https://` with this TLS configuration (see [`tls`]), with
    /// [`DEFAULT_TIMEOUT`].
    pub fn with_tls(config: Arc<rustls::ClientConfig>) -> Client {
        Client {
            tls: Some(config),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same client, failing an exchange (connect to last byte) after `after`
    /// ([`HttpError::Timeout`]).
    pub fn timeout(mut self, after: Duration) -> Client {
        self.timeout = after;
        self
    }

    /// Sends `req` to `url` on a fresh connection; reads at most `max` bytes of the body.
    pub async fn send(
        &self,
        url: &HttpUrl,
        req: Request<'_>,
        max: usize,
    ) -> Result<HttpResponse, HttpError> {
        let after = self.timeout;
        tokio::time::timeout(after, self.exchange(url, req, max))
            .await
            .map_err(|_| HttpError::Timeout {
                authority: url.authority(),
                after,
            })?
    }

    async fn exchange(
        &self,
        url: &HttpUrl,
        req: Request<'_>,
        max: usize,
    ) -> Result<HttpResponse, HttpError> {
        let authority = url.authority();
        let request = build_request(url, &req).map_err(|source| HttpError::Request {
            authority: authority.clone(),
            source,
        })?;
        let tls = match (&self.tls, url.tls) {
            (_, false) => None,
            (Some(config), true) => Some(config.clone()),
            (None, true) => return Err(HttpError::NoTls { authority }),
        };
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|source| HttpError::Connect {
                authority: authority.clone(),
                source,
            })?;
        // One small request: do not wait for more to fill a segment.
        let _ = tcp.set_nodelay(true);
        let Some(config) = tls else {
            return exchange(TokioIo::new(tcp), request, max, &authority).await;
        };
        let name = rustls::pki_types::ServerName::try_from(url.host.clone()).map_err(|source| {
            HttpError::ServerName {
                host: url.host.clone(),
                source,
            }
        })?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| HttpError::Tls {
                authority: authority.clone(),
                source,
            })?;
        exchange(TokioIo::new(stream), request, max, &authority).await
    }
}

/// One probe's `GET path` to `addr` (plain HTTP, `Host: addr`, `User-Agent: berth-probe`,
/// `Accept: */*`) within `timeout`; reads at most `max` bytes of the body.
pub async fn probe_get(
    addr: SocketAddr,
    path: &str,
    max: usize,
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let url = HttpUrl {
        tls: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        path: path.to_string(),
    };
    let host = addr.to_string();
    let req = Request {
        method: "GET",
        headers: &[
            ("Host", &host),
            ("User-Agent", "berth-probe"),
            ("Accept", "*/*"),
        ],
        body: None,
    };
    Client::plain().timeout(timeout).send(&url, req, max).await
}

/// The hyper request for `req` to `url`: origin-form path, `Host`, `User-Agent`,
/// `Connection: close`, then the caller's headers; a body with its `Content-Type`.
fn build_request(
    url: &HttpUrl,
    req: &Request<'_>,
) -> Result<hyper::Request<Full<Bytes>>, hyper::http::Error> {
    let body = req
        .body
        .map_or_else(Bytes::new, |(_, data)| Bytes::copy_from_slice(data));
    let mut request = hyper::Request::builder()
        .method(req.method)
        .uri(url.path.as_str())
        .body(Full::new(body))?;
    let h = request.headers_mut();
    h.insert(header::HOST, HeaderValue::from_str(&url.host_header())?);
    h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some((content_type, _)) = req.body {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type)?);
    }
    for (name, value) in req.headers {
        h.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    Ok(request)
}

/// Sends `request` over `io` and reads the answer: the whole body, or its first `max` bytes
/// (then `truncated`) when it is longer.
async fn exchange<I>(
    io: I,
    request: hyper::Request<Full<Bytes>>,
    max: usize,
    authority: &str,
) -> Result<HttpResponse, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let send = |source| HttpError::Send {
        authority: authority.to_string(),
        source,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(send)?;
    // The connection's task; aborted below so a body left unread does not keep it (and
    // its socket) alive.
    let conn = tokio::spawn(conn);
    let answer = async {
        let response = sender.send_request(request).await.map_err(send)?;
        let (parts, mut body) = response.into_parts();
        let mut data = Vec::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| HttpError::Read {
                authority: authority.to_string(),
                source,
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            let room = max.saturating_sub(data.len());
            if chunk.len() > room {
                data.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            data.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: data,
            truncated,
        })
    }
    .await;
    conn.abort();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering one connection with `answer`; the request it read.
    async fn serve_once(answer: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            // The head, then as many body bytes as its Content-Length says (at most 64 reads).
            let mut buf = Vec::new();
            for _ in 0..64 {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                let Some(end) = text.find("\r\n\r\n") else {
                    if n == 0 {
                        break;
                    }
                    continue;
                };
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if n == 0 || buf.len() >= end + 4 + length {
                    break;
                }
            }
            let _ = s.write_all(&answer).await;
            let _ = s.shutdown().await;
            String::from_utf8_lossy(&buf).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_long_body_is_cut_at_the_limit_and_headers_are_kept() {
        let mut answer = b"HTTP/1.1 200 OK\r\nLink: </next>; rel=\"next\"\r\n\
                           Transfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        for _ in 0..64 {
            answer.extend_from_slice(b"400\r\n");
            answer.extend_from_slice(&[b'x'; 0x400]);
            answer.extend_from_slice(b"\r\n");
        }
        answer.extend_from_slice(b"0\r\n\r\n");
        let (addr, task) = serve_once(answer).await;
        let r = probe_get(addr, "/health?x=1", 10_000, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!((r.status, r.body.len(), r.truncated), (200, 10_000, true));
        assert_eq!(r.header("link"), Some("</next>; rel=\"next\""));
        let request = task.await.unwrap();
        assert!(
            request.starts_with("GET /health?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains(&format!("host: {addr}\r\n")), "{request}");
        assert!(request.contains("user-agent: berth-probe\r\n"), "{request}");
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_whole_and_failures_are_typed() {
        let (addr, _task) =
            serve_once(b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\n\r\nnever".to_vec()).await;
        let r = probe_get(addr, "/", 5, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.truncated),
            (503, &b"never"[..], false)
        );
        let (addr, _task) = serve_once(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()).await;
        let err = probe_get(addr, "/", 5, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Send { .. }), "{err:?}");
        let url: HttpUrl = format!("https://{addr}/").parse().unwrap();
        let req = Request {
            method: "GET",
            headers: &[],
            body: None,
        };
        let err = Client::plain().send(&url, req, 5).await.unwrap_err();
        assert!(matches!(err, HttpError::NoTls { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_post_sends_its_body_and_the_callers_headers_replace_the_clients() {
        let (addr, task) =
            serve_once(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec()).await;
        let url: HttpUrl = format!("http://{addr}/hook").parse().unwrap();
        let req = Request {
            method: "POST",
            headers: &[("User-Agent", "custom/1"), ("X-Title", "deployed")],
            body: Some(("application/json", b"{\"a\":1}")),
        };
        let r = Client::plain().send(&url, req, 64).await.unwrap();
        assert_eq!((r.status, r.body.len(), r.truncated), (204, 0, false));
        let request = task.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /hook http/1.1\r\n"), "{request}");
        for line in [
            "user-agent: custom/1\r\n",
            "x-title: deployed\r\n",
            "content-type: application/json\r\n",
            "content-length: 7\r\n",
            "connection: close\r\n",
        ] {
            assert!(request.contains(line), "{line:?} in {request}");
        }
        assert!(!request.contains("berth/"), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"a\":1}"), "{request}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_errors_name_the_server_not_the_path() {
        // Accepts, reads nothing, answers nothing: only the client's timeout ends the wait.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        let url: HttpUrl = format!("http://{addr}/hook?token=s3cret").parse().unwrap();
        let req = Request {
            method: "GET",
            headers: &[],
            body: None,
        };
        let client = Client::plain().timeout(Duration::from_millis(200));
        let err = client.send(&url, req, 64).await.unwrap_err();
        assert!(matches!(err, HttpError::Timeout { .. }), "{err:?}");
        let text = crate::errors::chain(&err);
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(!text.contains("s3cret"), "{text}");

        // Nothing listens on a port just freed: refused, named by host:port only.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let gone = free.local_addr().unwrap();
        drop(free);
        let url: HttpUrl = format!("http://{gone}/hook?token=s3cret").parse().unwrap();
        let err = client.send(&url, req, 64).await.unwrap_err();
        assert!(matches!(err, HttpError::Connect { .. }), "{err:?}");
        let text = crate::errors::chain(&err);
        assert!(
            text.starts_with(&format!("failed to connect to {gone}: ")),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
    }
}
