//! TLS of one MySQL account: `credentials.monitor_tls` in monitor.yaml, `mysql.tls` and
//! `replication.tls` in agent.yaml.
//!
//! ```yaml
//! tls:
//!   mode: verify-identity      # disabled | preferred | required | verify-ca | verify-identity
//!   ca_file: /etc/ha/mysql-ca.crt
//!   cert_file: /etc/ha/mysql-client.crt   # optional: client certificate (X509 accounts)
//!   key_file: /etc/ha/mysql-client.key
//! ```
//!
//! A missing section is `disabled`: plaintext, as before. The modes are MySQL's `--ssl-mode`s.
//! With the `sqlx` feature, [`MysqlTls::apply`] sets them on a sqlx connection.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Collector;

/// How a MySQL connection uses TLS (MySQL's `--ssl-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MysqlTlsMode {
    /// Plaintext.
    #[default]
    Disabled,
    /// TLS when the server offers it, plaintext otherwise; the certificate is not checked.
    Preferred,
    /// TLS or no connection; the certificate is not checked.
    Required,
    /// TLS with a server certificate signed by `ca_file`.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyIdentity,
}

impl MysqlTlsMode {
    /// True when the server certificate is checked against `ca_file`.
    pub fn verifies(self) -> bool {
        matches!(self, MysqlTlsMode::VerifyCa | MysqlTlsMode::VerifyIdentity)
    }
}

/// TLS settings of one MySQL account.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlTls {
    #[serde(default)]
    pub mode: MysqlTlsMode,
    /// PEM CA certificate(s) that sign the servers' certificates; required by `verify-ca`
    /// and `verify-identity`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for accounts created `REQUIRE X509`/`SUBJECT`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl MysqlTls {
    /// The mode of an optional section: `disabled` when absent.
    pub fn mode_of(tls: Option<&MysqlTls>) -> MysqlTlsMode {
        tls.map(|t| t.mode).unwrap_or_default()
    }

    /// Sets this account's TLS on `opts`; `None` disables TLS explicitly (sqlx would otherwise
    /// use TLS whenever the server offers it).
    #[cfg(feature = "sqlx")]
    pub fn apply(
        tls: Option<&MysqlTls>,
        opts: sqlx::mysql::MySqlConnectOptions,
    ) -> sqlx::mysql::MySqlConnectOptions {
        use sqlx::mysql::MySqlSslMode;
        let Some(t) = tls else {
            return opts.ssl_mode(MySqlSslMode::Disabled);
        };
        let mut opts = opts.ssl_mode(match t.mode {
            MysqlTlsMode::Disabled => MySqlSslMode::Disabled,
            MysqlTlsMode::Preferred => MySqlSslMode::Preferred,
            MysqlTlsMode::Required => MySqlSslMode::Required,
            MysqlTlsMode::VerifyCa => MySqlSslMode::VerifyCa,
            MysqlTlsMode::VerifyIdentity => MySqlSslMode::VerifyIdentity,
        });
        if let Some(ca) = &t.ca_file {
            opts = opts.ssl_ca(ca);
        }
        if let Some(cert) = &t.cert_file {
            opts = opts.ssl_client_cert(cert);
        }
        if let Some(key) = &t.key_file {
            opts = opts.ssl_client_key(key);
        }
        opts
    }
}

/// Validates the section at `field` (e.g. `replication.tls`): verifying modes need `ca_file`,
/// a client certificate needs its key (and the other way round), and no path is empty.
pub(crate) fn check_mysql_tls(c: &mut Collector, field: &str, tls: Option<&MysqlTls>) {
    let Some(t) = tls else { return };
    if t.mode.verifies() && t.ca_file.is_none() {
        c.error(
            format!("{field}.ca_file"),
            "is required by mode verify-ca and verify-identity: name the PEM file of the CA that signed the MySQL servers' certificates",
        );
    }
    for (name, path) in [
        ("ca_file", &t.ca_file),
        ("cert_file", &t.cert_file),
        ("key_file", &t.key_file),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            c.error(
                format!("{field}.{name}"),
                "must name a PEM file (or be left out)",
            );
        }
    }
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => c.error(
            format!("{field}.key_file"),
            "is required with cert_file: name the client certificate's PEM key",
        ),
        (None, Some(_)) => c.error(
            format!("{field}.cert_file"),
            "is required with key_file: name the client certificate's PEM file",
        ),
        _ => {}
    }
    if t.mode == MysqlTlsMode::Disabled && (t.ca_file.is_some() || t.cert_file.is_some()) {
        c.error(
            format!("{field}.mode"),
            "is disabled but files are given: choose required, verify-ca or verify-identity (or remove the files)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigErrors;

    fn parse(yaml: &str) -> Result<MysqlTls, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    fn check(tls: &MysqlTls) -> Result<(), ConfigErrors> {
        let mut c = Collector::new("t.yaml");
        check_mysql_tls(&mut c, "mysql.tls", Some(tls));
        c.finish(())
    }

    #[test]
    fn modes_are_kebab_case_and_default_to_disabled() {
        assert_eq!(parse("{}").expect("empty"), MysqlTls::default());
        assert_eq!(MysqlTls::mode_of(None), MysqlTlsMode::Disabled);
        for (text, mode) in [
            ("disabled", MysqlTlsMode::Disabled),
            ("preferred", MysqlTlsMode::Preferred),
            ("required", MysqlTlsMode::Required),
            ("verify-ca", MysqlTlsMode::VerifyCa),
            ("verify-identity", MysqlTlsMode::VerifyIdentity),
        ] {
            let t = parse(&format!("{{mode: {text}, ca_file: /ca}}")).expect(text);
            assert_eq!(t.mode, mode, "{text}");
        }
        let e = parse("{mode: verify_ca}").expect_err("snake case");
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse("{mode: required, ca: /x}").expect_err("unknown key");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn verifying_modes_need_a_ca() {
        for mode in [MysqlTlsMode::VerifyCa, MysqlTlsMode::VerifyIdentity] {
            let t = MysqlTls {
                mode,
                ..MysqlTls::default()
            };
            let e = check(&t).expect_err("no ca");
            assert!(e.has_path("mysql.tls.ca_file"), "{e}");
            assert!(e.to_string().contains("verify-ca"), "{e}");
            let t = MysqlTls {
                ca_file: Some("/ca".into()),
                ..t
            };
            check(&t).expect("ca given");
        }
        let required = MysqlTls {
            mode: MysqlTlsMode::Required,
            ..MysqlTls::default()
        };
        check(&required).expect("required needs no ca");
    }

    #[test]
    fn cert_and_key_go_together_and_paths_are_not_empty() {
        let t = MysqlTls {
            mode: MysqlTlsMode::Required,
            cert_file: Some("/c".into()),
            ..MysqlTls::default()
        };
        assert!(check(&t)
            .expect_err("no key")
            .has_path("mysql.tls.key_file"));
        let t = MysqlTls {
            mode: MysqlTlsMode::Required,
            key_file: Some("/k".into()),
            ..MysqlTls::default()
        };
        assert!(check(&t)
            .expect_err("no cert")
            .has_path("mysql.tls.cert_file"));
        let t = MysqlTls {
            mode: MysqlTlsMode::VerifyCa,
            ca_file: Some("".into()),
            ..MysqlTls::default()
        };
        assert!(check(&t).expect_err("empty").has_path("mysql.tls.ca_file"));
        let t = MysqlTls {
            mode: MysqlTlsMode::Disabled,
            ca_file: Some("/ca".into()),
            ..MysqlTls::default()
        };
        assert!(check(&t).expect_err("disabled").has_path("mysql.tls.mode"));
    }

    #[cfg(feature = "sqlx")]
    #[test]
    fn apply_sets_the_sqlx_mode() {
        use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
        let off = MysqlTls::apply(None, MySqlConnectOptions::new());
        assert!(matches!(off.get_ssl_mode(), MySqlSslMode::Disabled));
        for (mode, want) in [
            (MysqlTlsMode::Disabled, MySqlSslMode::Disabled),
            (MysqlTlsMode::Preferred, MySqlSslMode::Preferred),
            (MysqlTlsMode::Required, MySqlSslMode::Required),
            (MysqlTlsMode::VerifyCa, MySqlSslMode::VerifyCa),
            (MysqlTlsMode::VerifyIdentity, MySqlSslMode::VerifyIdentity),
        ] {
            let t = MysqlTls {
                mode,
                ca_file: Some("/ca".into()),
                ..MysqlTls::default()
            };
            let o = MysqlTls::apply(Some(&t), MySqlConnectOptions::new());
            assert_eq!(
                format!("{:?}", o.get_ssl_mode()),
                format!("{want:?}"),
                "{mode:?}"
            );
        }
    }
}
