//! Parsers for the small string syntaxes inside Compose values: durations, sizes, ports,
//! volume short syntax, image references, project names, and "did you mean" suggestions.
//!
//! Pure functions from `&str` to a value or a one-line error message; the converter adds the
//! position. Kept apart so that each syntax has its own tests.

pub(crate) mod image_ref;
pub(crate) mod names;
pub(crate) mod ports;
pub(crate) mod suggest;
pub mod units;
pub(crate) mod volumes;
