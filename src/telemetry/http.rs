//! berth's HTTP server (hyper 1, HTTP/1.1) on `--listen` (default `127.0.0.1:9469`):
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the read-only dashboard (`dashboard`: HTML, `/dashboard.js`, `/dashboard.css`, strict CSP) |
//! | `GET /metrics` | Prometheus text 0.0.4; OpenMetrics (`application/openmetrics-text`) when the client asks for it explicitly, as Prometheus does ([`wants_openmetrics`]) |
//! | `GET /healthz` | 200 `ok` while the process serves |
//! | `GET /readyz` | 200 when a valid desired state is loaded, the engine answered at the last round and answers the live ping (`engine_check`), else 503 with the reason |
//! | `GET /api/v1/status` | the status model as JSON (see `status`) |
//! | `GET /api/v1/events?since=N\|TIME\|DURATION&limit=N` | `{"events": [...], "next_seq": N}` |
//! | `POST /hooks/git` | handed to the [`GitHook`] when one is set (404 otherwise) |
//!
//! Limits: request headers within 16 KiB and 5 s, a body within 1 MiB (413 beyond), a whole
//! request within 10 s (503), at most 64 connections at once: a new connection beyond that
//! closes the oldest one with no request in a handler (idle, or a slow client still sending
//! its headers), so slow clients cannot make `/healthz` wait; only GET/HEAD (and POST on the
//! hook). Nothing secret is in any answer: status
//! and events carry names, revisions, images and reasons, never environment values or
//! container logs. Shutdown is graceful: [`Server::shutdown`] stops accepting, lets requests in
//! flight finish within a grace period, then closes what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::Telemetry;
use super::events::Since;
use super::status::Status;
use super::time::Timestamp;

/// The webhook handler for `POST /hooks/git` (issue 5's source): called with the request's
/// headers and body (already read, within the body limit); answers `(status code, body text)`.
/// It runs on the server's task under the request time limit, so it should only verify the
/// request and trigger a fetch, not do the fetch itself.
pub type GitHook = Arc<
    dyn Fn(HeaderMap, Bytes) -> Pin<Box<dyn Future<Output = (u16, String)> + Send>> + Send + Sync,
>;

/// A webhook handler that takes the headers as `(lower-case name, value)` pairs and the body
/// as bytes; [`hook_from_pairs`] makes a [`GitHook`] of it.
pub type PairsHook = Arc<
    dyn Fn(Vec<(String, String)>, Vec<u8>) -> Pin<Box<dyn Future<Output = (u16, String)> + Send>>
        + Send
        + Sync,
>;

/// A [`GitHook`] from a [`PairsHook`] (header values that are not text are left out).
pub fn hook_from_pairs(f: PairsHook) -> GitHook {
    Arc::new(move |headers: HeaderMap, body: Bytes| {
        let pairs = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        f(pairs, body.to_vec())
    })
}

/// Whether the engine answers right now (`Some(why)` when not): consulted by `/readyz` and
/// `/api/v1/status` at each request, so a frozen engine shows within seconds rather than
/// after a round's calls time out (see `engine::liveness`).
pub type EngineCheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The OpenMetrics content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Server limits and the optional webhook.
#[derive(Clone)]
pub struct ServerOptions {
    /// Largest request body.
    pub max_body: usize,
    /// Time to receive a request's headers.
    pub header_timeout: Duration,
    /// Time for a whole request, answer included.
    pub request_timeout: Duration,
    /// Connections served at once; beyond it a new connection replaces the oldest one with
    /// no request in a handler.
    pub max_connections: usize,
    /// Events returned per query at most.
    pub max_events: usize,
    /// `POST /hooks/git`.
    pub git_hook: Option<GitHook>,
    /// The live engine check; without it readiness rests on the last round only.
    pub engine_check: Option<EngineCheck>,
    /// The fleet's shared token (`--fleet-token-file`): with it, a client that is not on
    /// loopback must send `Authorization: Bearer TOKEN` for everything but `/healthz`,
    /// `/readyz` and `/hooks/git` (which has its own secret).
    pub token: Option<crate::fleet::peers::FleetToken>,
    /// The port-handoff proxy (`--proxy-admin`): looked at for each `/metrics` (its series,
    /// `berth_proxy_up`) and `/api/v1/status` (who receives traffic, what drains).
    pub proxy: Option<crate::proxy::look::ProxyWatch>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body: 1 << 20,
            header_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_connections: 64,
            max_events: 1000,
            git_hook: None,
            engine_check: None,
            token: None,
            proxy: None,
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds `addr` and serves `telemetry` until [`Server::shutdown`].
    pub async fn bind(
        addr: SocketAddr,
        telemetry: Arc<Telemetry>,
        opts: ServerOptions,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        if opts.token.is_none()
            && let Some(risk) = exposure_warning(addr)
        {
            tracing::warn!(listen = %addr, "{risk}");
        }
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, telemetry, opts, stopped));
        Ok(Server { addr, stop, task })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish within `grace`, closes the rest.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// The connections being served: when they reach the bound, a new one makes room by closing
/// the oldest that has no request in a handler (idle between requests, or still sending its
/// headers: a slow or stalled client), so a flood of slow clients cannot keep `/healthz` and
/// `/metrics` waiting. Requests in a handler are bounded by the request time limit.
#[derive(Default)]
struct Conns {
    next: u64,
    live: std::collections::BTreeMap<u64, Conn>,
}

struct Conn {
    /// A request of this connection is in a handler.
    busy: Arc<AtomicBool>,
    /// Told to close.
    evict: Arc<Notify>,
}

impl Conns {
    /// Registers a new connection, first making room within `max` if needed; `None` when
    /// every connection has a request in a handler (the new one is then turned away).
    fn admit(&mut self, max: usize) -> Option<(u64, Arc<AtomicBool>, Arc<Notify>)> {
        if self.live.len() >= max {
            let oldest_idle = self
                .live
                .iter()
                .find(|(_, c)| !c.busy.load(Ordering::Acquire))
                .map(|(id, _)| *id)?;
            if let Some(c) = self.live.remove(&oldest_idle) {
                // `notify_one` keeps the wake-up if the task is not waiting yet.
                c.evict.notify_one();
            }
        }
        let id = self.next;
        self.next += 1;
        let busy = Arc::new(AtomicBool::new(false));
        let evict = Arc::new(Notify::new());
        self.live.insert(
            id,
            Conn {
                busy: busy.clone(),
                evict: evict.clone(),
            },
        );
        Some((id, busy, evict))
    }
}

/// Marks a connection busy while a request is in its handler.
struct BusyGuard(Arc<AtomicBool>);

impl BusyGuard {
    fn new(flag: &Arc<AtomicBool>) -> BusyGuard {
        flag.store(true, Ordering::Release);
        BusyGuard(flag.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What to tell the operator when the server listens beyond loopback: who can read what, and
/// what to do about it. `None` on a loopback address.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "--listen {addr} is not a loopback address: anyone who can reach it reads /metrics, \
         /api/v1/status and /api/v1/events without authentication (service names, images, \
         revisions, errors: a map of this host; the dashboard at / shows the same) and can \
         load the server; without --fleet-token-file (which then requires that token from them) \
         keep --listen on 127.0.0.1 or put a \
         reverse proxy with TLS and access rules in front, as docs/observability.md shows (only \
         POST /hooks/git needs to be public, and it is checked with --webhook-secret-file)"
    ))
}

async fn accept_loop(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    opts: ServerOptions,
    mut stopped: watch::Receiver<bool>,
) {
    let max = opts.max_connections.max(1);
    let live = Arc::new(Mutex::new(Conns::default()));
    let mut conns = JoinSet::new();
    let opts = Arc::new(opts);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
        let admitted = live.lock().unwrap_or_else(|p| p.into_inner()).admit(max);
        let Some((id, busy, evict)) = admitted else {
            tracing::debug!(%peer, "HTTP connection refused: every connection has a request in progress");
            drop(stream);
            continue;
        };
        let tel = telemetry.clone();
        let opts = opts.clone();
        let mut stop = stopped.clone();
        let header_timeout = opts.header_timeout;
        let live = live.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let tel = tel.clone();
                let opts = opts.clone();
                let guard = BusyGuard::new(&busy);
                async move {
                    let resp = handle(req, &tel, &opts, peer.ip().is_loopback()).await;
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(16 * 1024)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                }
                _ = evict.notified() => {
                    tracing::debug!(%peer, "HTTP connection closed to make room (no request in progress)");
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            live.lock().unwrap_or_else(|p| p.into_inner()).live.remove(&id);
        });
    }
    drop(listener);
    // Requests in flight finish (the caller bounds this with its grace period).
    while conns.join_next().await.is_some() {}
}

type Body = Full<Bytes>;

/// A plain-text answer; secret values masked (see `redact`).
fn text(code: StatusCode, body: impl Into<String>) -> Response<Body> {
    let body = crate::redact::owned(&body.into());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON answer; secret values masked in every string (see `redact`).
fn json(code: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let value = serde_json::to_value(value).map(|mut v| {
        crate::redact::json(&mut v);
        v
    });
    match value.and_then(|v| serde_json::to_vec_pretty(&v)) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = code;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn handle(
    req: Request<Incoming>,
    tel: &Telemetry,
    opts: &ServerOptions,
    loopback: bool,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let head = method == Method::HEAD;
    if !admitted(&req, opts, loopback) {
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "this berth needs the fleet token: Authorization: Bearer TOKEN\n",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        tracing::debug!(%method, %path, "HTTP request refused: no fleet token");
        return r;
    }
    let answer = tokio::time::timeout(opts.request_timeout, route(req, tel, opts)).await;
    let mut resp = answer.unwrap_or_else(|_| {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "request took too long; try again\n",
        )
    });
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "HTTP request");
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

/// With a fleet token, a client off loopback must carry it (but for the probes and the git
/// webhook, which has its own secret).
fn admitted(req: &Request<Incoming>, opts: &ServerOptions, loopback: bool) -> bool {
    let Some(token) = &opts.token else {
        return true;
    };
    if loopback || matches!(req.uri().path(), "/healthz" | "/readyz" | "/hooks/git") {
        return true;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    token.admits(given)
}

async fn route(req: Request<Incoming>, tel: &Telemetry, opts: &ServerOptions) -> Response<Body> {
    let path = req.uri().path().to_string();
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let allow = |methods: &'static str| {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(methods));
        r
    };
    if let Some((body, content_type)) = super::dashboard::asset(&path) {
        if !get {
            return allow("GET, HEAD");
        }
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in super::dashboard::SECURITY_HEADERS {
            h.insert(name, HeaderValue::from_static(value));
        }
        return r;
    }
    match path.as_str() {
        "/metrics" | "/healthz" | "/readyz" | "/api/v1/status" | "/api/v1/events" if !get => {
            allow("GET, HEAD")
        }

        "/metrics" => {
            if let Some(w) = &opts.proxy {
                tel.set_proxy(w.look().await.seen);
            }
            metrics(req.headers(), tel)
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match not_answering(opts).map_or_else(|| tel.readiness(), Err) {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        "/api/v1/status" => match tel.status() {
            Some(mut s) => {
                if let Some(why) = not_answering(opts) {
                    mark_engine_not_answering(&mut s, why);
                }
                if let Some(w) = &opts.proxy {
                    let look = w.look().await;
                    super::traffic::join(&mut s, &look.routes, &look.seen);
                }
                json(StatusCode::OK, &s)
            }
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no reconcile round has finished yet\n",
            ),
        },
        "/api/v1/events" => events(req.uri().query().unwrap_or(""), tel, opts),
        "/hooks/git" => match &opts.git_hook {
            None => text(StatusCode::NOT_FOUND, "not found\n"),
            Some(_) if *req.method() != Method::POST => allow("POST"),
            Some(hook) => {
                let hook = hook.clone();
                git_hook(req, hook, opts.max_body).await
            }
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn not_answering(opts: &ServerOptions) -> Option<String> {
    opts.engine_check.as_ref().and_then(|check| check())
}

/// The status of the last round, corrected by what the engine says now: not reachable, with
/// the reason in the `EngineReachable` condition.
fn mark_engine_not_answering(s: &mut Status, why: String) {
    s.engine_reachable = Some(false);
    if let Some(c) = s
        .conditions
        .iter_mut()
        .find(|c| c.kind == "EngineReachable")
    {
        if c.status != "False" {
            c.last_transition_time = Timestamp(crate::apply::unix_now());
        }
        c.status = "False".into();
        c.reason = "NotAnswering".into();
        c.message = why;
    }
}

fn metrics(headers: &HeaderMap, tel: &Telemetry) -> Response<Body> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body, content_type) = if wants_openmetrics(accept) {
        (tel.metrics_text(true), OPENMETRICS)
    } else {
        (tel.metrics_text(false), PROMETHEUS_TEXT)
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Whether an `Accept` header asks for OpenMetrics, as Prometheus' own client libraries
/// negotiate: only a client that names `application/openmetrics-text` explicitly (Prometheus
/// does) with a weight at least that of the classic text format gets it; no header, `*/*`
/// (curl), `text/*` or `text/plain` get the classic text format 0.0.4.
pub fn wants_openmetrics(accept: &str) -> bool {
    let mut open = 0.0f32;
    let mut classic = 0.0f32;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => open = open.max(q),
            "text/plain" | "text/*" | "*/*" => classic = classic.max(q),
            _ => {}
        }
    }
    open > 0.0 && open >= classic
}

fn events(query: &str, tel: &Telemetry, opts: &ServerOptions) -> Response<Body> {
    let mut since = Since::All;
    let mut limit = opts.max_events;
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let v = percent_decode(v);
        match k {
            "since" => match Since::parse(&v, crate::apply::unix_now()) {
                Ok(s) => since = s,
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) => limit = n.min(opts.max_events),
                Err(_) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("limit={v}: not a number\n"),
                    );
                }
            },
            _ => {}
        }
    }
    let events = tel.events_since(since, limit);
    let next_seq = tel.next_event_seq();
    json(
        StatusCode::OK,
        &serde_json::json!({ "events": events, "next_seq": next_seq }),
    )
}

async fn git_hook(req: Request<Incoming>, hook: GitHook, max_body: usize) -> Response<Body> {
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max_body as u64);
    if too_large {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("failed to read the body: {e}\n"),
            );
        }
    };
    let (code, message) = hook(parts.headers, body).await;
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(code, message)
}

/// `%XX` and `+` decoding of a query value.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{percent_decode, wants_openmetrics};

    #[test]
    fn openmetrics_only_when_asked_for_by_name() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(prometheus));
        assert!(wants_openmetrics("application/openmetrics-text"));
        for classic in [
            "",
            "*/*",
            "text/plain",
            "text/plain;version=0.0.4",
            "text/*, */*;q=0.1",
            "application/openmetrics-text;q=0.3, text/plain",
            "application/openmetrics-text;q=0",
            "application/json",
        ] {
            assert!(!wants_openmetrics(classic), "{classic:?}");
        }
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            percent_decode("2024-05-01T12%3A00%3A00Z"),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(percent_decode("a+b%"), "a b%");
    }
}
