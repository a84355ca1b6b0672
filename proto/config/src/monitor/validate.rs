//! Semantic checks of a parsed `monitor.yaml`: each problem is reported with its field path.

use std::collections::HashMap;
use std::net::IpAddr;

use ha_core::Check;

use super::{Checks, Host, HostMode, MonitorSection, Role, RoleMode};
use crate::error::Collector;
use crate::tls::{check_identity, check_section};
use crate::{MonitorTls, TlsSetting};

pub(super) fn validate_monitor_section(m: &MonitorSection, c: &mut Collector) {
    for (field, value) in [
        ("ping_interval", m.ping_interval),
        ("agent_period", m.agent_period),
        ("agent_timeout", m.agent_timeout),
        ("flap_duration", m.flap_duration),
    ] {
        if value.is_zero() {
            c.error(format!("monitor.{field}"), "must be greater than 0");
        }
    }
    if let Some(sock) = &m.kill_host_socket {
        if !sock.is_absolute() {
            c.error("monitor.kill_host_socket", "must be an absolute path");
        }
        if m.kill_host_bin.is_empty() {
            c.error(
                "monitor.kill_host_socket",
                "needs monitor.kill_host_bin: the helper behind the socket runs it",
            );
        }
    }
    if m.ping_ips.is_empty() {
        c.error(
            "monitor.ping_ips",
            "needs at least one IP for the network self-check",
        );
    }
    // A renewal echoes the token of the previous reply, which is up to one agent_period old,
    // and the next renewal comes one agent_period (plus a call of up to agent_timeout) later.
    let renewal = m.agent_period.0 * 2 + m.agent_timeout.0;
    if !m.writer_lease.is_zero() && m.writer_lease.0 <= renewal {
        c.error(
            "monitor.writer_lease",
            format!(
                "must be longer than 2 x agent_period + agent_timeout (2 x {} + {}), or the \
                 writer would fence itself between two renewals; use 0 to disable the lease",
                m.agent_period, m.agent_timeout
            ),
        );
    }
    if m.status_path.as_os_str().is_empty() {
        c.error("monitor.status_path", "must not be empty");
    }
    if m.port == 0 {
        c.error(
            "monitor.port",
            "must be a port between 1 and 65535 (default 9988)",
        );
    }
}

pub(super) fn validate_names(hosts: &[Host], roles: &[Role], c: &mut Collector) {
    if hosts.is_empty() {
        c.error("hosts", "at least one host is required");
    }
    if roles.is_empty() {
        c.error("roles", "at least one role is required");
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    };
    for h in hosts {
        if !valid(&h.name) {
            c.error(
                format!("hosts.{}", h.name),
                "a host name may only contain letters, digits, '_' and '-'",
            );
        }
    }
    for r in roles {
        if !valid(&r.name) {
            c.error(
                format!("roles.{}", r.name),
                "a role name may only contain letters, digits, '_' and '-'",
            );
        }
    }
}

pub(super) fn validate_hosts(hosts: &[Host], c: &mut Collector) {
    let find = |name: &str| hosts.iter().find(|h| h.name == name);
    for h in hosts {
        let path = format!("hosts.{}.peer", h.name);
        match (&h.mode, &h.peer) {
            (HostMode::Master, None) => c.error(
                path,
                "a master needs a peer (the other master it replicates with)",
            ),
            (_, Some(peer)) if *peer == h.name => c.error(path, "a host cannot be its own peer"),
            (_, Some(peer)) => match find(peer) {
                None => c.error(path, format!("'{peer}' is not a host")),
                Some(p) if h.mode == HostMode::Master && p.peer.as_deref() != Some(&h.name) => c
                    .error(
                        path,
                        format!(
                            "peers must be mutual: '{peer}' has peer {}, not '{}'",
                            p.peer
                                .as_deref()
                                .map(|s| format!("'{s}'"))
                                .unwrap_or_else(|| "none".into()),
                            h.name
                        ),
                    ),
                Some(_) => {}
            },
            (HostMode::Slave, None) => {}
        }
        for (field, port) in [("mysql_port", h.mysql_port), ("agent_port", h.agent_port)] {
            if port == 0 {
                c.error(
                    format!("hosts.{}.{field}", h.name),
                    "must be a port between 1 and 65535",
                );
            }
        }
    }
}

pub(super) fn validate_roles(hosts: &[Host], roles: &[Role], active: &str, c: &mut Collector) {
    let is_host = |name: &str| hosts.iter().any(|h| h.name == name);
    for r in roles {
        let p = format!("roles.{}", r.name);
        if r.hosts.is_empty() {
            c.error(format!("{p}.hosts"), "a role needs at least one host");
        }
        for (i, h) in r.hosts.iter().enumerate() {
            if !is_host(h) {
                c.error(format!("{p}.hosts[{i}]"), format!("'{h}' is not a host"));
            } else if r.hosts[..i].contains(h) {
                c.error(format!("{p}.hosts[{i}]"), format!("'{h}' is listed twice"));
            }
        }
        if r.ips.is_empty() {
            c.error(format!("{p}.ips"), "a role needs at least one IP");
        }
        if r.mode == RoleMode::Exclusive && r.ips.len() > 1 {
            c.error(
                format!("{p}.ips"),
                format!(
                    "an exclusive role needs exactly one IP, found {}",
                    r.ips.len()
                ),
            );
        }
        if let Some(prefer) = &r.prefer {
            if r.mode == RoleMode::Balanced {
                c.error(
                    format!("{p}.prefer"),
                    "prefer is only allowed for exclusive roles",
                );
            } else if !r.hosts.contains(prefer) {
                c.error(
                    format!("{p}.prefer"),
                    format!(
                        "'{prefer}' is not among the role's hosts ({})",
                        r.hosts.join(", ")
                    ),
                );
            }
        }
    }
    match roles.iter().find(|r| r.name == active) {
        None => c.error(
            "active_master_role",
            format!(
                "'{active}' is not a role (roles: {})",
                roles
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Some(r) => {
            if r.mode != RoleMode::Exclusive {
                c.error(
                    format!("roles.{active}.mode"),
                    "the active master role must be exclusive",
                );
            }
            if r.hosts.len() > 2 {
                c.error(
                    format!("roles.{active}.hosts"),
                    format!(
                        "the active master role may list at most two hosts (the two masters), found {}",
                        r.hosts.len()
                    ),
                );
            }
            for h in &r.hosts {
                if let Some(host) = hosts.iter().find(|x| &x.name == h) {
                    if host.mode != HostMode::Master {
                        c.error(
                            format!("roles.{active}.hosts"),
                            format!("'{h}' holds the active master role but its mode is slave"),
                        );
                    }
                }
            }
        }
    }
}

pub(super) fn validate_ips(hosts: &[Host], roles: &[Role], c: &mut Collector) {
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    let mut note = |ip: IpAddr, path: String, c: &mut Collector| {
        if let Some(first) = seen.get(&ip) {
            c.error(path, format!("IP {ip} is already used by {first}"));
        } else {
            seen.insert(ip, path);
        }
    };
    for h in hosts {
        if h.ip.is_unspecified() || h.ip.is_multicast() {
            c.error(
                format!("hosts.{}.ip", h.name),
                format!("{} is not a host address", h.ip),
            );
        }
        note(h.ip, format!("hosts.{}.ip", h.name), c);
    }
    for r in roles {
        for (i, ip) in r.ips.iter().enumerate() {
            let path = format!("roles.{}.ips[{i}]", r.name);
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                c.error(path.clone(), format!("{ip} cannot be a virtual IP"));
            } else if ip.is_ipv6() {
                c.error(
                    path.clone(),
                    format!("{ip}: IPv6 role addresses are not supported (ha-agent manages IPv4 addresses)"),
                );
            }
            note(*ip, path, c);
        }
    }
}

pub(super) fn validate_checks(checks: &Checks, c: &mut Collector) {
    for kind in Check::ALL {
        let cfg = checks.get(kind);
        let p = format!("checks.{}", kind.name());
        if cfg.check_period.is_zero() {
            c.error(format!("{p}.check_period"), "must be greater than 0");
        }
        if cfg.timeout.is_zero() {
            c.error(format!("{p}.timeout"), "must be greater than 0");
        }
        if !(1..=10).contains(&cfg.attempts) {
            c.error(
                format!("{p}.attempts"),
                format!("must be between 1 and 10, got {}", cfg.attempts),
            );
        }
        if cfg.timeout > cfg.check_period && !cfg.check_period.is_zero() {
            c.error(
                format!("{p}.timeout"),
                format!(
                    "the timeout ({}) is longer than the check period ({})",
                    cfg.timeout, cfg.check_period
                ),
            );
        }
    }
}

pub(super) fn validate_tls(
    tls: Option<&TlsSetting<MonitorTls>>,
    hosts: &[Host],
    c: &mut Collector,
) {
    let Some(t) = check_section(c, tls) else {
        return;
    };
    for (i, name) in t.admins.iter().enumerate() {
        check_identity(c, &format!("tls.admins[{i}]"), name);
    }
    for (i, name) in t.readers.iter().enumerate() {
        check_identity(c, &format!("tls.readers[{i}]"), name);
    }
    // Each agent's certificate is checked against its host name.
    for h in hosts {
        check_identity(c, &format!("hosts.{}", h.name), &h.name);
    }
}
