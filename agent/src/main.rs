//! `ha-agent`: the daemon on every MySQL host. See the library docs for the design.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ha_proto::runtime::{init_logging, shutdown_signal, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "ha-agent",
    about = "Converges this MySQL/MariaDB host to the state the ha monitor wants",
    disable_version_flag = true
)]
struct Cli {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = "/etc/ha/agent.yaml")]
    config: PathBuf,
    /// Validate FILE, print `OK` or one error per line, exit 0/1.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Print `ha-agent <version>` and exit.
    #[arg(long)]
    version: bool,
    /// Permit the next start of ha-agent, once, to adopt this host's writable server instead of
    /// fencing it (the hand-over from mysql-mmm or another HA tool), then exit. Refused once
    /// ha-agent has run here (its state file exists). See docs/migrating-from-mmm.md.
    #[arg(long)]
    adopt_writer: bool,
    /// Forget the leadership term of redundant monitors (set it to 0), then exit: needed when
    /// a single monitor replaces redundant ones, or etcd's data was recreated. Stop ha-agent
    /// first; refused while it listens. See docs/redundant-monitors.md.
    #[arg(long)]
    reset_leader_term: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Print the man page (roff) and exit (used to build the packages).
    #[arg(long, hide = true)]
    generate_man: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.generate_man {
        return ha_proto::runtime::print_man_page(
            <Cli as clap::CommandFactory>::command().version(ha_agent::VERSION),
            "8",
        );
    }
    if cli.version {
        println!("ha-agent {}", ha_agent::VERSION);
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &cli.check_config {
        return match ha_config::load_agent(path) {
            Ok(_) => {
                println!("OK");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.adopt_writer {
        let adopted = ha_config::load_agent(&cli.config)
            .map_err(|e| e.to_string())
            .and_then(|cfg| ha_agent::lease::adopt::permit_for(&cfg));
        return match adopted {
            Ok(marker) => {
                println!(
                    "adoption permitted once ({}): start ha-agent now (systemctl start ha-agent); it keeps this host writable for at most {} s, so start ha-monitor right after it",
                    marker.display(),
                    ha_lease::ADOPT_WINDOW_MS / 1000
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ha-agent: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.reset_leader_term {
        return match ha_config::load_agent(&cli.config)
            .map_err(|e| e.to_string())
            .and_then(|cfg| reset_leader_term(&cfg))
        {
            Ok(was) => {
                println!(
                    "leadership term reset from {was} to 0: this agent obeys a monitor of any term again; start ha-agent"
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ha-agent: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(cli.log_format, "info");
    let cfg = match ha_config::load_agent(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            // The log goes to stderr: one line per problem.
            for line in e.to_string().lines() {
                tracing::error!("{line}");
            }
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ha-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(ha_agent::run(cfg, shutdown_signal())) {
        Ok(()) => {
            tracing::info!("ha-agent stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `--reset-leader-term`: refused while an agent listens on this host's address (it would
/// write its own term back).
fn reset_leader_term(cfg: &ha_config::AgentConfig) -> Result<u64, String> {
    if std::net::TcpListener::bind(cfg.listen).is_err() {
        return Err(format!(
            "cannot reset the leadership term: something listens on {} (ha-agent still runs?); \
             stop it first (systemctl stop ha-agent)",
            cfg.listen
        ));
    }
    ha_agent::lease::store::Store::new(&cfg.state_dir).reset_leader_term()
}
