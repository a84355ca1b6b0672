//! EXPERIMENT (not a test): how fast can an isolated MariaDB 10.11 master be fenced
//! (read_only=1) while client COMMITs hang waiting for a semi-sync ACK?
//!
//! Run as root, one lab at a time:
//!
//! ```text
//! cargo run -p ha-lab --example fence_experiment -- [VARIANT ...] [--reps N] [--clients N]
//! ```
//!
//! Variants (default: all but the freeze ones):
//! * `CONN`  connect time (sqlx, like ha-agent) to 127.0.0.1, the host IP and the unix socket
//! * `IDLE`  `SET GLOBAL read_only=1` on a healthy writable server, nothing blocked
//! * `IDLETRX` same with one idle client holding an open write transaction
//! * `A`     `SET GLOBAL read_only=1` alone (capped at 3 s, then the blocked sessions are killed)
//! * `B`     SHOW PROCESSLIST + `KILL CONNECTION` of each client, then `SET GLOBAL read_only=1`
//! * `C`     both concurrently on two connections (what ha-agent does today)
//! * `D`     like B with `KILL QUERY`
//! * `E`     `FLUSH TABLES WITH READ LOCK` first (capped at 3 s, then kill), then read_only=1
//! * `ZB`, `ZC` freeze (SIGSTOP mariadbd, link down) 2 s, thaw, then B / C on fresh
//!   connections; `ZBP`, `ZCP` the same on connections opened before the freeze
//!
//! Setup per trial: db1 writable and semi-sync healthy (a warm-up commit is ACKed), then db1 is
//! cut from db2 and db3 (nftables), one idle client (BEGIN; INSERT; then nothing) and N
//! clients whose COMMIT hangs waiting for the ACK, all from the `cli` namespace over TCP as
//! `app`. The fencing side connects as `ha_agent` to 127.0.0.1 from inside db1's namespace
//! (like ha-agent). t0 = start of fencing; every time is ms after t0.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ha_lab::{creds, netns, Lab, LabOptions};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Column, ConnectOptions, Connection, Row};

type Res<T> = std::result::Result<T, String>;
type Metrics = BTreeMap<String, f64>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rel(t0: Instant, t: Instant) -> f64 {
    if t >= t0 {
        ms(t - t0)
    } else {
        -ms(t0 - t)
    }
}

// ----- event clock ---------------------------------------------------------------------------

#[derive(Clone)]
struct Clock {
    t0: Instant,
    log: Arc<Mutex<Vec<(f64, String)>>>,
    metrics: Arc<Mutex<Metrics>>,
}

impl Clock {
    fn new(t0: Instant) -> Clock {
        Clock {
            t0,
            log: Arc::default(),
            metrics: Arc::default(),
        }
    }
    fn now(&self) -> f64 {
        rel(self.t0, Instant::now())
    }
    fn ev(&self, s: impl Into<String>) -> f64 {
        let t = self.now();
        self.log.lock().unwrap().push((t, s.into()));
        t
    }
    fn metric(&self, k: impl Into<String>, v: f64) {
        self.metrics.lock().unwrap().insert(k.into(), v);
    }
    fn ev_metric(&self, k: &str, s: impl Into<String>) -> f64 {
        let t = self.ev(s);
        self.metric(k, t);
        t
    }
}

// ----- SQL helpers -----------------------------------------------------------------------------

fn fmt_err(e: sqlx::Error) -> String {
    match &e {
        sqlx::Error::Database(d) => match d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            Some(m) => format!(
                "ERROR {} ({}): {}",
                m.number(),
                m.code().unwrap_or("-"),
                m.message()
            ),
            None => e.to_string(),
        },
        _ => e.to_string(),
    }
}

async fn exec(c: &mut MySqlConnection, sql: &str) -> Res<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut *c)
        .await
        .map(|_| ())
        .map_err(fmt_err)
}

async fn rows(c: &mut MySqlConnection, sql: &str) -> Res<Vec<BTreeMap<String, String>>> {
    let rs = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&mut *c)
        .await
        .map_err(fmt_err)?;
    Ok(rs
        .iter()
        .map(|r| {
            r.columns()
                .iter()
                .enumerate()
                .map(|(i, col)| {
                    let v: Option<Vec<u8>> = r.try_get_unchecked(i).unwrap_or(None);
                    (
                        col.name().to_string(),
                        v.map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_else(|| "NULL".into()),
                    )
                })
                .collect()
        })
        .collect())
}

fn agent_opts(host: &str) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .host(host)
        .port(3306)
        .username(creds::AGENT_USER)
        .password(creds::AGENT_PASSWORD)
        .statement_cache_capacity(0)
}

fn app_opts(ip: &str) -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .host(ip)
        .port(3306)
        .username(creds::APP_USER)
        .password(creds::APP_PASSWORD)
        .database("hatest")
        .statement_cache_capacity(0)
}

async fn connect(o: &MySqlConnectOptions) -> Res<MySqlConnection> {
    match tokio::time::timeout(Duration::from_secs(5), o.connect()).await {
        Ok(r) => r.map_err(fmt_err),
        Err(_) => Err("connect timed out (5 s)".into()),
    }
}

/// Runs `f` on the runtime's workers (inside db1's namespace) and waits for it.
fn run<F>(rt: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(rt.spawn(f)).expect("task panicked")
}

// ----- clients (in the cli namespace) --------------------------------------------------------

enum ClientMsg {
    Ready {
        marker: String,
        id: u64,
    },
    Done {
        marker: String,
        commit: Res<()>,
        at: Instant,
        after: Res<()>,
    },
    Failed {
        marker: String,
        err: String,
    },
}

/// A client in `cli`: connect as app, BEGIN, INSERT marker, report Ready, (idle: wait for the
/// hold channel), COMMIT, report the outcome and whether the connection still answers.
fn spawn_client(
    ns: &str,
    ip: String,
    marker: String,
    hold: Option<mpsc::Receiver<()>>,
    tx: mpsc::Sender<ClientMsg>,
) -> Res<()> {
    netns::spawn_in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let r: Res<()> = async {
                let mut c = connect(&app_opts(&ip)).await?;
                let id = rows(&mut c, "SELECT CONNECTION_ID() AS id")
                    .await?
                    .first()
                    .and_then(|r| r.get("id").and_then(|v| v.parse().ok()))
                    .ok_or("no connection id")?;
                exec(&mut c, "BEGIN").await?;
                exec(
                    &mut c,
                    &format!("INSERT INTO hatest.t (v) VALUES ('{marker}')"),
                )
                .await?;
                let _ = tx.send(ClientMsg::Ready {
                    marker: marker.clone(),
                    id,
                });
                if let Some(h) = hold {
                    let _ = h.recv_timeout(Duration::from_secs(120));
                }
                let commit = exec(&mut c, "COMMIT").await;
                let at = Instant::now();
                let after =
                    match tokio::time::timeout(Duration::from_secs(2), exec(&mut c, "SELECT 1"))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err("SELECT 1 after COMMIT: no answer in 2 s".into()),
                    };
                let _ = tx.send(ClientMsg::Done {
                    marker: marker.clone(),
                    commit,
                    at,
                    after,
                });
                Ok(())
            }
            .await;
            if let Err(e) = r {
                let _ = tx.send(ClientMsg::Failed { marker, err: e });
            }
        });
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// A client using the `mariadb` command-line client in `cli` (exact client-side error text):
/// `SELECT CONNECTION_ID(); BEGIN; INSERT marker; COMMIT;`.
fn spawn_cli_client(ns: &str, ip: String, marker: String, tx: mpsc::Sender<ClientMsg>) -> Res<()> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "mariadb",
            "--no-defaults",
            "--batch",
            "--unbuffered",
            "--skip-column-names",
            "--connect-timeout=5",
        ])
        .arg(format!("--host={ip}"))
        .arg(format!("--user={}", creds::APP_USER))
        .arg(format!("--password={}", creds::APP_PASSWORD))
        .arg("--database=hatest")
        .arg("-e")
        .arg(format!(
            "SELECT CONNECTION_ID(); BEGIN; INSERT INTO hatest.t (v) VALUES ('{marker}'); COMMIT;"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn mariadb CLI: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        match line.trim().parse::<u64>() {
            Ok(id) => {
                let _ = tx.send(ClientMsg::Ready {
                    marker: marker.clone(),
                    id,
                });
            }
            Err(_) => {
                let _ = tx.send(ClientMsg::Failed {
                    marker: marker.clone(),
                    err: format!("no id: {line:?}"),
                });
                return;
            }
        }
        let out = child.wait_with_output();
        let at = Instant::now();
        let commit = match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "mariadb CLI exit {}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(e.to_string()),
        };
        let _ = tx.send(ClientMsg::Done {
            marker,
            commit,
            at,
            after: Err("(CLI client: n/a)".into()),
        });
    });
    Ok(())
}

// ----- one trial ---------------------------------------------------------------------------------

/// What the fencing side needs to start a late client (in `cli`).
#[derive(Clone)]
struct Env {
    cli_ns: String,
    db1ip: String,
    name: String,
    tx: mpsc::Sender<ClientMsg>,
}

impl Env {
    fn late_client(&self, clock: &Clock) {
        clock.ev("late client starts (BEGIN; INSERT; COMMIT as app)");
        let r = spawn_client(
            &self.cli_ns,
            self.db1ip.clone(),
            format!("{}-late", self.name),
            None,
            self.tx.clone(),
        );
        if let Err(e) = r {
            clock.ev(format!("late client failed to start: {e}"));
        }
    }
}

struct Trial {
    env: Env,
    extra: Vec<String>,
    name: String,
    blocked: Vec<(String, u64)>,
    idle: Option<(String, u64, mpsc::Sender<()>)>,
    rx: mpsc::Receiver<ClientMsg>,
    log_offset: u64,
    snapshot: Vec<Vec<String>>,
}

fn status_var(lab: &Lab, host: &str, var: &str) -> Option<String> {
    lab.sql(host, &format!("SHOW GLOBAL STATUS LIKE '{var}'"))
        .ok()?
        .into_iter()
        .next()
        .and_then(|r| r.get(1).cloned())
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Res<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > end {
            return Err(format!("timeout waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Heals db1, makes sure semi-sync ACKs flow (a warm-up commit is acknowledged), replicas are
/// caught up.
fn heal_and_settle(lab: &Lab) -> Res<()> {
    let e = |e: ha_lab::Error| e.to_string();
    lab.heal("db1", "db2").map_err(e)?;
    lab.heal("db1", "db3").map_err(e)?;
    for h in ["db2", "db3"] {
        lab.sql(h, "STOP SLAVE IO_THREAD").map_err(e)?;
        lab.sql(h, "START SLAVE IO_THREAD").map_err(e)?;
    }
    wait_for(
        "semi-sync master ON with a client on db1",
        Duration::from_secs(30),
        || {
            let st = status_var(lab, "db1", "Rpl_semi_sync_master_status")?;
            let cl: u32 = status_var(lab, "db1", "Rpl_semi_sync_master_clients")?
                .parse()
                .ok()?;
            (st == "ON" && cl >= 1).then_some(())
        },
    )?;
    Ok(())
}

fn setup(lab: &Lab, name: &str, n_blocked: usize, with_idle: bool, cut: bool) -> Res<Trial> {
    let e = |e: ha_lab::Error| e.to_string();
    heal_and_settle(lab)?;
    lab.make_writable("db1").map_err(e)?;
    let db1ip = lab.host("db1").map_err(e)?.ip.to_string();
    let cli_ns = lab.cli().ns.clone();
    let (tx, rx) = mpsc::channel();
    // Warm-up commit: proves the ACK path works (it waits for db2's ACK).
    let wt = Instant::now();
    spawn_client(
        &cli_ns,
        db1ip.clone(),
        format!("{name}-warmup"),
        None,
        tx.clone(),
    )?;
    let mut warm_ok = false;
    while let Ok(m) = rx.recv_timeout(Duration::from_secs(30)) {
        match m {
            ClientMsg::Ready { .. } => {}
            ClientMsg::Done { commit, .. } => {
                commit.map_err(|e| format!("warm-up commit failed: {e}"))?;
                warm_ok = true;
                break;
            }
            ClientMsg::Failed { err, .. } => return Err(format!("warm-up client: {err}")),
        }
    }
    if !warm_ok {
        return Err("warm-up commit did not finish in 30 s".into());
    }
    let warm_ms = ms(wt.elapsed());
    lab.wait_caught_up("db2", "db1", Duration::from_secs(20))
        .map_err(e)?;
    lab.wait_caught_up("db3", "db1", Duration::from_secs(20))
        .map_err(e)?;
    if cut {
        lab.cut("db1", "db2").map_err(e)?;
        lab.cut("db1", "db3").map_err(e)?;
    }
    let log_offset = std::fs::metadata(&lab.host("db1").map_err(e)?.error_log)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut trial = Trial {
        env: Env {
            cli_ns: cli_ns.clone(),
            db1ip: db1ip.clone(),
            name: name.to_string(),
            tx: tx.clone(),
        },
        extra: Vec::new(),
        name: name.to_string(),
        blocked: Vec::new(),
        idle: None,
        rx,
        log_offset,
        snapshot: Vec::new(),
    };
    let ready = |trial: &Trial| -> Res<(String, u64)> {
        match trial.rx.recv_timeout(Duration::from_secs(15)) {
            Ok(ClientMsg::Ready { marker, id }) => Ok((marker, id)),
            Ok(ClientMsg::Failed { marker, err }) => Err(format!("client {marker}: {err}")),
            Ok(ClientMsg::Done { marker, commit, .. }) => Err(format!(
                "client {marker} finished before fencing: {commit:?} (not blocked!)"
            )),
            Err(_) => Err("client not ready within 15 s".into()),
        }
    };
    if with_idle {
        let (htx, hrx) = mpsc::channel();
        spawn_client(
            &cli_ns,
            db1ip.clone(),
            format!("{name}-idle"),
            Some(hrx),
            tx.clone(),
        )?;
        let (m, id) = ready(&trial)?;
        trial.idle = Some((m, id, htx));
    }
    for i in 0..n_blocked {
        if i + 1 == n_blocked && n_blocked >= 2 {
            spawn_cli_client(&cli_ns, db1ip.clone(), format!("{name}-c{i}"), tx.clone())?;
        } else {
            spawn_client(
                &cli_ns,
                db1ip.clone(),
                format!("{name}-c{i}"),
                None,
                tx.clone(),
            )?;
        }
        let r = ready(&trial)?;
        trial.blocked.push(r);
        // Let this COMMIT reach the server before the next client starts.
        let id = trial.blocked.last().unwrap().1;
        wait_for(
            "blocked COMMIT in processlist",
            Duration::from_secs(10),
            || {
                let r = lab
                    .sql(
                        "db1",
                        &format!("SELECT INFO FROM information_schema.PROCESSLIST WHERE ID={id}"),
                    )
                    .ok()?;
                (r.first()?.first()? == "COMMIT").then_some(())
            },
        )?;
    }
    if n_blocked > 0 {
        std::thread::sleep(Duration::from_millis(300));
    }
    // Everything must still be blocked.
    if let Ok(m) = trial.rx.try_recv() {
        if let ClientMsg::Done { marker, commit, .. } = m {
            return Err(format!(
                "client {marker} finished before fencing: {commit:?} (COMMIT not blocked)"
            ));
        }
    }
    trial.snapshot = lab
        .sql(
            "db1",
            "SELECT ID, USER, COMMAND, TIME_MS, STATE, LEFT(COALESCE(INFO,''),30) \
             FROM information_schema.PROCESSLIST WHERE USER NOT IN ('system user','root') \
             AND ID<>CONNECTION_ID() ORDER BY ID",
        )
        .map_err(e)?;
    println!(
        "  [{name}] setup: warm-up commit ACKed in {warm_ms:.1} ms; {} blocked, idle={with_idle}; \
         Rpl_semi_sync_master_wait_sessions={:?}",
        trial.blocked.len(),
        status_var(lab, "db1", "Rpl_semi_sync_master_wait_sessions")
    );
    Ok(trial)
}

/// After the fencing: release the idle client, collect every client's outcome, check which
/// markers are committed on db1, print new error-log lines, heal and check db2.
fn finish(lab: &Lab, trial: Trial, clock: &Clock) -> Res<Vec<String>> {
    let e = |e: ha_lab::Error| e.to_string();
    let mut out = Vec::new();
    if let Some((_, _, h)) = &trial.idle {
        std::thread::sleep(Duration::from_millis(100));
        let _ = h.send(());
    }
    let mut pending: Vec<String> = trial.blocked.iter().map(|b| b.0.clone()).collect();
    if let Some(i) = &trial.idle {
        pending.push(i.0.clone());
    }
    pending.extend(trial.extra.iter().cloned());
    let end = Instant::now() + Duration::from_secs(8);
    let mut outcomes: BTreeMap<String, String> = BTreeMap::new();
    while !pending.is_empty() && Instant::now() < end {
        match trial.rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ClientMsg::Done {
                marker,
                commit,
                at,
                after,
            }) => {
                let t = rel(clock.t0, at);
                let short = marker.rsplit('-').next().unwrap_or("").to_string();
                if short.starts_with('c') {
                    clock.metric(format!("client_{short}_commit_returned"), t);
                }
                let s = match &commit {
                    Ok(()) => "OK (!!)".to_string(),
                    Err(e) => e.clone(),
                };
                outcomes.insert(
                    marker.clone(),
                    format!(
                        "COMMIT returned at {t:.1} ms: {s}; then SELECT 1: {}",
                        match after {
                            Ok(()) => "ok (connection alive)".to_string(),
                            Err(e) => e,
                        }
                    ),
                );
                pending.retain(|p| *p != marker);
            }
            Ok(ClientMsg::Failed { marker, err }) => {
                outcomes.insert(marker.clone(), format!("client failed: {err}"));
                pending.retain(|p| *p != marker);
            }
            Ok(ClientMsg::Ready { .. }) | Err(_) => {}
        }
    }
    for p in &pending {
        outcomes.insert(p.clone(), "STILL BLOCKED 8 s after fencing".into());
    }
    let committed: Vec<String> = lab
        .sql(
            "db1",
            &format!("SELECT v FROM hatest.t WHERE v LIKE '{}-%'", trial.name),
        )
        .map_err(e)?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    for (m, o) in &outcomes {
        out.push(format!(
            "client {m}: {o}; row on db1: {}",
            if committed.contains(m) {
                "COMMITTED"
            } else {
                "absent (rolled back)"
            }
        ));
    }
    let log = &lab.host("db1").map_err(e)?.error_log;
    if let Ok(s) = std::fs::read(log) {
        let new =
            String::from_utf8_lossy(&s[(trial.log_offset as usize).min(s.len())..]).to_string();
        let mut dropped = 0;
        for l in new.lines() {
            // Our own ha_agent connections dropped without COM_QUIT: noise.
            if l.contains("Aborted connection") && l.contains("user: 'ha_agent'") {
                dropped += 1;
                continue;
            }
            out.push(format!("db1 error.log: {l}"));
        }
        if dropped > 0 {
            out.push(format!("db1 error.log: ({dropped} 'Aborted connection' warnings of our own dropped ha_agent connections omitted)"));
        }
    }
    let ro = lab.read_only("db1").map_err(e)?;
    out.push(format!("db1 read_only at end: {ro}"));
    // Heal: do the locally committed rows reach db2?
    heal_and_settle(lab)?;
    let caught = lab.wait_caught_up("db2", "db1", Duration::from_secs(20));
    let on_db2: Vec<String> = lab
        .sql(
            "db2",
            &format!(
                "SELECT v FROM hatest.t WHERE v LIKE '{}-%' AND v NOT LIKE '%warmup'",
                trial.name
            ),
        )
        .map_err(e)?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    out.push(format!(
        "after heal ({}): rows of this trial on db2: {:?}",
        if caught.is_ok() {
            "db2 caught up"
        } else {
            "db2 NOT caught up"
        },
        on_db2
    ));
    Ok(out)
}

// ----- fencing building blocks (run on the db1-namespace runtime) ---------------------------

/// Polls `SELECT @@global.read_only` on a fresh connection until it is 1.
async fn poll_ro(clock: Clock, limit: Duration) {
    let o = agent_opts("127.0.0.1");
    let mut n = 0u32;
    while clock.t0.elapsed() < limit {
        n += 1;
        if let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(1), o.connect()).await {
            if let Ok(Ok(r)) = tokio::time::timeout(
                Duration::from_secs(1),
                rows(&mut c, "SELECT @@global.read_only AS ro"),
            )
            .await
            {
                if r.first().and_then(|r| r.get("ro")).map(String::as_str) == Some("1") {
                    clock.ev_metric(
                        "ro_visible",
                        format!("read_only=1 seen on fresh connection (poll #{n})"),
                    );
                    let _ = c.close().await;
                    return;
                }
            }
            let _ = c.close().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    clock.ev(format!("poller gave up: read_only still 0 after {n} polls"));
}

/// Waits until every id in `ids` is gone from the processlist; records each.
async fn watch_gone(mut obs: MySqlConnection, clock: Clock, ids: Vec<u64>) {
    let mut left = ids.clone();
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let mut last_states: BTreeMap<String, String> = BTreeMap::new();
    let start = Instant::now();
    while !left.is_empty() && start.elapsed() < Duration::from_secs(6) {
        let r = rows(
            &mut obs,
            &format!(
                "SELECT ID, COMMAND, STATE FROM information_schema.PROCESSLIST WHERE ID IN ({list})"
            ),
        )
        .await
        .unwrap_or_default();
        let present: Vec<u64> = r
            .iter()
            .filter_map(|r| r.get("ID").and_then(|v| v.parse().ok()))
            .collect();
        for r in &r {
            let k = r.get("ID").cloned().unwrap_or_default();
            let st = format!(
                "{}/{}",
                r.get("COMMAND").cloned().unwrap_or_default(),
                r.get("STATE").cloned().unwrap_or_default()
            );
            if last_states.get(&k) != Some(&st) {
                clock.ev(format!("  id {k} now {st}"));
                last_states.insert(k, st);
            }
        }
        for id in left.clone() {
            if !present.contains(&id) {
                let t = clock.ev(format!("id {id} gone from PROCESSLIST"));
                clock.metric("all_gone_from_processlist", t);
                left.retain(|x| *x != id);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if !left.is_empty() {
        clock
            .metrics
            .lock()
            .unwrap()
            .remove("all_gone_from_processlist");
        clock.ev(format!("still in PROCESSLIST after 6 s: {left:?}"));
    }
}

async fn set_ro(r: &mut MySqlConnection, clock: &Clock) -> Res<()> {
    clock.ev("SET GLOBAL read_only=1 sent");
    let res = exec(r, "SET GLOBAL read_only = 1").await;
    clock.ev_metric(
        "ro_returned",
        format!("SET GLOBAL read_only=1 returned: {res:?}"),
    );
    res
}

/// The agent's kill step: SHOW FULL PROCESSLIST, `KILL <kind> <id>` for every `app` session.
async fn kill_app(k: &mut MySqlConnection, clock: &Clock, kind: &str) -> Res<Vec<u64>> {
    let list = rows(k, "SHOW FULL PROCESSLIST").await?;
    clock.ev_metric(
        "processlist_listed",
        format!("SHOW FULL PROCESSLIST returned {} rows", list.len()),
    );
    let mut ids = Vec::new();
    for p in &list {
        if p.get("User").map(String::as_str) != Some("app") {
            continue;
        }
        let id: u64 = p.get("Id").and_then(|v| v.parse().ok()).unwrap_or(0);
        let r = exec(k, &format!("KILL {kind} {id}")).await;
        clock.ev(format!("KILL {kind} {id} returned {r:?}"));
        ids.push(id);
    }
    clock.ev_metric(
        "kills_returned",
        format!("all {} KILLs returned", ids.len()),
    );
    Ok(ids)
}

async fn snapshot(obs: &mut MySqlConnection, clock: &Clock, label: &str) {
    let r = rows(
        obs,
        "SELECT ID, USER, COMMAND, TIME_MS, STATE, LEFT(COALESCE(INFO,''),40) AS INFO \
         FROM information_schema.PROCESSLIST WHERE COMMAND<>'Daemon' AND ID<>CONNECTION_ID() ORDER BY ID",
    )
    .await
    .unwrap_or_default();
    for p in r {
        clock.ev(format!(
            "  [{label}] id={} user={} cmd={} state='{}' info='{}'",
            p["ID"], p["USER"], p["COMMAND"], p["STATE"], p["INFO"]
        ));
    }
}

struct Conns {
    r: MySqlConnection,
    k: MySqlConnection,
    f: MySqlConnection,
    obs: MySqlConnection,
    obs2: MySqlConnection,
}

async fn open_conns() -> Res<Conns> {
    let o = agent_opts("127.0.0.1");
    Ok(Conns {
        r: connect(&o).await?,
        k: connect(&o).await?,
        f: connect(&o).await?,
        obs: connect(&o).await?,
        obs2: connect(&o).await?,
    })
}

/// One fencing variant; `conns` = None means: open fresh connections after t0 (like ha-agent).
async fn fence(variant: String, clock: Clock, conns: Option<Conns>, env: Env) -> Res<()> {
    let poller = tokio::spawn(poll_ro(clock.clone(), Duration::from_secs(12)));
    let mut c = match conns {
        Some(c) => c,
        None => {
            // ha-agent: two fresh connections (deny, kill), opened concurrently.
            let o = agent_opts("127.0.0.1");
            let (r, k) = tokio::join!(connect(&o), connect(&o));
            let r = r?;
            let k = k?;
            clock.ev_metric("fresh_conns_open", "two fresh connections open");
            let obs = connect(&o).await?;
            Conns {
                r,
                k,
                f: connect(&o).await?,
                obs,
                obs2: connect(&o).await?,
            }
        }
    };
    let base = variant
        .trim_start_matches('Z')
        .trim_end_matches('P')
        .to_string();
    let base = if variant.starts_with('Z') {
        base
    } else {
        variant.clone()
    };
    match base.as_str() {
        "IDLE" | "IDLETRX" => {
            set_ro(&mut c.r, &clock).await?;
        }
        "A" => {
            let cl = clock.clone();
            let mut r = c.r;
            let ro = tokio::spawn(async move {
                let res = set_ro(&mut r, &cl).await;
                (r, res)
            });
            tokio::time::sleep(Duration::from_millis(1000)).await;
            env.late_client(&clock);
            tokio::time::sleep(Duration::from_millis(500)).await;
            snapshot(&mut c.obs, &clock, "read_only pending, 1.5 s").await;
            let start = Instant::now();
            while !ro.is_finished() && start.elapsed() < Duration::from_millis(1500) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if !ro.is_finished() {
                let kt = clock.ev_metric(
                    "kill_start",
                    "read_only=1 still pending at 3 s: killing the clients now",
                );
                let ids = kill_app(&mut c.k, &clock, "CONNECTION").await?;
                let w = tokio::spawn(watch_gone(c.obs2, clock.clone(), ids));
                let (_r, res) = ro.await.map_err(|e| e.to_string())?;
                clock.metric("ro_after_kill_start", clock.now() - kt);
                res?;
                let _ = w.await;
            } else {
                let _ = ro.await;
            }
        }
        "B" | "D" => {
            let kind = if base == "B" { "CONNECTION" } else { "QUERY" };
            let ids = kill_app(&mut c.k, &clock, kind).await?;
            let w = tokio::spawn(watch_gone(c.obs2, clock.clone(), ids));
            set_ro(&mut c.r, &clock).await?;
            let _ = w.await;
        }
        "C" => {
            let (ro, ids) = tokio::join!(
                set_ro(&mut c.r, &clock),
                kill_app(&mut c.k, &clock, "CONNECTION")
            );
            ro?;
            watch_gone(c.obs2, clock.clone(), ids?).await;
        }
        "E" => {
            let cl = clock.clone();
            let mut f = c.f;
            let ft = tokio::spawn(async move {
                cl.ev("FLUSH TABLES WITH READ LOCK sent");
                let res = exec(&mut f, "FLUSH TABLES WITH READ LOCK").await;
                cl.ev_metric("ftwrl_returned", format!("FTWRL returned: {res:?}"));
                (f, res)
            });
            tokio::time::sleep(Duration::from_millis(1000)).await;
            env.late_client(&clock);
            tokio::time::sleep(Duration::from_millis(500)).await;
            snapshot(&mut c.obs, &clock, "FTWRL pending, 1.5 s").await;
            let start = Instant::now();
            while !ft.is_finished() && start.elapsed() < Duration::from_millis(1500) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut w = None;
            if !ft.is_finished() {
                clock.ev_metric(
                    "kill_start",
                    "FTWRL still pending at 3 s: killing the clients now",
                );
                let ids = kill_app(&mut c.k, &clock, "CONNECTION").await?;
                w = Some(tokio::spawn(watch_gone(c.obs2, clock.clone(), ids)));
            }
            let (mut f, fres) = ft.await.map_err(|e| e.to_string())?;
            fres?;
            // read_only=1 on another connection while FTWRL is held.
            let cl = clock.clone();
            let mut r = c.r;
            let ro = tokio::spawn(async move {
                let res = set_ro(&mut r, &cl).await;
                (r, res)
            });
            let start = Instant::now();
            while !ro.is_finished() && start.elapsed() < Duration::from_millis(2000) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if !ro.is_finished() {
                snapshot(&mut c.obs, &clock, "read_only pending while FTWRL held").await;
            }
            let u = exec(&mut f, "UNLOCK TABLES").await;
            clock.ev(format!("UNLOCK TABLES returned {u:?}"));
            let (_r, res) = ro.await.map_err(|e| e.to_string())?;
            res?;
            if let Some(w) = w {
                let _ = w.await;
            }
        }
        other => return Err(format!("unknown variant {other}")),
    }
    let _ = poller.await;
    Ok(())
}

// ----- variants driven from the main thread -------------------------------------------------------

struct Runner {
    lab: Lab,
    rt: tokio::runtime::Runtime,
    results: BTreeMap<String, Vec<Metrics>>,
    clients: usize,
}

impl Runner {
    fn print_trial(
        &self,
        name: &str,
        clock: &Clock,
        trial_snapshot: &[Vec<String>],
        tail: &[String],
    ) {
        println!("  [{name}] processlist at t0 (non-root, non-system):");
        for r in trial_snapshot {
            println!("      {}", r.join(" | "));
        }
        let mut log = clock.log.lock().unwrap().clone();
        log.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        for (t, s) in log {
            println!("  [{name}] {t:9.1} ms  {s}");
        }
        for l in tail {
            println!("  [{name}] {l}");
        }
    }

    fn trial(&mut self, variant: &str, rep: usize) -> Res<()> {
        let name = format!("{}{}", variant.to_lowercase(), rep);
        let (n_blocked, idle, cut) = match variant {
            "IDLE" => (0, false, false),
            "IDLETRX" => (0, true, false),
            _ => (self.clients, true, true),
        };
        let mut trial = setup(&self.lab, &name, n_blocked, idle, cut)?;
        if variant == "A" || variant == "E" {
            trial.extra.push(format!("{name}-late"));
        }
        let env = trial.env.clone();
        let frozen = variant.starts_with('Z');
        let fresh = frozen && !variant.ends_with('P');
        let conns = if fresh {
            None
        } else {
            Some(run(&self.rt, open_conns())?)
        };
        let clock;
        if frozen {
            let ns = self.lab.host("db1").map_err(|e| e.to_string())?.ns.clone();
            let pids = netns::pids(&ns).map_err(|e| e.to_string())?;
            self.lab.freeze("db1").map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_secs(2));
            let (gtx, grx) = tokio::sync::oneshot::channel::<Clock>();
            let v = variant.to_string();
            let task = self.rt.spawn(async move {
                let clock = grx.await.map_err(|e| e.to_string())?;
                clock.ev("fence task starts");
                fence(v, clock.clone(), conns, env).await?;
                Ok::<Clock, String>(clock)
            });
            self.lab.link_up("db1").map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            for p in &pids {
                // SAFETY: kill(2) on a process of our lab's db1 namespace.
                unsafe { libc::kill(*p, libc::SIGCONT) };
            }
            let c = Clock::new(t0);
            c.ev(format!(
                "SIGCONT sent to {} process(es) of db1 (thaw)",
                pids.len()
            ));
            let _ = gtx.send(c);
            clock = self.rt.block_on(task).map_err(|e| e.to_string())??;
        } else {
            let t0 = Instant::now();
            clock = Clock::new(t0);
            let c2 = clock.clone();
            let v = variant.to_string();
            run(&self.rt, async move { fence(v, c2, conns, env).await })?;
        }
        let snap = trial.snapshot.clone();
        let tail = finish(&self.lab, trial, &clock)?;
        self.print_trial(&name, &clock, &snap, &tail);
        let m = clock.metrics.lock().unwrap().clone();
        self.results.entry(variant.to_string()).or_default().push(m);
        Ok(())
    }

    fn conn_times(&mut self, reps: usize) -> Res<()> {
        let db1 = self.lab.host("db1").map_err(|e| e.to_string())?.clone();
        let ip = db1.ip.to_string();
        let sock = db1.socket.clone();
        let m = run(&self.rt, async move {
            let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            let targets: Vec<(String, MySqlConnectOptions)> = vec![
                (
                    "connect 127.0.0.1 (ha_agent)".into(),
                    agent_opts("127.0.0.1"),
                ),
                (format!("connect host IP {ip} (ha_agent)"), agent_opts(&ip)),
                (
                    "connect unix socket (ha_agent)".into(),
                    MySqlConnectOptions::new()
                        .socket(&sock)
                        .username(creds::AGENT_USER)
                        .password(creds::AGENT_PASSWORD)
                        .statement_cache_capacity(0),
                ),
            ];
            for _ in 0..reps {
                for (name, o) in &targets {
                    let t = Instant::now();
                    let c = connect(o).await;
                    let ct = ms(t.elapsed());
                    if let Ok(mut c) = c {
                        let t2 = Instant::now();
                        let _ = exec(&mut c, "SELECT 1").await;
                        out.entry(format!("{name}: connect")).or_default().push(ct);
                        out.entry(format!("{name}: then SELECT 1"))
                            .or_default()
                            .push(ms(t2.elapsed()));
                        let _ = c.close().await;
                    } else if let Err(e) = c {
                        println!("  connect {name} failed: {e}");
                    }
                }
            }
            out
        });
        println!("== CONN ({reps} reps, sqlx from inside db1's namespace; includes sqlx's session setup)");
        for (k, v) in m {
            let s = stats(&v);
            println!(
                "  {k:60} min {:7.2}  median {:7.2}  max {:7.2} ms",
                s.0, s.1, s.2
            );
        }
        Ok(())
    }
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let med = if s.is_empty() {
        f64::NAN
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    (
        s.first().copied().unwrap_or(f64::NAN),
        med,
        s.last().copied().unwrap_or(f64::NAN),
    )
}

fn main() {
    let mut variants: Vec<String> = Vec::new();
    let mut reps = 3usize;
    let mut clients = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--clients" => clients = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            v => variants.push(v.to_uppercase()),
        }
    }
    if variants.is_empty() {
        variants = ["CONN", "IDLE", "IDLETRX", "A", "B", "C", "D", "E"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let started = Instant::now();
    let lab = Lab::start(LabOptions::default()).expect("lab start");
    println!(
        "lab {} up in {:.1} s; mariadbd {}",
        lab.prefix(),
        started.elapsed().as_secs_f64(),
        lab.sql_value("db1", "SELECT VERSION()")
            .ok()
            .flatten()
            .unwrap_or_default()
    );
    let ns = lab.host("db1").unwrap().ns.clone();
    let rt = netns::in_netns(&ns, || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(3)
            .enable_all()
            .build()
    })
    .expect("netns")
    .expect("runtime");
    let mut runner = Runner {
        lab,
        rt,
        results: BTreeMap::new(),
        clients,
    };
    for v in &variants {
        if v == "CONN" {
            if let Err(e) = runner.conn_times(10) {
                println!("CONN failed: {e}");
            }
            continue;
        }
        let n = if v == "IDLE" { reps.max(5) } else { reps };
        println!("== {v}");
        for rep in 0..n {
            if let Err(e) = runner.trial(v, rep) {
                println!("  [{v}{rep}] TRIAL FAILED: {e}");
            }
        }
    }
    println!(
        "\n== SUMMARY (ms after t0; t0 = fencing start, or SIGCONT for Z*): min / median / max (n)"
    );
    for (v, ms_list) in &runner.results {
        let mut keys: Vec<String> = ms_list.iter().flat_map(|m| m.keys().cloned()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let vals: Vec<f64> = ms_list.iter().filter_map(|m| m.get(&k).copied()).collect();
            let s = stats(&vals);
            println!(
                "  {v:8} {k:36} {:9.1} {:9.1} {:9.1}  ({})",
                s.0,
                s.1,
                s.2,
                vals.len()
            );
        }
    }
    println!("total run time {:.1} s", started.elapsed().as_secs_f64());
}
