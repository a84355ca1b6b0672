//! Fault injection. Each method does one thing a real cluster suffers and returns once the
//! fault is in place (bounded). Processes are signalled by PID only: mariadbd through the
//! `Child` the lab holds, everything else in a namespace through `ip netns pids`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::{mariadb, netns, wait_until, Lab};

/// How long a clean mariadbd shutdown may take.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Network impairment of a node's link (`tc netem` on its `eth0`, egress).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Netem {
    /// Percentage of packets dropped (0–100).
    pub loss_percent: f64,
    /// Added one-way latency.
    pub delay: Duration,
    /// Latency variation (± jitter).
    pub jitter: Duration,
}

impl Netem {
    /// Loss only.
    pub fn loss(percent: f64) -> Self {
        Netem {
            loss_percent: percent,
            ..Default::default()
        }
    }

    /// Latency with jitter.
    pub fn delay(delay: Duration, jitter: Duration) -> Self {
        Netem {
            delay,
            jitter,
            ..Default::default()
        }
    }
}

/// Which mechanism [`Lab::netem`] used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetemBackend {
    /// The `netem` qdisc.
    Tc,
    /// nftables random drop on output (kernels without `sch_netem`; loss only).
    NftablesLoss,
}

/// Holds a replica lagging (see [`Lab::induce_lag`]); dropping it (or [`LagGuard::release`])
/// lets the replica catch up.
#[derive(Debug)]
pub struct LagGuard {
    host: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl LagGuard {
    /// The lagging host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Releases the row lock: the replica's SQL thread proceeds and catches up.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"ROLLBACK;\n");
        }
        if let Some(mut c) = self.child.take() {
            if mariadb::wait_exit(&mut c, Duration::from_secs(10), "lag lock holder to exit")
                .is_err()
            {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        Ok(())
    }
}

impl Drop for LagGuard {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

/// The nftables fallback of [`Lab::netem`]: drops `per_10k`/10000 of what leaves `eth0` —
/// only `eth0`, like the netem qdisc it replaces (loopback traffic, e.g. an agent talking to
/// its local MySQL or ha-control to the monitor, stays intact).
fn loss_rules(per_10k: u32) -> String {
    format!(
        "table inet ha_lab_loss {{
  chain output {{ type filter hook output priority -10; policy accept;
    oifname \"eth0\" numgen random mod 10000 < {per_10k} drop
  }}
}}
"
    )
}

impl Lab {
    // ----- mariadbd ---------------------------------------------------------------------

    /// Stops `host`'s mariadbd cleanly (SIGTERM, wait for exit). Its port then refuses
    /// connections. Ok if it was not running. (On a frozen host this waits for the thaw and
    /// times out: thaw first.)
    pub fn stop_mysqld(&self, host: &str) -> Result<()> {
        let i = self.host_index(host)?;
        let mut slot = self.mysqld_slot(i);
        let Some(mut child) = slot.take() else {
            return Ok(());
        };
        if child.try_wait().ok().flatten().is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        if let Err(e) = mariadb::wait_exit(
            &mut child,
            SHUTDOWN_TIMEOUT,
            &format!("mariadbd on {host} to shut down"),
        ) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(())
    }

    /// SIGKILLs `host`'s mariadbd (a crash: no clean shutdown, InnoDB recovers on start).
    pub fn kill_mysqld(&self, host: &str) -> Result<()> {
        let i = self.host_index(host)?;
        let mut slot = self.mysqld_slot(i);
        if let Some(mut child) = slot.take() {
            let _ = child.kill();
            mariadb::wait_exit(
                &mut child,
                Duration::from_secs(10),
                &format!("mariadbd on {host} to die"),
            )?;
        }
        Ok(())
    }

    /// (Re)starts `host`'s mariadbd with the same datadir and config and waits until it accepts
    /// connections. Replication resumes on its own (the replica configuration persists). No-op
    /// if it runs.
    pub fn start_mysqld(&self, host: &str) -> Result<()> {
        let i = self.host_index(host)?;
        let h = self.host(host)?;
        let mut slot = self.mysqld_slot(i);
        if let Some(c) = slot.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                return Ok(());
            }
        }
        *slot = Some(mariadb::spawn(
            &h.name,
            &h.ns,
            &h.config_file,
            &h.dir,
            &h.socket,
        )?);
        Ok(())
    }

    /// `stop_mysqld` then `start_mysqld`.
    pub fn restart_mysqld(&self, host: &str) -> Result<()> {
        self.stop_mysqld(host)?;
        self.start_mysqld(host)
    }

    // ----- whole host / link ------------------------------------------------------------

    /// "Kernel panic": SIGSTOPs every process in `node`'s namespace (mariadbd, agent, …) and
    /// takes its link down. [`Lab::thaw`] undoes it.
    pub fn freeze(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        for pid in netns::pids(&n.ns)? {
            // SAFETY: kill(2) on a process inside this lab's namespace.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        netns::set_link(&n.veth, false)
    }

    /// Brings the link back up and SIGCONTs every process in `node`'s namespace.
    pub fn thaw(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        netns::set_link(&n.veth, true)?;
        for pid in netns::pids(&n.ns)? {
            // SAFETY: kill(2) on a process inside this lab's namespace.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        Ok(())
    }

    /// Pulls `node`'s cable: its bridge-side veth goes down (the namespace keeps its addresses
    /// and sees NO-CARRIER; nothing gets in or out).
    pub fn link_down(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        netns::set_link(&n.veth, false)
    }

    /// Plugs the cable back in.
    pub fn link_up(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        netns::set_link(&n.veth, true)
    }

    /// Fences `node` as a switch-port fencing device would: its veth leaves the bridge, so
    /// nothing reaches it and it reaches nothing, whatever happens to its cable. What the
    /// lab's `kill_host_bin` ([`Lab::write_fence_script`]) does from the monitor's namespace.
    pub fn unplug_port(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        netns::set_port(&n.veth, None)
    }

    /// Undoes [`Lab::unplug_port`] (the operator re-enables the switch port).
    pub fn plug_port(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        netns::set_port(&n.veth, Some(self.bridge()))
    }

    /// Cuts `a` and `b` off from each other only (both directions), leaving each reachable by
    /// everyone else. nftables rules in `a`'s namespace drop what comes from `b` (its IP and its
    /// MAC — the MAC also covers role IPs `b` holds) and what goes to `b`'s own IP.
    pub fn cut(&self, a: &str, b: &str) -> Result<()> {
        self.drop_from(a, b, "cut", true)
    }

    /// One-way partition: `to` no longer hears `from` (what comes from `from`'s IP or MAC is
    /// dropped in `to`'s namespace), while `from` still hears `to`. Undone by [`Lab::heal`].
    pub fn deafen(&self, to: &str, from: &str) -> Result<()> {
        self.drop_from(to, from, "deaf", false)
    }

    /// Table `ha_lab_{kind}_{other}` in `at`'s namespace: drops what comes from `other`'s IP
    /// and MAC and, with `output`, what goes to its IP.
    fn drop_from(&self, at: &str, other: &str, kind: &str, output: bool) -> Result<()> {
        let n = self.node(at)?;
        let o = self.node(other)?;
        let out_chain = if output {
            format!(
                "  chain output {{ type filter hook output priority -20; policy accept;\n    ip daddr {ip} drop\n  }}\n",
                ip = o.ip
            )
        } else {
            String::new()
        };
        let rules = format!(
            "table inet ha_lab_{kind}_{name} {{
  chain input {{ type filter hook input priority -20; policy accept;
    ip saddr {ip} drop
    ether saddr {mac} drop
  }}
{out_chain}}}
",
            name = o.name,
            ip = o.ip,
            mac = o.mac,
        );
        Cmd::in_ns(&n.ns, "nft")
            .args(["-f", "-"])
            .stdin(rules)
            .run()?;
        Ok(())
    }

    /// Removes a [`Lab::cut`] or [`Lab::deafen`] between `a` and `b` (either order, either
    /// direction). Ok if there was none.
    pub fn heal(&self, a: &str, b: &str) -> Result<()> {
        let na = self.node(a)?;
        let nb = self.node(b)?;
        for (x, y) in [(&na, &nb), (&nb, &na)] {
            for table in ["cut", "deaf"] {
                let _ = Cmd::in_ns(&x.ns, "nft")
                    .args([
                        "delete",
                        "table",
                        "inet",
                        &format!("ha_lab_{table}_{}", y.name),
                    ])
                    .output()?;
            }
        }
        Ok(())
    }

    /// Impairs `node`'s link: `tc qdisc replace dev eth0 root netem loss X% delay D J`.
    /// Kernels without `sch_netem` (some VM kernels): loss falls back to an nftables random
    /// drop on output (same meaning: X% of egress packets lost); latency is then
    /// [`Error::Unsupported`].
    pub fn netem(&self, node: &str, netem: Netem) -> Result<NetemBackend> {
        let n = self.node(node)?;
        let mut args: Vec<String> = [
            "-n", &n.ns, "qdisc", "replace", "dev", "eth0", "root", "netem",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if netem.loss_percent > 0.0 {
            args.extend(["loss".into(), format!("{}%", netem.loss_percent)]);
        }
        if !netem.delay.is_zero() {
            args.extend(["delay".into(), format!("{}us", netem.delay.as_micros())]);
            if !netem.jitter.is_zero() {
                args.push(format!("{}us", netem.jitter.as_micros()));
            }
        }
        let out = Cmd::new("tc").args(args.clone()).output()?;
        if out.success() {
            return Ok(NetemBackend::Tc);
        }
        let unknown = out.stderr.contains("unknown") || out.stderr.contains("Unknown");
        if !unknown {
            return Err(Error::Command {
                cmd: format!("tc {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_string(),
            });
        }
        if !netem.delay.is_zero() {
            return Err(Error::Unsupported(format!(
                "latency needs the netem qdisc, which this kernel lacks (tc: {})",
                out.stderr.trim()
            )));
        }
        let per_10k = (netem.loss_percent * 100.0).round().clamp(0.0, 10000.0) as u32;
        let _ = Cmd::in_ns(&n.ns, "nft")
            .args(["delete", "table", "inet", "ha_lab_loss"])
            .output()?;
        let rules = loss_rules(per_10k);
        Cmd::in_ns(&n.ns, "nft")
            .args(["-f", "-"])
            .stdin(rules)
            .run()?;
        Ok(NetemBackend::NftablesLoss)
    }

    /// Removes any [`Lab::netem`] impairment of `node`. Ok if there was none.
    pub fn clear_netem(&self, node: &str) -> Result<()> {
        let n = self.node(node)?;
        let _ = Cmd::new("tc")
            .args(["-n", &n.ns, "qdisc", "del", "dev", "eth0", "root"])
            .output()?;
        let _ = Cmd::in_ns(&n.ns, "nft")
            .args(["delete", "table", "inet", "ha_lab_loss"])
            .output()?;
        Ok(())
    }

    // ----- replication ------------------------------------------------------------------

    /// `STOP SLAVE IO_THREAD` on `host`.
    pub fn stop_io_thread(&self, host: &str) -> Result<()> {
        self.sql(host, "STOP SLAVE IO_THREAD").map(|_| ())
    }

    /// `START SLAVE IO_THREAD` on `host`.
    pub fn start_io_thread(&self, host: &str) -> Result<()> {
        self.sql(host, "START SLAVE IO_THREAD").map(|_| ())
    }

    /// `STOP SLAVE SQL_THREAD` on `host`.
    pub fn stop_sql_thread(&self, host: &str) -> Result<()> {
        self.sql(host, "STOP SLAVE SQL_THREAD").map(|_| ())
    }

    /// `START SLAVE SQL_THREAD` on `host`.
    pub fn start_sql_thread(&self, host: &str) -> Result<()> {
        self.sql(host, "START SLAVE SQL_THREAD").map(|_| ())
    }

    /// `STOP SLAVE` (both threads) on `host`.
    pub fn stop_replication(&self, host: &str) -> Result<()> {
        self.sql(host, "STOP SLAVE").map(|_| ())
    }

    /// `START SLAVE` on `host`.
    pub fn start_replication(&self, host: &str) -> Result<()> {
        self.sql(host, "START SLAVE").map(|_| ())
    }

    /// Makes replica `host` lag: `Seconds_Behind_Master` rises by ~1 per second and this returns
    /// once it is ≥ `min_seconds` (bounded by `min_seconds + 30 s`). The lag holds (for minutes)
    /// until the guard is released or dropped; then the replica catches up within a second.
    ///
    /// How: a root session on `host` locks row `hatest.lag(id=1)` (`SELECT … FOR UPDATE`; no
    /// write, no GTID), then root on `host`'s source updates that row. The update replicates
    /// (and is semi-sync acknowledged, since the IO thread still runs), and the replica's SQL
    /// thread blocks on the lock while executing it, so `Seconds_Behind_Master` = now − the
    /// event's timestamp. Both threads keep reporting `Yes`. The source should be the writer
    /// (root writes on a non-writer while the writer writes could break `gtid_strict_mode`).
    pub fn induce_lag(&self, host: &str, min_seconds: u64) -> Result<LagGuard> {
        let h = self.host(host)?;
        let st = self
            .replication(host)?
            .ok_or_else(|| Error::Other(format!("induce_lag: {host} is not a replica")))?;
        let source = st.source.clone().ok_or_else(|| {
            Error::Other(format!(
                "induce_lag: {host} replicates from {} which is no lab host",
                st.master_host
            ))
        })?;
        let mut child = Command::new("mariadb")
            .args([
                "--no-defaults".to_string(),
                format!("--socket={}", h.socket.display()),
                "--user=root".into(),
                "--batch".into(),
                "--unbuffered".into(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("spawn mariadb client for lag lock", e))?;
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut guard = LagGuard {
            host: host.to_string(),
            child: Some(child),
            stdin: None,
        };
        let (tx, rx) = mpsc::channel();
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(out).read_line(&mut line);
                let _ = tx.send(line);
            });
        }
        if let Some(s) = stdin.as_mut() {
            s.write_all(b"BEGIN;\nSELECT n FROM hatest.lag WHERE id=1 FOR UPDATE;\n")
                .map_err(|e| Error::io("write to lag lock session", e))?;
        }
        guard.stdin = stdin;
        rx.recv_timeout(Duration::from_secs(15))
            .map_err(|_| Error::Timeout {
                what: format!("row lock on {host}.hatest.lag"),
                after: Duration::from_secs(15),
            })?;
        self.sql(&source, "UPDATE hatest.lag SET n = n + 1 WHERE id = 1")?;
        wait_until(
            &format!("Seconds_Behind_Master on {host} to reach {min_seconds}"),
            Duration::from_secs(min_seconds + 30),
            || {
                let st = self.replication(host)?;
                Ok(st
                    .and_then(|s| s.seconds_behind)
                    .filter(|s| *s >= min_seconds))
            },
        )?;
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::loss_rules;

    #[test]
    fn loss_fallback_drops_on_eth0_only() {
        let r = loss_rules(1000);
        assert!(
            r.contains("oifname \"eth0\" numgen random mod 10000 < 1000 drop"),
            "{r}"
        );
        assert!(r.contains("hook output"), "{r}");
    }
}
