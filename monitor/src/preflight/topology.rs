//! `topology <host>`: every host but the writer replicates from the writer, matched by the
//! address and port monitor.yaml gives (as the agent compares `Master_Host`/`Master_Port` with
//! its `cluster_hosts`), with both threads running. The writer is the one writable host; before
//! ha's first start, when no host is writable, it is the host every other host replicates from.

use std::time::Duration;

use super::cluster::{writable, Member};
use super::gather::addr;
use super::{Line, Replica, SlaveRow};
use crate::checks::{judge_backlog, judge_threads, SlaveFacts};

const DOC: &str = "docs/mycnf.md#replication-settings";

/// Where a replica's `Master_Host`/`Master_Port` point.
#[derive(Debug, Clone, Copy)]
enum Source<'m, 'a> {
    /// The address and port of a host of monitor.yaml.
    Host(&'m Member<'a>),
    /// A host's name rather than its address: the agent re-points such a replica.
    ByName(&'m Member<'a>),
    Unknown,
}

impl<'m, 'a> Source<'m, 'a> {
    fn member(self) -> Option<&'m Member<'a>> {
        match self {
            Source::Host(m) | Source::ByName(m) => Some(m),
            Source::Unknown => None,
        }
    }
}

fn resolve<'m, 'a>(members: &'m [Member<'a>], row: &SlaveRow) -> Source<'m, 'a> {
    let port_ok = |m: &Member| row.master_port.is_none_or(|p| p == m.port);
    if let Ok(ip) = row.master_host.trim().parse::<std::net::IpAddr>() {
        return members
            .iter()
            .find(|m| m.ip == ip && port_ok(m))
            .map_or(Source::Unknown, Source::Host);
    }
    members
        .iter()
        .find(|m| m.name == row.master_host && port_ok(m))
        .map_or(Source::Unknown, Source::ByName)
}

fn source_of<'m, 'a>(members: &'m [Member<'a>], m: &Member) -> Option<&'m Member<'a>> {
    match &m.facts?.replica {
        Replica::Of(row) => resolve(members, row).member(),
        _ => None,
    }
}

/// The statement that points a replica at `writer`.
fn change_master(host: &str, writer: &Member) -> String {
    let mariadb = writer.facts.is_none_or(|f| f.is_mariadb());
    let gtid = if mariadb {
        "MASTER_USE_GTID=slave_pos"
    } else {
        "MASTER_AUTO_POSITION=1"
    };
    let ip = writer.ip;
    format!(
        "on {host}: STOP SLAVE; CHANGE MASTER TO MASTER_HOST='{ip}', MASTER_PORT={}, MASTER_USER='<replication user of agent.yaml>', MASTER_PASSWORD='…', MASTER_CONNECT_RETRY=1, {gtid}; START SLAVE ({DOC})",
        writer.port
    )
}

/// One line per host that was read (plus, when the writer cannot be told, one `topology` line).
pub fn topology_lines(members: &[Member], max_backlog: Duration) -> Vec<Line> {
    let w = writable(members);
    let (writer, how) = match w.as_slice() {
        [one] => (*one, "the writable host"),
        [] => match common_source(members) {
            Some(m) => (m, "no host is writable yet; the source of every other host"),
            None => {
                let edges: Vec<String> = members
                    .iter()
                    .filter(|m| m.facts.is_some())
                    .map(|m| match source_of(members, m) {
                        Some(s) => format!("{} ← {}", m.name, s.name),
                        None => format!("{} ← nobody", m.name),
                    })
                    .collect();
                return vec![Line::fail(
                    "topology",
                    format!(
                        "no host is writable and no host is the source of every other host ({})",
                        edges.join(", ")
                    ),
                    format!(
                        "make every host but the intended writer replicate from it, with the address and port of monitor.yaml ({DOC})"
                    ),
                )];
            }
        },
        _ => {
            return vec![Line::warn(
                "topology",
                "not checked: more than one host is writable (see the read_only line)",
                "leave one host writable, then run ha-monitor --preflight again",
            )]
        }
    };
    members
        .iter()
        .filter(|m| m.facts.is_some())
        .map(|m| {
            if m.name == writer.name {
                writer_line(members, m, how)
            } else {
                replica_line(members, m, writer, max_backlog)
            }
        })
        .collect()
}

/// With no writable host: the host every other (read) host replicates from, a writer
/// candidate first.
fn common_source<'m, 'a>(members: &'m [Member<'a>]) -> Option<&'m Member<'a>> {
    let read: Vec<&Member> = members.iter().filter(|m| m.facts.is_some()).collect();
    let feeds_all = |x: &Member| {
        read.iter()
            .filter(|m| m.name != x.name)
            .all(|m| source_of(members, m).is_some_and(|s| s.name == x.name))
    };
    let fits: Vec<&Member> = read.iter().copied().filter(|x| feeds_all(x)).collect();
    fits.iter().find(|m| m.candidate).or(fits.first()).copied()
}

fn threads(row: &SlaveRow) -> String {
    let mut s = format!(
        "Slave_IO_Running: {}, Slave_SQL_Running: {}",
        row.io_running, row.sql_running
    );
    if !row.last_io_error.is_empty() {
        s.push_str(&format!(", Last_IO_Error: {}", row.last_io_error));
    }
    if !row.last_sql_error.is_empty() {
        s.push_str(&format!(", Last_SQL_Error: {}", row.last_sql_error));
    }
    s
}

fn slave_facts(row: &SlaveRow) -> SlaveFacts {
    SlaveFacts {
        io_running: row.io_running.clone(),
        sql_running: row.sql_running.clone(),
        seconds_behind: row.seconds_behind,
    }
}

fn unreadable(check: String, replica: &Replica) -> Option<Line> {
    match replica {
        Replica::Denied(_) => Some(Line::warn(
            check,
            "not checked: the monitor's account may not run SHOW SLAVE STATUS",
            "see the grants line",
        )),
        Replica::Failed(e) => Some(Line::warn(
            check,
            format!("not checked: {e}"),
            "run ha-monitor --preflight again; if it persists, run SHOW SLAVE STATUS on the host",
        )),
        _ => None,
    }
}

fn writer_line(members: &[Member], m: &Member, how: &str) -> Line {
    let check = format!("topology {}", m.name);
    let Some(f) = m.facts else {
        return Line::ok(check, "not read");
    };
    if let Some(l) = unreadable(check.clone(), &f.replica) {
        return l;
    }
    let Replica::Of(row) = &f.replica else {
        return Line::ok(check, format!("the writer ({how}); replicates from nobody"));
    };
    let src = resolve(members, row).member();
    match src {
        Some(s) if Some(s.name) == m.peer => {
            if judge_threads(&slave_facts(row)).is_ok() {
                Line::ok(
                    check,
                    format!(
                        "the writer ({how}); replicates from its peer {} ({})",
                        s.name,
                        threads(row)
                    ),
                )
            } else {
                Line::warn(
                    check,
                    format!(
                        "the writer ({how}); its replication from its peer {} is stopped ({})",
                        s.name,
                        threads(row)
                    ),
                    format!("START SLAVE on {}; or RESET SLAVE ALL there if the writer should not replicate from its peer", m.name),
                )
            }
        }
        _ => {
            let from = src.map_or_else(
                || addr_text(row),
                |s| format!("{} ({})", s.name, addr_text(row)),
            );
            Line::warn(
                check,
                format!(
                    "the writer ({how}) replicates from {from}, which is not its peer: whatever is written there reaches the writer"
                ),
                format!(
                    "on {}: STOP SLAVE; RESET SLAVE ALL, or make it replicate from its peer (monitor.yaml hosts.{}.peer)",
                    m.name, m.name
                ),
            )
        }
    }
}

fn addr_text(row: &SlaveRow) -> String {
    match row.master_port {
        Some(p) => format!("{}:{p}", row.master_host),
        None => row.master_host.clone(),
    }
}

fn replica_line(members: &[Member], m: &Member, writer: &Member, max_backlog: Duration) -> Line {
    let check = format!("topology {}", m.name);
    let Some(f) = m.facts else {
        return Line::ok(check, "not read");
    };
    if let Some(l) = unreadable(check.clone(), &f.replica) {
        return l;
    }
    let w = writer.name;
    let fix = change_master(m.name, writer);
    let Replica::Of(row) = &f.replica else {
        return Line::fail(
            check,
            format!("does not replicate (SHOW SLAVE STATUS is empty); it must replicate from the writer {w}"),
            fix,
        );
    };
    let source = resolve(members, row);
    let Some(s) = source.member() else {
        return Line::fail(
            check,
            format!(
                "replicates from {}, which is no host's address and port in monitor.yaml (a role IP?), not from the writer {w} ({})",
                addr_text(row),
                addr(writer.ip, writer.port)
            ),
            fix,
        );
    };
    if s.name != w {
        return Line::fail(
            check,
            format!(
                "replicates from {} ({}), not from the writer {w} ({})",
                s.name,
                addr_text(row),
                addr(writer.ip, writer.port)
            ),
            fix,
        );
    }
    let sf = slave_facts(row);
    let detail = format!(
        "replicates from the writer {w} ({}), {}",
        addr_text(row),
        threads(row)
    );
    if !judge_threads(&sf).is_ok() || (row.io_running != "Yes" && !row.last_io_error.is_empty()) {
        return Line::fail(
            check,
            format!("replication from the writer {w} is not running ({})", threads(row)),
            format!(
                "START SLAVE on {}; if a thread stops again, its Last_IO_Error/Last_SQL_Error says why (docs/troubleshooting.md#replication-steps)",
                m.name
            ),
        );
    }
    if row.io_running != "Yes" {
        return Line::warn(
            check,
            format!("{detail}: the IO thread is still connecting"),
            "run ha-monitor --preflight again in a few seconds; if it stays Connecting, check that this host reaches the writer's MySQL port with the replication account",
        );
    }
    let backlog = judge_backlog(&sf, max_backlog);
    if !backlog.is_ok() {
        return Line::warn(
            check,
            format!("{detail}: {}", backlog.message.trim_start_matches("ERROR: ")),
            "wait until it caught up (the monitor would mark it REPLICATION_DELAY and take its roles away)",
        );
    }
    if let Source::ByName(_) = source {
        return Line::warn(
            check,
            format!(
                "{detail}; Master_Host is the name {:?}, not the address",
                row.master_host
            ),
            format!("the agent compares addresses and will re-point it; to avoid that, {fix}"),
        );
    }
    let behind = row
        .seconds_behind
        .map_or(String::new(), |s| format!(", {s} s behind"));
    Line::ok(check, format!("{detail}{behind}"))
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
