//! [`load`]: reading one party's PEM files and checking they fit together.

use std::fmt;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use crate::{TlsError, TlsFiles};

/// One party's checked TLS material.
pub struct Loaded {
    /// Where it was read from.
    pub files: TlsFiles,
    /// The CA certificate(s) (at least one).
    pub ca: Vec<CertificateDer<'static>>,
    /// The party's certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The party's private key, known to match the leaf.
    pub key: PrivateKeyDer<'static>,
    /// The files' PEM text, for APIs that want PEM (tonic's client configuration).
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) cert_pem: Vec<u8>,
    pub(crate) key_pem: Vec<u8>,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Loaded")
            .field("files", &self.files)
            .field("ca", &self.ca.len())
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Loads and checks the files: the CA parses and holds at least one certificate, the
/// certificate chain parses, the key parses and matches the leaf's public key, and the leaf is
/// valid now and chains to the CA for both server and client authentication.
pub fn load(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let ca_pem = read(&files.ca_file)?;
    let ca = certificates(&files.ca_file, &ca_pem, "CA certificate")?;
    let anchors = trust_anchors(&files.ca_file, &ca)?;

    let cert_pem = read(&files.cert_file)?;
    let chain = certificates(&files.cert_file, &cert_pem, "certificate")?;

    let key_pem = read(&files.key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: files.key_file.clone(),
        what: "private key",
        detail: pem_reason(&e),
    })?;

    check_key_matches(&chain, &key, &files.cert_file, &files.key_file)?;
    check_chain(
        &chain,
        &anchors,
        &files.cert_file,
        &files.ca_file,
        UnixTime::now(),
    )?;

    Ok(Loaded {
        files: files.clone(),
        ca,
        chain,
        key,
        ca_pem,
        cert_pem,
        key_pem,
    })
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_reason(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM block of that kind found".into(),
        other => format!("{other:?}"),
    }
}

/// All certificates of a PEM file (at least one), each checked to parse as X.509.
pub(crate) fn certificates(
    path: &Path,
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what,
            detail: pem_reason(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what,
            detail: "no BEGIN CERTIFICATE block found".into(),
        });
    }
    for (i, c) in certs.iter().enumerate() {
        EndEntityCert::try_from(c).map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what,
            detail: format!("certificate #{} is not valid X.509: {e}", i + 1),
        })?;
    }
    Ok(certs)
}

/// The CA certificates as trust anchors.
pub(crate) fn trust_anchors(
    ca_file: &Path,
    ca: &[CertificateDer<'static>],
) -> Result<Vec<TrustAnchor<'static>>, TlsError> {
    ca.iter()
        .map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .map(|a| a.to_owned())
                .map_err(|e| TlsError::BadCertificate {
                    path: ca_file.to_path_buf(),
                    detail: format!("not usable as a CA: {e}"),
                })
        })
        .collect()
}

/// Checks that `key` is the private key of the first certificate of `chain`.
pub(crate) fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_file: &Path,
    key_file: &Path,
) -> Result<(), TlsError> {
    let leaf = chain.first().ok_or_else(|| TlsError::Pem {
        path: cert_file.to_path_buf(),
        what: "certificate",
        detail: "no BEGIN CERTIFICATE block found".into(),
    })?;
    let signing = crate::provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::UnusableKey {
            path: key_file.to_path_buf(),
            detail: e.to_string(),
        })?;
    let key_spki = signing.public_key().ok_or_else(|| TlsError::UnusableKey {
        path: key_file.to_path_buf(),
        detail: "cannot derive its public key".into(),
    })?;
    let cert = end_entity(leaf, cert_file)?;
    if key_spki.as_ref() != cert.subject_public_key_info().as_ref() {
        return Err(TlsError::KeyMismatch {
            key: key_file.to_path_buf(),
            cert: cert_file.to_path_buf(),
        });
    }
    Ok(())
}

/// The leaf certificate parsed for webpki, or an error naming `cert_file`.
fn end_entity<'a>(
    leaf: &'a CertificateDer<'static>,
    cert_file: &Path,
) -> Result<EndEntityCert<'a>, TlsError> {
    EndEntityCert::try_from(leaf).map_err(|e| TlsError::Pem {
        path: cert_file.to_path_buf(),
        what: "certificate",
        detail: format!("not valid X.509: {e}"),
    })
}

/// Checks that the leaf of `chain` is valid at `now` and chains to one of `anchors`, for both
/// server and client authentication.
pub(crate) fn check_chain(
    chain: &[CertificateDer<'static>],
    anchors: &[TrustAnchor<'static>],
    cert_file: &Path,
    ca_file: &Path,
    now: UnixTime,
) -> Result<(), TlsError> {
    let (leaf, intermediates) = chain.split_first().ok_or_else(|| TlsError::Pem {
        path: cert_file.to_path_buf(),
        what: "certificate",
        detail: "no BEGIN CERTIFICATE block found".into(),
    })?;
    let cert = end_entity(leaf, cert_file)?;
    let algorithms = crate::provider().signature_verification_algorithms.all;
    for (usage, name) in [
        (KeyUsage::server_auth(), "server"),
        (KeyUsage::client_auth(), "client"),
    ] {
        cert.verify_for_usage(algorithms, anchors, intermediates, now, usage, None, None)
            .map_err(|e| chain_error(e, name, cert_file, ca_file))?;
    }
    Ok(())
}

fn chain_error(e: webpki::Error, usage: &str, cert_file: &Path, ca_file: &Path) -> TlsError {
    match e {
        webpki::Error::CertExpired { not_after, .. } => TlsError::Expired {
            path: cert_file.to_path_buf(),
            not_after: rfc3339(not_after),
        },
        webpki::Error::CertNotValidYet { not_before, .. } => TlsError::NotYetValid {
            path: cert_file.to_path_buf(),
            not_before: rfc3339(not_before),
        },
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            TlsError::NotSignedByCa {
                cert: cert_file.to_path_buf(),
                ca: ca_file.to_path_buf(),
            }
        }
        other => TlsError::BadCertificate {
            path: cert_file.to_path_buf(),
            detail: format!("not usable for TLS {usage} authentication: {other}"),
        },
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => format!("{secs} seconds after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(
            rfc3339(UnixTime::since_unix_epoch(Duration::from_secs(
                1_767_225_600
            ))),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UnixTime::since_unix_epoch(Duration::from_secs(0))),
            "1970-01-01T00:00:00Z"
        );
    }
}
