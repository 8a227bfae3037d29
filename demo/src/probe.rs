//! `berth-demo probe URL`: one HTTP GET, exit 0 on 2xx/3xx and 1 otherwise.
//!
//! Made for Docker's HEALTHCHECK in a FROM-scratch image, where there is no curl or wget. Only
//! plain `http://HOST[:PORT]/PATH`; HOST is an IP address or a name.
//!
//! Names go through std's `ToSocketAddrs` (getaddrinfo). That works in the static glibc build
//! too: since glibc 2.34 the `files` and `dns` NSS sources live inside libc itself, so nothing
//! is dlopen'ed, and Docker's embedded DNS (127.0.0.11, from /etc/resolv.conf) resolves
//! container and service names (checked with Debian 12's glibc 2.36, container to container
//! on a user network).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Connect, write and read each get this long; Docker's own healthcheck timeout usually
/// fires first.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Enough for any status line.
const MAX_STATUS_LINE: usize = 1024;

#[derive(Debug, PartialEq, Eq)]
pub struct Url<'a> {
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
}

pub fn run(url: &str) -> ExitCode {
    match get(url) {
        Ok(status) if (200..400).contains(&status) => {
            println!("{url}: {status}");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            println!("{url}: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// GETs `url` and returns the response's status code.
fn get(url: &str) -> Result<u16, String> {
    let parsed = parse_url(url)?;
    let addrs = resolve(parsed.host, parsed.port)?;
    let mut stream = connect(&addrs)?;
    let host_header = if parsed.host.contains(':') {
        format!("[{}]", parsed.host)
    } else {
        parsed.host.to_owned()
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}:{}\r\nUser-Agent: berth-demo-probe\r\nConnection: close\r\n\r\n",
        parsed.path, parsed.port
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write failed: {e}"))?;
    let line = read_status_line(&mut stream)?;
    parse_status_line(&line).ok_or_else(|| format!("not an HTTP response: {line:?}"))
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => Ok(addrs.collect()),
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last_error = String::from("no addresses");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, TIMEOUT) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(TIMEOUT))
                    .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
                    .map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) => last_error = format!("connect to {addr} failed: {e}"),
        }
    }
    Err(last_error)
}

fn read_status_line(stream: &mut TcpStream) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < MAX_STATUS_LINE {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&byte[..n]),
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).trim_end().to_owned())
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_ascii_whitespace();
    let version = parts.next()?;
    let code = parts.next()?;
    (version.starts_with("HTTP/") && code.len() == 3)
        .then(|| code.parse().ok())
        .flatten()
}

/// `http://host[:port][/path]`, with `[v6]` literals; the port defaults to 80.
pub fn parse_url(url: &str) -> Result<Url<'_>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("{url:?}: bad host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{url:?}: bad port"))?,
    };
    Ok(Url { host, port, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_ip_name_and_default_port() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health"),
            Ok(Url {
                host: "127.0.0.1",
                port: 8080,
                path: "/health"
            })
        );
        assert_eq!(
            parse_url("http://db:8080"),
            Ok(Url {
                host: "db",
                port: 8080,
                path: "/"
            })
        );
        assert_eq!(
            parse_url("http://web/x?y=1"),
            Ok(Url {
                host: "web",
                port: 80,
                path: "/x?y=1"
            })
        );
        assert_eq!(
            parse_url("http://[::1]:9/h"),
            Ok(Url {
                host: "::1",
                port: 9,
                path: "/h"
            })
        );
    }

    #[test]
    fn urls_we_cannot_fetch_are_errors() {
        assert!(parse_url("https://db:8080/").is_err());
        assert!(parse_url("http://:8080/").is_err());
        assert!(parse_url("http://db:0/").is_err());
        assert!(parse_url("http://db:http/").is_err());
        assert!(parse_url("http://user@db/").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line("HTTP/1.1 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(parse_status_line("HTTP/1.0 200"), Some(200));
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status_line(""), None);
    }
}
