//! Runs berth's readiness and liveness probes in the background, one task per running
//! container of a service that has a probe, and keeps the latest verdicts for the planner.
//!
//! IO (engine inspect/exec, TCP/HTTP to containers). The controller (or `apply`) calls
//! [`Prober::sync`] after every observe: it starts a task for each new container, stops the
//! tasks of containers that are gone or whose probe changed. Each task inspects its container
//! (for its address), runs the probe every `interval`, feeds [`ProbeTracker`] and, when a
//! verdict changes, calls the wake-up hook so the gate acts at once instead of at the next
//! poll. The planner reads a snapshot ([`Prober::verdicts`]) through `ObservedState::probes`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::observed::{ObservedState, ProbeVerdicts};
use super::probe::{ProbeTracker, check};
use crate::desired::DesiredState;
use crate::desired::model::Probe;
use crate::engine::labels::Role;
use crate::engine::{Engine, EngineError, RunState};

/// Called when a verdict changes.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

type Probes = (Option<Probe>, Option<Probe>);

struct Task {
    probes: Probes,
    handle: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, Task>,
    verdicts: BTreeMap<String, ProbeVerdicts>,
}

/// The background prober.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<Mutex<Inner>>,
    wake: Option<Wake>,
}

impl Prober {
    /// A prober that calls `wake` when a verdict changes.
    pub fn new(wake: Option<Wake>) -> Self {
        Prober {
            inner: Arc::default(),
            wake,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking probe task cannot leave the map half-written: recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdicts so far, by container ID.
    pub fn verdicts(&self) -> BTreeMap<String, ProbeVerdicts> {
        self.lock().verdicts.clone()
    }

    /// Starts and stops probe tasks to match the running containers of probed services.
    pub fn sync<E: Engine + 'static>(
        &self,
        engine: &Arc<E>,
        desired: &DesiredState,
        observed: &ObservedState,
    ) {
        let mut wanted: HashMap<String, Probes> = HashMap::new();
        for c in &observed.containers {
            if c.state != RunState::Running || c.identity.role != Role::Replica {
                continue;
            }
            let Some(svc) = desired
                .projects
                .get(&c.identity.project)
                .and_then(|p| p.services.get(&c.identity.service))
            else {
                continue;
            };
            let probes = (svc.berth.readiness.clone(), svc.berth.liveness.clone());
            if probes.0.is_some() || probes.1.is_some() {
                wanted.insert(c.id.clone(), probes);
            }
        }
        let mut inner = self.lock();
        let stale: Vec<String> = inner
            .tasks
            .iter()
            .filter(|(id, t)| wanted.get(*id) != Some(&t.probes))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(t) = inner.tasks.remove(&id) {
                t.handle.abort();
            }
            inner.verdicts.remove(&id);
        }
        for (id, probes) in wanted {
            if inner.tasks.contains_key(&id) {
                continue;
            }
            let handle = tokio::spawn(run(
                engine.clone(),
                id.clone(),
                probes.clone(),
                self.inner.clone(),
                self.wake.clone(),
            ));
            inner.tasks.insert(id, Task { probes, handle });
        }
    }

    /// Stops every task.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        for (_, t) in inner.tasks.drain() {
            t.handle.abort();
        }
        inner.verdicts.clear();
    }
}

/// One container's probe loop; ends when the container is gone.
async fn run<E: Engine>(
    engine: Arc<E>,
    id: String,
    (readiness, liveness): Probes,
    inner: Arc<Mutex<Inner>>,
    wake: Option<Wake>,
) {
    let mut ready = readiness.as_ref().map(ProbeTracker::new);
    let mut live = liveness.as_ref().map(ProbeTracker::new);
    let interval = [readiness.as_ref(), liveness.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| p.interval)
        .min()
        .unwrap_or(Duration::from_secs(2))
        .max(Duration::from_millis(100));
    let mut details = None;
    // Bounded by the container's life: the controller aborts the task when it goes.
    loop {
        if details.is_none() {
            match engine.inspect_container(&id).await {
                Ok(d) => details = Some(d),
                Err(EngineError::NotFound { .. }) => return,
                Err(e) => {
                    tracing::debug!(container = %id, error = %crate::errors::chain(&e), "probe: inspect failed")
                }
            }
        }
        if let Some(d) = &details {
            let mut verdicts = ProbeVerdicts::default();
            let mut all_ok = true;
            if let (Some(p), Some(t)) = (&readiness, &mut ready) {
                let r = check(engine.as_ref(), d, p).await;
                all_ok &= r.ok;
                tracing::debug!(container = %d.name, ok = r.ok, detail = %r.detail, "readiness probe");
                verdicts.readiness = Some(t.record(r.ok));
                verdicts.readiness_detail = (!r.ok).then(|| r.detail.clone());
            }
            if let (Some(p), Some(t)) = (&liveness, &mut live) {
                let r = check(engine.as_ref(), d, p).await;
                all_ok &= r.ok;
                tracing::debug!(container = %d.name, ok = r.ok, detail = %r.detail, "liveness probe");
                verdicts.liveness = Some(t.record(r.ok));
            }
            if !all_ok {
                // The address may have changed (restart): look again next time.
                details = None;
            }
            let changed = {
                let mut g = inner.lock().unwrap_or_else(|e| e.into_inner());
                if !g.tasks.contains_key(&id) {
                    return;
                }
                // A new verdict wakes the controller; a new detail alone does not.
                let before = g.verdicts.insert(id.clone(), verdicts.clone());
                before.is_none_or(|b| {
                    (b.readiness, b.liveness) != (verdicts.readiness, verdicts.liveness)
                })
            };
            if changed && let Some(w) = &wake {
                w();
            }
        }
        tokio::time::sleep(interval).await;
    }
}
