//! Demotion on this host: killing client connections, and `read_only=1` again after the kill.
//!
//! The lease guard's fence ([`crate::lease::guard`]) does not use the sequence here: it runs
//! `read_only=1` and the kills concurrently on purpose, on two connections.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Agent, Outcome};
use crate::mysql::Db;
use crate::sqltext::{self, KillDecision};

impl Agent {
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

    /// Demotes the writer outside a pass (ClearBadRoles, before removing a writer IP):
    /// `read_only=1`, then kill client connections (sparing no in-flight write when
    /// `read_only=1` failed), then [`Agent::deny_write_after_kill`]. Each step is recorded.
    ///
    /// A pass runs the same sequence as separate plan steps (`DenyWrite`, `KillConnections`),
    /// with its own checks between them; it shares only the retry.
    pub(super) async fn deny_write_and_kill(&self, db: &mut Db) {
        let t = std::time::Instant::now();
        let d = Outcome::from(db.deny_write().await);
        let deny_failed = !d.ok;
        self.record("read_only=1", &d, t.elapsed());
        let t = std::time::Instant::now();
        let k = self.kill_connections(db, deny_failed, &[]).await;
        self.record("kill connections", &k, t.elapsed());
        if deny_failed && k.ok {
            self.deny_write_after_kill(db).await;
        }
    }

    /// `read_only=1` again, after a `read_only=1` that failed and a kill that succeeded: the
    /// first may have been blocked by the connections just killed. Recorded as
    /// "read_only=1 (retry after kill)".
    pub(super) async fn deny_write_after_kill(&self, db: &mut Db) -> Outcome {
        let t = std::time::Instant::now();
        let retry = Outcome::from(db.deny_write().await);
        self.record("read_only=1 (retry after kill)", &retry, t.elapsed());
        retry
    }
}
