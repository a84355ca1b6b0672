//! Reading one server for the preflight: connect with the monitor's account (as the checks do,
//! [`crate::checks::Target`]), then `SELECT VERSION(), CURRENT_USER()`, the global variables
//! the checks judge, `SHOW GRANTS` and `SHOW SLAVE STATUS` (`SHOW REPLICA STATUS` on MySQL ≥
//! 8.0.22). Every connection and statement has a deadline; nothing is written.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ha_config::MonitorConfig;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::time::timeout;

use crate::checks::{mysql_error_number, StatusSyntax, Target};

/// The variables the checks read (`SHOW GLOBAL VARIABLES` lists only those the server has,
/// so a missing one is told apart from `OFF`). MariaDB and MySQL names.
pub const VARIABLES: &[&str] = &[
    "server_id",
    "read_only",
    "log_bin",
    "log_slave_updates",
    "log_replica_updates",
    "gtid_strict_mode",
    "gtid_mode",
    "enforce_gtid_consistency",
    "auto_increment_increment",
    "auto_increment_offset",
    "rpl_semi_sync_master_enabled",
    "rpl_semi_sync_slave_enabled",
    "rpl_semi_sync_master_timeout",
    "rpl_semi_sync_master_wait_point",
    "rpl_semi_sync_master_wait_no_slave",
    "rpl_semi_sync_source_enabled",
    "rpl_semi_sync_replica_enabled",
    "rpl_semi_sync_source_timeout",
    "rpl_semi_sync_source_wait_point",
    "rpl_semi_sync_source_wait_no_replica",
];

/// Reads [`VARIABLES`] (a literal: sqlx takes static SQL; a test keeps the two in step).
const VARIABLES_SQL: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN (\
    'server_id', 'read_only', 'log_bin', 'log_slave_updates', 'log_replica_updates', \
    'gtid_strict_mode', 'gtid_mode', 'enforce_gtid_consistency', \
    'auto_increment_increment', 'auto_increment_offset', \
    'rpl_semi_sync_master_enabled', 'rpl_semi_sync_slave_enabled', \
    'rpl_semi_sync_master_timeout', 'rpl_semi_sync_master_wait_point', \
    'rpl_semi_sync_master_wait_no_slave', 'rpl_semi_sync_source_enabled', \
    'rpl_semi_sync_replica_enabled', 'rpl_semi_sync_source_timeout', \
    'rpl_semi_sync_source_wait_point', 'rpl_semi_sync_source_wait_no_replica')";

/// What was read from one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// `SELECT VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1-log`.
    pub version: String,
    /// `CURRENT_USER()`: the account the grants belong to, e.g. `ha_monitor@%`.
    pub account: String,
    /// [`VARIABLES`] the server has, by lower-case name.
    pub vars: BTreeMap<String, String>,
    /// The lines of `SHOW GRANTS`, or why they could not be read.
    pub grants: Result<Vec<String>, String>,
    pub replica: Replica,
}

impl Default for HostFacts {
    fn default() -> Self {
        HostFacts {
            version: String::new(),
            account: String::new(),
            vars: BTreeMap::new(),
            grants: Ok(Vec::new()),
            replica: Replica::None,
        }
    }
}

/// The server's replication, from `SHOW SLAVE STATUS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replica {
    /// No row: not configured as a replica.
    #[default]
    None,
    /// Error 1227: the monitor account lacks the privilege (the text is the server's).
    Denied(String),
    /// Any other failure (timeout, unreadable row).
    Failed(String),
    Of(SlaveRow),
}

/// The columns of `SHOW SLAVE STATUS` the checks judge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaveRow {
    pub master_host: String,
    pub master_port: Option<u16>,
    pub io_running: String,
    pub sql_running: String,
    pub last_io_error: String,
    pub last_sql_error: String,
    pub seconds_behind: Option<u64>,
}

/// Why a server could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    pub kind: ConnectFailure,
    /// What failed, e.g. `no answer within 5s` or the server's error message.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// No connection within the deadline.
    Timeout,
    /// Error 1045: wrong user or password, or no such account.
    AccessDenied,
    /// Error 1130: the account does not allow connections from this host's address.
    HostNotAllowed,
    /// Any other connect error (refused, TLS, …).
    Connect,
    /// Connected, but a statement failed or timed out.
    Query,
}

/// Reads every host of `cfg` at the same time; one result per host, in file order.
pub async fn all(cfg: &MonitorConfig, deadline: Duration) -> Vec<Result<HostFacts, ProbeError>> {
    let handles: Vec<_> = cfg
        .hosts
        .iter()
        .map(|h| {
            let target = Target {
                host: h.name.clone(),
                ip: h.ip,
                mysql_port: h.mysql_port,
                user: cfg.credentials.monitor_user.clone(),
                password: cfg.credentials.monitor_password.clone(),
                tls: cfg.credentials.monitor_tls.clone(),
            };
            // The whole host, however many statements, within two deadlines.
            tokio::spawn(async move {
                match timeout(deadline * 2, read_host(&target, deadline)).await {
                    Ok(r) => r,
                    Err(_) => Err(ProbeError {
                        kind: ConnectFailure::Query,
                        text: format!("no complete answer within {:?}", deadline * 2),
                    }),
                }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| {
            Err(ProbeError {
                kind: ConnectFailure::Query,
                text: format!("the check task ended abnormally: {e}"),
            })
        }));
    }
    out
}

/// `ip:port`, with brackets for IPv6.
pub fn addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

async fn read_host(t: &Target, deadline: Duration) -> Result<HostFacts, ProbeError> {
    let mut conn = connect(t, deadline).await?;
    let facts = read_facts(&mut conn, deadline).await;
    let _ = timeout(Duration::from_millis(200), conn.close()).await;
    facts
}

/// Connects as the monitor's checks do (same options, same TLS).
async fn connect(t: &Target, deadline: Duration) -> Result<MySqlConnection, ProbeError> {
    let opts = MySqlConnectOptions::new()
        .host(&t.ip.to_string())
        .port(t.mysql_port)
        .username(&t.user)
        .password(&t.password)
        .disable_statement_logging();
    let opts = ha_config::MysqlTls::apply(t.tls.as_ref(), opts);
    match timeout(deadline, opts.connect()).await {
        Err(_) => Err(ProbeError {
            kind: ConnectFailure::Timeout,
            text: format!("no connection within {deadline:?}"),
        }),
        Ok(Err(e)) => Err(ProbeError {
            kind: match mysql_error_number(&e) {
                Some(1045) => ConnectFailure::AccessDenied,
                Some(1130) => ConnectFailure::HostNotAllowed,
                _ => ConnectFailure::Connect,
            },
            text: e.to_string(),
        }),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Runs one read-only statement within `deadline`.
async fn query(
    conn: &mut MySqlConnection,
    sql: &'static str,
    deadline: Duration,
) -> Result<Vec<MySqlRow>, (Option<u16>, String)> {
    match timeout(deadline, sqlx::raw_sql(sql).fetch_all(&mut *conn)).await {
        Err(_) => Err((None, format!("`{sql}`: no answer within {deadline:?}"))),
        Ok(Err(e)) => Err((mysql_error_number(&e), format!("`{sql}`: {e}"))),
        Ok(Ok(rows)) => Ok(rows),
    }
}

async fn read_facts(
    conn: &mut MySqlConnection,
    deadline: Duration,
) -> Result<HostFacts, ProbeError> {
    let failed = |(_, text): (Option<u16>, String)| ProbeError {
        kind: ConnectFailure::Query,
        text,
    };
    let rows = query(conn, "SELECT VERSION(), CURRENT_USER()", deadline)
        .await
        .map_err(failed)?;
    let first = rows.first();
    let version = first.and_then(|r| text(r, 0)).unwrap_or_default();
    let account = first.and_then(|r| text(r, 1)).unwrap_or_default();

    let vars = query(conn, VARIABLES_SQL, deadline)
        .await
        .map_err(failed)?
        .iter()
        .filter_map(|r| Some((text(r, 0)?.to_ascii_lowercase(), text(r, 1)?)))
        .collect();

    let grants = match query(conn, "SHOW GRANTS", deadline).await {
        Ok(rows) => Ok(rows.iter().filter_map(|r| text(r, 0)).collect()),
        Err((_, e)) => Err(e),
    };

    let syntax = StatusSyntax::for_version(&version);
    let replica = match query(conn, syntax.statement(), deadline).await {
        Err((Some(1227), e)) => Replica::Denied(e),
        Err((_, e)) => Replica::Failed(e),
        Ok(rows) => match rows.first() {
            None => Replica::None,
            Some(row) => Replica::Of(slave_row(row, syntax)),
        },
    };
    Ok(HostFacts {
        version,
        account,
        vars,
        grants,
        replica,
    })
}

fn slave_row(row: &MySqlRow, syntax: StatusSyntax) -> SlaveRow {
    let col = |slave: &str, replica: &str| {
        let name = match syntax {
            StatusSyntax::Slave => slave,
            StatusSyntax::Replica => replica,
        };
        text(row, name).unwrap_or_default()
    };
    SlaveRow {
        master_host: col("Master_Host", "Source_Host"),
        master_port: col("Master_Port", "Source_Port").parse().ok(),
        io_running: col("Slave_IO_Running", "Replica_IO_Running"),
        sql_running: col("Slave_SQL_Running", "Replica_SQL_Running"),
        last_io_error: col("Last_IO_Error", "Last_IO_Error"),
        last_sql_error: col("Last_SQL_Error", "Last_SQL_Error"),
        seconds_behind: col("Seconds_Behind_Master", "Seconds_Behind_Source")
            .parse()
            .ok(),
    }
}

/// A column as text whatever its wire type (text, binary string or number); `None` for NULL
/// or a missing column.
fn text<I: sqlx::ColumnIndex<MySqlRow> + Copy>(row: &MySqlRow, i: I) -> Option<String> {
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v;
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return v.map(|b| String::from_utf8_lossy(&b).into_owned());
    }
    if let Ok(v) = row.try_get::<Option<u64>, _>(i) {
        return v.map(|n| n.to_string());
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map(|n| n.to_string());
    }
    None
}

impl HostFacts {
    /// A variable's value, if the server has it.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The first of `names` the server has, with its value (MariaDB name first, then MySQL's).
    pub fn first_var<'a>(&'a self, names: &[&'a str]) -> Option<(&'a str, &'a str)> {
        names.iter().find_map(|n| Some((*n, self.var(n)?)))
    }

    /// A boolean variable: `Some(true)` for ON/1/YES/TRUE, `Some(false)` for OFF/0/NO/FALSE.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.var(name).and_then(parse_flag)
    }

    pub fn number(&self, name: &str) -> Option<u64> {
        self.var(name).and_then(|v| v.trim().parse().ok())
    }

    /// `@@read_only`: anything but OFF is read-only (MariaDB 11 also has `NO_LOCK…` values).
    pub fn read_only(&self) -> Option<bool> {
        self.var("read_only").map(|v| parse_flag(v) != Some(false))
    }

    pub fn is_mariadb(&self) -> bool {
        self.version.to_ascii_lowercase().contains("mariadb")
    }
}

pub fn parse_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Some(true),
        "OFF" | "0" | "NO" | "FALSE" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_read_only_accept_every_spelling() {
        let mut f = HostFacts::default();
        for (v, want) in [("ON", true), ("1", true), ("OFF", false), ("0", false)] {
            f.vars.insert("log_bin".into(), v.into());
            assert_eq!(f.flag("log_bin"), Some(want), "{v}");
        }
        f.vars.insert("log_bin".into(), "maybe".into());
        assert_eq!(f.flag("log_bin"), None);
        assert_eq!(f.flag("gtid_strict_mode"), None, "missing");
        for (v, ro) in [
            ("OFF", false),
            ("ON", true),
            ("NO_LOCK", true),
            ("0", false),
        ] {
            f.vars.insert("read_only".into(), v.into());
            assert_eq!(f.read_only(), Some(ro), "{v}");
        }
    }

    #[test]
    fn first_var_prefers_the_first_name_the_server_has() {
        let mut f = HostFacts::default();
        f.vars
            .insert("rpl_semi_sync_source_enabled".into(), "ON".into());
        let names = [
            "rpl_semi_sync_master_enabled",
            "rpl_semi_sync_source_enabled",
        ];
        assert_eq!(
            f.first_var(&names),
            Some(("rpl_semi_sync_source_enabled", "ON"))
        );
        f.vars
            .insert("rpl_semi_sync_master_enabled".into(), "OFF".into());
        assert_eq!(
            f.first_var(&names),
            Some(("rpl_semi_sync_master_enabled", "OFF"))
        );
    }

    #[test]
    fn the_statement_reads_exactly_the_variables() {
        let listed: Vec<&str> = VARIABLES_SQL.split('\'').skip(1).step_by(2).collect();
        assert_eq!(listed, VARIABLES);
    }

    #[test]
    fn addresses_bracket_ipv6() {
        assert_eq!(addr("10.0.0.1".parse().unwrap(), 3306), "10.0.0.1:3306");
        assert_eq!(addr("fd00::1".parse().unwrap(), 3306), "[fd00::1]:3306");
    }

    #[test]
    fn mariadb_is_told_by_the_version() {
        let f = HostFacts {
            version: "10.11.6-MariaDB-0+deb12u1-log".into(),
            ..HostFacts::default()
        };
        assert!(f.is_mariadb());
        assert!(!HostFacts::default().is_mariadb());
    }
}
