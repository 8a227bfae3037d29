//! Converts a merged, interpolated Compose tree into the typed `Project` model.
//!
//! Pure: files (env files) are read through the [`Ctx`] callback so that tests can feed them
//! inline. Each field accepts every syntax compose accepts (short and long forms, lists or
//! mappings) and yields one normalised value, so that the spec hash sees no difference
//! between spellings of the same thing. Problems are recorded, never returned early.

pub mod handoff;
pub(crate) mod placement;
mod policy;
pub(crate) mod read;
mod service;
mod toplevel;
mod update;

use std::path::Path;

use super::diag::{Diagnostics, Loc};

pub use toplevel::convert_project;

/// What the converter needs from outside: variable lookup and file access.
pub struct Ctx<'a> {
    /// The project directory (absolute): relative paths resolve against it.
    pub project_dir: &'a Path,
    /// Where the project's files are read, when that differs from `project_dir` (a git
    /// source reads a commit's tree): build contexts resolve against it.
    pub read_dir: &'a Path,
    /// The desired-state root (canonical); a build context must stay inside it.
    pub root: Option<&'a Path>,
    /// Variables for `environment` entries without a value (process env, then `.env`).
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a text file (env files); `None` after recording why not.
    pub read_file: &'a dyn Fn(&Path, &Loc, &mut Diagnostics) -> Option<String>,
    /// Names a path for diagnostics (relative to the desired-state root when inside it).
    pub display_path: &'a dyn Fn(&Path) -> String,
    /// Active profiles (`--profile`).
    pub profiles: &'a [String],
}
