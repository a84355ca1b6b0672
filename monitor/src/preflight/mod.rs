//! `ha-monitor --preflight`: connects to every host of monitor.yaml (MySQL with the monitor's
//! account, and the agent) and says, one line per check, whether the cluster is set up the way
//! ha needs it (docs/preflight.md). Nothing is changed anywhere: every statement only reads.
//!
//! - this file: the line and report types, the entry point and the order of the checks;
//! - `gather`: what is read from each server (variables, grants, replication), with deadlines;
//! - `server`: the per-host judgements (connect, grants, binlog, gtid, semi_sync);
//! - `cluster`: the judgements across hosts (server_id, read_only, auto_increment);
//! - `topology`: who replicates from whom;
//! - `agents`: the status call to every agent.
//!
//! Everything but `gather` and the calls in `agents` is pure: given what was read, which lines.

mod agents;
mod cluster;
mod gather;
mod server;
mod topology;

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ha_config::MonitorConfig;

pub use agents::{agent_line, AgentAnswer};
pub use cluster::{auto_increment_line, read_only_line, server_id_line, Member};
pub use gather::{ConnectFailure, HostFacts, ProbeError, Replica, SlaveRow, VARIABLES};
pub use server::{binlog_line, connect_line, grants_line, gtid_line, semi_sync_line};
pub use topology::topology_lines;

/// The shortest deadline of one connection, statement or agent call: the configured timeout
/// when it is longer (`checks.mysql.timeout`, `monitor.agent_timeout`).
pub const MIN_DEADLINE: Duration = Duration::from_secs(5);

/// How bad a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report: `OK   <check>: <detail>` or `WARN|FAIL <check>: <detail> — fix: <fix>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    /// `server_id` (cluster-wide) or `grants db1` (one host).
    pub check: String,
    pub detail: String,
    pub fix: Option<String>,
}

impl Line {
    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Line {
        Line {
            level: Level::Ok,
            check: check.into(),
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Line {
        Line {
            level: Level::Warn,
            check: check.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Line {
        Line {
            level: Level::Fail,
            check: check.into(),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A line at `level`: several problems of one check joined into one line.
    fn of(level: Level, check: String, problems: &[String], fixes: &[String]) -> Line {
        Line {
            level,
            check,
            detail: problems.join("; "),
            fix: (level != Level::Ok).then(|| fixes.join("; ")),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{tag} {}: {}", self.check, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, " — fix: {fix}")?;
        }
        Ok(())
    }
}

/// All lines of one preflight run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    pub fn count(&self, level: Level) -> usize {
        self.lines.iter().filter(|l| l.level == level).count()
    }

    pub fn failed(&self) -> bool {
        self.count(Level::Fail) > 0
    }

    /// The last line printed: counts, and what to do next.
    pub fn summary(&self) -> String {
        let (ok, warn, fail) = (
            self.count(Level::Ok),
            self.count(Level::Warn),
            self.count(Level::Fail),
        );
        let verdict = if fail > 0 {
            "fix the FAIL lines before starting ha"
        } else if warn > 0 {
            "ha can run; read the WARN lines"
        } else {
            "ha can run"
        };
        format!("summary: {ok} OK, {warn} WARN, {fail} FAIL: {verdict}")
    }
}

/// `ha-monitor --preflight --config FILE`: prints the report and returns 1 when any check
/// failed (or the file is invalid), 0 otherwise.
pub fn main(config: &Path) -> ExitCode {
    let report = match ha_config::load_monitor(config) {
        Err(errors) => Report {
            lines: errors
                .to_string()
                .lines()
                .map(|l| {
                    Line::fail(
                        "config",
                        l,
                        "correct the file or the --config path (ha-monitor --check-config FILE lists every problem)",
                    )
                })
                .collect(),
        },
        Ok(cfg) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run(&cfg)),
            Err(e) => Report {
                lines: vec![Line::fail(
                    "runtime",
                    format!("cannot start the async runtime: {e}"),
                    "check the process limits (ulimit -n, memory) and run it again",
                )],
            },
        },
    };
    for line in &report.lines {
        println!("{line}");
    }
    println!("{}", report.summary());
    if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads every host and every agent (at the same time), then judges.
pub async fn run(cfg: &MonitorConfig) -> Report {
    let mysql_deadline = cfg.checks.mysql.timeout.duration().max(MIN_DEADLINE);
    let agent_deadline = cfg.monitor.agent_timeout.duration().max(MIN_DEADLINE);
    let (probes, answers) = tokio::join!(
        gather::all(cfg, mysql_deadline),
        agents::ask_all(cfg, agent_deadline)
    );
    let mut report = evaluate(cfg, &probes);
    report.lines.extend(agents::lines(cfg, &answers));
    report
}

/// Every MySQL line, in the order of docs/preflight.md, from what [`gather`] read: one entry
/// per host of `cfg`, in file order.
pub fn evaluate(cfg: &MonitorConfig, probes: &[Result<HostFacts, ProbeError>]) -> Report {
    let candidates: Vec<&str> = cfg
        .active_master_role()
        .map(|r| r.hosts.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let members: Vec<Member> = cfg
        .hosts
        .iter()
        .zip(probes)
        .map(|(h, p)| Member {
            name: &h.name,
            ip: h.ip,
            port: h.mysql_port,
            candidate: candidates.contains(&h.name.as_str()),
            peer: h.peer.as_deref(),
            facts: p.as_ref().ok(),
        })
        .collect();
    let user = &cfg.credentials.monitor_user;
    let mut lines = Vec::new();
    for (m, p) in members.iter().zip(probes) {
        lines.push(connect_line(m.name, m.ip, m.port, user, p));
    }
    let reached = || members.iter().filter_map(|m| Some((m, m.facts?)));
    lines.extend(reached().map(|(m, f)| grants_line(m.name, user, f)));
    lines.push(server_id_line(&members));
    lines.extend(reached().map(|(m, f)| binlog_line(m.name, f)));
    lines.extend(reached().map(|(m, f)| gtid_line(m.name, f)));
    lines.push(read_only_line(&members, &cfg.active_master_role));
    lines.push(auto_increment_line(&members));
    lines.extend(reached().map(|(m, f)| semi_sync_line(m.name, f, m.candidate)));
    let max_backlog = cfg.checks.rep_backlog.max_backlog.duration();
    lines.extend(topology_lines(&members, max_backlog));
    Report { lines }
}

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
