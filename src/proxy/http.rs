//! HTTP mode: an HTTP/1.1 reverse proxy. Each request goes to a routed backend (round-robin);
//! the client's keep-alive connection is the proxy's, so it survives a switch of backends.
//! Bodies stream both ways; a WebSocket (any `Upgrade`) becomes a byte pipe after the 101;
//! the backend learns the client through `X-Forwarded-For`, `X-Forwarded-Proto`,
//! `X-Forwarded-Host` and `Forwarded` (RFC 7239).
//!
//! IO (tokio, hyper 1) but for the header rewrite (`prepare_request`, pure). A request that
//! could not be handed to a backend's connection (a stale keep-alive connection, a refused
//! connect) is tried on the next connection or backend; one that reached a backend is never
//! sent twice.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::table::{ActiveGuard, BackendState, Pool};
use super::tcp::{CONNECT_TIMEOUT, NO_BACKEND_WAIT};

type Body = BoxBody<Bytes, hyper::Error>;

/// Keep-alive connections to backends of one client connection (at most one per backend).
type Cache = Arc<Mutex<Vec<(Arc<BackendState>, SendRequest<Incoming>)>>>;

/// Accepts client connections on `listener` forever, one task each.
pub async fn serve(listener: TcpListener, pool: Arc<Pool>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    let cache: Cache = Arc::default();
                    let svc = hyper::service::service_fn(move |req| {
                        forward(req, peer, Arc::clone(&pool), Arc::clone(&cache))
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "client connection ended with an error");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn text(status: StatusCode, msg: &'static str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(msg.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn forward(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    pool: Arc<Pool>,
    cache: Cache,
) -> Result<Response<Body>, Infallible> {
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    prepare_request(&mut req, peer, upgrade);
    let deadline = tokio::time::Instant::now() + NO_BACKEND_WAIT;
    // Bounded: each pass tries every routed backend once (a stale cached connection gives
    // the request back and a fresh one is tried), then waits, until the deadline.
    loop {
        for b in pool.candidates() {
            let mut cached = if upgrade {
                None
            } else {
                take_cached(&cache, &b)
            };
            loop {
                let fresh = cached.is_none();
                let mut sender = match cached.take() {
                    Some(s) => s,
                    None => match connect(&b).await {
                        Some(s) => s,
                        None => break,
                    },
                };
                // Active from the moment it is sent: a slow request drains like any other.
                let guard = b.attempt();
                match sender.try_send_request(req).await {
                    Ok(resp) => {
                        b.served();
                        return Ok(respond(
                            resp,
                            b,
                            guard,
                            sender,
                            upgrade,
                            client_upgrade,
                            &cache,
                        ));
                    }
                    Err(mut e) => match e.take_message() {
                        // Never written to the backend (its keep-alive connection had
                        // closed): the same request on a fresh connection.
                        Some(back) => {
                            req = back;
                            if fresh {
                                b.error();
                                break;
                            }
                        }
                        None => {
                            b.error();
                            tracing::debug!(backend = %b.name, error = %e.error(), "request failed at the backend");
                            return Ok(text(
                                StatusCode::BAD_GATEWAY,
                                "berth proxy: the backend failed to answer\n",
                            ));
                        }
                    },
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            pool.unserved();
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "berth proxy: no ready backend\n",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The backend's response on its way to the client: counted active until its body is sent,
/// its connection kept for the client's next request, an upgrade piped.
fn respond(
    mut resp: Response<Incoming>,
    b: Arc<BackendState>,
    guard: ActiveGuard,
    sender: SendRequest<Incoming>,
    upgrade: bool,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    cache: &Cache,
) -> Response<Body> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = client_upgrade
    {
        let backend_side = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let _guard = guard;
            pipe_upgraded(client, backend_side, b).await;
        });
        return resp.map(|body| body.boxed());
    }
    if !upgrade && b.routed() {
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        // A few idle connections per client connection are plenty.
        if c.len() >= 4 {
            c.remove(0);
        }
        c.push((b, sender));
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let body = body.map_frame(move |f| {
        let _ = &guard;
        f
    });
    Response::from_parts(parts, body.boxed())
}

fn take_cached(cache: &Cache, b: &Arc<BackendState>) -> Option<SendRequest<Incoming>> {
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    // Connections to backends switched away are dropped here: the client's next request
    // goes to a routed backend while its keep-alive connection to the proxy stays open.
    c.retain(|(cb, s)| cb.routed() && !s.is_closed());
    let i = c
        .iter()
        .position(|(cb, s)| Arc::ptr_eq(cb, b) && s.is_ready())?;
    Some(c.swap_remove(i).1)
}

/// A new connection to `b`; `None` (counted as the backend's error) when it refuses.
async fn connect(b: &Arc<BackendState>) -> Option<SendRequest<Incoming>> {
    let stream =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(b.addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                b.error();
                return None;
            }
        };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(x) => x,
        Err(_) => {
            b.error();
            return None;
        }
    };
    let backend = Arc::clone(b);
    tokio::spawn(async move {
        tokio::select! {
            _ = conn.with_upgrades() => {}
            () = backend.closed() => {}
        }
    });
    Some(sender)
}

async fn pipe_upgraded(
    client: hyper::upgrade::OnUpgrade,
    backend_side: hyper::upgrade::OnUpgrade,
    b: Arc<BackendState>,
) {
    let (Ok(c), Ok(u)) = (client.await, backend_side.await) else {
        b.error();
        return;
    };
    let mut c = TokioIo::new(c);
    let mut u = TokioIo::new(u);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut c, &mut u) => {}
        () = b.closed() => {}
    }
}

/// True for a request asking to switch protocols (`Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Headers that belong to one hop (RFC 9110 7.6.1), never forwarded; `Connection` and
/// `Upgrade` stay for an upgrade.
fn strip_hop_by_hop(h: &mut HeaderMap, upgrade: bool) {
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    for n in listed {
        h.remove(n);
    }
    for n in [
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        h.remove(n);
    }
    if !upgrade {
        h.remove(header::CONNECTION);
        h.remove(header::UPGRADE);
    }
}

/// What the backend receives: origin-form target, no hop-by-hop headers, the client's address
/// appended to `X-Forwarded-For` and `Forwarded`, `X-Forwarded-Proto: http`, and
/// `X-Forwarded-Host` when the client did not send one.
pub fn prepare_request<B>(req: &mut Request<B>, peer: SocketAddr, upgrade: bool) {
    if req.uri().scheme().is_some()
        && let Some(pq) = req.uri().path_and_query()
        && let Ok(u) = pq.as_str().parse()
    {
        *req.uri_mut() = u;
    }
    let h = req.headers_mut();
    strip_hop_by_hop(h, upgrade);
    let ip = peer.ip().to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(host) = &host
        && !h.contains_key("x-forwarded-host")
        && let Ok(v) = HeaderValue::from_str(host)
    {
        h.insert("x-forwarded-host", v);
    }
    // RFC 7239: IPv6 addresses are bracketed and quoted; the host is quoted.
    let for_ = if peer.is_ipv6() {
        format!("\"[{ip}]\"")
    } else {
        ip
    };
    let mut element = format!("for={for_};proto=http");
    if let Some(host) = host.filter(|h| !h.contains('"')) {
        element.push_str(&format!(";host=\"{host}\""));
    }
    let forwarded = match h.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {element}"),
        None => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.insert(header::FORWARDED, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri("/a?b=1");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn the_backend_sees_the_client_address_in_every_forwarding_header() {
        let mut r = req(&[
            ("host", "shop.example"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
        ]);
        prepare_request(&mut r, "192.0.2.7:5000".parse().unwrap(), false);
        let h = r.headers();
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "shop.example");
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.7;proto=http;host=\"shop.example\""
        );
        assert!(!h.contains_key("connection"));
        assert!(
            !h.contains_key("x-secret-hop"),
            "headers Connection names are hop-by-hop"
        );
    }

    #[test]
    fn forwarding_headers_from_an_earlier_proxy_are_appended_to() {
        let mut r = req(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        prepare_request(&mut r, "[2001:db8::1]:5000".parse().unwrap(), false);
        let h = r.headers();
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 2001:db8::1");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9, for=\"[2001:db8::1]\";proto=http"
        );
    }

    #[test]
    fn an_upgrade_keeps_connection_and_upgrade() {
        let mut r = req(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_upgrade(r.headers()));
        prepare_request(&mut r, "127.0.0.1:1".parse().unwrap(), true);
        assert_eq!(r.headers()["upgrade"], "websocket");
        assert_eq!(r.headers()["connection"], "Upgrade");
    }

    #[test]
    fn an_absolute_target_becomes_origin_form() {
        let mut r = Request::builder()
            .uri("http://shop.example/x?y")
            .body(())
            .unwrap();
        prepare_request(&mut r, "127.0.0.1:1".parse().unwrap(), false);
        assert_eq!(r.uri().to_string(), "/x?y");
    }
}
