//! The converger: the single task that changes this host.
//!
//! `ApplyState` only *records* the desired state and wakes the converger; the converger runs
//! passes one at a time (state changes are serialised by construction, and ClearBadRoles takes
//! the same lock). A pass observes the host (IPs, read_only, SHOW SLAVE STATUS), asks
//! [`crate::plan::plan`] for the missing steps, executes them in order and records each
//! outcome. A pass that takes long (relay-log wait, draining in-flight writes) simply keeps
//! running after ApplyState has returned; later replies show its progress, and a new desired
//! state with a different target aborts a relay-log wait at once. Renewals of the same target
//! (new epoch, lease) never interrupt a pass.
//!
//! A pass that did not converge is retried with backoff (2 s doubling to 30 s), so a MySQL
//! server that was down is handled as soon as it is back. The writer lease is watched by its
//! own task, which fences the host on its own (see [`crate::lease::guard`]).
//!
//! The `impl Agent` is spread over the modules of this folder, one concept each:
//! `accept` (the epoch rule, recording a desired state), `persist` (the state file),
//! `outcome` (step outcomes and how they are recorded), `replication` (errant
//! transactions, re-pointing, starting and verifying replication), `promotion` (ending
//! binlog dump sessions, the relay-log sync gate, catching up over `ha_catchup`),
//! `demote` (killing connections, `read_only=1` again after the kill), `roles`
//! (ClearBadRoles) and `report` (GetStatus, GetSystemStatus). This file holds the state,
//! the converger loop and one pass.

mod accept;
mod demote;
mod outcome;
mod persist;
mod promotion;
mod replication;
mod report;
mod roles;

pub use accept::{check_epoch, Refusal};
pub(crate) use outcome::Outcome;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ha_config::AgentConfig;
use ha_proto::{HostState, OperationResult};
use tokio::sync::{watch, Notify};

use crate::desired::{Desired, Master, RoleIp};
use crate::lease::store::Store;
use crate::lease::{clock, Lease};
use crate::mysql::Db;
use crate::plan::{plan, Actual, Held, MysqlActual, Step};
use crate::remove::remove_ip;
use crate::sqltext::Thread;
use crate::status::LastErrors;
use crate::{arp, ip};

use replication::ErrantCheck;

/// First retry delay of a pass that did not converge; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) desired: Option<Desired>,
    /// Bumped by every accepted ApplyState and by lease expiry.
    pub(crate) desired_seq: u64,
    /// Bumped when the *target* changes (not for renewals): aborts waits of a running pass.
    pub(crate) target_seq: u64,
    pub(crate) max_epoch: u64,
    /// The writer lease and the role it covers. A lease keeps running when the monitor asks for
    /// the demotion: if that demotion has not finished when the lease ends (writes in flight, a
    /// server that does not answer), the expiry forces it.
    pub(crate) lease: Lease,
    /// The cluster's writer-role IPs as last told by the monitor (fenced without its word).
    pub(crate) writer_ips: Vec<std::net::Ipv4Addr>,
    /// Number of the latest state-file snapshot (an older one never overwrites a newer).
    pub(crate) persist_seq: u64,
    pub(crate) held: Held,
    active_master: String,
    operations: Vec<OperationResult>,
    last_errors: LastErrors,
    pub(crate) last_error: String,
    /// See `AgentStatus.promotion_error`.
    promotion_error: String,
    pub(crate) converged: bool,
    completed_seq: u64,
    errant: Option<ErrantCheck>,
}

/// The agent: configuration, state and the two MySQL connections.
pub struct Agent {
    pub cfg: AgentConfig,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) wake: Notify,
    pub(crate) lease_changed: Notify,
    pub(crate) target_tx: watch::Sender<u64>,
    done_tx: watch::Sender<u64>,
    apply_db: tokio::sync::Mutex<Db>,
    status_db: tokio::sync::Mutex<Db>,
    change_lock: tokio::sync::Mutex<()>,
    /// Held while the writer is granted (`read_only=0`, writer IP added) and while the lease
    /// guard fences: a fence never interleaves with a grant already under way.
    pub(crate) writer_gate: tokio::sync::Mutex<()>,
    pub(crate) status_conn_id: AtomicU64,
    /// Connection id of `apply_db` (spared by the fence, which does not wait for a running
    /// pass).
    pub(crate) apply_conn_id: AtomicU64,
    /// This boot of the host: lease tokens of other boots grant nothing.
    pub(crate) boot_id: String,
    pub(crate) store: Store,
    /// The last state-file error logged (logged once until it changes).
    store_error: Mutex<Option<String>>,
}

fn step_name(s: &Step) -> String {
    match s {
        Step::DenyWrite => "read_only=1".into(),
        Step::KillConnections => "kill connections".into(),
        Step::RemoveIp(r) => format!("remove ip {} ({})", r.ip, r.name),
        Step::StopSlave => "stop slave".into(),
        Step::StartSlave => "start slave".into(),
        Step::Repoint(m) => format!("change master to {} ({}:{})", m.name, m.ip, m.port),
        Step::CheckSource(m) => format!("check gtid history against {}", m.name),
        Step::WaitRelayLog => "relay-log sync".into(),
        Step::AllowWrite => "read_only=0".into(),
        Step::AddIp(r) => format!("add ip {} ({})", r.ip, r.name),
    }
}

impl Agent {
    pub fn new(cfg: AgentConfig) -> Arc<Agent> {
        let cfg_state_dir = cfg.state_dir.clone();
        let t = cfg.mysql_timeout.duration();
        let apply_db = Db::new(&cfg.mysql, t);
        let status_db = Db::new(&cfg.mysql, t);
        let (target_tx, _) = watch::channel(0);
        let (done_tx, _) = watch::channel(0);
        Arc::new(Agent {
            cfg,
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
            lease_changed: Notify::new(),
            target_tx,
            done_tx,
            apply_db: tokio::sync::Mutex::new(apply_db),
            status_db: tokio::sync::Mutex::new(status_db),
            change_lock: tokio::sync::Mutex::new(()),
            writer_gate: tokio::sync::Mutex::new(()),
            status_conn_id: AtomicU64::new(0),
            apply_conn_id: AtomicU64::new(0),
            boot_id: clock::boot_id(),
            store: Store::new(&cfg_state_dir),
            store_error: Mutex::new(None),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a way that matters
        // more than stopping the agent would; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Restores what the state file kept (epoch, a still valid writer lease), then starts the
    /// converger and the lease guard. A host that may be writable without a valid lease is
    /// fenced at once.
    pub fn spawn(self: &Arc<Self>) {
        let restored = self.restore();
        let a = Arc::clone(self);
        tokio::spawn(async move { a.converger().await });
        crate::lease::guard::start_watchdog(Arc::clone(self));
        if !restored {
            let a = Arc::clone(self);
            tokio::spawn(async move { a.startup_fence().await });
        }
    }

    /// Waits until the pass for `seq` completed, at most `bound`. True when it did.
    pub async fn wait_done(&self, seq: u64, bound: Duration) -> bool {
        let mut rx = self.done_tx.subscribe();
        tokio::time::timeout(bound, rx.wait_for(|done| *done >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    async fn converger(self: Arc<Self>) {
        let mut retry = RETRY_MIN;
        loop {
            let (seq, target, desired) = {
                let g = self.lock();
                (g.desired_seq, g.target_seq, g.desired.clone())
            };
            let Some(desired) = desired else {
                self.wake.notified().await;
                continue;
            };
            let converged = self.pass(&desired, target).await;
            let demoting = desired.writer().is_none() && self.lock().lease.running();
            let stopped = demoting && !converged && self.demoted_while_stopped().await;
            let demoted = {
                let mut g = self.lock();
                g.completed_seq = g.completed_seq.max(seq);
                g.converged = converged && g.desired_seq == seq;
                // The demotion the monitor asked for is complete (read_only=1 or the server
                // stopped, writer IP gone): the lease ends with it, so the monitor's next
                // reply shows no lease.
                let done = g.desired_seq == seq
                    && desired.writer().is_none()
                    && g.lease.running()
                    && (g.converged || stopped);
                if done {
                    tracing::info!(
                        "demotion complete{}: writer lease ended",
                        if g.converged {
                            ""
                        } else {
                            " (MySQL is stopped, writer IP gone)"
                        }
                    );
                    g.lease.clear();
                }
                done
            };
            if demoted {
                self.persist();
                self.lease_changed.notify_one();
            }
            self.done_tx.send_replace(seq);
            if self.lock().desired_seq != seq {
                continue; // a newer desired state arrived meanwhile
            }
            if converged {
                retry = RETRY_MIN;
                self.wake.notified().await;
            } else {
                tokio::select! {
                    _ = self.wake.notified() => retry = RETRY_MIN,
                    _ = tokio::time::sleep(retry) => retry = (retry * 2).min(RETRY_MAX),
                }
            }
        }
    }

    fn target_changed(&self, target: u64) -> bool {
        *self.target_tx.borrow() != target
    }

    /// One convergence pass. Returns true when everything is applied.
    async fn pass(&self, desired: &Desired, target: u64) -> bool {
        let _serial = self.change_lock.lock().await;
        let this = self.cfg.this.clone();
        let dev = self.cfg.cluster_interface.clone();
        {
            let mut g = self.lock();
            g.operations.clear();
        }
        let mut db = self.apply_db.lock().await;
        let mut all_ok = true;

        // Observe.
        let t = std::time::Instant::now();
        let ips = match ip::list_v4(&dev).await {
            Ok(v) => Some(v),
            Err(e) => {
                self.record("list ips", &Outcome::err(e), t.elapsed());
                all_ok = false;
                None
            }
        };
        let t = std::time::Instant::now();
        let mysql = match observe(&mut db).await {
            Ok(m) => {
                self.apply_conn_id
                    .store(db.connection_id().unwrap_or(0), Ordering::Relaxed);
                Some(m)
            }
            Err(e) => {
                self.record("read mysql state", &Outcome::err(e), t.elapsed());
                all_ok = false;
                None
            }
        };
        let held = self.lock().held.clone();
        let actual = Actual {
            ips: ips.clone(),
            mysql: mysql.clone(),
        };
        let steps = plan(desired, &held, &actual, &this);
        if !steps.is_empty() {
            tracing::debug!(?steps, "plan");
        }

        // The master this host should follow, if it should follow one: replication towards it
        // is (re)started only when this host has nothing the master lacks.
        let follow = desired
            .active_master
            .clone()
            .filter(|am| am.name != this && desired.writer().is_none());
        let follows_now = |m: &Master| {
            mysql
                .as_ref()
                .and_then(|x| x.slave.as_ref())
                .is_some_and(|s| s.is_from(&m.ip.to_string(), m.port))
        };
        // A replica of the active master whose replication broke with an error (e.g. MariaDB's
        // own reconnect after an outage ran into "out-of-order sequence number"): say why.
        let broken = mysql
            .as_ref()
            .and_then(|x| x.slave.as_ref())
            .is_some_and(|s| {
                (s.io == Thread::Stopped || s.sql == Thread::Stopped)
                    && (!s.last_io_error.is_empty() || !s.last_sql_error.is_empty())
            });
        let replication_step = steps.iter().any(|s| {
            matches!(
                s,
                Step::Repoint(_) | Step::StartSlave | Step::CheckSource(_)
            )
        });
        if let Some(am) = follow.as_ref().filter(|am| {
            !replication_step
                && broken
                && follows_now(am)
                && desired.state != HostState::AdminOffline
        }) {
            let t = std::time::Instant::now();
            match self.errant_check(&mut db, am).await {
                Ok(Some(msg)) => {
                    all_ok = false;
                    self.record_refusal("replication check", msg, t.elapsed());
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("errant-transaction check against {}: {e}", am.name),
            }
        }

        let writer_role = desired.writer_role.clone();
        let mut writer_group_failed = false;
        let mut promotion_failure: Option<String> = None;
        let mut deny_failed = false;
        let mut synced = held.writer_synced;
        let mut aborted = false;
        for step in &steps {
            let name = step_name(step);
            if self.target_changed(target) {
                aborted = true;
                self.record_skipped(
                    &name,
                    "not started: a newer desired state arrived; the next pass applies it",
                );
                break;
            }
            // Granting the writer (read_only=0, writer IP) holds the gate, and re-checks the
            // target under it: a lease expiry demoting meanwhile changed it.
            let mut gate = match step {
                Step::AllowWrite | Step::AddIp(_) if step.is_writer_add(&writer_role) => {
                    let g = self.writer_gate.lock().await;
                    if self.target_changed(target) {
                        aborted = true;
                        self.record_skipped(
                            &name,
                            "not started: a newer desired state arrived; the next pass applies it",
                        );
                        break;
                    }
                    let lease_ok =
                        desired.writer_lease_ms == 0 || self.lock().lease.valid_at(clock::now_ms());
                    if !lease_ok {
                        aborted = true;
                        self.record_skipped(
                            &name,
                            "not started: the writer lease is not valid (any more); the host stays read-only",
                        );
                        break;
                    }
                    Some(g)
                }
                _ => None,
            };
            if writer_group_failed && step.is_writer_add(&writer_role) {
                self.record_skipped(
                    &name,
                    "skipped: an earlier writer step failed, the host stays read-only",
                );
                all_ok = false;
                continue;
            }
            let t = std::time::Instant::now();
            let o = match step {
                Step::DenyWrite => {
                    let o = Outcome::from(db.deny_write().await);
                    deny_failed = !o.ok;
                    o
                }
                Step::KillConnections => {
                    let o = self.kill_connections(&mut db, deny_failed, &[]).await;
                    // read_only=1 may have been blocked by the connections just killed. When
                    // the kill failed too (server down or frozen) a retry would only delay the
                    // IP removal that follows by another timeout.
                    if deny_failed && o.ok {
                        let retry = self.deny_write_after_kill(&mut db).await;
                        if retry.ok {
                            deny_failed = false;
                        } else {
                            all_ok = false;
                        }
                    }
                    o
                }
                Step::RemoveIp(r) => remove_ip(&self.cfg, r.ip).await,
                Step::StopSlave => Outcome::from(
                    db.exec("STOP SLAVE")
                        .await
                        .map(|_| "STOP SLAVE (ADMIN_OFFLINE)".to_string()),
                ),
                Step::StartSlave => {
                    let check = match follow.as_ref().filter(|am| follows_now(am)) {
                        Some(am) => self.errant_check(&mut db, am).await.map_err(|e| {
                            format!("not starting replication from {}: could not compare GTID histories with it: {e}", am.name)
                        }),
                        None => Ok(None),
                    };
                    match check {
                        Ok(None) => {
                            let o = Outcome::from(self.start_slave(&mut db).await);
                            if let Some(am) = follow.as_ref().filter(|am| o.ok && follows_now(am)) {
                                self.verified(&am.name);
                            }
                            o
                        }
                        Ok(Some(msg)) => {
                            all_ok = false;
                            self.record_refusal(&name, msg, t.elapsed());
                            continue;
                        }
                        Err(e) => Outcome::err(e),
                    }
                }
                Step::Repoint(m) => match self.errant_check(&mut db, m).await {
                    Ok(None) => {
                        let o = Outcome::from(self.repoint(&mut db, m).await);
                        if o.ok {
                            self.lock().active_master = m.name.clone();
                            self.verified(&m.name);
                        }
                        o
                    }
                    Ok(Some(msg)) => {
                        // Not following the new master; not following a stale source either.
                        let stopped = self.stop_running_slave(&mut db).await;
                        all_ok = false;
                        self.record_refusal(&name, format!("{msg}{stopped}"), t.elapsed());
                        continue;
                    }
                    Err(e) => Outcome::err(format!(
                        "not re-pointing to {}: could not compare GTID histories with it: {e}",
                        m.name
                    )),
                },
                Step::CheckSource(m) => match self.errant_check(&mut db, m).await {
                    Ok(None) => {
                        self.verified(&m.name);
                        Outcome::ok(format!(
                            "already replicating from {}; it has every transaction this host has",
                            m.name
                        ))
                    }
                    Ok(Some(msg)) => {
                        let stopped = self.stop_running_slave(&mut db).await;
                        all_ok = false;
                        self.record_refusal(&name, format!("{msg}{stopped}"), t.elapsed());
                        continue;
                    }
                    Err(e) => Outcome::err(format!(
                        "could not compare GTID histories with {}: {e}",
                        m.name
                    )),
                },
                Step::WaitRelayLog => {
                    let r = match self.sync_gate(&mut db, target).await {
                        Ok(m) => match self.catch_up(&mut db, &desired.cluster_hosts, target).await
                        {
                            Ok(None) => Ok(m),
                            Ok(Some(c)) => Ok(format!("{m}; {c}")),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    match r {
                        Ok(m) => {
                            synced = true;
                            Outcome::ok(m)
                        }
                        Err(e) if desired.force => {
                            synced = true;
                            tracing::error!("relay-log sync failed but the request is forced: becoming writable anyway: {e}");
                            Outcome::err(format!(
                                "{e}; FORCED: becoming writable anyway (move_role --force)"
                            ))
                        }
                        Err(e) => {
                            writer_group_failed = true;
                            Outcome::err(format!("{e}; staying read-only (writer_synced=false)"))
                        }
                    }
                }
                Step::AllowWrite => {
                    let o = Outcome::from(db.allow_write().await);
                    if !o.ok {
                        writer_group_failed = true;
                    }
                    o
                }
                Step::AddIp(r) => {
                    let is_writer = step.is_writer_add(&writer_role);
                    let o = match ip::add(r.ip, &dev).await {
                        Ok(ip::Change::Done) => {
                            Outcome::ok(format!("ip -4 addr add {}/32 dev {dev}", r.ip))
                        }
                        Ok(ip::Change::AlreadyThere) => {
                            Outcome::ok(format!("{} was already present", r.ip))
                        }
                        Err(e) => Outcome::err(e),
                    };
                    drop(gate.take()); // the announcement below takes ~0.5 s
                    if o.ok {
                        self.record(&name, &o, t.elapsed());
                        let t2 = std::time::Instant::now();
                        let a = match arp::announce(&dev, r.ip).await {
                            Ok(mac) => Outcome::ok(format!(
                                "announced {} at {mac} on {dev} (request+reply, {} rounds over ~0.5 s)",
                                r.ip,
                                arp::ROUNDS
                            )),
                            Err(e) => Outcome::err(e),
                        };
                        if !a.ok {
                            all_ok = false;
                        }
                        self.record(&format!("gratuitous arp {}", r.ip), &a, t2.elapsed());
                        continue;
                    }
                    if is_writer {
                        writer_group_failed = true;
                    }
                    o
                }
            };
            if !o.ok {
                all_ok = false;
                if writer_group_failed && promotion_failure.is_none() {
                    promotion_failure = Some(format!("{name}: {}", o.message));
                }
                if matches!(step, Step::WaitRelayLog)
                    && !desired.force
                    && self.target_changed(target)
                {
                    aborted = true;
                }
            }
            self.record(&name, &o, t.elapsed());
        }
        drop(db);

        // Reconcile what is held with what is really there now.
        let ips_after = match ip::list_v4(&dev).await {
            Ok(v) => Some(v),
            Err(_) => ips,
        };
        let writer_wanted = desired.writer().cloned();
        {
            let mut g = self.lock();
            let mut held_roles: Vec<RoleIp> = Vec::new();
            if let Some(now) = &ips_after {
                let mut known: Vec<RoleIp> = desired.all_roles.clone();
                known.extend(desired.roles.iter().cloned());
                known.extend(g.held.roles.iter().cloned());
                // A role whose IP is on the interface is held (a failed removal stays visible),
                // except a wanted writer whose sync/read_only step failed: not writable, not held.
                for r in known {
                    if !now.contains(&r.ip) || held_roles.iter().any(|h| h.ip == r.ip) {
                        continue;
                    }
                    let wanted = desired.roles.contains(&r);
                    let is_writer = !writer_role.is_empty() && r.name == writer_role;
                    if wanted && is_writer && writer_group_failed {
                        continue;
                    }
                    held_roles.push(r);
                }
            }
            held_roles.sort();
            g.held.roles = held_roles;
            g.held.writer_synced = match &writer_wanted {
                None => false,
                Some(_) => synced || mysql.as_ref().is_some_and(|m| m.writable()),
            };
            if all_ok && !aborted {
                g.held.applied_state = Some(desired.state);
                g.last_error.clear();
            }
            if writer_wanted.is_none() {
                g.promotion_error.clear();
            } else if let Some(f) = promotion_failure.filter(|_| !aborted) {
                // A sync abandoned because a newer desired state arrived is not a failed
                // promotion: the next pass tries again (reporting it made the monitor give the
                // role to another host).
                g.promotion_error = f;
            } else if !aborted {
                g.promotion_error.clear();
            }
            // The master this host replicates from, when it is the desired one.
            if let (Some(am), Some(m)) = (&desired.active_master, &mysql) {
                if am.name == this {
                    g.active_master.clear();
                    g.held.verified_master = Some(this.clone());
                } else if m
                    .slave
                    .as_ref()
                    .is_some_and(|s| s.is_from(&am.ip.to_string(), am.port))
                {
                    g.active_master = am.name.clone();
                }
            }
        }
        all_ok && !aborted
    }
}

/// A duration in whole milliseconds.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads what the plan needs from MySQL.
async fn observe(db: &mut Db) -> Result<MysqlActual, String> {
    let ro = db.read_only().await?;
    let slave = db.slave_status().await?;
    Ok(MysqlActual {
        read_only: ro.read_only,
        super_read_only: ro.super_read_only,
        slave,
    })
}
