//! The monitor's mutual TLS (monitor.yaml `tls:`): the control port's server certificate and
//! operator authorization, and the client certificate every agent link presents. With
//! `tls: off` everything here is plaintext, and the start-up log says so loudly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ha_config::MonitorConfig;
use ha_tls::{ServerTls, TlsFiles};

use crate::agents::AgentLink;
use crate::control::Operators;

/// The monitor's TLS state, `None` parts when `tls: off`.
pub struct MonitorTls {
    pub server: Option<Arc<ServerTls>>,
    files: Option<TlsFiles>,
}

impl MonitorTls {
    /// Loads and checks the material: an unusable `tls:` stops the monitor, naming the file.
    pub fn load(cfg: &MonitorConfig) -> Result<MonitorTls, ha_tls::TlsError> {
        let Some(t) = cfg.tls_on() else {
            tracing::warn!(
                "TLS IS OFF (monitor.yaml `tls: off`): anyone who can reach {} can change the cluster, and the agents are driven without authentication. Configure tls: (README, \"Security\")",
                cfg.control_addr()
            );
            return Ok(MonitorTls {
                server: None,
                files: None,
            });
        };
        let files = TlsFiles::of(t);
        let server = Arc::new(ServerTls::new(files.clone())?);
        Ok(MonitorTls {
            server: Some(server),
            files: Some(files),
        })
    }

    /// Who may use ha-control; `None` = everyone (plaintext).
    pub fn operators(cfg: &MonitorConfig) -> Option<Operators> {
        cfg.tls_on()
            .map(|t| Operators::new(t.admins.clone(), t.readers.clone()))
    }

    /// One link per host; with TLS each verifies the agent's certificate against the host
    /// name and presents the monitor's certificate. Re-reads the files (certificate rotation).
    pub fn links(
        &self,
        cfg: &MonitorConfig,
        deadline: Duration,
    ) -> Result<HashMap<String, AgentLink>, String> {
        let mut links = HashMap::new();
        for h in &cfg.hosts {
            let tls = match &self.files {
                Some(f) => Some(ha_tls::client_config(f, &h.name).map_err(|e| e.to_string())?),
                None => None,
            };
            let link = AgentLink::new(&h.name, h.ip, h.agent_port, deadline, tls)?;
            links.insert(h.name.clone(), link);
        }
        Ok(links)
    }

    /// SIGHUP: the control port's certificate and the agent links' client certificate are
    /// re-read. On any error the previous ones stay in use.
    pub fn reload(
        &self,
        cfg: &MonitorConfig,
        deadline: Duration,
        links: &mut HashMap<String, AgentLink>,
    ) {
        if let Some(server) = &self.server {
            ha_tls::reload_logged(server);
        }
        if self.files.is_none() {
            return;
        }
        match self.links(cfg, deadline) {
            Ok(new) => {
                *links = new;
                tracing::info!("SIGHUP: agent links reconnect with the re-read client certificate");
            }
            Err(e) => tracing::error!(
                "SIGHUP: cannot re-read the client certificate for the agents, the previous one stays in use: {e}"
            ),
        }
    }
}
