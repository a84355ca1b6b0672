//! Rejoining an old master that has unacknowledged (errant) transactions: rebuild it from the
//! current writer — the DBA procedure of README.md "Rejoining an old master that has
//! unacknowledged transactions", automated for the lab.
//!
//! 1. The source stops replicating *from* the host (master-master peer): its IO thread must not
//!    hold a binlog dump on files `RESET MASTER` is about to delete. (Verified in the lab: left
//!    connected, the host's SQL thread later waits forever for a semi-sync ACK that the stale
//!    dump thread never triggers.) The host stops replicating.
//! 2. `mariadb-dump --single-transaction --gtid --master-data=2 --add-drop-database` of every
//!    non-system schema of the source; the dump records the GTID position `D` of its snapshot.
//! 3. Import on the host with `sql_log_bin=0` (nothing of the import reaches its binlog).
//! 4. On the host, in one session: `RESET MASTER` (drops the errant transactions from its
//!    binlog), `SET GLOBAL gtid_binlog_state = S` where S is the source's binlog state as of `D`
//!    (so the host's history is the source's history: a later errant-transaction check does not
//!    find the source "ahead" of it), `SET GLOBAL gtid_slave_pos = D`.
//! 5. `CHANGE MASTER TO` the source, `MASTER_USE_GTID=slave_pos`; `START SLAVE`; wait until
//!    both threads run.
//! 6. If the source replicated from the host: on the source `STOP SLAVE`, `SET GLOBAL
//!    gtid_slave_pos = @@gtid_binlog_pos` (the source's own newest GTID, `Q`; gtid_strict_mode
//!    refuses anything older than its own binlog, error 1947), `CHANGE MASTER TO` the host
//!    (this also drops the relay log holding the errant transactions it could not apply, error
//!    1950); wait until the host has applied `Q` (`MASTER_GTID_WAIT`) — a replica asking for a
//!    GTID its master does not have yet fails at once with error 1236 — then `START SLAVE` and
//!    check that both threads keep running.
//!
//! The host stays read-only throughout; the source's writes go on (they reach the host through
//! replication from `D` on).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::{creds, mariadb, wait_until, Lab, MYSQL_PORT};

/// What [`Lab::rebuild_from`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Schemas copied from the source.
    pub schemas: Vec<String>,
    /// GTID position of the dump (the host's new `gtid_slave_pos`).
    pub position: String,
    /// The host's `gtid_binlog_state` after `RESET MASTER`.
    pub binlog_state: String,
    /// The source replicated from the host and was re-pointed at the host's new history.
    pub source_repointed: bool,
}

/// Deadline of the dump and of the import.
const COPY_TIMEOUT: Duration = Duration::from_secs(300);

/// The `gtid_slave_pos` recorded by `mariadb-dump --gtid --master-data=2`
/// (`-- SET GLOBAL gtid_slave_pos='0-2-57';`).
pub fn dump_gtid_position(dump: &str) -> Option<String> {
    dump.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("-- SET GLOBAL gtid_slave_pos='")?;
        let pos = rest.strip_suffix("';")?;
        valid_gtids(pos).then(|| pos.to_string())
    })
}

fn valid_gtids(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
}

fn parse(s: &str) -> Vec<(u32, u32, u64)> {
    s.split(',')
        .filter_map(|g| {
            let mut it = g.trim().split('-');
            let d = it.next()?.parse().ok()?;
            let srv = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            Some((d, srv, seq))
        })
        .collect()
}

/// The source's `gtid_binlog_state` as of the dump position `pos`, from its state read
/// *after* the dump (`later`): in each domain, entries newer than the dump's sequence number
/// belong to transactions after the snapshot (the host gets them through replication) and are
/// dropped; the dump position itself is the last entry of its domain. Domains the dump
/// position does not mention are kept as they are.
pub fn binlog_state_at(pos: &str, later: &str) -> String {
    let dump: BTreeMap<u32, (u32, u64)> = parse(pos)
        .into_iter()
        .map(|(d, s, n)| (d, (s, n)))
        .collect();
    let mut state: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    for (d, s, n) in parse(later) {
        match dump.get(&d) {
            Some((_, dn)) if n > *dn => {}
            _ => {
                state.insert((d, s), n);
            }
        }
    }
    for (d, (s, n)) in &dump {
        state.insert((*d, *s), *n);
    }
    state
        .iter()
        .map(|((d, s), n)| format!("{d}-{s}-{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Lab {
    /// Rebuilds `host` from `source` (the current writer) so it can rejoin: stops replication
    /// both ways, reloads every non-system schema from a consistent `mariadb-dump` of `source`
    /// (imported with `sql_log_bin=0`), resets `host`'s binary log and GTID state to the dump's
    /// position, points it at `source` by GTID and starts replication; a `source` that
    /// replicated from `host` (master-master peer) is re-pointed at `host`'s new history. See
    /// the module documentation for each step and why.
    ///
    /// In an ha cluster, stop ha-agent on `host` meanwhile (the acceptance tests do), so that
    /// nothing starts replication between `RESET MASTER` and the new GTID state.
    pub fn rebuild_from(&self, host: &str, source: &str) -> Result<Rebuilt> {
        let h = self.host(host)?.clone();
        let s = self.host(source)?.clone();
        if h.name == s.name {
            return Err(Error::Other(format!(
                "rebuild_from: {host} cannot be rebuilt from itself"
            )));
        }
        let source_follows_host = self
            .replication(source)?
            .is_some_and(|r| r.source.as_deref() == Some(h.name.as_str()));
        // 1.
        if source_follows_host {
            self.sql(source, "STOP SLAVE")?;
        }
        self.sql(host, "STOP SLAVE")?;
        // 2.
        let schemas: Vec<String> = self
            .sql(
                source,
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN \
                 ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY 1",
            )?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect();
        if schemas.is_empty() {
            return Err(Error::Other(format!(
                "rebuild_from: {source} has no schema to copy"
            )));
        }
        let dump = Cmd::new("mariadb-dump")
            .args([
                "--no-defaults".to_string(),
                "--user=root".into(),
                format!("--socket={}", s.socket.display()),
                "--single-transaction".into(),
                "--gtid".into(),
                "--master-data=2".into(),
                "--add-drop-database".into(),
                "--routines".into(),
                "--events".into(),
                "--triggers".into(),
                "--databases".into(),
            ])
            .args(schemas.iter().cloned())
            .timeout(COPY_TIMEOUT)
            .run()?
            .stdout;
        let position = dump_gtid_position(&dump).ok_or_else(|| {
            Error::Other(format!(
                "rebuild_from: the dump of {source} records no GTID position (-- SET GLOBAL gtid_slave_pos=…)"
            ))
        })?;
        let later = self
            .sql_value(source, "SELECT @@GLOBAL.gtid_binlog_state")?
            .unwrap_or_default();
        let state = binlog_state_at(&position, &later);
        // 3.
        let mut import = b"SET SESSION sql_log_bin = 0;\n".to_vec();
        import.extend_from_slice(dump.as_bytes());
        Cmd::new("mariadb")
            .args([
                "--no-defaults".to_string(),
                "--user=root".into(),
                format!("--socket={}", h.socket.display()),
            ])
            .stdin(import)
            .timeout(COPY_TIMEOUT)
            .run()?;
        // 4.
        self.sql(
            host,
            &format!(
                "RESET MASTER; SET GLOBAL gtid_binlog_state = {st}; \
                 SET GLOBAL gtid_slave_pos = {p};",
                p = mariadb::quote(&position),
                st = mariadb::quote(&state),
            ),
        )?;
        // 5.
        self.change_master(host, source)?;
        self.wait_running(host, Duration::from_secs(30))?;
        // 6.
        if source_follows_host {
            self.repoint_peer(source, &h.name, h.ip.to_string())?;
        }
        let binlog_state = self
            .sql_value(host, "SELECT @@GLOBAL.gtid_binlog_state")?
            .unwrap_or_default();
        Ok(Rebuilt {
            schemas,
            position,
            binlog_state,
            source_repointed: source_follows_host,
        })
    }

    fn wait_running(&self, host: &str, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("{host}: IO and SQL threads running"),
            timeout,
            || match self.replication(host)? {
                Some(r) if r.running() => Ok(Some(())),
                Some(r) => Err(Error::Other(format!(
                    "IO {} SQL {} {} {}",
                    r.io_running, r.sql_running, r.last_io_error, r.last_sql_error
                ))),
                None => Err(Error::Other("no replication configured".into())),
            },
        )
    }

    /// Step 6: `writer` (which replicated from `host`) follows `host`'s new history from its
    /// own newest GTID.
    fn repoint_peer(&self, writer: &str, host: &str, host_ip: String) -> Result<()> {
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={MYSQL_PORT}, MASTER_USER={}, \
             MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos",
            mariadb::quote(&host_ip),
            mariadb::quote(creds::REPL_USER),
            mariadb::quote(creds::REPL_PASSWORD),
        );
        let start = Instant::now();
        loop {
            // A commit between reading and setting the position fails with 1947: try again.
            let r = self.sql(
                writer,
                &format!(
                    "STOP SLAVE; SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos; {change};"
                ),
            );
            match r {
                Ok(_) => break,
                Err(e) if start.elapsed() < Duration::from_secs(10) => {
                    eprintln!("ha-lab: rebuild_from: re-pointing {writer}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
        let q = self
            .sql_value(writer, "SELECT @@GLOBAL.gtid_slave_pos")?
            .unwrap_or_default();
        // Up to 30 s, in 5 s slices: one SQL call is cut off after `mariadb::SQL_TIMEOUT` (15 s).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waited = self
                .sql_value(
                    host,
                    &format!("SELECT MASTER_GTID_WAIT({}, 5)", mariadb::quote(&q)),
                )?
                .unwrap_or_default();
            if waited.trim() == "0" {
                break;
            }
            if Instant::now() >= deadline {
                let replication = match self.replication(host) {
                    Ok(Some(r)) => format!(
                        "IO {} SQL {} {} {}",
                        r.io_running, r.sql_running, r.last_io_error, r.last_sql_error
                    ),
                    Ok(None) => "no replication configured".to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(Error::Other(format!(
                    "rebuild_from: {host} did not apply {writer}'s position {q} within 30 s \
                     (its replication: {replication})"
                )));
            }
        }
        self.sql(writer, "START SLAVE")?;
        self.wait_running(writer, Duration::from_secs(30))?;
        // An IO thread asking for a position its master lacks stops right after connecting:
        // make sure it keeps running.
        std::thread::sleep(Duration::from_millis(500));
        self.wait_running(writer, Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_position_is_read() {
        let dump = "-- MariaDB dump\n--\n-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\
                    -- SET GLOBAL gtid_slave_pos='0-2-57';\nCREATE DATABASE x;\n";
        assert_eq!(dump_gtid_position(dump).as_deref(), Some("0-2-57"));
        assert_eq!(
            dump_gtid_position("-- SET GLOBAL gtid_slave_pos='0-1-1,1-2-3';").as_deref(),
            Some("0-1-1,1-2-3")
        );
        assert_eq!(
            dump_gtid_position("-- SET GLOBAL gtid_slave_pos='x';"),
            None
        );
        assert_eq!(dump_gtid_position("CREATE TABLE t (a int);"), None);
    }

    #[test]
    fn binlog_state_as_of_the_dump() {
        // Writes from server 2 continued after the dump at 0-2-60.
        assert_eq!(binlog_state_at("0-2-60", "0-1-56,0-2-75"), "0-1-56,0-2-60");
        // The dump came right after the failover: the last GTID was the old master's; the new
        // writer's later ones (0-2-57…) go, its older ones (an earlier tenure) stay.
        assert_eq!(binlog_state_at("0-1-56", "0-1-56,0-2-58"), "0-1-56");
        assert_eq!(binlog_state_at("0-1-56", "0-1-56,0-2-40"), "0-1-56,0-2-40");
        // Other domains are kept.
        assert_eq!(
            binlog_state_at("0-2-60", "0-1-56,0-2-61,1-3-7"),
            "0-1-56,0-2-60,1-3-7"
        );
    }
}
