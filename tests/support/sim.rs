//! The simulated host of the pure planner and rollout tests: the in-memory engine
//! (`berth::engine::fake`, the one the fake-engine tests use and the engine contract holds to
//! Docker's answers), driven by a plan's steps the way the executor drives Docker — one engine
//! call per step — and read back as an `ObservedState` the way `observe` reads it.
//!
//! Strict: a step the engine refuses (a taken name, a missing container or image, removing a
//! running container) panics naming the step, except a failed build, which the executor hands
//! to the next round; "already done" answers (stopping a stopped container, removing a missing
//! tag) pass, as in the executor. How started containers behave is the fake's start rules
//! ([`FakeEngine::on_start`]); what a build gives, its build results. The fake answers at once,
//! so its calls are polled to completion here without a runtime.

#![allow(dead_code)] // Each test binary uses a different subset of these helpers.

use std::collections::BTreeMap;
use std::future::Future;

use berth::engine::fake::FakeEngine;
use berth::engine::{
    BuildSpec, ContainerSummary, Engine, EngineError, EngineResult, NetworkCreate, VolumeCreate,
};
use berth::proxy::routes::Routes;
use berth::reconcile::observed::ObservedState;
use berth::reconcile::plan::{Action, ImageSource};
use futures_util::FutureExt as _;

/// The fake's answer to one call.
fn now<T>(call: impl Future<Output = EngineResult<T>>) -> EngineResult<T> {
    call.now_or_never()
        .expect("the in-memory engine answers at once")
}

/// The in-memory engine as the planner tests' host. `clone` copies the whole host (a world to
/// try something on): clones do not share state.
pub struct Host {
    /// The engine; tests play the outside world through it (`kill`, `set_health`, ...).
    pub engine: FakeEngine,
    /// The proxy's routes file (port handoff), as `Route` steps leave it.
    pub routes: std::sync::Mutex<Routes>,
}

impl Clone for Host {
    fn clone(&self) -> Self {
        Host {
            engine: self.engine.snapshot(),
            routes: std::sync::Mutex::new(self.routes()),
        }
    }
}

impl Default for Host {
    fn default() -> Self {
        Host::new()
    }
}

impl Host {
    /// An empty host.
    pub fn new() -> Host {
        Host {
            engine: FakeEngine::new(),
            routes: Default::default(),
        }
    }

    /// `reference` is a local image with ID `id`.
    pub fn image(&self, reference: &str, id: &str) {
        self.engine.add_image(reference, id);
    }

    /// The network `name` exists.
    pub fn network(&self, name: &str) {
        now(self.engine.create_network(&NetworkCreate {
            name: name.to_owned(),
            driver: None,
            driver_opts: BTreeMap::new(),
            internal: false,
            labels: BTreeMap::new(),
            ipam: None,
            enable_ipv6: false,
            attachable: false,
        }))
        .unwrap_or_else(|e| panic!("network {name}: {e}"));
    }

    /// The volume `name` exists.
    pub fn volume(&self, name: &str) {
        now(self.engine.create_volume(&VolumeCreate {
            name: name.to_owned(),
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        }))
        .unwrap_or_else(|e| panic!("volume {name}: {e}"));
    }

    /// Every container, oldest first, as the list call shows them.
    pub fn containers(&self) -> Vec<ContainerSummary> {
        now(self.engine.list_containers(&[])).expect("list containers")
    }

    /// The routes file as it is now.
    pub fn routes(&self) -> Routes {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The container named `name`, as listed.
    pub fn named(&self, name: &str) -> ContainerSummary {
        self.containers()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// What berth's observe would see: containers, networks, volumes, images, restart counts.
    pub fn observed(&self) -> ObservedState {
        let e = &self.engine;
        let mut o = ObservedState::from_lists(self.containers()).with_inventory(
            now(e.list_networks()).expect("list networks"),
            now(e.list_volumes()).expect("list volumes"),
            now(e.list_images()).expect("list images"),
        );
        o.restart_counts = e
            .containers()
            .into_iter()
            .map(|c| (c.id, c.restart_count))
            .collect();
        o.routes = self.routes();
        o
    }

    /// The ID the local image `reference` has.
    fn image_id(&self, reference: &str) -> Option<String> {
        now(self.engine.list_images())
            .expect("list images")
            .into_iter()
            .find(|i| i.tags.iter().any(|t| t == reference))
            .map(|i| i.id)
    }

    /// Local images: reference (tag) → image ID.
    pub fn images(&self) -> BTreeMap<String, String> {
        now(self.engine.list_images())
            .expect("list images")
            .into_iter()
            .flat_map(|i| i.tags.into_iter().map(move |t| (t, i.id.clone())))
            .collect()
    }

    /// Every build run so far, by reference, in order.
    pub fn builds(&self) -> Vec<String> {
        self.engine
            .calls()
            .iter()
            .filter_map(|c| c.strip_prefix("build_image "))
            .map(str::to_owned)
            .collect()
    }

    /// Carries out one step as the executor would; `Err` only for a failed build. A pull of
    /// `reference` gives the image `sha256:<reference>`, and so does a build unless the test
    /// set another result ([`FakeEngine::set_build_result`]).
    pub fn step(&self, action: &Action) -> Result<(), EngineError> {
        let e = &self.engine;
        let result = match action {
            Action::CreateNetwork(n) => now(e.create_network(n)).map(drop),
            Action::CreateVolume(v) => now(e.create_volume(v)),
            Action::Pull {
                reference,
                platform,
            } => {
                e.add_remote_image(reference, &format!("sha256:{reference}"));
                now(e.pull_image(reference, platform.as_deref())).map(drop)
            }
            Action::Build { reference, spec } => {
                if e.build_result(reference).is_none() {
                    e.set_build_result(reference, Ok(format!("sha256:{reference}")));
                }
                let spec = BuildSpec {
                    tag: reference.clone(),
                    ..(**spec).clone()
                };
                let built = now(e.build_image(&spec));
                if let Err(err @ EngineError::BuildFailed { .. }) = built {
                    return Err(err);
                }
                built.map(drop)
            }
            Action::Create { spec, image } => {
                let mut spec = (**spec).clone();
                spec.image = match image {
                    ImageSource::Id(id) => id.clone(),
                    ImageSource::Pulled(r) => self
                        .image_id(r)
                        .unwrap_or_else(|| panic!("create {}: {r} was not pulled", spec.name)),
                };
                now(e.create_container(&spec)).map(drop)
            }
            Action::Start { target, .. } => now(e.start_container(target)),
            Action::Stop {
                id, grace, signal, ..
            } => now(e.stop_container(id, *grace, signal.as_deref())),
            Action::Remove { id, .. } => now(e.remove_container(id)),
            Action::Rename { id, to, .. } => now(e.rename_container(id, to)),
            Action::Connect { id, attach, .. } => now(e.connect_network(id, attach)),
            Action::Pin {
                image_id,
                repo,
                tag,
            } => now(e.tag_image(image_id, repo, tag)),
            Action::RemoveNetwork { name } => now(e.remove_network(name)),
            Action::RemoveVolume { name } => now(e.remove_volume(name)),
            Action::Unpin { reference } | Action::RemoveImage { reference } => {
                now(e.remove_image_tag(reference))
            }
            Action::Route {
                project,
                service,
                listeners,
            } => {
                self.routes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_service(project, service, listeners.clone());
                Ok(())
            }
        };
        if let Err(err) = result {
            assert!(err.is_already_done(), "{action}: {err}");
        }
        Ok(())
    }
}
