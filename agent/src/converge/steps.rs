//! Running the planned steps of a pass: one function per [`Step`], each returning its
//! [`Outcome`]. What the steps find out is collected in a [`RunReport`] for
//! [`crate::plan::reconcile`]; the order and the choice of steps are the planner's.

use std::time::Instant;

use tokio::sync::MutexGuard;

use super::{Agent, Outcome};
use crate::desired::{Desired, Master, RoleIp};
use crate::lease::clock;
use crate::mysql::Db;
use crate::plan::{follows, source, Actual, RunReport, Step};
use crate::remove::remove_ip;
use crate::{arp, ip};

const NEWER_STATE: &str = "not started: a newer desired state arrived; the next pass applies it";

/// One pass's steps in progress.
pub(super) struct Run<'a> {
    pub(super) desired: &'a Desired,
    /// The pass's target number: a different one means a newer desired state arrived.
    pub(super) target: u64,
    /// The host as observed at the start of the pass.
    pub(super) actual: &'a Actual,
    pub(super) this: &'a str,
    pub(super) report: RunReport,
    /// `read_only=1` failed in this pass (the kill then spares no in-flight write).
    deny_failed: bool,
}

/// How a step ended.
enum End {
    Done(Outcome),
    /// The step recorded itself (a refusal, or an IP added and announced).
    Recorded,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        desired: &'a Desired,
        target: u64,
        actual: &'a Actual,
        this: &'a str,
    ) -> Self {
        Run {
            desired,
            target,
            actual,
            this,
            report: RunReport::default(),
            deny_failed: false,
        }
    }

    /// The master this host should follow, when replication already points at it.
    fn followed_source(&self) -> Option<&'a Master> {
        source(self.desired, self.this).filter(|am| follows(self.actual, am))
    }

    fn is_writer_add(&self, step: &Step) -> bool {
        step.is_writer_add(&self.desired.writer_role)
    }
}

impl Agent {
    /// Runs `steps` in order. Stops at a newer desired state; skips the rest of the writer-add
    /// group after one of its steps failed.
    pub(super) async fn run_steps(&self, db: &mut Db, steps: &[Step], run: &mut Run<'_>) {
        for step in steps {
            let name = step.to_string();
            if self.target_changed(run.target) {
                run.report.aborted = true;
                self.record_skipped(&name, NEWER_STATE);
                break;
            }
            // Granting the writer (read_only=0, writer IP) holds the gate.
            let gate = match step {
                Step::AllowWrite | Step::AddIp(_) if run.is_writer_add(step) => {
                    match self.enter_writer_gate(run).await {
                        Ok(g) => Some(g),
                        Err(why) => {
                            run.report.aborted = true;
                            self.record_skipped(&name, why);
                            break;
                        }
                    }
                }
                _ => None,
            };
            if run.report.writer_failed && run.is_writer_add(step) {
                self.record_skipped(
                    &name,
                    "skipped: an earlier writer step failed, the host stays read-only",
                );
                run.report.failed = true;
                continue;
            }
            let t = Instant::now();
            let end = match step {
                Step::DenyWrite => End::Done(self.deny_write_step(db, run).await),
                Step::KillConnections => End::Done(self.kill_step(db, run).await),
                Step::RemoveIp(r) => End::Done(remove_ip(&self.cfg, r.ip).await),
                Step::StopSlave => End::Done(Outcome::from(
                    db.exec("STOP SLAVE")
                        .await
                        .map(|_| "STOP SLAVE (ADMIN_OFFLINE)".to_string()),
                )),
                Step::StartSlave => self.start_slave_step(db, run, &name, t).await,
                Step::Repoint(m) => self.repoint_step(db, run, m, &name, t).await,
                Step::CheckSource(m) => self.check_source_step(db, run, m, &name, t).await,
                Step::WaitRelayLog => End::Done(self.sync_step(db, run).await),
                Step::AllowWrite => End::Done(self.allow_write_step(db, run).await),
                Step::AddIp(r) => self.add_ip_step(r, gate, run, &name, t).await,
            };
            if let End::Done(o) = end {
                self.finish_step(step, &name, o, t, run);
            }
        }
    }

    /// Takes the writer gate and re-checks under it: a lease expiry demoting meanwhile changed
    /// the target, and a writer step needs a valid lease. `Err`: why the step was not started.
    async fn enter_writer_gate(&self, run: &Run<'_>) -> Result<MutexGuard<'_, ()>, &'static str> {
        let g = self.writer_gate.lock().await;
        if self.target_changed(run.target) {
            return Err(NEWER_STATE);
        }
        let lease_ok =
            run.desired.writer_lease_ms == 0 || self.lock().lease.valid_at(clock::now_ms());
        if !lease_ok {
            return Err(
                "not started: the writer lease is not valid (any more); the host stays read-only",
            );
        }
        Ok(g)
    }

    fn finish_step(&self, step: &Step, name: &str, o: Outcome, t: Instant, run: &mut Run<'_>) {
        if !o.ok {
            run.report.failed = true;
            if run.report.writer_failed && run.report.promotion_failure.is_none() {
                run.report.promotion_failure = Some(format!("{name}: {}", o.message));
            }
            if matches!(step, Step::WaitRelayLog)
                && !run.desired.force
                && self.target_changed(run.target)
            {
                run.report.aborted = true;
            }
        }
        self.record(name, &o, t.elapsed());
    }

    async fn deny_write_step(&self, db: &mut Db, run: &mut Run<'_>) -> Outcome {
        let o = Outcome::from(db.deny_write().await);
        run.deny_failed = !o.ok;
        o
    }

    async fn kill_step(&self, db: &mut Db, run: &mut Run<'_>) -> Outcome {
        let (kill, retry) = self.kill_then_deny_again(db, run.deny_failed).await;
        match retry {
            Some(true) => run.deny_failed = false,
            Some(false) => run.report.failed = true,
            None => {}
        }
        kill
    }

    /// Starts replication, after checking the GTID history against the master it points at.
    async fn start_slave_step(
        &self,
        db: &mut Db,
        run: &mut Run<'_>,
        name: &str,
        t: Instant,
    ) -> End {
        let followed = run.followed_source();
        if let Some(am) = followed {
            if let Err(end) = self
                .history_gate(db, run, am, name, t, "not starting replication")
                .await
            {
                return end;
            }
        }
        let o = Outcome::from(self.start_slave(db).await);
        if let Some(am) = followed.filter(|_| o.ok) {
            self.verified(&am.name);
        }
        End::Done(o)
    }

    async fn repoint_step(
        &self,
        db: &mut Db,
        run: &mut Run<'_>,
        m: &Master,
        name: &str,
        t: Instant,
    ) -> End {
        if let Err(end) = self
            .history_gate(db, run, m, name, t, "not re-pointing")
            .await
        {
            // Not following the new master; not following a stale source either.
            return end;
        }
        let o = Outcome::from(self.repoint(db, m).await);
        if o.ok {
            self.lock().active_master = m.name.clone();
            self.verified(&m.name);
        }
        End::Done(o)
    }

    async fn check_source_step(
        &self,
        db: &mut Db,
        run: &mut Run<'_>,
        m: &Master,
        name: &str,
        t: Instant,
    ) -> End {
        if let Err(end) = self.history_gate(db, run, m, name, t, "not verified").await {
            return end;
        }
        self.verified(&m.name);
        End::Done(Outcome::ok(format!(
            "already replicating from {}; it has every transaction this host has",
            m.name
        )))
    }

    /// Replication from `m` may go on only when this host has no transaction `m` lacks (see
    /// [`crate::gtid`]). `Err` ends the step: a refusal (recorded; running replication threads
    /// are stopped, so this host follows neither `m` nor a stale source), or the check could not
    /// be made (`refusing` says what the step then does not do).
    async fn history_gate(
        &self,
        db: &mut Db,
        run: &mut Run<'_>,
        m: &Master,
        name: &str,
        t: Instant,
        refusing: &str,
    ) -> Result<(), End> {
        match self.errant_check(db, m).await {
            Ok(None) => Ok(()),
            Ok(Some(msg)) => {
                let stopped = self.stop_running_slave(db).await;
                run.report.failed = true;
                self.record_refusal(name, format!("{msg}{stopped}"), t.elapsed());
                Err(End::Recorded)
            }
            Err(e) => Err(End::Done(Outcome::err(format!(
                "{refusing}: could not compare GTID histories with {}: {e}",
                m.name
            )))),
        }
    }

    /// The relay-log sync gate, then catching up over `ha_catchup`.
    async fn sync_step(&self, db: &mut Db, run: &mut Run<'_>) -> Outcome {
        let synced = match self.sync_gate(db, run.target).await {
            Ok(m) => match self
                .catch_up(db, &run.desired.cluster_hosts, run.target)
                .await
            {
                Ok(None) => Ok(m),
                Ok(Some(c)) => Ok(format!("{m}; {c}")),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match synced {
            Ok(m) => {
                run.report.synced = true;
                Outcome::ok(m)
            }
            Err(e) if run.desired.force => {
                run.report.synced = true;
                tracing::error!(
                    "relay-log sync failed but the request is forced: becoming writable anyway: {e}"
                );
                Outcome::err(format!(
                    "{e}; FORCED: becoming writable anyway (move_role --force, or the monitor renewing the confirmed writer's role)"
                ))
            }
            Err(e) => {
                run.report.writer_failed = true;
                Outcome::err(format!("{e}; staying read-only (writer_synced=false)"))
            }
        }
    }

    async fn allow_write_step(&self, db: &mut Db, run: &mut Run<'_>) -> Outcome {
        let o = Outcome::from(db.allow_write().await);
        if !o.ok {
            run.report.writer_failed = true;
        }
        o
    }

    /// Adds a role IP, then announces it with gratuitous ARP (outside the writer gate: the
    /// announcement takes ~0.5 s).
    async fn add_ip_step(
        &self,
        r: &RoleIp,
        mut gate: Option<MutexGuard<'_, ()>>,
        run: &mut Run<'_>,
        name: &str,
        t: Instant,
    ) -> End {
        let dev = &self.cfg.cluster_interface;
        let o = match ip::add(r.ip, dev).await {
            Ok(ip::Change::Done) => Outcome::ok(format!("ip -4 addr add {}/32 dev {dev}", r.ip)),
            Ok(ip::Change::AlreadyThere) => Outcome::ok(format!("{} was already present", r.ip)),
            Err(e) => Outcome::err(e),
        };
        drop(gate.take());
        if !o.ok {
            if run.is_writer_add(&Step::AddIp(r.clone())) {
                run.report.writer_failed = true;
            }
            return End::Done(o);
        }
        self.record(name, &o, t.elapsed());
        let t2 = Instant::now();
        let a = match arp::announce(dev, r.ip).await {
            Ok(mac) => Outcome::ok(format!(
                "announced {} at {mac} on {dev} (request+reply, {} rounds over ~0.5 s)",
                r.ip,
                arp::ROUNDS
            )),
            Err(e) => Outcome::err(e),
        };
        if !a.ok {
            run.report.failed = true;
        }
        self.record(&format!("gratuitous arp {}", r.ip), &a, t2.elapsed());
        End::Recorded
    }
}
