//! berth keeps a Docker host in the state a directory of Compose files describes.
//!
//! # Layout
//! - [`desired`]: load a directory of Compose projects into a validated [`desired::DesiredState`]
//!   (discovery, YAML, interpolation, override merge, typed model, validation, spec hash).
//!
//! # Data flow
//! ```text
//! DIR ──► desired::load ──► (DesiredState, Diagnostics) ──► berth validate
//! ```

pub mod desired;
