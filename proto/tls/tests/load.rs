//! Certificate generation and `load()`: what `ha-control certs` writes loads, with private
//! keys; every broken combination is refused with a message naming the offending file.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ha_tls::{certs, load, TlsError, TlsFiles};
use rustls_pki_types::ServerName;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mode(path: &Path) -> Result<u32, std::io::Error> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

fn load_err(files: &TlsFiles) -> TlsError {
    match load(files) {
        Ok(l) => panic!("load({files:?}) succeeded: {l:?}"),
        Err(e) => e,
    }
}

/// A CA in a fresh directory with certificates for `ids`.
fn cluster(ids: &[&str]) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    certs::create_ca(dir.path(), certs::DEFAULT_CA_NAME, 30)?;
    for id in ids {
        certs::issue(dir.path(), id, &[], 30)?;
    }
    Ok(dir)
}

#[test]
fn ca_and_leaves_load_and_keys_are_private() -> TestResult {
    let dir = tempfile::tempdir()?;
    let tls_dir = dir.path().join("etc/ha/tls");
    let written = certs::create_ca(&tls_dir, "test CA", 30)?;
    let paths: Vec<_> = written.iter().map(|w| w.path.clone()).collect();
    assert_eq!(paths, vec![tls_dir.join("ca.key"), tls_dir.join("ca.crt")]);
    assert_eq!(mode(&tls_dir)?, 0o755);
    assert_eq!(mode(&tls_dir.join("ca.key"))?, 0o600);
    assert_eq!(mode(&tls_dir.join("ca.crt"))?, 0o644);
    assert!(written.iter().all(|w| !w.replaced));

    for id in ["monitor", "db1", "alice"] {
        let written = certs::issue(&tls_dir, id, &[], 30)?;
        assert_eq!(written.len(), 2);
        assert!(written.iter().all(|w| !w.replaced), "{written:?}");
        let files = TlsFiles::in_dir(&tls_dir, id);
        assert_eq!(mode(&files.key_file)?, 0o600, "{id}");
        assert_eq!(mode(&files.cert_file)?, 0o644, "{id}");
        let loaded = load(&files)?;
        assert_eq!(loaded.chain.len(), 1);
        assert_eq!(loaded.ca.len(), 1);
        // The identity is a DNS SAN of the certificate, and only its own.
        let cert = webpki::EndEntityCert::try_from(&loaded.chain[0])?;
        assert!(cert
            .verify_is_valid_for_subject_name(&ServerName::try_from(id)?)
            .is_ok());
        assert!(cert
            .verify_is_valid_for_subject_name(&ServerName::try_from("db2")?)
            .is_err());
    }
    // No temporary files left behind.
    let mut names: Vec<String> = std::fs::read_dir(&tls_dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        [
            "alice.crt",
            "alice.key",
            "ca.crt",
            "ca.key",
            "db1.crt",
            "db1.key",
            "monitor.crt",
            "monitor.key"
        ]
    );
    Ok(())
}

#[test]
fn ip_sans_are_added() -> TestResult {
    let dir = cluster(&[])?;
    let ip: IpAddr = "10.0.0.11".parse()?;
    certs::issue(dir.path(), "db1", &[ip], 30)?;
    let loaded = load(&TlsFiles::in_dir(dir.path(), "db1"))?;
    let cert = webpki::EndEntityCert::try_from(&loaded.chain[0])?;
    assert!(cert
        .verify_is_valid_for_subject_name(&ServerName::from(ip))
        .is_ok());
    assert!(cert
        .verify_is_valid_for_subject_name(&ServerName::try_from("10.0.0.12")?)
        .is_err());
    Ok(())
}

#[test]
fn create_ca_refuses_to_overwrite_the_ca_key() -> TestResult {
    let dir = cluster(&[])?;
    let before = std::fs::read(dir.path().join("ca.crt"))?;
    let e = match certs::create_ca(dir.path(), "again", 30) {
        Ok(w) => panic!("second create_ca succeeded: {w:?}"),
        Err(e) => e,
    };
    assert!(matches!(e, TlsError::Exists { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: already exists",
            dir.path().join("ca.key").display()
        )),
        "{text}"
    );
    assert_eq!(std::fs::read(dir.path().join("ca.crt"))?, before);
    Ok(())
}

#[test]
fn reissuing_is_rotation_and_says_so() -> TestResult {
    let dir = cluster(&["db1"])?;
    let files = TlsFiles::in_dir(dir.path(), "db1");
    let old_key = std::fs::read(&files.key_file)?;
    let written = certs::issue(dir.path(), "db1", &[], 30)?;
    assert!(written.iter().all(|w| w.replaced), "{written:?}");
    assert!(written[0]
        .to_string()
        .contains("replaced the previous file"));
    assert_ne!(std::fs::read(&files.key_file)?, old_key);
    assert_eq!(mode(&files.key_file)?, 0o600);
    load(&files)?;
    Ok(())
}

#[test]
fn invalid_identities_and_validity_are_refused() -> TestResult {
    let dir = cluster(&[])?;
    for bad in ["db_1", "", "-x", "10.0.0.1", "../etc/passwd"] {
        match certs::issue(dir.path(), bad, &[], 30) {
            Err(TlsError::InvalidIdentity { identity }) => assert_eq!(identity, bad),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(matches!(
        certs::issue(dir.path(), "db1", &[], 0),
        Err(TlsError::Generate { .. })
    ));
    Ok(())
}

#[test]
fn missing_files_are_named() -> TestResult {
    let dir = cluster(&["db1"])?;
    for which in 0..3 {
        let mut files = TlsFiles::in_dir(dir.path(), "db1");
        let missing = dir.path().join("nonexistent.pem");
        match which {
            0 => files.ca_file = missing.clone(),
            1 => files.cert_file = missing.clone(),
            _ => files.key_file = missing.clone(),
        }
        let e = load_err(&files);
        assert_eq!(
            e.to_string(),
            format!(
                "{}: cannot read: No such file or directory",
                missing.display()
            )
        );
    }
    Ok(())
}

#[test]
fn key_of_another_identity_is_a_mismatch() -> TestResult {
    let dir = cluster(&["db1", "alice"])?;
    let mut files = TlsFiles::in_dir(dir.path(), "db1");
    files.key_file = dir.path().join("alice.key");
    let e = load_err(&files);
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "{}: private key does not match certificate {}",
            files.key_file.display(),
            files.cert_file.display()
        )),
        "{e}"
    );
    Ok(())
}

#[test]
fn certificate_from_another_ca_is_not_signed_by_the_ca() -> TestResult {
    // Both CAs have the same (default) name: the realistic mix-up of two clusters.
    let ours = cluster(&[])?;
    let theirs = cluster(&["db1"])?;
    let mut files = TlsFiles::in_dir(theirs.path(), "db1");
    files.ca_file = ours.path().join("ca.crt");
    let e = load_err(&files);
    assert!(matches!(e, TlsError::NotSignedByCa { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "{}: not signed by the CA in {}",
            files.cert_file.display(),
            files.ca_file.display()
        )),
        "{e}"
    );
    // Issuing from a CA whose key is not its certificate's is refused too.
    std::fs::copy(theirs.path().join("ca.key"), ours.path().join("ca.key"))?;
    let e = match certs::issue(ours.path(), "db2", &[], 30) {
        Ok(w) => panic!("issued with a foreign CA key: {w:?}"),
        Err(e) => e,
    };
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e:?}");
    Ok(())
}

#[test]
fn expired_and_not_yet_valid_certificates() -> TestResult {
    let dir = cluster(&[])?;
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    certs::issue_valid_between(dir.path(), "old", &[], now - 10 * day, now - day)?;
    let files = TlsFiles::in_dir(dir.path(), "old");
    let e = load_err(&files);
    assert!(matches!(e, TlsError::Expired { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: certificate expired at ",
            files.cert_file.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("issue a new one (ha-control certs issue --dir DIR IDENTITY)"));

    certs::issue_valid_between(dir.path(), "future", &[], now + day, now + 10 * day)?;
    let files = TlsFiles::in_dir(dir.path(), "future");
    let e = load_err(&files);
    assert!(matches!(e, TlsError::NotYetValid { .. }), "{e:?}");
    assert!(e.to_string().starts_with(&format!(
        "{}: certificate not valid before ",
        files.cert_file.display()
    )));
    Ok(())
}

#[test]
fn garbage_pem_is_named() -> TestResult {
    let dir = cluster(&["db1"])?;
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n")?;
    let corrupt = dir.path().join("corrupt.pem");
    std::fs::write(
        &corrupt,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )?;
    let truncated = dir.path().join("truncated.pem");
    let key = std::fs::read_to_string(dir.path().join("db1.key"))?;
    std::fs::write(&truncated, &key[..key.len() / 2])?;

    for bad in [&garbage, &corrupt, &truncated] {
        for which in 0..3 {
            let mut files = TlsFiles::in_dir(dir.path(), "db1");
            match which {
                0 => files.ca_file = bad.clone(),
                1 => files.cert_file = bad.clone(),
                _ => files.key_file = bad.clone(),
            }
            let e = load_err(&files);
            assert!(
                e.to_string().starts_with(&format!("{}: ", bad.display())),
                "{which}: {e}"
            );
        }
    }
    Ok(())
}
