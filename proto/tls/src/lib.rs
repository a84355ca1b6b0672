//! ha's mutual TLS.
//!
//! Every party (monitor, agents, operators) holds a certificate signed by the cluster's own CA
//! and proves its identity with it: the identity is a DNS subject-alternative name such as
//! `monitor`, `db1` or `alice`. One certificate serves a daemon both as a server and as a
//! client (its extended key usage lists serverAuth and clientAuth).
//!
//! * [`load`] reads and checks one party's PEM files ([`TlsFiles`]) and says precisely what is
//!   wrong ([`TlsError`] always names the file and what to do).
//! * [`ServerTls`] + [`incoming`] serve tonic over TLS, requiring a client certificate from the
//!   CA; [`ServerTls::reload`] swaps in re-read files (certificate rotation without restart).
//! * [`client_config`] builds tonic's client TLS configuration.
//! * [`caller_identity`] maps the caller's certificate to one of the identities a service
//!   accepts.
//! * [`certs`] creates a CA and issues certificates (`ha-control certs`).
//!
//! Only rustls with the *ring* provider is used; configurations are built with that provider
//! explicitly ([`provider`]), so nothing depends on a process-wide default.

pub mod certs;
mod client;
mod der;
mod error;
mod load;
mod server;

use std::path::PathBuf;
use std::sync::Arc;

pub use client::{caller_identity, client_config};
pub use error::TlsError;
pub use load::{load, Loaded};
pub use server::{incoming, reload_logged, reload_on_sighup, ServerTls};

/// Paths of one party's TLS material (all PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The cluster CA's certificate(s): the trust anchor for peers.
    pub ca_file: PathBuf,
    /// This party's certificate (leaf first, then any intermediates).
    pub cert_file: PathBuf,
    /// This party's private key (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// The files a configuration's `tls:` section names (agent.yaml, monitor.yaml, control.yaml).
    pub fn of(section: &impl ha_config::TlsMaterial) -> TlsFiles {
        let [(_, ca), (_, cert), (_, key)] = section.files();
        TlsFiles {
            ca_file: ca.clone(),
            cert_file: cert.clone(),
            key_file: key.clone(),
        }
    }

    /// The files `ha-control certs` writes into `dir` for `identity`: `ca.crt`,
    /// `<identity>.crt`, `<identity>.key`.
    pub fn in_dir(dir: &std::path::Path, identity: &str) -> TlsFiles {
        TlsFiles {
            ca_file: dir.join(certs::CA_CERT),
            cert_file: dir.join(format!("{identity}.crt")),
            key_file: dir.join(format!("{identity}.key")),
        }
    }
}

/// The crypto provider every configuration of this crate is built with (rustls + ring).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide rustls provider if none is installed yet. Idempotent.
/// Not needed by this crate (it passes [`provider`] explicitly); for code that calls
/// `rustls::ClientConfig::builder()` directly.
pub fn ensure_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: some provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// One rule for identities everywhere (config validation and certificates).
pub use ha_config::valid_identity;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        for ok in ["monitor", "db1", "alice", "db-1.example", "a"] {
            assert!(valid_identity(ok), "{ok}");
        }
        for bad in [
            "", "-db", "db-", "db..1", ".db", "db.", "db_1", "a b", "10.0.0.1", "é", "db1/x",
        ] {
            assert!(!valid_identity(bad), "{bad:?}");
        }
        assert!(!valid_identity(&"a".repeat(64)));
    }

    #[test]
    fn ensure_provider_is_idempotent() {
        ensure_provider();
        ensure_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
