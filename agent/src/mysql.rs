//! Every SQL statement the agent sends to its local server, each with a deadline.
//!
//! sqlx has no connect or read timeout: a SIGSTOPped mariadbd completes the TCP handshake and
//! then hangs a connection forever. So every connect and every statement here is wrapped in
//! `tokio::time::timeout`; on any error or timeout the connection is dropped (its protocol
//! state is unknown) and the next call reconnects. One [`Db`] holds one reused connection; the
//! agent has two (the converger's, the status reader's) so a 30 s relay-log wait never blocks
//! a GetStatus.
//!
//! Statements go through `sqlx::raw_sql` (the text protocol): admin statements (KILL, CHANGE
//! MASTER, SET GLOBAL) cannot be prepared, and reading SHOW output as text avoids strict type
//! checks on columns whose types differ between server versions. Values inlined into
//! statements are validated (IPs, ports, numbers are typed) or escaped with
//! [`crate::sqltext::quote`].

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{Column, ConnectOptions, Row};

use crate::sqltext::{Process, SlaveStatus, TextRow};

pub use crate::db_error::DbError;
use crate::db_error::ER_NO_SUCH_THREAD;

/// Server family; decides which replication syntax is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

/// Facts about the connected server, read once per connection.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub flavor: Flavor,
    pub version: String,
    /// MySQL ≥ 5.7 has `super_read_only`; MariaDB (10.11 included) does not.
    pub has_super_read_only: bool,
    /// MySQL: `@@gtid_mode = ON`. MariaDB always has GTIDs.
    pub gtid_mode_on: bool,
    /// This connection's id (spared by the connection kill).
    pub connection_id: u64,
}

/// read_only flags as the server reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnly {
    pub read_only: bool,
    /// `None` where the server has no such variable.
    pub super_read_only: Option<bool>,
}

/// GTID positions (MariaDB names; MySQL fills `binlog` with gtid_executed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPositions {
    pub binlog: String,
    pub slave: String,
    pub current: String,
}

/// One MySQL connection with deadlines and reconnect.
pub struct Db {
    opts: MySqlConnectOptions,
    endpoint: String,
    timeout: Duration,
    conn: Option<(MySqlConnection, ServerInfo)>,
}

/// Where the `MASTER_PASSWORD` literal of `sql` is: byte range of the value (quotes
/// included). The literal is scanned as MySQL does — `''` and backslash escapes stay inside —
/// so a password containing `, MASTER_` or a quote cannot end it early.
fn password_span(sql: &str) -> Option<std::ops::Range<usize>> {
    let key = sql.find("MASTER_PASSWORD")? + "MASTER_PASSWORD".len();
    let bytes = sql.as_bytes();
    let mut i = key;
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'=') {
        i += 1;
    }
    let start = i;
    let quote = *bytes.get(i)?;
    if quote != b'\'' && quote != b'"' {
        let end = sql[start..].find(',').map_or(sql.len(), |e| start + e);
        return Some(start..end);
    }
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            c if c == quote => return Some(start..i + 1),
            _ => i += 1,
        }
    }
    Some(start..sql.len())
}

/// Statement text for error messages with secrets removed.
fn redact(sql: &str) -> String {
    match password_span(sql) {
        Some(r) => format!("{}<redacted>{}", &sql[..r.start], &sql[r.end..]),
        None => sql.to_string(),
    }
}

/// A server's error text about `sql` with the password removed: MySQL quotes the statement
/// "near '…'" in syntax errors, which may include the literal.
fn scrub(message: &str, sql: &str) -> String {
    let Some(r) = password_span(sql) else {
        return message.to_string();
    };
    let literal = &sql[r];
    let inner = literal
        .get(1..literal.len().saturating_sub(1))
        .filter(|v| !v.is_empty())
        .unwrap_or(literal);
    message
        .replace(literal, "<redacted>")
        .replace(inner, "<redacted>")
}

fn to_text_row(row: &MySqlRow) -> TextRow {
    let mut out = TextRow::new();
    for (i, col) in row.columns().iter().enumerate() {
        let v: Option<Vec<u8>> = row.try_get_unchecked(i).unwrap_or(None);
        out.insert(
            col.name().to_string(),
            v.map(|b| String::from_utf8_lossy(&b).into_owned()),
        );
    }
    out
}

fn first_value(rows: &[TextRow]) -> Option<String> {
    rows.first()
        .and_then(|r| r.values().next().cloned())
        .flatten()
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_uppercase()).as_deref(),
        Some("1" | "ON" | "YES" | "TRUE")
    )
}

/// True when nothing listens where the server should: its process is not running (TCP
/// connection refused, or the Unix socket is missing or refuses). A server that is slow,
/// frozen or out of connections still accepts the connection or lets it time out, and is
/// *not* reported as stopped: only a stopped server cannot write until it is started again,
/// and it starts read-only (my.cnf `read_only=1`, a requirement of ha).
pub async fn server_stopped(cfg: &ha_config::MysqlEndpoint, timeout: Duration) -> bool {
    use std::io::ErrorKind::{ConnectionRefused, NotFound};
    let r = match &cfg.socket {
        Some(sock) => tokio::time::timeout(timeout, tokio::net::UnixStream::connect(sock))
            .await
            .map(|r| r.map(drop)),
        None => tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((cfg.host.as_str(), cfg.port)),
        )
        .await
        .map(|r| r.map(drop)),
    };
    matches!(r, Ok(Err(e)) if matches!(e.kind(), ConnectionRefused | NotFound))
}

impl Db {
    /// A handle for the server described by the agent config; does not connect yet.
    pub fn new(cfg: &ha_config::MysqlEndpoint, timeout: Duration) -> Db {
        let mut opts = MySqlConnectOptions::new()
            .username(&cfg.user)
            .password(&cfg.password)
            .statement_cache_capacity(0);
        opts = ha_config::MysqlTls::apply(cfg.tls.as_ref(), opts);
        let endpoint = match &cfg.socket {
            Some(sock) => {
                opts = opts.socket(sock);
                format!("{} as {}", sock.display(), cfg.user)
            }
            None => {
                opts = opts.host(&cfg.host).port(cfg.port);
                format!("{}:{} as {}", cfg.host, cfg.port, cfg.user)
            }
        };
        Db {
            opts,
            endpoint,
            timeout,
            conn: None,
        }
    }

    /// `127.0.0.1:3306 as ha_agent`, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Forgets the connection (after an error its protocol state is unknown).
    pub fn reset(&mut self) {
        self.conn = None;
    }

    /// The server facts, connecting first when needed.
    pub async fn info(&mut self) -> Result<ServerInfo, DbError> {
        self.ensure().await?;
        match &self.conn {
            Some((_, info)) => Ok(info.clone()),
            None => Err(self.no_connection()),
        }
    }

    /// The connection id, if connected.
    pub fn connection_id(&self) -> Option<u64> {
        self.conn.as_ref().map(|(_, i)| i.connection_id)
    }

    fn no_connection(&self) -> DbError {
        DbError::Connect {
            endpoint: self.endpoint.clone(),
            cause: "no connection".into(),
        }
    }

    async fn ensure(&mut self) -> Result<(), DbError> {
        if self.conn.is_some() {
            return Ok(());
        }
        let cant = |cause: String| DbError::Connect {
            endpoint: self.endpoint.clone(),
            cause,
        };
        let mut conn = match tokio::time::timeout(self.timeout, self.opts.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(cant(e.to_string())),
            Err(_) => {
                return Err(cant(format!(
                    "no answer within {:.1} s (server down, frozen or overloaded?)",
                    self.timeout.as_secs_f64()
                )))
            }
        };
        // Inline literals are escaped with backslashes: make sure they mean what we think.
        let setup =
            "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')";
        let info_sql = "SELECT VERSION() AS v, CONNECTION_ID() AS id";
        let timeout = self.timeout;
        let r = tokio::time::timeout(timeout, async {
            sqlx::raw_sql(setup).execute(&mut conn).await?;
            let rows = sqlx::raw_sql(info_sql).fetch_all(&mut conn).await?;
            let vars = sqlx::raw_sql(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('super_read_only', 'gtid_mode')",
            )
            .fetch_all(&mut conn)
            .await?;
            Ok::<_, sqlx::Error>((rows, vars))
        })
        .await;
        let (rows, vars) = match r {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(cant(format!("session set-up failed: {e}"))),
            Err(_) => return Err(cant("session set-up did not finish in time".into())),
        };
        let rows: Vec<TextRow> = rows.iter().map(to_text_row).collect();
        let vars: Vec<TextRow> = vars.iter().map(to_text_row).collect();
        let row = rows.first().cloned().unwrap_or_default();
        let version = row.get("v").cloned().flatten().unwrap_or_default();
        let connection_id = row
            .get("id")
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let var = |name: &str| {
            vars.iter()
                .find(|r| r.get("Variable_name").cloned().flatten().as_deref() == Some(name))
                .and_then(|r| r.get("Value").cloned().flatten())
        };
        let flavor = if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        let info = ServerInfo {
            flavor,
            has_super_read_only: var("super_read_only").is_some(),
            gtid_mode_on: flavor == Flavor::MariaDb || truthy(var("gtid_mode").as_deref()),
            version,
            connection_id,
        };
        self.conn = Some((conn, info));
        Ok(())
    }

    /// Runs `sql` and returns its rows as text, within `timeout` (default: mysql_timeout).
    ///
    /// A reused connection that turns out dead (mysqld restarted, network blip) is replaced and
    /// the statement retried once on a fresh connection, so a restart shows up as "cannot
    /// connect …" or not at all rather than as a stale-socket error. Every statement the agent
    /// sends is idempotent, so the retry is safe; timeouts are never retried.
    pub async fn rows_within(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Vec<TextRow>, DbError> {
        let reused = self.conn.is_some();
        match self.rows_once(sql, timeout).await {
            Err(e @ DbError::Broken { .. }) if reused => {
                tracing::debug!("MySQL connection lost ({e}); reconnecting once");
                self.rows_once(sql, timeout).await
            }
            r => r,
        }
    }

    async fn rows_once(&mut self, sql: &str, timeout: Duration) -> Result<Vec<TextRow>, DbError> {
        self.ensure().await?;
        let endpoint = self.endpoint.clone();
        let Some((conn, _)) = self.conn.as_mut() else {
            return Err(self.no_connection());
        };
        let q = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()));
        match tokio::time::timeout(timeout, q.fetch_all(&mut *conn)).await {
            Ok(Ok(rows)) => Ok(rows.iter().map(to_text_row).collect()),
            Ok(Err(e)) => {
                let err =
                    DbError::of_statement(&e, redact(sql), &endpoint, scrub(&e.to_string(), sql));
                if matches!(err, DbError::Broken { .. }) {
                    self.conn = None;
                }
                Err(err)
            }
            Err(_) => {
                self.conn = None;
                Err(DbError::Timeout {
                    sql: redact(sql),
                    endpoint,
                    after: timeout,
                })
            }
        }
    }

    pub async fn rows(&mut self, sql: &str) -> Result<Vec<TextRow>, DbError> {
        self.rows_within(sql, self.timeout).await
    }

    pub async fn exec(&mut self, sql: &str) -> Result<(), DbError> {
        self.rows(sql).await.map(|_| ())
    }

    /// Checks the connection is alive (a cheap round trip).
    pub async fn ping(&mut self) -> Result<(), DbError> {
        self.exec("SELECT 1").await
    }

    pub async fn read_only(&mut self) -> Result<ReadOnly, DbError> {
        let info = self.info().await?;
        let sql = if info.has_super_read_only {
            "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.super_read_only AS sro"
        } else {
            "SELECT @@GLOBAL.read_only AS ro"
        };
        let rows = self.rows(sql).await?;
        let row = rows.first().cloned().unwrap_or_default();
        let read_only = truthy(row.get("ro").cloned().flatten().as_deref());
        let super_read_only = info
            .has_super_read_only
            .then(|| truthy(row.get("sro").cloned().flatten().as_deref()));
        Ok(ReadOnly {
            read_only,
            super_read_only,
        })
    }

    /// `SET GLOBAL read_only=1` (and `super_read_only=1` where it exists).
    pub async fn deny_write(&mut self) -> Result<String, DbError> {
        let info = self.info().await?;
        self.exec("SET GLOBAL read_only = 1").await?;
        if info.has_super_read_only {
            self.exec("SET GLOBAL super_read_only = 1").await?;
            Ok("SET GLOBAL read_only = 1; SET GLOBAL super_read_only = 1".into())
        } else {
            Ok("SET GLOBAL read_only = 1 (server has no super_read_only)".into())
        }
    }

    /// `SET GLOBAL read_only=0` (clearing `super_read_only` first where it exists).
    pub async fn allow_write(&mut self) -> Result<String, DbError> {
        let info = self.info().await?;
        if info.has_super_read_only {
            self.exec("SET GLOBAL super_read_only = 0").await?;
        }
        self.exec("SET GLOBAL read_only = 0").await?;
        Ok("SET GLOBAL read_only = 0".into())
    }

    /// The master side of semi-sync replication; `None` without semi-sync support loaded.
    pub async fn semi_sync(&mut self) -> Result<Option<crate::semi_sync::SemiSync>, DbError> {
        use crate::semi_sync::{SemiSync, SEMI_SYNC_STATUS, SEMI_SYNC_VARIABLES};
        let variables = self.rows(SEMI_SYNC_VARIABLES).await?;
        let status = self.rows(SEMI_SYNC_STATUS).await?;
        Ok(SemiSync::from_rows(&variables, &status))
    }

    pub async fn slave_status(&mut self) -> Result<Option<SlaveStatus>, DbError> {
        let rows = self.rows("SHOW SLAVE STATUS").await?;
        Ok(rows.first().map(SlaveStatus::from_row))
    }

    pub async fn processlist(&mut self) -> Result<Vec<Process>, DbError> {
        let rows = self.rows("SHOW FULL PROCESSLIST").await?;
        Ok(rows.iter().filter_map(Process::from_row).collect())
    }

    /// `KILL <id>`; "Unknown thread id" (the thread ended meanwhile) is not an error.
    pub async fn kill(&mut self, id: u64) -> Result<(), DbError> {
        match self.exec(&format!("KILL {id}")).await {
            Err(e) if e.number() == Some(ER_NO_SUCH_THREAD) => Ok(()),
            r => r,
        }
    }

    pub async fn gtid_positions(&mut self) -> Result<GtidPositions, DbError> {
        let info = self.info().await?;
        match info.flavor {
            Flavor::MariaDb => {
                let rows = self
                    .rows("SELECT @@GLOBAL.gtid_binlog_pos AS b, @@GLOBAL.gtid_slave_pos AS s, @@GLOBAL.gtid_current_pos AS c")
                    .await?;
                let r = rows.first().cloned().unwrap_or_default();
                let g = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
                Ok(GtidPositions {
                    binlog: g("b"),
                    slave: g("s"),
                    current: g("c"),
                })
            }
            Flavor::MySql => {
                if !info.gtid_mode_on {
                    return Ok(GtidPositions::default());
                }
                let rows = self.rows("SELECT @@GLOBAL.gtid_executed").await?;
                let v = first_value(&rows).unwrap_or_default();
                Ok(GtidPositions {
                    binlog: v.clone(),
                    slave: String::new(),
                    current: v,
                })
            }
        }
    }

    /// What the errant-transaction check compares: MariaDB `@@global.gtid_binlog_state` (last
    /// GTID of every domain/server pair), MySQL `@@global.gtid_executed`; plus `@@log_bin`.
    /// Readable without any privilege (the replication account reads it on the new master).
    pub async fn gtid_history(&mut self) -> Result<(Flavor, String, bool), DbError> {
        let info = self.info().await?;
        let sql = match info.flavor {
            Flavor::MariaDb => "SELECT @@GLOBAL.gtid_binlog_state AS g, @@GLOBAL.log_bin AS b",
            Flavor::MySql => "SELECT @@GLOBAL.gtid_executed AS g, @@GLOBAL.log_bin AS b",
        };
        let rows = self.rows(sql).await?;
        let r = rows.first().cloned().unwrap_or_default();
        let g = r.get("g").cloned().flatten().unwrap_or_default();
        let b = truthy(r.get("b").cloned().flatten().as_deref());
        Ok((info.flavor, g, b))
    }

    /// `@@server_id` and `@@gtid_binlog_state` (MariaDB): whose history this is, and the
    /// history.
    pub async fn server_state(&mut self) -> Result<(u32, String), DbError> {
        let rows = self
            .rows("SELECT @@GLOBAL.server_id AS id, @@GLOBAL.gtid_binlog_state AS g")
            .await?;
        let r = rows.first().cloned().unwrap_or_default();
        let id = r
            .get("id")
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| DbError::Unexpected(format!("no server_id from {}", self.endpoint())))?;
        let g = r.get("g").cloned().flatten().unwrap_or_default();
        Ok((id, g))
    }

    /// Current binlog coordinates (`SHOW MASTER STATUS`), for file/pos re-pointing.
    pub async fn master_status(&mut self) -> Result<Option<(String, u64)>, DbError> {
        let rows = self.rows("SHOW MASTER STATUS").await?;
        Ok(rows.first().and_then(|r| {
            let file = r.get("File").cloned().flatten()?;
            let pos = r.get("Position").cloned().flatten()?.parse().ok()?;
            Some((file, pos))
        }))
    }

    /// Runs a wait function (`MASTER_GTID_WAIT`, `MASTER_POS_WAIT`, …) that may take up to
    /// `wait`; the statement deadline is `wait` plus the normal statement timeout.
    pub async fn wait_value(
        &mut self,
        sql: &str,
        wait: Duration,
    ) -> Result<Option<String>, DbError> {
        let rows = self.rows_within(sql, wait + self.timeout).await?;
        Ok(first_value(&rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let s =
            "CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='secret', MASTER_USE_GTID=slave_pos";
        let r = redact(s);
        assert!(!r.contains("secret"));
        assert!(r.contains("MASTER_HOST='h'"));
        assert!(r.contains("MASTER_USE_GTID=slave_pos"));
        assert_eq!(redact("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn a_password_that_looks_like_sql_is_redacted_whole() {
        for pw in [
            "a', MASTER_X='b",
            "x, MASTER_USER=y",
            "it''s",
            "back\\slash'",
            "\\",
        ] {
            let sql = format!(
                "CHANGE MASTER TO MASTER_HOST='h', MASTER_USER='u', MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1",
                crate::sqltext::quote(pw)
            );
            let r = redact(&sql);
            assert!(!r.contains(pw), "{pw:?} leaked: {r}");
            assert!(
                r.ends_with("MASTER_PASSWORD=<redacted>, MASTER_CONNECT_RETRY=1"),
                "{r}"
            );
            let e = format!(
                "error near '{}, MASTER_CONNECT_RETRY=1' at line 1",
                crate::sqltext::quote(pw)
            );
            let m = scrub(&e, &sql);
            assert!(!m.contains(&crate::sqltext::quote(pw)), "{m}");
        }
    }

    #[test]
    fn truthiness() {
        assert!(truthy(Some("1")));
        assert!(truthy(Some("ON")));
        assert!(!truthy(Some("0")));
        assert!(!truthy(Some("OFF")));
        assert!(!truthy(None));
    }
}
