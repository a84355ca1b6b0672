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

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ha_config::AgentConfig;
use ha_proto::{
    AgentStatus, HostState, OperationResult, ReplicationStatus, SystemStatus, ThreadState,
};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::desired::{Desired, Master, RoleIp};
use crate::lease::store::{Persisted, Store};
use crate::lease::{clock, Lease};
use crate::master_ssl::master_ssl_clause;
use crate::mysql::{Db, Flavor};
use crate::plan::{plan, Actual, Held, MysqlActual, Step};
use crate::remove::remove_ip;
use crate::sqltext::{self, quote, KillDecision, SlaveStatus, Thread};
use crate::status::{op, LastErrors};
use crate::{arp, gtid, ip, uptime};

/// First retry delay of a pass that did not converge; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Poll interval while waiting for replication threads to run.
const THREAD_POLL: Duration = Duration::from_millis(250);
/// How long an errant-transaction finding is reused (same master, same local GTID state)
/// before the master is asked again: passes run on every ApplyState (every agent_period).
const ERRANT_CACHE: Duration = Duration::from_secs(5);

/// The temporary named replication connection a promotion catches up over (MariaDB
/// multi-source): the default connection is left as it is.
const CATCH_UP_CONNECTION: &str = "ha_catchup";

/// Bound of asking one other host for its GTID state during a promotion: an unreachable host
/// must not hold the promotion up for long.
const CATCH_UP_PROBE: Duration = Duration::from_secs(1);

/// Why an ApplyState was refused before anything was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    StaleEpoch {
        got: u64,
        highest: u64,
    },
    /// An epoch absurdly far above the highest applied one (corrupt or hostile): accepting it
    /// would lock the real monitor out.
    AbsurdEpoch {
        got: u64,
        highest: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::StaleEpoch { got, highest } => write!(
                f,
                "stale epoch {got} < {highest}: a stale monitor must not win (this agent holds epoch {highest})"
            ),
            Refusal::AbsurdEpoch { got, highest } => write!(
                f,
                "epoch {got} is absurdly far above the {highest} this agent holds (more than {} ahead); refused",
                ha_lease::EPOCH_JUMP_LIMIT
            ),
        }
    }
}

/// Pure epoch rule: an epoch older than the highest applied one is refused; equal is a re-send;
/// an absurd jump is refused too (crate ha-lease, `plausible_epoch`).
pub fn check_epoch(got: u64, highest: u64) -> Result<(), Refusal> {
    if got < highest {
        Err(Refusal::StaleEpoch { got, highest })
    } else if !ha_lease::plausible_epoch(highest, got) {
        Err(Refusal::AbsurdEpoch { got, highest })
    } else {
        Ok(())
    }
}

/// The last errant-transaction check (see [`crate::gtid`]).
#[derive(Debug, Clone)]
struct ErrantCheck {
    master: String,
    local_state: String,
    at: Instant,
    finding: Option<String>,
}

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

/// Outcome of one executed step.
pub(crate) struct Outcome {
    pub(crate) ok: bool,
    pub(crate) message: String,
}

impl Outcome {
    pub(crate) fn ok(m: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            message: m.into(),
        }
    }
    pub(crate) fn err(m: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            message: m.into(),
        }
    }
    pub(crate) fn from(r: Result<String, String>) -> Outcome {
        match r {
            Ok(m) => Outcome::ok(m),
            Err(e) => Outcome::err(e),
        }
    }
}

fn thread_state(t: Thread) -> ThreadState {
    match t {
        Thread::Running => ThreadState::Running,
        Thread::Connecting => ThreadState::Connecting,
        Thread::Stopped => ThreadState::Stopped,
    }
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

    /// Loads the state file. Returns whether a valid writer lease was restored.
    fn restore(&self) -> bool {
        let stored = match self.store.load() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}; starting without a stored epoch or lease (the host is fenced if it is writable)");
                None
            }
        };
        let Some(st) = stored else {
            return false;
        };
        let now = clock::now_ms();
        let mut g = self.lock();
        g.max_epoch = st.epoch;
        g.writer_ips = st.writer_ips.clone();
        if let Some(r) = st.lease.role() {
            if !g.writer_ips.contains(&r.ip) {
                g.writer_ips.push(r.ip);
            }
        }
        let valid = st.boot_id == self.boot_id && st.lease.valid_at(now);
        if valid {
            tracing::info!(
                epoch = st.epoch,
                "restored the writer lease of {} from {}: {} ms left until fencing",
                st.lease.role().map(|r| r.to_string()).unwrap_or_default(),
                self.store.path().display(),
                st.lease.remaining_ms(now)
            );
            g.lease = st.lease;
        } else {
            if st.lease.running() {
                tracing::warn!(
                    "the writer lease in {} is over (or from another boot): fencing if this host is writable",
                    self.store.path().display()
                );
            }
            tracing::info!(
                epoch = st.epoch,
                "restored epoch {} from {}",
                st.epoch,
                self.store.path().display()
            );
        }
        valid
    }

    /// Writes the state file (epoch, lease, writer IPs) as it is now.
    pub(crate) fn persist(&self) {
        let (seq, snapshot) = {
            let mut g = self.lock();
            g.persist_seq += 1;
            (
                g.persist_seq,
                Persisted {
                    boot_id: self.boot_id.clone(),
                    epoch: g.max_epoch,
                    lease: g.lease.clone(),
                    writer_ips: g.writer_ips.clone(),
                },
            )
        };
        let result = self.store.save(seq, &snapshot);
        let mut last = self.store_error.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                if last.take().is_some() {
                    tracing::info!(
                        "agent state file {} written again",
                        self.store.path().display()
                    );
                }
            }
            Err(e) => {
                if last.as_deref() != Some(e.as_str()) {
                    tracing::error!("{e}; a restart of this agent would lose its epoch and lease (and fence the host if it is writable)");
                }
                *last = Some(e);
            }
        }
    }

    /// Records a validated desired state. Returns the sequence number to wait for.
    pub fn accept(&self, mut d: Desired) -> Result<u64, Refusal> {
        let now = clock::now_ms();
        let mut g = self.lock();
        check_epoch(d.epoch, g.max_epoch)?;
        g.max_epoch = d.epoch;
        let writer_ips: Vec<std::net::Ipv4Addr> = d
            .all_roles
            .iter()
            .filter(|r| !d.writer_role.is_empty() && r.name == d.writer_role)
            .map(|r| r.ip)
            .collect();
        if !writer_ips.is_empty() {
            g.writer_ips = writer_ips;
        }
        if let Some(w) = d.writer().cloned() {
            if d.writer_lease_ms == 0 {
                g.lease.clear();
            } else {
                let budget = ms(self.cfg.fence_budget.duration());
                match Lease::deadline_for(
                    d.lease_token.as_ref(),
                    &self.boot_id,
                    now,
                    d.writer_lease_ms,
                    budget,
                ) {
                    Ok(deadline) => g.lease.grant(&w, deadline, d.writer_lease_ms),
                    Err(why) if g.lease.role() == Some(&w) && g.lease.valid_at(now) => {
                        tracing::debug!("writer lease not renewed by this request ({why}); the running lease stays");
                    }
                    Err(why) => {
                        if why == crate::lease::NoGrant::NoToken {
                            tracing::info!("writer role requested without a lease token (the monitor's first contact); staying read-only until a request carries one");
                        } else {
                            tracing::warn!("writer role not taken: {why}; staying read-only");
                        }
                        d = d.without_writer();
                    }
                }
            }
        } else if g.lease.role().is_none() {
            g.lease.clear();
        }
        let same = g.desired.as_ref().is_some_and(|old| old.same_target(&d));
        if !same {
            // A new attempt: an earlier promotion failure no longer describes it.
            g.promotion_error.clear();
            g.target_seq += 1;
            self.target_tx.send_replace(g.target_seq);
            tracing::info!(
                epoch = d.epoch,
                state = d.state.mmm_name(),
                roles = %d.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(","),
                active_master = %d.active_master.as_ref().map(|m| m.name.as_str()).unwrap_or(""),
                "new desired state"
            );
        }
        g.desired = Some(d);
        g.desired_seq += 1;
        // Not applied yet: a reply sent before its pass ends must not claim convergence.
        g.converged = false;
        let seq = g.desired_seq;
        drop(g);
        // On disk before anything happens on the host: a restart must know of the lease.
        self.persist();
        self.lease_changed.notify_one();
        self.wake.notify_one();
        Ok(seq)
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

    /// Records a step that was not attempted (its cause is already recorded): listed in
    /// `operations`, but it neither replaces `last_error` nor counts as its kind's last error.
    fn record_skipped(&self, name: &str, why: &str) {
        tracing::warn!(operation = name, "{why}");
        self.lock()
            .operations
            .push(op(name, false, why.to_string(), Duration::ZERO));
    }

    pub(crate) fn record(&self, name: &str, o: &Outcome, took: Duration) {
        let r = op(name, o.ok, o.message.clone(), took);
        if o.ok {
            tracing::info!(operation = name, "{}", o.message);
        } else {
            tracing::warn!(operation = name, "failed: {}", o.message);
        }
        let mut g = self.lock();
        g.last_errors.record(&r);
        if !o.ok {
            g.last_error = format!("{name}: {}", o.message);
        }
        g.operations.push(r);
    }

    /// Records a refusal to replicate into a divergence: logged when its text changes (passes
    /// run on every ApplyState, the finding is the same every time).
    fn record_refusal(&self, name: &str, message: String, took: Duration) {
        let r = op(name, false, message.clone(), took);
        let mut g = self.lock();
        let new = !g.last_error.ends_with(&message);
        g.last_errors.record(&r);
        g.last_error = format!("{name}: {message}");
        g.operations.push(r);
        drop(g);
        if new {
            tracing::error!(operation = name, "refused: {message}");
        }
    }

    /// Another cluster host's MySQL over TCP, with this agent's account.
    fn endpoint_of(&self, m: &Master) -> ha_config::MysqlEndpoint {
        let mut ep = self.cfg.mysql.clone();
        ep.host = m.ip.to_string();
        ep.port = m.port;
        ep.socket = None;
        ep
    }

    /// Another cluster host's MySQL with the replication account (reading its GTID state needs
    /// no privilege, and every host has that account).
    fn replication_endpoint(&self, m: &Master) -> ha_config::MysqlEndpoint {
        let mut ep = self.endpoint_of(m);
        ep.user = self.cfg.replication.user.clone();
        ep.password = self.cfg.replication.password.clone();
        ep.tls = self.cfg.replication.tls.clone();
        ep
    }

    /// Replication was verified for the active master `name` (see `Held::verified_master`).
    fn verified(&self, name: &str) {
        self.lock().held.verified_master = Some(name.to_string());
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
                        let t2 = std::time::Instant::now();
                        let retry = Outcome::from(db.deny_write().await);
                        self.record("read_only=1 (retry after kill)", &retry, t2.elapsed());
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

    /// Kills client connections, sparing replication, system threads, the agent's own
    /// connections and (except on the final round) in-flight writes.
    /// `spare`: more connection ids of this agent's own.
    pub(crate) async fn kill_connections(
        &self,
        db: &mut Db,
        no_sparing: bool,
        spare: &[u64],
    ) -> Outcome {
        let retries = if no_sparing {
            0
        } else {
            self.cfg.max_kill_retries
        };
        let mut killed: Vec<u64> = Vec::new();
        let mut waited = 0u32;
        let mut errors: Vec<String> = Vec::new();
        for round in 0..=retries {
            let final_round = round == retries;
            let list = match db.processlist().await {
                Ok(l) => l,
                Err(e) => return Outcome::err(format!("cannot list connections: {e}")),
            };
            let mut own = vec![self.status_conn_id.load(Ordering::Relaxed)];
            own.extend(db.connection_id());
            own.extend_from_slice(spare);
            let mut spared = 0;
            for p in &list {
                match sqltext::kill_decision(p, &own, &self.cfg.spare_users, final_round) {
                    KillDecision::Keep => {}
                    KillDecision::Wait => spared += 1,
                    KillDecision::Kill => match db.kill(p.id).await {
                        Ok(()) => killed.push(p.id),
                        Err(e) => {
                            errors.push(format!("KILL {} ({}@{}): {e}", p.id, p.user, p.command))
                        }
                    },
                }
            }
            if spared == 0 {
                break;
            }
            waited += 1;
            tracing::info!("waiting 1 s for {spared} in-flight write(s) before killing them (round {}/{retries})", round + 1);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let msg = format!(
            "killed {} client connection(s){}{}",
            killed.len(),
            if killed.is_empty() {
                String::new()
            } else {
                format!(
                    " (ids {})",
                    killed
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            if waited > 0 {
                format!("; waited {waited} s for in-flight writes")
            } else {
                String::new()
            }
        );
        if errors.is_empty() {
            Outcome::ok(msg)
        } else {
            Outcome::err(format!("{msg}; failures: {}", errors.join("; ")))
        }
    }

    /// Before a promotion, after the relay-log sync (MariaDB, GTID): another replica may have
    /// received transactions from the old master that this host never got — MariaDB sends binlog
    /// events to every replica before the semi-sync ACK, so a replica that does not acknowledge
    /// can be ahead of the one that does. Promoted as is, this host would leave that replica
    /// with transactions its new master lacks, unable to replicate from it ever again. So every
    /// other cluster host except the old master (the source this host replicated from) is asked
    /// for its GTID state (bounded by [`CATCH_UP_PROBE`], in parallel); the one furthest ahead
    /// in streams this host follows is replicated from over a temporary named connection until
    /// this host has what it had. Those transactions were never acknowledged to a client (I2
    /// does not need them); they are taken so no replica is left diverged.
    async fn catch_up(
        &self,
        db: &mut Db,
        hosts: &[Master],
        target: u64,
    ) -> Result<Option<String>, String> {
        let info = db.info().await?;
        if info.flavor != Flavor::MariaDb {
            return Ok(None);
        }
        let Some(s) = db.slave_status().await? else {
            return Ok(None);
        };
        if !s.uses_gtid() {
            return Ok(None);
        }
        let others: Vec<Master> = hosts
            .iter()
            .filter(|h| h.name != self.cfg.this && !s.is_from(&h.ip.to_string(), h.port))
            .cloned()
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        let (local_id, local) = db.server_state().await?;
        let mut probes = tokio::task::JoinSet::new();
        for h in others {
            let ep = self.replication_endpoint(&h);
            probes.spawn(async move {
                let mut remote = Db::new(&ep, CATCH_UP_PROBE);
                let r = tokio::time::timeout(CATCH_UP_PROBE, remote.server_state())
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {CATCH_UP_PROBE:?}")));
                (h, r)
            });
        }
        let mut best: Option<(Master, Vec<gtid::Errant>)> = None;
        while let Some(joined) = probes.join_next().await {
            let Ok((h, r)) = joined else { continue };
            match r {
                Ok((id, state)) => {
                    let ahead = gtid::mariadb_ahead(&state, &local, id, local_id);
                    let gap = |a: &[gtid::Errant]| a.iter().map(gtid::Errant::at_most).sum::<u64>();
                    if !ahead.is_empty()
                        && best.as_ref().is_none_or(|(_, b)| gap(&ahead) > gap(b))
                    {
                        best = Some((h, ahead));
                    }
                }
                Err(e) => tracing::warn!(
                    "before the promotion: could not read the GTID state of {} ({e}); a replica ahead of this host there would not be caught up",
                    h.name
                ),
            }
        }
        let Some((src, ahead)) = best else {
            return Ok(None);
        };
        let pos = gtid::wait_position(&ahead);
        if !sqltext::valid_gtid_text(&pos) {
            return Err(format!("unexpected catch-up position {pos:?}"));
        }
        let p = db.gtid_positions().await?;
        if p.current != p.slave {
            return Err(format!(
                "{} is ahead of this host ({pos}) but this host has writes of its own (gtid_current_pos {} != gtid_slave_pos {}): cannot catch up from it by GTID; promote {} instead or force the move",
                src.name, p.current, p.slave, src.name
            ));
        }
        tracing::info!(
            "{} received {} transaction(s) at most that this host has not ({}): catching up from it before becoming writable",
            src.name,
            ahead.iter().map(gtid::Errant::at_most).sum::<u64>(),
            pos
        );
        let conn = CATCH_UP_CONNECTION;
        let _ = db.exec(&format!("STOP SLAVE '{conn}'")).await;
        let _ = db.exec(&format!("RESET SLAVE '{conn}' ALL")).await;
        let creds = &self.cfg.replication;
        db.exec(&format!(
            "CHANGE MASTER '{conn}' TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos{}",
            quote(&src.ip.to_string()),
            src.port,
            quote(&creds.user),
            quote(&creds.password),
            master_ssl_clause(creds.tls.as_ref())?
        ))
        .await?;
        let wait = self.cfg.sync_timeout.duration();
        let started = std::time::Instant::now();
        let r = match db.exec(&format!("START SLAVE '{conn}'")).await {
            Err(e) => Err(e),
            Ok(()) => {
                let sql = format!(
                    "SELECT MASTER_GTID_WAIT({}, {:.3}) AS r",
                    quote(&pos),
                    wait.as_secs_f64()
                );
                self.wait_unless_retargeted(db, &sql, wait, target)
                    .await
                    .unwrap_or_else(|| Err("a newer desired state arrived".to_string()))
            }
        };
        let stop = db.exec(&format!("STOP SLAVE '{conn}'")).await;
        let reset = db.exec(&format!("RESET SLAVE '{conn}' ALL")).await;
        let cleanup = match (stop, reset) {
            (Ok(()), Ok(())) => String::new(),
            (a, b) => format!(
                "; could not remove the temporary connection '{conn}' ({}): run STOP SLAVE '{conn}'; RESET SLAVE '{conn}' ALL",
                [a.err(), b.err()].into_iter().flatten().collect::<Vec<_>>().join("; ")
            ),
        };
        let took = started.elapsed().as_secs_f64();
        match r.as_ref().map(|v| v.as_deref()) {
            Ok(Some("0")) if cleanup.is_empty() => Ok(Some(format!(
                "caught up from {} to {pos} in {took:.1} s (transactions it had received from the old master and this host had not)",
                src.name
            ))),
            Ok(Some("0")) => Err(format!("caught up from {} to {pos}{cleanup}", src.name)),
            Ok(other) => Err(format!(
                "could not catch up from {} to {pos} within sync_timeout {:.1} s (MASTER_GTID_WAIT returned {other:?}){cleanup}",
                src.name,
                wait.as_secs_f64()
            )),
            Err(e) => Err(format!("catching up from {} to {pos} failed: {e}{cleanup}", src.name)),
        }
    }

    /// Ends every binlog dump session on this host before it is promoted.
    ///
    /// Semi-sync makes a host wait for an ACK from its connected semi-sync replicas both for
    /// client commits and — with log_slave_updates — for the replicated events its SQL thread
    /// logs. When the old writer died or was cut off, its dump session here still looks
    /// connected (TCP has not noticed), so the relay-log sync below and every later write would
    /// wait for an ACK that never comes. Live replicas reconnect within their connect retry;
    /// the dead peer's session is gone, and with `rpl_semi_sync_master_wait_no_slave=OFF` the
    /// host commits asynchronously only while no semi-sync replica is connected at all.
    async fn drop_binlog_dump_sessions(&self, db: &mut Db) -> String {
        let list = match db.processlist().await {
            Ok(l) => l,
            Err(e) => return format!("; could not list binlog dump sessions: {e}"),
        };
        let ids: Vec<u64> = list
            .iter()
            .filter(|p| sqltext::is_binlog_dump(&p.command))
            .map(|p| p.id)
            .collect();
        let mut failed = Vec::new();
        for id in &ids {
            if let Err(e) = db.kill(*id).await {
                failed.push(format!("{id}: {e}"));
            }
        }
        if ids.is_empty() {
            String::new()
        } else if failed.is_empty() {
            format!(
                "; ended {} binlog dump session(s) so no stale replica holds commits",
                ids.len()
            )
        } else {
            format!(
                "; could not end binlog dump session(s) {}",
                failed.join(", ")
            )
        }
    }

    /// Runs a wait statement (`MASTER_GTID_WAIT` …) bounded by `wait`, unless the desired
    /// target changes meanwhile: then `None`, and the connection is dropped (the wait is still
    /// running on it).
    async fn wait_unless_retargeted(
        &self,
        db: &mut Db,
        sql: &str,
        wait: Duration,
        target: u64,
    ) -> Option<Result<Option<String>, String>> {
        let mut target_rx = self.target_tx.subscribe();
        tokio::select! {
            r = db.wait_value(sql, wait) => Some(r),
            _ = target_rx.wait_for(|t| *t != target) => {
                db.reset();
                None
            }
        }
    }

    /// The relay-log sync gate before a promotion (product.md F6).
    async fn sync_gate(&self, db: &mut Db, target: u64) -> Result<String, String> {
        let dropped = self.drop_binlog_dump_sessions(db).await;
        if !dropped.is_empty() {
            tracing::info!("before the relay-log sync{dropped}");
        }
        let info = db.info().await?;
        let Some(s) = db.slave_status().await? else {
            return Ok("no replication configured on this host: nothing to apply".into());
        };
        if s.sql == Thread::Stopped {
            if s.relay_log_applied() {
                return Ok(format!(
                    "SQL thread is stopped but everything received is applied ({}:{})",
                    s.master_log_file, s.read_master_log_pos
                ));
            }
            return Err(format!(
                "SQL thread is stopped with unapplied relay log (executed {}:{} < received {}:{}){}: start the SQL thread or fix its error, or force the move",
                s.relay_master_log_file,
                s.exec_master_log_pos,
                s.master_log_file,
                s.read_master_log_pos,
                if s.last_sql_error.is_empty() {
                    String::new()
                } else {
                    format!("; Last_SQL_Error: {}", s.last_sql_error)
                }
            ));
        }
        let wait = self.cfg.sync_timeout.duration();
        let secs = format!("{:.3}", wait.as_secs_f64());
        let (sql, what, ok_when): (String, String, fn(&str) -> bool) = match info.flavor {
            Flavor::MariaDb if s.uses_gtid() && !s.gtid_io_pos.is_empty() => {
                if !sqltext::valid_gtid_text(&s.gtid_io_pos) {
                    return Err(format!("unexpected Gtid_IO_Pos {:?}", s.gtid_io_pos));
                }
                let pos = db.gtid_positions().await?;
                if sqltext::mariadb_pos_contains(&pos.current, &s.gtid_io_pos) {
                    return Ok(format!(
                        "already applied everything received (Gtid_IO_Pos {} within gtid_current_pos {})",
                        s.gtid_io_pos, pos.current
                    ));
                }
                (
                    format!(
                        "SELECT MASTER_GTID_WAIT({}, {secs}) AS r",
                        quote(&s.gtid_io_pos)
                    ),
                    format!("Gtid_IO_Pos {}", s.gtid_io_pos),
                    |r| r == "0",
                )
            }
            Flavor::MySql if info.gtid_mode_on && !s.retrieved_gtid_set.is_empty() => {
                if !sqltext::valid_gtid_text(&s.retrieved_gtid_set) {
                    return Err(format!(
                        "unexpected Retrieved_Gtid_Set {:?}",
                        s.retrieved_gtid_set
                    ));
                }
                (
                    format!(
                        "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {secs}) AS r",
                        quote(&s.retrieved_gtid_set)
                    ),
                    format!("Retrieved_Gtid_Set {}", s.retrieved_gtid_set),
                    |r| r == "0",
                )
            }
            _ if !s.master_log_file.is_empty() => (
                format!(
                    "SELECT MASTER_POS_WAIT({}, {}, {secs}) AS r",
                    quote(&s.master_log_file),
                    s.read_master_log_pos
                ),
                format!("{}:{}", s.master_log_file, s.read_master_log_pos),
                |r| r.parse::<i64>().is_ok_and(|n| n >= 0),
            ),
            _ => return Ok("nothing received from any master yet: nothing to apply".into()),
        };
        let started = std::time::Instant::now();
        let Some(r) = self.wait_unless_retargeted(db, &sql, wait, target).await else {
            return Err(format!(
                "relay-log sync to {what} abandoned after {:.1} s: a newer desired state arrived",
                started.elapsed().as_secs_f64()
            ));
        };
        let r = r?;
        let took = started.elapsed().as_secs_f64();
        match r.as_deref() {
            Some(v) if ok_when(v) => Ok(format!("applied everything received ({what}) in {took:.1} s")),
            Some("-1") | Some("1") => Err(format!(
                "relay log not applied within sync_timeout {:.1} s (waiting for {what})",
                wait.as_secs_f64()
            )),
            other => Err(format!(
                "relay-log wait for {what} returned {other:?} (SQL thread stopped or replication not initialised)"
            )),
        }
    }

    /// `STOP SLAVE` when a replication thread runs; returns a note for the refusal message.
    async fn stop_running_slave(&self, db: &mut Db) -> String {
        match db.slave_status().await {
            Ok(Some(s)) if s.io != Thread::Stopped || s.sql != Thread::Stopped => {
                match db.exec("STOP SLAVE").await {
                    Ok(()) => format!(
                        " (STOP SLAVE: no longer replicating from {}:{})",
                        s.master_host, s.master_port
                    ),
                    Err(e) => format!(" (STOP SLAVE failed: {e})"),
                }
            }
            _ => String::new(),
        }
    }

    /// Errant transactions (see [`crate::gtid`]): does this host have GTIDs that `m` lacks?
    /// `Ok(Some(refusal))` when it does. Reads the master's history over the network with the
    /// replication account (no privilege needed), bounded by twice mysql_timeout; a finding is
    /// reused for [`ERRANT_CACHE`] while the local history is unchanged.
    async fn errant_check(&self, db: &mut Db, m: &Master) -> Result<Option<String>, String> {
        let (flavor, local, _) = db.gtid_history().await?;
        if local.trim().is_empty() {
            self.lock().errant = None;
            return Ok(None);
        }
        if let Some(c) = &self.lock().errant {
            if c.master == m.name && c.local_state == local && c.at.elapsed() < ERRANT_CACHE {
                return Ok(c.finding.clone());
            }
        }
        let ep = self.replication_endpoint(m);
        let timeout = self.cfg.mysql_timeout.duration();
        let mut remote = Db::new(&ep, timeout);
        let (rflavor, master, master_logs) =
            match tokio::time::timeout(timeout * 2, remote.gtid_history()).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(format!(
                        "{} did not answer within {:.1} s",
                        remote.endpoint(),
                        (timeout * 2).as_secs_f64()
                    ))
                }
            };
        let this = &self.cfg.this;
        let finding = match (flavor, rflavor) {
            // A master without a binary log has no history to compare with: nothing to say.
            _ if !master_logs => None,
            (Flavor::MariaDb, Flavor::MariaDb) => {
                gtid::errant_message(this, &m.name, &gtid::mariadb_errant(&local, &master))
            }
            (Flavor::MySql, Flavor::MySql) => {
                if !sqltext::valid_gtid_text(&local) || !sqltext::valid_gtid_text(&master) {
                    return Err(format!("unexpected gtid_executed {local:?} / {master:?}"));
                }
                let rows = db
                    .rows(&format!(
                        "SELECT GTID_SUBTRACT({}, {}) AS e",
                        quote(&local),
                        quote(&master)
                    ))
                    .await?;
                let missing = rows
                    .first()
                    .and_then(|r| r.get("e").cloned().flatten())
                    .unwrap_or_default();
                gtid::mysql_errant_message(this, &m.name, &missing)
            }
            _ => None,
        };
        self.lock().errant = Some(ErrantCheck {
            master: m.name.clone(),
            local_state: local,
            at: Instant::now(),
            finding: finding.clone(),
        });
        Ok(finding)
    }

    /// Polls until both threads run, at most repoint_timeout.
    async fn verify_threads(&self, db: &mut Db) -> Result<SlaveStatus, String> {
        let deadline = std::time::Instant::now() + self.cfg.repoint_timeout.duration();
        loop {
            let s = db.slave_status().await?;
            match s {
                Some(s) if s.running() => return Ok(s),
                Some(s) if std::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "replication threads not running within repoint_timeout {:.1} s: IO {:?}, SQL {:?}{}{}",
                        self.cfg.repoint_timeout.duration().as_secs_f64(),
                        s.io,
                        s.sql,
                        if s.last_io_error.is_empty() { String::new() } else { format!("; Last_IO_Error: {}", s.last_io_error) },
                        if s.last_sql_error.is_empty() { String::new() } else { format!("; Last_SQL_Error: {}", s.last_sql_error) },
                    ))
                }
                None if std::time::Instant::now() >= deadline => {
                    return Err("SHOW SLAVE STATUS returns no row: replication is not configured".into())
                }
                _ => tokio::time::sleep(THREAD_POLL).await,
            }
        }
    }

    async fn start_slave(&self, db: &mut Db) -> Result<String, String> {
        db.exec("START SLAVE").await?;
        let s = self.verify_threads(db).await?;
        Ok(format!(
            "START SLAVE: IO and SQL threads running, replicating from {}:{}",
            s.master_host, s.master_port
        ))
    }

    /// Re-points replication at `m` by GTID (file/pos only when GTID is off), starts it and
    /// verifies both threads run.
    async fn repoint(&self, db: &mut Db, m: &Master) -> Result<String, String> {
        let info = db.info().await?;
        let mut done: Vec<String> = Vec::new();
        if db.slave_status().await?.is_some() {
            db.exec("STOP SLAVE").await?;
            done.push("STOP SLAVE".into());
        }
        let creds = &self.cfg.replication;
        let base = format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1{}",
            quote(&m.ip.to_string()),
            m.port,
            quote(&creds.user),
            quote(&creds.password),
            master_ssl_clause(creds.tls.as_ref())?
        );
        let sql = match info.flavor {
            Flavor::MariaDb => {
                // A former master has its own last transactions in gtid_binlog_pos but not in
                // gtid_slave_pos; starting from slave_pos would fetch them again. Make slave_pos
                // the host's real position first (the current_pos rule, without the deprecated
                // MASTER_USE_GTID=current_pos).
                let pos = db.gtid_positions().await?;
                if !pos.current.is_empty() && pos.current != pos.slave {
                    if !sqltext::valid_gtid_text(&pos.current) {
                        return Err(format!("unexpected gtid_current_pos {:?}", pos.current));
                    }
                    db.exec(&format!(
                        "SET GLOBAL gtid_slave_pos = {}",
                        quote(&pos.current)
                    ))
                    .await?;
                    done.push(format!(
                        "SET GLOBAL gtid_slave_pos = '{}' (was '{}')",
                        pos.current, pos.slave
                    ));
                }
                format!("{base}, MASTER_USE_GTID=slave_pos")
            }
            Flavor::MySql if info.gtid_mode_on => format!("{base}, MASTER_AUTO_POSITION=1"),
            Flavor::MySql => {
                let (file, pos) = self.remote_master_status(m).await?;
                format!(
                    "{base}, MASTER_LOG_FILE={}, MASTER_LOG_POS={pos}",
                    quote(&file)
                )
            }
        };
        db.exec(&sql).await?;
        done.push(
            sql.replace(&quote(&creds.password), "'<redacted>'")
                .to_string(),
        );
        db.exec("START SLAVE").await?;
        done.push("START SLAVE".into());
        let s = self.verify_threads(db).await?;
        done.push(format!(
            "IO and SQL threads running (Using_Gtid {})",
            s.using_gtid
        ));
        Ok(done.join("; "))
    }

    /// `SHOW MASTER STATUS` on the new master (file/pos re-pointing, MySQL without GTID).
    async fn remote_master_status(&self, m: &Master) -> Result<(String, u64), String> {
        let ep = self.endpoint_of(m);
        let mut remote = Db::new(&ep, self.cfg.mysql_timeout.duration());
        remote.master_status().await?.ok_or_else(|| {
            format!(
                "SHOW MASTER STATUS on {} returned no row: binary logging is off there",
                m.name
            )
        })
    }

    /// Reads the live status (bounded by mysql_timeout overall).
    pub async fn status(&self) -> AgentStatus {
        let now = clock::now_ms();
        let (desired, held, lease_ms, ops, last_errors, last_error, converged, epoch, am, pe) = {
            let g = self.lock();
            (
                g.desired.clone(),
                g.held.clone(),
                g.lease.remaining_ms(now),
                g.operations.clone(),
                g.last_errors.list(),
                g.last_error.clone(),
                g.converged,
                g.max_epoch,
                g.active_master.clone(),
                g.promotion_error.clone(),
            )
        };
        let mut st = AgentStatus {
            host: self.cfg.this.clone(),
            agent_version: crate::VERSION.to_string(),
            state: desired
                .as_ref()
                .map(|d| d.state)
                .unwrap_or(HostState::Unknown) as i32,
            roles: held.roles.iter().map(RoleIp::to_proto).collect(),
            epoch,
            writer_lease_remaining_ms: lease_ms,
            writer_synced: held.writer_synced,
            active_master: am,
            last_error,
            operations: ops,
            last_errors,
            converged,
            promotion_error: pe,
            ..Default::default()
        };
        let mut errors: Vec<String> = Vec::new();
        match uptime::read() {
            Ok(u) => st.uptime_seconds = u,
            Err(e) => errors.push(e),
        }
        // Managed IPs present.
        let mut managed: BTreeSet<std::net::Ipv4Addr> = BTreeSet::new();
        if let Some(d) = &desired {
            managed.extend(d.all_roles.iter().map(|r| r.ip));
            managed.extend(d.roles.iter().map(|r| r.ip));
        }
        managed.extend(held.roles.iter().map(|r| r.ip));
        match ip::list_v4(&self.cfg.cluster_interface).await {
            Ok(v) => {
                st.ips_present = v
                    .iter()
                    .filter(|i| managed.contains(i))
                    .map(|i| i.to_string())
                    .collect()
            }
            Err(e) => errors.push(e),
        }
        let hosts = desired
            .as_ref()
            .map(|d| d.cluster_hosts.clone())
            .unwrap_or_default();
        let mut db = self.status_db.lock().await;
        let r = tokio::time::timeout(self.cfg.mysql_timeout.duration() * 2, async {
            let ro = db.read_only().await?;
            self.status_conn_id
                .store(db.connection_id().unwrap_or(0), Ordering::Relaxed);
            let slave = db.slave_status().await?;
            let pos = db.gtid_positions().await?;
            Ok::<_, String>((ro, slave, pos))
        })
        .await;
        match r {
            Ok(Ok((ro, slave, pos))) => {
                st.mysql_reachable = true;
                st.read_only = ro.read_only;
                st.super_read_only = ro.super_read_only.unwrap_or(false);
                st.gtid_binlog_pos = pos.binlog;
                st.gtid_slave_pos = pos.slave;
                st.gtid_current_pos = pos.current;
                st.replication = Some(match slave {
                    None => ReplicationStatus::default(),
                    Some(s) => ReplicationStatus {
                        configured: true,
                        source_name: Desired::host_name_of(&hosts, &s.master_host, s.master_port),
                        source_ip: s.master_host.clone(),
                        source_port: u32::from(s.master_port),
                        io_thread: thread_state(s.io) as i32,
                        sql_thread: thread_state(s.sql) as i32,
                        seconds_behind_master: s.seconds_behind_master,
                        last_io_error: s.last_io_error.clone(),
                        last_sql_error: s.last_sql_error.clone(),
                        using_gtid: s.uses_gtid(),
                    },
                });
            }
            Ok(Err(e)) => {
                st.mysql_reachable = false;
                errors.push(e);
            }
            Err(_) => {
                db.reset();
                st.mysql_reachable = false;
                errors.push(format!(
                    "MySQL at {} did not answer the status queries within {:.1} s",
                    db.endpoint(),
                    (self.cfg.mysql_timeout.duration() * 2).as_secs_f64()
                ));
            }
        }
        if !errors.is_empty() {
            let e = errors.join("; ");
            st.last_error = if st.last_error.is_empty() {
                e
            } else {
                format!("{}; {e}", st.last_error)
            };
        }
        st.fence_budget_ms = ms(self.cfg.fence_budget.duration());
        // Read last, right before the reply leaves: the monitor counts from its receipt.
        st.lease_token = Some(ha_proto::LeaseToken {
            boot_id: self.boot_id.clone(),
            at_ms: clock::now_ms(),
        });
        st
    }

    /// What startup role voting needs: facts read from the system only.
    pub async fn system_status(&self) -> SystemStatus {
        let mut st = SystemStatus {
            host: self.cfg.this.clone(),
            ..Default::default()
        };
        let mut errors: Vec<String> = Vec::new();
        match uptime::read() {
            Ok(u) => st.uptime_seconds = u,
            Err(e) => errors.push(e),
        }
        match ip::list(&self.cfg.cluster_interface).await {
            Ok(v) => st.ips_present = v.iter().map(IpAddr::to_string).collect(),
            Err(e) => errors.push(format!("could not check which IPs are configured: {e}")),
        }
        let hosts = self
            .lock()
            .desired
            .as_ref()
            .map(|d| d.cluster_hosts.clone())
            .unwrap_or_default();
        let mut db = self.status_db.lock().await;
        let r = tokio::time::timeout(self.cfg.mysql_timeout.duration() * 2, async {
            let ro = db.read_only().await?;
            let slave = db.slave_status().await?;
            Ok::<_, String>((ro, slave))
        })
        .await;
        match r {
            Ok(Ok((ro, slave))) => {
                st.mysql_reachable = true;
                st.writable = !ro.read_only;
                if let Some(s) = slave {
                    st.master_name = Desired::host_name_of(&hosts, &s.master_host, s.master_port);
                    st.master_ip = s.master_host;
                    st.master_port = u32::from(s.master_port);
                }
            }
            Ok(Err(e)) => errors.push(format!("could not check if MySQL is writable: {e}")),
            Err(_) => {
                db.reset();
                errors.push(format!(
                    "could not check if MySQL is writable: {} did not answer in time",
                    db.endpoint()
                ));
            }
        }
        st.error = errors.join("; ");
        st
    }

    /// Removes role IPs present on the interface but not held (writer: read_only=1 + kill
    /// first). Returns the removed roles and the failures.
    pub async fn clear_bad_roles(
        &self,
        all_roles: &[RoleIp],
        writer_role: &str,
    ) -> Result<(Vec<RoleIp>, Vec<String>), String> {
        let _serial = self.change_lock.lock().await;
        let dev = self.cfg.cluster_interface.clone();
        let present = ip::list_v4(&dev)
            .await
            .map_err(|e| format!("could not check if IP is configured: {e}"))?;
        let held = self.lock().held.roles.clone();
        let mut removed = Vec::new();
        let mut failures = Vec::new();
        let mut db = self.apply_db.lock().await;
        for r in all_roles {
            if !present.contains(&r.ip) || held.iter().any(|h| h.ip == r.ip) {
                continue;
            }
            tracing::warn!(role = %r, "clearing bad role: its IP is on {dev} but this agent does not hold it");
            if !writer_role.is_empty() && r.name == writer_role {
                let t = std::time::Instant::now();
                let d = Outcome::from(db.deny_write().await);
                let deny_failed = !d.ok;
                self.record("read_only=1", &d, t.elapsed());
                let t = std::time::Instant::now();
                let k = self.kill_connections(&mut db, deny_failed, &[]).await;
                self.record("kill connections", &k, t.elapsed());
                if deny_failed && k.ok {
                    let t = std::time::Instant::now();
                    let d2 = Outcome::from(db.deny_write().await);
                    self.record("read_only=1 (retry after kill)", &d2, t.elapsed());
                }
            }
            let t = std::time::Instant::now();
            let name = format!("remove ip {} ({})", r.ip, r.name);
            match crate::remove::del_role_ip(&self.cfg, r.ip).await {
                Ok(_) => {
                    self.record(&name, &Outcome::ok("cleared bad role"), t.elapsed());
                    removed.push(r.clone());
                }
                Err(e) => {
                    self.record(&name, &Outcome::err(e.clone()), t.elapsed());
                    failures.push(e);
                }
            }
        }
        Ok((removed, failures))
    }

    /// Highest epoch applied (tests, Ping).
    pub fn epoch(&self) -> u64 {
        self.lock().max_epoch
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert!(check_epoch(5, 5).is_ok());
        assert!(check_epoch(6, 5).is_ok());
        let e = check_epoch(4, 5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "stale epoch 4 < 5: a stale monitor must not win (this agent holds epoch 5)"
        );
        assert!(matches!(
            check_epoch(u64::MAX, 5),
            Err(Refusal::AbsurdEpoch { .. })
        ));
        assert!(check_epoch(5 + ha_lease::EPOCH_JUMP_LIMIT, 5).is_ok());
    }
}
