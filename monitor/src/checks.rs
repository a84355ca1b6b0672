//! The four host checks (`ping`, `mysql`, `rep_threads`, `rep_backlog`), each host and each
//! check on its own task so a slow or frozen host delays nobody (product.md F2).
//!
//! A check only *observes*: it produces a raw [`Outcome`] (OK / ERROR / UNKNOWN, with
//! mysql-mmm's message texts) and sends it to the main loop. The trap logic that turns raw
//! results into recorded failures lives in the pure core.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx::{ConnectOptions, Connection, Row};
use tokio::sync::mpsc;
use tokio::time::timeout;

use ha_config::{CheckKind, MonitorConfig};

/// Raw result of one check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Error(String),
    Unknown(String),
}

impl Outcome {
    pub fn message(&self) -> &str {
        match self {
            Outcome::Ok(m) | Outcome::Error(m) | Outcome::Unknown(m) => m,
        }
    }
}

/// One check result on its way to the main loop.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub host: String,
    pub check: CheckKind,
    pub outcome: Outcome,
}

/// What every check of one host needs to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub ip: IpAddr,
    pub mysql_port: u16,
    pub user: String,
    pub password: String,
}

/// Spawns one task per (host, check). Each runs until `shutdown` flips.
pub fn spawn_all(
    cfg: &MonitorConfig,
    pinger: Arc<surge_ping::Client>,
    tx: mpsc::Sender<CheckReport>,
    paused: tokio::sync::watch::Receiver<bool>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for host in &cfg.hosts {
        let target = Target {
            host: host.name.clone(),
            ip: host.ip,
            mysql_port: host.mysql_port,
            user: cfg.credentials.monitor_user.clone(),
            password: cfg.credentials.monitor_password.clone(),
        };
        for kind in CheckKind::ALL {
            let settings = *cfg.checks.get(kind);
            let runner = Runner {
                target: target.clone(),
                kind,
                period: settings.check_period.duration(),
                timeout: settings.timeout.duration(),
                max_backlog: settings.max_backlog.duration(),
                pinger: pinger.clone(),
                conn: None,
                syntax: StatusSyntax::Slave,
            };
            let attempts = settings.attempts.max(1) as usize;
            handles.push(tokio::spawn(run_check(
                runner,
                attempts,
                tx.clone(),
                paused.clone(),
                shutdown.clone(),
            )));
        }
    }
    handles
}

/// Runs one (host, check) until shutdown: every `check_period`, `attempts` independent
/// attempts in parallel (each with its own connection), combined by [`combine`].
async fn run_check(
    template: Runner,
    attempts: usize,
    tx: mpsc::Sender<CheckReport>,
    paused: tokio::sync::watch::Receiver<bool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut runners: Vec<Runner> = (0..attempts).map(|_| template.fresh()).collect();
    let mut seq: u16 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // While the monitor is cut off from the network, checks are not run: their results
        // would describe the monitor, not the hosts (mmm-reference §3.7).
        if !*paused.borrow() {
            seq = seq.wrapping_add(1);
            let mut set = tokio::task::JoinSet::new();
            for (i, mut r) in runners.drain(..).enumerate() {
                // Distinct ICMP sequence numbers so parallel echoes are told apart.
                let s = seq.wrapping_mul(16).wrapping_add(i as u16);
                set.spawn(async move {
                    let o = r.check_once(s).await;
                    (r, o)
                });
            }
            let mut outcomes = Vec::with_capacity(attempts);
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok((r, o)) => {
                        runners.push(r);
                        outcomes.push(o);
                    }
                    Err(e) => {
                        outcomes.push(Outcome::Unknown(format!("UNKNOWN: check task failed: {e}")))
                    }
                }
            }
            while runners.len() < attempts {
                runners.push(template.fresh());
            }
            let report = CheckReport {
                host: template.target.host.clone(),
                check: template.kind,
                outcome: combine(outcomes),
            };
            if tx.send(report).await.is_err() {
                break; // main loop gone: shutting down
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(template.period) => {}
            _ = shutdown.changed() => {}
        }
    }
    for r in &mut runners {
        if let Some(conn) = r.conn.take() {
            let _ = timeout(Duration::from_millis(200), conn.close()).await;
        }
    }
}

/// One run's result from its parallel attempts: OK if any attempt answered OK; otherwise the
/// first ERROR (the host failed every attempt); otherwise UNKNOWN.
pub fn combine(outcomes: Vec<Outcome>) -> Outcome {
    let mut first_error = None;
    let mut first_unknown = None;
    for o in outcomes {
        match o {
            Outcome::Ok(_) => return o,
            Outcome::Error(_) if first_error.is_none() => first_error = Some(o),
            Outcome::Unknown(_) if first_unknown.is_none() => first_unknown = Some(o),
            _ => {}
        }
    }
    first_error
        .or(first_unknown)
        .unwrap_or_else(|| Outcome::Unknown("UNKNOWN: no attempt ran".into()))
}

struct Runner {
    target: Target,
    kind: CheckKind,
    period: Duration,
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

    fn statement(self) -> &'static str {
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
    /// The same check for the same host, without a connection (one per parallel attempt).
    fn fresh(&self) -> Runner {
        Runner {
            target: self.target.clone(),
            kind: self.kind,
            period: self.period,
            timeout: self.timeout,
            max_backlog: self.max_backlog,
            pinger: self.pinger.clone(),
            conn: None,
            syntax: StatusSyntax::Slave,
        }
    }

    async fn check_once(&mut self, seq: u16) -> Outcome {
        match self.kind {
            CheckKind::Ping => ping(&self.pinger, self.target.ip, seq, self.timeout).await,
            CheckKind::Mysql => self.mysql().await,
            CheckKind::RepThreads | CheckKind::RepBacklog => self.replication().await,
        }
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
            let conn = match timeout(self.timeout, opts.connect()).await {
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
            if matches!(self.kind, CheckKind::RepThreads | CheckKind::RepBacklog) {
                let version = timeout(
                    self.timeout,
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
    /// server is alive, just busy (mmm-reference §3.1).
    async fn mysql(&mut self) -> Outcome {
        let deadline = self.timeout;
        let connect_text = self.connect_text();
        let conn = match self.connection().await {
            Ok(c) => c,
            Err(ConnectFailure::Timeout) => {
                return Outcome::Error(format!("ERROR: {connect_text} Timeout after {deadline:?}"))
            }
            Err(ConnectFailure::Error {
                too_many: true,
                text,
            }) => return Outcome::Unknown(format!("UNKNOWN: Too many connections! {text}")),
            Err(ConnectFailure::Error { text, .. }) => {
                return Outcome::Error(format!("ERROR: {connect_text} {text}"))
            }
        };
        let result = timeout(deadline, sqlx::raw_sql("SELECT 1").execute(&mut *conn)).await;
        match result {
            Ok(Ok(_)) => Outcome::Ok("OK".into()),
            Ok(Err(e)) => {
                self.conn = None;
                if is_too_many_connections(&e) {
                    Outcome::Unknown(format!("UNKNOWN: Too many connections! {e}"))
                } else {
                    Outcome::Error(format!("ERROR: SQL Query Error: {e}"))
                }
            }
            Err(_) => {
                self.conn = None;
                Outcome::Error(format!("ERROR: Timeout after {deadline:?}"))
            }
        }
    }

    /// `rep_threads` / `rep_backlog`: SHOW SLAVE STATUS. A connect failure is UNKNOWN (the
    /// `mysql` check owns that failure); a timeout is a failure (mmm-reference §3.1).
    async fn replication(&mut self) -> Outcome {
        let deadline = self.timeout;
        let connect_text = self.connect_text();
        let user = self.target.user.clone();
        match self.connection().await {
            Ok(_) => {}
            Err(ConnectFailure::Timeout) => {
                return Outcome::Error(format!("ERROR: {connect_text} Timeout after {deadline:?}"))
            }
            Err(ConnectFailure::Error { text, .. }) => {
                return Outcome::Unknown(format!("UNKNOWN: {connect_text} {text}"))
            }
        };
        let syntax = self.syntax;
        let Some(conn) = self.conn.as_mut() else {
            return Outcome::Unknown(format!("UNKNOWN: {connect_text} no connection"));
        };
        let result = timeout(
            deadline,
            sqlx::raw_sql(syntax.statement()).fetch_optional(&mut *conn),
        )
        .await;
        let row = match result {
            Err(_) => {
                self.conn = None;
                return Outcome::Error(format!("ERROR: Timeout after {deadline:?}"));
            }
            Ok(Err(e)) => {
                self.conn = None;
                if mysql_error_number(&e) == Some(1227) {
                    return Outcome::Error(format!(
                        "ERROR: The monitor user '{user}' doesn't have the required \
                         SLAVE MONITOR (REPLICATION CLIENT) privilege! {e}"
                    ));
                }
                return Outcome::Unknown(format!("UNKNOWN: Unknown state. Execute error: {e}"));
            }
            Ok(Ok(None)) => return Outcome::Error("ERROR: Replication is not set up".into()),
            Ok(Ok(Some(row))) => row,
        };
        let facts = match SlaveFacts::from_row(&row, syntax) {
            Ok(f) => f,
            Err(e) => {
                return Outcome::Unknown(format!(
                    "UNKNOWN: Unknown state. Cannot read SHOW SLAVE STATUS: {e}"
                ))
            }
        };
        match self.kind {
            CheckKind::RepThreads => judge_threads(&facts),
            _ => judge_backlog(&facts, self.max_backlog),
        }
    }
}

enum ConnectFailure {
    Timeout,
    Error { too_many: bool, text: String },
}

/// The fields of SHOW SLAVE STATUS the checks judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveFacts {
    pub io_running: String,
    pub sql_running: String,
    pub seconds_behind: Option<u64>,
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

/// Both threads must not be the literal `No` (so `Connecting` counts as running, as in mmm).
pub fn judge_threads(f: &SlaveFacts) -> Outcome {
    if f.io_running == "No" || f.sql_running == "No" {
        Outcome::Error(format!(
            "ERROR: Replication is broken (Slave_IO_Running: {}, Slave_SQL_Running: {})",
            f.io_running, f.sql_running
        ))
    } else {
        Outcome::Ok("OK".into())
    }
}

/// Seconds_Behind_Master against max_backlog; NULL counts as no backlog (mmm-reference §3.1).
pub fn judge_backlog(f: &SlaveFacts, max_backlog: Duration) -> Outcome {
    match f.seconds_behind {
        None | Some(0) => Outcome::Ok("OK: Backlog is null".into()),
        Some(s) if Duration::from_secs(s) <= max_backlog => {
            Outcome::Ok(format!("OK: Backlog {s} s"))
        }
        Some(s) => Outcome::Error(format!(
            "ERROR: Backlog is too big ({s} s > max_backlog {} s)",
            max_backlog.as_secs_f64()
        )),
    }
}

fn mysql_error_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

fn is_too_many_connections(e: &sqlx::Error) -> bool {
    mysql_error_number(e) == Some(1040) || e.to_string().contains("Too many connections")
}

/// One ICMP echo with the given timeout.
pub async fn ping(
    client: &surge_ping::Client,
    ip: IpAddr,
    seq: u16,
    deadline: Duration,
) -> Outcome {
    let ident = surge_ping::PingIdentifier(std::process::id() as u16 ^ seq.rotate_left(7));
    let mut pinger = client.pinger(ip, ident).await;
    pinger.timeout(deadline);
    match pinger.ping(surge_ping::PingSequence(seq), &[0u8; 16]).await {
        Ok(_) => Outcome::Ok("OK".into()),
        Err(e) => Outcome::Error(format!("ERROR: Could not ping {ip} ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(io: &str, sql: &str, behind: Option<u64>) -> SlaveFacts {
        SlaveFacts {
            io_running: io.into(),
            sql_running: sql.into(),
            seconds_behind: behind,
        }
    }

    #[test]
    fn any_ok_attempt_makes_the_run_ok() {
        let ok = || Outcome::Ok("OK".into());
        let err = |m: &str| Outcome::Error(format!("ERROR: {m}"));
        let unk = || Outcome::Unknown("UNKNOWN: x".into());
        assert_eq!(combine(vec![err("a"), ok(), unk()]), ok());
        assert_eq!(combine(vec![unk(), err("a"), err("b")]), err("a"));
        assert_eq!(combine(vec![unk(), unk()]), unk());
        assert!(matches!(combine(vec![]), Outcome::Unknown(_)));
    }

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

    #[test]
    fn threads_connecting_counts_as_running() {
        assert!(matches!(
            judge_threads(&facts("Connecting", "Yes", None)),
            Outcome::Ok(_)
        ));
        assert!(matches!(
            judge_threads(&facts("Yes", "Yes", None)),
            Outcome::Ok(_)
        ));
        assert!(matches!(
            judge_threads(&facts("No", "Yes", None)),
            Outcome::Error(_)
        ));
        assert!(matches!(
            judge_threads(&facts("Yes", "No", None)),
            Outcome::Error(_)
        ));
    }

    #[test]
    fn backlog_null_is_ok_and_threshold_is_inclusive() {
        let max = Duration::from_secs(60);
        assert_eq!(
            judge_backlog(&facts("Yes", "Yes", None), max),
            Outcome::Ok("OK: Backlog is null".into())
        );
        assert!(matches!(
            judge_backlog(&facts("Yes", "Yes", Some(60)), max),
            Outcome::Ok(_)
        ));
        assert!(matches!(
            judge_backlog(&facts("Yes", "Yes", Some(61)), max),
            Outcome::Error(_)
        ));
    }
}
