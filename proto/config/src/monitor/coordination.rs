//! `coordination:` — redundant monitors through etcd v3 (issue 18).
//!
//! Absent: one monitor, its state in the local status file (the default, no extra component).
//! Present: every monitor with the same cluster configuration campaigns for one leadership key
//! bound to an etcd lease; only the leader acts, its state lives under `prefix`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Collector;
use crate::{Seconds, TlsSetting};

/// `coordination:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Coordination {
    pub etcd: EtcdCoordination,
}

/// `coordination.etcd:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdCoordination {
    /// Client URLs of the etcd members: `http://IP:2379` (with `tls: off`) or `https://…`.
    pub endpoints: Vec<String>,
    /// Key prefix of this cluster: the leadership key is `<prefix>/leader`, the state
    /// `<prefix>/state`. Clusters sharing an etcd need distinct prefixes.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Mutual TLS towards etcd, or `off` (required, like the other `tls:` sections).
    pub tls: Option<TlsSetting<EtcdTls>>,
    /// TTL of the leadership lease, whole seconds, at least 2 (etcd's practical minimum). A
    /// killed leader is replaced about this long after it died; a leader that cannot renew
    /// its lease stops acting before it ends.
    #[serde(default = "default_ttl")]
    pub lease_ttl: Seconds,
}

/// `coordination.etcd.tls:`: the monitor's client certificate and etcd's CA.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

fn default_prefix() -> String {
    "/ha/cluster".to_string()
}

fn default_ttl() -> Seconds {
    Seconds::from_secs(5)
}

impl EtcdCoordination {
    /// The leadership key.
    pub fn leader_key(&self) -> String {
        format!("{}/leader", self.prefix)
    }

    /// The key holding the monitor's persisted state (what the status file holds otherwise).
    pub fn state_key(&self) -> String {
        format!("{}/state", self.prefix)
    }

    /// The TLS material, `None` with `tls: off`.
    pub fn tls_on(&self) -> Option<&EtcdTls> {
        self.tls.as_ref().and_then(TlsSetting::on)
    }
}

pub(crate) fn validate(c: &mut Collector, coord: Option<&Coordination>) {
    let Some(Coordination { etcd }) = coord else {
        return;
    };
    let at = |f: &str| format!("coordination.etcd.{f}");
    if etcd.endpoints.is_empty() {
        c.error(at("endpoints"), "must list at least one etcd client URL");
    }
    let tls = match &etcd.tls {
        None => {
            c.error(
                at("tls"),
                "is required: give ca_file, cert_file and key_file of the monitor's etcd \
                 client certificate, or write `tls: off` (anyone who reaches etcd can then \
                 take the leadership)",
            );
            None
        }
        Some(t) => Some(t.on().is_some()),
    };
    for (i, e) in etcd.endpoints.iter().enumerate() {
        let scheme_ok = match tls {
            Some(true) => e.starts_with("https://"),
            Some(false) => e.starts_with("http://"),
            None => e.starts_with("http://") || e.starts_with("https://"),
        };
        let host = e.split_once("://").map(|(_, h)| h).unwrap_or("");
        if !scheme_ok || host.is_empty() || host.contains('/') {
            let want = match tls {
                Some(true) => "https://HOST:PORT (tls is on)",
                Some(false) => "http://HOST:PORT (tls is off)",
                None => "http://HOST:PORT or https://HOST:PORT",
            };
            c.error(
                format!("{}[{i}]", at("endpoints")),
                format!("'{e}': expected {want}"),
            );
        }
    }
    if let Some(t) = etcd.tls_on() {
        for (f, p) in [
            ("ca_file", &t.ca_file),
            ("cert_file", &t.cert_file),
            ("key_file", &t.key_file),
        ] {
            if p.as_os_str().is_empty() {
                c.error(at(&format!("tls.{f}")), "must name a PEM file");
            }
        }
    }
    let p = &etcd.prefix;
    if !p.starts_with('/') || p.ends_with('/') || p.len() < 2 || p.contains(char::is_whitespace) {
        c.error(
            at("prefix"),
            format!("'{p}': expected a key prefix such as /ha/sales (leading /, no trailing /)"),
        );
    }
    let ttl = etcd.lease_ttl.duration();
    if ttl.as_secs() < 2 || ttl.subsec_nanos() != 0 || ttl.as_secs() > 3600 {
        c.error(
            at("lease_ttl"),
            format!(
                "{:?}: must be whole seconds between 2 and 3600 (etcd leases have second \
                 granularity; 2 s is etcd's practical minimum)",
                ttl
            ),
        );
    }
}
