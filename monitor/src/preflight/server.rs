//! The checks of one server on its own: connect, grants, binlog, gtid, semi_sync. Pure: what
//! [`gather`](super::gather) read in, lines out.

use std::net::IpAddr;

use super::gather::{addr, parse_flag};
use super::{ConnectFailure, HostFacts, Level, Line, ProbeError, Replica};

/// Below this `rpl_semi_sync_master_timeout` (ms) the line warns.
pub const MIN_SEMI_SYNC_TIMEOUT_MS: u64 = 10_000;

const SEMI_SYNC_DOC: &str = "docs/mycnf.md#semi-synchronous-replication-i2";

/// `connect <host>`: the monitor's account reached the server and read it.
pub fn connect_line(
    name: &str,
    ip: IpAddr,
    port: u16,
    user: &str,
    probe: &Result<HostFacts, ProbeError>,
) -> Line {
    let check = format!("connect {name}");
    let at = addr(ip, port);
    let e = match probe {
        Ok(f) => {
            return Line::ok(
                check,
                format!("{user} connected to {at} as {} ({})", f.account, f.version),
            )
        }
        Err(e) => e,
    };
    let fix = match e.kind {
        ConnectFailure::Timeout => format!(
            "check that {name} is up, that mysqld listens on {at} (bind_address = 0.0.0.0, docs/mycnf.md) and that no firewall drops that port from this host"
        ),
        ConnectFailure::AccessDenied => format!(
            "create the account '{user}' on every host with the password of credentials.monitor_password, or correct credentials.monitor_user/monitor_password (docs/grants.md)"
        ),
        ConnectFailure::HostNotAllowed => format!(
            "the host part of '{user}' must match this monitor host's address (docs/grants.md#which-host-patterns)"
        ),
        ConnectFailure::Connect => format!(
            "check that mysqld runs and listens on {at} (hosts.{name}.mysql_port) and that credentials.monitor_tls suits the server's TLS"
        ),
        ConnectFailure::Query => {
            "the server accepts connections but does not answer: is it overloaded or stuck? (SHOW PROCESSLIST as an administrator)".to_string()
        }
    };
    let what = match e.kind {
        ConnectFailure::Query => "connected to",
        _ => "cannot connect to",
    };
    Line::fail(check, format!("{user} {what} {at}: {}", e.text), fix)
}

/// `grants <host>`: the checks' statements are allowed (`SELECT 1` needs nothing,
/// `SHOW SLAVE STATUS` needs SLAVE MONITOR on MariaDB, REPLICATION CLIENT on MySQL), and the
/// account cannot write: fencing spares it (agent.yaml `spare_users`).
pub fn grants_line(name: &str, user: &str, f: &HostFacts) -> Line {
    let check = format!("grants {name}");
    let account = if f.account.is_empty() {
        user
    } else {
        &f.account
    };
    let (privilege, doc) = if f.is_mariadb() {
        ("SLAVE MONITOR", "docs/grants.md")
    } else {
        (
            "REPLICATION CLIENT",
            "docs/grants.md#mysql-80-derived-from-the-code-not-run",
        )
    };
    if let Replica::Denied(e) = &f.replica {
        return Line::fail(
            check,
            format!(
                "{account} may not run SHOW SLAVE STATUS ({e}): the rep_threads and rep_backlog checks would fail on every host"
            ),
            format!("GRANT {privilege} ON *.* TO {} ({doc})", quote_account(account)),
        );
    }
    let lines = match &f.grants {
        Ok(l) => l,
        Err(e) => return Line::warn(
            check,
            format!("could not read SHOW GRANTS ({e}); SHOW SLAVE STATUS is allowed"),
            "nothing needed for the checks; run SHOW GRANTS as the account to see what it may do",
        ),
    };
    let grants: Vec<(Vec<String>, String)> = lines.iter().filter_map(|l| parse_grant(l)).collect();
    let writing: Vec<String> = grants
        .iter()
        .flat_map(|(privs, on)| {
            privs
                .iter()
                .filter(|p| WRITING.contains(&p.as_str()))
                .map(move |p| format!("{p} ON {on}"))
        })
        .collect();
    if !writing.is_empty() {
        return Line::warn(
            check,
            format!(
                "{account} can write or lift read_only ({}): fencing spares the monitor's connections (agent.yaml spare_users), so this account must not be able to write",
                writing.join(", ")
            ),
            format!(
                "REVOKE those privileges FROM {}; the checks need only {privilege} ({doc})",
                quote_account(account)
            ),
        );
    }
    let global: Vec<String> = grants
        .iter()
        .filter(|(_, on)| on == "*.*")
        .flat_map(|(p, _)| p.iter().cloned())
        .collect();
    Line::ok(
        check,
        format!(
            "{account} may run SHOW SLAVE STATUS and cannot write (global privileges: {})",
            if global.is_empty() {
                "none".to_string()
            } else {
                global.join(", ")
            }
        ),
    )
}

/// Privileges that write data or lift `read_only`.
const WRITING: &[&str] = &[
    "ALL",
    "ALL PRIVILEGES",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "SUPER",
    "READ_ONLY ADMIN",
    "SYSTEM_VARIABLES_ADMIN",
];

/// The privileges of one `SHOW GRANTS` line and what they are on:
/// ``GRANT SLAVE MONITOR ON *.* TO `ha_monitor`@`%` …`` → (`["SLAVE MONITOR"]`, `*.*`). Column
/// lists are dropped (`SELECT (a, b)` → `SELECT`). `None` for role grants (`GRANT r TO u`).
pub fn parse_grant(line: &str) -> Option<(Vec<String>, String)> {
    let upper = line.to_ascii_uppercase();
    let rest = upper.strip_prefix("GRANT ")?;
    let on = rest.find(" ON ")?;
    let privs = &rest[..on];
    // The object keeps its case: the upper-case copy has the same byte offsets (ASCII).
    let after = line.get("GRANT ".len() + on + 4..).unwrap_or_default();
    let object = match rest[on + 4..].find(" TO ") {
        Some(to) => after.get(..to).unwrap_or(after),
        None => after,
    };
    let object = object.trim().replace('`', "");
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    for c in privs.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ if depth == 0 => cur.push(c),
            _ => {}
        }
    }
    out.push(cur);
    let out = out
        .into_iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    Some((out, object))
}

/// `user@host` → `'user'@'host'`.
fn quote_account(account: &str) -> String {
    match account.rsplit_once('@') {
        Some((u, h)) => format!("'{u}'@'{h}'"),
        None => format!("'{account}'"),
    }
}

/// `binlog <host>`: `log_bin` and `log_slave_updates` (every host can be promoted, and the
/// catch-up reads pure replicas' binary logs too).
pub fn binlog_line(name: &str, f: &HostFacts) -> Line {
    let check = format!("binlog {name}");
    let updates = f
        .first_var(&["log_slave_updates", "log_replica_updates"])
        .map(|(n, v)| (n, parse_flag(v)));
    let mut problems = Vec::new();
    if f.flag("log_bin") != Some(true) {
        problems.push(format!(
            "log_bin={}: promoted, this host would have no binary log for the replicas to read",
            f.var("log_bin").unwrap_or("missing")
        ));
    }
    match updates {
        Some((_, Some(true))) => {}
        Some((n, _)) => problems.push(format!(
            "{n}=OFF: promoted, this host's binary log would lack what it applied as a replica"
        )),
        None => problems.push(
            "log_slave_updates is missing: promoted, this host's binary log would lack what it applied as a replica".to_string(),
        ),
    }
    if problems.is_empty() {
        return Line::ok(check, "log_bin=ON, log_slave_updates=ON");
    }
    Line::fail(
        check,
        problems.join("; "),
        "log_bin = mysql-bin and log_slave_updates = 1 in my.cnf, then restart mysqld: neither can be changed at run time (docs/mycnf.md#log_bin-and-log_slave_updates-on-every-host)",
    )
}

/// `gtid <host>`: MariaDB `gtid_strict_mode=ON`; MySQL `gtid_mode=ON` and
/// `enforce_gtid_consistency=ON`.
pub fn gtid_line(name: &str, f: &HostFacts) -> Line {
    let check = format!("gtid {name}");
    const DOC: &str = "docs/mycnf.md#gtid";
    match f.var("gtid_strict_mode") {
        Some(v) if parse_flag(v) == Some(true) => {
            return Line::ok(check, "gtid_strict_mode=ON")
        }
        Some(v) => {
            return Line::fail(
                check,
                format!(
                    "gtid_strict_mode={v}: an out-of-order or errant GTID would be applied instead of stopping replication"
                ),
                format!("SET GLOBAL gtid_strict_mode=1, and gtid_strict_mode = 1 in my.cnf ({DOC})"),
            )
        }
        None => {}
    }
    if f.is_mariadb() || f.var("gtid_mode").is_none() {
        return Line::warn(
            check,
            "this server has no gtid_strict_mode variable (nor MySQL's gtid_mode): ha cannot check how it orders GTIDs",
            format!("use MariaDB 10.5.9 or later with gtid_strict_mode = 1 ({DOC})"),
        );
    }
    let mode = f.flag("gtid_mode") == Some(true);
    let consistent = f.flag("enforce_gtid_consistency") == Some(true);
    if mode && consistent {
        return Line::ok(check, "gtid_mode=ON, enforce_gtid_consistency=ON");
    }
    Line::warn(
        check,
        format!(
            "gtid_mode={}, enforce_gtid_consistency={}: without GTIDs the agent re-points by file and position and cannot detect errant transactions",
            f.var("gtid_mode").unwrap_or("missing"),
            f.var("enforce_gtid_consistency").unwrap_or("missing")
        ),
        format!("gtid_mode = ON and enforce_gtid_consistency = ON in my.cnf ({DOC})"),
    )
}

const ENABLED: [&str; 2] = [
    "rpl_semi_sync_master_enabled",
    "rpl_semi_sync_source_enabled",
];
const ACKS: [&str; 2] = [
    "rpl_semi_sync_slave_enabled",
    "rpl_semi_sync_replica_enabled",
];
const TIMEOUT: [&str; 2] = [
    "rpl_semi_sync_master_timeout",
    "rpl_semi_sync_source_timeout",
];
const WAIT_POINT: [&str; 2] = [
    "rpl_semi_sync_master_wait_point",
    "rpl_semi_sync_source_wait_point",
];
const NO_SLAVE: [&str; 2] = [
    "rpl_semi_sync_master_wait_no_slave",
    "rpl_semi_sync_source_wait_no_replica",
];

/// `semi_sync <host>`: on writer candidates the master side on with AFTER_SYNC and a long
/// timeout, and the replica side on (the candidates acknowledge each other); on other hosts the
/// replica side off (an ACK from a host that cannot become the writer covers nothing); and
/// `wait_no_slave=OFF` wherever the master side is on (docs/mycnf.md). Every problem is a
/// WARN: ha works without semi-sync, but then cannot promise that no acknowledged write is lost.
pub fn semi_sync_line(name: &str, f: &HostFacts, candidate: bool) -> Line {
    let check = format!("semi_sync {name}");
    let Some((en_name, en)) = f.first_var(&ENABLED) else {
        if !candidate {
            return Line::ok(
                check,
                "not a writer candidate; this server has no semi-sync",
            );
        }
        return Line::warn(
            check,
            "this server has no semi-sync replication (no rpl_semi_sync_master_enabled): ha then cannot promise that no acknowledged write is lost on failover",
            format!("MariaDB 10.3.3 and later have it built in, MySQL needs plugin_load_add = semisync_source.so and semisync_replica.so; then set it up as in {SEMI_SYNC_DOC}"),
        );
    };
    let master_on = parse_flag(en) == Some(true);
    let (ack_name, ack_on) = match f.first_var(&ACKS) {
        Some((n, v)) => (n, parse_flag(v) == Some(true)),
        None => (ACKS[0], false),
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut good = Vec::new();
    if candidate {
        if master_on {
            good.push(format!("{en_name}=ON"));
        } else {
            problems.push(format!(
                "{en_name}=OFF: semi-sync is not enabled, so ha cannot promise that no acknowledged write is lost on failover"
            ));
            fixes.push(format!(
                "SET GLOBAL {en_name}=ON, and {en_name} = 1 in my.cnf"
            ));
        }
        if ack_on {
            good.push(format!("{ack_name}=ON"));
        } else {
            problems.push(format!(
                "{ack_name}=OFF: this writer candidate does not acknowledge the writer's commits"
            ));
            fixes.push(format!(
                "SET GLOBAL {ack_name}=ON; STOP SLAVE IO_THREAD; START SLAVE IO_THREAD, and {ack_name} = 1 in my.cnf"
            ));
        }
    } else if ack_on {
        problems.push(format!(
            "{ack_name}=ON on a host that cannot become the writer: its acknowledgement can cover a write the next writer never received"
        ));
        fixes.push(format!(
            "SET GLOBAL {ack_name}=OFF; STOP SLAVE IO_THREAD; START SLAVE IO_THREAD, and {ack_name} = 0 in my.cnf"
        ));
    } else {
        good.push(format!(
            "not a writer candidate, does not acknowledge ({ack_name}=OFF)"
        ));
    }
    if candidate && master_on {
        if let Some((n, v)) = f.first_var(&TIMEOUT) {
            match v.trim().parse::<u64>() {
                Ok(ms) if ms >= MIN_SEMI_SYNC_TIMEOUT_MS => good.push(format!("{n}={ms} ms")),
                _ => {
                    problems.push(format!(
                        "{n}={v} ms: a short timeout falls back to asynchronous replication silently"
                    ));
                    fixes.push(format!(
                        "SET GLOBAL {n}=30000000 (30 000 s, as the lab), and in my.cnf"
                    ));
                }
            }
        }
        if let Some((n, v)) = f.first_var(&WAIT_POINT) {
            if v.eq_ignore_ascii_case("AFTER_SYNC") {
                good.push(format!("{n}=AFTER_SYNC"));
            } else {
                problems.push(format!(
                    "{n}={v}: clients can see a commit that no candidate has received yet"
                ));
                fixes.push(format!("SET GLOBAL {n}=AFTER_SYNC, and in my.cnf"));
            }
        }
    }
    if master_on {
        if let Some((n, v)) = f.first_var(&NO_SLAVE) {
            if parse_flag(v) == Some(true) {
                problems.push(format!(
                    "{n}=ON: with log_slave_updates a replica's SQL thread waits for an acknowledgement, which never comes while this host has no semi-sync replica"
                ));
                fixes.push(format!("SET GLOBAL {n}=OFF, and in my.cnf"));
            } else if candidate {
                good.push(format!("{n}=OFF"));
            }
        }
    }
    if problems.is_empty() {
        return Line::ok(check, good.join(", "));
    }
    fixes.push(format!("see {SEMI_SYNC_DOC}"));
    Line::of(Level::Warn, check, &problems, &fixes)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
