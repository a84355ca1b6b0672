//! [`TlsError`]: every message names the file concerned and says what to do about it.

use std::path::PathBuf;

/// How to get a fresh certificate, appended to the messages about certificates.
const ISSUE_HINT: &str = "issue a new one (ha-control certs issue --dir DIR IDENTITY)";

/// Why TLS material could not be loaded, checked, used or written.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read: {}", path.display(), io_reason(source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file could not be written (or a directory created, or a file renamed into place).
    #[error("{}: cannot write: {}: check the directory exists and is writable", path.display(), io_reason(source))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not PEM of the expected kind.
    #[error("{}: not a PEM {what}: {detail}: give the PEM file ha-control certs wrote", path.display())]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    /// The private key does not belong to the certificate.
    #[error("{}: private key does not match certificate {}: use the key file written together with that certificate", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    /// The private key is of a kind rustls/ring cannot use.
    #[error("{}: unusable private key: {detail}: use an ECDSA P-256, Ed25519 or RSA key (ha-control certs issue writes one)", path.display())]
    UnusableKey { path: PathBuf, detail: String },
    /// The certificate's validity ended.
    #[error("{}: certificate expired at {not_after}: {ISSUE_HINT}", path.display())]
    Expired { path: PathBuf, not_after: String },
    /// The certificate's validity has not started (or this machine's clock is behind).
    #[error("{}: certificate not valid before {not_before}: check this machine's clock, or {ISSUE_HINT}", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
    /// The certificate does not chain to the CA.
    #[error("{}: not signed by the CA in {}: issue it from that CA or point the CA file at the CA that signed it", cert.display(), ca.display())]
    NotSignedByCa { cert: PathBuf, ca: PathBuf },
    /// The certificate parses but is unfit (unsupported algorithm, missing key usage, …).
    #[error("{}: certificate rejected: {detail}: {ISSUE_HINT}", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    /// rustls refused to build a configuration from otherwise checked files.
    #[error("{}: cannot build the TLS configuration: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    /// An identity that is not a DNS name.
    #[error("invalid identity '{identity}': use a DNS name of letters, digits, '-' and '.' (e.g. monitor, db1)")]
    InvalidIdentity { identity: String },
    /// Refusing to overwrite a file (the CA key).
    #[error("{}: already exists, not overwriting it: {hint}", path.display())]
    Exists { path: PathBuf, hint: &'static str },
    /// Certificate generation failed.
    #[error("{}: cannot generate {what}: {detail}", path.display())]
    Generate {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
}

/// An I/O error's text without the `(os error N)` suffix the standard library appends.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_error_names_the_file_without_os_error_noise() {
        let e = TlsError::Read {
            path: "/etc/ha/tls/ca.crt".into(),
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            e.to_string(),
            "/etc/ha/tls/ca.crt: cannot read: No such file or directory"
        );
    }

    #[test]
    fn expired_says_what_to_do() {
        let e = TlsError::Expired {
            path: "/etc/ha/tls/db1.crt".into(),
            not_after: "2026-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            e.to_string(),
            "/etc/ha/tls/db1.crt: certificate expired at 2026-01-01T00:00:00Z: issue a new one (ha-control certs issue --dir DIR IDENTITY)"
        );
    }
}
