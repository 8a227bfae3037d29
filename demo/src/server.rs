//! The HTTP/1.1 server: `GET /health`, `GET /`, `GET /version`, one connection per request.
//!
//! Deliberately minimal: one thread per connection (at most `MAX_CONNECTIONS`), a request head of
//! at most `MAX_HEAD` bytes, read and write timeouts on every socket, `Connection: close` on
//! every response, and one log line per request on stdout.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::{self, Env, env_flag, env_or};

const MAX_HEAD: usize = 8 * 1024;
const MAX_CONNECTIONS: usize = 64;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Config {
    pub port: u16,
    pub version: String,
    pub hostname: String,
    pub started: Instant,
    /// `READY_AFTER`: /health answers 503 until this much time has passed.
    pub ready_after: Duration,
    /// `NEVER_READY=1`: /health always answers 503.
    pub never_ready: bool,
    /// `SICK_AFTER`: /health answers 503 again once this much time has passed (a service that
    /// turns unhealthy after its rollout, for self-heal tests).
    pub sick_after: Option<Duration>,
    /// `APP_MODE=db`: the directory (`APP_DATA_DIR`) the app proves it can write to.
    pub db_dir: Option<PathBuf>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, String> {
        let db_dir = match env.get("APP_MODE") {
            None => None,
            Some("db") => Some(PathBuf::from(env.get("APP_DATA_DIR").unwrap_or("/data"))),
            Some(other) => return Err(format!("APP_MODE={other:?}: expected db or nothing")),
        };
        Ok(Self {
            port: env_or(env, "PORT", 8080, config::parse_port)?,
            version: env.version().to_owned(),
            hostname: hostname(env),
            started: Instant::now(),
            ready_after: config::env_seconds(env, "READY_AFTER")?.unwrap_or(Duration::ZERO),
            never_ready: env_flag(env, "NEVER_READY")?,
            sick_after: config::env_seconds(env, "SICK_AFTER")?,
            db_dir,
        })
    }

    /// When /health turns 200, if ever.
    pub fn ready_at(&self) -> Option<Instant> {
        (!self.never_ready).then(|| self.started + self.ready_after)
    }
}

/// The kernel's hostname (the container ID prefix in Docker), else `$HOSTNAME`.
fn hostname(env: &Env) -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| env.get("HOSTNAME").map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The database mode's proof of a working volume: a start counter kept in the data directory.
pub struct Db {
    pub file: PathBuf,
    /// Starts recorded in the file, this one included.
    pub starts: u64,
}

/// Counts this start in `<dir>/starts`, written to a temporary file and renamed into place.
pub fn open_db(dir: &Path) -> Result<Db, String> {
    let file = dir.join("starts");
    let previous = match fs::read_to_string(&file) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{} is not a number: {text:?}", file.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let starts = previous + 1;
    let tmp = dir.join("starts.tmp");
    fs::create_dir_all(dir)
        .and_then(|()| fs::write(&tmp, format!("{starts}\n")))
        .and_then(|()| fs::rename(&tmp, &file))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    println!("db: start {starts} recorded in {}", file.display());
    Ok(Db { file, starts })
}

struct App {
    config: Config,
    db: Option<Db>,
    connections: AtomicUsize,
}

/// Binds `0.0.0.0:PORT` and says so.
pub fn bind(config: &Config) -> io::Result<TcpListener> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, config.port))?;
    println!(
        "berth-demo {} listening on {} (host {}, ready {})",
        config.version,
        listener.local_addr()?,
        config.hostname,
        match config.ready_at() {
            None => "never".to_owned(),
            Some(_) => format!("after {}s", config.ready_after.as_secs_f64()),
        }
    );
    Ok(listener)
}

/// Serves until the process exits (the watchdog ends it).
pub fn run(listener: TcpListener, config: Config, db: Option<Db>) -> ! {
    let app = Arc::new(App {
        config,
        db,
        connections: AtomicUsize::new(0),
    });
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if app.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            app.connections.fetch_sub(1, Ordering::AcqRel);
            println!("{peer} rejected: {MAX_CONNECTIONS} connections open");
            continue; // dropping `stream` closes it
        }
        let app = Arc::clone(&app);
        let spawned = thread::Builder::new().spawn(move || {
            handle(&app, stream, peer);
            app.connections.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            eprintln!("{peer}: cannot start a thread: {e}");
        }
    }
}

fn handle(app: &App, mut stream: TcpStream, peer: SocketAddr) {
    let configured = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)));
    if let Err(e) = configured {
        println!("{peer} error: {e}");
        return;
    }
    let head = match read_head(&mut stream) {
        Ok(head) => head,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            println!("{peer} closed before sending a request");
            return;
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            println!(
                "{peer} sent no complete request within {}s",
                IO_TIMEOUT.as_secs()
            );
            let _ = respond(&mut stream, 408, "request timeout\n", true);
            return;
        }
        Err(e) => {
            println!("{peer} bad request: {e}");
            let _ = respond(&mut stream, 400, "bad request\n", true);
            return;
        }
    };
    let Some((method, target)) = parse_request_line(&head) else {
        println!("{peer} bad request line");
        let _ = respond(&mut stream, 400, "bad request\n", true);
        return;
    };
    let path = target.split('?').next().unwrap_or(target);
    let (status, body) = route(app, method, path);
    let outcome = respond(&mut stream, status, &body, method != "HEAD");
    match outcome {
        Ok(()) => println!("{peer} \"{method} {target}\" {status}"),
        Err(e) => println!("{peer} \"{method} {target}\" {status} (write failed: {e})"),
    }
}

/// Reads up to the blank line that ends the request head.
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-request",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return String::from_utf8(buf).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "request head is not UTF-8")
            });
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
    }
}

/// `GET /path HTTP/1.1` → `("GET", "/path")`.
fn parse_request_line(head: &str) -> Option<(&str, &str)> {
    let mut parts = head.lines().next()?.split_ascii_whitespace();
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && version.starts_with("HTTP/1.")).then_some((method, target))
}

fn route(app: &App, method: &str, path: &str) -> (u16, String) {
    if method != "GET" && method != "HEAD" {
        return (405, "method not allowed\n".into());
    }
    let config = &app.config;
    let version = &config.version;
    match path {
        "/health" => match config.ready_at() {
            _ if config
                .sick_after
                .is_some_and(|d| config.started.elapsed() >= d) =>
            {
                (503, format!("sick {version}\n"))
            }
            Some(at) if Instant::now() >= at => (200, format!("ok {version}\n")),
            Some(_) => (503, format!("starting {version}\n")),
            None => (503, format!("never ready {version}\n")),
        },
        "/version" => (200, format!("{version}\n")),
        "/" => {
            let mut body = format!("berth-demo {version} on {}\n", config.hostname);
            if let Some(db) = &app.db {
                let _ = writeln!(
                    body,
                    "db: start {} recorded in {}",
                    db.starts,
                    db.file.display()
                );
            }
            (200, body)
        }
        _ => (404, "not found\n".into()),
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &str, with_body: bool) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if with_body {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(ready_after: Duration, never_ready: bool) -> App {
        let config = Config {
            port: 8080,
            version: "7".into(),
            hostname: "box".into(),
            started: Instant::now(),
            ready_after,
            never_ready,
            db_dir: None,
        };
        App {
            config,
            db: None,
            connections: AtomicUsize::new(0),
        }
    }

    #[test]
    fn health_is_200_once_ready() {
        assert_eq!(
            route(&app(Duration::ZERO, false), "GET", "/health"),
            (200, "ok 7\n".into())
        );
    }

    #[test]
    fn health_is_503_while_starting() {
        assert_eq!(
            route(&app(Duration::from_secs(60), false), "GET", "/health"),
            (503, "starting 7\n".into())
        );
    }

    #[test]
    fn health_is_503_forever_when_never_ready() {
        assert_eq!(
            route(&app(Duration::ZERO, true), "GET", "/health"),
            (503, "never ready 7\n".into())
        );
    }

    #[test]
    fn root_names_version_and_host() {
        assert_eq!(
            route(&app(Duration::ZERO, false), "GET", "/"),
            (200, "berth-demo 7 on box\n".into())
        );
        assert_eq!(
            route(&app(Duration::ZERO, false), "GET", "/version"),
            (200, "7\n".into())
        );
        assert_eq!(route(&app(Duration::ZERO, false), "GET", "/nope").0, 404);
        assert_eq!(route(&app(Duration::ZERO, false), "POST", "/").0, 405);
    }

    #[test]
    fn request_line_must_be_http1() {
        assert_eq!(
            parse_request_line("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/health"))
        );
        assert_eq!(parse_request_line("GET /health\r\n\r\n"), None);
        assert_eq!(parse_request_line("GET /health HTTP/2 extra\r\n\r\n"), None);
    }

    #[test]
    fn db_counts_starts_in_its_directory() {
        let dir = std::env::temp_dir().join(format!("berth-demo-db-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(open_db(&dir).unwrap().starts, 1);
        assert_eq!(open_db(&dir).unwrap().starts, 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
