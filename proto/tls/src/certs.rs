//! Certificate generation for `ha-control certs`: a cluster CA and leaf certificates issued
//! from it (ECDSA P-256, DNS identity as subject-alternative name, serverAuth + clientAuth).
//!
//! Files in the directory: `ca.crt` (0644), `ca.key` (0600), `<identity>.crt` (0644),
//! `<identity>.key` (0600). Every file is written to a temporary file created with its final
//! mode and then renamed into place, so a key is never readable by others, not even briefly,
//! and a reader never sees half a file.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, UnixTime};

use crate::load::{certificates, check_chain, check_key_matches, read};
use crate::{valid_identity, TlsError};

/// File name of the CA certificate in a certificate directory.
pub const CA_CERT: &str = "ca.crt";
/// File name of the CA private key in a certificate directory.
pub const CA_KEY: &str = "ca.key";
/// Default validity of a CA, in days (10 years).
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Default validity of a leaf certificate, in days (the CA/Browser Forum's former maximum).
pub const DEFAULT_LEAF_DAYS: u32 = 825;
/// Default CA name (its common name).
pub const DEFAULT_CA_NAME: &str = "ha cluster CA";

const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;
/// Certificates start to be valid this long before they are made (clock skew between hosts).
const BACKDATE: Duration = Duration::from_secs(3600);

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// Permission bits the file was given.
    pub mode: u32,
    /// An existing file was replaced (rotation).
    pub replaced: bool,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrote {} (mode {:04o}", self.path.display(), self.mode)?;
        if self.replaced {
            write!(f, ", replaced the previous file")?;
        }
        write!(f, ")")
    }
}

/// Creates a CA in `dir` (created with mode 0755 if missing): `ca.crt` (0644) and `ca.key`
/// (0600), ECDSA P-256, common name `name`, valid from an hour ago for `days` days. Refuses
/// to overwrite an existing `ca.key`.
pub fn create_ca(dir: &Path, name: &str, days: u32) -> Result<Vec<Written>, TlsError> {
    let key_path = dir.join(CA_KEY);
    let cert_path = dir.join(CA_CERT);
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(TlsError::Generate {
            path: cert_path,
            what: "the CA certificate",
            detail: format!("CA name {name:?} must be non-empty printable text"),
        });
    }
    let (not_before, not_after) = validity(&cert_path, days)?;
    ensure_dir(dir)?;
    if key_path.exists() {
        return Err(TlsError::Exists {
            path: key_path,
            hint: "this directory already has a CA; remove ca.key and ca.crt first to create a \
                   new one (certificates issued by the old CA will then no longer be trusted)",
        });
    }
    let generate = |what: &'static str, path: &Path, e: rcgen::Error| TlsError::Generate {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    };
    let key = KeyPair::generate().map_err(|e| generate("the CA key", &key_path, e))?;
    let params = ca_params(ca_name(name), not_before, not_after)
        .map_err(|e| generate("the CA certificate", &cert_path, e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| generate("the CA certificate", &cert_path, e))?;

    let written = vec![
        write_file(&key_path, key.serialize_pem().as_bytes(), KEY_MODE)?,
        write_file(&cert_path, cert.pem().as_bytes(), CERT_MODE)?,
    ];
    sync_dir(dir);
    Ok(written)
}

/// Issues a certificate for `identity` from the CA in `dir`, valid from an hour ago for `days`
/// days: writes `<identity>.crt` (0644) and `<identity>.key` (0600). Overwriting an existing
/// certificate is rotation and is reported in [`Written::replaced`].
pub fn issue(
    dir: &Path,
    identity: &str,
    ips: &[IpAddr],
    days: u32,
) -> Result<Vec<Written>, TlsError> {
    let (not_before, not_after) = validity(&dir.join(format!("{identity}.crt")), days)?;
    issue_valid_between(dir, identity, ips, not_before, not_after)
}

/// [`issue`] with an explicit validity period (tests and expiry drills use periods in the
/// past).
pub fn issue_valid_between(
    dir: &Path,
    identity: &str,
    ips: &[IpAddr],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<Vec<Written>, TlsError> {
    if !valid_identity(identity) {
        return Err(TlsError::InvalidIdentity {
            identity: identity.to_string(),
        });
    }
    let ca_cert_path = dir.join(CA_CERT);
    let ca_key_path = dir.join(CA_KEY);
    let cert_path = dir.join(format!("{identity}.crt"));
    let key_path = dir.join(format!("{identity}.key"));

    // The CA: certificate, matching key, and its subject for the leaf's issuer field.
    let ca = certificates(&ca_cert_path, &read(&ca_cert_path)?, "CA certificate")?;
    let ca_key_pem = read(&ca_key_path)?;
    let ca_key_der = PrivateKeyDer::from_pem_slice(&ca_key_pem).map_err(|e| TlsError::Pem {
        path: ca_key_path.clone(),
        what: "private key",
        detail: format!("{e:?}"),
    })?;
    check_key_matches(&ca[..1], &ca_key_der, &ca_cert_path, &ca_key_path)?;
    let ca_key = std::str::from_utf8(&ca_key_pem)
        .map_err(|e| e.to_string())
        .and_then(|pem| KeyPair::from_pem(pem).map_err(|e| e.to_string()))
        .map_err(|detail| TlsError::UnusableKey {
            path: ca_key_path.clone(),
            detail,
        })?;
    let anchors = crate::load::trust_anchors(&ca_cert_path, &ca[..1])?;
    let ca_subject = anchors
        .first()
        .ok_or_else(|| TlsError::Pem {
            path: ca_cert_path.clone(),
            what: "CA certificate",
            detail: "no BEGIN CERTIFICATE block found".into(),
        })
        .and_then(|a| {
            crate::der::distinguished_name(a.subject.as_ref()).map_err(|e| {
                TlsError::BadCertificate {
                    path: ca_cert_path.clone(),
                    detail: format!("cannot read the CA's subject name: {e}"),
                }
            })
        })?;
    let generate = |e: rcgen::Error| TlsError::Generate {
        path: cert_path.clone(),
        what: "the certificate",
        detail: e.to_string(),
    };
    let ca_params =
        ca_params(ca_subject, SystemTime::now(), SystemTime::now()).map_err(generate)?;
    let issuer = Issuer::new(ca_params, ca_key);

    // The leaf.
    let mut params = CertificateParams::new(vec![identity.to_string()]).map_err(generate)?;
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, identity);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let key = KeyPair::generate().map_err(generate)?;
    let cert = params.signed_by(&key, &issuer).map_err(generate)?;

    // What was made must pass the same checks the daemons make, at a time it is valid.
    let middle = not_before + not_after.duration_since(not_before).unwrap_or_default() / 2;
    let at = UnixTime::since_unix_epoch(
        middle
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    check_chain(
        &[cert.der().clone()],
        &anchors,
        &cert_path,
        &ca_cert_path,
        at,
    )?;

    let written = vec![
        write_file(&key_path, key.serialize_pem().as_bytes(), KEY_MODE)?,
        write_file(&cert_path, cert.pem().as_bytes(), CERT_MODE)?,
    ];
    sync_dir(dir);
    Ok(written)
}

fn ca_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

fn ca_params(
    name: DistinguishedName,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name;
    // Leaves only: no intermediate CAs below this one.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    Ok(params)
}

/// From an hour ago to `days` days from now.
fn validity(path: &Path, days: u32) -> Result<(SystemTime, SystemTime), TlsError> {
    if days == 0 {
        return Err(TlsError::Generate {
            path: path.to_path_buf(),
            what: "the certificate",
            detail: "validity must be at least 1 day".into(),
        });
    }
    let now = SystemTime::now();
    Ok((
        now - BACKDATE,
        now + Duration::from_secs(u64::from(days) * 86_400),
    ))
}

fn ensure_dir(dir: &Path) -> Result<(), TlsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `contents` to `path` through a temporary file created with `mode` (so a key or a
/// file holding a password is never readable by others, not even for a moment), synced, then
/// renamed into place. Used for certificates and by `ha-control import-mmm`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have removed bits (0644 under umask 077); make the mode exact.
        f.set_permissions(Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<Written, TlsError> {
    let replaced = path.exists();
    write_atomic(path, contents, mode).map_err(|source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Written {
        path: path.to_path_buf(),
        mode,
        replaced,
    })
}

/// Makes the renames durable; failure only weakens crash safety, so it is not an error.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
