//! mmm_mon.conf (with mmm_common.conf) → ha's `monitor.yaml`.

use std::net::IpAddr;
use std::path::Path;

use super::notes::{NoteKind, Notes};
use super::parse::{Loc, MmmConfig, Problem, Section, CHECK_NAMES};
use super::values::{self as val, or_default, Problems};
use super::yaml::{list, quoted, scalar, secs, Yaml};

/// Where ha's TLS material is expected (`ha-control certs --dir`).
pub const TLS_DIR: &str = "/etc/ha/tls";
/// ha's status file (mysql-mmm's is neither read nor written).
pub const STATUS_PATH: &str = "/var/lib/ha/status.json";

/// One host as the monitor sees it.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub name: String,
    pub loc: Option<Loc>,
    pub ip: IpAddr,
    pub ip_loc: Loc,
    pub mysql_port: u16,
    pub agent_port: u16,
}

/// One role as the monitor sees it.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub name: String,
    pub hosts: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub ips_loc: Loc,
}

/// What the agents' files need from the monitor's configuration.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub hosts: Vec<HostInfo>,
    pub roles: Vec<RoleInfo>,
    pub monitor_user: String,
}

/// Converts the monitor's view; `file` is the mmm_mon.conf given, `out` the file to be written.
pub fn convert(
    cfg: &MmmConfig,
    file: &str,
    out: &str,
    admins: &[String],
    notes: &mut Notes,
    problems: &mut Problems,
) -> Option<(Cluster, String)> {
    let mut y = Yaml::default();
    let mut cluster = Cluster::default();
    let before = problems.0.len();

    y.line("# ha-monitor configuration converted from mysql-mmm by `ha-control import-mmm`");
    y.line(&format!("# (from {file} and its includes). Check it with"));
    y.line(
        "# `ha-monitor --check-config FILE`, install it as /etc/ha/monitor.yaml (root:ha, 0640).",
    );
    y.line("");
    match cfg.globals.get("active_master_role") {
        Some(v) => {
            let role = problems.take(val::text(v, "active_master_role"));
            y.field(
                0,
                "active_master_role",
                &scalar(&role.unwrap_or_default()),
                Some(&v.loc),
            );
        }
        None => problems.push(Problem::in_file(
            file,
            "active_master_role: missing (mysql-mmm's monitor requires it too)",
        )),
    }
    y.line("");
    monitor_section(cfg, file, &mut y, notes, problems);
    credentials(cfg, file, &mut y, &mut cluster, problems);
    hosts(cfg, file, &mut y, &mut cluster, problems);
    roles(cfg, file, &mut y, &mut cluster, notes, problems);
    checks(cfg, &mut y, notes, problems);
    tls(&mut y, &cluster, admins, out, notes);

    if problems.0.len() > before {
        return None;
    }
    if let Err(errors) = ha_config::MonitorConfig::parse(&y.text, out) {
        for p in y.problems(out, &errors) {
            problems.push(p);
        }
        return None;
    }
    Some((cluster, y.text))
}

fn monitor_section(
    cfg: &MmmConfig,
    file: &str,
    y: &mut Yaml,
    notes: &mut Notes,
    problems: &mut Problems,
) {
    let Some(m) = cfg.monitor.as_ref() else {
        problems.push(Problem::in_file(
            file,
            "<monitor> section missing (mysql-mmm's monitor requires it too)",
        ));
        return;
    };
    y.line("monitor:");
    y.origin("monitor", m.loc.as_ref());
    let place = "<monitor>";
    if let Some(v) = problems.take(val::required(m, "ip", place, file)) {
        if let Some(ip) = problems.take(val::ip(v, "ip")) {
            y.field(2, "monitor.ip", &scalar(&ip.to_string()), Some(&v.loc));
        }
    }
    let (port, loc) = or_default(Some(m), "port", 9988, val::port, problems);
    y.field(2, "monitor.port", &port.to_string(), loc.as_ref());
    let status_loc = m.get("status_path").map(|v| v.loc.clone());
    y.field(2, "monitor.status_path", STATUS_PATH, status_loc.as_ref());
    if let Some(v) = m.get("status_path") {
        notes.at(
            &v.loc,
            "status_path",
            NoteKind::Changed,
            format!(
                "{STATUS_PATH}: ha keeps its own status file (JSON); mysql-mmm's {} is neither read nor written (a first start without it takes states and roles from the hosts, as mysql-mmm does without its file)",
                v.text
            ),
        );
    }
    if let Some(v) = problems.take(val::required(m, "ping_ips", place, file)) {
        if let Some(ips) = problems.take(val::ips(v, "ping_ips")) {
            let ips: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
            y.field(2, "monitor.ping_ips", &list(&ips), Some(&v.loc));
        }
    }
    for (key, default) in [("ping_interval", 1.0), ("flap_duration", 3600.0)] {
        let (v, loc) = or_default(Some(m), key, default, val::seconds, problems);
        y.field(2, &format!("monitor.{key}"), &secs(v), loc.as_ref());
    }
    let (count, loc) = or_default(Some(m), "flap_count", 3, val::count, problems);
    y.field(2, "monitor.flap_count", &count.to_string(), loc.as_ref());
    let (auto, loc) = or_default(Some(m), "auto_set_online", 0.0, val::seconds, problems);
    y.field(2, "monitor.auto_set_online", &secs(auto), loc.as_ref());
    kill_host_bin(m, y, notes, problems);
    let (careful, loc) = or_default(Some(m), "careful_startup", true, val::boolean, problems);
    y.field(
        2,
        "monitor.careful_startup",
        &careful.to_string(),
        loc.as_ref(),
    );
    let modes = ["active", "manual", "wait", "passive"];
    let (mode, loc) = or_default(
        Some(m),
        "mode",
        "active".into(),
        |v, k| val::choice(v, k, &modes),
        problems,
    );
    y.field(2, "monitor.mode", &mode, loc.as_ref());
    if let (Some(loc), "passive") = (&loc, mode.as_str()) {
        notes.at(
            loc,
            "mode",
            NoteKind::Changed,
            "in PASSIVE mode ha sends nothing to the agents, so it grants and renews no writer lease: a writer that holds one demotes itself after writer_lease (mysql-mmm left it writable)",
        );
    }
    let (wait, loc) = or_default(
        Some(m),
        "wait_for_other_master",
        120.0,
        val::seconds,
        problems,
    );
    y.field(
        2,
        "monitor.wait_for_other_master",
        &secs(wait),
        loc.as_ref(),
    );
    y.line("  # ha's additions (mysql-mmm has no equivalent), at their defaults:");
    y.line("  agent_period: 0.5             # every agent gets its desired state this often (lease renewal)");
    y.line("  agent_timeout: 1              # deadline of one agent call");
    y.line("  writer_lease: 5               # the writer demotes itself when not renewed for this long");
    y.line("");
}

/// `kill_host_bin`: a relative name resolved as mmm does (`<bin_path>/monitor/<name>`).
fn kill_host_bin(m: &Section, y: &mut Yaml, notes: &mut Notes, problems: &mut Problems) {
    let bin_path = m.get("bin_path");
    let Some(v) = m.get("kill_host_bin") else {
        if let Some(b) = bin_path {
            let default = Path::new(&b.text).join("monitor/kill_host");
            notes.at(
                &b.loc,
                "kill_host_bin",
                NoteKind::Changed,
                format!(
                    "not set: mysql-mmm ran {} if that file existed (none is shipped); ha runs no fencing hook unless monitor.kill_host_bin names one",
                    default.display()
                ),
            );
        }
        y.field(2, "monitor.kill_host_bin", "\"\"", None);
        return;
    };
    let path = if v.text.starts_with('/') {
        v.text.clone()
    } else {
        match bin_path {
            Some(b) => Path::new(&b.text)
                .join("monitor")
                .join(&v.text)
                .display()
                .to_string(),
            None => {
                problems.push(Problem::at(
                    &v.loc,
                    format!("kill_host_bin: '{}' is relative and <monitor> has no bin_path to resolve it against (mysql-mmm requires bin_path)", v.text),
                ));
                return;
            }
        }
    };
    y.field(2, "monitor.kill_host_bin", &scalar(&path), Some(&v.loc));
    let resolved = if path == v.text {
        String::new()
    } else {
        format!("{path} (resolved against bin_path as mysql-mmm does); ")
    };
    notes.at(
        &v.loc,
        "kill_host_bin",
        NoteKind::Changed,
        format!("{resolved}ha takes exit status 0 as \"the host is fenced\" and then promotes a new writer without waiting for the old writer's lease, so the program must exit 0 only when the host surely cannot write; it is killed after 30 s and never run in MANUAL, WAIT or PASSIVE mode"),
    );
}

fn credentials(
    cfg: &MmmConfig,
    file: &str,
    y: &mut Yaml,
    cluster: &mut Cluster,
    problems: &mut Problems,
) {
    // ha's checks log in with one account on every host; mmm had one per host section.
    let mut first: Option<(&str, &str, Loc)> = None;
    for h in &cfg.hosts {
        let place = format!("<host {}>", h.name);
        let Some(user) = problems.take(val::required(&h.section, "monitor_user", &place, file))
        else {
            continue;
        };
        let password = h.section.get("monitor_password");
        let pw = password.map(|p| p.text.as_str()).unwrap_or("");
        match &first {
            None => {
                first = Some((&user.text, pw, user.loc.clone()));
                y.line("credentials:");
                y.field(
                    2,
                    "credentials.monitor_user",
                    &quoted(&user.text),
                    Some(&user.loc),
                );
                y.field(
                    2,
                    "credentials.monitor_password",
                    &quoted(pw),
                    password.map(|p| &p.loc),
                );
                y.line("");
                cluster.monitor_user = user.text.clone();
            }
            Some((u, p, loc)) if *u != user.text || *p != pw => {
                let at = if *u != user.text {
                    &user.loc
                } else {
                    password.map(|p| &p.loc).unwrap_or(&user.loc)
                };
                problems.push(Problem::at(
                    at,
                    format!("monitor_user/monitor_password of {place} differ from those of the first host ({loc}): ha's checks log in with one account on every host; use the same account everywhere"),
                ));
            }
            Some(_) => {}
        }
    }
}

fn hosts(
    cfg: &MmmConfig,
    file: &str,
    y: &mut Yaml,
    cluster: &mut Cluster,
    problems: &mut Problems,
) {
    if cfg.hosts.is_empty() {
        problems.push(Problem::in_file(file, "no <host NAME> section"));
        return;
    }
    y.line("hosts:");
    for h in &cfg.hosts {
        let s = &h.section;
        let p = format!("hosts.{}", h.name);
        let place = format!("<host {}>", h.name);
        y.line(&format!("  {}:", scalar(&h.name)));
        y.origin(&p, s.loc.as_ref());
        if !ha_config::valid_identity(&h.name) {
            let msg = format!("host name '{}' cannot be the identity of its TLS certificate (a DNS name: letters, digits, '-' and '.', not digits only): rename the host in a copy of the mysql-mmm files", h.name);
            problems.push(match &s.loc {
                Some(loc) => Problem::at(loc, msg),
                None => Problem::in_file(file, msg),
            });
        }
        let ip = problems
            .take(val::required(s, "ip", &place, file))
            .and_then(|v| {
                problems
                    .take(val::ip(v, "ip"))
                    .map(|ip| (ip, v.loc.clone()))
            });
        if let Some((ip, loc)) = &ip {
            y.field(4, &format!("{p}.ip"), &scalar(&ip.to_string()), Some(loc));
        }
        if let Some(v) = problems.take(val::required(s, "mode", &place, file)) {
            if let Some(mode) = problems.take(val::choice(v, "mode", &["master", "slave"])) {
                y.field(4, &format!("{p}.mode"), &mode, Some(&v.loc));
            }
        }
        if let Some(v) = s.get("peer") {
            y.field(4, &format!("{p}.peer"), &scalar(&v.text), Some(&v.loc));
        }
        let (mysql_port, loc) = or_default(Some(s), "mysql_port", 3306, val::port, problems);
        y.field(
            4,
            &format!("{p}.mysql_port"),
            &mysql_port.to_string(),
            loc.as_ref(),
        );
        let (agent_port, loc) = or_default(Some(s), "agent_port", 9989, val::port, problems);
        y.field(
            4,
            &format!("{p}.agent_port"),
            &agent_port.to_string(),
            loc.as_ref(),
        );
        if let Some((ip, ip_loc)) = ip {
            cluster.hosts.push(HostInfo {
                name: h.name.clone(),
                loc: s.loc.clone(),
                ip,
                ip_loc,
                mysql_port,
                agent_port,
            });
        }
    }
    y.line("");
}

fn roles(
    cfg: &MmmConfig,
    file: &str,
    y: &mut Yaml,
    cluster: &mut Cluster,
    notes: &mut Notes,
    problems: &mut Problems,
) {
    if cfg.roles.is_empty() {
        problems.push(Problem::in_file(file, "no <role NAME> section"));
        return;
    }
    y.line("roles:");
    for r in &cfg.roles {
        let s = &r.section;
        let p = format!("roles.{}", r.name);
        let place = format!("<role {}>", r.name);
        y.line(&format!("  {}:", scalar(&r.name)));
        y.origin(&p, s.loc.as_ref());
        let mode = problems
            .take(val::required(s, "mode", &place, file))
            .and_then(|v| {
                let m = problems.take(val::choice(v, "mode", &["exclusive", "balanced"]));
                if let Some(m) = &m {
                    y.field(4, &format!("{p}.mode"), m, Some(&v.loc));
                }
                m
            });
        let hosts = problems
            .take(val::required(s, "hosts", &place, file))
            .and_then(|v| {
                let h = problems.take(val::names(v, "hosts"));
                if let Some(h) = &h {
                    y.field(4, &format!("{p}.hosts"), &list(h), Some(&v.loc));
                }
                h
            });
        let ips = problems
            .take(val::required(s, "ips", &place, file))
            .and_then(|v| {
                let ips = problems.take(val::ips(v, "ips"))?;
                if mode.as_deref() == Some("exclusive") && ips.len() > 1 {
                    problems.push(Problem::at(
                        &v.loc,
                        format!("ips: an exclusive role has exactly one IP in ha (mysql-mmm accepted several and then handled them inconsistently, docs/product.md F5); found {}", ips.len()),
                    ));
                }
                let text: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
                y.field(4, &format!("{p}.ips"), &list(&text), Some(&v.loc));
                Some((ips, v.loc.clone()))
            });
        if let Some(v) = s.get("prefer") {
            if mode.as_deref() == Some("balanced") {
                notes.at(
                    &v.loc,
                    "prefer",
                    NoteKind::NotMapped,
                    format!("mysql-mmm ignores prefer on a balanced role and ha refuses it; role {} has no preferred host", r.name),
                );
            } else {
                y.field(4, &format!("{p}.prefer"), &scalar(&v.text), Some(&v.loc));
            }
        }
        if let (Some(hosts), Some((ips, ips_loc))) = (hosts, ips) {
            cluster.roles.push(RoleInfo {
                name: r.name.clone(),
                hosts,
                ips,
                ips_loc,
            });
        }
    }
    y.line("");
}

fn checks(cfg: &MmmConfig, y: &mut Yaml, notes: &mut Notes, problems: &mut Problems) {
    y.line("# The four checks, each written out in full (<check default> applied).");
    y.line("checks:");
    // (where, old timeout, new timeout, trap_period) → the checks concerned: one line each.
    type Lowered = ((Loc, String, String, String), Vec<&'static str>);
    let mut lowered: Vec<Lowered> = Vec::new();
    for name in CHECK_NAMES {
        let s = cfg.check(name);
        let p = format!("checks.{name}");
        y.line(&format!("  {name}:"));
        y.origin(&p, s.and_then(|s| s.loc.as_ref()));
        let (period, period_loc) = or_default(s, "check_period", 5.0, val::seconds, problems);
        let (trap, trap_loc) = or_default(s, "trap_period", 10.0, val::seconds, problems);
        let (timeout, timeout_loc) = or_default(s, "timeout", 2.0, val::seconds, problems);
        y.field(
            4,
            &format!("{p}.check_period"),
            &secs(period),
            period_loc.as_ref(),
        );
        y.field(
            4,
            &format!("{p}.trap_period"),
            &secs(trap),
            trap_loc.as_ref(),
        );
        if let Some(loc) = &period_loc {
            notes.at(
                loc,
                "check_period",
                NoteKind::Changed,
                "ha runs each check every check_period on every host, all hosts at once; mysql-mmm slept check_period after checking the hosts one after another, so its real period was longer",
            );
        }
        if timeout > period && period > 0.0 {
            // Lowering the timeout keeps the sampling rate and the trap period, hence the
            // detection time; raising check_period would delay detection instead.
            let at = timeout_loc.as_ref().or(period_loc.as_ref());
            if let Some(loc) = at {
                let key = (loc.clone(), secs(timeout), secs(period), secs(trap));
                match lowered.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, names)) => names.push(name),
                    None => lowered.push((key, vec![name])),
                }
            }
            y.field(4, &format!("{p}.timeout"), &secs(period), at);
        } else {
            y.field(
                4,
                &format!("{p}.timeout"),
                &secs(timeout),
                timeout_loc.as_ref(),
            );
        }
        if let (Some(loc), "ping") = (&timeout_loc, name) {
            notes.at(
                loc,
                "timeout",
                NoteKind::Changed,
                "ha's ping check waits up to timeout for the ICMP echo; mysql-mmm's waited a fixed 0.5 s and ignored timeout",
            );
        }
        if name == "rep_backlog" {
            let (max, loc) = or_default(s, "max_backlog", 60.0, val::seconds, problems);
            y.field(4, &format!("{p}.max_backlog"), &secs(max), loc.as_ref());
        }
    }
    y.line("");
    for ((loc, from, to, trap), names) in lowered {
        let checks = match names.as_slice() {
            [one] => format!("the {one} check"),
            [rest @ .., last] => format!("the {} and {last} checks", rest.join(", ")),
            [] => continue,
        };
        notes.at(
            &loc,
            "timeout",
            NoteKind::Changed,
            format!("lowered from {from} to {to} for {checks}: ha refuses a timeout longer than check_period ({to}); check_period and trap_period ({trap}) are kept, so failures are detected as fast as before, but an answer slower than {to} s now counts as a failure"),
        );
    }
}

fn tls(y: &mut Yaml, cluster: &Cluster, admins: &[String], out: &str, notes: &mut Notes) {
    let hosts: Vec<&str> = cluster.hosts.iter().map(|h| h.name.as_str()).collect();
    let mut ids = vec!["monitor"];
    ids.extend(hosts.iter().copied());
    ids.extend(admins.iter().map(String::as_str));
    let issue = format!("ha-control certs issue --dir {TLS_DIR} {}", ids.join(" "));
    y.line("# Mutual TLS on the control port and towards every agent (mysql-mmm's <socket> is not");
    y.line(
        "# carried over). Create the certificates on the monitor host, then copy ca.crt and each",
    );
    y.line("# host's NAME.crt and NAME.key to that host's /etc/ha/tls/:");
    y.line(&format!("#   ha-control certs ca --dir {TLS_DIR}"));
    y.line(&format!("#   {issue}"));
    y.line("tls:");
    y.line(&format!("  ca_file: {TLS_DIR}/ca.crt"));
    y.line(&format!("  cert_file: {TLS_DIR}/monitor.crt"));
    y.line(&format!("  key_file: {TLS_DIR}/monitor.key"));
    y.line(
        "  # Operator certificates allowed every ha-control command, and those allowed only show,",
    );
    y.line("  # checks, mode and ping:");
    y.line(&format!("  admins: {}", list(admins)));
    y.line("  readers: []");
    let who = if admins.is_empty() {
        "no operator may run ha-control commands until tls.admins lists an identity (--admin NAME)"
            .to_string()
    } else {
        format!("ha-control commands are allowed to {}", admins.join(", "))
    };
    notes.added(
        out,
        "tls",
        format!("mutual TLS (mysql-mmm had no authentication, docs/product.md F13): create the files with `ha-control certs ca --dir {TLS_DIR}` and `{issue}`; {who}"),
    );
    notes.added(
        out,
        "writer_lease",
        "5 s: the writer demotes itself (read_only=1, writer IP removed) when ha-monitor has not renewed its role for that long, e.g. while ha-monitor is stopped or PASSIVE; mysql-mmm left it writable for ever (docs/product.md F9)",
    );
}
