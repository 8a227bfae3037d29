//! An engine-socket proxy for tests: a unix socket in front of the engine's
//! (`/var/run/docker.sock`) that passes HTTP/1.1 requests through one by one and can hold,
//! delay, fail (500) or drop the Nth request matching a rule; it reports the ordered list of
//! requests that passed. berth is pointed at it with `DOCKER_HOST=unix://<path>`.
//!
//! A byte-level forwarder on std threads, HTTP-aware only as far as framing needs: request and
//! response bodies by `Content-Length` or chunked encoding, keep-alive (many requests on one
//! connection), and streams (the events stream is chunked and passes chunk by chunk; a `101`
//! upgrade or a response without length, such as a hijacked attach/exec stream, turns the
//! connection into a two-way byte pipe until either side closes).
//!
//! Paths are matched without the API version prefix (`/v1.41`) and query; `*` in a pattern
//! matches one path segment (`/networks/*/connect`).
//!
//! Include with `#[path = "support/sockproxy.rs"] mod sockproxy;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a rule does to the request it catches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Keep it (not sent to the engine) until [`SockProxy::release`]; then send it.
    Hold,
    /// Send it after this long.
    Delay(Duration),
    /// Answer `500` without sending it.
    Fail,
    /// Close the client's connection without sending it.
    Drop,
}

/// Which requests a rule counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Method (upper case) and path pattern.
    Request {
        /// `GET`, `POST`, `DELETE`…
        method: String,
        /// A path without version prefix or query; `*` matches one segment.
        path: String,
    },
    /// Every request that changes something: any method but `GET` and `HEAD`.
    Mutating,
}

impl Matcher {
    /// `method` requests on `path` (a pattern).
    pub fn request(method: &str, path: &str) -> Matcher {
        Matcher::Request {
            method: method.to_owned(),
            path: path.to_owned(),
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        match self {
            Matcher::Request { method: m, path: p } => m == method && path_matches(p, path),
            Matcher::Mutating => is_mutating(method),
        }
    }
}

/// True for methods that change something (all but `GET` and `HEAD`).
pub fn is_mutating(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD")
}

/// A rule: act on the `nth` (1-based) request `matcher` counts.
#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    nth: usize,
    seen: usize,
    action: Action,
}

/// One request that passed (was sent to the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// Method.
    pub method: String,
    /// Path without version prefix and query.
    pub path: String,
    /// The engine's status code (0 when the connection ended before an answer).
    pub status: u16,
}

impl std::fmt::Display for Passed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.path, self.status)
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    passed: Vec<Passed>,
    /// Requests on hold: (method, path).
    held: Vec<(String, String)>,
    released: bool,
    /// What the rules did: (action, method, path).
    fired: Vec<(Action, String, String)>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The proxy; its socket and threads go away on drop (connections in flight end when their
/// peers close).
pub struct SockProxy {
    /// The socket to point berth at.
    pub path: PathBuf,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

impl SockProxy {
    /// A proxy in front of `upstream` (the engine's socket).
    pub fn start(upstream: &Path) -> SockProxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).expect("bind proxy socket");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let upstream = upstream.to_owned();
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let s = s.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, &upstream, &s);
                });
            }
        });
        SockProxy {
            path,
            shared,
            _dir: dir,
        }
    }

    /// In front of `/var/run/docker.sock`.
    pub fn docker() -> SockProxy {
        SockProxy::start(Path::new("/var/run/docker.sock"))
    }

    /// `DOCKER_HOST` for berth.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Acts on the `nth` (1-based) request `matcher` counts from now on.
    pub fn rule(&self, matcher: Matcher, nth: usize, action: Action) {
        let mut st = self.lock();
        st.rules.push(Rule {
            matcher,
            nth,
            seen: 0,
            action,
        });
    }

    /// Drops every rule (held requests stay held until [`Self::release`]).
    pub fn clear_rules(&self) {
        self.lock().rules.clear();
    }

    /// The requests that passed so far, in order.
    pub fn passed(&self) -> Vec<Passed> {
        self.lock().passed.clone()
    }

    /// Forgets the requests that passed so far.
    pub fn reset_log(&self) {
        self.lock().passed.clear();
    }

    /// What the rules did so far: (action, method, path).
    pub fn fired(&self) -> Vec<(Action, String, String)> {
        self.lock().fired.clone()
    }

    /// Waits (at most `limit`) until a request is on hold; returns it.
    pub fn wait_held(&self, limit: Duration) -> Option<(String, String)> {
        let until = Instant::now() + limit;
        let mut st = self.lock();
        loop {
            if let Some(h) = st.held.first() {
                return Some(h.clone());
            }
            let left = until.checked_duration_since(Instant::now())?;
            st = self
                .shared
                .wake
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sends every held request on to the engine (and any later one a `Hold` rule catches).
    pub fn release(&self) {
        let mut st = self.lock();
        st.released = true;
        self.shared.wake.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SockProxy {
    fn drop(&mut self) {
        self.release();
    }
}

/// `/v1.41/containers/x/json?all=1` → `/containers/x/json`.
fn bare_path(target: &str) -> String {
    let path = target.split('?').next().unwrap_or(target);
    let mut segs = path.splitn(3, '/');
    let (_, first, rest) = (segs.next(), segs.next(), segs.next());
    match (first, rest) {
        (Some(v), Some(rest)) if v.starts_with('v') && v[1..].contains('.') => format!("/{rest}"),
        (Some(v), None) if v.starts_with('v') && v[1..].contains('.') => "/".to_owned(),
        _ => path.to_owned(),
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let a: Vec<&str> = path.split('/').collect();
    p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| *p == "*" || p == a)
}

/// A parsed head: the start line, the raw bytes, and what framing it declares.
struct Head {
    raw: Vec<u8>,
    start: String,
    length: Option<u64>,
    chunked: bool,
    upgrade: bool,
}

fn read_head<R: BufRead>(r: &mut R) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut start = String::new();
    let mut length = None;
    let mut chunked = false;
    let mut upgrade = false;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if start.is_empty() {
            if text.is_empty() {
                continue;
            }
            start = text;
            continue;
        }
        if text.is_empty() {
            break;
        }
        if let Some((k, v)) = text.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "upgrade" => upgrade = true,
                _ => {}
            }
        }
    }
    Ok(Some(Head {
        raw,
        start,
        length,
        chunked,
        upgrade,
    }))
}

/// Copies a body framed by `head` from `r` to `w` (chunked: chunk by chunk, flushed).
fn copy_body<R: BufRead, W: Write>(head: &Head, r: &mut R, w: &mut W) -> std::io::Result<()> {
    if head.chunked {
        loop {
            let mut size_line = Vec::new();
            if r.read_until(b'\n', &mut size_line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            w.write_all(&size_line)?;
            let text = String::from_utf8_lossy(&size_line);
            let size = u64::from_str_radix(text.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut line = Vec::new();
                    if r.read_until(b'\n', &mut line)? == 0 {
                        break;
                    }
                    w.write_all(&line)?;
                    if line == b"\r\n" || line == b"\n" {
                        break;
                    }
                }
                w.flush()?;
                return Ok(());
            }
            std::io::copy(&mut r.by_ref().take(size + 2), w)?;
            w.flush()?;
        }
    } else if let Some(n) = head.length {
        std::io::copy(&mut r.by_ref().take(n), w)?;
        w.flush()
    } else {
        Ok(())
    }
}

/// Serves one client connection: request after request, each through the rules.
fn serve(client: UnixStream, upstream: &Path, shared: &Shared) -> std::io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let engine = UnixStream::connect(upstream)?;
    let mut from_engine = BufReader::new(engine.try_clone()?);
    let mut to_engine = engine;
    loop {
        let Some(req) = read_head(&mut from_client)? else {
            return Ok(());
        };
        let mut parts = req.start.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = bare_path(parts.next().unwrap_or_default());
        // The whole request first, so that a held one can still be sent after its client died.
        let mut body = Vec::new();
        copy_body(&req, &mut from_client, &mut body)?;
        let action = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut fired = None;
            for r in st.rules.iter_mut() {
                if r.matcher.matches(&method, &path) {
                    r.seen += 1;
                    if r.seen == r.nth && fired.is_none() {
                        fired = Some(r.action.clone());
                    }
                }
            }
            if let Some(a) = &fired {
                st.fired.push((a.clone(), method.clone(), path.clone()));
            }
            fired
        };
        match action {
            Some(Action::Fail) => {
                let msg = br#"{"message":"injected by the test proxy"}"#;
                write!(
                    to_client,
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    msg.len()
                )?;
                to_client.write_all(msg)?;
                to_client.flush()?;
                continue;
            }
            Some(Action::Drop) => return Ok(()),
            Some(Action::Delay(d)) => std::thread::sleep(d),
            Some(Action::Hold) => {
                let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                st.held.push((method.clone(), path.clone()));
                shared.wake.notify_all();
                while !st.released {
                    st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.held.retain(|h| *h != (method.clone(), path.clone()));
            }
            None => {}
        }
        to_engine.write_all(&req.raw)?;
        to_engine.write_all(&body)?;
        to_engine.flush()?;
        let resp = read_head(&mut from_engine)?;
        let status = resp
            .as_ref()
            .and_then(|h| h.start.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.passed.push(Passed {
                method: method.clone(),
                path: path.clone(),
                status,
            });
        }
        let Some(resp) = resp else {
            return Ok(());
        };
        // The client may be gone (killed while its request was held): the engine has had the
        // request; the answer is read and thrown away.
        let _ = to_client.write_all(&resp.raw);
        let no_body =
            method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
        if status == 101 || (!no_body && !resp.chunked && resp.length.is_none()) {
            // Upgraded or unframed: a raw two-way pipe until either side closes.
            let mut c2 = to_client.try_clone()?;
            let mut e2 = to_engine.try_clone()?;
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut e2);
                let _ = e2.shutdown(std::net::Shutdown::Write);
            });
            let _ = std::io::copy(&mut from_engine, &mut c2);
            let _ = c2.shutdown(std::net::Shutdown::Both);
            let _ = up.join();
            return Ok(());
        }
        if !no_body {
            let mut sink: Box<dyn Write> = Box::new(&mut to_client);
            if copy_body(&resp, &mut from_engine, &mut sink).is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_and_query_are_left_out() {
        assert_eq!(
            bare_path("/v1.41/containers/json?all=1"),
            "/containers/json"
        );
        assert_eq!(bare_path("/_ping"), "/_ping");
        assert!(path_matches("/networks/*/connect", "/networks/abc/connect"));
        assert!(!path_matches(
            "/networks/*/connect",
            "/networks/abc/disconnect"
        ));
    }
}
