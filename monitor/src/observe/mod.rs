//! What the monitor tells the outside about its decisions: the decision history
//! (`ha-control history`), event hooks and Prometheus metrics.
//!
//! The core emits an [`ha_core::Event`] next to the log line of every decision; the main loop
//! hands them to the [`Observer`], which stamps them with the wall clock, appends them to the
//! history (synced before the loop goes on), counts them and queues them for the hooks. Nothing
//! here feeds back into a decision.
//!
//! - `history`: the append-only, bounded, two-generation JSON-lines file.
//! - `hooks`: one queue and worker per configured hook.
//! - `metrics`: the series, and `serve_metrics` their HTTP endpoint.

pub mod history;
pub mod hooks;
pub mod metrics;
mod serve;

use std::sync::Arc;

use ha_config::MonitorConfig;
use ha_core::Event;

pub use history::{Filter, History, Record};
pub use metrics::Metrics;
pub use serve::serve_metrics;

pub struct Observer {
    history: History,
    hooks: Vec<hooks::HookQueue>,
    pub metrics: Arc<Metrics>,
    /// The last history error, logged once until it changes.
    failing: Option<String>,
}

impl Observer {
    /// Starts the hook workers (call inside the runtime).
    pub fn new(cfg: &MonitorConfig) -> Observer {
        let metrics = Arc::new(Metrics::default());
        let path = cfg.history.file(&cfg.monitor.status_path);
        Observer {
            history: History::new(path, cfg.history.max_size_kib),
            hooks: cfg
                .hooks
                .iter()
                .map(|h| hooks::HookQueue::spawn(h.clone(), metrics.clone()))
                .collect(),
            metrics,
            failing: None,
        }
    }

    pub fn history_path(&self) -> std::path::PathBuf {
        self.history.path().to_path_buf()
    }

    /// Records the events of one main-loop pass, in order; `operator` for admin commands.
    pub fn record(&mut self, events: Vec<(Event, Option<String>)>) {
        if events.is_empty() {
            return;
        }
        let now = unix_ms();
        let records: Vec<Arc<Record>> = events
            .into_iter()
            .map(|(event, operator)| {
                Arc::new(Record {
                    time_unix_ms: now,
                    event,
                    operator,
                })
            })
            .collect();
        match self.history.append(&records) {
            Ok(()) => {
                if self.failing.take().is_some() {
                    tracing::info!("writing the decision history works again");
                }
            }
            Err(e) => {
                self.metrics.history_failed();
                if self.failing.as_deref() != Some(e.as_str()) {
                    tracing::error!("{e}; decisions go on, but ha-control history will miss them (check the directory's permissions and free space)");
                    self.failing = Some(e);
                }
            }
        }
        for r in &records {
            self.metrics.event(&r.event, r.time_unix_ms);
            for hook in &self.hooks {
                hook.offer(r, &self.metrics);
            }
        }
    }
}

/// Wall-clock milliseconds since the UNIX epoch (for people; never compared by a decision).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
