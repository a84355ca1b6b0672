//! When were writes acknowledged without a semi-sync replica? I2 holds for writes acknowledged
//! by a semi-sync replica (docs/product.md: semi-sync AFTER_SYNC, without asynchronous
//! fallback while a master candidate is connected); when every candidate is gone the master
//! acknowledges asynchronously and the write may be lost on failover — by the product's rules,
//! not by a bug. The server counts those commits (`Rpl_semi_sync_master_no_tx`); this watcher
//! samples the counter and `read_only` on every host every 100 ms so the checker can tell the
//! two apart. Only a writable host counts: a read-only master candidate also counts the
//! transactions its replication thread commits (nobody acknowledges those; in the lab every
//! replicated write of db1 grows db2's counter), and clients write only to the writer.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ha_lab::Lab;

use crate::invariants::quick_query;

/// Margin around a window: the client sees the acknowledgement a little after the commit.
const MARGIN: Duration = Duration::from_millis(250);

pub struct SemiSyncWatch {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl SemiSyncWatch {
    /// Starts sampling; times are counted from `t0`.
    pub fn start(lab: &Lab, t0: Instant) -> SemiSyncWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let hosts: Vec<(String, PathBuf)> = lab
            .hosts()
            .iter()
            .map(|h| (h.name.clone(), h.socket.clone()))
            .collect();
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let started = Instant::now();
                let handles: Vec<_> = hosts
                    .iter()
                    .cloned()
                    .map(|(name, socket)| std::thread::spawn(move || (name, read(&socket))))
                    .collect();
                for h in handles {
                    if let Ok((host, Some((writable, no_tx)))) = h.join() {
                        let at = t0.elapsed();
                        out.lock().unwrap_or_else(|p| p.into_inner()).push(Sample {
                            at,
                            host,
                            writable,
                            no_tx,
                        });
                    }
                }
                if let Some(rest) = Duration::from_millis(100).checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        });
        SemiSyncWatch {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the windows in which some host committed without a semi-sync
    /// acknowledgement (widened by a margin).
    pub fn stop(mut self) -> Vec<(Duration, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()));
        unprotected_windows(&samples)
    }
}

impl Drop for SemiSyncWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One reading of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at: Duration,
    pub host: String,
    pub writable: bool,
    pub no_tx: u64,
}

/// (`read_only` = 0, `Rpl_semi_sync_master_no_tx`) over the host's socket, sub-second
/// deadline.
fn read(socket: &std::path::Path) -> Option<(bool, u64)> {
    let out = quick_query(
        socket,
        "SELECT @@global.read_only, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_NO_TX'",
    )?;
    let mut f = out.split_whitespace();
    let read_only = f.next()? != "0";
    Some((!read_only, f.next()?.parse().ok()?))
}

/// Every interval between two samples of one host in which its counter grew, or restarted (a
/// restarted server counts from 0: anything above 0 after a drop grew in between), while the
/// host was writable at either end, widened by [`MARGIN`] on both sides.
pub fn unprotected_windows(samples: &[Sample]) -> Vec<(Duration, Duration)> {
    let mut hosts: Vec<&str> = samples.iter().map(|s| s.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut windows = Vec::new();
    for host in hosts {
        let mut prev: Option<&Sample> = None;
        for s in samples.iter().filter(|s| s.host == host) {
            if let Some(p) = prev {
                let grew = s.no_tx > p.no_tx || (s.no_tx < p.no_tx && s.no_tx > 0);
                if grew && (p.writable || s.writable) {
                    windows.push((p.at.saturating_sub(MARGIN), s.at + MARGIN));
                }
            }
            prev = Some(s);
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64, host: &str, writable: bool, no_tx: u64) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            host: host.to_string(),
            writable,
            no_tx,
        }
    }

    #[test]
    fn a_writers_growing_or_restarted_counter_opens_a_window() {
        let samples = vec![
            s(0, "db1", true, 5),
            s(0, "db2", false, 0),
            s(100, "db1", true, 5),
            s(100, "db2", false, 7), // a read-only replica's replicated commits: ignored
            s(200, "db1", true, 9),  // grew: 100..200
            s(200, "db2", false, 9),
            s(300, "db1", true, 9),
            s(400, "db1", true, 2), // restarted and grew: 300..400
            s(500, "db1", true, 0), // restarted, nothing since
        ];
        let w = unprotected_windows(&samples);
        let ms = |d: Duration| d.as_millis();
        let got: Vec<(u128, u128)> = w.iter().map(|(a, b)| (ms(*a), ms(*b))).collect();
        assert_eq!(got, vec![(0, 450), (50, 650)]);
    }
}
