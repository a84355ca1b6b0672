//! Before a promotion: ending binlog dump sessions, the relay-log sync gate and catching up
//! over the temporary `ha_catchup` connection from a replica that is ahead.

use std::time::Duration;

use super::Agent;
use crate::desired::Master;
use crate::gtid;
use crate::master_ssl::master_ssl_clause;
use crate::mysql::{Db, DbError, Flavor};
use crate::sqltext::{self, quote, Thread};

/// The temporary named replication connection a promotion catches up over (MariaDB
/// multi-source): the default connection is left as it is.
const CATCH_UP_CONNECTION: &str = "ha_catchup";

/// Bound of asking one other host for its GTID state during a promotion: an unreachable host
/// must not hold the promotion up for long.
const CATCH_UP_PROBE: Duration = Duration::from_secs(1);

impl Agent {
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
    pub(super) async fn catch_up(
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
                    .unwrap_or_else(|_| {
                        Err(DbError::Connect {
                            endpoint: remote.endpoint().to_string(),
                            cause: format!("no answer within {CATCH_UP_PROBE:?}"),
                        })
                    });
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
        let r: Result<Option<String>, String> =
            match db.exec(&format!("START SLAVE '{conn}'")).await {
                Err(e) => Err(e.into()),
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
                [a.err(), b.err()].into_iter().flatten().map(String::from).collect::<Vec<_>>().join("; ")
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
            r = db.wait_value(sql, wait) => Some(r.map_err(String::from)),
            _ = target_rx.wait_for(|t| *t != target) => {
                db.reset();
                None
            }
        }
    }

    /// The relay-log sync gate before a promotion (docs/product.md F6).
    pub(super) async fn sync_gate(&self, db: &mut Db, target: u64) -> Result<String, String> {
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
}
