//! Shared steps of the network-fault scenarios (S3, S4, S13, S14).
//!
//! Kept in its own module (not in the fixture) so these scenarios can evolve without touching
//! the shared `ha_acceptance` library. Not every scenario uses every helper.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, Show};
use ha_lab::{Cmd, Lab};

/// Generous bound of every wait.
pub const T: Duration = Duration::from_secs(60);

/// `set_online host`, which must answer `OK: …`.
pub fn set_online(c: &Cluster, host: &str) {
    let out = c.control(&["set_online", host]).expect("set_online");
    assert!(
        out.code == 0 && out.stdout.starts_with("OK:"),
        "set_online {host}: exit {} {} {}",
        out.code,
        out.stdout,
        out.stderr
    );
}

/// Waits until the returning `host` is AWAITING_RECOVERY (or ONLINE: mysql-mmm's rule A3 puts a
/// host that was unreachable for less than 60 s without a reboot back online on its own), then
/// sets it online if needed and waits until it is ONLINE. Returns the state it came back in.
pub fn bring_back(c: &Cluster, host: &str) -> String {
    let s = c
        .wait_show(&format!("{host} AWAITING_RECOVERY or ONLINE"), T, |s| {
            matches!(s.state(host), "AWAITING_RECOVERY" | "ONLINE")
        })
        .expect("recovery state");
    let returned = s.state(host).to_string();
    if returned == "AWAITING_RECOVERY" {
        set_online(c, host);
    }
    c.wait_show(&format!("{host} ONLINE"), T, |s| s.state(host) == "ONLINE")
        .expect("back ONLINE");
    returned
}

/// I3 (product.md §4): exactly one writer (`writer`, writable, the only holder of the writer
/// IP), every other host replicating from it (IO and SQL running, no error) and receiving a
/// marker row, every host ONLINE, every reader IP assigned and — with at least as many reader
/// IPs as hosts — every host holding at least one reader (the writer counts as half a host).
pub fn assert_converged(c: &Cluster, writer: &str) -> Show {
    let readers = c.lab.reader_vips().len();
    let hosts = c.lab.host_names();
    let show = c
        .wait_show("I3: every host ONLINE, readers spread", T, |s| {
            s.all_online()
                && s.writer().as_deref() == Some(writer)
                && s.readers_assigned()
                && (readers < hosts.len() || s.readers().values().all(|&n| n >= 1))
        })
        .expect("I3: states and roles");
    c.wait_writer_ready(writer, T)
        .expect("I3: one writable writer on the writer IP");
    c.wait_replicating_from(writer, T)
        .expect("I3: every replica follows the writer");
    for h in hosts.iter().filter(|h| *h != writer) {
        let st = c
            .lab
            .replication(h)
            .expect("replication status")
            .expect("a replica");
        assert!(
            st.healthy(),
            "I3: {h} replicates from {writer} with errors: {st:?}"
        );
        c.assert_row_arrives(writer, h, T)
            .unwrap_or_else(|e| panic!("I3: marker row from {writer} on {h}: {e}"));
    }
    // Every reader IP is on the host the monitor assigned it to, and only there.
    for r in show.roles.iter().filter(|r| r.name == "reader") {
        for (ip, owner) in r.ips.iter().zip(&r.owners) {
            let ip = ip.parse().expect("reader ip");
            c.wait_for(&format!("reader {ip} on {owner:?} only"), T, |c| {
                let holders = c.lab.holders_of(ip).map_err(|e| e.to_string())?;
                Ok(holders == owner.iter().cloned().collect::<Vec<_>>())
            })
            .expect("I3: reader IPs where the monitor says");
        }
    }
    show
}

/// The hosts other than `a` and `b`.
pub fn others(c: &Cluster, not: &[&str]) -> Vec<String> {
    c.lab
        .host_names()
        .into_iter()
        .filter(|h| !not.contains(&h.as_str()))
        .collect()
}

/// True when `host`'s cable is pulled (its bridge-side veth is administratively down).
pub fn unplugged(lab: &Lab, host: &str) -> bool {
    lab.node(host)
        .ok()
        .and_then(|n| veth_up(&n.veth))
        .is_some_and(|up| !up)
}

/// `read_only` of `host` read quickly (`None`: unreadable within ~1 s, e.g. frozen or down).
pub fn quick_read_only(lab: &Lab, host: &str) -> Option<bool> {
    let h = lab.host(host).ok()?;
    sample_read_only(&h.socket)
}

fn sample_read_only(socket: &std::path::Path) -> Option<bool> {
    Cmd::new("mariadb")
        .args([
            "--no-defaults",
            "-uroot",
            &format!("--socket={}", socket.display()),
            "--connect-timeout=1",
            "-N",
            "-B",
            "-e",
            "SELECT @@global.read_only",
        ])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout.trim() != "0")
}

fn sample_vip(ns: &str, vip: &str) -> Option<bool> {
    Cmd::new("ip")
        .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout.contains(&format!("inet {vip}/")))
}

/// I1 as clients can observe it, for scenarios that freeze a host: like
/// [`ha_acceptance::Invariants`] (every 50 ms, never two hosts with read_only=0, never two
/// holders of the writer IP) but a host whose cable is pulled does not count. A frozen host
/// keeps `read_only=0` and the writer IP in its (stopped) kernel state for as long as it is
/// frozen — nothing inside it can run — yet no client can reach it; what matters is that it
/// never serves as a second writer once it is back on the network.
pub struct NetworkInvariants {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

struct HostInfo {
    name: String,
    ns: String,
    veth: String,
    socket: PathBuf,
}

impl NetworkInvariants {
    pub fn start(lab: &Lab) -> NetworkInvariants {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0u64));
        let hosts: Vec<Arc<HostInfo>> = lab
            .hosts()
            .iter()
            .map(|h| {
                Arc::new(HostInfo {
                    name: h.name.clone(),
                    ns: h.ns.clone(),
                    veth: h.veth.clone(),
                    socket: h.socket.clone(),
                })
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
                    .map(|h| {
                        let (h, vip) = (h.clone(), vip.clone());
                        std::thread::spawn(move || {
                            // Link state before and after the sample: a host counts only if
                            // it was plugged in for the whole sample.
                            let before = veth_up(&h.veth);
                            let ro = sample_read_only(&h.socket);
                            let has = sample_vip(&h.ns, &vip);
                            let after = veth_up(&h.veth);
                            let plugged = before != Some(false) && after != Some(false);
                            (h.name.clone(), plugged, ro, has)
                        })
                    })
                    .collect();
                let results: Vec<_> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
                let writable: Vec<&str> = results
                    .iter()
                    .filter(|(_, p, ro, _)| *p && *ro == Some(false))
                    .map(|(n, ..)| n.as_str())
                    .collect();
                let holders: Vec<&str> = results
                    .iter()
                    .filter(|(_, p, _, has)| *p && *has == Some(true))
                    .map(|(n, ..)| n.as_str())
                    .collect();
                let at = start.elapsed().as_millis();
                if writable.len() > 1 {
                    lock(&v).push(format!("I1 at +{at} ms: read_only=0 on {writable:?}"));
                }
                if holders.len() > 1 {
                    lock(&v).push(format!("I1 at +{at} ms: writer IP on {holders:?}"));
                }
                *lock(&n) += 1;
                let spent = t0.elapsed();
                if spent < Duration::from_millis(50) {
                    std::thread::sleep(Duration::from_millis(50) - spent);
                }
            }
        });
        NetworkInvariants {
            stop,
            violations,
            samples,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let n = *lock(&self.samples);
        (n, lock(&self.violations).clone())
    }

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

impl Drop for NetworkInvariants {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn veth_up(veth: &str) -> Option<bool> {
    Cmd::new("ip")
        .args(["-o", "link", "show", "dev", veth])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| {
            o.stdout
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .is_some_and(|(f, _)| f.split(',').any(|f| f == "UP"))
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
