//! Applying an update to files: the Compose file where the service's `image:` is written, or
//! the project's `.env` when that value is interpolated from a variable there.
//!
//! IO (files only). The edit itself is `rewrite`'s (pure, byte-exact); this reads the file
//! the loader's position names, and writes the result atomically (temp file, `fsync`,
//! rename), so a reader — berth's own directory watcher — sees the old or the new file,
//! never half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::check::Update;
use super::rewrite::{self, RewriteError, Site};
use crate::desired::diag::Loc;

/// Why an update could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Reading a file failed.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The edit does not apply.
    #[error("failed to rewrite the image in {path}")]
    Rewrite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RewriteError,
    },
    /// The loader did not say where the image is written.
    #[error("failed to find where the image is written (no position)")]
    NoPosition,
}

/// The file an update changed, relative to the desired-state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The Compose file.
    Compose(String),
    /// The env file, and the variable in it.
    Env(String, String),
}

impl Written {
    /// The changed file, relative to the root.
    pub fn file(&self) -> &str {
        match self {
            Written::Compose(f) | Written::Env(f, _) => f,
        }
    }
}

/// Writes `update` under `root` (the desired-state root: a directory source, or a Git
/// working tree): `image_loc` is where the loader found the service's `image:` value.
pub fn write_update(root: &Path, image_loc: &Loc, update: &Update) -> Result<Written, WriteError> {
    if image_loc.line == 0 {
        return Err(WriteError::NoPosition);
    }
    let rel = image_loc.file.to_string();
    let path = root.join(&rel);
    let text = read(&path)?;
    let site = rewrite::compose_image(
        &text,
        image_loc.line,
        image_loc.col,
        &update.from,
        &update.to,
    )
    .map_err(|source| WriteError::Rewrite {
        path: path.clone(),
        source,
    })?;
    match site {
        Site::Compose(new) => {
            write_atomic(&path, &new)?;
            Ok(Written::Compose(rel))
        }
        Site::Env { var, old, new } => {
            // Compose reads `.env` from the project directory: the Compose file's.
            let env_rel = Path::new(&rel)
                .parent()
                .map_or_else(|| PathBuf::from(".env"), |d| d.join(".env"));
            let env_path = root.join(&env_rel);
            let text = read(&env_path)?;
            let out = rewrite::env_value(&text, &var, &old, &new).map_err(|source| {
                WriteError::Rewrite {
                    path: env_path.clone(),
                    source,
                }
            })?;
            write_atomic(&env_path, &out)?;
            Ok(Written::Env(env_rel.to_string_lossy().into_owned(), var))
        }
    }
}

fn read(path: &Path) -> Result<String, WriteError> {
    std::fs::read_to_string(path).map_err(|source| WriteError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Temp file beside `path` (same permissions), `fsync`, rename over it, `fsync` the directory.
fn write_atomic(path: &Path, text: &str) -> Result<(), WriteError> {
    let err = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.berth-update"));
    let perms = std::fs::metadata(path).map_err(err)?.permissions();
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.set_permissions(perms).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // A directory fsync that fails leaves the rename in the page cache only; not fatal.
        let _ = d.sync_all();
    }
    Ok(())
}
