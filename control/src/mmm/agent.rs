//! Each host's agent view (its mmm_agent.conf, or the monitor's files when none is given) → ha's
//! `agent-<host>.yaml`. `role_ips` and `cluster_hosts`, which mysql-mmm did not have, are derived
//! from the monitor's roles and hosts.

use std::net::IpAddr;

use super::monitor::{Cluster, HostInfo, TLS_DIR};
use super::notes::{NoteKind, Notes};
use super::parse::{Loc, MmmConfig, Problem, Section, Value};
use super::values::{self as val, or_default, Problems};
use super::yaml::{list, quoted, scalar, Yaml};

/// One host's agent configuration as mmm's agent would read it.
pub struct AgentView<'a> {
    pub host: &'a str,
    pub config: &'a MmmConfig,
    /// The file the view was read from (mmm_agent.conf, or mmm_mon.conf without one).
    pub file: &'a str,
    /// True when the view is the host's own mmm_agent.conf.
    pub own: bool,
}

/// The account values seen on each host, to tell when they differ between hosts.
#[derive(Default)]
pub struct Accounts {
    agent: Vec<(String, Loc)>,
    replication: Vec<(String, Loc)>,
}

/// Converts one host's view; returns the YAML text.
pub fn convert(
    view: &AgentView<'_>,
    cluster: &Cluster,
    out: &str,
    accounts: &mut Accounts,
    notes: &mut Notes,
    problems: &mut Problems,
) -> Option<String> {
    let before = problems.0.len();
    let host = cluster.hosts.iter().find(|h| h.name == view.host)?;
    let Some(s) = view.config.host(view.host) else {
        problems.push(Problem::in_file(
            view.file,
            format!(
                "no <host {}> section in this agent's configuration",
                view.host
            ),
        ));
        return None;
    };
    if view.own {
        agrees(view, s, host, problems);
        if let Some(v) = view.config.globals.get("this") {
            if v.text != view.host {
                problems.push(Problem::at(
                    &v.loc,
                    format!(
                        "this: '{}', but the file was given for host '{}'",
                        v.text, view.host
                    ),
                ));
            }
        }
    }
    let place = format!("<host {}>", view.host);
    let hint = if view.own {
        String::new()
    } else {
        format!(" (or give --agent {}=PATH/mmm_agent.conf)", view.host)
    };
    let need = |key: &str, problems: &mut Problems| -> Option<Value> {
        match s.get(key) {
            Some(v) if !v.text.is_empty() => Some(v.clone()),
            Some(v) => {
                problems.push(Problem::at(&v.loc, format!("{key}: empty value")));
                None
            }
            None => {
                let msg = format!("{key}: missing in {place}, needed for ha-agent{hint}");
                problems.push(match &s.loc {
                    Some(loc) => Problem::at(loc, msg),
                    None => Problem::in_file(view.file, msg),
                });
                None
            }
        }
    };
    let interface = need("cluster_interface", problems);
    let agent_user = need("agent_user", problems);
    let repl_user = need("replication_user", problems);
    let (kill_retries, kill_loc) = or_default(
        Some(&view.config.globals),
        "max_kill_retries",
        10,
        val::count,
        problems,
    );
    let role_ips = role_ips(view.host, cluster, problems);
    let cluster_hosts = cluster_hosts(cluster, problems);
    if problems.0.len() > before {
        return None;
    }
    let (Some(interface), Some(agent_user), Some(repl_user)) = (interface, agent_user, repl_user)
    else {
        return None;
    };
    let agent_pw = s.get("agent_password");
    let repl_pw = s.get("replication_password");
    accounts
        .agent
        .push((agent_user.text.clone(), agent_user.loc.clone()));
    accounts
        .replication
        .push((repl_user.text.clone(), repl_user.loc.clone()));

    let mut y = Yaml::default();
    let listen = std::net::SocketAddr::new(host.ip, host.agent_port).to_string();
    y.line(&format!(
        "# ha-agent configuration of {} converted from mysql-mmm by `ha-control import-mmm`",
        view.host
    ));
    y.line(&format!(
        "# (from {} and its includes). Install it on {} as /etc/ha/agent.yaml",
        view.file, view.host
    ));
    y.line("# (root:ha, 0640) and check it with `ha-agent --check-config /etc/ha/agent.yaml`.");
    y.line("");
    y.field(0, "this", &scalar(view.host), s.loc.as_ref());
    y.field(0, "listen", &scalar(&listen), host.loc.as_ref());
    y.field(
        0,
        "cluster_interface",
        &scalar(&interface.text),
        Some(&interface.loc),
    );
    y.line("");
    y.line("# Derived from the roles that list this host: the only addresses the agent adds or removes.");
    y.field(0, "role_ips", &list(&role_ips), None);
    y.line("");
    y.line(
        "# Derived from the hosts: name -> MySQL IP:PORT, the only replication sources accepted.",
    );
    y.line("cluster_hosts:");
    for (name, addr) in &cluster_hosts {
        y.field(2, &format!("cluster_hosts.{name}"), &quoted(addr), None);
    }
    y.line("");
    y.line("mysql:                          # mysql-mmm's agent_user, on the host's own address as mmm's agent");
    y.field(
        2,
        "mysql.host",
        &scalar(&host.ip.to_string()),
        host.loc.as_ref(),
    );
    y.field(
        2,
        "mysql.port",
        &host.mysql_port.to_string(),
        host.loc.as_ref(),
    );
    y.field(
        2,
        "mysql.user",
        &quoted(&agent_user.text),
        Some(&agent_user.loc),
    );
    y.field(
        2,
        "mysql.password",
        &quoted(agent_pw.map(|v| v.text.as_str()).unwrap_or("")),
        agent_pw.map(|v| &v.loc),
    );
    y.line("");
    y.line("replication:                    # mysql-mmm's replication_user");
    y.field(
        2,
        "replication.user",
        &quoted(&repl_user.text),
        Some(&repl_user.loc),
    );
    y.field(
        2,
        "replication.password",
        &quoted(repl_pw.map(|v| v.text.as_str()).unwrap_or("")),
        repl_pw.map(|v| &v.loc),
    );
    y.line("");
    let max = ha_config::MAX_KILL_RETRIES;
    let clamped = kill_retries.min(max);
    y.field(
        0,
        "max_kill_retries",
        &clamped.to_string(),
        kill_loc.as_ref(),
    );
    if let Some(loc) = &kill_loc {
        notes.at(
            loc,
            "max_kill_retries",
            NoteKind::Changed,
            "ha also spares COMMIT, LOAD, TRUNCATE and RENAME (besides INSERT, UPDATE, DELETE, REPLACE and DDL) for up to this many seconds, never kills 'Binlog Dump GTID' or spare_users sessions, and does not wait at all when the writer lease runs out",
        );
        if clamped < kill_retries {
            notes.at(
                loc,
                "max_kill_retries",
                NoteKind::Changed,
                format!("lowered from {kill_retries} to {max}: ha waits at most {max} one-second rounds for in-flight writes (the writer role waits meanwhile)"),
            );
        }
    }
    if cluster.monitor_user != agent_user.text {
        y.field(
            0,
            "spare_users",
            &format!("[{}]", quoted(&cluster.monitor_user)),
            None,
        );
    }
    y.line("");
    y.line(&format!(
        "# Mutual TLS: this host's certificate from `ha-control certs issue --dir {TLS_DIR} {}`.",
        view.host
    ));
    y.line("tls:");
    y.line(&format!("  ca_file: {TLS_DIR}/ca.crt"));
    y.line(&format!("  cert_file: {TLS_DIR}/{}.crt", view.host));
    y.line(&format!("  key_file: {TLS_DIR}/{}.key", view.host));
    y.line("  monitor_identity: monitor");

    if let Err(errors) = ha_config::AgentConfig::parse(&y.text, out) {
        for p in y.problems(out, &errors) {
            problems.push(p);
        }
        return None;
    }
    Some(y.text)
}

/// The host's address and ports must be the same in its mmm_agent.conf as in the monitor's.
fn agrees(view: &AgentView<'_>, s: &Section, host: &HostInfo, problems: &mut Problems) {
    let mine = |key: &str| s.get(key);
    let differs = |v: &Value, theirs: String, problems: &mut Problems| {
        problems.push(Problem::at(
            &v.loc,
            format!(
                "{} here, {theirs} in the monitor's configuration{}: mysql-mmm's monitor and agent must agree",
                v.text,
                host.loc.as_ref().map(|l| format!(" (<host {}> at {l})", view.host)).unwrap_or_default()
            ),
        ));
    };
    if let Some(v) = mine("ip") {
        if v.text.parse::<IpAddr>().ok() != Some(host.ip) {
            differs(v, host.ip.to_string(), problems);
        }
    }
    for (key, theirs, default) in [
        ("agent_port", host.agent_port, 9989),
        ("mysql_port", host.mysql_port, 3306),
    ] {
        match mine(key) {
            Some(v) if v.text.parse::<u16>().ok() != Some(theirs) => {
                differs(v, theirs.to_string(), problems)
            }
            Some(_) => {}
            None if theirs != default => problems.push(Problem::in_file(
                view.file,
                format!("{key}: not set for {} (so {default}), {theirs} in the monitor's configuration: mysql-mmm's monitor and agent must agree", view.host),
            )),
            None => {}
        }
    }
}

/// The IPv4 addresses of every role that lists `name`, in config order, each once.
fn role_ips(name: &str, cluster: &Cluster, problems: &mut Problems) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in cluster
        .roles
        .iter()
        .filter(|r| r.hosts.iter().any(|h| h == name))
    {
        for ip in &r.ips {
            match ip {
                IpAddr::V4(v4) => {
                    if !out.contains(&v4.to_string()) {
                        out.push(v4.to_string());
                    }
                }
                IpAddr::V6(_) => problems.push(Problem::at(
                    &r.ips_loc,
                    format!("ips: {ip}: ha-agent adds IPv4 role addresses only"),
                )),
            }
        }
    }
    out
}

/// Every host's MySQL address (`cluster_hosts`); ha-agent replicates over IPv4 only.
fn cluster_hosts(cluster: &Cluster, problems: &mut Problems) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for h in &cluster.hosts {
        if h.ip.is_ipv6() {
            let msg = format!(
                "host {}: {}: ha-agent's cluster_hosts take IPv4 addresses only",
                h.name, h.ip
            );
            problems.push(Problem::at(&h.ip_loc, msg));
        }
        out.push((
            h.name.clone(),
            std::net::SocketAddr::new(h.ip, h.mysql_port).to_string(),
        ));
    }
    out
}

/// One `changed` line per host whose agent or replication account differs from another host's:
/// mysql-mmm used the *other* host's account when its agent talked to that host, ha uses the
/// agent's own account everywhere.
pub fn differing_accounts(accounts: &Accounts, notes: &mut Notes) {
    let agent = "ha-agent uses this account on every host (SHOW MASTER STATUS on a new master), where mysql-mmm's agent used each host's own agent_user: it must exist on every host";
    let repl = "ha-agent's replicas log in to any new master with their own replication_user, where mysql-mmm used the new master's: it must exist on every host";
    for (list, key, why) in [
        (&accounts.agent, "agent_user", agent),
        (&accounts.replication, "replication_user", repl),
    ] {
        let first = list.first().map(|(u, _)| u);
        if list.iter().any(|(u, _)| Some(u) != first) {
            for (_, loc) in list {
                notes.at(loc, key, NoteKind::Changed, why);
            }
        }
    }
}
