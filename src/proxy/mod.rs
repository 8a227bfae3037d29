//! berth's port-handoff proxy (`berth proxy`): holds the published ports of services with
//! `x-berth.handoff` and forwards to their ready replicas, so that a replica can be replaced
//! start-first and several replicas can share one published port.
//!
//! IO, a process of its own (docs/architecture.md#port-handoff-issue-16 says why): it reads
//! the routes file berth writes (`routes`, pure model), applies each valid version as a whole
//! (`Proxy::apply`: bind new listeners, switch backends, release removed ports) and keeps its
//! last routes when the file is missing or invalid. `table` is one listener's backends
//! (balancing, drain), `tcp` and `http` the two modes, `admin` the state and metrics
//! endpoint, `metrics` its series (prometheus-client), `look` berth's reading of them. Nothing here imports `reconcile/`: traffic never waits for the controller.

pub mod admin;
pub mod file;
pub mod http;
pub mod launch;
pub mod look;
pub mod metrics;
pub mod routes;
pub mod table;
pub mod tcp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::desired::model::HandoffMode;
use admin::{ListenerState, State};
use routes::{Listener, Routes};
use table::Pool;

/// How often the routes file is read.
pub const POLL: Duration = Duration::from_millis(200);

/// Why `berth proxy` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The admin address is taken or not ours.
    #[error("failed to bind the admin endpoint {addr}")]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

struct Live {
    spec: Listener,
    pool: Arc<Pool>,
    bound: Option<SocketAddr>,
    error: Option<String>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // Stops accepting and frees the port; open connections live in their own tasks.
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[derive(Default)]
struct Inner {
    routes_id: String,
    listeners: Vec<Live>,
}

/// The running proxy: its listeners and their backends.
#[derive(Default)]
pub struct Proxy {
    inner: Mutex<Inner>,
}

/// A short identity of a routes file's text (shown by `/state`).
pub fn routes_id(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl Proxy {
    /// A proxy with no routes.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `routes` from now on (must run inside a tokio runtime). A listener that stays
    /// (same name, address and mode) keeps its socket and its connections and only has its
    /// backends switched; a new one is bound (a failure is kept in its state and retried by
    /// [`Proxy::retry_unbound`]); a removed one stops accepting.
    pub fn apply(&self, routes: &Routes, id: &str) {
        let mut g = self.lock();
        let mut old = std::mem::take(&mut g.listeners);
        let mut next = Vec::new();
        for l in &routes.listeners {
            let same = old.iter().position(|x| {
                x.spec.name == l.name && x.spec.bind == l.bind && x.spec.mode == l.mode
            });
            let live = match same {
                Some(i) => {
                    let mut live = old.swap_remove(i);
                    live.pool.update(l);
                    live.spec = l.clone();
                    live
                }
                None => {
                    // The old listener on this address (another mode) must free it first.
                    old.retain(|x| x.spec.bind != l.bind || l.bind.port() == 0);
                    let mut live = Live {
                        spec: l.clone(),
                        pool: Pool::new(l),
                        bound: None,
                        error: None,
                        task: None,
                    };
                    bind(&mut live);
                    live
                }
            };
            next.push(live);
        }
        drop(old);
        g.listeners = next;
        g.routes_id = id.to_string();
    }

    /// Tries again to bind listeners whose port was taken.
    pub fn retry_unbound(&self) {
        let mut g = self.lock();
        for live in g.listeners.iter_mut().filter(|l| l.task.is_none()) {
            bind(live);
        }
    }

    /// The address listener `name` is bound to.
    pub fn bound(&self, name: &str) -> Option<SocketAddr> {
        self.lock()
            .listeners
            .iter()
            .find(|l| l.spec.name == name)
            .and_then(|l| l.bound)
    }

    /// What `/state` shows.
    pub fn state(&self) -> State {
        let g = self.lock();
        State {
            routes: g.routes_id.clone(),
            listeners: g
                .listeners
                .iter()
                .map(|l| {
                    let (backends, unserved) = l.pool.stats();
                    ListenerState {
                        name: l.spec.name.clone(),
                        bind: l.bound,
                        mode: l.spec.mode,
                        backends,
                        unserved,
                        error: l.error.clone(),
                    }
                })
                .collect(),
        }
    }
}

fn bind(live: &mut Live) {
    let std_listener = match std::net::TcpListener::bind(live.spec.bind)
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
    {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("failed to bind {}: {e}", live.spec.bind);
            if live.error.as_deref() != Some(msg.as_str()) {
                tracing::warn!(listener = %live.spec.name, "{msg}");
            }
            live.error = Some(msg);
            return;
        }
    };
    let listener = match tokio::net::TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            live.error = Some(format!("failed to bind {}: {e}", live.spec.bind));
            return;
        }
    };
    live.bound = listener.local_addr().ok();
    live.error = None;
    let pool = Arc::clone(&live.pool);
    live.task = Some(match live.spec.mode {
        HandoffMode::Tcp => tokio::spawn(tcp::serve(listener, pool)),
        HandoffMode::Http => tokio::spawn(http::serve(listener, pool)),
    });
    tracing::info!(listener = %live.spec.name, bind = ?live.bound, mode = live.spec.mode.as_label(), "listening");
}

/// Reads `path` every [`POLL`] and applies each new valid version; a missing or invalid file
/// is logged (once per version) and the last routes stay. Returns when `stop` resolves.
pub async fn watch(path: &Path, proxy: &Proxy, stop: impl std::future::Future<Output = ()>) {
    let mut last: Option<String> = None;
    let mut missing_logged = false;
    tokio::pin!(stop);
    loop {
        match tokio::fs::read_to_string(path).await {
            Ok(text) if last.as_deref() != Some(text.as_str()) => {
                missing_logged = false;
                match Routes::parse(&text) {
                    Ok(r) => {
                        let id = routes_id(&text);
                        proxy.apply(&r, &id);
                        tracing::info!(routes = %id, listeners = r.listeners.len(), "routes applied");
                    }
                    Err(e) => tracing::error!(
                        path = %path.display(),
                        error = %crate::errors::chain(&e),
                        "routes file refused; the last routes stay"
                    ),
                }
                last = Some(text);
            }
            Ok(_) => {}
            Err(e) if !missing_logged => {
                missing_logged = true;
                tracing::warn!(path = %path.display(), error = %e, "failed to read the routes file; the last routes stay");
            }
            Err(_) => {}
        }
        proxy.retry_unbound();
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// `berth proxy`: the admin endpoint (if any), then [`watch`] until `stop`.
pub async fn run(
    routes: PathBuf,
    admin_addr: Option<SocketAddr>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let proxy = Proxy::new();
    if let Some(addr) = admin_addr {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ProxyError::Admin { addr, source })?;
        tokio::spawn(admin::serve(l, Arc::clone(&proxy)));
    }
    watch(&routes, &proxy, stop).await;
    Ok(())
}
