//! One listener's backends: which receive new work (routed), which drain, round-robin
//! balancing, and the counters the admin endpoint shows.
//!
//! Shared by the listener's connection tasks (std locks held for a few instructions, never
//! across an await). `update` is the switch: backends that stay keep their counters and their
//! connections; removed ones stop receiving work at once and are closed after the drain
//! timeout (a `watch` each connection task listens to).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::routes::{Backend, Listener};

/// One backend and its counters.
#[derive(Debug)]
pub struct BackendState {
    /// Container name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    routed: AtomicBool,
    active: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    close: watch::Sender<bool>,
}

impl BackendState {
    fn new(b: &Backend) -> Self {
        Self {
            name: b.name.clone(),
            addr: b.addr,
            routed: AtomicBool::new(true),
            active: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            close: watch::channel(false).0,
        }
    }

    /// True while the backend receives new requests and connections.
    pub fn routed(&self) -> bool {
        self.routed.load(Ordering::Relaxed)
    }

    /// Counts one request or connection handed to this backend; the guard counts it active
    /// until dropped.
    pub fn begin(self: &Arc<Self>) -> ActiveGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.attempt()
    }

    /// Counts a request active while it is being sent, before it is known to have reached
    /// the backend (a request given back unsent is not counted: call [`Self::served`] once
    /// it was).
    pub fn attempt(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(Arc::clone(self))
    }

    /// Counts a request that reached the backend.
    pub fn served(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failure talking to this backend (connect refused, reset, bad response).
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves when the drain timeout of this backend ran out: its connections must close.
    pub async fn closed(&self) {
        let mut rx = self.close.subscribe();
        // The sender lives as long as `self`, so `wait_for` only ends by the value.
        let _ = rx.wait_for(|c| *c).await;
    }

    fn snapshot(&self) -> BackendStats {
        BackendStats {
            name: self.name.clone(),
            addr: self.addr,
            routed: self.routed(),
            active: self.active.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Counts one active request or connection until dropped.
#[derive(Debug)]
pub struct ActiveGuard(Arc<BackendState>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the admin endpoint shows about one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BackendStats {
    /// Container name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// Receives new work (false: draining).
    pub routed: bool,
    /// Requests (HTTP) or connections (TCP) in progress.
    pub active: u64,
    /// Requests or connections handed to it since the proxy started.
    pub requests: u64,
    /// Failures talking to it.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Inner {
    routed: Vec<Arc<BackendState>>,
    draining: Vec<Arc<BackendState>>,
    next: usize,
    proxy_protocol: bool,
}

/// One listener's backends.
#[derive(Debug, Default)]
pub struct Pool {
    inner: Mutex<Inner>,
    /// Requests or connections no backend could take (none routed, all refused).
    unserved: AtomicU64,
}

impl Pool {
    /// A pool serving `l`'s backends.
    pub fn new(l: &Listener) -> Arc<Self> {
        let p = Arc::new(Self::default());
        p.update(l);
        p
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The switch: `l`'s backends receive new work from now on. Backends that left stop
    /// receiving it at once; their open connections close after `l`'s drain timeout.
    pub fn update(&self, l: &Listener) {
        let mut removed = Vec::new();
        {
            let mut g = self.lock();
            g.proxy_protocol = l.proxy_protocol;
            let mut old = std::mem::take(&mut g.routed);
            // A backend coming back while it drains (a revert) is routed again.
            old.extend(std::mem::take(&mut g.draining));
            let mut routed = Vec::new();
            for b in &l.backends {
                let kept = old
                    .iter()
                    .position(|s| s.name == b.name && s.addr == b.addr && !*s.close.borrow())
                    .map(|i| old.swap_remove(i));
                let s = kept.unwrap_or_else(|| Arc::new(BackendState::new(b)));
                s.routed.store(true, Ordering::Relaxed);
                routed.push(s);
            }
            for s in old {
                if s.routed.swap(false, Ordering::Relaxed) {
                    removed.push(Arc::clone(&s));
                }
                if s.active.load(Ordering::Relaxed) > 0 && !*s.close.borrow() {
                    g.draining.push(s);
                }
            }
            g.routed = routed;
        }
        let timeout = l.drain_timeout();
        for s in removed {
            drain_then_close(s, timeout);
        }
    }

    /// Whether connections get a PROXY protocol v2 header.
    pub fn proxy_protocol(&self) -> bool {
        self.lock().proxy_protocol
    }

    /// The routed backends, starting at the next one in round-robin order.
    pub fn candidates(&self) -> Vec<Arc<BackendState>> {
        let mut g = self.lock();
        let n = g.routed.len();
        if n == 0 {
            return Vec::new();
        }
        let start = g.next % n;
        g.next = g.next.wrapping_add(1);
        (0..n)
            .map(|i| Arc::clone(&g.routed[(start + i) % n]))
            .collect()
    }

    /// Counts a request or connection no backend took.
    pub fn unserved(&self) {
        self.unserved.fetch_add(1, Ordering::Relaxed);
    }

    /// Routed backends first, then the draining ones still holding connections.
    pub fn stats(&self) -> (Vec<BackendStats>, u64) {
        let mut g = self.lock();
        g.draining
            .retain(|s| s.active.load(Ordering::Relaxed) > 0 && !*s.close.borrow());
        let v = g
            .routed
            .iter()
            .chain(g.draining.iter())
            .map(|s| s.snapshot())
            .collect();
        (v, self.unserved.load(Ordering::Relaxed))
    }
}

/// After `timeout`, tells the backend's remaining connections to close (when a runtime is
/// there to keep time; pure unit tests of the table have none and never drain).
fn drain_then_close(s: Arc<BackendState>, timeout: Duration) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            tokio::time::sleep(timeout).await;
            if !s.routed() {
                s.close.send_replace(true);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::HandoffMode;

    fn listener(backends: &[(&str, &str)]) -> Listener {
        Listener {
            name: "shop/web:80".into(),
            bind: "127.0.0.1:0".parse().unwrap(),
            mode: HandoffMode::Http,
            proxy_protocol: false,
            drain_timeout_ms: 1000,
            backends: backends
                .iter()
                .map(|(n, a)| Backend {
                    name: (*n).into(),
                    addr: a.parse().unwrap(),
                })
                .collect(),
        }
    }

    fn names(p: &Pool) -> Vec<String> {
        p.candidates().iter().map(|b| b.name.clone()).collect()
    }

    #[test]
    fn new_work_is_balanced_round_robin_across_routed_backends() {
        let p = Pool::new(&listener(&[("a", "10.0.0.1:80"), ("b", "10.0.0.2:80")]));
        assert_eq!(names(&p), ["a", "b"]);
        assert_eq!(names(&p), ["b", "a"]);
        assert_eq!(names(&p), ["a", "b"]);
    }

    #[test]
    fn a_removed_backend_stops_receiving_work_and_drains_its_connections() {
        let p = Pool::new(&listener(&[("old", "10.0.0.1:80")]));
        let old = p.candidates().remove(0);
        let guard = old.begin();
        p.update(&listener(&[("new", "10.0.0.2:80")]));
        assert_eq!(names(&p), ["new"]);
        let (stats, _) = p.stats();
        assert_eq!(stats.len(), 2, "{stats:?}");
        assert_eq!((stats[1].name.as_str(), stats[1].routed), ("old", false));
        assert_eq!(stats[1].active, 1);
        drop(guard);
        let (stats, _) = p.stats();
        assert_eq!(stats.len(), 1, "a drained backend leaves the table");
    }

    #[test]
    fn a_backend_that_stays_keeps_its_counters() {
        let p = Pool::new(&listener(&[("a", "10.0.0.1:80")]));
        drop(p.candidates()[0].begin());
        p.update(&listener(&[("a", "10.0.0.1:80"), ("b", "10.0.0.2:80")]));
        let (stats, _) = p.stats();
        assert_eq!(stats[0].requests, 1);
        assert_eq!(stats[1].requests, 0);
    }

    #[test]
    fn a_draining_backend_routed_again_is_the_same_backend() {
        let p = Pool::new(&listener(&[("old", "10.0.0.1:80")]));
        let old = p.candidates().remove(0);
        let _g = old.begin();
        p.update(&listener(&[("new", "10.0.0.2:80")]));
        p.update(&listener(&[("old", "10.0.0.1:80")]));
        let again = p.candidates().remove(0);
        assert!(Arc::ptr_eq(&old, &again));
        assert!(again.routed());
    }
}
