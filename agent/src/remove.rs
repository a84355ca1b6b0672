//! The only way the agent removes an address from its interface: every removal (a pass, the
//! lease guard's fence, ClearBadRoles) is checked against `agent.yaml` first
//! ([`crate::allow::may_remove`]): never the host's own address, never one outside `role_ips`,
//! whatever a request or a state file says.

use std::net::Ipv4Addr;

use ha_config::AgentConfig;

use crate::ip;
use crate::status::Outcome;

/// `ip -4 addr del IP dev <cluster_interface>`, refused outside the configuration's bounds.
pub(crate) async fn del_role_ip(cfg: &AgentConfig, addr: Ipv4Addr) -> Result<ip::Change, String> {
    crate::allow::may_remove(cfg, addr)?;
    ip::del(addr, &cfg.cluster_interface).await
}

/// [`del_role_ip`] as a step outcome ("already absent" is a success).
pub(crate) async fn remove_ip(cfg: &AgentConfig, addr: Ipv4Addr) -> Outcome {
    let dev = &cfg.cluster_interface;
    match del_role_ip(cfg, addr).await {
        Ok(ip::Change::Done) => Outcome::ok(format!("ip -4 addr del {addr} dev {dev}")),
        Ok(ip::Change::AlreadyThere) => Outcome::ok(format!("{addr} was already absent")),
        Err(e) => Outcome::err(e),
    }
}
