//! The failover benchmark: one fault per run, the writes lost and the times measured, the table.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ha_acceptance::Cluster;
use ha_lab::{ProbeOptions, MYSQL_PORT};

use crate::clock::{log_time, signed_ms};
use crate::idle::{measure_idle, ProcUsage};
use crate::setting::{setting, Scenario, Setting, HOLD};
use crate::{header, Args};

/// One measured failover.
#[derive(Debug, Clone, Default)]
struct Sample {
    outage_ms: u64,
    detection_ms: Option<i64>,
    reaction_ms: Option<i64>,
    lost: usize,
    acked: usize,
}

// ----- the benchmark ------------------------------------------------------------------------

pub(crate) fn benchmark(args: &Args) -> Result<String, String> {
    let settings: Vec<Setting> = args
        .settings
        .iter()
        .map(|s| setting(s))
        .collect::<Result<_, _>>()?;
    let scenarios: Vec<Scenario> = args
        .scenarios
        .iter()
        .map(|s| Scenario::parse(s))
        .collect::<Result<_, _>>()?;
    let mut out = header(args);
    for s in &settings {
        let _ = writeln!(out, "# {}: {}", s.name, s.describe);
    }
    let _ = writeln!(
        out,
        "# {} run(s) per scenario; write probe every 50 ms through the writer IP; idle {} s\n",
        args.runs, args.idle
    );
    eprint!("{out}");

    let mut results: Vec<(String, Scenario, Vec<Sample>, usize)> = Vec::new();
    let mut idle_rows: Vec<(String, Vec<ProcUsage>)> = Vec::new();
    let mut restarts = 0;
    for s in &settings {
        eprintln!("== {}: starting the cluster", s.name);
        let mut c = Cluster::start_patient(s.opts.clone())
            .map_err(|e| format!("{}: cluster: {e}", s.name))?;
        eprintln!("== {}: idle for {} s", s.name, args.idle);
        idle_rows.push((s.name.to_string(), measure_idle(&c, args.idle)?));
        for &sc in &scenarios {
            let mut samples = Vec::new();
            let mut failed = 0;
            for run in 1..=args.runs {
                match run_one(&c, s, sc) {
                    Ok(x) => {
                        eprintln!(
                            "   {} {} run {run}: outage {} ms, detection {:?} ms, reaction {:?} ms, lost {}/{}",
                            s.name,
                            sc.label(),
                            x.outage_ms,
                            x.detection_ms,
                            x.reaction_ms,
                            x.lost,
                            x.acked
                        );
                        samples.push(x);
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("   {} {} run {run} FAILED: {e}", s.name, sc.label());
                    }
                }
                // Whatever happened, bring the cluster back for the next run; if it does not
                // come back, start a fresh one (and say so).
                if let Err(e) = restore(&c, s.opts.converge_timeout) {
                    eprintln!(
                        "   {} {} run {run}: cannot restore the cluster ({e}); starting a new one",
                        s.name,
                        sc.label()
                    );
                    restarts += 1;
                    drop(c);
                    c = Cluster::start_patient(s.opts.clone())
                        .map_err(|e| format!("{}: new cluster: {e}", s.name))?;
                }
            }
            results.push((s.name.to_string(), sc, samples, failed));
        }
    }

    let _ = writeln!(
        out,
        "{:<8} {:<22} {:>4}  {:>20}  {:>20}  {:>20}  {:>9}",
        "setting",
        "scenario",
        "runs",
        "outage ms min/med/max",
        "detect ms min/med/max",
        "react ms min/med/max",
        "rows lost"
    );
    for (setting, sc, samples, failed) in &results {
        let outage: Vec<i64> = samples.iter().map(|x| x.outage_ms as i64).collect();
        let det: Vec<i64> = samples.iter().filter_map(|x| x.detection_ms).collect();
        let react: Vec<i64> = samples.iter().filter_map(|x| x.reaction_ms).collect();
        let lost: usize = samples.iter().map(|x| x.lost).sum();
        let acked: usize = samples.iter().map(|x| x.acked).sum();
        let runs = if *failed > 0 {
            format!("{}+{}F", samples.len(), failed)
        } else {
            samples.len().to_string()
        };
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:>4}  {:>20}  {:>20}  {:>20}  {:>9}",
            setting,
            sc.label(),
            runs,
            mmm_triple(&outage),
            if sc.planned() {
                "—".to_string()
            } else {
                mmm_triple(&det)
            },
            mmm_triple(&react),
            format!("{lost}/{acked}")
        );
    }
    if restarts > 0 {
        let _ = writeln!(
            out,
            "# the cluster did not recover after {restarts} run(s) and was rebuilt (see stderr)"
        );
    }
    let _ = writeln!(
        out,
        "\n{:<8} {:<14} {:>8} {:>8} {:>10}",
        "setting", "process", "RSS MB", "peak MB", "CPU s/min"
    );
    for (setting, rows) in &idle_rows {
        for r in rows {
            let _ = writeln!(
                out,
                "{:<8} {:<14} {:>8.1} {:>8.1} {:>10.3}",
                setting, r.name, r.rss_mb, r.peak_mb, r.cpu_s_per_min
            );
        }
    }
    print!("{out}");
    Ok(out)
}

/// `min / median / max`, or `-` without samples.
fn mmm_triple(v: &[i64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2
    };
    format!("{} / {} / {}", s[0], med, s[s.len() - 1])
}

/// Every host ONLINE (setting AWAITING_RECOVERY ones online, as an operator would), a writer
/// writable on the writer IP, everyone else replicating from it.
fn restore(c: &Cluster, timeout: Duration) -> Result<(), String> {
    let show = c.wait_converged_patiently(timeout)?;
    let w = show.writer().unwrap_or_default();
    // A steady state: every replica has applied what the writer has, then a short calm.
    // (MASTER_GTID_WAIT in slices: the lab's SQL calls have a 15 s deadline.)
    for h in c.lab.host_names().into_iter().filter(|h| *h != w) {
        let start = Instant::now();
        while let Err(e) = c.lab.wait_caught_up(&h, &w, Duration::from_secs(5)) {
            if start.elapsed() > timeout {
                return Err(format!("{h} catching up with {w}: {e}"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    Ok(())
}

fn run_one(c: &Cluster, s: &Setting, sc: Scenario) -> Result<Sample, String> {
    let lab = &c.lab;
    let show = c.show()?;
    let old = show.writer().ok_or("no writer")?;
    let new = if old == "db1" { "db2" } else { "db1" }.to_string();
    let vip = lab.writer_vip();

    let probe = lab
        .start_probe(ProbeOptions::new(vip).interval(Duration::from_millis(50)))
        .map_err(|e| format!("probe: {e}"))?;
    probe
        .wait_acked(10, Duration::from_secs(30))
        .map_err(|e| format!("probe before the fault: {e}"))?;
    if sc.no_failover() {
        return hold_without_failover(c, sc, &old, probe);
    }

    // Readiness of the new writer: read_only=0, holds the writer IP, the writer IP answers TCP
    // from the client namespace.
    let stop = Arc::new(AtomicBool::new(false));
    let ready_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let log_mark = c.monitor().map(|m| m.log().len()).unwrap_or(0);

    let t_fault_sys = SystemTime::now();
    let t_fault = Instant::now();
    std::thread::scope(|scope| -> Result<Sample, String> {
        {
            let (stop, ready_at, new) = (stop.clone(), ready_at.clone(), new.clone());
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = lab.ips(&new).is_ok_and(|ips| ips.contains(&vip))
                        && lab.read_only(&new).is_ok_and(|ro| !ro)
                        && lab
                            .tcp_connects("cli", vip, MYSQL_PORT, Duration::from_millis(300))
                            .unwrap_or(false);
                    if ok {
                        *ready_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
        }
        let inject = match sc {
            Scenario::S1 => lab.stop_mysqld(&old).map_err(|e| e.to_string()),
            Scenario::S3 => lab.freeze(&old).map_err(|e| e.to_string()),
            Scenario::S4 => lab.link_down(&old).map_err(|e| e.to_string()),
            Scenario::S13b => lab
                .cut("mon", &old)
                .and_then(|()| lab.cut(&new, &old))
                .map_err(|e| e.to_string()),
            Scenario::S13 | Scenario::S14 => Err("not a failover scenario".into()),
            Scenario::S11 => c.control(&["move_role", "writer", &new]).and_then(|o| {
                if o.code == 0 {
                    Ok(())
                } else {
                    Err(format!("move_role: {}{}", o.stdout, o.stderr))
                }
            }),
        };
        let waited = inject.and_then(|()| {
            c.wait_for("the new writer ready", s.failover_timeout, |_| {
                Ok(ready_at.lock().map(|r| r.is_some()).unwrap_or(false))
            })
        });
        stop.store(true, Ordering::Relaxed);
        let ready = *ready_at.lock().unwrap_or_else(|p| p.into_inner());
        // Writes resume (bounded), then heal.
        let resumed = probe.wait_acked(probe.acked_so_far() + 5, s.failover_timeout);
        let heal = match sc {
            Scenario::S1 => lab.start_mysqld(&old).map_err(|e| e.to_string()),
            Scenario::S3 => lab.thaw(&old).map_err(|e| e.to_string()),
            Scenario::S4 => lab.link_up(&old).map_err(|e| e.to_string()),
            Scenario::S13b => lab
                .heal("mon", &old)
                .and_then(|()| lab.heal(&new, &old))
                .map_err(|e| e.to_string()),
            Scenario::S13 | Scenario::S14 | Scenario::S11 => Ok(()),
        };
        let report = probe.stop();
        waited?;
        heal?;
        resumed.map_err(|e| format!("writes did not resume: {e}\n{}", c.diagnostics()))?;
        let ready = ready.ok_or("the new writer never became ready")?;

        // Detection: the monitor's log line for the old writer leaving ONLINE.
        let trapped = if sc.planned() {
            None
        } else {
            let log = c.monitor().map(|m| m.log()).unwrap_or_default();
            let needle = format!("State of host '{old}' changed from ONLINE to");
            log.get(log_mark..)
                .unwrap_or(&log)
                .lines()
                .find(|l| l.contains(&needle))
                .and_then(log_time)
        };
        let detection_ms = trapped.map(|t| signed_ms(t, t_fault_sys));
        let reaction_ms = match (sc.planned(), detection_ms) {
            (true, _) => Some(ready.duration_since(t_fault).as_millis() as i64),
            (false, Some(d)) => Some(ready.duration_since(t_fault).as_millis() as i64 - d),
            (false, None) => None,
        };
        let lost = report
            .missing_on(lab, &new)
            .map_err(|e| format!("missing_on: {e}"))?
            .len();
        Ok(Sample {
            outage_ms: report.longest_outage_ms(),
            detection_ms,
            reaction_ms,
            lost,
            acked: report.ok_count(),
        })
    })
}

/// S13 and S14 (peer promises): the fault is held for [`HOLD`]; the writer must stay where it
/// is, and the sample is the longest write outage meanwhile (0 expected).
fn hold_without_failover(
    c: &Cluster,
    sc: Scenario,
    old: &str,
    probe: ha_lab::Probe,
) -> Result<Sample, String> {
    let lab = &c.lab;
    match sc {
        Scenario::S13 => lab.cut("mon", old).map_err(|e| e.to_string())?,
        _ => c.stop_monitor()?,
    }
    std::thread::sleep(HOLD);
    let writable = lab.writable_hosts();
    match sc {
        Scenario::S13 => lab.heal("mon", old).map_err(|e| e.to_string())?,
        _ => c.start_monitor()?,
    }
    let report = probe.stop();
    if writable != [old.to_string()] {
        return Err(format!(
            "the writer moved: writable {writable:?} at the end of the hold"
        ));
    }
    let lost = report
        .missing_on(lab, old)
        .map_err(|e| format!("missing_on: {e}"))?
        .len();
    Ok(Sample {
        outage_ms: report.longest_outage_ms(),
        detection_ms: None,
        reaction_ms: None,
        lost,
        acked: report.ok_count(),
    })
}
