//! TLS for berth's client: rustls (with the `ring` provider) verifying servers against the
//! system's root certificates (`rustls-native-certs`: `/etc/ssl/certs` and friends, or
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`), the Mozilla roots compiled in (`webpki-roots`) when the
//! system has none (a FROM-scratch image), and an extra CA file an operator names (a private
//! CA). Reads files; no network.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The extra CA file could not be read or holds no certificate.
    #[error("failed to read CA certificates from {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A certificate of the CA file was refused.
    #[error("failed to add a CA certificate from {path}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("failed to set up TLS")]
    Config(#[source] rustls::Error),
}

/// Where the trusted roots came from (for a log line at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootsInfo {
    /// Roots read from the system's store.
    pub system: usize,
    /// Roots compiled in, used because the system had none.
    pub bundled: usize,
    /// Certificates from the extra CA file.
    pub extra: usize,
}

/// A client configuration trusting the system's roots (or the bundled ones when the system
/// has none) plus the certificates in `extra_ca` (PEM).
pub fn client_config(extra_ca: Option<&Path>) -> Result<(Arc<ClientConfig>, RootsInfo), TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (system, _) = roots.add_parsable_certificates(native.certs);
    let mut bundled = 0;
    if system == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        bundled = roots.len();
    }
    let mut extra = 0;
    if let Some(path) = extra_ca {
        let certs = read_pem_certs(path)?;
        for cert in certs {
            roots.add(cert).map_err(|source| TlsError::BadCa {
                path: path.to_path_buf(),
                source,
            })?;
            extra += 1;
        }
    }
    // ring builds with a C compiler alone (aws-lc-rs needs cmake and slows every build);
    // rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which a webhook's
    // short-lived notifications do not need.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((
        Arc::new(config),
        RootsInfo {
            system,
            bundled,
            extra,
        },
    ))
}

/// The certificates of a PEM file; an error when it has none.
fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))?;
    let certs = iter
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path)).unwrap_err().to_string();
        assert!(
            err.contains("ca.pem") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = client_config(Some(&dir.path().join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
    }

    #[test]
    fn without_a_ca_file_some_roots_are_trusted() {
        let (_, info) = client_config(None).unwrap();
        assert!(info.system + info.bundled > 0, "{info:?}");
        assert_eq!(info.extra, 0);
    }
}
