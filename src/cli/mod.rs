//! The `berth` binary's commands, one file each; `main.rs` parses the arguments (`args`) and
//! dispatches here. Each command is IO at the edge: it reads its inputs, calls the library
//! (`berth::reconcile::round`, `berth::apply`, `berth::controller`, `berth::control`, …) and
//! prints. `setup` holds what several commands share (the runtime, the engine connection,
//! loading the desired state), `client` asks a running berth over HTTP.

pub mod apply;
pub mod args;
pub mod client;
pub mod completions;
pub mod control;
pub mod diff;
pub mod events;
pub mod fleet;
pub mod live;
pub mod logs;
pub mod man;
pub mod plan;
pub mod proxy;
pub mod prune;
pub mod run;
pub mod setup;
pub mod status;
pub mod telemetry;
pub mod updates;
pub mod validate;
