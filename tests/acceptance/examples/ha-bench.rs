//! The failover benchmark and the false-failover check (issue 8 items 2 and 3).
//!
//! Not a test: it prints tables, nothing depends on its numbers. Needs root (the lab). Run it
//! through `tests/bench.sh`, which builds the daemons next to it; see tests/BENCH.md for what
//! every column means.
//!
//! ```text
//! ha-bench [--runs N] [--settings mmm,fast] [--scenarios S1,S3,S4,S11,S13] [--idle SECS]
//!          [--quick] [--out FILE]
//! ha-bench --false-failover [--minutes M] [--out FILE]
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ha_acceptance::{Cluster, ClusterOptions, Show};
use ha_lab::{Error as LabError, Netem, ProbeOptions, MYSQL_PORT};

#[derive(Parser, Debug)]
#[command(
    name = "ha-bench",
    about = "ha failover benchmark and false-failover check (root)"
)]
struct Args {
    /// Runs per scenario and setting.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Settings to measure: mmm (check_period 5 s, trap_period 10 s, timeout 2 s) and/or fast
    /// (0.1 s / 0.5 s / 0.1 s).
    #[arg(long, value_delimiter = ',', default_value = "mmm,fast")]
    settings: Vec<String>,
    /// Scenarios (product.md §5).
    #[arg(long, value_delimiter = ',', default_value = "S1,S3,S4,S11,S13")]
    scenarios: Vec<String>,
    /// Idle period for the RSS / CPU measurement, seconds.
    #[arg(long, default_value_t = 60)]
    idle: u64,
    /// Smoke run: 1 run, fast settings only, 10 s idle (false-failover: 0.5 minutes).
    #[arg(long)]
    quick: bool,
    /// Instead of the benchmark: packet loss on every link at the fast settings, count role
    /// moves and state changes.
    #[arg(long)]
    false_failover: bool,
    /// Duration of the false-failover check, minutes.
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Packet loss of the false-failover check, percent.
    #[arg(long, default_value_t = 10.0)]
    loss: f64,
    /// Also write the final table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A monitor configuration to measure.
#[derive(Debug, Clone)]
struct Setting {
    name: &'static str,
    describe: &'static str,
    opts: ClusterOptions,
    /// Bound on one failover (fault → new writer ready).
    failover_timeout: Duration,
}

fn setting(name: &str) -> Result<Setting, String> {
    let base = ClusterOptions::fast();
    match name {
        "mmm" => Ok(Setting {
            name: "mmm",
            describe: "mysql-mmm defaults: check_period 5 s, trap_period 10 s, timeout 2 s, \
                       max_backlog 60; ping_interval 1 s; ha's defaults: agent_period 0.5 s, \
                       agent_timeout 1 s, writer_lease 5 s, fence_budget 0.25 s",
            opts: ClusterOptions {
                converge_timeout: Duration::from_secs(180),
                ..base
            }
            .set("checks.default.check_period", "5")
            .set("checks.default.trap_period", "10")
            .set("checks.default.timeout", "2")
            .set("checks.default.max_backlog", "60")
            .set("monitor.ping_interval", "1")
            .set("monitor.agent_period", "0.5")
            .set("monitor.agent_timeout", "1")
            .set("monitor.writer_lease", "5"),
            failover_timeout: Duration::from_secs(120),
        }),
        "fast" => Ok(Setting {
            name: "fast",
            describe: "check_period 0.1 s, trap_period 0.5 s, timeout 0.1 s, attempts 3, \
                       max_backlog 5; ping_interval 0.2 s; agent_period 0.2 s, \
                       agent_timeout 0.4 s, writer_lease 1 s, fence_budget 0.25 s",
            opts: base
                .set("checks.default.check_period", "0.1")
                .set("checks.default.attempts", "3")
                .set("checks.default.trap_period", "0.5")
                .set("checks.default.timeout", "0.1")
                .set("checks.default.max_backlog", "5")
                .set("monitor.ping_interval", "0.2")
                .set("monitor.agent_period", "0.2")
                .set("monitor.agent_timeout", "0.4")
                .set("monitor.writer_lease", "1"),
            failover_timeout: Duration::from_secs(60),
        }),
        other => Err(format!("unknown setting {other:?} (mmm, fast)")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    S1,
    S3,
    S4,
    S11,
    S13,
}

impl Scenario {
    fn parse(s: &str) -> Result<Scenario, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "S1" => Scenario::S1,
            "S3" => Scenario::S3,
            "S4" => Scenario::S4,
            "S11" => Scenario::S11,
            "S13" => Scenario::S13,
            _ => return Err(format!("unknown scenario {s:?} (S1, S3, S4, S11, S13)")),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Scenario::S1 => "S1 mysqld stop",
            Scenario::S3 => "S3 freeze",
            Scenario::S4 => "S4 link loss",
            Scenario::S11 => "S11 move_role writer",
            Scenario::S13 => "S13 monitor cut off",
        }
    }

    fn planned(self) -> bool {
        self == Scenario::S11
    }
}

/// One measured failover.
#[derive(Debug, Clone, Default)]
struct Sample {
    outage_ms: u64,
    detection_ms: Option<i64>,
    reaction_ms: Option<i64>,
    lost: usize,
    acked: usize,
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.runs = 1;
        args.settings = vec!["fast".into()];
        args.idle = args.idle.min(10);
        if args.minutes == 5.0 {
            args.minutes = 0.5;
        }
    }
    let result = if args.false_failover {
        false_failover(&args)
    } else {
        benchmark(&args)
    };
    match result {
        Ok(table) => {
            if let Some(p) = &args.out {
                if let Err(e) = std::fs::write(p, &table) {
                    eprintln!("ha-bench: cannot write {}: {e}", p.display());
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("ha-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn header(args: &Args) -> String {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!(
        "# ha-bench {} — {} build, {} cores, kernel {}, started {}\n",
        if args.false_failover {
            "false-failover check"
        } else {
            "failover benchmark"
        },
        profile,
        cores,
        kernel.trim(),
        utc_text(SystemTime::now()),
    )
}

// ----- the benchmark ------------------------------------------------------------------------

fn benchmark(args: &Args) -> Result<String, String> {
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
            Scenario::S13 => lab.cut("mon", &old).map_err(|e| e.to_string()),
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
            Scenario::S13 => lab.heal("mon", &old).map_err(|e| e.to_string()),
            Scenario::S11 => Ok(()),
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

/// `b - a` in milliseconds, negative when `b` is earlier.
fn signed_ms(b: SystemTime, a: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The timestamp tracing-subscriber puts in front of a log line
/// (`2024-05-01T12:00:00.123456Z  WARN …`, UTC).
fn log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?;
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (h, mi, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + s;
    Some(UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn utc_text(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ----- idle resources -----------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ProcUsage {
    name: String,
    rss_mb: f64,
    peak_mb: f64,
    cpu_s_per_min: f64,
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

fn measure_idle(c: &Cluster, secs: u64) -> Result<Vec<ProcUsage>, String> {
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

// ----- false failover -----------------------------------------------------------------------

fn false_failover(args: &Args) -> Result<String, String> {
    let s = setting("fast")?;
    let mut out = header(args);
    let _ = writeln!(out, "# {}: {}", s.name, s.describe);
    eprint!("{out}");
    let c = Cluster::start_patient(s.opts.clone()).map_err(|e| format!("cluster: {e}"))?;
    let first = c.show()?;
    let writer = first.writer();
    let mut nodes = c.lab.host_names();
    nodes.push("mon".into());
    nodes.push("cli".into());

    // Jitter needs the netem qdisc; loss falls back to nftables without it.
    let (with_jitter, jitter) = match c.lab.netem(
        &nodes[0],
        Netem {
            loss_percent: args.loss,
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(20),
        },
    ) {
        Ok(_) => (true, "50 ms ± 20 ms (netem)".to_string()),
        Err(LabError::Unsupported(why)) => {
            eprintln!("latency/jitter: {why}");
            (
                false,
                "not supported on this kernel (no sch_netem): loss only".to_string(),
            )
        }
        Err(e) => return Err(format!("netem: {e}")),
    };
    let mut backend = None;
    for n in &nodes {
        let netem = if with_jitter {
            Netem {
                loss_percent: args.loss,
                delay: Duration::from_millis(50),
                jitter: Duration::from_millis(20),
            }
        } else {
            Netem::loss(args.loss)
        };
        backend = Some(
            c.lab
                .netem(n, netem)
                .map_err(|e| format!("netem on {n}: {e}"))?,
        );
    }
    let log_mark = c.monitor().map(|m| m.log().len()).unwrap_or(0);
    let agent_marks: Vec<(String, usize)> = c
        .lab
        .host_names()
        .into_iter()
        .map(|h| {
            let len = c.agent(&h).map(|a| a.log().len()).unwrap_or(0);
            (h, len)
        })
        .collect();
    let _ = writeln!(
        out,
        "# {:.0} % packet loss on every link ({} nodes, {:?}); latency/jitter: {jitter}; {} minute(s)\n",
        args.loss,
        nodes.len(),
        backend,
        args.minutes
    );
    eprintln!("== loss applied: watching for {} minute(s)", args.minutes);

    let until = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let mut prev: Option<Show> = None;
    let (mut samples, mut failed_polls, mut role_moves, mut left_online) = (0u64, 0u64, 0u64, 0u64);
    let mut events: Vec<String> = Vec::new();
    let t0 = Instant::now();
    while Instant::now() < until {
        let tick = Instant::now();
        match c.show() {
            Ok(s) => {
                samples += 1;
                if let Some(p) = &prev {
                    let owners = |x: &Show| {
                        x.roles
                            .iter()
                            .map(|r| (r.name.clone(), r.owners.clone()))
                            .collect::<Vec<_>>()
                    };
                    if owners(p) != owners(&s) {
                        role_moves += 1;
                        events.push(format!(
                            "+{:.1} s roles changed: {}",
                            t0.elapsed().as_secs_f64(),
                            s.brief().replace('\n', ";")
                        ));
                    }
                    for h in &s.hosts {
                        if h.state != "ONLINE" && p.state(&h.name) == "ONLINE" {
                            left_online += 1;
                            events.push(format!(
                                "+{:.1} s {} left ONLINE: {}",
                                t0.elapsed().as_secs_f64(),
                                h.name,
                                h.state
                            ));
                        }
                    }
                }
                prev = Some(s);
            }
            Err(_) => failed_polls += 1,
        }
        let spent = tick.elapsed();
        if spent < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_secs(1) - spent);
        }
    }
    for n in &nodes {
        let _ = c.lab.clear_netem(n);
    }
    let log = c.monitor().map(|m| m.log()).unwrap_or_default();
    let log = log.get(log_mark..).unwrap_or(&log);
    let state_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("State of host"))
        .collect();
    // A writer whose renewals were lost long enough fences itself: no failover, but writes
    // stop until the monitor grants the role again. That is what the lease length buys.
    let self_fences: usize = agent_marks
        .iter()
        .map(|(h, mark)| {
            let log = c.agent(h).map(|a| a.log()).unwrap_or_default();
            log.get(*mark..)
                .unwrap_or("")
                .lines()
                .filter(|l| l.contains("writer lease expired"))
                .count()
        })
        .sum();
    let last = prev.as_ref();
    let writer_kept = last.and_then(Show::writer) == writer;
    let pass = role_moves == 0
        && left_online == 0
        && state_lines.is_empty()
        && writer_kept
        && self_fences == 0;

    let _ = writeln!(
        out,
        "{:<44} {samples} / {failed_polls}",
        "show polls (1/s) answered / failed"
    );
    let _ = writeln!(out, "{:<44} {role_moves}", "role changes seen by show");
    let _ = writeln!(
        out,
        "{:<44} {left_online}",
        "hosts leaving ONLINE seen by show"
    );
    let _ = writeln!(
        out,
        "{:<44} {}",
        "state changes in the monitor log",
        state_lines.len()
    );
    let _ = writeln!(
        out,
        "{:<44} {self_fences}",
        "writer lease expiries (self-fences)"
    );
    let _ = writeln!(
        out,
        "{:<44} {:?} -> {:?}",
        "writer before -> after",
        writer,
        last.and_then(Show::writer)
    );
    let _ = writeln!(
        out,
        "{:<44} {}",
        "verdict",
        if pass {
            "PASS (no false failover)"
        } else {
            "FAIL"
        }
    );
    for e in events.iter().take(20) {
        let _ = writeln!(out, "  {e}");
    }
    for l in state_lines.iter().take(20) {
        let _ = writeln!(out, "  log: {l}");
    }
    print!("{out}");
    Ok(out)
}
