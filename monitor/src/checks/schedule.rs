//! The per host × check task loop: every period a run of parallel attempts, paused while the
//! monitor is cut off, and attempts that miss their run kept for the answer they still wait for.

use std::time::Duration;

use ha_core::{Check, CheckOutcome};
use tokio::sync::mpsc;

use super::{CheckReport, Observation};

/// How many connections one (host, check) may hold per parallel attempt: attempts still
/// waiting for a late answer keep theirs (see [`run_check`]); beyond that the oldest is given
/// up.
const POOL_PER_ATTEMPT: usize = 2;

/// How long an attempt may keep waiting for its answer after its run gave up on it
/// (`timeout` × this, at least [`MIN_LATE_WAIT`]).
pub(super) const LATE_WAIT_FACTOR: u32 = 10;
pub(super) const MIN_LATE_WAIT: Duration = Duration::from_secs(2);

/// Runs one (host, check) until shutdown: every `check_period`, `attempts` independent
/// attempts in parallel (each on its own connection); the run is OK as soon as one attempt
/// answers OK, and fails when none did within `timeout` (combined by [`combine`]).
///
/// An attempt that misses the run's `timeout` is *not* cancelled: it keeps its connection and
/// may finish later (up to `timeout` × [`LATE_WAIT_FACTOR`]), then serves later runs. Under
/// packet loss a lost segment costs one TCP retransmission (≥ 200 ms), more than a sub-second
/// `timeout`; dropping the connection instead would make the next run reconnect — a handshake
/// and a login, several more round trips that can each be lost — and turn loss into an outage.
pub(super) async fn run_check<A: Attempt>(
    template: A,
    schedule: Schedule,
    tx: mpsc::Sender<CheckReport>,
    paused: tokio::sync::watch::Receiver<bool>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let attempts = schedule.attempts.max(1);
    let window = schedule.window;
    // (run, task id, attempt, outcome) of every finished attempt.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, u64, A, Observation)>();
    let mut idle: Vec<A> = (0..attempts).map(|_| template.fresh()).collect();
    // Attempts still running, oldest first.
    let mut busy: std::collections::VecDeque<(u64, tokio::task::AbortHandle)> =
        std::collections::VecDeque::new();
    let cap = attempts * POOL_PER_ATTEMPT;
    let mut run: u64 = 0;
    let mut task_id: u64 = 0;
    let mut seq: u16 = 0;
    loop {
        if shutdown.is_shutdown() {
            break;
        }
        // While the monitor is cut off from the network, checks are not run: their results
        // would describe the monitor, not the hosts (docs/mmm-behaviour.md §3.7).
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
                            answered = o.is_ok();
                            outcomes.push(o);
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            if outcomes.len() < launched && !answered {
                outcomes.push(Observation::error(late_text.unwrap_or_default()));
            }
            let report = CheckReport {
                host: schedule.host.clone(),
                check: schedule.check,
                observation: combine(outcomes),
                took: started.elapsed(),
            };
            if tx.send(report).await.is_err() {
                break; // main loop gone: shutting down
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(schedule.period) => {}
            _ = shutdown.recv() => {}
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
pub(super) struct Schedule {
    pub(super) host: String,
    pub(super) check: Check,
    pub(super) period: Duration,
    /// How long a run waits for an answer (the check's timeout).
    pub(super) window: Duration,
    pub(super) attempts: usize,
}

/// One parallel attempt of a check and the connection it keeps between runs: [`Runner`](super::probe::Runner) in
/// the daemon, scripted fakes in the tests of [`run_check`].
pub(super) trait Attempt: Send + Sized + 'static {
    /// The same check without a connection.
    fn fresh(&self) -> Self;
    fn attempt(&mut self, seq: u16) -> impl std::future::Future<Output = Observation> + Send;
    /// The failure text of a run this attempt did not answer in time.
    fn timeout_text(&self) -> String;
    fn close(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// One run's result from its parallel attempts: OK if any attempt answered OK; otherwise the
/// first ERROR (the host failed every attempt); otherwise UNKNOWN.
pub fn combine(outcomes: Vec<Observation>) -> Observation {
    let mut first_error = None;
    let mut first_unknown = None;
    for o in outcomes {
        match o.outcome {
            CheckOutcome::Ok => return o,
            CheckOutcome::Error if first_error.is_none() => first_error = Some(o),
            CheckOutcome::Unknown if first_unknown.is_none() => first_unknown = Some(o),
            _ => {}
        }
    }
    first_error
        .or(first_unknown)
        .unwrap_or_else(|| Observation::unknown("UNKNOWN: no attempt ran"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        fn attempt(&mut self, _seq: u16) -> impl std::future::Future<Output = Observation> + Send {
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
                        Observation::ok(format!("OK from connection {conn}"))
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
    ) -> (Vec<Observation>, usize, usize) {
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
            check: Check::Mysql,
            period: Duration::from_millis(100),
            window: Duration::from_millis(100),
            attempts,
        };
        let (tx, mut rx) = mpsc::channel(64);
        let (_p, paused) = tokio::sync::watch::channel(false);
        let (stop, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(run_check(template, schedule, tx, paused, shutdown));
        let mut out = Vec::new();
        while out.len() < runs {
            match rx.recv().await {
                Some(r) => out.push(r.observation),
                None => break,
            }
        }
        stop.fire();
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
        assert_eq!(out[0], Observation::error("ERROR: Timeout after 100ms"));
        assert!(
            out[1..].iter().all(|o| o.is_ok()),
            "a second connection answers while the first waits: {out:?}"
        );
        assert!(
            out.iter()
                .skip(4)
                .any(|o| o == &Observation::ok("OK from connection 0")),
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
                .all(|o| o == &Observation::ok("OK from connection 2")),
            "{out:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_that_never_answers_fails_every_run_with_bounded_attempts() {
        let (out, created, max_running) = drive(2, 20, |_, _| None).await;
        assert!(
            out.iter()
                .all(|o| o == &Observation::error("ERROR: Timeout after 100ms")),
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

    #[test]
    fn any_ok_attempt_makes_the_run_ok() {
        let ok = || Observation::ok("OK");
        let err = |m: &str| Observation::error(format!("ERROR: {m}"));
        let unk = || Observation::unknown("UNKNOWN: x");
        assert_eq!(combine(vec![err("a"), ok(), unk()]), ok());
        assert_eq!(combine(vec![unk(), err("a"), err("b")]), err("a"));
        assert_eq!(combine(vec![unk(), unk()]), unk());
        assert_eq!(combine(vec![]).outcome, CheckOutcome::Unknown);
    }
}
