//! What stops or ends the state machine monitor-wide: network isolation (docs/mmm-behaviour.md §3.7
//! with the §10.25 fix: nothing changes, roles included) and the WAIT-mode exit (§2.3, with F4
//! for clusters with fewer than two masters).

use crate::testkit::*;
use crate::*;
use std::time::Duration;

const OK4: [bool; 4] = [true; 4];

#[test]
fn network_down_changes_nothing_not_even_roles() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = Kit::online(spec);
    k.queue.push(Input::Network { reachable: false });
    k.step();
    assert!(k.has_log("Network is unreachable"));
    let before = k.core.role_table();
    k.checks("db1", [false, false, false, false]);
    k.unreachable("db1");
    k.unreachable("db2");
    k.at(100);
    k.step();
    assert_eq!(k.state("db1"), HostState::Online);
    assert_eq!(k.core.role_table(), before);
    assert!(k.kills().is_empty());
    assert!(!k.core.agent_down("db2"));
    assert_eq!(k.core.desired_state("db1", k.now()), None);
    k.queue.push(Input::Network { reachable: true });
    k.step();
    assert!(k.has_log("Network is reachable"));
    assert!(k.core.desired_state("db1", k.now()).is_some());
}

fn wait_spec() -> ClusterSpec {
    let mut s = spec3();
    s.initial_mode = Mode::Wait;
    s.wait_for_other_master = Duration::from_secs(60);
    s
}

#[test]
fn wait_mode_exits_when_both_masters_are_online() {
    let k = Kit::online(wait_spec());
    assert_eq!(k.core.mode(), Mode::Active);
}

#[test]
fn wait_mode_exits_after_wait_for_other_master_with_one_master() {
    let mut k = Kit::new(wait_spec());
    for h in ["db1", "db2"] {
        k.checks(h, OK4);
        k.report(
            h,
            AgentFacts {
                read_only: true,
                ..Default::default()
            },
        );
    }
    k.step();
    k.cmd(AdminCommand::SetOnline("db1".into()));
    k.at(59);
    k.step();
    assert_eq!(k.core.mode(), Mode::Wait);
    k.at(1);
    k.step();
    assert_eq!(k.core.mode(), Mode::Active);
    assert!(k.has_log("Master db2 did not come ONLINE within 60 seconds"));
}

#[test]
fn wait_mode_with_a_single_configured_master_does_not_crash() {
    let mut spec = wait_spec();
    spec.roles[0].hosts = vec!["db1".into()];
    let mut k = Kit::new(spec);
    k.checks("db1", OK4);
    k.report(
        "db1",
        AgentFacts {
            read_only: true,
            ..Default::default()
        },
    );
    k.step();
    assert_eq!(k.core.mode(), Mode::Wait);
    k.cmd(AdminCommand::SetOnline("db1".into()));
    k.step();
    assert_eq!(k.core.mode(), Mode::Active);
}

#[test]
fn leaving_wait_strips_roles_kept_by_failed_hosts() {
    let mut k = Kit::new(wait_spec());
    for h in ["db1", "db2", "db3"] {
        k.checks(h, OK4);
        k.report(
            h,
            AgentFacts {
                read_only: true,
                ..Default::default()
            },
        );
    }
    k.step();
    k.cmd(AdminCommand::SetOnline("db1".into()));
    k.cmd(AdminCommand::SetOnline("db3".into()));
    assert_eq!(k.core.mode(), Mode::Wait);
    k.checks("db3", [false, false, true, true]);
    k.step();
    assert!(
        !k.roles("db3").is_empty(),
        "WAIT keeps roles on failed hosts"
    );
    k.cmd(AdminCommand::SetOnline("db2".into()));
    k.step();
    assert_eq!(k.core.mode(), Mode::Active);
    assert!(k.roles("db3").is_empty());
}
