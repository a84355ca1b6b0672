//! Plumbing shared by the three binaries: log set-up and graceful shutdown.
//!
//! Kept here, next to the protocol every binary links anyway, so there is one implementation of
//! `--log-format`, the `RUST_LOG`/`HA_LOG` filter and the SIGTERM/SIGINT handling.

use std::time::Duration;

/// Output format of the logs (`--log-format text|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (journald adds its own timestamp).
    #[default]
    Text,
    /// One JSON object per event, for log shippers.
    Json,
}

/// Installs the global tracing subscriber writing to stderr.
///
/// The filter comes from `HA_LOG`, then `RUST_LOG`, else `default_filter` (e.g. `info`).
/// Calling it twice is harmless (the second call does nothing), which keeps tests simple.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("HA_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default_filter.to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("ignoring bad log filter {filter:?}: {e}; using {default_filter:?}");
        EnvFilter::new(default_filter)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    drop(result); // already initialised: keep the first subscriber
}

/// Resolves when the process receives SIGTERM or SIGINT (systemd stop, Ctrl-C).
///
/// If a signal handler cannot be installed the error is logged and the future waits for the
/// other signal only; a daemon must never exit just because it cannot listen for signals.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot install the SIGTERM handler: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    let int = async {
        match signal(SignalKind::interrupt()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot install the SIGINT handler: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received, shutting down"),
        _ = int => tracing::info!("SIGINT received, shutting down"),
    }
}

/// Converts a config duration into a gRPC deadline, never zero (a zero deadline fails every
/// call at once, which would look like a dead peer).
pub fn deadline(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// The man page (roff) of a binary's command line, for the packages (`--generate-man`):
/// `section` 1 for ha-control, 8 for the daemons.
pub fn man_page(cmd: clap::Command, section: &str) -> std::io::Result<String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(section)
        .manual("ha")
        .render(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Prints [`man_page`] to stdout; the exit status says whether it worked.
pub fn print_man_page(cmd: clap::Command, section: &str) -> std::process::ExitCode {
    match man_page(cmd, section) {
        Ok(page) => {
            print!("{page}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot render the man page: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
