//! How tests play the outside world and read back what happened: images a pull or build
//! finds, start rules, faults, containers killed or removed by hand, health, exec and logs
//! answers, the call log.

use std::sync::{Arc, Mutex, MutexGuard};

use super::state::add_local_image;
use super::{FakeContainer, FakeEngine, Fault, OnStart, Started, State};
use crate::engine::{
    ContainerCreate, ContainerSummary, EXEC_OUTPUT_LIMIT, EngineEvent, ExecOutcome, Health,
    ImageSummary, NetworkCreate, RunState,
};

impl FakeEngine {
    /// What `info` reports as the endpoint.
    pub const ENDPOINT: &str = "fake://engine";

    /// An empty engine whose clock starts at 1 700 000 000 and ticks once per change.
    pub fn new() -> Self {
        FakeEngine {
            state: Arc::new(Mutex::new(State {
                now: 1_700_000_000,
                ..State::default()
            })),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `reference` a local image with ID `id` (added to its tags if the ID exists), and
    /// pullable too.
    pub fn add_image(&self, reference: &str, id: &str) {
        let mut s = self.lock();
        s.registry.insert(reference.to_owned(), id.to_owned());
        add_local_image(&mut s, reference, id);
    }

    /// Makes `reference` pullable as image `id` without making it local.
    pub fn add_remote_image(&self, reference: &str, id: &str) {
        self.lock()
            .registry
            .insert(reference.to_owned(), id.to_owned());
    }

    /// Makes every build take `time` (to see how many run at once).
    pub fn set_build_time(&self, time: std::time::Duration) {
        self.lock().build_time = time;
    }

    /// From now on, containers `which` selects do `what` as soon as they start (replacing an
    /// earlier rule for the same `which`).
    pub fn on_start(&self, which: Started, what: OnStart) {
        let mut s = self.lock();
        match s.on_start.iter_mut().find(|(w, _)| *w == which) {
            Some(rule) => rule.1 = what,
            None => s.on_start.push((which, what)),
        }
    }

    /// An independent copy of the engine as it is now (containers, images, rules, clock, the
    /// calls so far), without its event subscribers: a world to try something on and drop.
    pub fn snapshot(&self) -> FakeEngine {
        let mut copy = self.lock().clone();
        copy.subscribers.clear();
        FakeEngine {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// Forgets every [`FakeEngine::on_start`] rule: started containers run.
    pub fn clear_start_rules(&self) {
        self.lock().on_start.clear();
    }

    /// The health a container with a healthcheck reports once started (default:
    /// [`Health::Starting`], until a test calls [`FakeEngine::set_health`]).
    pub fn set_start_health(&self, health: Health) {
        self.lock().start_health = Some(health);
    }

    /// What building `tag` gives from now on: `Ok(image ID)`, or `Err(message)`, a failed
    /// build whose `Failed` error carries that message. Without one, a build makes a new ID.
    pub fn set_build_result(&self, tag: &str, result: Result<String, String>) {
        self.lock().build_results.insert(tag.to_owned(), result);
    }

    /// What building `tag` gives, if a test said ([`FakeEngine::set_build_result`]).
    pub fn build_result(&self, tag: &str) -> Option<Result<String, String>> {
        self.lock().build_results.get(tag).cloned()
    }

    /// The outside world: a container someone else created (compose, a person), as the list
    /// call shows it. Its ID and name are the summary's; its networks need not exist here, and
    /// its image is added (untagged) when missing, as Docker keeps an image a container uses.
    pub fn insert_container(&self, c: ContainerSummary) {
        let mut s = self.lock();
        if !s.images.iter().any(|i| i.id == c.image_id) {
            s.images.push(ImageSummary {
                id: c.image_id.clone(),
                tags: Vec::new(),
                digests: Vec::new(),
            });
        }
        let networks = c
            .networks
            .iter()
            .map(|n| crate::engine::NetworkAttach {
                network: n.clone(),
                aliases: Vec::new(),
                ipv4_address: None,
                ipv6_address: None,
            })
            .collect();
        let running = c.state == RunState::Running;
        s.containers.push(FakeContainer {
            id: c.id,
            name: c.name.clone(),
            spec: ContainerCreate {
                name: c.name,
                image: c.image_id,
                labels: c.labels,
                networks,
                ..ContainerCreate::default()
            },
            state: c.state,
            health: c.health,
            exit_code: c.exit_code,
            created: c.created,
            logs: String::new(),
            exec: None,
            started: running.then_some(c.created),
            restart_count: 0,
            detached: Vec::new(),
            unbound: false,
        });
    }

    /// The most builds that ever ran at once.
    pub fn builds_peak(&self) -> usize {
        self.lock().builds_peak
    }

    /// Makes the next call whose log line starts with `op_prefix` (`"start_container"`,
    /// `"create_container shop-web-1"`) fail with `fault`. Faults are used once, in order.
    pub fn fail_next(&self, op_prefix: &str, fault: Fault) {
        self.lock().faults.push((op_prefix.to_owned(), fault));
    }

    /// Every call so far, in order: `"list_containers"`, `"create_container shop-web-1"`,
    /// `"start_container shop-web-1"` (containers by their current name).
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Forgets the calls so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Every event so far.
    pub fn events_so_far(&self) -> Vec<EngineEvent> {
        self.lock().events.clone()
    }

    /// The container `key` (name or ID) as the fake keeps it.
    pub fn container(&self, key: &str) -> Option<FakeContainer> {
        let s = self.lock();
        s.find(key).map(|i| s.containers[i].clone())
    }

    /// All containers, oldest first.
    pub fn containers(&self) -> Vec<FakeContainer> {
        self.lock().containers.clone()
    }

    /// What a network was created with.
    pub fn network(&self, name: &str) -> Option<NetworkCreate> {
        self.lock()
            .networks
            .iter()
            .find(|(n, _)| n.name == name)
            .map(|(_, spec)| spec.clone())
    }

    /// The outside world: the container's process exits with `exit_code`.
    pub fn kill(&self, key: &str, exit_code: i64) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        if s.containers[i].state == RunState::Running {
            let c = &mut s.containers[i];
            c.state = RunState::Exited;
            c.exit_code = Some(exit_code);
            c.health = Health::None;
            s.emit("die", i);
        }
    }

    /// The outside world: someone ran `docker rm -f` on the container.
    pub fn remove_by_hand(&self, key: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        if s.containers[i].state == RunState::Running {
            s.containers[i].state = RunState::Exited;
            s.containers[i].exit_code = Some(137);
            s.emit("die", i);
        }
        s.emit("destroy", i);
        s.containers.remove(i);
    }

    /// The outside world: the container is not on `network` although its spec asks for it, as
    /// when berth was killed between creating it and connecting its other networks.
    pub fn detach_network(&self, key: &str, network: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].detached.push(network.to_owned());
    }

    /// The outside world: the container runs without its published ports bound.
    pub fn unbind_ports(&self, key: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].unbound = true;
    }

    /// The outside world: Docker's restart policy restarted the container `count` times.
    pub fn set_restart_count(&self, key: &str, count: u32) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].restart_count = count;
    }

    /// The outside world: the container's healthcheck reports `health`.
    pub fn set_health(&self, key: &str, health: Health) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        if s.containers[i].health != health {
            s.containers[i].health = health;
            let action = match health {
                Health::Healthy => Some("health_status: healthy"),
                Health::Unhealthy => Some("health_status: unhealthy"),
                Health::Starting | Health::None => None,
            };
            if let Some(action) = action {
                s.emit(action, i);
            }
        }
    }

    /// Sets what `exec` returns for the container, whatever the command (a timeout is
    /// `fail_next("exec", Fault::Timeout)`). The output is kept to its last
    /// [`EXEC_OUTPUT_LIMIT`] bytes, as the real engine's is.
    pub fn set_exec(&self, key: &str, exit_code: i64, output: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].exec = Some(ExecOutcome {
            exit_code,
            output: crate::engine::output_tail(output.as_bytes(), EXEC_OUTPUT_LIMIT),
        });
    }

    /// Sets what `logs_tail` returns for the container.
    pub fn set_logs(&self, key: &str, logs: &str) {
        let mut s = self.lock();
        let i = s.find(key).unwrap_or_else(|| panic!("no container {key}"));
        s.containers[i].logs = logs.to_owned();
    }
}
