//! TLS for berth's client: rustls (with the `ring` provider) verifying servers against the
//! system's root certificates (`rustls-native-certs`: `/etc/ssl/certs` and friends, or
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`), the Mozilla roots compiled in (`webpki-roots`) when the
//! system has none (a FROM-scratch image), and an extra CA an operator names (a private CA):
//! one PEM file (`--notify-ca`), or a registry's `certs.d` directory as the Docker engine reads
//! it. The one place berth builds rustls client configurations. Reads files; no network.

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
    let files: Vec<PathBuf> = extra_ca.map(Path::to_path_buf).into_iter().collect();
    config_trusting(&files)
}

/// A client configuration trusting the system's roots (or the bundled ones) plus every
/// `*.crt` (PEM) in `dir`: the Docker engine's per-registry CA directory
/// (`/etc/docker/certs.d/HOST:PORT/`). A missing directory adds nothing.
pub fn client_config_for_ca_dir(dir: &Path) -> Result<(Arc<ClientConfig>, RootsInfo), TlsError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect(),
        Err(_) => Vec::new(),
    };
    // The same roots in the same order whatever order the directory lists them in.
    files.sort();
    config_trusting(&files)
}

/// The one place berth builds a rustls client configuration: system (or bundled) roots
/// plus the certificates of `ca_files`.
fn config_trusting(ca_files: &[PathBuf]) -> Result<(Arc<ClientConfig>, RootsInfo), TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (system, _) = roots.add_parsable_certificates(native.certs);
    let mut bundled = 0;
    if system == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        bundled = roots.len();
    }
    let mut extra = 0;
    for path in ca_files {
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
    // rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which berth's
    // short-lived notifications, probes and registry checks do not need.
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
    fn a_certs_d_directory_adds_its_crt_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["registry.test".into()]).unwrap();
        std::fs::write(dir.path().join("ca.crt"), cert.cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), "not a certificate\n").unwrap();
        let (_, info) = client_config_for_ca_dir(dir.path()).unwrap();
        assert_eq!(info.extra, 1);
        let (_, info) = client_config_for_ca_dir(&dir.path().join("missing")).unwrap();
        assert_eq!(info.extra, 0);
        std::fs::write(dir.path().join("bad.crt"), "not a certificate\n").unwrap();
        let err = client_config_for_ca_dir(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.crt"), "{err}");
    }

    #[test]
    fn without_a_ca_file_some_roots_are_trusted() {
        let (_, info) = client_config(None).unwrap();
        assert!(info.system + info.bundled > 0, "{info:?}");
        assert_eq!(info.extra, 0);
    }
}
