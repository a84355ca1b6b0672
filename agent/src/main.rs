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
