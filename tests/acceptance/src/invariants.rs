//! I1 (docs/product.md §4), checked continuously: [`Invariants`] samples every host every 50 ms,
//! [`i1_violations`] judges one sample, and the quick per-host probes it uses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ha_lab::{Cmd, Lab};

/// Continuous check of I1 (docs/product.md §4): sampled every 50 ms on every host, in parallel with
/// short per-host deadlines so a frozen host only makes its own sample unknown.
pub struct Invariants {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

/// One host's observable writer facts; `None`: unknown (no answer in time, or the host does
/// not count because its cable is pulled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostSample {
    /// `@@read_only` is 0.
    pub writable: Option<bool>,
    /// The writer IP is on its `eth0`.
    pub has_vip: Option<bool>,
}

/// Judges one sample of every host (name, facts) against I1: more than one host known to be
/// writable, or more than one known holder of the writer IP, is a violation. Unknown facts
/// count for nothing. Hosts are named in sample order. One message per violated half, without
/// the time stamp the sampler adds.
pub fn i1_violations(sample: &[(String, HostSample)]) -> Vec<String> {
    let writable: Vec<&str> = sample
        .iter()
        .filter(|(_, s)| s.writable == Some(true))
        .map(|(n, _)| n.as_str())
        .collect();
    let holders: Vec<&str> = sample
        .iter()
        .filter(|(_, s)| s.has_vip == Some(true))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut found = Vec::new();
    if writable.len() > 1 {
        found.push(format!("read_only=0 on {writable:?}"));
    }
    if holders.len() > 1 {
        found.push(format!("writer IP on {holders:?}"));
    }
    found
}

impl Invariants {
    /// Every host counts, reachable or not.
    pub fn start(lab: &Lab) -> Invariants {
        Invariants::sample(lab, false)
    }

    /// I1 as clients can observe it, for scenarios that freeze a host: a host whose cable is
    /// pulled or whose switch port is fenced (bridge-side veth down or detached, before or
    /// after the sample) does not count. A frozen host keeps read_only=0 and the writer IP in its stopped kernel for as long as it is frozen —
    /// nothing in it can run and no client can reach it; what matters is that it never serves
    /// as a second writer once it is back on the network.
    pub fn start_reachable_only(lab: &Lab) -> Invariants {
        Invariants::sample(lab, true)
    }

    fn sample(lab: &Lab, reachable_only: bool) -> Invariants {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0u64));
        let hosts: Vec<(String, String, PathBuf, String)> = lab
            .hosts()
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    h.ns.clone(),
                    h.socket.clone(),
                    h.veth.clone(),
                )
            })
            .collect();
        let vip = lab.writer_vip().to_string();
        let (s, v, n) = (stop.clone(), violations.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let handles: Vec<_> = hosts
                    .iter()
                    .map(|(name, ns, sock, veth)| {
                        let (name, ns, sock, veth, vip) = (
                            name.clone(),
                            ns.clone(),
                            sock.clone(),
                            veth.clone(),
                            vip.clone(),
                        );
                        std::thread::spawn(move || {
                            let before = reachable_only.then(|| plugged_in(&veth));
                            let mut sample = sample_host(&ns, &sock, &vip);
                            let after = reachable_only.then(|| plugged_in(&veth));
                            if before == Some(Some(false)) || after == Some(Some(false)) {
                                sample = HostSample {
                                    writable: None,
                                    has_vip: None,
                                };
                            }
                            (name, sample)
                        })
                    })
                    .collect();
                let results: Vec<(String, HostSample)> =
                    handles.into_iter().filter_map(|h| h.join().ok()).collect();
                let at = start.elapsed().as_millis();
                for found in i1_violations(&results) {
                    lock(&v).push(format!("I1 at +{at} ms: {found}"));
                }
                *lock(&n) += 1;
                let spent = t0.elapsed();
                if spent < Duration::from_millis(50) {
                    std::thread::sleep(Duration::from_millis(50) - spent);
                }
            }
        });
        Invariants {
            stop,
            violations,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns the number of samples and every violation seen.
    pub fn stop(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let n = *lock(&self.samples);
        (n, lock(&self.violations).clone())
    }

    /// Stops sampling and panics with the violations, if any; asserts it really sampled.
    pub fn assert_clean(self) {
        let (n, v) = self.stop();
        assert!(n >= 5, "the invariant sampler took only {n} samples");
        assert!(
            v.is_empty(),
            "invariant violations ({n} samples):\n{}",
            v.join("\n")
        );
    }
}

impl Drop for Invariants {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sample_host(ns: &str, socket: &Path, vip: &str) -> HostSample {
    HostSample {
        writable: quick_read_only_at(socket).map(|ro| !ro),
        has_vip: has_ip(ns, vip),
    }
}

/// One sample of `host` as the I1 sampler takes it (read_only over its socket, the writer IP
/// on its interface), whether or not clients can reach it.
pub fn host_sample(lab: &Lab, host: &str) -> Option<HostSample> {
    let h = lab.host(host).ok()?;
    Some(sample_host(&h.ns, &h.socket, &lab.writer_vip().to_string()))
}

/// `@@read_only` over the host's socket with a sub-second deadline; `None` when the server does
/// not answer in time (down, frozen).
pub fn quick_read_only(lab: &Lab, host: &str) -> Option<bool> {
    let h = lab.host(host).ok()?;
    quick_read_only_at(&h.socket)
}

fn quick_read_only_at(socket: &Path) -> Option<bool> {
    quick_query(socket, "SELECT @@global.read_only").map(|out| out.trim() != "0")
}

/// One query as root over the host's socket with a sub-second deadline: its tab-separated
/// output, or `None` when the server does not answer in time (down, frozen) or fails.
pub(crate) fn quick_query(socket: &Path, sql: &str) -> Option<String> {
    Cmd::new("mariadb")
        .args([
            "--no-defaults",
            "-uroot",
            &format!("--socket={}", socket.display()),
            "--connect-timeout=1",
            "-N",
            "-B",
            "-e",
            sql,
        ])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout)
}

fn has_ip(ns: &str, ip: &str) -> Option<bool> {
    Cmd::new("ip")
        .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout.contains(&format!("inet {ip}/")))
}

/// Whether the bridge-side end of a node's veth is up (`None`: cannot tell).
pub fn veth_up(veth: &str) -> Option<bool> {
    link_show(veth).map(|line| {
        let flags = line
            .split(['<', '>'])
            .nth(1)
            .unwrap_or_default()
            .to_string();
        flags.split(',').any(|f| f == "UP")
    })
}

/// Whether clients can reach the node: its veth is up and still a port of the bridge (a
/// fenced host's port is detached, [`ha_lab::Lab::unplug_port`]). `None`: cannot tell.
pub fn plugged_in(veth: &str) -> Option<bool> {
    let attached = link_show(veth)?.contains(" master ");
    Some(attached && veth_up(veth)?)
}

fn link_show(veth: &str) -> Option<String> {
    Cmd::new("ip")
        .args(["-o", "link", "show", "dev", veth])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, writable: Option<bool>, has_vip: Option<bool>) -> (String, HostSample) {
        (name.to_string(), HostSample { writable, has_vip })
    }

    #[test]
    fn one_writer_holding_the_writer_ip_is_fine() {
        let sample = [
            host("db1", Some(true), Some(true)),
            host("db2", Some(false), Some(false)),
            host("db3", Some(false), Some(false)),
        ];
        assert_eq!(i1_violations(&sample), Vec::<String>::new());
    }

    #[test]
    fn two_writable_hosts_violate() {
        let sample = [
            host("db1", Some(true), Some(true)),
            host("db2", Some(true), Some(false)),
            host("db3", Some(false), Some(false)),
        ];
        assert_eq!(i1_violations(&sample), [r#"read_only=0 on ["db1", "db2"]"#]);
    }

    #[test]
    fn two_holders_of_the_writer_ip_violate() {
        let sample = [
            host("db1", Some(false), Some(true)),
            host("db2", Some(true), Some(false)),
            host("db3", Some(false), Some(true)),
        ];
        assert_eq!(i1_violations(&sample), [r#"writer IP on ["db1", "db3"]"#]);
    }

    #[test]
    fn both_halves_are_reported() {
        let sample = [
            host("db1", Some(true), Some(true)),
            host("db2", Some(true), Some(true)),
        ];
        assert_eq!(
            i1_violations(&sample),
            [
                r#"read_only=0 on ["db1", "db2"]"#,
                r#"writer IP on ["db1", "db2"]"#
            ]
        );
    }

    /// I1 counts writable hosts and writer-IP holders separately: one writable host and
    /// another one holding the writer IP is not a violation of I1 as sampled (it is a moment
    /// of a move: the IP follows the writer).
    #[test]
    fn one_writable_host_and_another_holding_the_ip_is_not_an_i1_violation() {
        let sample = [
            host("db1", Some(true), Some(false)),
            host("db2", Some(false), Some(true)),
        ];
        assert_eq!(i1_violations(&sample), Vec::<String>::new());
    }

    #[test]
    fn unknown_facts_count_for_nothing() {
        let sample = [
            host("db1", Some(true), Some(true)),
            host("db2", None, None),
            host("db3", None, Some(false)),
        ];
        assert_eq!(i1_violations(&sample), Vec::<String>::new());
        let sample = [
            host("db1", None, Some(true)),
            host("db2", Some(true), None),
            host("db3", Some(true), Some(true)),
        ];
        assert_eq!(
            i1_violations(&sample),
            [
                r#"read_only=0 on ["db2", "db3"]"#,
                r#"writer IP on ["db1", "db3"]"#
            ]
        );
    }

    #[test]
    fn no_hosts_no_violation() {
        assert_eq!(i1_violations(&[]), Vec::<String>::new());
    }
}
