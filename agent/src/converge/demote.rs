//! Demotion on this host: killing client connections, and `read_only=1` again after the kill.
//!
//! A pass, ClearBadRoles and the removal of a writer IP all demote through
//! [`Agent::kill_then_deny_again`]. The lease guard's fence ([`super::guard`]) shares
//! only [`Agent::kill_connections`]: it runs `read_only=1` and the kills concurrently on
//! purpose, on two connections, because its deadline is the lease's.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Agent, Outcome};
use crate::mysql::Db;
use crate::plan::Step;
use crate::sqltext::{self, KillDecision};

/// What a kill of client connections did.
#[derive(Debug, Default)]
pub(crate) struct Kills {
    /// Connections killed.
    pub(crate) ids: Vec<u64>,
    /// Seconds waited for in-flight writes before killing them.
    pub(crate) waited_s: u32,
    /// KILLs that failed, with why.
    pub(crate) failures: Vec<String>,
}

impl Kills {
    /// Adds a later round's kills to these.
    pub(crate) fn merge(&mut self, later: Kills) {
        self.ids.extend(later.ids);
        self.waited_s += later.waited_s;
        self.failures.extend(later.failures);
    }

    /// The recorded outcome: failed when any KILL failed or the list could not be read.
    pub(crate) fn outcome(r: Result<Kills, String>) -> Outcome {
        let k = match r {
            Ok(k) => k,
            Err(e) => return Outcome::err(e),
        };
        let ids = k.ids.iter().map(u64::to_string).collect::<Vec<_>>();
        let mut msg = format!("killed {} client connection(s)", ids.len());
        if !ids.is_empty() {
            msg.push_str(&format!(" (ids {})", ids.join(",")));
        }
        if k.waited_s > 0 {
            msg.push_str(&format!("; waited {} s for in-flight writes", k.waited_s));
        }
        if k.failures.is_empty() {
            Outcome::ok(msg)
        } else {
            Outcome::err(format!("{msg}; failures: {}", k.failures.join("; ")))
        }
    }
}

impl Agent {
    /// Kills client connections, sparing replication, system threads, the agent's own
    /// connections and (except on the final round) in-flight writes.
    /// `spare`: more connection ids of this agent's own. `Err`: the connections could not be
    /// listed.
    pub(crate) async fn kill_connections(
        &self,
        db: &mut Db,
        no_sparing: bool,
        spare: &[u64],
    ) -> Result<Kills, String> {
        let retries = if no_sparing {
            0
        } else {
            self.cfg.max_kill_retries
        };
        let mut k = Kills::default();
        for round in 0..=retries {
            let final_round = round == retries;
            let list = db
                .processlist()
                .await
                .map_err(|e| format!("cannot list connections: {e}"))?;
            let mut own = vec![self.status_conn_id.load(Ordering::Relaxed)];
            own.extend(db.connection_id());
            own.extend_from_slice(spare);
            let mut spared = 0;
            for p in &list {
                match sqltext::kill_decision(p, &own, &self.cfg.spare_users, final_round) {
                    KillDecision::Keep => {}
                    KillDecision::Wait => spared += 1,
                    KillDecision::Kill => match db.kill(p.id).await {
                        Ok(()) => k.ids.push(p.id),
                        Err(e) => k
                            .failures
                            .push(format!("KILL {} ({}@{}): {e}", p.id, p.user, p.command)),
                    },
                }
            }
            if spared == 0 {
                break;
            }
            k.waited_s += 1;
            tracing::info!("waiting 1 s for {spared} in-flight write(s) before killing them (round {}/{retries})", round + 1);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(k)
    }

    /// Demotes the writer outside a pass (ClearBadRoles, before removing a writer IP):
    /// `read_only=1`, then [`Agent::kill_then_deny_again`]. Each step is recorded under the
    /// same names a pass uses (its `DenyWrite` and `KillConnections` steps run the same two
    /// halves).
    pub(super) async fn deny_write_and_kill(&self, db: &mut Db) {
        let t = std::time::Instant::now();
        let d = Outcome::from(db.deny_write().await);
        self.record(&Step::DenyWrite.to_string(), &d, t.elapsed());
        let t = std::time::Instant::now();
        let (k, _) = self.kill_then_deny_again(db, !d.ok).await;
        self.record(&Step::KillConnections.to_string(), &k, t.elapsed());
    }

    /// The second half of every demotion: kill client connections (sparing no in-flight write
    /// when `read_only=1` failed), then, if `read_only=1` had failed and the kill worked,
    /// `read_only=1` again: the first may have been blocked by the connections just killed.
    /// When the kill failed too (server down or frozen) a retry would only delay the IP removal
    /// that follows by another timeout.
    ///
    /// Returns the kill's outcome and, when the retry ran, whether it succeeded (it records
    /// itself as "read_only=1 (retry after kill)").
    pub(super) async fn kill_then_deny_again(
        &self,
        db: &mut Db,
        deny_failed: bool,
    ) -> (Outcome, Option<bool>) {
        let kill = Kills::outcome(self.kill_connections(db, deny_failed, &[]).await);
        if !(deny_failed && kill.ok) {
            return (kill, None);
        }
        let t = std::time::Instant::now();
        let retry = Outcome::from(db.deny_write().await);
        self.record("read_only=1 (retry after kill)", &retry, t.elapsed());
        (kill, Some(retry.ok))
    }
}
