//! Errant transactions: GTIDs this host has and the master it is about to follow does not.
//!
//! With semi-sync AFTER_SYNC, a write in flight on the active master when it is cut off is
//! already in that master's binary log while it waits for a replica's ACK that never comes.
//! When the writer lease expires the agent demotes the server and kills the waiting session:
//! the client never got an OK, the new master never got the transaction, but it stays committed
//! on the old master. Re-pointing that host at the new master would make its GTID history
//! diverge (MariaDB with `gtid_strict_mode`: error 1950 "out-of-order sequence number"), so
//! before re-pointing or restarting replication the agent compares GTID states and refuses,
//! with a message that says what to do.
//!
//! The rule (MariaDB), on `@@global.gtid_binlog_state` of both servers — the last GTID of every
//! (replication domain, server_id) pair ever logged, kept across binlog purges:
//!
//! > a (domain, server_id) pair is **errant** when this host's last sequence number for it is
//! > greater than the master's last sequence number for the same pair, or the master has no
//! > entry for that pair at all.
//!
//! Within one domain a server's own GTIDs have increasing sequence numbers, and a master with
//! `log_slave_updates` logs every transaction it applied under its originating server_id, so
//! the master's entry for (d, s) is the newest transaction *from s in d* it has: anything newer
//! from s on this host is missing there. Comparing per pair (not per domain) also catches a
//! host whose errant GTID `0-1-57` is below the master's newer `0-2-900`: the master's history
//! for server 1 ends at `0-1-56`. Several domains are compared independently.
//!
//! MySQL: the agent asks the local server for `GTID_SUBTRACT(local gtid_executed, master
//! gtid_executed)` instead (see `converge/replication.rs`); this module formats the result.

use std::collections::BTreeMap;

use crate::sqltext::parse_mariadb_gtids;

/// One (domain, server_id) pair this host is ahead on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errant {
    pub domain: u32,
    pub server_id: u32,
    /// This host's last seq_no for the pair.
    pub local_seq: u64,
    /// The master's last seq_no for the pair (`None`: the master has none from that server).
    pub master_seq: Option<u64>,
}

impl Errant {
    pub fn local_gtid(&self) -> String {
        format!("{}-{}-{}", self.domain, self.server_id, self.local_seq)
    }

    pub fn master_gtid(&self) -> String {
        match self.master_seq {
            Some(s) => format!("{}-{}-{s}", self.domain, self.server_id),
            None => format!(
                "nothing from server {} in domain {}",
                self.server_id, self.domain
            ),
        }
    }

    /// How many transactions at most: sequence numbers of one domain are shared by all
    /// servers, so the gap is an upper bound (exact when only this server wrote meanwhile).
    pub fn at_most(&self) -> u64 {
        self.local_seq - self.master_seq.unwrap_or(0)
    }
}

fn state_map(s: &str) -> BTreeMap<(u32, u32), u64> {
    let mut m = BTreeMap::new();
    for (d, srv, seq) in parse_mariadb_gtids(s) {
        let e = m.entry((d, srv)).or_insert(seq);
        *e = (*e).max(seq);
    }
    m
}

/// The errant (domain, server_id) pairs of `local_state` with respect to `master_state`
/// (both `@@global.gtid_binlog_state` texts of MariaDB), in domain/server order.
pub fn mariadb_errant(local_state: &str, master_state: &str) -> Vec<Errant> {
    let master = state_map(master_state);
    state_map(local_state)
        .into_iter()
        .filter_map(|((domain, server_id), local_seq)| {
            let master_seq = master.get(&(domain, server_id)).copied();
            (master_seq.is_none_or(|m| local_seq > m)).then_some(Errant {
                domain,
                server_id,
                local_seq,
                master_seq,
            })
        })
        .collect()
}

/// The operator-facing refusal for MariaDB findings (empty `errant` = no message).
pub fn errant_message(host: &str, master: &str, errant: &[Errant]) -> Option<String> {
    if errant.is_empty() {
        return None;
    }
    let total: u64 = errant.iter().map(Errant::at_most).sum();
    let pairs = errant
        .iter()
        .map(|e| format!("gtid {} vs {} on {master}", e.local_gtid(), e.master_gtid()))
        .collect::<Vec<_>>()
        .join("; ");
    let count = if errant.iter().all(|e| e.at_most() == 1) {
        format!("{total} transaction(s)")
    } else {
        format!("up to {total} transaction(s)")
    };
    Some(refusal(host, master, &count, &pairs))
}

/// The refusal for MySQL (`missing` = GTID_SUBTRACT(local, master), non-empty).
pub fn mysql_errant_message(host: &str, master: &str, missing: &str) -> Option<String> {
    let missing = missing.trim();
    if missing.is_empty() {
        return None;
    }
    Some(refusal(
        host,
        master,
        "transaction(s)",
        &format!("GTIDs {}", missing.replace('\n', "")),
    ))
}

fn refusal(host: &str, master: &str, count: &str, detail: &str) -> String {
    format!(
        "host {host} has {count} the new master {master} does not have ({detail}): they were \
         never acknowledged by a semi-sync replica; rejoining would diverge. Rebuild this host \
         from {master} (see README: Rejoining an old master that has unacknowledged \
         transactions) or rewind them; not replicating, host stays read-only"
    )
}

/// What a replica (`remote_state`, server `remote_id`) received from another server that this
/// host (`local_state`, server `local_id`) has not, in (domain, server) streams this host
/// already follows: the replica is *ahead* of this host, not diverged (its own writes and
/// streams this host never saw are left out). Before a promotion such a difference is
/// replicated from that replica first (see `converge/promotion.rs`, catch-up).
pub fn mariadb_ahead(
    remote_state: &str,
    local_state: &str,
    remote_id: u32,
    local_id: u32,
) -> Vec<Errant> {
    mariadb_errant(remote_state, local_state)
        .into_iter()
        .filter(|e| e.master_seq.is_some() && e.server_id != remote_id && e.server_id != local_id)
        .collect()
}

/// The `MASTER_GTID_WAIT` position that covers `ahead`: per domain, its highest GTID.
pub fn wait_position(ahead: &[Errant]) -> String {
    let mut by_domain: BTreeMap<u32, &Errant> = BTreeMap::new();
    for e in ahead {
        let best = by_domain.entry(e.domain).or_insert(e);
        if e.local_seq > best.local_seq {
            *best = e;
        }
    }
    by_domain
        .values()
        .map(|e| e.local_gtid())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_history_is_not_errant() {
        assert!(mariadb_errant("0-1-56", "0-1-56").is_empty());
        assert!(mariadb_errant("", "0-1-56").is_empty());
        assert!(mariadb_errant("", "").is_empty());
        // A replica behind its master is just behind.
        assert!(mariadb_errant("0-1-50", "0-1-56").is_empty());
        assert!(mariadb_errant("0-1-56", "0-1-56,0-2-80").is_empty());
    }

    #[test]
    fn old_master_with_an_unacknowledged_write() {
        // The lab's S4: db1 logged 0-1-57 and was cut off; db2 took over at 0-1-56.
        let e = mariadb_errant("0-1-57", "0-1-56,0-2-60");
        assert_eq!(
            e,
            vec![Errant {
                domain: 0,
                server_id: 1,
                local_seq: 57,
                master_seq: Some(56)
            }]
        );
        let msg = errant_message("db1", "db2", &e).expect("message");
        assert!(
            msg.starts_with("host db1 has 1 transaction(s) the new master db2 does not have (gtid 0-1-57 vs 0-1-56 on db2)"),
            "{msg}"
        );
        assert!(msg.contains("never acknowledged"), "{msg}");
        assert!(msg.contains("Rebuild this host from db2"), "{msg}");
    }

    #[test]
    fn diverged_below_the_masters_newer_sequence_numbers() {
        // Comparing per domain only (57 < 900) would miss it; per server it is visible.
        let e = mariadb_errant("0-2-40,0-1-57", "0-1-56,0-2-900");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].local_gtid(), "0-1-57");
        assert_eq!(e[0].master_gtid(), "0-1-56");
    }

    #[test]
    fn server_the_master_never_heard_of() {
        let e = mariadb_errant("0-1-56,0-3-5", "0-1-56,0-2-60");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].server_id, 3);
        assert_eq!(e[0].master_seq, None);
        assert_eq!(e[0].master_gtid(), "nothing from server 3 in domain 0");
        let msg = errant_message("db3", "db2", &e).expect("message");
        assert!(msg.contains("up to 5 transaction(s)"), "{msg}");
    }

    #[test]
    fn domains_are_independent() {
        // Domain 1 is fine; domain 2 has one errant transaction from server 1.
        let local = "1-1-10,2-1-7,2-2-3";
        let master = "1-1-10,1-2-12,2-1-6,2-2-9";
        let e = mariadb_errant(local, master);
        assert_eq!(
            e,
            vec![Errant {
                domain: 2,
                server_id: 1,
                local_seq: 7,
                master_seq: Some(6)
            }]
        );
        // The same server in another domain does not cover it.
        assert_eq!(mariadb_errant("5-1-3", "0-1-99").len(), 1);
        assert!(errant_message("h", "m", &[]).is_none());
    }

    #[test]
    fn mysql_message() {
        assert!(mysql_errant_message("db1", "db2", " ").is_none());
        let m = mysql_errant_message("db1", "db2", "3e11fa47-71ca-11e1-9e33-c80aa9429562:57")
            .expect("message");
        assert!(
            m.contains("GTIDs 3e11fa47-71ca-11e1-9e33-c80aa9429562:57"),
            "{m}"
        );
    }

    #[test]
    fn a_replica_ahead_in_the_old_masters_stream() {
        // db3 (server 3) got 0-1-7 from the old master (server 1); db2 (server 2) stopped at
        // 0-1-6. db3's own write 0-3-2 and its stream 1-5-9 that db2 never saw are not
        // "ahead": they would be errant, not caught up.
        let db3 = "0-1-7,0-3-2,1-5-9";
        let db2 = "0-1-6,0-3-1";
        let ahead = mariadb_ahead(db3, db2, 3, 2);
        assert_eq!(
            ahead,
            vec![Errant {
                domain: 0,
                server_id: 1,
                local_seq: 7,
                master_seq: Some(6)
            }]
        );
        assert_eq!(wait_position(&ahead), "0-1-7");
        // Equal histories, or db2 ahead: nothing.
        assert!(mariadb_ahead("0-1-6", "0-1-6", 3, 2).is_empty());
        assert!(mariadb_ahead("0-1-5", "0-1-6", 3, 2).is_empty());
    }

    #[test]
    fn wait_position_takes_the_highest_per_domain() {
        let ahead = [
            Errant {
                domain: 0,
                server_id: 1,
                local_seq: 7,
                master_seq: Some(6),
            },
            Errant {
                domain: 0,
                server_id: 4,
                local_seq: 9,
                master_seq: Some(2),
            },
            Errant {
                domain: 2,
                server_id: 1,
                local_seq: 3,
                master_seq: Some(1),
            },
        ];
        assert_eq!(wait_position(&ahead), "0-4-9,2-1-3");
    }
}
