//! `agent.yaml`: what ha-agent on one MySQL host reads.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Collector;
use crate::mysql_tls::check_mysql_tls;
use crate::tls::{check_identity, check_section};
use crate::{parse_yaml, AgentTls, ConfigErrors, MysqlTls, OrderedMap, Seconds, TlsSetting};

/// How the agent reaches its local MySQL server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlEndpoint {
    #[serde(default = "localhost")]
    pub host: String,
    #[serde(default = "default_mysql_port")]
    pub port: u16,
    /// Unix socket; used instead of host/port when set.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// TLS of this account's connections (absent: plaintext).
    #[serde(default)]
    pub tls: Option<MysqlTls>,
}

/// Account replicas use when re-pointed to a new master.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationCredentials {
    pub user: String,
    #[serde(default)]
    pub password: String,
    /// TLS of replication (CHANGE MASTER ... MASTER_SSL) and of the agent's reads of other
    /// hosts' GTID state with this account (absent: plaintext).
    #[serde(default)]
    pub tls: Option<MysqlTls>,
}

/// The whole agent configuration, validated.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This host's name as in monitor.yaml.
    pub this: String,
    /// The host's own IP and the agent port; the agent binds here only.
    pub listen: SocketAddr,
    /// Interface that role IPs are added to / removed from.
    pub cluster_interface: String,
    /// Every role IP this host may ever hold: the IPs of each monitor.yaml role that lists this
    /// host (may be empty). The agent refuses to add any other address and only ever removes
    /// addresses listed here.
    pub role_ips: Vec<Ipv4Addr>,
    /// The cluster's MySQL hosts as in monitor.yaml: name → MySQL `IP:PORT`. The only
    /// replication sources the agent accepts; must contain `this`.
    pub cluster_hosts: OrderedMap<SocketAddr>,
    pub mysql: MysqlEndpoint,
    pub replication: ReplicationCredentials,
    #[serde(default = "default_kill_retries")]
    pub max_kill_retries: u32,
    /// Deadline of one MySQL connect or statement.
    #[serde(default = "secs::<5>")]
    pub mysql_timeout: Seconds,
    /// Deadline of the relay-log wait before a promotion.
    #[serde(default = "secs::<30>")]
    pub sync_timeout: Seconds,
    /// Deadline for IO and SQL threads to run after a re-point.
    #[serde(default = "secs::<10>")]
    pub repoint_timeout: Seconds,
    /// Where the agent keeps what must survive its restart: the highest epoch applied and the
    /// running writer lease (crate ha-lease). Must be on persistent storage.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How long fencing (writer IP removed, client connections killed, read_only=1) may take.
    /// The agent starts fencing this long before its writer lease ends and reports it to the
    /// monitor, whose wait for a silent writer includes it.
    #[serde(default = "default_fence_budget")]
    pub fence_budget: Seconds,
    /// MySQL users whose connections are never killed when the host stops being the writer
    /// (the monitor's check account, so fencing does not make its checks fail). Their accounts
    /// must not be able to write.
    #[serde(default)]
    pub spare_users: Vec<String>,
    /// Mutual TLS on the agent port; required (`off` for plaintext).
    #[serde(default)]
    pub tls: Option<TlsSetting<AgentTls>>,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/ha")
}
fn default_fence_budget() -> Seconds {
    Seconds::from_millis(250)
}

fn localhost() -> String {
    "127.0.0.1".into()
}
/// The longest an orderly demotion may wait for in-flight writes, in one-second rounds: the
/// writer role is withheld from every other host meanwhile.
pub const MAX_KILL_RETRIES: u32 = 600;

fn default_mysql_port() -> u16 {
    3306
}
fn default_kill_retries() -> u32 {
    10
}
fn secs<const N: u64>() -> Seconds {
    Seconds::from_secs(N)
}

impl AgentConfig {
    /// The TLS material, `None` when the file says `tls: off`.
    pub fn tls_on(&self) -> Option<&AgentTls> {
        self.tls.as_ref().and_then(TlsSetting::on)
    }

    /// Parses and validates `text`; `file` names the source in error messages.
    pub fn parse(text: &str, file: &str) -> Result<AgentConfig, ConfigErrors> {
        let cfg: AgentConfig = parse_yaml(text, file)?;
        let mut c = Collector::new(file);
        if cfg.this.is_empty() {
            c.error("this", "must name this host");
        }
        if cfg.listen.ip().is_unspecified() {
            c.error(
                "listen",
                "must be the host's own IP (as in monitor.yaml), not a wildcard address",
            );
        }
        if cfg.listen.port() == 0 {
            c.error("listen", "needs a port (default agent port is 9989)");
        }
        if cfg.cluster_interface.is_empty() {
            c.error("cluster_interface", "must name the interface for role IPs");
        }
        if cfg.max_kill_retries > MAX_KILL_RETRIES {
            c.error(
                "max_kill_retries",
                format!(
                    "at most {MAX_KILL_RETRIES} (one-second rounds an orderly demotion waits for in-flight writes)"
                ),
            );
        }
        if cfg.mysql.user.is_empty() {
            c.error("mysql.user", "must not be empty");
        }
        if cfg.replication.user.is_empty() {
            c.error("replication.user", "must not be empty");
        }
        check_mysql_tls(&mut c, "mysql.tls", cfg.mysql.tls.as_ref());
        check_mysql_tls(&mut c, "replication.tls", cfg.replication.tls.as_ref());
        for (field, v) in [
            ("mysql_timeout", cfg.mysql_timeout),
            ("sync_timeout", cfg.sync_timeout),
            ("repoint_timeout", cfg.repoint_timeout),
        ] {
            if v.is_zero() {
                c.error(field, "must be greater than 0");
            }
        }
        let budget = cfg.fence_budget.duration();
        let max = std::time::Duration::from_millis(ha_lease::MAX_FENCE_BUDGET_MS);
        if budget < std::time::Duration::from_millis(10) || budget > max {
            c.error(
                "fence_budget",
                format!(
                    "must be between 0.01 and {} seconds (the monitor waits this much longer for a silent writer)",
                    max.as_secs_f64()
                ),
            );
        }
        if cfg.state_dir.as_os_str().is_empty() || cfg.state_dir.is_relative() {
            c.error("state_dir", "must be an absolute directory path");
        }
        validate_role_ips(&cfg, &mut c);
        validate_cluster_hosts(&cfg, &mut c);
        if let Some(t) = check_section(&mut c, cfg.tls.as_ref()) {
            check_identity(&mut c, "tls.monitor_identity", &t.monitor_identity);
            check_identity(&mut c, "this", &cfg.this);
        }
        for u in &cfg.spare_users {
            if u.trim().is_empty() {
                c.error("spare_users", "must not contain an empty user name");
            }
        }
        c.finish(cfg)
    }
}

/// `role_ips`: usable unicast IPv4 addresses, each once, never the host's own (`listen`) IP.
fn validate_role_ips(cfg: &AgentConfig, c: &mut Collector) {
    let mut seen = HashSet::new();
    for ip in &cfg.role_ips {
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            c.error("role_ips", format!("{ip} cannot be a role address"));
        }
        if !seen.insert(*ip) {
            c.error("role_ips", format!("{ip} is listed twice"));
        }
        if std::net::IpAddr::V4(*ip) == cfg.listen.ip() {
            c.error(
                "role_ips",
                format!("{ip} is the host's own address (listen); it must never be a role IP"),
            );
        }
    }
}

/// `cluster_hosts`: non-empty names, IPv4 MySQL addresses with a port, and `this` among them.
fn validate_cluster_hosts(cfg: &AgentConfig, c: &mut Collector) {
    for (name, addr) in cfg.cluster_hosts.iter() {
        if name.trim().is_empty() {
            c.error("cluster_hosts", "a host has an empty name");
        }
        let field = format!("cluster_hosts.{name}");
        if !addr.is_ipv4() {
            c.error(
                &field,
                format!("{addr} is not an IPv4 address (expected IP:PORT)"),
            );
        }
        if addr.ip().is_unspecified() {
            c.error(&field, "must be the host's MySQL address, not a wildcard");
        }
        if addr.port() == 0 {
            c.error(&field, "needs the MySQL port (e.g. 3306)");
        }
    }
    if !cfg.this.is_empty() && cfg.cluster_hosts.get(&cfg.this).is_none() {
        c.error(
            "cluster_hosts",
            format!(
                "must contain this host ({:?}) with its MySQL address",
                cfg.this
            ),
        );
    }
}
