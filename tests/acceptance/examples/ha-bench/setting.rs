//! What is measured: the monitor settings (mysql-mmm's defaults, fast) and the fault scenarios.

use std::time::Duration;

use ha_acceptance::ClusterOptions;

/// A monitor configuration to measure.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub(crate) name: &'static str,
    pub(crate) describe: &'static str,
    pub(crate) opts: ClusterOptions,
    /// Bound on one failover (fault → new writer ready).
    pub(crate) failover_timeout: Duration,
}

pub(crate) fn setting(name: &str) -> Result<Setting, String> {
    let base = ClusterOptions::fast();
    match name {
        "mmm" => Ok(Setting {
            name: "mmm",
            describe: "mysql-mmm defaults: check_period 5 s, trap_period 10 s, timeout 2 s, \
                       max_backlog 60; ping_interval 1 s; ha's defaults: agent_period 0.5 s, \
                       agent_timeout 1 s, writer_lease 5 s, fence_budget 0.25 s",
            opts: ClusterOptions {
                converge_timeout: Duration::from_secs(180),
                ..base
            }
            .set("checks.default.check_period", "5")
            .set("checks.default.trap_period", "10")
            .set("checks.default.timeout", "2")
            .set("checks.default.max_backlog", "60")
            .set("monitor.ping_interval", "1")
            .set("monitor.agent_period", "0.5")
            .set("monitor.agent_timeout", "1")
            .set("monitor.writer_lease", "5"),
            failover_timeout: Duration::from_secs(120),
        }),
        "fast" => Ok(Setting {
            name: "fast",
            describe: "check_period 0.1 s, trap_period 0.5 s, timeout 0.1 s, attempts 3, \
                       max_backlog 5; ping_interval 0.2 s; agent_period 0.2 s, \
                       agent_timeout 0.4 s, writer_lease 1 s, fence_budget 0.25 s",
            opts: base
                .set("checks.default.check_period", "0.1")
                .set("checks.default.attempts", "3")
                .set("checks.default.trap_period", "0.5")
                .set("checks.default.timeout", "0.1")
                .set("checks.default.max_backlog", "5")
                .set("monitor.ping_interval", "0.2")
                .set("monitor.agent_period", "0.2")
                .set("monitor.agent_timeout", "0.4")
                .set("monitor.writer_lease", "1"),
            failover_timeout: Duration::from_secs(60),
        }),
        other => Err(format!("unknown setting {other:?} (mmm, fast)")),
    }
}

/// How long a fault that must not move the writer is held (S13 cut, S14 monitor down).
pub(crate) const HOLD: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scenario {
    S1,
    S3,
    S4,
    S11,
    S13,
    S13b,
    S14,
}

impl Scenario {
    pub(crate) fn parse(s: &str) -> Result<Scenario, String> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "S1" => Scenario::S1,
            "S3" => Scenario::S3,
            "S4" => Scenario::S4,
            "S11" => Scenario::S11,
            "S13" => Scenario::S13,
            "S13B" => Scenario::S13b,
            "S14" => Scenario::S14,
            _ => {
                return Err(format!(
                    "unknown scenario {s:?} (S1, S3, S4, S11, S13, S13b, S14)"
                ))
            }
        })
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Scenario::S1 => "S1 mysqld stop",
            Scenario::S3 => "S3 freeze",
            Scenario::S4 => "S4 link loss",
            Scenario::S11 => "S11 move_role writer",
            Scenario::S13 => "S13 monitor cut off",
            Scenario::S13b => "S13b mon+db2 cut off",
            Scenario::S14 => "S14 monitor down 30 s",
        }
    }

    /// The fault must not move the writer (peer promises): measured over [`HOLD`], the writer
    /// staying where it is.
    pub(crate) fn no_failover(self) -> bool {
        matches!(self, Scenario::S13 | Scenario::S14)
    }

    pub(crate) fn planned(self) -> bool {
        self == Scenario::S11
    }
}
