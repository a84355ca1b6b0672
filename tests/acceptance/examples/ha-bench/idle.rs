//! Resident memory and CPU time of the idle daemons, read from /proc.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ha_acceptance::Cluster;

#[derive(Debug, Clone)]
pub(crate) struct ProcUsage {
    pub(crate) name: String,
    pub(crate) rss_mb: f64,
    pub(crate) peak_mb: f64,
    pub(crate) cpu_s_per_min: f64,
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime = field 14, stime = field 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// VmRSS and VmHWM of `pid`, MB.
fn rss_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse::<f64>()
            .ok()
    };
    Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

fn clock_ticks() -> f64 {
    ha_lab::Cmd::new("getconf")
        .args(["CLK_TCK"])
        .output()
        .ok()
        .and_then(|o| o.stdout.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

pub(crate) fn measure_idle(c: &Cluster, secs: u64) -> Result<Vec<ProcUsage>, String> {
    let mut procs: Vec<(String, u32)> = Vec::new();
    if let Some(pid) = c.monitor().and_then(|m| m.pid()) {
        procs.push(("ha-monitor".into(), pid));
    }
    for h in c.lab.host_names() {
        if let Some(pid) = c.agent(&h).and_then(|a| a.pid()) {
            procs.push((format!("ha-agent {h}"), pid));
        }
    }
    for (name, pid) in &procs {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let want = name.split(' ').next().unwrap_or_default();
        if !comm.trim().starts_with(want) {
            return Err(format!(
                "pid {pid} of {name} is `{}`, not the daemon",
                comm.trim()
            ));
        }
    }
    let before: BTreeMap<u32, u64> = procs
        .iter()
        .filter_map(|(_, p)| cpu_ticks(*p).map(|t| (*p, t)))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let minutes = t0.elapsed().as_secs_f64() / 60.0;
    let hz = clock_ticks();
    let mut rows = Vec::new();
    for (name, pid) in procs {
        let (Some(b), Some(a), Some((rss, peak))) = (before.get(&pid), cpu_ticks(pid), rss_mb(pid))
        else {
            return Err(format!(
                "{name} (pid {pid}) vanished during the idle period"
            ));
        };
        rows.push(ProcUsage {
            name,
            rss_mb: rss,
            peak_mb: peak,
            cpu_s_per_min: (a.saturating_sub(*b)) as f64 / hz / minutes,
        });
    }
    Ok(rows)
}
