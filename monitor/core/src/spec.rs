//! The cluster description the core decides about, and the vocabulary shared with the daemon.
//!
//! These types are deliberately independent of `ha-config` and `ha-proto`: the core must stay a
//! small, dependency-free crate that compiles in seconds and can be tested exhaustively. The
//! daemon converts its configuration into a [`ClusterSpec`].

use crate::ids::{HostId, Id, RoleId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Configured mode of a host (`mode master|slave`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMode {
    Master,
    Slave,
}

impl HostMode {
    /// The word `show` prints (`master` / `slave`).
    pub fn name(self) -> &'static str {
        match self {
            HostMode::Master => "master",
            HostMode::Slave => "slave",
        }
    }
}

/// How a role's IPs are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleMode {
    /// Exactly one IP, held by one host at a time (e.g. `writer`).
    Exclusive,
    /// Several IPs spread over the eligible hosts (e.g. `reader`).
    Balanced,
}

/// Monitor mode (docs/mmm-behaviour.md §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Active,
    Manual,
    Wait,
    Passive,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Active, Mode::Manual, Mode::Wait, Mode::Passive];

    /// The text `mode` replies with.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Active => "ACTIVE",
            Mode::Manual => "MANUAL",
            Mode::Wait => "WAIT",
            Mode::Passive => "PASSIVE",
        }
    }

    /// mmm's notion of "manual": MANUAL **or** WAIT (roles stay on failed hosts, no preferences).
    pub fn is_manual(self) -> bool {
        matches!(self, Mode::Manual | Mode::Wait)
    }
}

/// Host state (docs/mmm-behaviour.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HostState {
    Online,
    AdminOffline,
    HardOffline,
    AwaitingRecovery,
    ReplicationDelay,
    ReplicationFail,
    Unknown,
}

impl HostState {
    pub const ALL: [HostState; 7] = [
        HostState::Online,
        HostState::AdminOffline,
        HostState::HardOffline,
        HostState::AwaitingRecovery,
        HostState::ReplicationDelay,
        HostState::ReplicationFail,
        HostState::Unknown,
    ];

    /// mysql-mmm's spelling, used in logs, replies, `show` and the status file.
    pub fn name(self) -> &'static str {
        match self {
            HostState::Online => "ONLINE",
            HostState::AdminOffline => "ADMIN_OFFLINE",
            HostState::HardOffline => "HARD_OFFLINE",
            HostState::AwaitingRecovery => "AWAITING_RECOVERY",
            HostState::ReplicationDelay => "REPLICATION_DELAY",
            HostState::ReplicationFail => "REPLICATION_FAIL",
            HostState::Unknown => "UNKNOWN",
        }
    }

    /// Inverse of [`HostState::name`]; `None` for anything else (status files are not trusted).
    pub fn parse(s: &str) -> Option<HostState> {
        HostState::ALL.into_iter().find(|st| st.name() == s)
    }

    pub(crate) fn is_replication_problem(self) -> bool {
        matches!(
            self,
            HostState::ReplicationDelay | HostState::ReplicationFail
        )
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The four host checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Check {
    Ping,
    Mysql,
    RepThreads,
    RepBacklog,
}

impl Check {
    /// The order `checks` prints them in.
    pub const ALL: [Check; 4] = [
        Check::Ping,
        Check::Mysql,
        Check::RepThreads,
        Check::RepBacklog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Ping => "ping",
            Check::Mysql => "mysql",
            Check::RepThreads => "rep_threads",
            Check::RepBacklog => "rep_backlog",
        }
    }

    pub fn parse(s: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Raw result of one check run, before trap logic (the prefix of mmm's checker line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckOutcome {
    Ok,
    Error,
    /// Could not tell (e.g. "too many connections", connect error for replication checks).
    /// Never counted as a failure, not even at startup (F11).
    Unknown,
}

/// One instance of a role: `name(ip)`. Ordered by name, then IP string (docs/mmm-behaviour.md §4.1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleInstance {
    pub name: String,
    pub ip: String,
}

impl RoleInstance {
    pub fn new(name: &str, ip: &str) -> RoleInstance {
        RoleInstance {
            name: name.to_string(),
            ip: ip.to_string(),
        }
    }

    /// Parses `name(ip)`; `None` for anything malformed (mmm drops such items).
    pub fn parse(s: &str) -> Option<RoleInstance> {
        let (name, rest) = s.split_once('(')?;
        let ip = rest.strip_suffix(')')?;
        if name.is_empty() || ip.is_empty() || ip.contains(['(', ')']) {
            return None;
        }
        Some(RoleInstance::new(name, ip))
    }
}

impl fmt::Display for RoleInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.ip)
    }
}

/// One `<host>` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    pub name: String,
    pub ip: String,
    pub mode: HostMode,
    /// Configured `peer` (the other master of a master-master pair).
    pub peer: Option<String>,
}

/// One `<role>` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSpec {
    pub name: String,
    pub mode: RoleMode,
    /// Hosts that may hold the role, in config order (ties are broken by this order).
    pub hosts: Vec<String>,
    /// The role's IPs in config order. Exclusive roles must have exactly one (F5; the core uses
    /// only the first if the daemon failed to reject more).
    pub ips: Vec<String>,
    /// Preferred host of an exclusive role (ignored on balanced roles, as in mmm).
    pub prefer: Option<String>,
}

/// Trap periods per check (§3.4): how long a check must keep failing before it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapPeriods {
    pub ping: Duration,
    pub mysql: Duration,
    pub rep_threads: Duration,
    pub rep_backlog: Duration,
}

impl TrapPeriods {
    pub fn uniform(d: Duration) -> TrapPeriods {
        TrapPeriods {
            ping: d,
            mysql: d,
            rep_threads: d,
            rep_backlog: d,
        }
    }

    pub fn get(&self, check: Check) -> Duration {
        match check {
            Check::Ping => self.ping,
            Check::Mysql => self.mysql,
            Check::RepThreads => self.rep_threads,
            Check::RepBacklog => self.rep_backlog,
        }
    }
}

/// Everything the core needs to know about the cluster's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// Hosts in config order: every "for all hosts" loop of the core runs in this order (F1).
    pub hosts: Vec<HostSpec>,
    /// Roles in config order.
    pub roles: Vec<RoleSpec>,
    /// Name of the role whose owner is the active master (conventionally `writer`).
    pub active_master_role: String,
    pub trap_periods: TrapPeriods,
    pub flap_duration: Duration,
    /// 0 disables flap detection.
    pub flap_count: u32,
    /// 0 = never set hosts online automatically (rule A4/A2).
    pub auto_set_online: Duration,
    /// 0 = in WAIT mode wait forever for both masters.
    pub wait_for_other_master: Duration,
    pub careful_startup: bool,
    /// Mode the monitor starts in (config `mode`).
    pub initial_mode: Mode,
    /// Writer lease sent to agents (F9); 0 = no lease (agents keep the writer role until told).
    /// The agent counts it from the echoed lease token on its own clock (crate ha-lease).
    pub writer_lease: Duration,
    /// Whether a `kill_host_bin` exists; without one fencing only logs that it could not kill.
    pub kill_host_configured: bool,
    /// No automatic writer failover after the active master fell back from semi-sync to
    /// asynchronous replication (`semisync.rs`).
    pub refuse_failover_after_async: bool,
}

impl ClusterSpec {
    /// The topology of ha's tests, simulation and lab: db1 and db2 masters of each other, db3 a
    /// slave; the exclusive `writer` role (10.0.0.100) on db1/db2, three balanced `reader` IPs
    /// (10.0.0.101–103) on all three; mysql-mmm's defaults otherwise.
    pub fn example() -> ClusterSpec {
        let host = |name: &str, ip: &str, mode, peer: Option<&str>| HostSpec {
            name: name.into(),
            ip: ip.into(),
            mode,
            peer: peer.map(Into::into),
        };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ClusterSpec::with_defaults(
            vec![
                host("db1", "10.0.0.1", HostMode::Master, Some("db2")),
                host("db2", "10.0.0.2", HostMode::Master, Some("db1")),
                host("db3", "10.0.0.3", HostMode::Slave, None),
            ],
            vec![
                RoleSpec {
                    name: "writer".into(),
                    mode: RoleMode::Exclusive,
                    hosts: names(&["db1", "db2"]),
                    ips: names(&["10.0.0.100"]),
                    prefer: None,
                },
                RoleSpec {
                    name: "reader".into(),
                    mode: RoleMode::Balanced,
                    hosts: names(&["db1", "db2", "db3"]),
                    ips: names(&["10.0.0.101", "10.0.0.102", "10.0.0.103"]),
                    prefer: None,
                },
            ],
            "writer",
        )
    }

    /// A spec with mysql-mmm's defaults (docs/product.md §2) for everything but hosts and roles.
    pub fn with_defaults(
        hosts: Vec<HostSpec>,
        roles: Vec<RoleSpec>,
        active_master_role: &str,
    ) -> ClusterSpec {
        ClusterSpec {
            hosts,
            roles,
            active_master_role: active_master_role.to_string(),
            trap_periods: TrapPeriods::uniform(Duration::from_secs(10)),
            flap_duration: Duration::from_secs(3600),
            flap_count: 3,
            auto_set_online: Duration::ZERO,
            wait_for_other_master: Duration::from_secs(120),
            careful_startup: true,
            initial_mode: Mode::Active,
            writer_lease: Duration::ZERO,
            kill_host_configured: false,
            refuse_failover_after_async: false,
        }
    }

    /// Checks what the core relies on; the daemon should refuse to start on an error.
    /// The core never panics on an invalid spec, but its decisions are only meaningful on a
    /// valid one.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = Vec::new();
        for h in &self.hosts {
            if seen.contains(&h.name.as_str()) {
                return Err(format!("host '{}' is defined twice", h.name));
            }
            seen.push(&h.name);
        }
        for h in &self.hosts {
            if let Some(p) = &h.peer {
                if self.host_id(p).is_none() || p == &h.name {
                    return Err(format!("host '{}' has an invalid peer '{p}'", h.name));
                }
            }
        }
        let mut role_names = Vec::new();
        let mut ips = Vec::new();
        for r in &self.roles {
            if role_names.contains(&r.name.as_str()) {
                return Err(format!("role '{}' is defined twice", r.name));
            }
            role_names.push(&r.name);
            if r.mode == RoleMode::Exclusive && r.ips.len() != 1 {
                return Err(format!(
                    "exclusive role '{}' must have exactly one ip",
                    r.name
                ));
            }
            if r.ips.is_empty() {
                return Err(format!("role '{}' has no ip", r.name));
            }
            for ip in &r.ips {
                if ips.contains(&ip.as_str()) {
                    return Err(format!("ip {ip} is used twice"));
                }
                ips.push(ip);
            }
            for h in &r.hosts {
                if self.host_id(h).is_none() {
                    return Err(format!("role '{}' names unknown host '{h}'", r.name));
                }
            }
            if let Some(p) = &r.prefer {
                if !r.hosts.contains(p) {
                    return Err(format!(
                        "role '{}' prefers '{p}' which can't hold it",
                        r.name
                    ));
                }
            }
        }
        if let Some(r) = self
            .roles
            .iter()
            .find(|r| r.name == self.active_master_role)
        {
            if r.mode != RoleMode::Exclusive {
                return Err(format!("active master role '{}' must be exclusive", r.name));
            }
            if r.hosts.len() > 2 {
                return Err(format!(
                    "active master role '{}' lists more than two hosts",
                    r.name
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn host_id(&self, name: &str) -> Option<HostId> {
        self.hosts.iter().position(|h| h.name == name).map(HostId)
    }

    pub(crate) fn role_id(&self, name: &str) -> Option<RoleId> {
        self.roles.iter().position(|r| r.name == name).map(RoleId)
    }

    pub(crate) fn host(&self, h: HostId) -> Option<&HostSpec> {
        self.hosts.get(h.index())
    }

    pub(crate) fn role(&self, r: RoleId) -> Option<&RoleSpec> {
        self.roles.get(r.index())
    }

    /// Roles with their ids, in config order.
    pub(crate) fn roles_with_ids(&self) -> impl Iterator<Item = (RoleId, &RoleSpec)> {
        self.roles
            .iter()
            .enumerate()
            .map(|(r, role)| (RoleId(r), role))
    }

    /// The active master role, if configured.
    pub(crate) fn writer_role(&self) -> Option<RoleId> {
        self.role_id(&self.active_master_role)
    }

    /// Whether host `h` may hold role `r` (listed in the role's hosts).
    pub(crate) fn can_hold(&self, r: RoleId, h: HostId) -> bool {
        match (self.role(r), self.host(h)) {
            (Some(role), Some(host)) => role.hosts.contains(&host.name),
            _ => false,
        }
    }

    /// Hosts listed for the active master role, in config order ("first/second master").
    pub(crate) fn masters(&self) -> Vec<HostId> {
        match self.writer_role().and_then(|r| self.role(r)) {
            Some(role) => role.hosts.iter().filter_map(|h| self.host_id(h)).collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_instance_round_trips_and_sorts_by_name_then_ip() {
        let r = RoleInstance::new("writer", "10.0.0.1");
        assert_eq!(r.to_string(), "writer(10.0.0.1)");
        assert_eq!(RoleInstance::parse("writer(10.0.0.1)"), Some(r.clone()));
        assert_eq!(RoleInstance::parse("writer10.0.0.1"), None);
        assert_eq!(RoleInstance::parse("(1.2.3.4)"), None);
        let mut v = [
            r,
            RoleInstance::new("reader", "10.0.0.3"),
            RoleInstance::new("reader", "10.0.0.2"),
        ];
        v.sort();
        let names: Vec<String> = v.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            names,
            ["reader(10.0.0.2)", "reader(10.0.0.3)", "writer(10.0.0.1)"]
        );
    }

    #[test]
    fn state_names_are_mmms_and_parse_back() {
        for s in HostState::ALL {
            assert_eq!(HostState::parse(s.name()), Some(s));
        }
        assert_eq!(HostState::ReplicationDelay.name(), "REPLICATION_DELAY");
        assert_eq!(HostState::parse("online"), None);
    }

    #[test]
    fn validate_rejects_exclusive_role_with_two_ips_f5() {
        let hosts = vec![HostSpec {
            name: "db1".into(),
            ip: "1".into(),
            mode: HostMode::Master,
            peer: None,
        }];
        let roles = vec![RoleSpec {
            name: "writer".into(),
            mode: RoleMode::Exclusive,
            hosts: vec!["db1".into()],
            ips: vec!["a".into(), "b".into()],
            prefer: None,
        }];
        let spec = ClusterSpec::with_defaults(hosts, roles, "writer");
        assert!(spec.validate().unwrap_err().contains("exactly one ip"));
    }
}
