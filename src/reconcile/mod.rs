//! Reconciliation: observe the engine, plan the difference (pure), execute it.
//!
//! `observed`, `drift` (does a container have what its spec asks for) and `plan` are pure;
//! `container_spec` builds what a create sends. `observe`,
//! `execute` and `probe` (berth's own readiness/liveness checks, for the rollout gate) are the
//! only code here that talks to the engine or to containers.

pub mod container_spec;
pub mod drift;
pub mod event;
pub mod execute;
pub mod gate;
pub mod observe;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod prober;
pub mod rollout;
