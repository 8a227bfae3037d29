//! Reading and writing the routes file (`DATA_DIR/proxy/routes.json`) on berth's side.
//!
//! IO. The planner's round reads it ([`read`]) as the truth about who receives traffic; the
//! executor changes one service's listeners ([`set_service`]) as a `Route` step: read, change,
//! write to a temp file, `fsync`, rename over the file, `fsync` the directory — a crash leaves
//! the old routes or the new ones, never a mix, and the proxy never reads half a file. One
//! process-wide lock serialises the read-change-write of services executed in parallel.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::routes::{Listener, Routes, RoutesError};

/// Where the routes file of data directory `data_dir` is.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("proxy").join("routes.json")
}

/// Why the routes file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RoutesFileError {
    /// A file-system operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file exists and is not a routes file berth can read.
    #[error("failed to read the routes file {path}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RoutesError,
    },
}

/// The routes in `path`; a missing file is no routes.
pub fn read(path: &Path) -> Result<Routes, RoutesFileError> {
    match fs::read_to_string(path) {
        Ok(text) => Routes::parse(&text).map_err(|source| RoutesFileError::Invalid {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Routes::default()),
        Err(source) => Err(RoutesFileError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

static LOCK: Mutex<()> = Mutex::new(());

/// Replaces the listeners of `project/service` in the routes file at `path` with
/// `listeners`, keeping every other service's. An unreadable file is replaced: berth's own
/// decisions are the routes.
pub fn set_service(
    path: &Path,
    project: &str,
    service: &str,
    listeners: Vec<Listener>,
) -> Result<(), RoutesFileError> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut routes = match read(path) {
        Ok(r) => r,
        Err(e @ RoutesFileError::Invalid { .. }) => {
            tracing::warn!(error = %crate::errors::chain(&e), "the routes file is replaced");
            Routes::default()
        }
        Err(e) => return Err(e),
    };
    routes.set_service(project, service, listeners);
    write(path, &routes)
}

/// Writes `routes` to `path` atomically.
pub fn write(path: &Path, routes: &Routes) -> Result<(), RoutesFileError> {
    let io = |op, p: &Path| {
        let path = p.to_path_buf();
        move |source| RoutesFileError::Io { op, path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    let tmp = dir.join(".routes.json.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    file.write_all(routes.to_json().as_bytes())
        .map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io("rename into place", path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::HandoffMode;
    use crate::proxy::routes::Backend;

    fn listener(name: &str, port: u16) -> Listener {
        Listener {
            name: name.into(),
            bind: ([127, 0, 0, 1], port).into(),
            mode: HandoffMode::Http,
            proxy_protocol: false,
            drain_timeout_ms: 1000,
            backends: vec![Backend {
                name: "shop-web-1-aaaaaaaaaaaa".into(),
                addr: "172.18.0.5:8080".parse().unwrap(),
            }],
        }
    }

    #[test]
    fn a_service_s_listeners_are_replaced_and_the_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert_eq!(read(&p).unwrap(), Routes::default());
        set_service(&p, "shop", "web", vec![listener("shop/web:80", 80)]).unwrap();
        set_service(&p, "shop", "api", vec![listener("shop/api:81", 81)]).unwrap();
        set_service(&p, "shop", "web", Vec::new()).unwrap();
        let r = read(&p).unwrap();
        let names: Vec<_> = r.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["shop/api:81"]);
        assert!(!dir.path().join("proxy/.routes.json.tmp").exists());
    }

    #[test]
    fn an_invalid_file_is_an_error_to_read_and_replaced_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, "{").unwrap();
        assert!(matches!(read(&p), Err(RoutesFileError::Invalid { .. })));
        set_service(&p, "shop", "web", vec![listener("shop/web:80", 80)]).unwrap();
        assert_eq!(read(&p).unwrap().listeners.len(), 1);
    }
}
