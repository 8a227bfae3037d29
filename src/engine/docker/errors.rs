//! How bollard's answers become [`EngineError`]s (IO-free translation, used by every call):
//! the status-code classes, the 404s that mean "already done", refused registry credentials,
//! and the per-operation error counts the metrics read.

use bollard::errors::Error as BollardError;

use super::{BOLLARD_TIMEOUT, DockerEngine};
use crate::engine::auth::{self, Lookup};
use crate::engine::{EngineError, EngineOp, EngineResult};

impl DockerEngine {
    pub(super) fn count_error<T>(&self, result: &EngineResult<T>) {
        if let Err(e) = result
            && !e.is_already_done()
        {
            let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            *errors.entry(e.op()).or_default() += 1;
        }
    }

    /// Sorts a bollard error into the trait's classes.
    pub(super) fn classify(&self, op: EngineOp, target: &str, err: BollardError) -> EngineError {
        let target = target.to_owned();
        match err {
            BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            } if missing_target(op, &message) => EngineError::NotFound { op, target },
            BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            } => EngineError::Conflict {
                op,
                target,
                message,
            },
            BollardError::DockerResponseServerError {
                status_code: 304, ..
            } => EngineError::NotModified { op, target },
            BollardError::DockerResponseServerError { message, .. }
            | BollardError::DockerStreamError { error: message } => EngineError::Failed {
                op,
                target,
                message,
            },
            BollardError::RequestTimeoutError => EngineError::Timeout {
                op,
                target,
                after: BOLLARD_TIMEOUT,
            },
            e @ (BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)) => EngineError::Unreachable {
                op,
                endpoint: self.endpoint.clone(),
                source: Box::new(e),
            },
            other => EngineError::Failed {
                op,
                target,
                message: other.to_string(),
            },
        }
    }
}

/// Whether a 404 says the call's own object is missing (then the call's intent may already be
/// met), rather than something it needs: a create's image or network, or the network a start
/// wants to join (Docker 20.10 accepts a create on a missing network and fails the start with
/// 404). Those are `Failed`, so that `is_already_done` never waves them through.
pub(super) fn missing_target(op: EngineOp, message: &str) -> bool {
    if op.creates() {
        return false;
    }
    if op.on_container() {
        return message.to_ascii_lowercase().contains("no such container");
    }
    true
}

pub(super) fn outcome<T>(result: &EngineResult<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(EngineError::NotFound { .. }) => "not found",
        Err(EngineError::Conflict { .. }) => "conflict",
        Err(EngineError::NotModified { .. }) => "not modified",
        Err(EngineError::Unreachable { .. }) => "unreachable",
        Err(EngineError::Timeout { .. }) => "timeout",
        Err(EngineError::Failed { .. } | EngineError::BuildFailed { .. }) => "failed",
    }
}

/// A pull the registry refused (401/403, no credentials) says which registry and where berth
/// looked for credentials (never the credentials); other errors pass unchanged.
pub(super) fn refused(err: EngineError, lookup: Option<&Lookup>) -> EngineError {
    match err {
        EngineError::Failed {
            op,
            target,
            message,
        } if auth::is_denied(&message) => {
            let looked = match lookup {
                Some(l) => format!("registry {} refused access; {}", l.registry, l.trail),
                None => format!(
                    "registry {} refused access; berth has no Docker config directory to take credentials from (set DOCKER_CONFIG or HOME)",
                    auth::registry_of(&target)
                ),
            };
            EngineError::Failed {
                op,
                target,
                message: format!("{message} ({looked})"),
            }
        }
        other => other,
    }
}
