//! The TLS part of `CHANGE MASTER TO`, from agent.yaml `replication.tls`. Pure, so unit tested.
//!
//! | `replication.tls`          | appended                                                    |
//! |----------------------------|-------------------------------------------------------------|
//! | absent                     | nothing (the server's default and earlier settings stay)   |
//! | `disabled`                 | `MASTER_SSL=0`                                              |
//! | `preferred`, `required`    | `MASTER_SSL=1`, files, `MASTER_SSL_VERIFY_SERVER_CERT=0`   |
//! | `verify-ca`                | the same (the replica checks the certificate against `ca_file`) |
//! | `verify-identity`          | `MASTER_SSL=1`, files, `MASTER_SSL_VERIFY_SERVER_CERT=1`   |
//!
//! Replication has no "preferred": with `MASTER_SSL=1` the replica insists on TLS. Files are
//! `MASTER_SSL_CA`, `MASTER_SSL_CERT` and `MASTER_SSL_KEY`, each only when set. The syntax is
//! the one MariaDB and MySQL share.

use std::path::Path;

use ha_config::{MysqlTls, MysqlTlsMode};

use crate::sqltext::quote;

/// `, MASTER_SSL=1, MASTER_SSL_CA='…', …` (leading comma) or the empty string. Fails only for a
/// file path that is not UTF-8 (it could not be written into the statement faithfully).
pub fn master_ssl_clause(tls: Option<&MysqlTls>) -> Result<String, String> {
    let Some(t) = tls else {
        return Ok(String::new());
    };
    if t.mode == MysqlTlsMode::Disabled {
        return Ok(", MASTER_SSL=0".into());
    }
    let mut out = String::from(", MASTER_SSL=1");
    for (option, field, path) in [
        ("MASTER_SSL_CA", "ca_file", &t.ca_file),
        ("MASTER_SSL_CERT", "cert_file", &t.cert_file),
        ("MASTER_SSL_KEY", "key_file", &t.key_file),
    ] {
        if let Some(p) = path {
            out.push_str(&format!(", {option}={}", quote(utf8(p, field)?)));
        }
    }
    let verify = u8::from(t.mode == MysqlTlsMode::VerifyIdentity);
    out.push_str(&format!(", MASTER_SSL_VERIFY_SERVER_CERT={verify}"));
    Ok(out)
}

fn utf8<'a>(p: &'a Path, field: &str) -> Result<&'a str, String> {
    p.to_str().ok_or_else(|| {
        format!(
            "agent.yaml replication.tls.{field} {} is not valid UTF-8 and cannot be given to CHANGE MASTER: rename the file",
            p.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(mode: MysqlTlsMode) -> MysqlTls {
        MysqlTls {
            mode,
            ..MysqlTls::default()
        }
    }

    #[test]
    fn absent_adds_nothing_and_disabled_turns_tls_off() {
        assert_eq!(master_ssl_clause(None).as_deref(), Ok(""));
        assert_eq!(
            master_ssl_clause(Some(&tls(MysqlTlsMode::Disabled))).as_deref(),
            Ok(", MASTER_SSL=0")
        );
    }

    #[test]
    fn only_verify_identity_checks_the_host_name() {
        for (mode, verify) in [
            (MysqlTlsMode::Preferred, 0),
            (MysqlTlsMode::Required, 0),
            (MysqlTlsMode::VerifyCa, 0),
            (MysqlTlsMode::VerifyIdentity, 1),
        ] {
            assert_eq!(
                master_ssl_clause(Some(&tls(mode))),
                Ok(format!(
                    ", MASTER_SSL=1, MASTER_SSL_VERIFY_SERVER_CERT={verify}"
                )),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn files_are_quoted_and_only_given_when_set() {
        let t = MysqlTls {
            mode: MysqlTlsMode::VerifyIdentity,
            ca_file: Some("/etc/ha/it's ca.pem".into()),
            cert_file: None,
            key_file: Some("/k.pem".into()),
        };
        assert_eq!(
            master_ssl_clause(Some(&t)),
            Ok(", MASTER_SSL=1, MASTER_SSL_CA='/etc/ha/it''s ca.pem', MASTER_SSL_KEY='/k.pem', MASTER_SSL_VERIFY_SERVER_CERT=1".into())
        );
        let t = MysqlTls {
            cert_file: Some("/c.pem".into()),
            ..t
        };
        let s = master_ssl_clause(Some(&t)).expect("utf-8 paths");
        assert!(s.contains(", MASTER_SSL_CERT='/c.pem', "), "{s}");
    }

    #[test]
    fn a_non_utf8_path_is_refused_with_the_field() {
        use std::os::unix::ffi::OsStrExt;
        let bad = std::ffi::OsStr::from_bytes(b"/etc/\xff.pem");
        let t = MysqlTls {
            mode: MysqlTlsMode::Required,
            ca_file: Some(bad.into()),
            ..MysqlTls::default()
        };
        let e = master_ssl_clause(Some(&t)).expect_err("not utf-8");
        assert!(e.contains("replication.tls.ca_file"), "{e}");
    }
}
