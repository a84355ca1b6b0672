//! The lease guard: the task that fences this host when its writer lease runs out, on its own,
//! whatever the converger is doing, and the fence itself.
//!
//! **Why it does not wait for the converger.** The monitor makes another host writable once
//! this agent's lease surely ended (crate ha-lease: last acknowledgement + lease + this agent's
//! fence budget). A converger pass may be stuck on a server that does not answer, and on an
//! isolated master a commit waiting for a semi-sync ACK makes `SET GLOBAL read_only = 1` wait
//! behind it. So the guard starts fencing `fence_budget` before the lease ends and does it in
//! this order:
//!
//! 1. the writer IP goes (no MySQL involved: clients cannot reach the server through it);
//! 2. on two fresh connections: `SET GLOBAL read_only = 1` is sent first and not waited for —
//!    while it waits for its lock it already holds back every new write and commit — and on the
//!    other connection every client connection is killed with `KILL CONNECTION` (replication
//!    threads, the agent's own connections and `spare_users` are spared), again every 5 ms
//!    until `read_only = 1` returned: a commit that started between a listing and the lock would
//!    otherwise hold it for ever. The kill releases commits blocked on the ACK; those clients
//!    lose their connection, never get an OK (`KILL QUERY` would let the commit report OK);
//! 3. `read_only = 1` once more if it failed before the kill.
//!
//! Measured on MariaDB 10.11 with three commits blocked on the ACK: read_only=1 in place
//! 4–9 ms after the fence starts, also right after a thaw. A killed commit stays committed in
//! the old master's binlog (AFTER_SYNC): never acknowledged, it is an errant transaction the
//! agent refuses to replicate over when the host returns (see `crate::gtid`).
//!
//! A fence that takes longer than the budget is logged as an error (the monitor's bound
//! assumed the budget). The converger's next pass finishes the rest (reader IPs, replication).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Agent, Kills, Outcome};
use crate::lease::clock;
use crate::mysql::Db;
use crate::remove::remove_ip;

/// The longest the guard sleeps before it re-reads the lease clock (see
/// [`clock::sleep_towards`]).
const WATCH_CAP: Duration = Duration::from_millis(100);

/// Pause between kill rounds while `read_only = 1` waits for its lock.
const KILL_AGAIN: Duration = Duration::from_millis(5);

/// Starts [`Agent::lease_watchdog`] on a thread of its own with its own single-threaded tokio
/// runtime: however busy the daemon's runtime is with requests (or blocked by a slow state-file
/// write), the lease guard's timer still fires and the fence runs on its own connections. It
/// shares only short critical sections with the rest (the state lock, and the writer gate a
/// grant holds while it runs). Falls back to a task on the daemon's runtime, with an error
/// logged, if the thread or its runtime cannot be created.
pub(crate) fn start_watchdog(agent: Arc<Agent>) {
    let fallback = tokio::runtime::Handle::try_current().ok();
    let a = Arc::clone(&agent);
    let f = fallback.clone();
    let spawned = std::thread::Builder::new()
        .name("ha-lease-guard".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(a.lease_watchdog()),
                Err(e) => {
                    tracing::error!("cannot start the lease guard's own runtime ({e}); running it on the daemon's runtime");
                    if let Some(h) = f {
                        drop(h.spawn(a.lease_watchdog()));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(
            "cannot start the lease guard's thread ({e}); running it on the daemon's runtime"
        );
        match fallback {
            Some(h) => drop(h.spawn(agent.lease_watchdog())),
            None => tracing::error!(
                "no runtime to run the lease guard on: the writer lease is not enforced"
            ),
        }
    }
}

impl Agent {
    /// Waits for the fence instant of the running lease and fences then. Runs for the
    /// lifetime of the agent.
    ///
    /// Feeds systemd's watchdog on every iteration (`WatchdogSec=`): a guard that hangs gets
    /// the agent restarted, and a restarted agent without a valid lease fences at once.
    pub(crate) async fn lease_watchdog(self: Arc<Self>) {
        let mut systemd = ha_proto::systemd::Watchdog::from_env();
        loop {
            systemd.pet();
            let fence_at = self.lock().lease.deadline().map(|d| d.fence_at_ms);
            let Some(at) = fence_at else {
                match systemd.interval() {
                    Some(every) => {
                        tokio::select! {
                            _ = self.lease_changed.notified() => {}
                            _ = tokio::time::sleep(every) => {}
                        }
                    }
                    None => self.lease_changed.notified().await,
                }
                continue;
            };
            let now = clock::now_ms();
            if now >= at {
                if let Some(ips) = self.expire_lease_if_due(now) {
                    self.fence_now(&ips, "writer lease expired").await;
                }
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(clock::sleep_towards(at, now, WATCH_CAP)) => {}
                _ = self.lease_changed.notified() => {}
            }
        }
    }

    /// Ends a lease that is due. Returns the IPs to fence: the lease's writer IP, when the
    /// desired state still wanted the writer (the monitor went silent; it loses the role, so no
    /// pass grants it again), or the monitor asked for the demotion but it has not finished, or
    /// no desired state arrived since the agent restarted.
    fn expire_lease_if_due(&self, now: u64) -> Option<Vec<Ipv4Addr>> {
        let mut g = self.lock();
        if !g.lease.due(now) {
            return None;
        }
        let len = g.lease.length_ms();
        let adopted = g.lease.adopting();
        let role = g.lease.role().cloned();
        g.lease.clear();
        if adopted {
            // While adopting, a writer request without a usable grant is not recorded (accept),
            // so no desired state here wants the writer: nothing grants it again.
            tracing::error!(
                "the adoption ended after {len} ms without a writer grant from the monitor: fencing (kill client connections, read_only=1)"
            );
            g.last_error =
                format!("adopted writer: no writer grant from the monitor within {len} ms; fenced");
            let ips = g.writer_ips.clone();
            drop(g);
            let _ = self.persist(); // an error is logged
            self.wake.notify_one();
            return Some(ips);
        }
        let role = role?;
        let fence = match g.desired.clone() {
            None => {
                tracing::error!(
                    role = %role,
                    "writer lease restored at start-up expired with no word from the monitor; fencing (remove {}, kill client connections, read_only=1)",
                    role.ip
                );
                g.last_error =
                    format!("writer lease expired after {len} ms without renewal; fenced");
                true
            }
            Some(d) if d.writer().is_none() => {
                let unfinished = !g.converged || g.held.roles.iter().any(|r| r.ip == role.ip);
                if unfinished {
                    tracing::error!(
                        role = %role,
                        "writer lease expired while the demotion the monitor asked for is still under way; forcing it now (remove {}, kill client connections, read_only=1)",
                        role.ip
                    );
                    g.last_error =
                        format!("writer lease expired after {len} ms during the demotion; forced");
                }
                unfinished
            }
            Some(d) => {
                tracing::error!(
                    role = %role,
                    "writer lease expired: no renewal from the monitor within {len} ms; fencing to protect against two writers (remove {}, kill client connections, read_only=1)",
                    role.ip
                );
                g.desired = Some(d.without_writer());
                g.desired_seq += 1;
                g.converged = false;
                g.target_seq += 1;
                self.target_tx.send_replace(g.target_seq);
                g.last_error =
                    format!("writer lease expired after {len} ms without renewal; fenced");
                true
            }
        };
        drop(g);
        let _ = self.persist(); // an error is logged
        self.wake.notify_one();
        fence.then(|| vec![role.ip])
    }

    /// Fences the host now: the `ips` go first, then `read_only=1` while every client connection
    /// is killed (see the module docs). Holds the writer gate, so it never interleaves with a
    /// grant under way.
    pub(crate) async fn fence_now(&self, ips: &[Ipv4Addr], why: &str) {
        let _gate = self.writer_gate.lock().await;
        let started = std::time::Instant::now();
        for ip in ips {
            let t = std::time::Instant::now();
            let o = remove_ip(&self.cfg, *ip).await;
            self.record(&format!("fence: remove ip {ip}"), &o, t.elapsed());
        }

        let timeout = self.cfg.mysql_timeout.duration();
        let mut deny_db = Db::new(&self.cfg.mysql, timeout);
        let mut kill_db = Db::new(&self.cfg.mysql, timeout);
        let t = std::time::Instant::now();
        let (deny_conn, kill_conn) = tokio::join!(deny_db.ping(), kill_db.ping());
        let mut spare: Vec<u64> = deny_db.connection_id().into_iter().collect();
        spare.extend(kill_db.connection_id());
        spare.push(self.apply_conn_id.load(Ordering::Relaxed));
        let denied = AtomicBool::new(false);
        // Polled first by join!: read_only=1 is on the wire before the first kill.
        let deny = async {
            let r = match deny_conn {
                Ok(()) => deny_db.deny_write().await,
                Err(e) => Err(e),
            };
            denied.store(true, Ordering::Release);
            r
        };
        let kill = async {
            if let Err(e) = kill_conn {
                return Outcome::err(format!("cannot connect to kill client connections: {e}"));
            }
            let mut rounds = 0u32;
            let mut all = Kills::default();
            loop {
                rounds += 1;
                match self.kill_connections(&mut kill_db, true, &spare).await {
                    Ok(k) if k.failures.is_empty() => all.merge(k),
                    r => return Kills::outcome(r),
                }
                if denied.load(Ordering::Acquire) || t.elapsed() >= timeout {
                    break;
                }
                tokio::time::sleep(KILL_AGAIN).await;
            }
            let o = Kills::outcome(Ok(all));
            Outcome::ok(format!("{} ({rounds} round(s))", o.message))
        };
        let (deny, kill) = tokio::join!(deny, kill);
        let deny = Outcome::from(deny);
        self.record("fence: read_only=1", &deny, t.elapsed());
        self.record("fence: kill connections", &kill, t.elapsed());
        if !deny.ok && kill.ok {
            let t = std::time::Instant::now();
            let retry = Outcome::from(deny_db.deny_write().await);
            self.record("fence: read_only=1 (retry after kill)", &retry, t.elapsed());
        }
        let took = started.elapsed();
        let budget = self.cfg.fence_budget.duration();
        if took > budget {
            tracing::error!(
                "fence ({why}) took {} ms, more than fence_budget {} ms: the monitor may have made another host writable before this one was fenced; raise fence_budget",
                took.as_millis(),
                budget.as_millis()
            );
        } else {
            tracing::info!("fence ({why}) done in {} ms", took.as_millis());
        }
    }

    /// Adopts the writable server (`crate::lease::adopt`): a lease without a role for
    /// [`ha_lease::ADOPT_WINDOW_MS`], on disk before it counts, watched by the lease guard.
    /// False when a lease runs already (the monitor was faster: its word stands).
    fn begin_adoption(&self) -> bool {
        let now = clock::now_ms();
        {
            let mut g = self.lock();
            if g.lease.running() || g.desired.is_some() {
                return false;
            }
            let window = ha_lease::ADOPT_WINDOW_MS;
            let budget = u64::try_from(self.cfg.fence_budget.duration().as_millis()).unwrap_or(0);
            g.lease
                .adopt(ha_lease::AgentDeadline::new(now, window, budget), window);
        }
        let _ = self.persist(); // an error is logged
        self.lease_changed.notify_one();
        tracing::warn!(
            "adopting the writable server: it stays writable, without a grant from the monitor, for at most {} s; it is fenced then unless ha-monitor has granted this host the writer role (start ha-monitor now)",
            ha_lease::ADOPT_WINDOW_MS / 1000
        );
        true
    }

    /// After a pass that could not finish a demotion: is the server stopped (nothing listens)
    /// with no writer IP on the interface? False when the interface cannot be listed. The
    /// decision that this completes the demotion is [`crate::plan::demotion_complete`].
    pub(crate) async fn stopped_without_writer_ip(&self) -> bool {
        let dev = &self.cfg.cluster_interface;
        let writer_ips = self.lock().writer_ips.clone();
        let Ok(present) = crate::ip::list_v4(dev).await else {
            return false;
        };
        if writer_ips.iter().any(|ip| present.contains(ip)) {
            return false;
        }
        crate::mysql::server_stopped(&self.cfg.mysql, self.cfg.mysql_timeout.duration()).await
    }

    /// At start-up without a valid lease: a host that is writable or holds a writer IP was
    /// left so by an earlier run (its lease is over, or unknown): fence it before anything else.
    /// Skipped if the monitor granted a valid lease meanwhile. With `adopt` (the operator's
    /// one-time permission, `crate::lease::adopt`) a writable server is adopted instead.
    pub(crate) async fn startup_fence(self: Arc<Self>, adopt: bool) {
        let dev = self.cfg.cluster_interface.clone();
        let writer_ips = self.lock().writer_ips.clone();
        let present: Vec<Ipv4Addr> = match crate::ip::list_v4(&dev).await {
            Ok(v) => writer_ips.into_iter().filter(|ip| v.contains(ip)).collect(),
            Err(e) => {
                tracing::warn!("start-up check: cannot list the IPs on {dev}: {e}");
                writer_ips
            }
        };
        let mut db = Db::new(&self.cfg.mysql, self.cfg.mysql_timeout.duration());
        let writable = match db.read_only().await {
            Ok(ro) => !ro.read_only,
            Err(e) => {
                tracing::warn!(
                    "start-up check: cannot read read_only ({e}); removing writer IPs only. The converger sets read_only=1 once MySQL answers (my.cnf must start it with read_only=1)"
                );
                false
            }
        };
        if present.is_empty() && !writable {
            if adopt {
                tracing::warn!("adoption permitted, but this host is not writable: nothing to adopt (the permission is used up)");
            }
            return;
        }
        if adopt && writable && self.begin_adoption() {
            return;
        }
        if self.lock().lease.valid_at(clock::now_ms()) {
            return; // the monitor granted a lease meanwhile
        }
        tracing::error!(
            "this host is {} without a valid writer lease (this agent restarted after its lease ended, or its state file was lost): fencing now",
            match (writable, present.is_empty()) {
                (true, false) => "writable and holds a writer IP",
                (true, true) => "writable",
                _ => "holding a writer IP",
            }
        );
        self.fence_now(&present, "start-up without a valid lease")
            .await;
    }
}
