//! TLS to the database: rustls (ring provider), always verifying the
//! server's certificate (ADR 0009).
//!
//! The URL says what to do, as libpq's do: `sslmode=require`,
//! `verify-ca` or `verify-full` with `sslrootcert=FILE` turn TLS on;
//! `sslmode=disable` (or no `sslmode`) keeps plain TCP. Strata never makes
//! an unverified TLS connection, so every TLS mode checks the certificate
//! chain against `sslrootcert` and the server's name against the host, and
//! the opportunistic modes (`allow`, `prefer`) are refused rather than
//! silently downgraded.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Client, Socket};

use crate::error::PgError;

/// Largest root-certificate file read, in bytes.
pub const MAX_ROOT_CERT_FILE_BYTES: u64 = 1024 * 1024;

/// How the store's connections use TLS.
///
/// ```
/// use strata_postgres::{PgConfig, PgTls};
/// let config = PgConfig::new("postgres://app@db.example:5432/events")
///     .tls(PgTls::Verify { root_certs: "/etc/strata/db-ca.pem".into() });
/// # let _ = config;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PgTls {
    /// Whatever the URL says (`sslmode`, `sslrootcert`); plain TCP when it
    /// says nothing. The default.
    #[default]
    FromUrl,
    /// Plain TCP, whatever the URL says.
    Off,
    /// TLS, verifying the server's certificate chain against the PEM
    /// certificates in `root_certs` and its name against the host.
    Verify {
        /// A PEM file of the certificate authorities to trust.
        root_certs: PathBuf,
    },
}

/// The connection URL without the TLS parameters the driver does not know,
/// and the TLS they asked for.
pub(crate) fn split_url(url: &str, tls: &PgTls) -> Result<(String, PgTls), PgError> {
    let mut mode: Option<String> = None;
    let mut root: Option<String> = None;
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let rest = if is_url {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    match key {
                        "sslmode" => mode = Some(percent_decode(value)?),
                        "sslrootcert" => root = Some(percent_decode(value)?),
                        _ => kept.push(pair),
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        // key=value form; values with spaces are not used for these keys.
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some(("sslmode", v)) => mode = Some(v.trim_matches('\'').to_owned()),
                Some(("sslrootcert", v)) => root = Some(v.trim_matches('\'').to_owned()),
                _ => kept.push(token),
            }
        }
        kept.join(" ")
    };
    let from_url = match mode.as_deref() {
        None | Some("disable") => PgTls::Off,
        Some("require" | "verify-ca" | "verify-full") => match root {
            Some(path) => PgTls::Verify {
                root_certs: PathBuf::from(path),
            },
            None => {
                return Err(PgError::Config(format!(
                    "sslmode={} needs sslrootcert=FILE, a PEM file of the certificate authority \
                     that signed the server's certificate: Strata never uses TLS without \
                     verifying the server",
                    mode.as_deref().unwrap_or_default()
                )))
            }
        },
        Some(m @ ("allow" | "prefer")) => {
            return Err(PgError::Config(format!(
                "sslmode={m} (TLS only if the server offers it) is not supported: use \
                 sslmode=disable, or sslmode=verify-full with sslrootcert=FILE"
            )))
        }
        Some(other) => {
            return Err(PgError::Config(format!(
                "unknown sslmode `{other}`: use disable, require, verify-ca or verify-full"
            )))
        }
    };
    let chosen = match tls {
        PgTls::FromUrl => from_url,
        explicit => explicit.clone(),
    };
    Ok((rest, chosen))
}

/// Decodes `%XX` escapes of a URL query value.
fn percent_decode(value: &str) -> Result<String, PgError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    PgError::Config(format!("bad percent escape in URL parameter `{value}`"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| PgError::Config(format!("URL parameter `{value}` is not UTF-8")))
}

/// The rustls connector trusting the certificates of `path`.
pub(crate) fn connector(path: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| PgError::Config(format!("cannot read sslrootcert {shown}: {e}")))?
        .len();
    if size > MAX_ROOT_CERT_FILE_BYTES {
        return Err(PgError::Config(format!(
            "sslrootcert {shown} is {size} bytes; the limit is {MAX_ROOT_CERT_FILE_BYTES}"
        )));
    }
    let pem = std::fs::read(path)
        .map_err(|e| PgError::Config(format!("cannot read sslrootcert {shown}: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            PgError::Config(format!(
                "sslrootcert {shown} is not a PEM certificate file: {e}"
            ))
        })?;
        roots.add(cert).map_err(|e| {
            PgError::Config(format!(
                "sslrootcert {shown} holds an unusable certificate: {e}"
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(PgError::Config(format!(
            "sslrootcert {shown} holds no certificate"
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Config(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A connection's messages (notifications, notices, errors), driving it
/// while polled; it ends when the connection closes.
pub(crate) type Messages =
    Pin<Box<dyn Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>>;

/// One connection outside the pool (migrations, the listener), with or
/// without TLS as configured.
pub(crate) async fn connect_one(
    config: &tokio_postgres::Config,
    tls: Option<&tokio_postgres_rustls::MakeRustlsConnect>,
) -> Result<(Client, Messages), tokio_postgres::Error> {
    match tls {
        None => connect_with(config, tokio_postgres::NoTls).await,
        Some(tls) => connect_with(config, tls.clone()).await,
    }
}

async fn connect_with<T>(
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<(Client, Messages), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
    let messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    Ok((client, Box::pin(messages)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_stay_plain() {
        let (url, tls) = split_url("postgres://u@h/db", &PgTls::FromUrl).unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(tls, PgTls::Off);
        let (url, tls) = split_url(
            "postgres://u@h/db?sslmode=disable&application_name=x",
            &PgTls::FromUrl,
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x");
        assert_eq!(tls, PgTls::Off);
    }

    #[test]
    fn tls_modes_need_a_root_certificate() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let err = split_url(
                &format!("postgres://u@h/db?sslmode={mode}"),
                &PgTls::FromUrl,
            )
            .unwrap_err();
            assert!(err.to_string().contains("sslrootcert"), "{err}");
        }
        let (url, tls) = split_url(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
            &PgTls::FromUrl,
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?connect_timeout=3");
        assert_eq!(
            tls,
            PgTls::Verify {
                root_certs: "/etc/ca.pem".into()
            }
        );
    }

    #[test]
    fn opportunistic_and_unknown_modes_are_refused() {
        for mode in ["allow", "prefer", "maybe"] {
            let err = split_url(
                &format!("postgres://u@h/db?sslmode={mode}"),
                &PgTls::FromUrl,
            )
            .unwrap_err();
            assert!(err.to_string().contains("sslmode"), "{err}");
        }
    }

    #[test]
    fn key_value_form_and_explicit_settings() {
        let (url, tls) = split_url(
            "host=h user=u sslmode=require sslrootcert=/ca.pem dbname=d",
            &PgTls::FromUrl,
        )
        .unwrap();
        assert_eq!(url, "host=h user=u dbname=d");
        assert_eq!(
            tls,
            PgTls::Verify {
                root_certs: "/ca.pem".into()
            }
        );
        let (_, tls) = split_url(
            "postgres://u@h/db?sslmode=require&sslrootcert=/a",
            &PgTls::Off,
        )
        .unwrap();
        assert_eq!(tls, PgTls::Off);
    }

    #[test]
    fn bad_root_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = connector(&missing).err().unwrap().to_string();
        assert!(err.contains("cannot read sslrootcert"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = connector(&empty).err().unwrap().to_string();
        assert!(err.contains("no certificate"), "{err}");
    }
}
