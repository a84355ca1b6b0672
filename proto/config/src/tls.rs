//! The `tls:` section of all three files: mutual TLS on every gRPC channel, on by default.
//!
//! Every file must say either where its TLS material is, or `tls: off`. There is no implicit
//! plaintext: a missing section is an error, so a cluster cannot run unprotected because a key
//! was misspelt or forgotten. `off` exists for labs and migrations and is logged loudly.
//!
//! Identities are DNS names carried in the certificates' subjectAltName: the monitor's
//! (`monitor_identity` in agent.yaml and control.yaml), each agent's (its host name in
//! monitor.yaml) and each operator's (`admins` / `readers` in monitor.yaml).

use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Collector;

/// `tls: off`, or the material of one party.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TlsSetting<T> {
    /// Plaintext, explicitly chosen.
    Off,
    On(T),
}

impl<T> TlsSetting<T> {
    pub fn on(&self) -> Option<&T> {
        match self {
            TlsSetting::Off => None,
            TlsSetting::On(t) => Some(t),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for TlsSetting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_yaml::Value::deserialize(d)?;
        match &v {
            serde_yaml::Value::String(s) if s.eq_ignore_ascii_case("off") => Ok(TlsSetting::Off),
            serde_yaml::Value::Bool(false) => Ok(TlsSetting::Off),
            serde_yaml::Value::Mapping(_) => serde_yaml::from_value(v)
                .map(TlsSetting::On)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "expected `off` or a mapping with ca_file, cert_file and key_file",
            )),
        }
    }
}

/// agent.yaml `tls:`: the agent's certificate (identity: its host name) and which client
/// identity may call it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The only identity whose calls the agent accepts.
    pub monitor_identity: String,
}

/// monitor.yaml `tls:`: the monitor's certificate (server for ha-control, client of the
/// agents) and who may use ha-control.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Operator identities allowed every command.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Operator identities allowed the read-only ones (`show`, `checks`, `mode`, `ping`).
    #[serde(default)]
    pub readers: Vec<String>,
}

/// control.yaml `tls:`: the operator's certificate and the monitor's identity.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub monitor_identity: String,
}

/// The PEM files every `tls:` section names, whatever else it holds.
pub trait TlsMaterial {
    /// `(field, path)` of the CA, the certificate and the key, in that order.
    fn files(&self) -> [(&'static str, &PathBuf); 3];
}

macro_rules! tls_material {
    ($($t:ty),*) => {$(
        impl TlsMaterial for $t {
            fn files(&self) -> [(&'static str, &PathBuf); 3] {
                [
                    ("ca_file", &self.ca_file),
                    ("cert_file", &self.cert_file),
                    ("key_file", &self.key_file),
                ]
            }
        }
    )*};
}
tls_material!(AgentTls, MonitorTls, ControlTls);

/// Checks a file's `tls:` section: present (or `off`), naming its files. Returns the
/// material when TLS is on, for the section's own checks.
pub(crate) fn check_section<'a, T: TlsMaterial>(
    c: &mut Collector,
    tls: Option<&'a TlsSetting<T>>,
) -> Option<&'a T> {
    let t = match tls {
        None => {
            c.error("tls", TLS_REQUIRED);
            return None;
        }
        Some(TlsSetting::Off) => return None,
        Some(TlsSetting::On(t)) => t,
    };
    for (field, path) in t.files() {
        if path.as_os_str().is_empty() {
            c.error(format!("tls.{field}"), "must name a PEM file");
        }
    }
    Some(t)
}

/// What a missing `tls:` section is told.
const TLS_REQUIRED: &str = "is required: give ca_file, cert_file and key_file \
     (create them with `ha-control certs`), or write `tls: off` to run without TLS \
     (anyone who reaches the port then controls the cluster)";

/// True for names usable as identities: a DNS name of letters, digits, `-` and `.`, not
/// starting or ending with `-` or `.`, at most 253 characters, no empty label. (Identities are
/// matched against DNS subject-alternative names.)
pub fn valid_identity(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // all-numeric dotted names would read as IPv4 addresses
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

pub(crate) fn check_identity(c: &mut Collector, field: &str, name: &str) {
    if !valid_identity(name) {
        c.error(
            field,
            format!(
                "{name:?} is not a valid certificate identity (a DNS name: letters, digits, '-' and '.')"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        for ok in ["monitor", "db1", "alice.ops", "a-b"] {
            assert!(valid_identity(ok), "{ok}");
        }
        for bad in ["", "a b", "-a", "a.", "a..b", "db1\n", "*.x", "ä"] {
            assert!(!valid_identity(bad), "{bad:?}");
        }
    }

    #[test]
    fn off_and_on() {
        let off: TlsSetting<ControlTls> = serde_yaml::from_str("off").expect("off");
        assert_eq!(off, TlsSetting::Off);
        let off: TlsSetting<ControlTls> = serde_yaml::from_str("false").expect("false");
        assert_eq!(off, TlsSetting::Off);
        let on: TlsSetting<ControlTls> = serde_yaml::from_str(
            "{ca_file: /a, cert_file: /b, key_file: /c, monitor_identity: monitor}",
        )
        .expect("on");
        assert_eq!(
            on.on().map(|t| t.monitor_identity.as_str()),
            Some("monitor")
        );
        let e = serde_yaml::from_str::<TlsSetting<ControlTls>>("on").expect_err("on");
        assert!(e.to_string().contains("expected `off`"), "{e}");
        let e = serde_yaml::from_str::<TlsSetting<ControlTls>>("{ca_file: /a}").expect_err("x");
        assert!(e.to_string().contains("missing field"), "{e}");
    }
}
