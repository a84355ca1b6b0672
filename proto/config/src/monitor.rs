//! `monitor.yaml`: what ha-monitor (and ha-control, for the control address) reads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ha_core::Check;
use serde::{Deserialize, Serialize};

use crate::error::Collector;
use crate::tls::{check_identity, check_section};
use crate::{parse_yaml, ConfigErrors, MonitorTls, OrderedMap, Seconds, TlsSetting};

/// The whole monitor configuration, validated. Hosts and roles keep file order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorConfig {
    pub active_master_role: String,
    pub monitor: MonitorSection,
    pub credentials: Credentials,
    pub hosts: Vec<Host>,
    pub roles: Vec<Role>,
    pub checks: Checks,
    pub tls: Option<TlsSetting<MonitorTls>>,
}

/// Initial monitor mode (mmm-reference §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MonitorMode {
    #[default]
    Active,
    Manual,
    Wait,
    Passive,
}

/// The `monitor:` section. Defaults are mysql-mmm's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSection {
    /// Address of the control service ha-control talks to.
    pub ip: IpAddr,
    #[serde(default = "default_monitor_port")]
    pub port: u16,
    pub status_path: PathBuf,
    pub ping_ips: Vec<IpAddr>,
    #[serde(default = "secs::<1>")]
    pub ping_interval: Seconds,
    #[serde(default = "secs::<3600>")]
    pub flap_duration: Seconds,
    #[serde(default = "default_flap_count")]
    pub flap_count: u32,
    #[serde(default)]
    pub auto_set_online: Seconds,
    /// Fencing hook run as `<bin> <host> <ping_ok 0|1>`; empty = none configured.
    #[serde(default)]
    pub kill_host_bin: String,
    #[serde(default = "yes")]
    pub careful_startup: bool,
    #[serde(default)]
    pub mode: MonitorMode,
    #[serde(default = "secs::<120>")]
    pub wait_for_other_master: Seconds,
    /// How often every agent is sent its desired state (also the lease renewal period).
    #[serde(default = "half_second")]
    pub agent_period: Seconds,
    /// Deadline of one agent call.
    #[serde(default = "secs::<1>")]
    pub agent_timeout: Seconds,
    /// The writer fences itself when its role is not renewed for this long (counted from the
    /// last reply the monitor received from it); 0 disables the lease (unsafe: an isolated
    /// writer then stays writable). Independent of the check periods: see README "Writer
    /// lease" for how the default was chosen.
    #[serde(default = "secs::<5>")]
    pub writer_lease: Seconds,
}

/// MySQL account of the monitor's checks.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub monitor_user: String,
    #[serde(default)]
    pub monitor_password: String,
    /// TLS of the checks' connections (absent: plaintext).
    #[serde(default)]
    pub monitor_tls: Option<crate::MysqlTls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    Master,
    Slave,
}

impl HostMode {
    pub fn as_str(self) -> &'static str {
        match self {
            HostMode::Master => "master",
            HostMode::Slave => "slave",
        }
    }
}

/// One MySQL host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub name: String,
    pub ip: IpAddr,
    pub mode: HostMode,
    pub peer: Option<String>,
    pub mysql_port: u16,
    pub agent_port: u16,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    ip: IpAddr,
    mode: HostMode,
    #[serde(default)]
    peer: Option<String>,
    #[serde(default = "default_mysql_port")]
    mysql_port: u16,
    #[serde(default = "default_agent_port")]
    agent_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleMode {
    Exclusive,
    Balanced,
}

/// A role: a set of virtual IPs that move between eligible hosts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Role {
    pub name: String,
    pub mode: RoleMode,
    pub hosts: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub prefer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    mode: RoleMode,
    hosts: Vec<String>,
    ips: Vec<IpAddr>,
    #[serde(default)]
    prefer: Option<String>,
}

/// Settings of one check after the `default` section and mysql-mmm's defaults were applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CheckConfig {
    pub check_period: Seconds,
    pub trap_period: Seconds,
    pub timeout: Seconds,
    pub max_backlog: Seconds,
    /// Independent attempts made in parallel per check run; the run is OK when any of them
    /// answers. 1 is mysql-mmm's behaviour. With sub-second periods one lost packet (a TCP
    /// retransmission takes ≥ 200 ms, a lost SYN 1 s) can outlast the trap period; a few
    /// parallel attempts keep packet loss from looking like an outage, while a real outage
    /// still fails every attempt.
    pub attempts: u32,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            check_period: Seconds::from_secs(5),
            trap_period: Seconds::from_secs(10),
            timeout: Seconds::from_secs(2),
            max_backlog: Seconds::from_secs(60),
            attempts: 1,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    check_period: Option<Seconds>,
    trap_period: Option<Seconds>,
    timeout: Option<Seconds>,
    max_backlog: Option<Seconds>,
    attempts: Option<u32>,
    /// Accepted for mysql-mmm compatibility; ha has no checker subprocess to recycle.
    #[allow(dead_code)]
    restart_after: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecks {
    default: Option<RawCheck>,
    ping: Option<RawCheck>,
    mysql: Option<RawCheck>,
    rep_threads: Option<RawCheck>,
    rep_backlog: Option<RawCheck>,
}

/// Settings of all four checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Checks {
    pub ping: CheckConfig,
    pub mysql: CheckConfig,
    pub rep_threads: CheckConfig,
    pub rep_backlog: CheckConfig,
}

impl Checks {
    pub fn get(&self, kind: Check) -> &CheckConfig {
        match kind {
            Check::Ping => &self.ping,
            Check::Mysql => &self.mysql,
            Check::RepThreads => &self.rep_threads,
            Check::RepBacklog => &self.rep_backlog,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitorConfig {
    active_master_role: String,
    monitor: MonitorSection,
    credentials: Credentials,
    hosts: OrderedMap<RawHost>,
    roles: OrderedMap<RawRole>,
    #[serde(default)]
    checks: RawChecks,
    #[serde(default)]
    tls: Option<TlsSetting<MonitorTls>>,
}

fn half_second() -> Seconds {
    Seconds::from_millis(500)
}

fn default_monitor_port() -> u16 {
    9988
}
fn default_agent_port() -> u16 {
    9989
}
fn default_mysql_port() -> u16 {
    3306
}
fn default_flap_count() -> u32 {
    3
}
fn yes() -> bool {
    true
}
fn secs<const N: u64>() -> Seconds {
    Seconds::from_secs(N)
}

impl MonitorConfig {
    /// Parses and validates `text`; `file` names the source in error messages.
    pub fn parse(text: &str, file: &str) -> Result<MonitorConfig, ConfigErrors> {
        let raw: RawMonitorConfig = parse_yaml(text, file)?;
        let mut c = Collector::new(file);

        let hosts: Vec<Host> = raw
            .hosts
            .0
            .iter()
            .map(|(name, h)| Host {
                name: name.clone(),
                ip: h.ip,
                mode: h.mode,
                peer: h.peer.clone(),
                mysql_port: h.mysql_port,
                agent_port: h.agent_port,
            })
            .collect();
        let roles: Vec<Role> = raw
            .roles
            .0
            .iter()
            .map(|(name, r)| Role {
                name: name.clone(),
                mode: r.mode,
                hosts: r.hosts.clone(),
                ips: r.ips.clone(),
                prefer: r.prefer.clone(),
            })
            .collect();
        let checks = resolve_checks(&raw.checks);

        validate_monitor_section(&raw.monitor, &mut c);
        validate_names(&hosts, &roles, &mut c);
        validate_hosts(&hosts, &mut c);
        validate_roles(&hosts, &roles, &raw.active_master_role, &mut c);
        validate_ips(&hosts, &roles, &mut c);
        validate_checks(&checks, &mut c);
        if raw.credentials.monitor_user.is_empty() {
            c.error("credentials.monitor_user", "must not be empty");
        }
        let tls = raw.credentials.monitor_tls.as_ref();
        crate::mysql_tls::check_mysql_tls(&mut c, "credentials.monitor_tls", tls);
        validate_tls(raw.tls.as_ref(), &hosts, &mut c);

        c.finish(MonitorConfig {
            active_master_role: raw.active_master_role,
            monitor: raw.monitor,
            credentials: raw.credentials,
            hosts,
            roles,
            checks,
            tls: raw.tls,
        })
    }

    /// The TLS material, `None` when the file says `tls: off`.
    pub fn tls_on(&self) -> Option<&MonitorTls> {
        self.tls.as_ref().and_then(TlsSetting::on)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The role whose owner is the writable master.
    pub fn active_master_role(&self) -> Option<&Role> {
        self.role(&self.active_master_role)
    }

    /// Address ha-control connects to.
    pub fn control_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.monitor.ip, self.monitor.port)
    }
}

fn resolve_checks(raw: &RawChecks) -> Checks {
    let base = CheckConfig::default();
    let default = raw.default.clone().unwrap_or_default();
    let one = |r: &Option<RawCheck>| {
        let r = r.clone().unwrap_or_default();
        CheckConfig {
            check_period: r
                .check_period
                .or(default.check_period)
                .unwrap_or(base.check_period),
            trap_period: r
                .trap_period
                .or(default.trap_period)
                .unwrap_or(base.trap_period),
            timeout: r.timeout.or(default.timeout).unwrap_or(base.timeout),
            max_backlog: r
                .max_backlog
                .or(default.max_backlog)
                .unwrap_or(base.max_backlog),
            attempts: r.attempts.or(default.attempts).unwrap_or(base.attempts),
        }
    };
    Checks {
        ping: one(&raw.ping),
        mysql: one(&raw.mysql),
        rep_threads: one(&raw.rep_threads),
        rep_backlog: one(&raw.rep_backlog),
    }
}

fn validate_monitor_section(m: &MonitorSection, c: &mut Collector) {
    for (field, value) in [
        ("ping_interval", m.ping_interval),
        ("agent_period", m.agent_period),
        ("agent_timeout", m.agent_timeout),
        ("flap_duration", m.flap_duration),
    ] {
        if value.is_zero() {
            c.error(format!("monitor.{field}"), "must be greater than 0");
        }
    }
    if m.ping_ips.is_empty() {
        c.error(
            "monitor.ping_ips",
            "needs at least one IP for the network self-check",
        );
    }
    // A renewal echoes the token of the previous reply, which is up to one agent_period old,
    // and the next renewal comes one agent_period (plus a call of up to agent_timeout) later.
    let renewal = m.agent_period.0 * 2 + m.agent_timeout.0;
    if !m.writer_lease.is_zero() && m.writer_lease.0 <= renewal {
        c.error(
            "monitor.writer_lease",
            format!(
                "must be longer than 2 x agent_period + agent_timeout (2 x {} + {}), or the \
                 writer would fence itself between two renewals; use 0 to disable the lease",
                m.agent_period, m.agent_timeout
            ),
        );
    }
    if m.status_path.as_os_str().is_empty() {
        c.error("monitor.status_path", "must not be empty");
    }
}

fn validate_names(hosts: &[Host], roles: &[Role], c: &mut Collector) {
    if hosts.is_empty() {
        c.error("hosts", "at least one host is required");
    }
    if roles.is_empty() {
        c.error("roles", "at least one role is required");
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    };
    for h in hosts {
        if !valid(&h.name) {
            c.error(
                format!("hosts.{}", h.name),
                "a host name may only contain letters, digits, '_' and '-'",
            );
        }
    }
    for r in roles {
        if !valid(&r.name) {
            c.error(
                format!("roles.{}", r.name),
                "a role name may only contain letters, digits, '_' and '-'",
            );
        }
    }
}

fn validate_hosts(hosts: &[Host], c: &mut Collector) {
    let find = |name: &str| hosts.iter().find(|h| h.name == name);
    for h in hosts {
        let path = format!("hosts.{}.peer", h.name);
        match (&h.mode, &h.peer) {
            (HostMode::Master, None) => c.error(
                path,
                "a master needs a peer (the other master it replicates with)",
            ),
            (_, Some(peer)) if *peer == h.name => c.error(path, "a host cannot be its own peer"),
            (_, Some(peer)) => match find(peer) {
                None => c.error(path, format!("'{peer}' is not a host")),
                Some(p) if h.mode == HostMode::Master && p.peer.as_deref() != Some(&h.name) => c
                    .error(
                        path,
                        format!(
                            "peers must be mutual: '{peer}' has peer {}, not '{}'",
                            p.peer
                                .as_deref()
                                .map(|s| format!("'{s}'"))
                                .unwrap_or_else(|| "none".into()),
                            h.name
                        ),
                    ),
                Some(_) => {}
            },
            (HostMode::Slave, None) => {}
        }
        for (field, port) in [("mysql_port", h.mysql_port), ("agent_port", h.agent_port)] {
            if port == 0 {
                c.error(
                    format!("hosts.{}.{field}", h.name),
                    "must be a port between 1 and 65535",
                );
            }
        }
    }
}

fn validate_roles(hosts: &[Host], roles: &[Role], active: &str, c: &mut Collector) {
    let is_host = |name: &str| hosts.iter().any(|h| h.name == name);
    for r in roles {
        let p = format!("roles.{}", r.name);
        if r.hosts.is_empty() {
            c.error(format!("{p}.hosts"), "a role needs at least one host");
        }
        for (i, h) in r.hosts.iter().enumerate() {
            if !is_host(h) {
                c.error(format!("{p}.hosts[{i}]"), format!("'{h}' is not a host"));
            } else if r.hosts[..i].contains(h) {
                c.error(format!("{p}.hosts[{i}]"), format!("'{h}' is listed twice"));
            }
        }
        if r.ips.is_empty() {
            c.error(format!("{p}.ips"), "a role needs at least one IP");
        }
        if r.mode == RoleMode::Exclusive && r.ips.len() > 1 {
            c.error(
                format!("{p}.ips"),
                format!(
                    "an exclusive role needs exactly one IP, found {}",
                    r.ips.len()
                ),
            );
        }
        if let Some(prefer) = &r.prefer {
            if r.mode == RoleMode::Balanced {
                c.error(
                    format!("{p}.prefer"),
                    "prefer is only allowed for exclusive roles",
                );
            } else if !r.hosts.contains(prefer) {
                c.error(
                    format!("{p}.prefer"),
                    format!(
                        "'{prefer}' is not among the role's hosts ({})",
                        r.hosts.join(", ")
                    ),
                );
            }
        }
    }
    match roles.iter().find(|r| r.name == active) {
        None => c.error(
            "active_master_role",
            format!(
                "'{active}' is not a role (roles: {})",
                roles
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Some(r) => {
            if r.mode != RoleMode::Exclusive {
                c.error(
                    format!("roles.{active}.mode"),
                    "the active master role must be exclusive",
                );
            }
            if r.hosts.len() > 2 {
                c.error(
                    format!("roles.{active}.hosts"),
                    format!(
                        "the active master role may list at most two hosts (the two masters), found {}",
                        r.hosts.len()
                    ),
                );
            }
            for h in &r.hosts {
                if let Some(host) = hosts.iter().find(|x| &x.name == h) {
                    if host.mode != HostMode::Master {
                        c.error(
                            format!("roles.{active}.hosts"),
                            format!("'{h}' holds the active master role but its mode is slave"),
                        );
                    }
                }
            }
        }
    }
}

fn validate_ips(hosts: &[Host], roles: &[Role], c: &mut Collector) {
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    let mut note = |ip: IpAddr, path: String, c: &mut Collector| {
        if let Some(first) = seen.get(&ip) {
            c.error(path, format!("IP {ip} is already used by {first}"));
        } else {
            seen.insert(ip, path);
        }
    };
    for h in hosts {
        if h.ip.is_unspecified() || h.ip.is_multicast() {
            c.error(
                format!("hosts.{}.ip", h.name),
                format!("{} is not a host address", h.ip),
            );
        }
        note(h.ip, format!("hosts.{}.ip", h.name), c);
    }
    for r in roles {
        for (i, ip) in r.ips.iter().enumerate() {
            let path = format!("roles.{}.ips[{i}]", r.name);
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                c.error(path.clone(), format!("{ip} cannot be a virtual IP"));
            }
            note(*ip, path, c);
        }
    }
}

fn validate_checks(checks: &Checks, c: &mut Collector) {
    for kind in Check::ALL {
        let cfg = checks.get(kind);
        let p = format!("checks.{}", kind.name());
        if cfg.check_period.is_zero() {
            c.error(format!("{p}.check_period"), "must be greater than 0");
        }
        if cfg.timeout.is_zero() {
            c.error(format!("{p}.timeout"), "must be greater than 0");
        }
        if !(1..=10).contains(&cfg.attempts) {
            c.error(
                format!("{p}.attempts"),
                format!("must be between 1 and 10, got {}", cfg.attempts),
            );
        }
        if cfg.timeout > cfg.check_period && !cfg.check_period.is_zero() {
            c.error(
                format!("{p}.timeout"),
                format!(
                    "the timeout ({}) is longer than the check period ({})",
                    cfg.timeout, cfg.check_period
                ),
            );
        }
    }
}

fn validate_tls(tls: Option<&TlsSetting<MonitorTls>>, hosts: &[Host], c: &mut Collector) {
    let Some(t) = check_section(c, tls) else {
        return;
    };
    for (i, name) in t.admins.iter().enumerate() {
        check_identity(c, &format!("tls.admins[{i}]"), name);
    }
    for (i, name) in t.readers.iter().enumerate() {
        check_identity(c, &format!("tls.readers[{i}]"), name);
    }
    // Each agent's certificate is checked against its host name.
    for h in hosts {
        check_identity(c, &format!("hosts.{}", h.name), &h.name);
    }
}
