//! `show`: mmm_control's status listing, byte for byte.
//!
//! mysql-mmm builds the reply as (docs/mmm-behaviour.md §6.2):
//! 1. in PASSIVE mode, `--- Monitor is in PASSIVE MODE ---` and `Cause: <cause>`, after which
//!    *every* line of that block — including each line of a multi-line cause — gets `# ` put in
//!    front (Perl `s/^/# /mg`);
//! 2. `# Warning: agent on host <h> is not reachable` for every host whose agent is down, hosts
//!    sorted, and ha's own `# Warning: semi-sync replication on the active master <h> fell back
//!    to asynchronous at <time>: …` while that fallback stands;
//! 3. `  <host>(<ip>) <mode>/<state>. Roles: <roles>` per host, hosts sorted, roles sorted and
//!    joined with `, ` (an empty list leaves `Roles: ` with its trailing space);
//! 4. one line per role that has a `prefer` host, in config order.
//!
//! Every line ends with `\n`; mmm_control then prints the reply followed by one more `\n`,
//! which [`crate::render::terminal`] adds. The monitor sends hosts sorted already; we sort again
//! so the output stays deterministic whatever the server does.

use ha_proto::{format_roles, HostInfo, HostMode, Mode, RoleInfo, ShowReply};

/// `master` / `slave`, as mysql-mmm prints a host's mode.
pub fn host_mode_name(mode: HostMode) -> &'static str {
    match mode {
        HostMode::Master => "master",
        HostMode::Slave => "slave",
        HostMode::Unspecified => "unknown",
    }
}

/// Puts `# ` in front of every line of `block` the way Perl's `s/^/# /mg` does: at the start
/// and after every newline that is not the last character.
///
/// So an empty line inside a cause becomes `# ` (with the space), and a cause ending in `\n`
/// produces a final `# ` line — exactly what mmm printed for the startup-conflict table.
pub fn comment_block(block: &str) -> String {
    let mut out = String::with_capacity(block.len() + 16);
    out.push_str("# ");
    let mut rest = block;
    while let Some(pos) = rest.find('\n') {
        out.push_str(&rest[..=pos]);
        rest = &rest[pos + 1..];
        if rest.is_empty() {
            return out;
        }
        out.push_str("# ");
    }
    out.push_str(rest);
    out
}

/// The passive banner (with its trailing newline), or nothing outside PASSIVE mode.
pub fn passive_banner(mode: Mode, cause: &str) -> String {
    if mode != Mode::Passive {
        return String::new();
    }
    comment_block(&format!(
        "--- Monitor is in PASSIVE MODE ---\nCause: {cause}\n"
    ))
}

/// One host line, without newline: `  db1(10.0.0.11) master/ONLINE. Roles: writer(10.0.0.160)`.
pub fn host_line(h: &HostInfo) -> String {
    format!(
        "  {}({}) {}/{}. Roles: {}",
        h.name,
        h.ip,
        host_mode_name(h.mode()),
        h.state().mmm_name(),
        format_roles(&h.roles)
    )
}

/// The preference line of a role, or `None` when it has no `prefer` host.
///
/// The current owner is the owner of the role's (only) IP; an empty owner means orphaned.
pub fn prefer_line(r: &RoleInfo) -> Option<String> {
    if r.prefer.is_empty() {
        return None;
    }
    let owner = r.owners.first().map(String::as_str).unwrap_or("");
    let (role, prefer) = (&r.name, &r.prefer);
    Some(if owner == prefer {
        format!("# Role {role} is assigned to it's preferred host {owner}.")
    } else if !owner.is_empty() {
        format!(
            "# Role {role} has {prefer} configured as it's preferred host but is assigned to {owner} at the moment."
        )
    } else {
        format!("# Role {role} has {prefer} configured as it's preferred host.")
    })
}

/// ha's warning when the active master fell back from semi-sync to asynchronous replication
/// (not a mysql-mmm line; mmm never read semi-sync status).
pub fn async_fallback_line(reply: &ShowReply) -> Option<String> {
    if reply.async_fallback_host.is_empty() {
        return None;
    }
    Some(format!(
        "# Warning: semi-sync replication on the active master {} fell back to asynchronous at {}: writes acknowledged since may be missing on every other host",
        reply.async_fallback_host,
        crate::timefmt::mmm_local(reply.async_fallback_since_unix_ms)
    ))
}

/// Redundant monitors: which monitor answered as leader (not a mysql-mmm line; a single
/// monitor sends no leader and prints nothing).
pub fn leader_line(reply: &ShowReply) -> Option<String> {
    if reply.leader.is_empty() {
        return None;
    }
    Some(format!(
        "# Monitor {} leads (term {})",
        reply.leader, reply.leader_term
    ))
}

/// The whole `show` reply as the mmm monitor would send it (every line `\n`-terminated).
pub fn render_show(reply: &ShowReply) -> String {
    let mut out = passive_banner(reply.mode(), &reply.passive_cause);
    if let Some(line) = leader_line(reply) {
        out.push_str(&line);
        out.push('\n');
    }

    let mut hosts: Vec<&HostInfo> = reply.hosts.iter().collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));

    for h in hosts.iter().filter(|h| !h.reachable_from.is_empty()) {
        out.push_str(&format!(
            "# {} unreachable from the monitor; reachable from {}\n",
            h.name,
            h.reachable_from.join(", ")
        ));
    }
    for h in hosts.iter().filter(|h| !h.agent_reachable) {
        out.push_str(&format!(
            "# Warning: agent on host {} is not reachable\n",
            h.name
        ));
    }
    if let Some(line) = async_fallback_line(reply) {
        out.push_str(&line);
        out.push('\n');
    }
    for h in &hosts {
        out.push_str(&host_line(h));
        out.push('\n');
    }
    for line in reply.roles.iter().filter_map(prefer_line) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_proto::{HostState, Role};

    fn host(
        name: &str,
        ip: &str,
        mode: HostMode,
        state: HostState,
        roles: &[(&str, &str)],
    ) -> HostInfo {
        HostInfo {
            name: name.into(),
            ip: ip.into(),
            mode: mode as i32,
            state: state as i32,
            roles: roles.iter().map(|(n, i)| Role::new(*n, *i)).collect(),
            agent_reachable: true,
            ..Default::default()
        }
    }

    fn role(name: &str, prefer: &str, owner: &str) -> RoleInfo {
        RoleInfo {
            name: name.into(),
            prefer: prefer.into(),
            owners: vec![owner.into()],
            ips: vec!["10.77.0.160".into()],
            ..Default::default()
        }
    }

    fn cluster() -> ShowReply {
        ShowReply {
            mode: Mode::Active as i32,
            // deliberately unsorted: the renderer sorts hosts and roles
            hosts: vec![
                host(
                    "db3",
                    "10.77.0.13",
                    HostMode::Slave,
                    HostState::Online,
                    &[("reader", "10.77.0.162")],
                ),
                host(
                    "db1",
                    "10.77.0.11",
                    HostMode::Master,
                    HostState::Online,
                    &[("writer", "10.77.0.160"), ("reader", "10.77.0.161")],
                ),
                host(
                    "db2",
                    "10.77.0.12",
                    HostMode::Master,
                    HostState::Online,
                    &[("reader", "10.77.0.163")],
                ),
            ],
            roles: vec![
                RoleInfo {
                    name: "writer".into(),
                    owners: vec!["db1".into()],
                    ..Default::default()
                },
                RoleInfo {
                    name: "reader".into(),
                    ..Default::default()
                },
            ],
            active_master: "db1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn normal() {
        assert_eq!(
            render_show(&cluster()),
            "  db1(10.77.0.11) master/ONLINE. Roles: reader(10.77.0.161), writer(10.77.0.160)\n\
             \x20 db2(10.77.0.12) master/ONLINE. Roles: reader(10.77.0.163)\n\
             \x20 db3(10.77.0.13) slave/ONLINE. Roles: reader(10.77.0.162)\n"
        );
    }

    #[test]
    fn empty_roles_keep_the_trailing_space() {
        let r = ShowReply {
            hosts: vec![host(
                "db1",
                "10.0.60.100",
                HostMode::Master,
                HostState::AwaitingRecovery,
                &[],
            )],
            ..Default::default()
        };
        assert_eq!(
            render_show(&r),
            "  db1(10.0.60.100) master/AWAITING_RECOVERY. Roles: \n"
        );
    }

    #[test]
    fn every_state_name() {
        for (state, name) in [
            (HostState::Online, "ONLINE"),
            (HostState::AdminOffline, "ADMIN_OFFLINE"),
            (HostState::HardOffline, "HARD_OFFLINE"),
            (HostState::AwaitingRecovery, "AWAITING_RECOVERY"),
            (HostState::ReplicationDelay, "REPLICATION_DELAY"),
            (HostState::ReplicationFail, "REPLICATION_FAIL"),
            (HostState::Unknown, "UNKNOWN"),
        ] {
            let h = host("db3", "10.0.0.3", HostMode::Slave, state, &[]);
            assert_eq!(
                host_line(&h),
                format!("  db3(10.0.0.3) slave/{name}. Roles: ")
            );
        }
    }

    #[test]
    fn a_writer_held_by_its_peers_is_said_so_first() {
        let mut r = cluster();
        let db1 = r.hosts.iter_mut().find(|h| h.name == "db1").expect("db1");
        db1.reachable_from = vec!["db2".into()];
        db1.agent_reachable = false;
        let out = render_show(&r);
        assert!(
            out.starts_with(
                "# db1 unreachable from the monitor; reachable from db2\n\
                 # Warning: agent on host db1 is not reachable\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn agent_warnings_come_first_and_sorted() {
        let mut r = cluster();
        for h in &mut r.hosts {
            if h.name != "db1" {
                h.agent_reachable = false;
            }
        }
        let out = render_show(&r);
        assert!(
            out.starts_with(
                "# Warning: agent on host db2 is not reachable\n\
                 # Warning: agent on host db3 is not reachable\n\
                 \x20 db1(10.77.0.11) master/ONLINE."
            ),
            "{out}"
        );
    }

    #[test]
    fn passive_single_line_cause() {
        let mut r = cluster();
        r.mode = Mode::Passive as i32;
        r.passive_cause = "Admin switched to passive mode.".into();
        r.hosts[0].agent_reachable = false; // db3
        assert_eq!(
            render_show(&r),
            "# --- Monitor is in PASSIVE MODE ---\n\
             # Cause: Admin switched to passive mode.\n\
             # Warning: agent on host db3 is not reachable\n\
             \x20 db1(10.77.0.11) master/ONLINE. Roles: reader(10.77.0.161), writer(10.77.0.160)\n\
             \x20 db2(10.77.0.12) master/ONLINE. Roles: reader(10.77.0.163)\n\
             \x20 db3(10.77.0.13) slave/ONLINE. Roles: reader(10.77.0.162)\n"
        );
    }

    #[test]
    fn passive_multi_line_cause_prefixes_every_line() {
        let mut r = ShowReply {
            mode: Mode::Passive as i32,
            hosts: vec![host(
                "db1",
                "10.0.0.1",
                HostMode::Master,
                HostState::Online,
                &[],
            )],
            ..Default::default()
        };
        // The startup-conflict cause: header, blank line, table ending in a newline.
        r.passive_cause = "Conflicting roles during startup:\n\nStartup status:\nRoles:\n".into();
        assert_eq!(
            render_show(&r),
            "# --- Monitor is in PASSIVE MODE ---\n\
             # Cause: Conflicting roles during startup:\n\
             # \n\
             # Startup status:\n\
             # Roles:\n\
             # \n\
             \x20 db1(10.0.0.1) master/ONLINE. Roles: \n"
        );
    }

    #[test]
    fn passive_with_empty_cause() {
        let r = ShowReply {
            mode: Mode::Passive as i32,
            ..Default::default()
        };
        assert_eq!(
            render_show(&r),
            "# --- Monitor is in PASSIVE MODE ---\n# Cause: \n"
        );
    }

    #[test]
    fn comment_block_matches_perl() {
        assert_eq!(comment_block(""), "# ");
        assert_eq!(comment_block("a"), "# a");
        assert_eq!(comment_block("a\n"), "# a\n");
        assert_eq!(comment_block("a\n\nb"), "# a\n# \n# b");
        assert_eq!(comment_block("a\n\n"), "# a\n# \n");
    }

    #[test]
    fn prefer_lines_in_all_three_forms_in_config_order() {
        let mut r = cluster();
        r.roles = vec![
            role("writer", "db1", "db1"),
            role("reader", "", "db2"),
            role("backup", "db2", "db3"),
            role("report", "db3", ""),
        ];
        let out = render_show(&r);
        let tail: Vec<&str> = out.lines().skip(3).collect();
        assert_eq!(
            tail,
            [
                "# Role writer is assigned to it's preferred host db1.",
                "# Role backup has db2 configured as it's preferred host but is assigned to db3 at the moment.",
                "# Role report has db3 configured as it's preferred host.",
            ]
        );
        assert!(out.ends_with(".\n"));
    }

    #[test]
    fn prefer_with_no_owner_list_counts_as_orphaned() {
        let r = RoleInfo {
            name: "writer".into(),
            prefer: "db1".into(),
            ..Default::default()
        };
        assert_eq!(
            prefer_line(&r).as_deref(),
            Some("# Role writer has db1 configured as it's preferred host.")
        );
    }

    #[test]
    fn leader_line_only_with_redundant_monitors() {
        let mut r = ShowReply::default();
        assert_eq!(leader_line(&r), None);
        assert!(!render_show(&r).contains("leads"));
        r.leader = "10.0.0.20:9988".into();
        r.leader_term = 42;
        assert!(render_show(&r).starts_with("# Monitor 10.0.0.20:9988 leads (term 42)\n"));
    }

    #[test]
    fn async_fallback_warning_after_the_agent_warnings() {
        let mut r = ShowReply::default();
        assert_eq!(async_fallback_line(&r), None);
        r.async_fallback_host = "db1".into();
        r.async_fallback_since_unix_ms = 1_714_564_800_000;
        let line = async_fallback_line(&r).expect("warning");
        assert!(
            line.starts_with(
                "# Warning: semi-sync replication on the active master db1 fell back to asynchronous at 2024/05/0"
            ),
            "{line}"
        );
        assert!(render_show(&r).starts_with(&line));
    }
}
