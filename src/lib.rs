//! berth keeps a Docker host in the state a directory of Compose files describes.
//!
//! # Layout
//! - [`desired`]: load a directory of Compose projects into a validated
//!   [`desired::DesiredState`]:
//!   - `discover` finds projects and reads files (the only IO),
//!   - `node` parses YAML into positioned trees, `interpolate` + `envfile` substitute
//!     variables, `merge` applies the override file,
//!   - `convert/` builds the typed `model` field by field (`syntax/` holds the small string
//!     grammars: durations, sizes, ports, volumes, image references, names),
//!   - `validate` cross-checks services and projects, `hash` gives each service its revision
//!     identity, `load` runs the pipeline, `diag` carries positioned diagnostics.
//! - [`report`]: summaries of a load for `berth validate`.
//! - `main.rs`: the CLI.
//!
//! # Data flow
//! ```text
//! DIR ─► discover ─► node::parse ─► interpolate ─► merge ─► convert ─► validate ─► hash
//!                                                                          │
//!                               Loaded { state: Option<DesiredState>, diagnostics } ─► report
//! ```

pub mod apply;
pub mod controller;
pub mod desired;
pub mod engine;
pub mod lock;
pub mod reconcile;
pub mod report;
