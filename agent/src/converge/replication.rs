//! Replication towards the active master: the errant-transaction check, re-pointing
//! (CHANGE MASTER), starting replication and verifying its threads.

use std::time::Duration;

use tokio::time::Instant;

use super::Agent;
use crate::desired::Master;
use crate::gtid;
use crate::master_ssl::master_ssl_clause;
use crate::mysql::{Db, Flavor};
use crate::sqltext::{self, quote, SlaveStatus, Thread};

/// Poll interval while waiting for replication threads to run.
const THREAD_POLL: Duration = Duration::from_millis(250);
/// How long an errant-transaction finding is reused (same master, same local GTID state)
/// before the master is asked again: passes run on every ApplyState (every agent_period).
const ERRANT_CACHE: Duration = Duration::from_secs(5);

/// The last errant-transaction check (see [`crate::gtid`]).
#[derive(Debug, Clone)]
pub(super) struct ErrantCheck {
    master: String,
    local_state: String,
    at: Instant,
    finding: Option<String>,
}

impl Agent {
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
    pub(super) fn replication_endpoint(&self, m: &Master) -> ha_config::MysqlEndpoint {
        let mut ep = self.endpoint_of(m);
        ep.user = self.cfg.replication.user.clone();
        ep.password = self.cfg.replication.password.clone();
        ep.tls = self.cfg.replication.tls.clone();
        ep
    }

    /// Replication was verified for the active master `name` (see `Held::verified_master`).
    pub(super) fn verified(&self, name: &str) {
        self.lock().held.verified_master = Some(name.to_string());
    }

    /// `STOP SLAVE` when a replication thread runs; returns a note for the refusal message.
    pub(super) async fn stop_running_slave(&self, db: &mut Db) -> String {
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
    pub(super) async fn errant_check(
        &self,
        db: &mut Db,
        m: &Master,
    ) -> Result<Option<String>, String> {
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

    pub(super) async fn start_slave(&self, db: &mut Db) -> Result<String, String> {
        db.exec("START SLAVE").await?;
        let s = self.verify_threads(db).await?;
        Ok(format!(
            "START SLAVE: IO and SQL threads running, replicating from {}:{}",
            s.master_host, s.master_port
        ))
    }

    /// Re-points replication at `m` by GTID (file/pos only when GTID is off), starts it and
    /// verifies both threads run.
    pub(super) async fn repoint(&self, db: &mut Db, m: &Master) -> Result<String, String> {
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
}
