//! Reconciliation: observe the engine, plan the difference (pure), execute it.
//!
//! `observed` and `plan` are pure; `container_spec` builds what a create sends. `observe` and
//! `execute` are the only code here that calls the [`crate::engine::Engine`].

pub mod container_spec;
pub mod execute;
pub mod observe;
pub mod observed;
pub mod plan;
pub mod probe;
