//! The chaos soak (issue 15): many random fault schedules on the lab, each checked for
//! I1–I4, and a table at the end. Not a test: run it through `tests/chaos.sh`, which builds
//! the daemons next to it. Needs root (the lab).
//!
//! ```text
//! ha-chaos [--schedules N] [--first-seed S] [--out FILE] [--no-fence] [--set KEY=VALUE]
//! ha-chaos --seed S                      # replay one schedule, with its full report
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use ha_acceptance::chaos::{self, Outcome};

#[derive(Parser, Debug)]
#[command(
    name = "ha-chaos",
    about = "ha chaos soak: random fault schedules on the lab (root)"
)]
struct Args {
    /// How many schedules (seeds first-seed, first-seed + 1, …).
    #[arg(long, default_value_t = 20)]
    schedules: u64,
    /// The first seed of the run (CI runs seeds 1–5).
    #[arg(long, default_value_t = 100)]
    first_seed: u64,
    /// Replay exactly this seed (and print its whole report).
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the table and every violation's report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A monitor.yaml override, KEY=VALUE (repeatable), e.g. `--set monitor.writer_lease=0`
    /// to see the checker catch an unsafe setting.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// No `kill_host_bin`: nothing fences a writer whose agent is dead (shows the known limit
    /// of seeds 169 and 204).
    #[arg(long)]
    no_fence: bool,
    /// Print the schedules (for db1, db2, db3) without running them.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first_seed..args.first_seed + args.schedules).collect(),
    };
    let mut outcomes = Vec::new();
    let mut reports = String::new();
    if args.dry_run {
        let hosts: Vec<String> = ["db1", "db2", "db3"]
            .iter()
            .map(|h| h.to_string())
            .collect();
        for seed in seeds {
            print!("{}", chaos::generate(seed, &hosts));
        }
        return std::process::ExitCode::SUCCESS;
    }
    let mut opts = chaos::options();
    opts.fence_ports = !args.no_fence;
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("--set {kv}: expected KEY=VALUE");
            return std::process::ExitCode::from(2);
        };
        opts = opts.set(k, v);
    }
    for seed in seeds {
        match chaos::run_seed_with(seed, opts.clone()) {
            Ok(o) => {
                eprintln!(
                    "seed {seed}: {} fault(s), {} violation(s), {} failover(s), longest outage {} ms",
                    o.schedule.faults.len(),
                    o.violations.len(),
                    o.failovers,
                    o.outage.as_millis()
                );
                if !o.violations.is_empty() || args.seed.is_some() {
                    eprintln!("{}", o.report());
                    reports += &o.report();
                }
                outcomes.push(o);
            }
            Err(e) => {
                eprintln!("seed {seed}: the run itself failed: {e}");
                reports += &format!("seed {seed}: the run itself failed: {e}\n");
            }
        }
    }
    let table = table(&outcomes);
    println!("{table}");
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, format!("{table}\n{reports}")) {
            eprintln!("cannot write {}: {e}", out.display());
        }
    }
    let bad = outcomes.iter().any(|o| !o.violations.is_empty());
    std::process::ExitCode::from(u8::from(bad))
}

fn table(outcomes: &[Outcome]) -> String {
    let count = |inv: &str| -> usize {
        outcomes
            .iter()
            .map(|o| o.violations.iter().filter(|v| v.invariant == inv).count())
            .sum()
    };
    let mut outages: Vec<Duration> = outcomes.iter().map(|o| o.outage).collect();
    outages.sort();
    let median = outages.get(outages.len() / 2).copied().unwrap_or_default();
    let max = outages.last().copied().unwrap_or_default();
    let faults: usize = outcomes.iter().map(|o| o.schedule.faults.len()).sum();
    let rows = [
        ("schedules run", outcomes.len().to_string()),
        ("faults injected", faults.to_string()),
        ("I1 violations (two writers)", count("I1").to_string()),
        (
            "I2 violations (acknowledged write lost)",
            count("I2").to_string(),
        ),
        ("I3 violations (no convergence)", count("I3").to_string()),
        ("I4 violations (daemon crashed)", count("I4").to_string()),
        (
            "failovers and switchovers",
            outcomes
                .iter()
                .map(|o| o.failovers)
                .sum::<usize>()
                .to_string(),
        ),
        (
            "writer outage, median",
            format!("{} ms", median.as_millis()),
        ),
        ("writer outage, max", format!("{} ms", max.as_millis())),
        (
            "writes acknowledged",
            outcomes.iter().map(|o| o.acked).sum::<usize>().to_string(),
        ),
        (
            "acknowledged asynchronously (no semi-sync replica) and lost",
            outcomes
                .iter()
                .map(|o| o.lost_in_async_fallback)
                .sum::<usize>()
                .to_string(),
        ),
        (
            "hosts rebuilt (never-acknowledged transactions)",
            outcomes
                .iter()
                .map(|o| o.rebuilt.len())
                .sum::<usize>()
                .to_string(),
        ),
    ];
    let mut s = String::from("| chaos | |\n|---|---|\n");
    for (k, v) in rows {
        s += &format!("| {k} | {v} |\n");
    }
    s
}
