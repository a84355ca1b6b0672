//! Waiting for the cluster to converge and asserting I3 (docs/product.md §4): `impl Cluster` blocks
//! that only use the fixture's public surface.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Result};
use crate::show::Show;

impl Cluster {
    /// I2: every write the probe saw acknowledged is on `host` (the writer at the end).
    pub fn assert_no_acked_write_lost(&self, report: &ha_lab::ProbeReport, host: &str) {
        let missing = report.missing_on(&self.lab, host).expect("missing_on");
        assert!(
            missing.is_empty(),
            "I2: acknowledged rows missing on {host}: {missing:?}"
        );
    }

    /// Every host ONLINE with roles, the writer writable on the writer IP, everyone else
    /// replicating from it; hosts AWAITING_RECOVERY are set online (retried until the monitor
    /// accepts, e.g. once it reached their agents), as an operator would.
    pub fn wait_converged_patiently(&self, timeout: Duration) -> Result<Show> {
        let show = self.wait_show("every host ONLINE with roles", timeout, |s| {
            for h in &s.hosts {
                if h.state == "AWAITING_RECOVERY" && h.agent_reachable {
                    let _ = self.control(&["set_online", &h.name]);
                }
            }
            s.all_online() && s.writer().is_some() && s.readers_assigned()
        })?;
        let writer = show.writer().unwrap_or_default();
        self.wait_writer_ready(&writer, timeout)?;
        self.wait_replicating_from(&writer, timeout)?;
        self.show()
    }

    /// Polls `show` until `cond` holds (or `timeout`, then an error with the last state and
    /// the daemons' log tails).
    pub fn wait_show(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Show) -> bool,
    ) -> Result<Show> {
        let start = Instant::now();
        let mut last;
        loop {
            match self.show() {
                Ok(s) if cond(&s) => return Ok(s),
                Ok(s) => last = s.brief(),
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "timed out after {timeout:?} waiting for: {what}\nlast show: {last}\n{}",
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls an arbitrary condition on the hosts.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Cluster) -> std::result::Result<bool, String>,
    ) -> Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            match cond(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                let show = self.show().map(|s| s.brief()).unwrap_or_else(|e| e);
                return Err(format!(
                    "timed out after {timeout:?} waiting for: {what} (last error: {last})\nshow: {show}\n{}",
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every host ONLINE, readers assigned, a writer whose host is writable and holds the
    /// writer IP, every other host replicating from it.
    ///
    /// Like mysql-mmm, a monitor starting without history puts hosts in AWAITING_RECOVERY and
    /// waits for the operator; this does what the operator does on first start: `set_online`
    /// every host that is AWAITING_RECOVERY.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Show> {
        // set_online is refused while the monitor has not reached the host's agent yet.
        let first = self.wait_show(
            "the monitor answers and reaches every agent",
            timeout,
            |s| !s.hosts.is_empty() && s.hosts.iter().all(|h| h.agent_reachable),
        )?;
        for h in &first.hosts {
            if h.state == "AWAITING_RECOVERY" {
                let out = self.control(&["set_online", &h.name])?;
                if out.code != 0 {
                    return Err(format!(
                        "set_online {} failed ({}): {}{}",
                        h.name, out.code, out.stdout, out.stderr
                    ));
                }
            }
        }
        let show = self.wait_show("every host ONLINE with roles", timeout, |s| {
            s.all_online() && s.writer().is_some() && s.readers_assigned()
        })?;
        let writer = show.writer().unwrap_or_default();
        self.wait_writer_ready(&writer, timeout)?;
        self.wait_replicating_from(&writer, timeout)?;
        self.show()
    }

    /// `host` is writable, holds the writer IP, and nobody else is writable or holds it.
    pub fn wait_writer_ready(&self, host: &str, timeout: Duration) -> Result<()> {
        let vip = self.lab.writer_vip();
        self.wait_for(&format!("{host} writable on the writer IP"), timeout, |c| {
            let writable = c.lab.writable_hosts();
            let holders = c.lab.holders_of(vip).map_err(|e| e.to_string())?;
            Ok(writable == [host.to_string()] && holders == [host.to_string()])
        })
    }

    /// Every host but `writer` replicates from `writer` with both threads running.
    pub fn wait_replicating_from(&self, writer: &str, timeout: Duration) -> Result<()> {
        let others: Vec<String> = self
            .lab
            .host_names()
            .into_iter()
            .filter(|h| h != writer)
            .collect();
        self.wait_for(
            &format!("every host replicating from {writer}"),
            timeout,
            |c| {
                for h in &others {
                    match c.lab.replication(h).map_err(|e| e.to_string())? {
                        Some(r) if r.source.as_deref() == Some(writer) && r.running() => {}
                        other => return Err(format!("{h}: {other:?}")),
                    }
                }
                Ok(true)
            },
        )
    }

    /// Inserts a marker row on `writer` (as root over the socket) and waits until it exists
    /// on `host`: proof that replication towards `host` works end to end.
    pub fn assert_row_arrives(&self, writer: &str, host: &str, timeout: Duration) -> Result<()> {
        // Unique per call (a fresh `Instant`'s elapsed time is not: two markers collided).
        static MARKERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MARKERS.fetch_add(1, Ordering::Relaxed);
        let marker = format!("{writer}-{}-{n}", std::process::id());
        self.lab
            .sql(
                writer,
                &format!(
                    "CREATE TABLE IF NOT EXISTS hatest.markers (m VARCHAR(64) PRIMARY KEY); \
                     INSERT INTO hatest.markers VALUES ('{marker}')"
                ),
            )
            .map_err(|e| format!("insert marker on {writer}: {e}"))?;
        self.wait_for(
            &format!("marker row from {writer} on {host}"),
            timeout,
            |c| {
                c.lab
                    .row_exists(host, "hatest.markers", &format!("m = '{marker}'"))
                    .map_err(|e| e.to_string())
            },
        )
    }

    /// I3 (docs/product.md §4): every host ONLINE, exactly one writer (`writer`: writable, the only
    /// holder of the writer IP), every other host replicating from it (IO and SQL running, no
    /// error) and receiving a marker row, every reader IP assigned and on the host the monitor
    /// names (and only there), readers spread (with at least as many reader IPs as hosts, every
    /// host holds one). Panics with diagnostics otherwise.
    pub fn assert_converged(&self, writer: &str) -> Show {
        const T: Duration = Duration::from_secs(60);
        let readers = self.lab.reader_vips().len();
        let hosts = self.lab.host_names();
        let show = self
            .wait_show("I3: every host ONLINE, readers spread", T, |s| {
                s.all_online()
                    && s.writer().as_deref() == Some(writer)
                    && s.readers_assigned()
                    && (readers < hosts.len() || s.readers().values().all(|&n| n >= 1))
            })
            .expect("I3: states and roles");
        self.wait_writer_ready(writer, T)
            .expect("I3: one writable writer on the writer IP");
        self.wait_replicating_from(writer, T)
            .expect("I3: every replica follows the writer");
        for h in hosts.iter().filter(|h| *h != writer) {
            let st = self
                .lab
                .replication(h)
                .expect("replication status")
                .expect("a replica");
            assert!(
                st.healthy(),
                "I3: {h} replicates from {writer} with errors: {st:?}"
            );
            self.assert_row_arrives(writer, h, T)
                .unwrap_or_else(|e| panic!("I3: marker row from {writer} on {h}: {e}"));
        }
        for r in show.roles.iter().filter(|r| r.name == "reader") {
            for (ip, owner) in r.ips.iter().zip(&r.owners) {
                let Ok(ip) = ip.parse() else {
                    panic!("I3: reader IP {ip} does not parse");
                };
                self.wait_for(&format!("reader {ip} on {owner:?} only"), T, |c| {
                    let holders = c.lab.holders_of(ip).map_err(|e| e.to_string())?;
                    Ok(holders == owner.iter().cloned().collect::<Vec<_>>())
                })
                .expect("I3: reader IPs where the monitor says");
            }
        }
        show
    }
}
