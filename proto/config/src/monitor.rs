//! `monitor.yaml`: what ha-monitor (and ha-control, for the control address) reads.

mod coordination;
mod observe;
mod validate;

pub use coordination::{Coordination, EtcdCoordination, EtcdTls};

pub use observe::{HistoryConfig, Hook, HOOK_QUEUE};

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ha_core::Check;
use serde::{Deserialize, Serialize};

use crate::error::Collector;
use crate::{parse_yaml, ConfigErrors, MonitorTls, OrderedMap, Seconds, TlsSetting};
use validate::{
    validate_checks, validate_hosts, validate_ips, validate_monitor_section, validate_names,
    validate_roles, validate_tls,
};

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
    /// Prometheus `/metrics` listen address (unset: no metrics endpoint).
    pub metrics: Option<SocketAddr>,
    pub history: HistoryConfig,
    pub hooks: Vec<Hook>,
    /// Redundant monitors through etcd (`None`: one monitor, state in the status file).
    pub coordination: Option<Coordination>,
}

/// Initial monitor mode (docs/mmm-behaviour.md §6.3).
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
    /// Run `kill_host_bin` through the fencing helper listening on this Unix socket
    /// (`ha-fence.socket`, whose sandbox suits fencing tools) instead of directly; unset = run
    /// it directly.
    #[serde(default)]
    pub kill_host_socket: Option<PathBuf>,
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
    /// Refuse the automatic failover of the writer role when the active master had fallen back
    /// from semi-sync to asynchronous replication: acknowledged writes may then be missing on
    /// every candidate. An operator's `move_role writer HOST` still moves it.
    #[serde(default)]
    pub refuse_failover_after_async: bool,
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
    #[serde(default)]
    metrics: Option<SocketAddr>,
    #[serde(default)]
    history: HistoryConfig,
    #[serde(default)]
    hooks: OrderedMap<observe::RawHook>,
    #[serde(default)]
    coordination: Option<Coordination>,
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
        let hooks = observe::hooks(&raw.hooks);
        observe::validate_observe(raw.metrics, &raw.history, &hooks, &mut c);
        coordination::validate(&mut c, raw.coordination.as_ref());

        c.finish(MonitorConfig {
            active_master_role: raw.active_master_role,
            monitor: raw.monitor,
            credentials: raw.credentials,
            hosts,
            roles,
            checks,
            tls: raw.tls,
            metrics: raw.metrics,
            history: raw.history,
            hooks,
            coordination: raw.coordination,
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

    /// The etcd coordination, when configured.
    pub fn etcd(&self) -> Option<&EtcdCoordination> {
        self.coordination.as_ref().map(|c| &c.etcd)
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
