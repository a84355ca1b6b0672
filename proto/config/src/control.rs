//! `control.yaml`: what ha-control reads (the operator's certificate, the monitor's address).
//!
//! ```yaml
//! monitor: 10.0.0.10:9988          # optional; --monitor / --config win over it
//! tls:
//!   ca_file: /etc/ha/tls/ca.crt
//!   cert_file: /home/alice/.config/ha/alice.crt
//!   key_file: /home/alice/.config/ha/alice.key
//!   monitor_identity: monitor
//! ```

use serde::{Deserialize, Serialize};

use crate::error::Collector;
use crate::tls::{check_identity, check_section};
use crate::{parse_yaml, ConfigErrors, ControlTls, TlsSetting};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// The monitor's control address, `HOST[:PORT]`.
    #[serde(default)]
    pub monitor: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsSetting<ControlTls>>,
}

impl ControlConfig {
    /// Parses and validates `text`; `file` names the source in error messages.
    pub fn parse(text: &str, file: &str) -> Result<ControlConfig, ConfigErrors> {
        let cfg: ControlConfig = parse_yaml(text, file)?;
        let mut c = Collector::new(file);
        if cfg.monitor.as_deref().is_some_and(|m| m.trim().is_empty()) {
            c.error("monitor", "must not be empty (omit it to use --monitor)");
        }
        if let Some(t) = check_section(&mut c, cfg.tls.as_ref()) {
            check_identity(&mut c, "tls.monitor_identity", &t.monitor_identity);
        }
        c.finish(cfg)
    }

    /// The TLS material, `None` when the file says `tls: off`.
    pub fn tls_on(&self) -> Option<&ControlTls> {
        self.tls.as_ref().and_then(TlsSetting::on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_and_checked() {
        let e = ControlConfig::parse("monitor: 10.0.0.1\n", "c.yaml").expect_err("no tls");
        assert!(e.to_string().contains("c.yaml: tls: is required"), "{e}");
        let ok = ControlConfig::parse("tls: off\n", "c.yaml").expect("off");
        assert!(ok.tls_on().is_none());
        let e = ControlConfig::parse(
            "tls: {ca_file: /a, cert_file: /b, key_file: /c, monitor_identity: 'mon itor'}\n",
            "c.yaml",
        )
        .expect_err("bad identity");
        assert!(e.to_string().contains("tls.monitor_identity"), "{e}");
    }
}
