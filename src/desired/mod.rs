//! Desired state: from a directory of Compose files to a validated [`DesiredState`].
//!
//! Pure apart from reading files (`discover`). The stages run in compose's order:
//! discover projects and files (`identity`: `COMPOSE_FILE`, the project name) → parse YAML
//! into positioned trees (`node`) → interpolate values (`interpolate`, fed by `envfile`) →
//! include and extend other files (`assemble`) → merge the next file (`merge`) → convert
//! into the typed model (`convert`) → cross-check (`validate`) → hash each service (`hash`).
//! Encrypted env files (`secrets`: age, SOPS dotenv) are opened on the way in.
//! `load` runs them all; with a hosts file (`hosts`) it also places projects on hosts
//! (`placement`) and keeps the ones of the host the load is for. Every stage records problems in one [`Diagnostics`] instead of
//! stopping, so one run reports everything.

pub(crate) mod assemble;
pub(crate) mod context;
pub(crate) mod convert;
pub(crate) mod diag;
pub mod discover;
pub(crate) mod envfile;
pub(crate) mod hash;
pub mod hosts;
pub(crate) mod identity;
pub(crate) mod interpolate;
pub(crate) mod load;
pub mod merge;
pub mod model;
pub mod node;
pub mod placement;
pub mod secrets;
pub mod syntax;
pub(crate) mod validate;

pub use diag::{Diagnostic, Diagnostics, Loc, Severity};
pub use load::{LoadOptions, Loaded, load, load_inline};
pub use model::DesiredState;
pub use placement::HostChoice;
