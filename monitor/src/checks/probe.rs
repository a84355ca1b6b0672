//! Probing a server: connecting (and keeping the connection between runs) and running one
//! attempt of `ping`, `mysql`, `rep_threads` or `rep_backlog` against it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ha_core::Check;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::time::timeout;

use super::judge::{is_too_many_connections, judge_backlog, judge_threads, mysql_error_number};
use super::schedule::{Attempt, LATE_WAIT_FACTOR, MIN_LATE_WAIT};
use super::{Observation, SlaveFacts, Target};

/// One attempt of one check against one host, with the connection it keeps between runs.
pub(super) struct Runner {
    target: Target,
    kind: Check,
    /// The check's timeout: how long a run waits for an answer.
    timeout: Duration,
    max_backlog: Duration,
    pinger: Arc<surge_ping::Client>,
    /// Reused between runs (issue: "connections are reused, not reopened every check");
    /// dropped after any error so the next run reconnects.
    conn: Option<MySqlConnection>,
    /// Which replication status syntax the connected server speaks (read once per connection).
    syntax: StatusSyntax,
}

/// `SHOW SLAVE STATUS` (MariaDB, MySQL < 8.0.22) or `SHOW REPLICA STATUS` (MySQL ≥ 8.0.22,
/// the only form MySQL 8.4 still accepts), with the matching column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusSyntax {
    #[default]
    Slave,
    Replica,
}

impl Runner {
    /// A runner without a connection yet.
    pub(super) fn new(
        target: Target,
        kind: Check,
        timeout: Duration,
        max_backlog: Duration,
        pinger: Arc<surge_ping::Client>,
    ) -> Runner {
        Runner {
            target,
            kind,
            timeout,
            max_backlog,
            pinger,
            conn: None,
            syntax: StatusSyntax::Slave,
        }
    }
}

impl Attempt for Runner {
    fn fresh(&self) -> Self {
        Runner::new(
            self.target.clone(),
            self.kind,
            self.timeout,
            self.max_backlog,
            self.pinger.clone(),
        )
    }
    fn attempt(&mut self, seq: u16) -> impl std::future::Future<Output = Observation> + Send {
        self.check_once(seq)
    }
    /// mysql-mmm's texts; a connect timeout when the attempt had no connection yet.
    fn timeout_text(&self) -> String {
        let t = self.timeout;
        match self.kind {
            Check::Ping => format!(
                "ERROR: Could not ping {} (no answer within {t:?})",
                self.target.ip
            ),
            _ if self.conn.is_none() => {
                format!("ERROR: {} Timeout after {t:?}", self.connect_text())
            }
            _ => format!("ERROR: Timeout after {t:?}"),
        }
    }

    async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = timeout(Duration::from_millis(200), conn.close()).await;
        }
    }
}

impl StatusSyntax {
    /// Decides from `SELECT VERSION()`: MariaDB keeps SHOW SLAVE STATUS; MySQL switched to
    /// SHOW REPLICA STATUS in 8.0.22.
    pub fn for_version(version: &str) -> StatusSyntax {
        if version.to_ascii_lowercase().contains("mariadb") {
            return StatusSyntax::Slave;
        }
        let nums: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .take(3)
            .filter_map(|p| p.parse().ok())
            .collect();
        match nums.as_slice() {
            [major, minor, patch, ..] if (*major, *minor, *patch) >= (8, 0, 22) => {
                StatusSyntax::Replica
            }
            [major, ..] if *major > 8 => StatusSyntax::Replica,
            _ => StatusSyntax::Slave,
        }
    }

    /// The replication status statement of this syntax.
    pub fn statement(self) -> &'static str {
        match self {
            StatusSyntax::Slave => "SHOW SLAVE STATUS",
            StatusSyntax::Replica => "SHOW REPLICA STATUS",
        }
    }

    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            StatusSyntax::Slave => (
                "Slave_IO_Running",
                "Slave_SQL_Running",
                "Seconds_Behind_Master",
            ),
            StatusSyntax::Replica => (
                "Replica_IO_Running",
                "Replica_SQL_Running",
                "Seconds_Behind_Source",
            ),
        }
    }
}

impl Runner {
    async fn check_once(&mut self, seq: u16) -> Observation {
        match self.kind {
            Check::Ping => ping(&self.pinger, self.target.ip, seq, self.timeout).await,
            Check::Mysql => self.mysql().await,
            Check::RepThreads | Check::RepBacklog => self.replication().await,
        }
    }

    /// How long one attempt may take in all (connect, or statement) before it gives up its
    /// connection: well past the run's `timeout`, see [`run_check`](super::schedule::run_check).
    fn op_deadline(&self) -> Duration {
        (self.timeout * LATE_WAIT_FACTOR).max(MIN_LATE_WAIT)
    }

    fn addr(&self) -> String {
        match self.target.ip {
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.target.mysql_port),
            IpAddr::V4(ip) => format!("{ip}:{}", self.target.mysql_port),
        }
    }

    /// Returns a live connection, connecting with the check's timeout when needed.
    async fn connection(&mut self) -> Result<&mut MySqlConnection, ConnectFailure> {
        if self.conn.is_none() {
            let opts = MySqlConnectOptions::new()
                .host(&self.target.ip.to_string())
                .port(self.target.mysql_port)
                .username(&self.target.user)
                .password(&self.target.password)
                .disable_statement_logging();
            let opts = ha_config::MysqlTls::apply(self.target.tls.as_ref(), opts);
            let conn = match timeout(self.op_deadline(), opts.connect()).await {
                Err(_) => return Err(ConnectFailure::Timeout),
                Ok(Err(e)) => {
                    return Err(ConnectFailure::Error {
                        too_many: is_too_many_connections(&e),
                        text: e.to_string(),
                    })
                }
                Ok(Ok(c)) => c,
            };
            let mut conn = conn;
            if matches!(self.kind, Check::RepThreads | Check::RepBacklog) {
                let version = timeout(
                    self.op_deadline(),
                    sqlx::query_scalar::<_, String>("SELECT VERSION()").fetch_one(&mut conn),
                )
                .await;
                self.syntax = match version {
                    Ok(Ok(v)) => StatusSyntax::for_version(&v),
                    _ => StatusSyntax::Slave,
                };
            }
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or(ConnectFailure::Timeout)
    }

    fn connect_text(&self) -> String {
        format!(
            "Connect error (host = {}, user = {})!",
            self.addr(),
            self.target.user
        )
    }

    /// `mysql`: connect + `SELECT 1`. "Too many connections" (1040) is not a failure: the
    /// server is alive, just busy (docs/mmm-behaviour.md §3.1).
    async fn mysql(&mut self) -> Observation {
        let deadline = self.op_deadline();
        let connect_text = self.connect_text();
        let conn = match self.connection().await {
            Ok(c) => c,
            Err(ConnectFailure::Timeout) => {
                return Observation::error(format!(
                    "ERROR: {connect_text} Timeout after {deadline:?}"
                ))
            }
            Err(ConnectFailure::Error {
                too_many: true,
                text,
            }) => return Observation::unknown(format!("UNKNOWN: Too many connections! {text}")),
            Err(ConnectFailure::Error { text, .. }) => {
                return Observation::error(format!("ERROR: {connect_text} {text}"))
            }
        };
        let result = timeout(deadline, sqlx::raw_sql("SELECT 1").execute(&mut *conn)).await;
        match result {
            Ok(Ok(_)) => Observation::ok("OK"),
            Ok(Err(e)) => {
                self.conn = None;
                if is_too_many_connections(&e) {
                    Observation::unknown(format!("UNKNOWN: Too many connections! {e}"))
                } else {
                    Observation::error(format!("ERROR: SQL Query Error: {e}"))
                }
            }
            Err(_) => {
                self.conn = None;
                Observation::error(format!("ERROR: Timeout after {deadline:?}"))
            }
        }
    }

    /// `rep_threads` / `rep_backlog`: SHOW SLAVE STATUS. A connect failure is UNKNOWN (the
    /// `mysql` check owns that failure); a timeout is a failure (docs/mmm-behaviour.md §3.1).
    async fn replication(&mut self) -> Observation {
        let deadline = self.op_deadline();
        let connect_text = self.connect_text();
        let user = self.target.user.clone();
        match self.connection().await {
            Ok(_) => {}
            Err(ConnectFailure::Timeout) => {
                return Observation::error(format!(
                    "ERROR: {connect_text} Timeout after {deadline:?}"
                ))
            }
            Err(ConnectFailure::Error { text, .. }) => {
                return Observation::unknown(format!("UNKNOWN: {connect_text} {text}"))
            }
        };
        let syntax = self.syntax;
        let Some(conn) = self.conn.as_mut() else {
            return Observation::unknown(format!("UNKNOWN: {connect_text} no connection"));
        };
        let result = timeout(
            deadline,
            sqlx::raw_sql(syntax.statement()).fetch_optional(&mut *conn),
        )
        .await;
        let row = match result {
            Err(_) => {
                self.conn = None;
                return Observation::error(format!("ERROR: Timeout after {deadline:?}"));
            }
            Ok(Err(e)) => {
                self.conn = None;
                if mysql_error_number(&e) == Some(1227) {
                    return Observation::error(format!(
                        "ERROR: The monitor user '{user}' doesn't have the required \
                         SLAVE MONITOR (REPLICATION CLIENT) privilege! {e}"
                    ));
                }
                return Observation::unknown(format!("UNKNOWN: Unknown state. Execute error: {e}"));
            }
            Ok(Ok(None)) => return Observation::error("ERROR: Replication is not set up"),
            Ok(Ok(Some(row))) => row,
        };
        let facts = match SlaveFacts::from_row(&row, syntax) {
            Ok(f) => f,
            Err(e) => {
                return Observation::unknown(format!(
                    "UNKNOWN: Unknown state. Cannot read SHOW SLAVE STATUS: {e}"
                ))
            }
        };
        match self.kind {
            Check::RepThreads => judge_threads(&facts),
            _ => judge_backlog(&facts, self.max_backlog),
        }
    }
}

enum ConnectFailure {
    Timeout,
    Error { too_many: bool, text: String },
}

impl SlaveFacts {
    fn from_row(row: &sqlx::mysql::MySqlRow, syntax: StatusSyntax) -> Result<Self, sqlx::Error> {
        let (io, sql, behind) = syntax.columns();
        let text = |name: &str| -> Result<String, sqlx::Error> {
            Ok(row.try_get::<Option<String>, _>(name)?.unwrap_or_default())
        };
        Ok(SlaveFacts {
            io_running: text(io)?,
            sql_running: text(sql)?,
            seconds_behind: row.try_get::<Option<u64>, _>(behind)?,
        })
    }
}

/// One ICMP echo with the given timeout.
pub async fn ping(
    client: &surge_ping::Client,
    ip: IpAddr,
    seq: u16,
    deadline: Duration,
) -> Observation {
    let ident = surge_ping::PingIdentifier(std::process::id() as u16 ^ seq.rotate_left(7));
    let mut pinger = client.pinger(ip, ident).await;
    pinger.timeout(deadline);
    match pinger.ping(surge_ping::PingSequence(seq), &[0u8; 16]).await {
        Ok(_) => Observation::ok("OK"),
        Err(e) => Observation::error(format!("ERROR: Could not ping {ip} ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_syntax_follows_the_server_version() {
        assert_eq!(
            StatusSyntax::for_version("10.11.6-MariaDB-0+deb12u1-log"),
            StatusSyntax::Slave
        );
        assert_eq!(StatusSyntax::for_version("8.0.21"), StatusSyntax::Slave);
        assert_eq!(StatusSyntax::for_version("8.0.22"), StatusSyntax::Replica);
        assert_eq!(StatusSyntax::for_version("8.4.3"), StatusSyntax::Replica);
        assert_eq!(
            StatusSyntax::for_version("9.1.0-commercial"),
            StatusSyntax::Replica
        );
        assert_eq!(StatusSyntax::for_version("5.7.44-log"), StatusSyntax::Slave);
        assert_eq!(StatusSyntax::for_version("garbage"), StatusSyntax::Slave);
    }
}
