//! One test per transition rule of docs/mmm-behaviour.md §2.2 (named after the rule id), plus hosts the
//! state machine skips (ADMIN_OFFLINE, F11). The WAIT exit and network isolation are in
//! `tests_modes.rs`.

use crate::testkit::*;
use crate::*;
use std::time::Duration;

const OK4: [bool; 4] = [true; 4];

fn online() -> Kit {
    let mut k = Kit::online(spec3());
    k.at(120); // past the O3 grace period of every peer
    k.step();
    k
}

#[test]
fn fixture_starts_with_db1_as_confirmed_writer_and_readers_spread() {
    let k = online();
    assert_eq!(k.core.confirmed_writer(), Some("db1"));
    let db1 = k.roles("db1");
    assert_eq!(db1.len(), 2);
    assert!(db1[0].starts_with("reader(") && db1[1] == "writer(10.0.0.100)");
    assert_eq!(
        k.roles("db2").len(),
        1,
        "writer counts 0.5: max - min <= 1 with 1.5/1/1"
    );
    assert_eq!(k.roles("db3").len(), 1);
    assert!(k.desired_has_writer("db1"));
}

#[test]
fn o1_online_to_hard_offline_on_ping_failure() {
    let mut k = online();
    k.checks("db1", [false, true, true, true]);
    k.step();
    assert_eq!(k.state("db1"), HostState::HardOffline);
    assert!(k.has_log(
        "State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: not OK, mysql: OK)"
    ));
    assert!(k.roles("db1").is_empty(), "ACTIVE mode removes the roles");
    assert_eq!(
        k.core.active_master(),
        Some("db2"),
        "writer re-assigned in the same pass"
    );
    assert!(k.has_log("Orphaned role 'writer(10.0.0.100)' has been assigned to 'db2'"));
}

#[test]
fn o1_online_to_hard_offline_on_mysql_failure() {
    let mut k = online();
    k.checks("db3", [true, false, true, true]);
    k.step();
    assert_eq!(k.state("db3"), HostState::HardOffline);
    assert!(k.has_log("(ping: OK, mysql: not OK)"));
}

#[test]
fn o1_kills_a_dead_host_when_a_kill_binary_is_configured() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::online(spec);
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert_eq!(k.kills(), [("db1".to_string(), false)]);
}

#[test]
fn o1_without_kill_binary_logs_possible_duplicate_ips() {
    let mut k = online();
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert!(k.kills().is_empty());
    assert!(k.has_log("Could not kill host 'db1' - there may be some duplicate ips now!"));
}

#[test]
fn o1_kills_when_the_agent_of_a_pinging_host_cannot_be_told() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::online(spec);
    k.checks("db3", [true, false, true, true]);
    k.step();
    assert!(k.kills().is_empty(), "first try to tell the agent");
    k.send("db3", false);
    k.unreachable("db3");
    k.step();
    assert_eq!(k.kills(), [("db3".to_string(), true)]);
}

#[test]
fn o1_manual_mode_keeps_roles_and_never_kills_f3() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::online(spec);
    assert_eq!(
        k.cmd(AdminCommand::SetMode(Mode::Manual)),
        "OK: Switched into manual mode."
    );
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert_eq!(k.state("db1"), HostState::HardOffline);
    assert_eq!(k.roles("db1").len(), 2, "roles stay");
    assert!(k.kills().is_empty());
}

#[test]
fn o1_passive_mode_changes_no_roles_and_never_kills_f3() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::online(spec);
    k.cmd(AdminCommand::SetMode(Mode::Passive));
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert_eq!(
        k.state("db1"),
        HostState::HardOffline,
        "states stay truthful for show"
    );
    assert_eq!(k.roles("db1").len(), 2, "roles stay");
    assert!(k.kills().is_empty());
    assert!(!k.actions.contains(&Action::SaveStatus));
    assert_eq!(
        k.core.desired_state("db2", k.now()),
        None,
        "nothing is sent in PASSIVE"
    );
}

#[test]
fn o2_replication_problems_on_active_master_are_ignored() {
    let mut k = online();
    k.checks("db1", [true, true, false, false]);
    k.step();
    assert_eq!(k.state("db1"), HostState::Online);
}

#[test]
fn o3_replication_errors_ignored_within_60s_after_peer_came_online() {
    let mut k = Kit::online(spec3());
    k.at(30);
    k.checks("db2", [true, true, false, true]);
    k.step();
    assert_eq!(
        k.state("db2"),
        HostState::Online,
        "peer db1 came ONLINE 30 s ago"
    );
    k.at(31);
    k.checks("db2", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db2"), HostState::ReplicationFail);
}

#[test]
fn o4_online_to_replication_fail_when_peer_is_healthy() {
    let mut k = online();
    k.checks("db2", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db2"), HostState::ReplicationFail);
    assert!(k.has_log(
        "State of host 'db2' changed from ONLINE to REPLICATION_FAIL (ping: OK, mysql: OK, rep_threads: not OK, rep_backlog: OK)"
    ));
    assert!(k.roles("db2").is_empty());
}

#[test]
fn o4_slave_peer_is_the_active_master() {
    let mut k = online();
    k.checks("db3", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationFail);
}

#[test]
fn o5_online_to_replication_delay() {
    let mut k = online();
    k.checks("db3", [true, true, true, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationDelay);
}

#[test]
fn o6_replication_failure_with_unhealthy_peer_stays_online() {
    let mut k = online();
    k.checks("db2", [true, true, true, true]);
    k.checks("db1", [true, false, true, true]); // db1 fails first (config order)
    k.step();
    assert_eq!(k.state("db1"), HostState::HardOffline);
    k.checks("db3", [true, true, false, true]);
    k.step();
    // db3's peer is the active master (db2 now), ONLINE less than 60 s? db2 was ONLINE long.
    assert_eq!(k.state("db3"), HostState::ReplicationFail);
    // A master whose peer is down keeps serving despite replication errors.
    k.checks("db2", [true, true, false, false]);
    k.step();
    assert_eq!(k.state("db2"), HostState::Online);
}

#[test]
fn a1_awaiting_recovery_to_hard_offline_without_send_or_kill() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::new(spec);
    k.checks("db3", [false, true, true, true]);
    k.step();
    assert_eq!(k.state("db3"), HostState::HardOffline);
    assert!(k.kills().is_empty());
}

fn make_awaiting(k: &mut Kit, h: &str) {
    k.checks(h, [false, false, true, true]);
    k.step();
    k.checks(h, OK4);
    k.step();
    assert_eq!(k.state(h), HostState::AwaitingRecovery);
}

#[test]
fn a2_flapping_host_needs_auto_set_online_and_flap_duration_of_stable_checks() {
    let mut spec = spec3();
    spec.auto_set_online = Duration::from_secs(10);
    spec.flap_duration = Duration::from_secs(600);
    let mut k = Kit::online(spec);
    for _ in 0..3 {
        k.at(70);
        make_awaiting(&mut k, "db3");
        let r = k.cmd(AdminCommand::SetOnline("db3".into()));
        assert!(r.starts_with("OK"), "{r}");
        assert!(!k.core.flapping("db3"));
    }
    k.at(1);
    k.checks("db3", [false, false, true, true]);
    k.step();
    assert!(k.has_log("Host db3 is flapping!"));
    k.checks("db3", OK4);
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
    k.at(300);
    k.checks("db3", OK4);
    k.step();
    assert_eq!(
        k.state("db3"),
        HostState::AwaitingRecovery,
        "A3/A4 bypassed while flapping"
    );
    k.at(301);
    k.checks("db3", OK4);
    k.step();
    assert_eq!(
        k.state("db3"),
        HostState::Online,
        "stable for flap_duration"
    );
    assert!(k.core.flapping("db3"), "A2 does not clear the flag");
}

#[test]
fn a2_flapping_host_never_comes_back_without_auto_set_online() {
    let mut k = online();
    k.core.hosts[DB3].flap.flapping = true;
    make_awaiting(&mut k, "db3");
    k.at(100_000);
    k.checks("db3", OK4);
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
}

#[test]
fn a3_short_outage_without_reboot_goes_online() {
    let mut k = online();
    k.send_all(); // last reply while ONLINE records last_uptime
    k.step();
    k.checks("db3", [true, false, true, true]);
    k.step();
    k.at(20);
    k.checks("db3", OK4);
    k.send("db3", true); // reply while not ONLINE: uptime advanced by 20 s
    k.step();
    k.step();
    assert_eq!(k.state("db3"), HostState::Online);
    assert!(k.has_log("State of host 'db3' changed from AWAITING_RECOVERY to ONLINE because it was down for only 20 seconds"));
}

#[test]
fn a3_rebooted_host_stays_awaiting_recovery() {
    let mut k = online();
    k.send_all();
    k.step();
    k.checks("db3", [false, false, true, true]);
    k.step();
    k.at(20);
    k.checks("db3", OK4);
    k.report(
        "db3",
        AgentFacts {
            uptime_secs: 5.0,
            read_only: true,
            ..Default::default()
        },
    );
    k.step();
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
}

#[test]
fn a4_auto_set_online_after_configured_time() {
    let mut spec = spec3();
    spec.auto_set_online = Duration::from_secs(30);
    let mut k = Kit::new(spec);
    k.report(
        "db3",
        AgentFacts {
            read_only: true,
            ..Default::default()
        },
    );
    k.checks("db3", OK4);
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
    k.at(30);
    k.step();
    assert_eq!(k.state("db3"), HostState::Online);
    assert!(k.has_log("because of auto_set_online(30 seconds)"));
}

#[test]
fn a5_awaiting_recovery_never_moves_to_replication_states() {
    let mut spec = spec3();
    spec.auto_set_online = Duration::from_secs(1);
    let mut k = Kit::new(spec);
    k.checks("db3", [true, true, false, false]);
    k.at(100);
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
}

#[test]
fn h1_hard_offline_to_replication_fail_when_active_master_exists() {
    let mut k = online();
    k.checks("db3", [false, true, true, true]);
    k.step();
    k.checks("db3", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationFail);
}

#[test]
fn h2_hard_offline_to_replication_delay() {
    let mut k = online();
    k.checks("db3", [false, true, true, true]);
    k.step();
    k.checks("db3", [true, true, true, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationDelay);
}

#[test]
fn h3_master_candidate_skips_replication_checks_without_active_master() {
    let mut k = Kit::new(spec3());
    k.checks("db1", [false, true, true, true]);
    k.step();
    k.checks("db1", [true, true, false, false]);
    k.step();
    assert_eq!(k.state("db1"), HostState::AwaitingRecovery);
}

#[test]
fn h3_hard_offline_to_awaiting_recovery_when_all_ok() {
    let mut k = online();
    k.checks("db3", [false, true, true, true]);
    k.step();
    k.checks("db3", OK4);
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
}

#[test]
fn h4_stays_hard_offline_while_down() {
    let mut k = online();
    k.checks("db3", [false, true, true, true]);
    k.step();
    k.at(1000);
    k.step();
    assert_eq!(k.state("db3"), HostState::HardOffline);
}

fn make_rep_fail(k: &mut Kit, h: &str) {
    k.checks(h, [true, true, false, true]);
    k.step();
    assert_eq!(k.state(h), HostState::ReplicationFail);
}

#[test]
fn r1_replication_fail_to_delay() {
    let mut k = online();
    make_rep_fail(&mut k, "db3");
    k.checks("db3", [true, true, true, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationDelay);
}

#[test]
fn r2_replication_delay_to_fail() {
    let mut k = online();
    k.checks("db3", [true, true, true, false]);
    k.step();
    k.checks("db3", [true, true, false, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationFail);
}

#[test]
fn r3_replication_recovered_goes_online_and_gets_a_reader_back() {
    let mut k = online();
    make_rep_fail(&mut k, "db3");
    k.obey_rounds(2);
    k.checks("db3", OK4);
    k.step();
    assert_eq!(k.state("db3"), HostState::Online);
    assert_eq!(k.roles("db3").len(), 1, "balancing gives it a reader again");
}

#[test]
fn r3_flapping_host_goes_to_awaiting_recovery() {
    let mut k = online();
    make_rep_fail(&mut k, "db3");
    k.core.hosts[DB3].flap.flapping = true;
    k.checks("db3", OK4);
    k.step();
    assert_eq!(k.state("db3"), HostState::AwaitingRecovery);
}

#[test]
fn r3_peer_not_online_declares_host_online_despite_replication_errors() {
    let mut k = online();
    make_rep_fail(&mut k, "db2");
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert_eq!(k.state("db1"), HostState::HardOffline);
    assert_eq!(
        k.state("db2"),
        HostState::Online,
        "db1 is evaluated first in the same pass"
    );
    assert_eq!(k.core.active_master(), Some("db2"));
}

#[test]
fn r4_replication_state_to_hard_offline_kills_only_in_active_mode() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::online(spec.clone());
    k.at(120);
    make_rep_fail(&mut k, "db3");
    k.checks("db3", [false, false, false, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::HardOffline);
    assert_eq!(k.kills(), [("db3".to_string(), false)]);

    let mut k = Kit::online(spec);
    k.at(120);
    make_rep_fail(&mut k, "db3");
    k.cmd(AdminCommand::SetMode(Mode::Manual));
    k.checks("db3", [false, false, false, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::HardOffline);
    assert!(k.kills().is_empty(), "MANUAL never kills (F3)");
}

#[test]
fn r5_replication_fail_stays_while_peer_online_and_threads_broken() {
    let mut k = online();
    make_rep_fail(&mut k, "db3");
    k.at(100);
    k.checks("db3", [true, true, false, true]);
    k.step();
    assert_eq!(k.state("db3"), HostState::ReplicationFail);
}

#[test]
fn admin_offline_is_ignored_by_the_state_machine() {
    let mut k = online();
    k.cmd(AdminCommand::SetOffline("db3".into()));
    k.checks("db3", [false, false, false, false]);
    k.step();
    assert_eq!(k.state("db3"), HostState::AdminOffline);
}

#[test]
fn f11_host_without_check_evidence_is_not_evaluated() {
    let mut k = online();
    let mut fresh = Kit::new(spec3());
    fresh.check("db1", Check::Ping, CheckOutcome::Unknown);
    fresh.check("db1", Check::Mysql, CheckOutcome::Unknown);
    fresh.step();
    assert_eq!(fresh.state("db1"), HostState::AwaitingRecovery);
    // UNKNOWN on an ONLINE host keeps the recorded status.
    k.check("db1", Check::Mysql, CheckOutcome::Unknown);
    k.step();
    assert_eq!(k.state("db1"), HostState::Online);
}
