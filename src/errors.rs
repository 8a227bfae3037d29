//! Rendering errors for people: an error and every cause under it, on one line.
//!
//! Pure. `thiserror` types print only their own message (`{e:#}` does not walk the chain the
//! way `anyhow` does), so whatever reaches a person — the log, the status API, the CLI — goes
//! through [`chain`] and says why as well as what.

use std::error::Error;

/// `failed to read …/web.json: Is a directory (os error 21)`: the error, then each cause,
/// joined by `": "`.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to read {path}")]
    struct Read {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_chain_names_every_cause() {
        let e = Read {
            path: "web.json".into(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied"),
        };
        assert_eq!(e.to_string(), "failed to read web.json");
        assert_eq!(chain(&e), "failed to read web.json: Permission denied");
    }
}
