//! The monitor's observability settings: `metrics:`, `history:` and `hooks:`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ha_core::EventKind;
use serde::{Deserialize, Serialize};

use crate::error::Collector;
use crate::Seconds;

/// `history:` — the decision history (`ha-control history`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// The history file; unset: `history.jsonl` next to `status_path`. The previous generation
    /// is kept as `<path>.1`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A generation is rotated when it reaches this size (KiB); two are kept.
    #[serde(default = "default_max_kib")]
    pub max_size_kib: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            path: None,
            max_size_kib: default_max_kib(),
        }
    }
}

impl HistoryConfig {
    /// The history file for a monitor whose status file is `status_path`.
    pub fn file(&self, status_path: &Path) -> PathBuf {
        match &self.path {
            Some(p) => p.clone(),
            None => status_path
                .parent()
                .unwrap_or(Path::new("/"))
                .join("history.jsonl"),
        }
    }
}

fn default_max_kib() -> u64 {
    4096
}

/// One `hooks.<name>` entry: an executable run on events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hook {
    /// The name in the file (logs and metrics call the hook by it).
    pub name: String,
    /// Absolute path of the executable. It gets the event as `HA_*` environment variables and
    /// as one JSON object on stdin.
    pub command: PathBuf,
    /// Event kinds to run on (`state_change`, `role_move`, `promotion_started`, ...); empty or
    /// absent: all of them.
    #[serde(default)]
    pub events: Vec<String>,
    /// The hook is killed after this long and counted as failed.
    pub timeout: Seconds,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    command: PathBuf,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default = "default_hook_timeout")]
    timeout: Seconds,
}

pub(super) fn hooks(raw: &crate::OrderedMap<RawHook>) -> Vec<Hook> {
    raw.0
        .iter()
        .map(|(name, h)| Hook {
            name: name.clone(),
            command: h.command.clone(),
            events: h.events.clone(),
            timeout: h.timeout,
        })
        .collect()
}

impl Hook {
    /// Whether this hook runs on events of `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == kind.name())
    }
}

fn default_hook_timeout() -> Seconds {
    Seconds::from_secs(10)
}

/// How many events may wait for one hook before newer ones are dropped (and counted).
pub const HOOK_QUEUE: usize = 256;

pub(super) fn validate_observe(
    metrics: Option<SocketAddr>,
    history: &HistoryConfig,
    hooks: &[Hook],
    c: &mut Collector,
) {
    if metrics.is_some_and(|a| a.port() == 0) {
        c.error(
            "metrics",
            "needs a fixed port (for example 127.0.0.1:9104), not 0",
        );
    }
    if history.max_size_kib < 64 {
        c.error("history.max_size_kib", "must be at least 64");
    }
    if history.path.as_ref().is_some_and(|p| p.is_relative()) {
        c.error("history.path", "must be an absolute file path");
    }
    for hook in hooks {
        let i = &hook.name;
        if hook.command.is_relative() {
            c.error(format!("hooks.{i}.command"), "must be an absolute path");
        }
        for e in &hook.events {
            if EventKind::parse(e).is_none() {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                c.error(
                    format!("hooks.{i}.events"),
                    format!("unknown event '{e}' (known: {})", known.join(", ")),
                );
            }
        }
        let t = hook.timeout.0;
        if t.is_zero() || t.as_secs() > 600 {
            c.error(
                format!("hooks.{i}.timeout"),
                "must be more than 0 and at most 600 seconds",
            );
        }
    }
}
