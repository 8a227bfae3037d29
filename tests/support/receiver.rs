//! A webhook receiver on 127.0.0.1 for notification tests: records each request's path and
//! body, answers with a scripted status (and optional delay), or never answers at all.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answers each request with the next status of the script (the last one repeats), after
    /// `delay`.
    Answer,
    /// Reads the request and never answers (the connection stays open).
    Silent,
}

/// One received request.
#[derive(Clone, Debug)]
pub struct Received {
    /// Request path.
    pub path: String,
    /// Request headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

/// A running receiver; stops on drop.
pub struct Receiver {
    /// Its port.
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Starts one: `statuses` scripts the answers (e.g. `[500, 200]`), `delay` comes before
    /// each answer.
    pub fn start(behaviour: Behaviour, statuses: &[u16], delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, flag) = (received.clone(), stop.clone());
        let statuses = if statuses.is_empty() {
            vec![200]
        } else {
            statuses.to_vec()
        };
        std::thread::spawn(move || {
            let mut n = 0usize;
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let Some(r) = read_request(&s) else { continue };
                        rec.lock().unwrap().push(r);
                        match behaviour {
                            Behaviour::Silent => held.push(s),
                            Behaviour::Answer => {
                                let code = statuses[n.min(statuses.len() - 1)];
                                n += 1;
                                std::thread::sleep(delay);
                                let mut s = s;
                                let _ = write!(
                                    s,
                                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                                );
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Receiver {
            port,
            received,
            stop,
        }
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to `limit`) until `f` holds for what was received.
    pub fn wait_for(&self, what: &str, limit: Duration, f: impl Fn(&[Received]) -> bool) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if f(&self.received()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {limit:?} waiting for {what}; received: {:#?}",
            self.received()
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_request(s: &TcpStream) -> Option<Received> {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Received {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
