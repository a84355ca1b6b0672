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
//! own task, which fences the host on its own (see [`guard`]).
//!
//! The `impl Agent` is spread over the modules of this folder, one concept each:
//! `accept` (the epoch rule, recording a desired state), `persist` (the state file),
//! `outcome` (step outcomes and how they are recorded), `replication` (errant
//! transactions, re-pointing, starting and verifying replication), `promotion` (ending
//! binlog dump sessions, the relay-log sync gate, catching up over `ha_catchup`),
//! `demote` (killing connections, `read_only=1` again after the kill), `peer` (promising a
//! peer writer not to take the writer role), `roles`
//! (ClearBadRoles) and `report` (GetStatus, GetSystemStatus). This file holds the state,
//! the converger loop, `pass` (observe → plan → run → reconcile) and `steps` (one function
//! per planned step).

mod accept;
mod demote;
mod guard;
mod outcome;
mod pass;
mod peer;
mod persist;
mod promotion;
mod replication;
mod report;
mod roles;
mod steps;

pub(crate) use crate::status::Outcome;
pub use accept::{check_epoch, Refusal};
pub(crate) use demote::Kills;
pub use peer::Ask;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ha_config::AgentConfig;
use ha_proto::OperationResult;
use tokio::sync::{watch, Notify};

use crate::desired::Desired;
use crate::lease::store::Store;
use crate::lease::{clock, Lease};
use crate::mysql::Db;
use crate::plan::{demotion_complete, probe_stopped, DemotionEnd, DemotionFacts, Held};
use crate::status::LastErrors;

use persist::Restored;

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
    /// The highest leadership term accepted (issue 18; 0 while a single monitor runs):
    /// requests of an older term come from a deposed monitor and are refused.
    pub(crate) max_term: u64,
    /// The writer lease and the role it covers. A lease keeps running when the monitor asks for
    /// the demotion: if that demotion has not finished when the lease ends (writes in flight, a
    /// server that does not answer), the expiry forces it.
    pub(crate) lease: Lease,
    /// What this agent promised a peer writer: no writer grant is taken until it ends.
    pub(crate) promise: crate::lease::promise::Promise,
    /// Why the latest desired state's writer role was not taken: a peer promise holds.
    pub(crate) promise_refusal: Option<String>,
    /// The other writer candidates' agents, as the monitor last named them with a writer
    /// grant: who this writer asks for promises (persisted, for a restart while the monitor is
    /// away).
    pub(crate) writer_peers: Vec<crate::desired::Peer>,
    /// A demotion completed (read-only confirmed, lease ended) at this instant and the peers
    /// have not been told yet (`crate::vouch` releases their promises).
    pub(crate) demoted_at: Option<u64>,
    /// Promises asked for before this instant no longer extend a lease: they were released.
    pub(crate) released_before_ms: u64,
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
    /// Wakes the peer-promise task (`crate::vouch`) when a demotion completed.
    pub(crate) vouch_wake: Notify,
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
            vouch_wake: Notify::new(),
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
    /// fenced at once, unless the operator permitted adopting it (`crate::lease::adopt`).
    pub fn spawn(self: &Arc<Self>) {
        let restored = self.restore();
        let adopt = self.take_adoption(restored);
        let a = Arc::clone(self);
        tokio::spawn(async move { a.converger().await });
        guard::start_watchdog(Arc::clone(self));
        if restored != Restored::ValidLease {
            let a = Arc::clone(self);
            tokio::spawn(async move { a.startup_fence(adopt).await });
        }
    }

    /// Takes the one-time adoption permission, if any; it counts only for a first start (no
    /// state file).
    fn take_adoption(&self, restored: Restored) -> bool {
        match crate::lease::adopt::take(&self.cfg.state_dir) {
            Ok(false) => false,
            Ok(true) if restored == Restored::NoFile => {
                tracing::info!(
                    "adoption permitted (ha-agent --adopt-writer, used now): a writable server is kept writable for at most {} s until the monitor grants or withdraws the writer role",
                    ha_lease::ADOPT_WINDOW_MS / 1000
                );
                true
            }
            Ok(true) => {
                tracing::warn!(
                    "adoption permission ignored (and deleted): {} exists, so this agent ran here before and its lease rules apply",
                    self.store.path().display()
                );
                false
            }
            Err(e) => {
                tracing::error!("{e}");
                false
            }
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
            let writer_wanted = desired.writer().is_some();
            let lease_running = self.lock().lease.running();
            let stopped_and_no_writer_ip = if probe_stopped(writer_wanted, lease_running, converged)
            {
                Some(self.stopped_without_writer_ip().await)
            } else {
                None
            };
            let demoted = {
                let mut g = self.lock();
                g.completed_seq = g.completed_seq.max(seq);
                let current = g.desired_seq == seq;
                g.converged = converged && current;
                let end = demotion_complete(DemotionFacts {
                    writer_wanted,
                    lease_running: g.lease.running(),
                    current,
                    converged,
                    stopped_and_no_writer_ip,
                });
                if let Some(end) = end {
                    tracing::info!(
                        "demotion complete{}: writer lease ended",
                        match end {
                            DemotionEnd::ReadOnly => "",
                            DemotionEnd::ServerStopped => " (MySQL is stopped, writer IP gone)",
                        }
                    );
                    g.lease.clear();
                    g.demoted_at = Some(clock::now_ms());
                }
                end.is_some()
            };
            if demoted {
                let _ = self.persist(); // an error is logged
                self.lease_changed.notify_one();
                self.vouch_wake.notify_one();
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
}

/// A duration in whole milliseconds.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
