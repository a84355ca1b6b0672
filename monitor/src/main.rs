//! `ha-monitor`: the daemon behind `systemctl start ha-monitor`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use ha_proto::runtime::{init_logging, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "ha-monitor",
    version,
    about = "ha monitor: checks, host states, roles, failover"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = "/etc/ha/monitor.yaml")]
    config: PathBuf,
    /// Validate FILE, print `OK` or one line per problem, and exit (0 valid, 1 invalid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Connect to every host and agent of --config, print one OK/WARN/FAIL line per check of
    /// the cluster's setup (docs/preflight.md), and exit (0 no FAIL, 1 any FAIL).
    #[arg(long)]
    preflight: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve one fencing request on stdin/stdout and exit: run by `ha-fence@.service` for each
    /// connection to `ha-fence.socket` (monitor.yaml `kill_host_socket`). Runs the
    /// `kill_host_bin` of the --config file, for a host it lists.
    #[arg(long)]
    fence_helper: bool,
    /// Print the man page (roff) and exit (used to build the packages).
    #[arg(long, hide = true)]
    generate_man: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.generate_man {
        return ha_proto::runtime::print_man_page(<Cli as clap::CommandFactory>::command(), "8");
    }
    if let Some(path) = &cli.check_config {
        return match ha_config::load_monitor(path) {
            Ok(_) => {
                println!("OK");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                println!("{errors}");
                ExitCode::from(1)
            }
        };
    }
    if cli.preflight {
        return ha_monitor::preflight::main(&cli.config);
    }
    init_logging(cli.log_format, "info");
    let cfg = match ha_config::load_monitor(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            for line in errors.to_string().lines() {
                tracing::error!("{line}");
            }
            tracing::error!("not starting: fix the configuration (check it with --check-config)");
            return ExitCode::from(1);
        }
    };
    if cli.fence_helper {
        return fence_helper(&cfg);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let Some(runtime) = runtime(builder.worker_threads(2)) else {
        return ExitCode::from(1);
    };
    match runtime.block_on(ha_monitor::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// `--fence-helper`: one request on stdin, its reply on stdout (the socket connection).
fn fence_helper(cfg: &ha_config::MonitorConfig) -> ExitCode {
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::from(1);
    };
    let hosts: Vec<String> = cfg.hosts.iter().map(|h| h.name.clone()).collect();
    runtime.block_on(ha_monitor::kill::helper::serve(
        tokio::io::stdin(),
        tokio::io::stdout(),
        &hosts,
        &cfg.monitor.kill_host_bin,
        ha_monitor::daemon::KILL_DEADLINE,
    ));
    ExitCode::SUCCESS
}

/// Builds the tokio runtime; `None` (logged) when it cannot be created.
fn runtime(builder: &mut tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| tracing::error!("cannot start the async runtime: {e}"))
        .ok()
}
