//! Reconciliation: observe the engine, plan the difference (pure), execute it.
//!
//! `observed`, `drift` (does a container have what its spec asks for), `plan` and `rollout`
//! are pure (`plan` calls `rollout` for long-running services;
//! both speak `action` and `reason`, the shared vocabulary of engine calls and of why things
//! happen); `container_spec` builds what a create sends; `takeover` names compose containers
//! from a project's directory running under another project name. `observe`,
//! `execute` and `probe` (berth's own readiness/liveness checks, for the rollout gate) are the
//! only code here that talks to the engine or to containers; `round` strings one reconcile
//! round together (records → observe, with `scope` saying what → plan → execute). `diff`
//! (pure) says what changed between two recorded revisions.

pub(crate) mod action;
pub mod adopt;
pub mod container_spec;
pub mod diff;
pub mod drift;
pub mod event;
pub mod execute;
pub(crate) mod gate;
pub(crate) mod observe;
pub mod observed;
pub mod plan;
pub mod probe;
pub(crate) mod prober;
pub mod reason;
pub(crate) mod rollout;
pub mod round;
pub(crate) mod scope;
pub(crate) mod takeover;
