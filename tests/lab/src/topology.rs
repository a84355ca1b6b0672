//! What a lab is made of: its options, hosts and other namespaces, addresses, and the `Lab`
//! accessors that describe them.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::Lab;

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Number of MariaDB hosts, named `db1..dbN` (1–50). Default 3.
    pub db_hosts: usize,
    /// Enable semi-synchronous replication (AFTER_SYNC, no async fallback). Default true.
    pub semi_sync: bool,
    /// Set up the field-notes topology (db1 ⇄ db2, db3… ← db1) and wait until every replica's
    /// IO and SQL threads run. Default true.
    pub replication: bool,
    /// A fixed prefix (`hl` + 4 of `[0-9a-z]`, e.g. `hldemo`); default: a random free one.
    pub prefix: Option<String>,
    /// A fixed subnet `10.a.b.0/24` as `(a, b)`; default: derived from the prefix and checked
    /// against the root namespace's routes.
    pub subnet: Option<(u8, u8)>,
    /// Extra `my.cnf` lines for every host's `[mysqld]` section (later lines win).
    pub mysqld_extra: Vec<String>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            db_hosts: 3,
            semi_sync: true,
            replication: true,
            prefix: None,
            subnet: None,
            mysqld_extra: Vec::new(),
        }
    }
}

impl LabOptions {
    /// Default options with `n` DB hosts.
    pub fn hosts(n: usize) -> Self {
        LabOptions {
            db_hosts: n,
            ..Default::default()
        }
    }
}

/// A MariaDB host of the lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Host {
    /// `db1`, `db2`, …
    pub name: String,
    /// Its network namespace, `<prefix>-db1`.
    pub ns: String,
    /// Its own address on `eth0`.
    pub ip: Ipv4Addr,
    /// MAC of its `eth0`.
    pub mac: String,
    /// Root-namespace (bridge) end of its veth pair; down = cable pulled.
    pub veth: String,
    /// `server_id` (1 for db1, …).
    pub server_id: u32,
    /// MySQL port (3306).
    pub port: u16,
    /// Unix socket (root admin, usable from the root namespace).
    pub socket: PathBuf,
    /// Datadir.
    pub datadir: PathBuf,
    /// The host's directory in the lab directory (config, logs).
    pub dir: PathBuf,
    /// Its `my.cnf`.
    pub config_file: PathBuf,
    /// The server's error log.
    pub error_log: PathBuf,
}

/// A non-database namespace of the lab (`mon`, `cli`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    /// `mon` or `cli` (or a host name when obtained through [`Lab::node`]).
    pub name: String,
    /// Network namespace.
    pub ns: String,
    /// Address on `eth0`.
    pub ip: Ipv4Addr,
    /// MAC of `eth0`.
    pub mac: String,
    /// Bridge end of its veth pair.
    pub veth: String,
}
impl Lab {
    /// The lab's unique prefix (`hl3f2a`): namespaces, links and the state file start with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `10.a.b.0/24`.
    pub fn subnet_cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.subnet.0, self.subnet.1)
    }

    /// An address of the lab subnet: `10.a.b.<last>`.
    pub fn ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet.0, self.subnet.1, last)
    }

    /// Suggested writer role IP (`.160`). Nobody holds it until an agent (or
    /// [`Lab::add_ip`]) adds it.
    pub fn writer_vip(&self) -> Ipv4Addr {
        self.ip(160)
    }

    /// Suggested reader role IPs (`.161 …`, one per host).
    pub fn reader_vips(&self) -> Vec<Ipv4Addr> {
        (0..self.hosts.len())
            .map(|i| self.ip(161 + i as u8))
            .collect()
    }

    /// The lab directory (configs, logs, datadirs); removed at teardown unless `HA_LAB_KEEP=1`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bridge (root namespace, no address).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// All MariaDB hosts, in order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Names of all MariaDB hosts (`db1`, …).
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// A MariaDB host by name (`db1`) or namespace name.
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name || h.ns == name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    pub(crate) fn host_index(&self, name: &str) -> Result<usize> {
        self.hosts
            .iter()
            .position(|h| h.name == name || h.ns == name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// The monitor namespace.
    pub fn mon(&self) -> &Node {
        &self.mon
    }

    /// The client namespace.
    pub fn cli(&self) -> &Node {
        &self.cli
    }

    /// Any namespace of the lab by short name (`db1`, `mon`, `cli`) or namespace name.
    pub fn node(&self, name: &str) -> Result<Node> {
        if let Ok(h) = self.host(name) {
            return Ok(Node {
                name: h.name.clone(),
                ns: h.ns.clone(),
                ip: h.ip,
                mac: h.mac.clone(),
                veth: h.veth.clone(),
            });
        }
        [&self.mon, &self.cli]
            .into_iter()
            .find(|n| n.name == name || n.ns == name)
            .cloned()
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// All namespaces: hosts, then mon, then cli.
    pub fn nodes(&self) -> Vec<Node> {
        self.hosts
            .iter()
            .map(|h| h.name.as_str())
            .chain(["mon", "cli"])
            .filter_map(|n| self.node(n).ok())
            .collect()
    }

    /// The lab node whose `eth0` has `mac`.
    pub fn node_with_mac(&self, mac: &str) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| n.mac.eq_ignore_ascii_case(mac))
            .map(|n| n.name)
    }

    /// The lab host whose own (not role) IP is `ip`.
    pub fn host_with_ip(&self, ip: Ipv4Addr) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| n.ip == ip)
            .map(|n| n.name)
    }
}
