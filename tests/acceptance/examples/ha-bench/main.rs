//! The failover benchmark and the false-failover check (issue 8 items 2 and 3).
//!
//! Not a test: it prints tables, nothing depends on its numbers. Needs root (the lab). Run it
//! through `tests/bench.sh`, which builds the daemons next to it; see tests/BENCH.md for what
//! every column means.
//!
//! ```text
//! ha-bench [--runs N] [--settings mmm,fast] [--scenarios S1,S3,S4,S11,S13,S13b,S14] [--idle SECS]
//!          [--quick] [--out FILE]
//! ha-bench --false-failover [--minutes M] [--out FILE]
//! ```

mod benchmark;
mod clock;
mod false_failover;
mod idle;
mod setting;

use std::path::PathBuf;
use std::time::SystemTime;

use clap::Parser;

use benchmark::benchmark;
use clock::utc_text;
use false_failover::false_failover;

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
    /// Scenarios (docs/product.md §5).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "S1,S3,S4,S11,S13,S13b,S14"
    )]
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
