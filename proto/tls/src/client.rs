//! The client side ([`client_config`]) and the server's view of its caller
//! ([`caller_identity`]).

use rustls_pki_types::{DnsName, ServerName};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use webpki::EndEntityCert;

use crate::{load, valid_identity, TlsError, TlsFiles};

/// Tonic's client TLS configuration from `files` (checked with [`load`] first): trusts only
/// the CA, presents the party's certificate, and requires the server's certificate to carry
/// `server_identity` as a DNS subject-alternative name.
pub fn client_config(files: &TlsFiles, server_identity: &str) -> Result<ClientTlsConfig, TlsError> {
    if !valid_identity(server_identity) {
        return Err(TlsError::InvalidIdentity {
            identity: server_identity.to_string(),
        });
    }
    let loaded = load(files)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&loaded.ca_pem))
        .identity(Identity::from_pem(&loaded.cert_pem, &loaded.key_pem))
        .domain_name(server_identity))
}

/// The caller's identity: the first name of `allowed` for which the caller's certificate is
/// valid (a DNS subject-alternative name). No certificate, or none of the names, is
/// `PERMISSION_DENIED` naming the caller's address and the allowed identities.
///
/// The certificate itself was verified against the CA during the handshake
/// ([`crate::ServerTls`] requires it); this only decides *who* it is.
pub fn caller_identity<T>(
    request: &tonic::Request<T>,
    allowed: &[String],
) -> Result<String, tonic::Status> {
    let peer = request
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "(unknown address)".into());
    let list = format!("[{}]", allowed.join(", "));
    let certs = request.peer_certs();
    let Some(leaf) = certs.as_ref().and_then(|c| c.first()) else {
        return Err(tonic::Status::permission_denied(format!(
            "caller {peer} presented no client certificate; allowed identities {list}"
        )));
    };
    let cert = EndEntityCert::try_from(leaf).map_err(|e| {
        tonic::Status::permission_denied(format!(
            "caller {peer} presented an unreadable certificate ({e}); allowed identities {list}"
        ))
    })?;
    for name in allowed {
        let Ok(dns) = DnsName::try_from(name.as_str()) else {
            continue;
        };
        if cert
            .verify_is_valid_for_subject_name(&ServerName::DnsName(dns))
            .is_ok()
        {
            return Ok(name.clone());
        }
    }
    Err(tonic::Status::permission_denied(format!(
        "caller {peer} presented a certificate for none of the allowed identities {list}"
    )))
}
