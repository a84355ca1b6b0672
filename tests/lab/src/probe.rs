//! The write probe: a client in the client namespace inserting numbered rows through an IP
//! (normally the writer role IP) at a fixed interval, recording every attempt.
//!
//! Design: a dedicated thread `setns`-es into the client namespace and then builds a tokio
//! current-thread runtime and sqlx connections, so the TCP socket really lives in the client
//! namespace (it resolves the role IP by ARP exactly like an application would). sqlx has no
//! connect or read timeout, so every connect and every statement is wrapped in
//! `tokio::time::timeout`; a timed-out or failed connection is discarded and the next attempt
//! reconnects. Each attempt uses a fresh sequence number; only acknowledged (OK) ones must
//! survive a failover.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::ConnectOptions;

use crate::error::{Error, Result};
use crate::{creds, mariadb, netns, wait_until, Lab, MYSQL_PORT};

/// How the probe runs.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Address to write through (e.g. [`Lab::writer_vip`]).
    pub target: Ipv4Addr,
    /// Port (3306).
    pub port: u16,
    /// Time between the starts of consecutive attempts (an attempt that takes longer delays
    /// the next one). Default 100 ms.
    pub interval: Duration,
    /// Deadline of a connect (TCP + handshake + session setup). Default 300 ms.
    pub connect_timeout: Duration,
    /// Deadline of one INSERT (including the semi-sync wait). Default 1 s.
    pub query_timeout: Duration,
    /// Open a new connection for every attempt instead of keeping one. Default false.
    pub reconnect_each: bool,
    /// Namespace to run in (a node name). Default `cli`.
    pub from: String,
    /// Account. Default the lab's application account.
    pub user: String,
    /// Password.
    pub password: String,
}

impl ProbeOptions {
    /// Defaults writing through `target`.
    pub fn new(target: Ipv4Addr) -> Self {
        ProbeOptions {
            target,
            port: MYSQL_PORT,
            interval: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(300),
            query_timeout: Duration::from_secs(1),
            reconnect_each: false,
            from: "cli".into(),
            user: creds::APP_USER.into(),
            password: creds::APP_PASSWORD.into(),
        }
    }

    /// Sets the interval.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
}

/// One write attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Sequence number written (unique within the run).
    pub seq: u64,
    /// Start, relative to the probe's start.
    pub started: Duration,
    /// End (acknowledgement or failure), relative to the probe's start.
    pub finished: Duration,
    /// `None` = acknowledged; otherwise what failed (connect/insert, timeout or server error).
    pub error: Option<String>,
}

impl Attempt {
    /// True when the server acknowledged the write.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A running probe. [`Probe::stop`] returns the report; dropping it stops it too.
pub struct Probe {
    run: String,
    target: Ipv4Addr,
    started: Instant,
    stop: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    thread: Option<JoinHandle<Result<Result<()>>>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("run", &self.run)
            .field("target", &self.target)
            .finish()
    }
}

/// The outcome of a probe run.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Run id (the `run` column of `hatest.probe`).
    pub run: String,
    /// Target address.
    pub target: Ipv4Addr,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Time from start to stop.
    pub duration: Duration,
    /// Set if the probe thread itself failed (not a write failure).
    pub probe_error: Option<String>,
}

impl ProbeReport {
    /// Number of acknowledged writes.
    pub fn ok_count(&self) -> usize {
        self.attempts.iter().filter(|a| a.ok()).count()
    }

    /// Number of failed attempts.
    pub fn failed_count(&self) -> usize {
        self.attempts.iter().filter(|a| !a.ok()).count()
    }

    /// Sequence numbers of acknowledged writes.
    pub fn acked(&self) -> Vec<u64> {
        self.attempts
            .iter()
            .filter(|a| a.ok())
            .map(|a| a.seq)
            .collect()
    }

    /// Longest time without an acknowledged write: the largest gap between the ends of
    /// consecutive acknowledged writes, counting the probe's start as the first boundary and its
    /// stop as the last when the run ends in failures. Without any fault this is about one
    /// interval plus a write's latency; a failure run, or a write that blocks (e.g. semi-sync
    /// waiting), shows up as a longer gap.
    pub fn longest_outage(&self) -> Duration {
        let mut last = Duration::ZERO;
        let mut longest = Duration::ZERO;
        for a in self.attempts.iter().filter(|a| a.ok()) {
            longest = longest.max(a.finished.saturating_sub(last));
            last = a.finished;
        }
        if self.attempts.last().is_some_and(|a| !a.ok()) || self.ok_count() == 0 {
            longest = longest.max(self.duration.saturating_sub(last));
        }
        longest
    }

    /// [`ProbeReport::longest_outage`] in milliseconds.
    pub fn longest_outage_ms(&self) -> u64 {
        self.longest_outage().as_millis() as u64
    }

    /// Distinct error texts with their counts.
    pub fn errors(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = Vec::new();
        for e in self.attempts.iter().filter_map(|a| a.error.as_ref()) {
            match v.iter_mut().find(|(s, _)| s == e) {
                Some((_, n)) => *n += 1,
                None => v.push((e.clone(), 1)),
            }
        }
        v
    }

    /// Acknowledged sequence numbers whose row does not exist on `host` (read as root over the
    /// socket). Empty = no acknowledged write lost on that host.
    pub fn missing_on(&self, lab: &Lab, host: &str) -> Result<Vec<u64>> {
        let rows = lab.sql(
            host,
            &format!(
                "SELECT seq FROM hatest.probe WHERE run = {}",
                mariadb::quote(&self.run)
            ),
        )?;
        let present: BTreeSet<u64> = rows
            .iter()
            .filter_map(|r| r.first().and_then(|s| s.parse().ok()))
            .collect();
        Ok(self
            .acked()
            .into_iter()
            .filter(|s| !present.contains(s))
            .collect())
    }

    /// One-line summary for logs.
    pub fn summary(&self) -> String {
        format!(
            "probe {} via {}: {} ok, {} failed in {:?}, longest outage {} ms, errors {:?}",
            self.run,
            self.target,
            self.ok_count(),
            self.failed_count(),
            self.duration,
            self.longest_outage_ms(),
            self.errors()
        )
    }
}

impl Probe {
    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// Acknowledged writes so far.
    pub fn acked_so_far(&self) -> usize {
        self.attempts
            .lock()
            .map(|a| a.iter().filter(|a| a.ok()).count())
            .unwrap_or(0)
    }

    /// A copy of the attempts so far.
    pub fn attempts_so_far(&self) -> Vec<Attempt> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` writes were acknowledged.
    pub fn wait_acked(&self, n: usize, timeout: Duration) -> Result<()> {
        wait_until(
            &format!("probe {} to get {n} acknowledged writes", self.run),
            timeout,
            || Ok((self.acked_so_far() >= n).then_some(())),
        )
        .map_err(|e| {
            let last = self
                .attempts_so_far()
                .last()
                .and_then(|a| a.error.clone())
                .unwrap_or_default();
            Error::Other(format!("{e}; last probe error: {last}"))
        })
    }

    /// Stops the probe (the attempt in flight finishes, bounded by its timeouts) and returns
    /// the report.
    pub fn stop(mut self) -> ProbeReport {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> ProbeReport {
        self.stop.store(true, Ordering::SeqCst);
        let probe_error = match self.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(Ok(())))) | None => None,
            Some(Ok(Ok(Err(e)))) | Some(Ok(Err(e))) => Some(e.to_string()),
            Some(Err(_)) => Some("probe thread panicked".into()),
        };
        ProbeReport {
            run: self.run.clone(),
            target: self.target,
            attempts: self.attempts_so_far(),
            duration: self.started.elapsed(),
            probe_error,
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop_inner();
        }
    }
}

impl Lab {
    /// Starts a write probe (see [`ProbeOptions`]); rows go to `hatest.probe(run, seq)`.
    pub fn start_probe(&self, opts: ProbeOptions) -> Result<Probe> {
        let node = self.node(&opts.from)?;
        let run = format!(
            "{}-{}-{}",
            self.prefix(),
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0)
        );
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let thread = {
            let (run, stop, attempts, opts) =
                (run.clone(), stop.clone(), attempts.clone(), opts.clone());
            netns::spawn_in_netns(&node.ns, move || -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("build probe runtime", e))?;
                rt.block_on(run_probe(opts, run, started, stop, attempts));
                Ok(())
            })?
        };
        Ok(Probe {
            run,
            target: opts.target,
            started,
            stop,
            attempts,
            thread: Some(thread),
        })
    }
}

async fn run_probe(
    opts: ProbeOptions,
    run: String,
    started: Instant,
    stop: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
) {
    let connect_opts = MySqlConnectOptions::new()
        .host(&opts.target.to_string())
        .port(opts.port)
        .username(&opts.user)
        .password(&opts.password)
        .database(creds::APP_SCHEMA)
        .ssl_mode(MySqlSslMode::Disabled);
    let mut conn: Option<MySqlConnection> = None;
    let mut seq: u64 = 0;
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let t_start = started.elapsed();
        let result = attempt(&connect_opts, &mut conn, &opts, &run, seq).await;
        if opts.reconnect_each || result.is_err() {
            // Never reuse a connection after an error or timeout: its state is unknown.
            conn = None;
        }
        let rec = Attempt {
            seq,
            started: t_start,
            finished: started.elapsed(),
            error: result.err(),
        };
        if let Ok(mut a) = attempts.lock() {
            a.push(rec);
        }
        next += opts.interval;
        let now = tokio::time::Instant::now();
        if next < now {
            next = now;
        }
        tokio::time::sleep_until(next).await;
    }
}

async fn attempt(
    connect_opts: &MySqlConnectOptions,
    conn: &mut Option<MySqlConnection>,
    opts: &ProbeOptions,
    run: &str,
    seq: u64,
) -> std::result::Result<(), String> {
    if conn.is_none() {
        match tokio::time::timeout(opts.connect_timeout, connect_opts.connect()).await {
            Ok(Ok(c)) => *conn = Some(c),
            Ok(Err(e)) => return Err(format!("connect: {e}")),
            Err(_) => return Err(format!("connect: timeout after {:?}", opts.connect_timeout)),
        }
    }
    let c = conn.as_mut().ok_or("no connection")?;
    let q = sqlx::query("INSERT INTO probe (run, seq) VALUES (?, ?)")
        .bind(run)
        .bind(seq);
    match tokio::time::timeout(opts.query_timeout, q.execute(c)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("insert: {e}")),
        Err(_) => Err(format!("insert: timeout after {:?}", opts.query_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(seq: u64, start_ms: u64, end_ms: u64, ok: bool) -> Attempt {
        Attempt {
            seq,
            started: Duration::from_millis(start_ms),
            finished: Duration::from_millis(end_ms),
            error: (!ok).then(|| "boom".to_string()),
        }
    }

    fn report(attempts: Vec<Attempt>, duration_ms: u64) -> ProbeReport {
        ProbeReport {
            run: "r".into(),
            target: Ipv4Addr::new(10, 0, 0, 1),
            attempts,
            duration: Duration::from_millis(duration_ms),
            probe_error: None,
        }
    }

    #[test]
    fn outage_is_the_longest_gap_between_acks() {
        let r = report(
            vec![
                a(1, 0, 10, true),
                a(2, 100, 110, true),
                a(3, 200, 500, false),
                a(4, 500, 800, false),
                a(5, 800, 905, true),
                a(6, 1000, 1010, true),
            ],
            1100,
        );
        assert_eq!(r.longest_outage_ms(), 795);
        assert_eq!(r.ok_count(), 4);
        assert_eq!(r.failed_count(), 2);
        assert_eq!(r.acked(), vec![1, 2, 5, 6]);
        assert_eq!(r.errors(), vec![("boom".to_string(), 2)]);
    }

    #[test]
    fn trailing_failures_and_no_success_count_to_the_end() {
        let r = report(vec![a(1, 0, 10, true), a(2, 100, 200, false)], 2000);
        assert_eq!(r.longest_outage_ms(), 1990);
        let r = report(vec![a(1, 0, 300, false)], 700);
        assert_eq!(r.longest_outage_ms(), 700);
    }
}
