//! What survives a restart or a takeover: the status file writer, and the start-up core built
//! from stored state (status file or etcd) or, without any, from what the agents report
//! (startup voting).

use std::collections::HashMap;

use ha_config::MonitorConfig;
use ha_core::{Action, Core, PersistedState};

use crate::agents::AgentLink;
use crate::bridge;
use crate::clock::Clock;
use crate::observe::Observer;
use crate::status_file;

/// Writes the status file for the core and tells the core whether it worked: the core sends a
/// new writer its role only once the file records it (write-ahead), and retries a failed save.
pub(crate) struct StatusWriter {
    path: std::path::PathBuf,
    outcome: SaveOutcome,
}

impl StatusWriter {
    pub(crate) fn new(path: std::path::PathBuf) -> Self {
        StatusWriter {
            path,
            outcome: SaveOutcome::default(),
        }
    }

    pub(crate) fn save(&mut self, core: &mut Core, now_ms: u64) {
        let snapshot = core.persisted();
        let result = status_file::save(&self.path, &snapshot, now_ms).map_err(|e| e.to_string());
        self.outcome.report(
            core,
            &snapshot,
            result,
            || format!("status file {} written again", self.path.display()),
            "a restarted monitor",
        );
    }
}

/// Tells the core how a save of its persisted state went (status file or etcd), and logs a
/// failure once until it changes or a save works again.
#[derive(Default)]
pub(crate) struct SaveOutcome {
    /// The last save error logged.
    failing: Option<String>,
}

impl SaveOutcome {
    /// `recovered`: the log line when a save works again after failing; `who_must_know`: who
    /// reads the state next, for the failure's log line.
    pub(crate) fn report(
        &mut self,
        core: &mut Core,
        snapshot: &PersistedState,
        result: Result<(), String>,
        recovered: impl FnOnce() -> String,
        who_must_know: &str,
    ) {
        match result {
            Ok(()) => {
                core.saved(snapshot);
                if self.failing.take().is_some() {
                    tracing::info!("{}", recovered());
                }
            }
            Err(text) => {
                core.save_failed();
                if self.failing.as_deref() != Some(text.as_str()) {
                    tracing::error!(
                        "{text}; retrying with every pass. Until it works no new writer is \
                         promoted ({who_must_know} must know of every writer grant)"
                    );
                }
                self.failing = Some(text);
            }
        }
    }
}

/// The stored state a start-up or a takeover begins from.
pub(crate) enum Stored {
    /// Found at `from` (the status file, or the etcd key).
    Found { state: PersistedState, from: String },
    /// Nothing stored yet; `note` says where nothing was found (`No status file at …`).
    Missing { note: String },
    /// Unreadable; the error says what and where.
    Unreadable(String),
}

impl Stored {
    /// The single monitor's status file.
    pub(crate) fn from_file(cfg: &MonitorConfig) -> Stored {
        let path = &cfg.monitor.status_path;
        let from = format!("the status file {}", path.display());
        match status_file::load::<PersistedState>(path) {
            Ok(Some(state)) => Stored::Found { state, from },
            Ok(None) => Stored::Missing {
                note: format!("No status file at {}", path.display()),
            },
            Err(e) => Stored::Unreadable(e.to_string()),
        }
    }

    /// The document kept in etcd under `key` (`None`: etcd has none).
    pub(crate) fn from_etcd(doc: Option<&[u8]>, key: &str) -> Stored {
        let from = format!("etcd key {key}");
        let Some(doc) = doc else {
            return Stored::Missing {
                note: format!("No stored state in {from}"),
            };
        };
        let text = String::from_utf8_lossy(doc);
        match status_file::decode(&text, std::path::Path::new(&from)) {
            Ok(state) => Stored::Found { state, from },
            Err(e) => Stored::Unreadable(e.to_string()),
        }
    }

    /// Nothing stored yet: the local status file, if it has a state (the first takeover after
    /// a single monitor gained `coordination:` migrates its state into etcd).
    pub(crate) fn or_file(self, cfg: &MonitorConfig) -> Stored {
        match self {
            Stored::Missing { note } => match Stored::from_file(cfg) {
                found @ Stored::Found { .. } => found,
                _ => Stored::Missing { note },
            },
            other => other,
        }
    }
}

/// Start-up (or takeover): the stored state, or without one what every agent and host reports
/// → the core's startup voting. Returns the core and whether its state must be saved now.
pub(crate) async fn startup(
    cfg: &MonitorConfig,
    spec: ha_core::ClusterSpec,
    links: &HashMap<String, AgentLink>,
    clock: &Clock,
    stored: Stored,
    observer: &mut Observer,
) -> (Core, bool) {
    let now = bridge::millis(clock.now_ms());
    match stored {
        Stored::Found { state, from } => {
            tracing::info!(
                "Restored states and roles from {from} (epoch {})",
                state.epoch
            );
            return (Core::restore(spec, &state, now), false);
        }
        Stored::Missing { note } => tracing::warn!(
            "{note}: starting up without status information; determining \
             states and roles from the agents (startup voting)."
        ),
        Stored::Unreadable(e) => {
            tracing::error!("{e}; determining states and roles from the agents (startup voting)")
        }
    }
    let mut queries = Vec::new();
    for h in &cfg.hosts {
        let Some(link) = links.get(&h.name).cloned() else {
            continue;
        };
        queries.push(tokio::spawn(async move {
            let agent = retry(3, || link.status()).await;
            let system = retry(3, || link.system_status()).await;
            (link.host().to_string(), agent, system)
        }));
    }
    let mut infos = Vec::new();
    for q in queries {
        match q.await {
            Ok((host, agent, system)) => {
                if let Err(e) = &agent {
                    tracing::error!("Startup: {e}");
                }
                if let Err(e) = &system {
                    tracing::error!("Startup: {e}");
                }
                infos.push(bridge::startup_info(cfg, &host, agent.ok(), system.ok()));
            }
            Err(e) => tracing::error!("Startup query task failed: {e}"),
        }
    }
    let now = bridge::millis(clock.now_ms());
    let (core, actions) = Core::startup(spec, None, infos, now);
    let mut events = Vec::new();
    let mut save = false;
    for action in actions {
        match action {
            Action::Log { level, message } => bridge::log(level, &message),
            Action::SaveStatus => save = true,
            Action::Event(e) => events.push((e, None)),
            _ => {}
        }
    }
    observer.record(events);
    (core, save)
}

async fn retry<T, F, Fut>(attempts: usize, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}
