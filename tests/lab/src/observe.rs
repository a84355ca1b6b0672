//! Observers: what tests assert on. All of them read state from outside the daemons under test
//! (root over the unix socket, `ip -n`, `/proc`), so a buggy agent cannot fool them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::{mariadb, netns, Lab};

/// A replica's `SHOW SLAVE STATUS`, reduced to what tests need (the full row is in `raw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Master_Host` mapped to a lab host name (`db1`), or `None` if it is no lab host's IP.
    pub source: Option<String>,
    /// `Master_Host` as configured.
    pub master_host: String,
    /// `Slave_IO_Running`: `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// `Slave_SQL_Running`: `Yes` or `No`.
    pub sql_running: String,
    /// `Last_IO_Error` (empty when none).
    pub last_io_error: String,
    /// `Last_SQL_Error` (empty when none).
    pub last_sql_error: String,
    /// `Seconds_Behind_Master` (`None` = NULL, e.g. SQL thread stopped).
    pub seconds_behind: Option<u64>,
    /// `Using_Gtid` (`Slave_Pos`, `Current_Pos` or `No`).
    pub using_gtid: String,
    /// `Gtid_IO_Pos`.
    pub gtid_io_pos: String,
    /// Every column of the row.
    pub raw: BTreeMap<String, String>,
}

impl ReplicaStatus {
    /// IO and SQL threads both `Yes`.
    pub fn running(&self) -> bool {
        self.io_running == "Yes" && self.sql_running == "Yes"
    }

    /// Running, no error, replicating by GTID.
    pub fn healthy(&self) -> bool {
        self.running()
            && self.last_io_error.is_empty()
            && self.last_sql_error.is_empty()
            && self.using_gtid != "No"
    }
}

impl Lab {
    /// `@@read_only` of `host` (error if mysqld is down or frozen).
    pub fn read_only(&self, host: &str) -> Result<bool> {
        let v = self
            .sql_value(host, "SELECT @@global.read_only")?
            .ok_or_else(|| Error::Other(format!("{host}: SELECT @@read_only returned no row")))?;
        Ok(v.trim() != "0")
    }

    /// `read_only` of every host; `None` where it cannot be read (down/frozen).
    pub fn read_only_all(&self) -> BTreeMap<String, Option<bool>> {
        self.hosts()
            .iter()
            .map(|h| (h.name.clone(), self.read_only(&h.name).ok()))
            .collect()
    }

    /// Hosts whose `read_only` is 0 (readable ones only).
    pub fn writable_hosts(&self) -> Vec<String> {
        self.read_only_all()
            .into_iter()
            .filter(|(_, ro)| *ro == Some(false))
            .map(|(h, _)| h)
            .collect()
    }

    /// IPv4 addresses on `node`'s `eth0` (its own IP plus any role IPs). Works while frozen.
    pub fn ips(&self, node: &str) -> Result<Vec<Ipv4Addr>> {
        let n = self.node(node)?;
        netns::addrs(&n.ns, "eth0")
    }

    /// Nodes whose `eth0` carries `ip` (more than one = a duplicate role IP).
    pub fn holders_of(&self, ip: Ipv4Addr) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for n in self.nodes() {
            if netns::addrs(&n.ns, "eth0")?.contains(&ip) {
                v.push(n.name);
            }
        }
        Ok(v)
    }

    /// `SHOW SLAVE STATUS` of `host`; `None` when it is not configured as a replica.
    pub fn replication(&self, host: &str) -> Result<Option<ReplicaStatus>> {
        let h = self.host(host)?;
        let rows = mariadb::sql_vertical(&h.socket, &h.name, "SHOW SLAVE STATUS")?;
        let Some(raw) = rows.into_iter().next() else {
            return Ok(None);
        };
        let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
        let master_host = get("Master_Host");
        let source = master_host
            .parse::<Ipv4Addr>()
            .ok()
            .and_then(|ip| self.hosts().iter().find(|h| h.ip == ip))
            .map(|h| h.name.clone());
        Ok(Some(ReplicaStatus {
            source,
            io_running: get("Slave_IO_Running"),
            sql_running: get("Slave_SQL_Running"),
            last_io_error: get("Last_IO_Error"),
            last_sql_error: get("Last_SQL_Error"),
            seconds_behind: get("Seconds_Behind_Master").parse().ok(),
            using_gtid: get("Using_Gtid"),
            gtid_io_pos: get("Gtid_IO_Pos"),
            master_host,
            raw,
        }))
    }

    /// `@@gtid_binlog_pos` (what this server has logged).
    pub fn gtid_binlog_pos(&self, host: &str) -> Result<String> {
        Ok(self
            .sql_value(host, "SELECT @@global.gtid_binlog_pos")?
            .unwrap_or_default())
    }

    /// `@@gtid_current_pos`.
    pub fn gtid_current_pos(&self, host: &str) -> Result<String> {
        Ok(self
            .sql_value(host, "SELECT @@global.gtid_current_pos")?
            .unwrap_or_default())
    }

    /// Waits until `host` has applied everything `source` has logged (`MASTER_GTID_WAIT`).
    pub fn wait_caught_up(&self, host: &str, source: &str, timeout: Duration) -> Result<()> {
        let pos = self.gtid_binlog_pos(source)?;
        let secs = timeout.as_secs_f64().max(0.1);
        let r = self.sql_value(
            host,
            &format!("SELECT MASTER_GTID_WAIT({}, {secs})", mariadb::quote(&pos)),
        )?;
        match r.as_deref() {
            Some("0") => Ok(()),
            _ => Err(Error::Timeout {
                what: format!("{host} to apply {source}'s GTID position {pos}"),
                after: timeout,
            }),
        }
    }

    /// `SELECT COUNT(*) FROM <table>` on `host` (table as `schema.table`).
    pub fn row_count(&self, host: &str, table: &str) -> Result<u64> {
        let v = self
            .sql_value(host, &format!("SELECT COUNT(*) FROM {table}"))?
            .unwrap_or_default();
        v.trim()
            .parse()
            .map_err(|_| Error::Other(format!("{host}: COUNT(*) FROM {table} returned `{v}`")))
    }

    /// True when `SELECT 1 FROM <table> WHERE <cond>` finds a row on `host`.
    pub fn row_exists(&self, host: &str, table: &str, cond: &str) -> Result<bool> {
        Ok(!self
            .sql(host, &format!("SELECT 1 FROM {table} WHERE {cond} LIMIT 1"))?
            .is_empty())
    }

    /// The client namespace's neighbour (ARP) entry for `ip`: the MAC, or `None` when there is
    /// no entry or it is unresolved (INCOMPLETE/FAILED).
    pub fn neighbour(&self, ip: Ipv4Addr) -> Result<Option<String>> {
        self.neighbour_from("cli", ip)
    }

    /// Like [`Lab::neighbour`] from any node.
    pub fn neighbour_from(&self, node: &str, ip: Ipv4Addr) -> Result<Option<String>> {
        let n = self.node(node)?;
        let out = Cmd::new("ip")
            .args(["-n", &n.ns, "neigh", "show", &ip.to_string()])
            .run()?;
        Ok(out.stdout.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            while let Some(w) = it.next() {
                if w == "lladdr" {
                    return it.next().map(str::to_string);
                }
            }
            None
        }))
    }

    /// Pings `ip` once from the client namespace (to make it resolve the address) and returns
    /// the resulting neighbour entry. Use [`Lab::node_with_mac`] to name the owner.
    pub fn resolve_neighbour(&self, ip: Ipv4Addr) -> Result<Option<String>> {
        let _ = self.ping("cli", ip, Duration::from_secs(1))?;
        self.neighbour(ip)
    }

    /// One ICMP echo from `node` to `ip`, waiting at most `timeout` (whole seconds, min 1).
    /// True when answered.
    pub fn ping(&self, node: &str, ip: Ipv4Addr, timeout: Duration) -> Result<bool> {
        let n = self.node(node)?;
        let w = timeout.as_secs().max(1).to_string();
        let out = Cmd::in_ns(&n.ns, "ping")
            .args(["-n", "-q", "-c", "1", "-W", &w])
            .arg(ip.to_string())
            .timeout(timeout + Duration::from_secs(5))
            .output()?;
        Ok(out.success())
    }

    /// `count` pings at `interval` from `node` to `ip`; returns the fraction lost (0.0–1.0).
    pub fn ping_loss(
        &self,
        node: &str,
        ip: Ipv4Addr,
        count: u32,
        interval: Duration,
    ) -> Result<f64> {
        let n = self.node(node)?;
        let out = Cmd::in_ns(&n.ns, "ping")
            .args(["-n", "-q", "-c", &count.to_string(), "-W", "1"])
            .args(["-i", &format!("{:.3}", interval.as_secs_f64().max(0.002))])
            .arg(ip.to_string())
            .timeout(interval * count + Duration::from_secs(10))
            .output()?;
        // "10 packets transmitted, 7 received, 30% packet loss"
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .ok_or_else(|| {
                Error::Other(format!("no ping summary: {}{}", out.stdout, out.stderr))
            })?;
        let nums: Vec<u32> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse().ok())
            .collect();
        match nums.as_slice() {
            [tx, rx, ..] if *tx > 0 => Ok(1.0 - f64::from(*rx) / f64::from(*tx)),
            _ => Err(Error::Other(format!("cannot parse ping summary `{line}`"))),
        }
    }

    /// A TCP connect from `node` to `ip:port` within `timeout` (the socket lives in `node`'s
    /// namespace). True when the handshake completed.
    pub fn tcp_connects(
        &self,
        node: &str,
        ip: Ipv4Addr,
        port: u16,
        timeout: Duration,
    ) -> Result<bool> {
        let n = self.node(node)?;
        netns::tcp_connects(&n.ns, ip, port, timeout)
    }

    /// True while `host`'s mariadbd process (started by the lab) runs (frozen counts).
    pub fn mysqld_running(&self, host: &str) -> Result<bool> {
        let i = self.host_index(host)?;
        let mut slot = self.mysqld_slot(i);
        Ok(match slot.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        })
    }

    /// PID of `host`'s mariadbd while it runs.
    pub fn mysqld_pid(&self, host: &str) -> Result<Option<u32>> {
        let i = self.host_index(host)?;
        let mut slot = self.mysqld_slot(i);
        Ok(match slot.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)).then(|| c.id()),
            None => None,
        })
    }

    /// `(pid, state)` of every process in `node`'s namespace; state is the `/proc/<pid>/stat`
    /// letter (`S` sleeping, `R` running, `T` stopped, …).
    pub fn process_states(&self, node: &str) -> Result<Vec<(i32, char)>> {
        let n = self.node(node)?;
        let mut v = Vec::new();
        for pid in netns::pids(&n.ns)? {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                if let Some(st) = s
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .and_then(|s| s.chars().next())
                {
                    v.push((pid, st));
                }
            }
        }
        Ok(v)
    }
}
