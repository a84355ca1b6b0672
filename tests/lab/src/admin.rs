//! Lab-only administration a test would otherwise leave to ha-agent: SQL as root over the
//! socket, read_only, role IPs.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::{mariadb, Cmd, Lab};

impl Lab {
    /// Runs SQL as root over `host`'s unix socket (bounded by 15 s) and returns the rows,
    /// columns as strings (`NULL` → "NULL"). Root writes on a replica create errant GTIDs: use
    /// this for admin and for reading.
    pub fn sql(&self, host: &str, sql: &str) -> Result<Vec<Vec<String>>> {
        let h = self.host(host)?;
        mariadb::sql(&h.socket, &h.name, sql)
    }

    /// The first column of the first row of a query, if any.
    pub fn sql_value(&self, host: &str, sql: &str) -> Result<Option<String>> {
        Ok(self
            .sql(host, sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next()))
    }

    /// `SET GLOBAL read_only=0` (lab-only tests; in ha tests the agent decides).
    pub fn make_writable(&self, host: &str) -> Result<()> {
        self.sql(host, "SET GLOBAL read_only=0").map(|_| ())
    }

    /// `SET GLOBAL read_only=1`.
    pub fn make_read_only(&self, host: &str) -> Result<()> {
        self.sql(host, "SET GLOBAL read_only=1").map(|_| ())
    }

    /// Adds a (role) IP to `node`'s `eth0` and sends gratuitous ARP (lab-only tests; in ha
    /// tests the agent does this). Idempotent.
    pub fn add_ip(&self, node: &str, ip: Ipv4Addr) -> Result<()> {
        let ns = self.ip_addr(node, "add", ip, &["File exists", "already assigned"])?;
        // Unsolicited ARP so neighbours update their caches (best effort).
        // Debian's `arping` is Thomas Habets' (`-i`, `-S`), not iputils'.
        let _ = Cmd::in_ns(&ns, "arping")
            .args(["-q", "-U", "-c", "1", "-w", "1", "-i", "eth0", "-S"])
            .arg(ip.to_string())
            .arg(ip.to_string())
            .timeout(Duration::from_secs(5))
            .output();
        Ok(())
    }

    /// Removes a (role) IP from `node`'s `eth0`. Idempotent.
    pub fn del_ip(&self, node: &str, ip: Ipv4Addr) -> Result<()> {
        self.ip_addr(node, "del", ip, &["Cannot assign", "not found"])
            .map(|_| ())
    }

    /// `ip -n <ns> addr <verb> <ip>/24 dev eth0`; a failure whose message contains one of
    /// `already` (the address is already there, or already gone) counts as done. Returns the
    /// node's namespace.
    fn ip_addr(&self, node: &str, verb: &str, ip: Ipv4Addr, already: &[&str]) -> Result<String> {
        let n = self.node(node)?;
        let cidr = format!("{ip}/24");
        let out = Cmd::new("ip")
            .args(["-n", &n.ns, "addr", verb, &cidr, "dev", "eth0"])
            .output()?;
        if !out.success() && !already.iter().any(|a| out.stderr.contains(a)) {
            return Err(Error::Command {
                cmd: format!("ip -n {} addr {verb} {cidr} dev eth0", n.ns),
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(n.ns.clone())
    }
}
