//! A validated `ApplyStateRequest`: everything the converger needs, in types that cannot hold
//! garbage (parsed IPs, known states). Validation errors are complete sentences naming the
//! field, the bad value and what is expected; the service returns them as InvalidArgument.
//! Request strings are quoted with [`q`] (escaped) so they cannot break a log line. What the
//! agent's own configuration allows is checked afterwards, by [`crate::allow`].

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ha_proto::{ApplyStateRequest, HostState, MasterInfo, Role};

/// A request string for a message or a log line: quoted, with control characters and quotes
/// escaped (`'db1\n…'` stays on one line).
pub fn q(s: &str) -> String {
    format!("'{}'", s.escape_debug())
}

/// A role instance with a parsed IPv4 address.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct RoleIp {
    pub name: String,
    pub ip: Ipv4Addr,
}

impl RoleIp {
    pub fn to_proto(&self) -> Role {
        Role::new(self.name.clone(), self.ip.to_string())
    }
}

impl std::fmt::Display for RoleIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name, self.ip)
    }
}

/// A MySQL server of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    pub name: String,
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// The desired state of this host.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub state: HostState,
    /// Roles to hold, sorted, no duplicates.
    pub roles: Vec<RoleIp>,
    /// Name of the active-master role ("writer"); may be empty when the cluster has none.
    pub writer_role: String,
    /// `None` = no active master.
    pub active_master: Option<Master>,
    pub epoch: u64,
    /// The sender's leadership term (`ApplyStateRequest.leader_term`; 0: a single monitor).
    pub leader_term: u64,
    pub writer_lease_ms: u64,
    /// The lease token the monitor echoes: the writer lease counts from it (crate ha-lease).
    pub lease_token: Option<ha_lease::LeaseToken>,
    pub force: bool,
    /// Every role instance of the cluster (the IPs ha manages), sorted.
    pub all_roles: Vec<RoleIp>,
    pub cluster_hosts: Vec<Master>,
    /// With the writer role: the agents of every other writer candidate (peer promises).
    pub writer_peers: Vec<Peer>,
}

/// Another writer candidate's agent: its host name (certificate identity) and address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub name: String,
    pub addr: std::net::SocketAddrV4,
}

fn parse_peer(p: &ha_proto::PeerAgent, this: &str) -> Result<Peer, String> {
    if p.name.trim().is_empty() || bad_name(&p.name) {
        return Err(format!("writer_peers: invalid host name {}", q(&p.name)));
    }
    if p.name == this {
        return Err(format!(
            "writer_peers: {} is this host; a writer does not ask itself",
            q(&p.name)
        ));
    }
    let addr = p.address.trim().parse().map_err(|_| {
        format!(
            "writer_peers: host {} has an invalid address {} (expected IPv4:port)",
            q(&p.name),
            q(&p.address)
        )
    })?;
    Ok(Peer {
        name: p.name.clone(),
        addr,
    })
}

/// A role name: not empty, no control characters, no parentheses (`name(ip)` in texts).
fn bad_name(name: &str) -> bool {
    name.chars().any(|c| c.is_control() || c == '(' || c == ')')
}

fn parse_role(r: &Role, field: &str) -> Result<RoleIp, String> {
    if r.name.trim().is_empty() {
        return Err(format!(
            "{field}: a role has an empty name (ip {})",
            q(&r.ip)
        ));
    }
    if bad_name(&r.name) {
        return Err(format!(
            "{field}: role name {} contains invalid characters",
            q(&r.name)
        ));
    }
    let ip: Ipv4Addr = r.ip.trim().parse().map_err(|_| {
        format!(
            "{field}: role {} has an invalid IP {} (expected an IPv4 address such as 10.0.60.160)",
            q(&r.name),
            q(&r.ip)
        )
    })?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err(format!(
            "{field}: role {} has IP {ip}, which cannot be a role address",
            q(&r.name)
        ));
    }
    Ok(RoleIp {
        name: r.name.clone(),
        ip,
    })
}

fn parse_master(m: &MasterInfo, field: &str) -> Result<Option<Master>, String> {
    if m.name.is_empty() && m.ip.is_empty() {
        return Ok(None);
    }
    if m.name.trim().is_empty() {
        return Err(format!("{field}: has ip {} but no host name", q(&m.ip)));
    }
    let ip: Ipv4Addr = m.ip.trim().parse().map_err(|_| {
        format!(
            "{field}: host {} has an invalid IP {} (expected an IPv4 address)",
            q(&m.name),
            q(&m.ip)
        )
    })?;
    let port = u16::try_from(m.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            format!(
                "{field}: host {} has MySQL port {}, expected 1..65535",
                q(&m.name),
                m.port
            )
        })?;
    Ok(Some(Master {
        name: m.name.clone(),
        ip,
        port,
    }))
}

impl Desired {
    /// Validates `req` for the agent named `this`.
    pub fn from_request(req: &ApplyStateRequest, this: &str) -> Result<Desired, String> {
        let state = HostState::try_from(req.state)
            .map_err(|_| format!("state: unknown host state number {}", req.state))?;
        if state == HostState::Unspecified {
            return Err(
                "state: missing (HOST_STATE_UNSPECIFIED); the monitor must send the host's state"
                    .into(),
            );
        }
        let mut all_roles = Desired::parse_roles(&req.all_roles, "all_roles")?;
        all_roles.sort();
        all_roles.dedup();
        let mut roles = Vec::new();
        let mut ips = HashSet::new();
        for r in &req.roles {
            let role = parse_role(r, "roles")?;
            // Sorted: a binary search, so a long list costs n log n, not n².
            if !all_roles.is_empty() && all_roles.binary_search(&role).is_err() {
                return Err(format!(
                    "roles: unknown role {role}: it is not one of the cluster's roles in all_roles"
                ));
            }
            if !ips.insert(role.ip) {
                return Err(format!("roles: IP {} is listed twice", role.ip));
            }
            roles.push(role);
        }
        roles.sort();
        let writer_role = req.writer_role.trim().to_string();
        if bad_name(&writer_role) {
            return Err(format!(
                "writer_role: {} contains invalid characters",
                q(&writer_role)
            ));
        }
        let writers = roles.iter().filter(|r| r.name == writer_role).count();
        if writers > 1 {
            return Err(format!(
                "roles: the writer role {} is listed {writers} times; a host holds at most one writer IP",
                q(&writer_role)
            ));
        }
        let active_master = parse_master(
            req.active_master.as_ref().unwrap_or(&MasterInfo::default()),
            "active_master",
        )?;
        if writers == 1 {
            if let Some(m) = &active_master {
                if m.name != this {
                    return Err(format!(
                        "roles: the writer role is requested for {} but active_master is {}",
                        q(this),
                        q(&m.name)
                    ));
                }
            }
        }
        let mut cluster_hosts = Vec::new();
        for h in &req.cluster_hosts {
            if let Some(m) = parse_master(h, "cluster_hosts")? {
                cluster_hosts.push(m);
            }
        }
        let mut writer_peers: Vec<Peer> = Vec::new();
        if writers == 1 {
            for p in &req.writer_peers {
                let peer = parse_peer(p, this)?;
                if writer_peers.iter().any(|w| w.name == peer.name) {
                    return Err(format!("writer_peers: {} is listed twice", q(&peer.name)));
                }
                writer_peers.push(peer);
            }
        }
        Ok(Desired {
            state,
            roles,
            writer_role,
            active_master,
            epoch: req.epoch,
            leader_term: req.leader_term,
            writer_lease_ms: req.writer_lease_ms,
            lease_token: req.lease_token.as_ref().map(|t| ha_lease::LeaseToken {
                boot_id: t.boot_id.clone(),
                at_ms: t.at_ms,
            }),
            force: req.force,
            all_roles,
            cluster_hosts,
            writer_peers,
        })
    }

    /// Parses a list of role instances (ClearBadRoles, all_roles).
    pub fn parse_roles(roles: &[Role], field: &str) -> Result<Vec<RoleIp>, String> {
        roles.iter().map(|r| parse_role(r, field)).collect()
    }

    /// The writer role instance, when this host must be the writer.
    pub fn writer(&self) -> Option<&RoleIp> {
        self.roles
            .iter()
            .find(|r| !self.writer_role.is_empty() && r.name == self.writer_role)
    }

    /// True when `other` asks for the same host configuration (renewals differ only in epoch,
    /// lease, lease token and force, and must not interrupt a pass in progress).
    pub fn same_target(&self, other: &Desired) -> bool {
        self.state == other.state
            && self.roles == other.roles
            && self.writer_role == other.writer_role
            && self.active_master == other.active_master
            && self.all_roles == other.all_roles
    }

    /// Removes the writer role (lease expiry).
    pub fn without_writer(&self) -> Desired {
        let mut d = self.clone();
        let w = d.writer_role.clone();
        d.roles.retain(|r| r.name != w);
        d
    }

    /// Maps a replication source to a cluster host name.
    pub fn host_name_of(hosts: &[Master], ip: &str, port: u16) -> String {
        hosts
            .iter()
            .find(|h| h.ip.to_string() == ip && (port == 0 || h.port == port))
            .or_else(|| hosts.iter().find(|h| h.ip.to_string() == ip))
            .map(|h| h.name.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ApplyStateRequest {
        ApplyStateRequest {
            leader_term: 0,
            writer_peers: Vec::new(),
            host: "db1".into(),
            state: HostState::Online as i32,
            roles: vec![
                Role::new("writer", "10.0.0.100"),
                Role::new("reader", "10.0.0.101"),
            ],
            active_master: Some(MasterInfo {
                name: "db1".into(),
                ip: "10.0.0.11".into(),
                port: 3306,
            }),
            epoch: 5,
            writer_lease_ms: 3000,
            writer_role: "writer".into(),
            force: false,
            lease_token: None,
            all_roles: vec![
                Role::new("writer", "10.0.0.100"),
                Role::new("reader", "10.0.0.101"),
                Role::new("reader", "10.0.0.102"),
            ],
            cluster_hosts: vec![],
        }
    }

    #[test]
    fn valid_request() {
        let d = Desired::from_request(&req(), "db1").unwrap();
        assert_eq!(d.roles.len(), 2);
        assert_eq!(d.writer().unwrap().ip, Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(d.active_master.as_ref().unwrap().port, 3306);
        assert!(!d.without_writer().roles.iter().any(|r| r.name == "writer"));
    }

    #[test]
    fn garbage_is_refused_with_a_message() {
        let mut r = req();
        r.roles.push(Role::new("", "10.0.0.102"));
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("empty name"));

        let mut r = req();
        r.roles[1].ip = "10.0.0.300".into();
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("invalid IP"));

        let mut r = req();
        r.roles.push(Role::new("bogus", "10.0.0.102"));
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("unknown role"));

        let mut r = req();
        r.state = 99;
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("unknown host state"));

        let mut r = req();
        r.state = 0;
        assert!(Desired::from_request(&r, "db1").is_err());

        let mut r = req();
        r.active_master.as_mut().unwrap().name = "db2".into();
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("active_master is 'db2'"));

        let mut r = req();
        r.active_master.as_mut().unwrap().port = 70000;
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("port"));

        let mut r = req();
        r.roles.push(Role::new("reader", "10.0.0.101"));
        assert!(Desired::from_request(&r, "db1")
            .unwrap_err()
            .contains("twice"));

        let mut r = req();
        r.roles.push(Role::new("reader", "127.0.0.1"));
        assert!(Desired::from_request(&r, "db1").is_err());
    }

    #[test]
    fn same_target_ignores_epoch_and_lease() {
        let a = Desired::from_request(&req(), "db1").unwrap();
        let mut r = req();
        r.epoch = 9;
        r.writer_lease_ms = 1;
        let b = Desired::from_request(&r, "db1").unwrap();
        assert!(a.same_target(&b));
        assert!(!a.same_target(&a.without_writer()));
    }

    #[test]
    fn host_names_from_ips() {
        let hosts = vec![
            Master {
                name: "db1".into(),
                ip: Ipv4Addr::new(10, 0, 0, 11),
                port: 3306,
            },
            Master {
                name: "db2".into(),
                ip: Ipv4Addr::new(10, 0, 0, 12),
                port: 3306,
            },
        ];
        assert_eq!(Desired::host_name_of(&hosts, "10.0.0.12", 3306), "db2");
        assert_eq!(Desired::host_name_of(&hosts, "10.0.0.12", 3307), "db2");
        assert_eq!(Desired::host_name_of(&hosts, "10.0.0.13", 3306), "");
    }
}
