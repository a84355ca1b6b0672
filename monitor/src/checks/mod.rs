//! The four host checks (`ping`, `mysql`, `rep_threads`, `rep_backlog`), each host and each
//! check on its own task so a slow or frozen host delays nobody (docs/product.md F2).
//!
//! A check only *observes*: it produces a raw [`Observation`] (the core's [`CheckOutcome`]
//! with mysql-mmm's message text) and sends it to the main loop. The trap logic that turns raw
//! results into recorded failures lives in the pure core.
//!
//! - `schedule`: the per host × check task loop — periods, pausing, parallel attempts and
//!   answers that arrive after their run gave up.
//! - `probe`: connecting to a server and running one attempt of a check against it.
//! - `judge`: turning what a probe saw into an outcome and mysql-mmm's message texts.

mod judge;
mod probe;
mod schedule;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ha_config::MonitorConfig;
use ha_core::{Check, CheckOutcome};
use tokio::sync::mpsc;

pub use judge::{judge_backlog, judge_threads, mysql_error_number, SlaveFacts};
pub use probe::{ping, StatusSyntax};
pub use schedule::combine;

/// Raw result of one check run: the core's outcome and the message mysql-mmm would log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub outcome: CheckOutcome,
    pub message: String,
    /// Seconds_Behind_Master when a rep_backlog run read it (for the metrics only).
    pub lag_secs: Option<u64>,
}

impl Observation {
    pub fn ok(message: impl Into<String>) -> Observation {
        Observation {
            outcome: CheckOutcome::Ok,
            message: message.into(),
            lag_secs: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Observation {
        Observation {
            outcome: CheckOutcome::Error,
            message: message.into(),
            lag_secs: None,
        }
    }

    pub fn unknown(message: impl Into<String>) -> Observation {
        Observation {
            outcome: CheckOutcome::Unknown,
            message: message.into(),
            lag_secs: None,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome == CheckOutcome::Ok
    }
}

/// One check result on its way to the main loop.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub host: String,
    pub check: Check,
    pub observation: Observation,
    /// How long the run took (for the metrics only).
    pub took: Duration,
}

/// What every check of one host needs to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub ip: IpAddr,
    pub mysql_port: u16,
    pub user: String,
    pub password: String,
    pub tls: Option<ha_config::MysqlTls>,
}

/// Spawns one task per (host, check). Each runs until the shutdown.
pub fn spawn_all(
    cfg: &MonitorConfig,
    pinger: Arc<surge_ping::Client>,
    tx: mpsc::Sender<CheckReport>,
    paused: tokio::sync::watch::Receiver<bool>,
    shutdown: crate::shutdown::Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for host in &cfg.hosts {
        let target = Target {
            host: host.name.clone(),
            ip: host.ip,
            mysql_port: host.mysql_port,
            user: cfg.credentials.monitor_user.clone(),
            password: cfg.credentials.monitor_password.clone(),
            tls: cfg.credentials.monitor_tls.clone(),
        };
        for check in Check::ALL {
            let settings = *cfg.checks.get(check);
            let runner = probe::Runner::new(
                target.clone(),
                check,
                settings.timeout.duration(),
                settings.max_backlog.duration(),
                pinger.clone(),
            );
            let timeout = settings.timeout.duration();
            let schedule = schedule::Schedule {
                host: host.name.clone(),
                check,
                period: settings.check_period.duration(),
                // A ping attempt is bounded by its own timeout and reports its own message.
                window: match check {
                    Check::Ping => timeout + Duration::from_secs(1),
                    _ => timeout,
                },
                attempts: settings.attempts.max(1) as usize,
            };
            handles.push(tokio::spawn(schedule::run_check(
                runner,
                schedule,
                tx.clone(),
                paused.clone(),
                shutdown.clone(),
            )));
        }
    }
    handles
}
