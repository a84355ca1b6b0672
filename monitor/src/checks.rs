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
    pub tls: Option<ha_config::MysqlTls>,
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
            tls: cfg.credentials.monitor_tls.clone(),
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
            let schedule = Schedule {
                host: host.name.clone(),
                check: kind,
                period: runner.period,
                // A ping attempt is bounded by its own timeout and reports its own message.
                window: match kind {
                    CheckKind::Ping => runner.timeout + Duration::from_secs(1),
                    _ => runner.timeout,
                },
                attempts: settings.attempts.max(1) as usize,
            };
            handles.push(tokio::spawn(run_check(
                runner,
                schedule,
                tx.clone(),
                paused.clone(),
                shutdown.clone(),
            )));
        }
    }
    handles
}

/// How many connections one (host, check) may hold per parallel attempt: attempts still
/// waiting for a late answer keep theirs (see [`run_check`]); beyond that the oldest is given
/// up.
const POOL_PER_ATTEMPT: usize = 2;

/// How long an attempt may keep waiting for its answer after its run gave up on it
/// (`timeout` × this, at least [`MIN_LATE_WAIT`]).
const LATE_WAIT_FACTOR: u32 = 10;
const MIN_LATE_WAIT: Duration = Duration::from_secs(2);

/// Runs one (host, check) until shutdown: every `check_period`, `attempts` independent
/// attempts in parallel (each on its own connection); the run is OK as soon as one attempt
/// answers OK, and fails when none did within `timeout` (combined by [`combine`]).
///
/// An attempt that misses the run's `timeout` is *not* cancelled: it keeps its connection and
/// may finish later (up to `timeout` × [`LATE_WAIT_FACTOR`]), then serves later runs. Under
/// packet loss a lost segment costs one TCP retransmission (≥ 200 ms), more than a sub-second
/// `timeout`; dropping the connection instead would make the next run reconnect — a handshake
/// and a login, several more round trips that can each be lost — and turn loss into an outage.
async fn run_check<A: Attempt>(
    template: A,
    schedule: Schedule,
    tx: mpsc::Sender<CheckReport>,
    paused: tokio::sync::watch::Receiver<bool>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let attempts = schedule.attempts.max(1);
    let window = schedule.window;
    // (run, task id, attempt, outcome) of every finished attempt.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, u64, A, Outcome)>();
    let mut idle: Vec<A> = (0..attempts).map(|_| template.fresh()).collect();
    // Attempts still running, oldest first.
    let mut busy: std::collections::VecDeque<(u64, tokio::task::AbortHandle)> =
        std::collections::VecDeque::new();
    let cap = attempts * POOL_PER_ATTEMPT;
    let mut run: u64 = 0;
    let mut task_id: u64 = 0;
    let mut seq: u16 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // While the monitor is cut off from the network, checks are not run: their results
        // would describe the monitor, not the hosts (mmm-reference §3.7).
        if !*paused.borrow() {
            run += 1;
            // Attempts of earlier runs that finished meanwhile are available again.
            while let Ok((_, id, r, _)) = done_rx.try_recv() {
                busy.retain(|(b, _)| *b != id);
                idle.push(r);
            }
            let started = tokio::time::Instant::now();
            let mut launched = 0usize;
            let mut late_text = None;
            while launched < attempts {
                let r = match idle.pop() {
                    Some(r) => r,
                    None => {
                        // Pool full of attempts still waiting: give up the oldest (its
                        // connection is dropped) rather than stop probing the host.
                        if busy.len() >= cap {
                            if let Some((_, h)) = busy.pop_front() {
                                h.abort();
                            }
                        }
                        template.fresh()
                    }
                };
                seq = seq.wrapping_add(1);
                // Distinct ICMP sequence numbers so parallel echoes are told apart.
                let s = seq;
                if late_text.is_none() {
                    late_text = Some(r.timeout_text());
                }
                let done = done_tx.clone();
                task_id += 1;
                let id = task_id;
                let h = tokio::spawn(async move {
                    let mut r = r;
                    let o = r.attempt(s).await;
                    let _ = done.send((run, id, r, o));
                });
                busy.push_back((id, h.abort_handle()));
                launched += 1;
            }
            let mut outcomes = Vec::with_capacity(launched);
            let mut answered = false;
            while outcomes.len() < launched && !answered {
                match tokio::time::timeout_at(started + window, done_rx.recv()).await {
                    Ok(Some((n, id, r, o))) => {
                        busy.retain(|(b, _)| *b != id);
                        idle.push(r);
                        if n == run {
                            answered = matches!(o, Outcome::Ok(_));
                            outcomes.push(o);
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if outcomes.len() < launched && !answered {
                outcomes.push(Outcome::Error(late_text.unwrap_or_default()));
            }
            let report = CheckReport {
                host: schedule.host.clone(),
                check: schedule.check,
                outcome: combine(outcomes),
            };
            if tx.send(report).await.is_err() {
                break; // main loop gone: shutting down
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(schedule.period) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Close idle connections politely; attempts still waiting are given up.
    for (_, h) in busy {
        h.abort();
    }
    while let Ok((_, _, r, _)) = done_rx.try_recv() {
        idle.push(r);
    }
    for r in &mut idle {
        r.close().await;
    }
}

/// When and how one (host, check) runs: see [`run_check`].
struct Schedule {
    host: String,
    check: CheckKind,
    period: Duration,
    /// How long a run waits for an answer (the check's timeout).
    window: Duration,
    attempts: usize,
}

/// One parallel attempt of a check and the connection it keeps between runs: [`Runner`] in
/// the daemon, scripted fakes in the tests of [`run_check`].
trait Attempt: Send + Sized + 'static {
    /// The same check without a connection.
    fn fresh(&self) -> Self;
    fn attempt(&mut self, seq: u16) -> impl std::future::Future<Output = Outcome> + Send;
    /// The failure text of a run this attempt did not answer in time.
    fn timeout_text(&self) -> String;
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

impl Attempt for Runner {
    fn fresh(&self) -> Self {
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
    fn attempt(&mut self, seq: u16) -> impl std::future::Future<Output = Outcome> + Send {
        self.check_once(seq)
    }
    /// mysql-mmm's texts; a connect timeout when the attempt had no connection yet.
    fn timeout_text(&self) -> String {
        let t = self.timeout;
        match self.kind {
            CheckKind::Ping => format!(
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
    async fn check_once(&mut self, seq: u16) -> Outcome {
        match self.kind {
            CheckKind::Ping => ping(&self.pinger, self.target.ip, seq, self.timeout).await,
            CheckKind::Mysql => self.mysql().await,
            CheckKind::RepThreads | CheckKind::RepBacklog => self.replication().await,
        }
    }

    /// How long one attempt may take in all (connect, or statement) before it gives up its
    /// connection: well past the run's `timeout`, see [`run_check`].
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
            if matches!(self.kind, CheckKind::RepThreads | CheckKind::RepBacklog) {
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
    /// server is alive, just busy (mmm-reference §3.1).
    async fn mysql(&mut self) -> Outcome {
        let deadline = self.op_deadline();
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
        let deadline = self.op_deadline();
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

    /// A scripted attempt: connection `n` (counted from 0 in creation order) answers OK after
    /// `delay(n, k)` for its k-th use (`None`: never answers).
    struct Fake {
        conn: usize,
        uses: usize,
        script: Arc<dyn Fn(usize, usize) -> Option<Duration> + Send + Sync>,
        created: Arc<std::sync::atomic::AtomicUsize>,
        running: Arc<std::sync::atomic::AtomicUsize>,
        max_running: Arc<std::sync::atomic::AtomicUsize>,
    }

    struct Running(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Attempt for Fake {
        fn fresh(&self) -> Self {
            Fake {
                conn: self
                    .created
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                uses: 0,
                script: self.script.clone(),
                created: self.created.clone(),
                running: self.running.clone(),
                max_running: self.max_running.clone(),
            }
        }
        fn attempt(&mut self, _seq: u16) -> impl std::future::Future<Output = Outcome> + Send {
            let delay = (self.script)(self.conn, self.uses);
            self.uses += 1;
            let conn = self.conn;
            let now = self
                .running
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            self.max_running
                .fetch_max(now, std::sync::atomic::Ordering::SeqCst);
            let guard = Running(self.running.clone());
            async move {
                let _guard = guard;
                match delay {
                    Some(d) => {
                        tokio::time::sleep(d).await;
                        Outcome::Ok(format!("OK from connection {conn}"))
                    }
                    None => std::future::pending().await,
                }
            }
        }
        fn timeout_text(&self) -> String {
            "ERROR: Timeout after 100ms".into()
        }
        async fn close(&mut self) {}
    }

    /// Runs `run_check` on a paused clock for `runs` runs; returns the outcomes and the fake's
    /// counters (connections created, most attempts running at once).
    async fn drive(
        attempts: usize,
        runs: usize,
        script: impl Fn(usize, usize) -> Option<Duration> + Send + Sync + 'static,
    ) -> (Vec<Outcome>, usize, usize) {
        let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max_running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let template = Fake {
            conn: usize::MAX,
            uses: 0,
            script: Arc::new(script),
            created: created.clone(),
            running: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            max_running: max_running.clone(),
        };
        let schedule = Schedule {
            host: "db1".into(),
            check: CheckKind::Mysql,
            period: Duration::from_millis(100),
            window: Duration::from_millis(100),
            attempts,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let (_p, paused) = tokio::sync::watch::channel(false);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run_check(template, schedule, tx, paused, shutdown));
        let mut out = Vec::new();
        while out.len() < runs {
            match rx.recv().await {
                Some(r) => out.push(r.outcome),
                None => break,
            }
        }
        let _ = stop.send(true);
        let _ = task.await;
        (
            out,
            created.load(std::sync::atomic::Ordering::SeqCst),
            max_running.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_keeps_its_connection_for_later_runs() {
        // Connection 0's first query waits for a retransmission (300 ms, three runs' worth of
        // timeout); every other answer takes 1 ms.
        let (out, created, _) = drive(1, 8, |conn, k| {
            Some(if conn == 0 && k == 0 {
                Duration::from_millis(300)
            } else {
                Duration::from_millis(1)
            })
        })
        .await;
        assert_eq!(out[0], Outcome::Error("ERROR: Timeout after 100ms".into()));
        assert!(
            out[1..].iter().all(|o| matches!(o, Outcome::Ok(_))),
            "a second connection answers while the first waits: {out:?}"
        );
        assert!(
            out.iter()
                .skip(4)
                .any(|o| o == &Outcome::Ok("OK from connection 0".into())),
            "the late connection serves later runs instead of being dropped: {out:?}"
        );
        assert_eq!(created, 2, "no reconnect beyond the one spare: {out:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn any_parallel_attempt_answering_makes_the_run_ok() {
        // Of three attempts per run only connection 2 ever answers.
        let (out, _, _) = drive(3, 5, |conn, _| {
            (conn == 2).then_some(Duration::from_millis(5))
        })
        .await;
        assert!(
            out.iter()
                .all(|o| o == &Outcome::Ok("OK from connection 2".into())),
            "{out:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_that_never_answers_fails_every_run_with_bounded_attempts() {
        let (out, created, max_running) = drive(2, 20, |_, _| None).await;
        assert!(
            out.iter()
                .all(|o| o == &Outcome::Error("ERROR: Timeout after 100ms".into())),
            "{out:?}"
        );
        assert!(
            max_running <= 2 * POOL_PER_ATTEMPT,
            "waiting attempts are capped ({max_running} at once)"
        );
        assert!(
            created >= 20,
            "the host is still probed every run ({created} attempts)"
        );
    }

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
