//! TLS from PEM files, with rustls and its `ring` provider (ADR 0006).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use tokio_rustls::TlsAcceptor;

/// A certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// The certificate file cannot be read or holds no PEM certificate.
    #[error("cannot load the TLS certificate chain from {path}: {message}")]
    Certificate {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The key file cannot be read or holds no PEM private key.
    #[error("cannot load the TLS private key from {path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// rustls refused the pair (say, the key does not match the certificate).
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A TLS acceptor for [`serve_with`](crate::serve_with) from a PEM
/// certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
/// SEC1). TLS 1.2 and 1.3 with rustls' safe defaults; ALPN offers
/// `http/1.1` only, the one protocol the server speaks.
pub fn tls_acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsConfigError> {
    tls_acceptor_for(cert_path, key_path, &[b"http/1.1"])
}

/// The same for an HTTP/2-only endpoint (gRPC): ALPN offers `h2` only.
pub fn tls_acceptor_h2(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsConfigError> {
    tls_acceptor_for(cert_path, key_path, &[b"h2"])
}

fn tls_acceptor_for(
    cert_path: &Path,
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, TlsConfigError> {
    let cert_err = |message: String| TlsConfigError::Certificate {
        path: cert_path.display().to_string(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no `BEGIN CERTIFICATE` block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsConfigError::Key {
        path: key_path.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    #[test]
    fn loads_the_test_pair() {
        assert!(tls_acceptor(&data("localhost.cert.pem"), &data("localhost.key.pem")).is_ok());
    }

    #[test]
    fn names_the_bad_file() {
        let e = tls_acceptor(&data("localhost.key.pem"), &data("localhost.key.pem"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("certificate"), "{e}");
        let e = tls_acceptor(&data("localhost.cert.pem"), &data("nope.pem"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("nope.pem"), "{e}");
    }
}
