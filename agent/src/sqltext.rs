//! Pure SQL helpers: literal escaping, `SHOW SLAVE STATUS` parsing, PROCESSLIST filtering for
//! the connection kill and GTID position arithmetic. No I/O here, so all of it is unit tested.

use std::collections::BTreeMap;

/// One result row read through the text protocol: column name → value (`None` = SQL NULL).
///
/// Reading SHOW output generically (every value as text) avoids sqlx's strict type checks on
/// columns whose types differ between MariaDB and MySQL versions.
pub type TextRow = BTreeMap<String, Option<String>>;

/// Quotes `s` as a MySQL string literal.
///
/// `CHANGE MASTER TO` refuses placeholders, so values are inlined. The agent's session clears
/// `NO_BACKSLASH_ESCAPES` right after connecting (see `mysql.rs`), which makes backslash
/// escaping reliable; quotes are doubled as well so the literal is also valid without it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A GTID position/set as reported by MariaDB (`0-1-100,1-2-7`) or MySQL (`uuid:1-5`) is
/// inlined into `MASTER_GTID_WAIT(...)`; it must only contain the characters such sets use.
pub fn valid_gtid_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ',' | ':' | ' ' | '\n'))
}

/// State of a replication thread as SHOW SLAVE STATUS prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    Running,
    Connecting,
    Stopped,
}

impl Thread {
    fn parse(s: &str) -> Thread {
        match s {
            "Yes" => Thread::Running,
            "Connecting" | "Preparing" => Thread::Connecting,
            _ => Thread::Stopped,
        }
    }
}

/// The fields of `SHOW SLAVE STATUS` the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveStatus {
    pub master_host: String,
    pub master_port: u16,
    pub io: Thread,
    pub sql: Thread,
    pub master_log_file: String,
    pub read_master_log_pos: u64,
    pub relay_master_log_file: String,
    pub exec_master_log_pos: u64,
    pub seconds_behind_master: Option<u64>,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`); MySQL: `Auto_Position` 1 → "Yes".
    pub using_gtid: String,
    /// MariaDB `Gtid_IO_Pos`: everything the IO thread has received.
    pub gtid_io_pos: String,
    /// MySQL `Retrieved_Gtid_Set`.
    pub retrieved_gtid_set: String,
}

impl SlaveStatus {
    /// Parses one row of `SHOW SLAVE STATUS` (MariaDB or MySQL column names).
    pub fn from_row(row: &TextRow) -> SlaveStatus {
        let s = |k: &str| -> String { row.get(k).cloned().flatten().unwrap_or_default() };
        let n = |k: &str| -> u64 { s(k).trim().parse().unwrap_or(0) };
        let using_gtid = match row.get("Using_Gtid") {
            Some(Some(v)) => v.clone(),
            _ => {
                if s("Auto_Position") == "1" {
                    "Yes".to_string()
                } else {
                    "No".to_string()
                }
            }
        };
        SlaveStatus {
            master_host: s("Master_Host"),
            master_port: s("Master_Port").trim().parse().unwrap_or(0),
            io: Thread::parse(&s("Slave_IO_Running")),
            sql: Thread::parse(&s("Slave_SQL_Running")),
            master_log_file: s("Master_Log_File"),
            read_master_log_pos: n("Read_Master_Log_Pos"),
            relay_master_log_file: s("Relay_Master_Log_File"),
            exec_master_log_pos: n("Exec_Master_Log_Pos"),
            seconds_behind_master: row
                .get("Seconds_Behind_Master")
                .cloned()
                .flatten()
                .and_then(|v| v.trim().parse().ok()),
            last_io_error: s("Last_IO_Error"),
            last_sql_error: s("Last_SQL_Error"),
            using_gtid,
            gtid_io_pos: s("Gtid_IO_Pos"),
            retrieved_gtid_set: s("Retrieved_Gtid_Set"),
        }
    }

    pub fn uses_gtid(&self) -> bool {
        !self.using_gtid.eq_ignore_ascii_case("no") && !self.using_gtid.is_empty()
    }

    /// Both threads run (IO `Connecting` does not count).
    pub fn running(&self) -> bool {
        self.io == Thread::Running && self.sql == Thread::Running
    }

    /// True when the SQL thread has executed everything the IO thread wrote to the relay log
    /// (compared in the master's coordinates, which both GTID and file/pos setups report).
    pub fn relay_log_applied(&self) -> bool {
        self.relay_master_log_file == self.master_log_file
            && self.exec_master_log_pos >= self.read_master_log_pos
    }

    /// Replicates from `ip:port` (Master_Host may be a name; compare as text).
    pub fn is_from(&self, ip: &str, port: u16) -> bool {
        self.master_host == ip && self.master_port == port
    }
}

/// One row of `SHOW FULL PROCESSLIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub id: u64,
    pub user: String,
    pub command: String,
    pub info: String,
}

impl Process {
    pub fn from_row(row: &TextRow) -> Option<Process> {
        let s = |k: &str| -> String { row.get(k).cloned().flatten().unwrap_or_default() };
        Some(Process {
            id: s("Id").trim().parse().ok()?,
            user: s("User"),
            command: s("Command"),
            info: s("Info"),
        })
    }
}

/// Commands of threads that are never killed: replication (both directions), the server's
/// own daemons, and threads already being killed.
const SPARED_COMMANDS: &[&str] = &[
    "Binlog Dump",
    "Binlog Dump GTID",
    "Slave_IO",
    "Slave_SQL",
    "Slave_worker",
    "Daemon",
    "Killed",
    "Register Slave",
];

/// True for the sessions a replica holds open on its source to receive the binary log.
pub fn is_binlog_dump(command: &str) -> bool {
    matches!(command, "Binlog Dump" | "Binlog Dump GTID")
}

/// Users of server-internal threads (replica threads show as `system user` in both servers).
const SPARED_USERS: &[&str] = &["system user", "event_scheduler", "replication_applier"];

/// First words of statements that are in-flight writes: these get up to `max_kill_retries`
/// seconds to finish before they are killed (as mysql-mmm's kill_sql did, plus COMMIT, LOAD,
/// TRUNCATE and RENAME, which it missed).
const WRITE_VERBS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "REPAIR", "OPTIMIZE",
    "ANALYZE", "CHECK", "COMMIT", "LOAD", "TRUNCATE", "RENAME",
];

/// What to do with one client thread during writer removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillDecision {
    /// Replication, system thread or one of the agent's own connections.
    Keep,
    /// An in-flight write: spared this round (killed on the final round).
    Wait,
    Kill,
}

/// Decides the fate of `p`; `own` are the agent's own connection ids, `spare_users` the
/// configured users whose sessions are never killed (the monitor's check account).
pub fn kill_decision(
    p: &Process,
    own: &[u64],
    spare_users: &[String],
    final_round: bool,
) -> KillDecision {
    if own.contains(&p.id)
        || SPARED_COMMANDS
            .iter()
            .any(|c| p.command.eq_ignore_ascii_case(c))
        || SPARED_USERS.iter().any(|u| p.user.eq_ignore_ascii_case(u))
        || spare_users.contains(&p.user)
    {
        return KillDecision::Keep;
    }
    if !final_round && is_write(&p.info) {
        return KillDecision::Wait;
    }
    KillDecision::Kill
}

/// True when `sql` (optionally preceded by `/* … */` or `-- …` comments) starts with a write verb.
pub fn is_write(sql: &str) -> bool {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("/*") {
            match rest.find("*/") {
                Some(end) => s = rest[end + 2..].trim_start(),
                None => return false,
            }
        } else if s.starts_with("-- ") || s.starts_with('#') {
            match s.find('\n') {
                Some(end) => s = s[end + 1..].trim_start(),
                None => return false,
            }
        } else {
            break;
        }
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    WRITE_VERBS.contains(&word.as_str())
}

/// A MariaDB GTID position (`domain-server-seq` per domain, comma separated).
pub fn parse_mariadb_gtids(s: &str) -> Vec<(u32, u32, u64)> {
    s.split(',')
        .filter_map(|g| {
            let mut it = g.trim().split('-');
            let d = it.next()?.parse().ok()?;
            let srv = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            Some((d, srv, seq))
        })
        .collect()
}

/// True when every domain of `wanted` is reached (same or higher seq_no) in `have`.
pub fn mariadb_pos_contains(have: &str, wanted: &str) -> bool {
    let have = parse_mariadb_gtids(have);
    parse_mariadb_gtids(wanted)
        .iter()
        .all(|(d, _, seq)| have.iter().any(|(hd, _, hseq)| hd == d && hseq >= seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> TextRow {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn quoting_escapes_everything_dangerous() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote("a'b"), "'a''b'");
        assert_eq!(quote("a\\b"), "'a\\\\b'");
        assert_eq!(quote("x\0y\nz\r\u{1a}"), "'x\\0y\\nz\\r\\Z'");
        assert_eq!(quote("'; DROP TABLE t; --"), "'''; DROP TABLE t; --'");
    }

    #[test]
    fn gtid_text_validation() {
        assert!(valid_gtid_text("0-1-100,1-2-7"));
        assert!(valid_gtid_text("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"));
        assert!(!valid_gtid_text("0-1-1'); DROP"));
    }

    #[test]
    fn slave_status_mariadb() {
        let r = row(&[
            ("Master_Host", Some("10.0.60.101")),
            ("Master_Port", Some("3306")),
            ("Slave_IO_Running", Some("Connecting")),
            ("Slave_SQL_Running", Some("Yes")),
            ("Master_Log_File", Some("bin.000002")),
            ("Read_Master_Log_Pos", Some("1234")),
            ("Relay_Master_Log_File", Some("bin.000002")),
            ("Exec_Master_Log_Pos", Some("1000")),
            ("Seconds_Behind_Master", None),
            ("Last_IO_Error", Some("error connecting")),
            ("Last_SQL_Error", Some("")),
            ("Using_Gtid", Some("Slave_Pos")),
            ("Gtid_IO_Pos", Some("0-1-42")),
        ]);
        let s = SlaveStatus::from_row(&r);
        assert_eq!(s.master_host, "10.0.60.101");
        assert_eq!(s.master_port, 3306);
        assert_eq!(s.io, Thread::Connecting);
        assert_eq!(s.sql, Thread::Running);
        assert!(!s.running());
        assert!(s.uses_gtid());
        assert_eq!(s.seconds_behind_master, None);
        assert!(!s.relay_log_applied());
        assert!(s.is_from("10.0.60.101", 3306));
        assert!(!s.is_from("10.0.60.101", 3307));
        assert_eq!(s.gtid_io_pos, "0-1-42");
    }

    #[test]
    fn slave_status_mysql_auto_position() {
        let r = row(&[
            ("Master_Host", Some("h")),
            ("Master_Port", Some("3306")),
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("No")),
            ("Master_Log_File", Some("b.1")),
            ("Read_Master_Log_Pos", Some("5")),
            ("Relay_Master_Log_File", Some("b.1")),
            ("Exec_Master_Log_Pos", Some("5")),
            ("Seconds_Behind_Master", Some("7")),
            ("Auto_Position", Some("1")),
        ]);
        let s = SlaveStatus::from_row(&r);
        assert!(s.uses_gtid());
        assert_eq!(s.sql, Thread::Stopped);
        assert!(s.relay_log_applied());
        assert_eq!(s.seconds_behind_master, Some(7));
        let r2 = row(&[("Using_Gtid", Some("No"))]);
        assert!(!SlaveStatus::from_row(&r2).uses_gtid());
    }

    fn p(id: u64, user: &str, command: &str, info: &str) -> Process {
        Process {
            id,
            user: user.into(),
            command: command.into(),
            info: info.into(),
        }
    }

    #[test]
    fn kill_filter_spares_replication_system_and_own() {
        let own = [7];
        assert_eq!(
            kill_decision(&p(7, "ha", "Query", "SHOW"), &own, &[], true),
            KillDecision::Keep
        );
        for c in [
            "Binlog Dump",
            "Binlog Dump GTID",
            "Slave_IO",
            "Slave_SQL",
            "Daemon",
        ] {
            assert_eq!(
                kill_decision(&p(1, "repl", c, ""), &own, &[], true),
                KillDecision::Keep
            );
        }
        assert_eq!(
            kill_decision(&p(2, "system user", "Connect", ""), &own, &[], true),
            KillDecision::Keep
        );
        assert_eq!(
            kill_decision(&p(3, "app", "Sleep", ""), &own, &[], false),
            KillDecision::Kill
        );
        assert_eq!(
            kill_decision(&p(4, "app", "Query", "SELECT 1"), &own, &[], false),
            KillDecision::Kill
        );
        assert_eq!(
            kill_decision(
                &p(5, "app", "Query", "/* x */ insert into t values (1)"),
                &own,
                &[],
                false
            ),
            KillDecision::Wait
        );
        assert_eq!(
            kill_decision(
                &p(5, "app", "Query", "INSERT INTO t VALUES (1)"),
                &own,
                &[],
                true
            ),
            KillDecision::Kill
        );
        // The monitor's check account is spared when configured.
        let spare = ["ha_monitor".to_string()];
        assert_eq!(
            kill_decision(&p(6, "ha_monitor", "Sleep", ""), &own, &spare, true),
            KillDecision::Keep
        );
        assert_eq!(
            kill_decision(&p(6, "ha_monitor", "Sleep", ""), &own, &[], true),
            KillDecision::Kill
        );
    }

    #[test]
    fn write_detection() {
        assert!(is_write("UPDATE t SET a=1"));
        assert!(is_write("  /* a */ /* b */ delete from t"));
        assert!(is_write("-- c\nINSERT INTO t VALUES(1)"));
        assert!(is_write("commit"));
        assert!(!is_write("SELECT * FROM t"));
        assert!(!is_write("/* unterminated insert"));
        assert!(!is_write(""));
        assert!(!is_write("INSERTX"));
    }

    #[test]
    fn processlist_row() {
        let r = row(&[
            ("Id", Some("12")),
            ("User", Some("app")),
            ("Command", Some("Query")),
            ("Info", None),
        ]);
        assert_eq!(Process::from_row(&r), Some(p(12, "app", "Query", "")));
        assert_eq!(Process::from_row(&row(&[("Id", Some("x"))])), None);
    }

    #[test]
    fn gtid_containment() {
        assert!(mariadb_pos_contains("0-1-10,1-2-5", "0-1-10"));
        assert!(mariadb_pos_contains("0-2-11", "0-1-10"));
        assert!(!mariadb_pos_contains("0-1-9", "0-1-10"));
        assert!(!mariadb_pos_contains("1-1-100", "0-1-10"));
        assert!(mariadb_pos_contains("0-1-1", ""));
    }

    #[test]
    fn binlog_dump_sessions_are_recognised() {
        assert!(is_binlog_dump("Binlog Dump"));
        assert!(is_binlog_dump("Binlog Dump GTID"));
        assert!(!is_binlog_dump("Query"));
        assert!(!is_binlog_dump("Slave_IO"));
    }
}
