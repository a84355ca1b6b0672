//! What this agent's own configuration allows, whatever a request says (pure, unit tested).
//!
//! The monitor is trusted to say *what* the host should look like, but only within the bounds
//! of `agent.yaml`: a request can never make the agent add an address outside `role_ips`,
//! remove an address outside `role_ips` (and never the host's own `listen` address), replicate
//! from a server that is not one of `cluster_hosts`, or from itself. Request sizes are capped
//! before anything is parsed, and every request string that reaches a message or a log line is
//! escaped ([`q`]) so a newline cannot forge a log line.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use ha_config::AgentConfig;
use ha_proto::{ApplyStateRequest, ClearBadRolesRequest, MasterInfo, Role};

use crate::desired::{q, Desired, Master, RoleIp};

/// At most this many entries in each repeated field of a request (roles, all_roles,
/// cluster_hosts).
pub const MAX_ENTRIES: usize = 64;
/// At most this many bytes in each string of a request (host, role names, IPs, writer_role,
/// host names, lease token boot id).
pub const MAX_STR: usize = 255;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed or oversized (gRPC InvalidArgument).
    Invalid(String),
    /// Well-formed, but outside what this agent's configuration allows (PermissionDenied).
    Denied(String),
}

impl Rejection {
    pub fn message(&self) -> &str {
        match self {
            Rejection::Invalid(m) | Rejection::Denied(m) => m,
        }
    }

    pub fn to_status(&self) -> tonic::Status {
        match self {
            Rejection::Invalid(m) => tonic::Status::invalid_argument(m.clone()),
            Rejection::Denied(m) => tonic::Status::permission_denied(m.clone()),
        }
    }
}

fn count(field: &str, n: usize) -> Result<(), Rejection> {
    if n > MAX_ENTRIES {
        return Err(Rejection::Invalid(format!(
            "{field}: {n} entries, at most {MAX_ENTRIES} are accepted"
        )));
    }
    Ok(())
}

fn len(field: &str, s: &str) -> Result<(), Rejection> {
    if s.len() > MAX_STR {
        return Err(Rejection::Invalid(format!(
            "{field}: {} bytes, at most {MAX_STR} are accepted",
            s.len()
        )));
    }
    Ok(())
}

fn roles_len(field: &str, roles: &[Role]) -> Result<(), Rejection> {
    count(field, roles.len())?;
    for (i, r) in roles.iter().enumerate() {
        len(&format!("{field}[{i}].name"), &r.name)?;
        len(&format!("{field}[{i}].ip"), &r.ip)?;
    }
    Ok(())
}

fn master_len(field: &str, m: &MasterInfo) -> Result<(), Rejection> {
    len(&format!("{field}.name"), &m.name)?;
    len(&format!("{field}.ip"), &m.ip)
}

/// The host field of any request.
pub fn check_host_len(host: &str) -> Result<(), Rejection> {
    len("host", host)
}

/// Size limits of an ApplyState request, checked before anything else is looked at.
pub fn check_apply_limits(req: &ApplyStateRequest) -> Result<(), Rejection> {
    check_host_len(&req.host)?;
    len("writer_role", &req.writer_role)?;
    roles_len("roles", &req.roles)?;
    roles_len("all_roles", &req.all_roles)?;
    count("cluster_hosts", req.cluster_hosts.len())?;
    for (i, h) in req.cluster_hosts.iter().enumerate() {
        master_len(&format!("cluster_hosts[{i}]"), h)?;
    }
    if let Some(m) = &req.active_master {
        master_len("active_master", m)?;
    }
    if let Some(t) = &req.lease_token {
        len("lease_token.boot_id", &t.boot_id)?;
    }
    count("writer_peers", req.writer_peers.len())?;
    for p in &req.writer_peers {
        len("writer_peers.name", &p.name)?;
        len("writer_peers.address", &p.address)?;
    }
    Ok(())
}

/// Size limits of a ClearBadRoles request.
pub fn check_clear_limits(req: &ClearBadRolesRequest) -> Result<(), Rejection> {
    check_host_len(&req.host)?;
    len("writer_role", &req.writer_role)?;
    roles_len("all_roles", &req.all_roles)
}

/// Whether `ip` may be removed from the interface: it is one of `role_ips` and not the host's
/// own (`listen`) address. The last check before every `ip addr del` (see `crate::remove`).
pub fn may_remove(cfg: &AgentConfig, ip: Ipv4Addr) -> Result<(), String> {
    if IpAddr::V4(ip) == cfg.listen.ip() {
        return Err(format!(
            "refused to remove {ip}: it is this host's own address (listen in agent.yaml)"
        ));
    }
    if !cfg.role_ips.contains(&ip) {
        return Err(format!(
            "refused to remove {ip}: it is not in role_ips of agent.yaml on host {}",
            q(&cfg.this)
        ));
    }
    Ok(())
}

/// A desired state this agent may apply, and the `all_roles` entries it ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub desired: Desired,
    /// `all_roles` entries outside `role_ips`: never touched by this agent.
    pub ignored: Vec<RoleIp>,
}

/// The bounds `agent.yaml` sets.
#[derive(Debug, Clone)]
pub struct Policy {
    this: String,
    own_ip: IpAddr,
    role_ips: HashSet<Ipv4Addr>,
    /// `cluster_hosts` in config order (IPv4 only; config validation refuses others).
    hosts: Vec<Master>,
}

impl Policy {
    pub fn new(cfg: &AgentConfig) -> Policy {
        Policy {
            this: cfg.this.clone(),
            own_ip: cfg.listen.ip(),
            role_ips: cfg.role_ips.iter().copied().collect(),
            hosts: cfg
                .cluster_hosts
                .iter()
                .filter_map(|(name, addr)| match addr.ip() {
                    IpAddr::V4(ip) => Some(Master {
                        name: name.clone(),
                        ip,
                        port: addr.port(),
                    }),
                    IpAddr::V6(_) => None,
                })
                .collect(),
        }
    }

    fn master_check(&self, field: &str, m: &Master) -> Result<&Master, Rejection> {
        let Some(known) = self.hosts.iter().find(|h| h.name == m.name) else {
            return Err(Rejection::Denied(format!(
                "{field}: host {} ({}:{}) is not one of cluster_hosts in agent.yaml on host {}",
                q(&m.name),
                m.ip,
                m.port,
                q(&self.this)
            )));
        };
        if known.ip != m.ip || known.port != m.port {
            return Err(Rejection::Denied(format!(
                "{field}: host {} is {}:{} in the request but {}:{} in cluster_hosts of agent.yaml on host {}",
                q(&m.name),
                m.ip,
                m.port,
                known.ip,
                known.port,
                q(&self.this)
            )));
        }
        Ok(known)
    }

    /// Checks a validated desired state against the configuration: every role IP is one of
    /// `role_ips`; the active master and every cluster host match `cluster_hosts` by name and
    /// address, and another host's address is never this host's own. `all_roles` is narrowed to
    /// `role_ips` (the agent never removes anything else) and `cluster_hosts` is replaced by the
    /// configured one.
    pub fn admit(&self, mut d: Desired) -> Result<Admitted, Rejection> {
        for r in &d.roles {
            if !self.role_ips.contains(&r.ip) {
                return Err(Rejection::Denied(format!(
                    "roles: {} is not in role_ips of agent.yaml on host {}: this host may not hold it",
                    r.ip,
                    q(&self.this)
                )));
            }
        }
        if let Some(m) = &d.active_master {
            let known = self.master_check("active_master", m)?;
            let own = self.hosts.iter().find(|h| h.name == self.this);
            if known.name != self.this
                && own.is_some_and(|o| o.ip == known.ip && o.port == known.port)
            {
                return Err(Rejection::Denied(format!(
                    "active_master: host {} ({}:{}) is this host's own MySQL server; a host cannot replicate from itself",
                    q(&known.name),
                    known.ip,
                    known.port
                )));
            }
        }
        for h in &d.cluster_hosts {
            self.master_check("cluster_hosts", h)?;
        }
        // The writer only ever calls the agents of cluster_hosts, at their own IPs.
        for p in &d.writer_peers {
            let known = self.hosts.iter().find(|h| h.name == p.name);
            if known.is_none_or(|h| h.ip != *p.addr.ip()) {
                return Err(Rejection::Denied(format!(
                    "writer_peers: {} at {} is not a host of cluster_hosts in agent.yaml at that IP",
                    q(&p.name),
                    p.addr
                )));
            }
        }
        d.cluster_hosts = self.hosts.clone();
        let (kept, ignored): (Vec<RoleIp>, Vec<RoleIp>) = std::mem::take(&mut d.all_roles)
            .into_iter()
            .partition(|r| self.role_ips.contains(&r.ip));
        d.all_roles = kept;
        Ok(Admitted {
            desired: d,
            ignored,
        })
    }

    /// The host field of any request: this agent's name (InvalidArgument when empty or
    /// oversized, PermissionDenied for another host).
    pub fn check_host(&self, host: &str) -> Result<(), Rejection> {
        check_host_len(host)?;
        let this = q(&self.this);
        if host.is_empty() {
            return Err(Rejection::Invalid(format!(
                "request has no host name; this agent is {this}"
            )));
        }
        if host != self.this {
            return Err(Rejection::Denied(format!(
                "request for host {} but this agent is {this}",
                q(host)
            )));
        }
        Ok(())
    }

    /// All of ApplyState's checks, in order: sizes, host, well-formedness
    /// ([`Desired::from_request`]), then [`Policy::admit`].
    pub fn check_apply(&self, req: &ApplyStateRequest) -> Result<Admitted, Rejection> {
        check_apply_limits(req)?;
        self.check_host(&req.host)?;
        let d = Desired::from_request(req, &self.this).map_err(Rejection::Invalid)?;
        self.admit(d)
    }

    /// All of ClearBadRoles' checks: sizes, host, well-formed roles, narrowed to `role_ips`
    /// ([`Policy::clear_list`]). Returns (to clear, ignored).
    pub fn check_clear(
        &self,
        req: &ClearBadRolesRequest,
    ) -> Result<(Vec<RoleIp>, Vec<RoleIp>), Rejection> {
        check_clear_limits(req)?;
        self.check_host(&req.host)?;
        let roles =
            Desired::parse_roles(&req.all_roles, "all_roles").map_err(Rejection::Invalid)?;
        Ok(self.clear_list(roles))
    }

    /// Narrows a ClearBadRoles list to `role_ips`, each IP once. Returns (kept, ignored).
    pub fn clear_list(&self, roles: Vec<RoleIp>) -> (Vec<RoleIp>, Vec<RoleIp>) {
        let mut seen = HashSet::new();
        let (kept, ignored): (Vec<RoleIp>, Vec<RoleIp>) = roles
            .into_iter()
            .partition(|r| self.role_ips.contains(&r.ip) && IpAddr::V4(r.ip) != self.own_ip);
        let kept = kept.into_iter().filter(|r| seen.insert(r.ip)).collect();
        (kept, ignored)
    }
}

#[cfg(test)]
#[path = "allow_tests.rs"]
mod tests;
