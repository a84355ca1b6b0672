//! One convergence pass: observe → plan → run the steps → reconcile.
//!
//! Every decision is the planner's ([`crate::plan`]): which steps, which errant-transaction
//! check, and what the agent holds afterwards. This module only gathers the facts and applies
//! the verdicts.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::steps::Run;
use super::{Agent, Outcome};
use crate::desired::Desired;
use crate::ip;
use crate::mysql::Db;
use crate::plan::{
    broken_replication_check, plan, reconcile, Actual, Following, MysqlActual, PromotionError,
};

impl Agent {
    /// One convergence pass. Returns true when everything is applied.
    pub(super) async fn pass(&self, desired: &Desired, target: u64) -> bool {
        let _serial = self.change_lock.lock().await;
        let this = self.cfg.this.clone();
        self.lock().operations.clear();
        let mut db = self.apply_db.lock().await;

        // Observe.
        let actual = self.observe(&mut db).await;
        let observed = actual.ips.is_some() && actual.mysql.is_some();

        // Plan.
        let held = self.lock().held.clone();
        let steps = plan(desired, &held, &actual, &this);
        if !steps.is_empty() {
            tracing::debug!(?steps, "plan");
        }
        let mut run = Run::new(desired, target, &actual, &this);
        run.report.failed = !observed;
        if let Some(am) = broken_replication_check(desired, &actual, &steps, &this) {
            let t = Instant::now();
            match self.errant_check(&mut db, am).await {
                Ok(Some(msg)) => {
                    run.report.failed = true;
                    self.record_refusal("replication check", msg, t.elapsed());
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("errant-transaction check against {}: {e}", am.name),
            }
        }

        // Run the steps.
        self.run_steps(&mut db, &steps, &mut run).await;
        drop(db);

        // Reconcile what is held with what is really there now.
        let ips_now = match ip::list_v4(&self.cfg.cluster_interface).await {
            Ok(v) => Some(v),
            Err(_) => actual.ips.clone(),
        };
        let mut g = self.lock();
        let r = reconcile(
            desired,
            &g.held,
            actual.mysql.as_ref(),
            ips_now.as_deref(),
            &run.report,
            &this,
        );
        g.held = r.held;
        if r.converged {
            g.last_error.clear();
        }
        match r.promotion_error {
            PromotionError::Clear => g.promotion_error.clear(),
            PromotionError::Keep => {}
            PromotionError::Set(e) => g.promotion_error = e,
        }
        match r.following {
            Following::Unchanged => {}
            Following::Nobody => g.active_master.clear(),
            Following::Master(m) => g.active_master = m,
        }
        r.converged
    }

    /// Reads the interface's IPs and what the plan needs from MySQL; a failed read is recorded
    /// and leaves its half `None`.
    async fn observe(&self, db: &mut Db) -> Actual {
        let t = Instant::now();
        let ips = match ip::list_v4(&self.cfg.cluster_interface).await {
            Ok(v) => Some(v),
            Err(e) => {
                self.record("list ips", &Outcome::err(e), t.elapsed());
                None
            }
        };
        let t = Instant::now();
        let mysql = match observe_mysql(db).await {
            Ok(m) => {
                self.apply_conn_id
                    .store(db.connection_id().unwrap_or(0), Ordering::Relaxed);
                Some(m)
            }
            Err(e) => {
                self.record("read mysql state", &Outcome::err(e), t.elapsed());
                None
            }
        };
        Actual { ips, mysql }
    }
}

async fn observe_mysql(db: &mut Db) -> Result<MysqlActual, String> {
    let ro = db.read_only().await?;
    let slave = db.slave_status().await?;
    Ok(MysqlActual {
        read_only: ro.read_only,
        super_read_only: ro.super_read_only,
        slave,
    })
}
