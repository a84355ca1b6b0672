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
    /// More non-database namespaces, by short name (1–6 of `[a-z0-9]`, at most
    /// [`MAX_EXTRA_NODES`]), addressed `.20, .21, …` in list order: etcd members (`etcd1`…) and
    /// more monitors (`mon2`…) for the redundant-monitor tests. Default none.
    pub extra_nodes: Vec<String>,
}

/// How many [`LabOptions::extra_nodes`] a lab can have (addresses `.20`–`.29`).
pub const MAX_EXTRA_NODES: usize = 10;

/// Checks [`LabOptions::extra_nodes`]: short (the bridge-side veth name is
/// `<prefix>-<name>-h`, and Linux allows 15 characters), lower-case alphanumeric, unique, and
/// not a built-in node's name.
pub(crate) fn check_extra_nodes(names: &[String], db_hosts: usize) -> Result<()> {
    if names.len() > MAX_EXTRA_NODES {
        return Err(Error::Other(format!(
            "at most {MAX_EXTRA_NODES} extra nodes, got {}",
            names.len()
        )));
    }
    for (i, n) in names.iter().enumerate() {
        let ok = (1..=6).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(Error::Other(format!(
                "extra node name `{n}`: use 1-6 of [a-z0-9] (it becomes part of a 15-character link name)"
            )));
        }
        let builtin = n == "mon" || n == "cli" || (1..=db_hosts).any(|k| *n == format!("db{k}"));
        if builtin || names[..i].contains(n) {
            return Err(Error::Other(format!(
                "extra node name `{n}` is taken (db1..db{db_hosts}, mon, cli and earlier extras)"
            )));
        }
    }
    Ok(())
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
            extra_nodes: Vec::new(),
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

/// A non-database namespace of the lab (`mon`, `cli`, and any [`LabOptions::extra_nodes`]).
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

    /// The extra namespaces ([`LabOptions::extra_nodes`]), in the order asked for.
    pub fn extra_nodes(&self) -> &[Node] {
        &self.extra
    }

    /// Any namespace of the lab by short name (`db1`, `mon`, `cli`, an extra node) or
    /// namespace name.
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
            .chain(&self.extra)
            .find(|n| n.name == name || n.ns == name)
            .cloned()
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// All namespaces: hosts, then mon, then cli, then the extra nodes.
    pub fn nodes(&self) -> Vec<Node> {
        self.hosts
            .iter()
            .map(|h| h.name.as_str())
            .chain(["mon", "cli"])
            .chain(self.extra.iter().map(|n| n.name.as_str()))
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

#[cfg(test)]
mod tests {
    use super::check_extra_nodes;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn extra_node_names_are_short_unique_and_not_built_in() {
        assert!(check_extra_nodes(&names(&["etcd1", "etcd2", "mon2"]), 3).is_ok());
        assert!(check_extra_nodes(&[], 3).is_ok());
        for bad in [
            &["etcd-1"][..],                                          // not [a-z0-9]
            &["monitor2"], // too long for `<prefix>-<name>-h`
            &[""],         // empty
            &["mon"],      // built in
            &["db3"],      // a DB host
            &["e1", "e1"], // twice
            &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"], // more than 10
        ] {
            assert!(check_extra_nodes(&names(bad), 3).is_err(), "{bad:?}");
        }
        assert!(
            check_extra_nodes(&names(&["db4"]), 3).is_ok(),
            "db4 is free with 3 hosts"
        );
    }
}
