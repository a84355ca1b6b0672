//! One test per reply text of docs/mmm-behaviour.md §6.2 (texts copied character for character).

use crate::testkit::*;
use crate::*;

fn online() -> Kit {
    let mut k = Kit::online(spec3());
    k.at(120);
    k.step();
    k
}

fn set_online(h: &str) -> AdminCommand {
    AdminCommand::SetOnline(h.into())
}

fn set_offline(h: &str) -> AdminCommand {
    AdminCommand::SetOffline(h.into())
}

fn mv(role: &str, host: &str, force: bool) -> AdminCommand {
    AdminCommand::MoveRole {
        role: role.into(),
        host: host.into(),
        force,
    }
}

#[test]
fn ping_reply() {
    assert_eq!(
        Kit::new(spec3()).cmd(AdminCommand::Ping),
        "OK: Pinged successfully!"
    );
}

#[test]
fn set_online_replies() {
    let mut k = online();
    assert_eq!(k.cmd(set_online("dbx")), "ERROR: Unknown host name 'dbx'!");
    assert_eq!(
        k.cmd(set_online("db1")),
        "OK: This host is already ONLINE. Skipping command."
    );
    k.checks("db3", [false, true, true, true]);
    k.step();
    assert_eq!(
        k.cmd(set_online("db3")),
        "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment. It can't be switched to ONLINE."
    );
    // mysql without evidence yet (F11: no transition), so the host is still AWAITING_RECOVERY.
    let mut k = Kit::new(spec3());
    k.check("db3", Check::Ping, CheckOutcome::Ok);
    k.check("db3", Check::Mysql, CheckOutcome::Unknown);
    k.report("db3", AgentFacts::default());
    k.step();
    assert_eq!(
        k.cmd(set_online("db3")),
        "ERROR: Checks ping and/or mysql are not ok for host 'db3'. It can't be switched to ONLINE."
    );
}

#[test]
fn set_online_refused_while_peer_replication_fails() {
    let mut k = online();
    k.checks("db2", [false, true, true, true]);
    k.step();
    k.checks("db2", [true, true, true, true]);
    k.checks("db1", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db2"), HostState::AwaitingRecovery);
    assert_eq!(
        k.cmd(set_online("db2")),
        "ERROR: Some replication checks failed on peer 'db1'. We can't set 'db2' online now. Please, wait some time."
    );
}

#[test]
fn set_online_refused_when_agent_unreachable() {
    let mut k = Kit::new(spec3());
    k.checks("db3", [true; 4]);
    k.step();
    assert_eq!(
        k.cmd(set_online("db3")),
        "ERROR: Can't reach agent daemon on 'db3'! Can't switch its state!"
    );
}

#[test]
fn set_online_success_clears_flapping() {
    let mut k = Kit::new(spec3());
    k.checks("db3", [true; 4]);
    k.report("db3", AgentFacts::default());
    k.step();
    k.core.hosts[DB3].flap.flapping = true;
    assert_eq!(
        k.cmd(set_online("db3")),
        "OK: State of 'db3' changed to ONLINE. Now you can wait some time and check its new roles!"
    );
    assert!(!k.core.flapping("db3"));
    assert!(k.has_log("Admin changed state of 'db3' from AWAITING_RECOVERY to ONLINE"));
}

#[test]
fn set_offline_replies() {
    let mut k = online();
    assert_eq!(
        k.cmd(set_offline("nope")),
        "ERROR: Unknown host name 'nope'!"
    );
    assert_eq!(
        k.cmd(set_offline("db3")),
        "OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"
    );
    assert!(k.roles("db3").is_empty());
    assert_eq!(
        k.cmd(set_offline("db3")),
        "OK: This host is already ADMIN_OFFLINE. Skipping command."
    );
    k.checks("db2", [false, true, true, true]);
    k.step();
    assert_eq!(
        k.cmd(set_offline("db2")),
        "ERROR: Host 'db2' is 'HARD_OFFLINE' at the moment. It can't be switched to ADMIN_OFFLINE."
    );
    k.checks("db1", [true, true, true, true]);
    k.unreachable("db1");
    k.step();
    assert_eq!(
        k.cmd(set_offline("db1")),
        "ERROR: Can't reach agent daemon on 'db1'! Can't switch its state!"
    );
}

#[test]
fn mode_replies() {
    let mut k = online();
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Active)),
        "OK: Already in active mode."
    );
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Manual)),
        "OK: Switched into manual mode."
    );
    assert_eq!(k.core.mode().name(), "MANUAL");
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Manual)),
        "OK: Already in manual mode."
    );
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Passive)),
        "OK: Switched into passive mode."
    );
    assert_eq!(k.core.passive_cause(), "Admin switched to passive mode.");
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Passive)),
        "OK: Already in passive mode."
    );
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Active)),
        "OK: Switched into active mode."
    );
    assert_eq!(k.core.passive_cause(), "");
    assert!(k
        .cmd(AdminCommand::SetMode(Mode::Wait))
        .starts_with("ERROR: "));
}

#[test]
fn set_manual_from_wait_reports_already_manual_like_mmm() {
    let mut spec = spec3();
    spec.initial_mode = Mode::Wait;
    let mut k = Kit::new(spec);
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Manual)),
        "OK: Already in manual mode."
    );
    assert_eq!(k.core.mode(), Mode::Wait);
}

#[test]
fn move_role_replies() {
    let mut k = online();
    assert_eq!(
        k.cmd(mv("nope", "db2", false)),
        "ERROR: Unknown role name 'nope'!"
    );
    assert_eq!(
        k.cmd(mv("writer", "nope", false)),
        "ERROR: Unknown host name 'nope'!"
    );
    assert_eq!(
        k.cmd(mv("writer", "db3", false)),
        "ERROR: Host 'db3' can't handle role 'writer'. Only following hosts could: db1, db2"
    );
    assert_eq!(
        k.cmd(mv("writer", "db1", false)),
        "OK: Role is on 'db1' already. Skipping command."
    );
    assert_eq!(
        k.cmd(mv("writer", "db2", false)),
        "OK: Role 'writer' has been moved from 'db1' to 'db2'. Now you can wait some time and check new roles info!"
    );
    assert_eq!(k.core.active_master(), Some("db2"));
    let reader_holder = if k.roles("db3").is_empty() {
        "db1"
    } else {
        "db3"
    };
    assert_eq!(
        k.cmd(mv("reader", reader_holder, false)),
        format!("OK: Balanced role reader has been removed from host '{reader_holder}'. Now you can wait some time and check new roles info!")
    );
    k.checks("db1", [false, true, true, true]);
    k.step();
    assert_eq!(
        k.cmd(mv("writer", "db1", false)),
        "ERROR: Can't move role to host with state HARD_OFFLINE."
    );
}

#[test]
fn move_role_refused_in_passive_mode() {
    let mut k = online();
    k.cmd(AdminCommand::SetMode(Mode::Passive));
    assert_eq!(
        k.cmd(mv("writer", "db2", false)),
        "ERROR: This command is not allowed in passive mode"
    );
}

#[test]
fn move_role_refused_when_agent_unreachable() {
    let mut k = online();
    k.unreachable("db2");
    k.step();
    assert_eq!(
        k.cmd(mv("writer", "db2", false)),
        "ERROR: Can't reach agent daemon on 'db2'! Can't move roles there!"
    );
}

#[test]
fn move_role_refused_away_from_preferred_host_in_active_mode_only() {
    let mut spec = spec3();
    spec.roles[0].prefer = Some("db1".into());
    let mut k = Kit::online(spec);
    assert_eq!(
        k.cmd(mv("writer", "db2", false)),
        "ERROR: Role 'writer' is assigned to preferred host 'db1'. Can't move it!"
    );
    assert!(k
        .core
        .show_text()
        .contains("# Role writer is assigned to it's preferred host db1."));
    k.cmd(AdminCommand::SetMode(Mode::Manual));
    assert!(k
        .cmd(mv("writer", "db2", false))
        .starts_with("OK: Role 'writer' has been moved from 'db1' to 'db2'."));
    assert!(k
        .core
        .show_text()
        .contains("# Role writer has db1 configured as it's preferred host but is assigned to db2 at the moment."));
}

#[test]
fn move_role_of_an_orphaned_role_does_not_crash() {
    let mut k = online();
    k.cmd(AdminCommand::SetMode(Mode::Manual));
    let w = k.core.table.writer_entry().expect("writer");
    k.core.set_owner(w, None);
    assert_eq!(
        k.cmd(mv("writer", "db2", false)),
        "OK: Role 'writer' has been moved from '' to 'db2'. Now you can wait some time and check new roles info!"
    );
}

#[test]
fn move_role_force_replies() {
    let mut k = online();
    assert_eq!(
        k.cmd(mv("reader", "db2", true)),
        "ERROR: move_role --forced may be used for the active master role only!"
    );
    assert_eq!(
        k.cmd(mv("writer", "db2", true)),
        "ERROR: Can't force move of role to host with state ONLINE."
    );
    k.checks("db2", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db2"), HostState::ReplicationFail);
    assert_eq!(
        k.cmd(mv("writer", "db2", true)),
        "OK: Role 'writer' has been moved from 'db1' to 'db2' enforcedly. Now you can wait some time and check new roles info!"
    );
    assert_eq!(k.state("db2"), HostState::Online);
    k.send("db1", true);
    k.step();
    let d = k.core.desired_state("db2", k.now()).expect("desired");
    assert!(d.force, "--force reaches the agent");
    assert!(d.roles.iter().any(|r| r.name == "writer"));
}

#[test]
fn move_role_force_without_owner_does_not_crash() {
    let mut k = online();
    k.cmd(AdminCommand::SetMode(Mode::Manual));
    let w = k.core.table.writer_entry().expect("writer");
    k.core.set_owner(w, None);
    k.unreachable("db1"); // keeps db1 from getting the orphan back
    k.checks("db2", [true, true, false, true]);
    k.step();
    assert_eq!(k.core.active_master(), None);
    assert_eq!(k.state("db2"), HostState::ReplicationFail);
    assert_eq!(
        k.cmd(mv("writer", "db2", true)),
        "OK: Role 'writer' has been moved from '' to 'db2' enforcedly. Now you can wait some time and check new roles info!"
    );
}

#[test]
fn set_ip_replies() {
    let mut k = online();
    let ip = |s: &str, h: &str| AdminCommand::SetIp {
        ip: s.into(),
        host: h.into(),
    };
    assert_eq!(
        k.cmd(ip(W, "db2")),
        "ERROR: This command is only allowed in passive mode"
    );
    k.cmd(AdminCommand::SetMode(Mode::Passive));
    assert_eq!(k.cmd(ip("1.2.3.4", "db2")), "ERROR: Unknown ip '1.2.3.4'!");
    assert_eq!(k.cmd(ip(W, "dbx")), "ERROR: Unknown host name 'dbx'!");
    assert_eq!(
        k.cmd(ip(W, "db3")),
        "ERROR: Host 'db3' can't handle role 'writer'. Following hosts could: db1, db2"
    );
    k.checks("db2", [false, true, true, true]);
    k.step();
    assert_eq!(
        k.cmd(ip(W, "db2")),
        "ERROR: Host 'db2' is 'HARD_OFFLINE' at the moment. Can't move role with ip '10.0.0.100' there."
    );
    assert_eq!(
        k.cmd(ip("10.0.0.101", "db3")),
        "OK: Set role 'reader(10.0.0.101)' to host 'db3'."
    );
    assert_eq!(k.core.role_owner("reader", "10.0.0.101"), Some("db3"));
}

#[test]
fn show_text_matches_mmm_format() {
    let mut k = online();
    k.unreachable("db3");
    k.cmd(AdminCommand::SetMode(Mode::Passive));
    let show = k.core.show_text();
    let lines: Vec<&str> = show.lines().collect();
    assert_eq!(lines[0], "# --- Monitor is in PASSIVE MODE ---");
    assert_eq!(lines[1], "# Cause: Admin switched to passive mode.");
    assert_eq!(lines[2], "# Warning: agent on host db3 is not reachable");
    assert!(
        lines[3].starts_with("  db1(10.0.0.1) master/ONLINE. Roles: reader("),
        "{}",
        lines[3]
    );
    assert!(lines[3].ends_with(", writer(10.0.0.100)"));
    assert!(lines[5].starts_with("  db3(10.0.0.3) slave/ONLINE. Roles: "));
}
