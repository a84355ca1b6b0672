//! Table tests of [`super::plan`]: the safety ordering of a pass.

use super::fixtures::*;
use super::*;

#[test]
fn promotion_syncs_then_writes_then_adds_ip() {
    let d = desired(ON, vec![r1(), w()], Some(master("db1", 11)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
    );
    let steps = plan(&d, &Held::default(), &a, "db1");
    assert_eq!(
        steps,
        vec![
            Step::AddIp(r1()),
            Step::WaitRelayLog,
            Step::AllowWrite,
            Step::AddIp(w())
        ]
    );
}

#[test]
fn demotion_order_deny_kill_remove_before_adds() {
    let d = desired(ON, vec![r2()], Some(master("db2", 12)));
    let a = actual(
        vec![w(), r1()],
        false,
        Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
    );
    let h = verified(held(vec![w(), r1()], true, Some(ON)), "db2");
    let steps = plan(&d, &h, &a, "db1");
    assert_eq!(
        steps,
        vec![
            Step::DenyWrite,
            Step::KillConnections,
            Step::RemoveIp(w()),
            Step::RemoveIp(r1()),
            Step::AddIp(r2()),
        ]
    );
}

#[test]
fn same_state_twice_plans_nothing() {
    let d = desired(ON, vec![r1(), w()], Some(master("db1", 11)));
    let a = actual(
        vec![w(), r1()],
        false,
        Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
    );
    assert!(plan(&d, &held(vec![r1(), w()], true, Some(ON)), &a, "db1").is_empty());
    // A replica already replicating from the right master: nothing either.
    let d = desired(ON, vec![r2()], Some(master("db1", 11)));
    let a = actual(
        vec![r2()],
        true,
        Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
    );
    let h = verified(held(vec![r2()], false, Some(ON)), "db1");
    assert!(plan(&d, &h, &a, "db3").is_empty());
    // Demoted already: no second kill.
    let d = desired(ON, vec![], Some(master("db2", 12)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
    );
    let h = verified(held(vec![], false, Some(ON)), "db2");
    assert!(plan(&d, &h, &a, "db1").is_empty());
}

#[test]
fn old_writer_is_repointed_at_the_peer_it_already_follows() {
    // db1 was the active master, replicating from its master-master peer db2; db2 took
    // over. db1's IO thread may hang on a connection db2 closed while db1 was cut off, and
    // db1 may hold a write db2 never got: re-point (GTID check, fresh connection).
    let d = desired(ON, vec![], Some(master("db2", 12)));
    let a = actual(
        vec![w()],
        true,
        Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
    );
    let h = verified(held(vec![w()], true, Some(ON)), "db1");
    assert_eq!(
        plan(&d, &h, &a, "db1"),
        vec![
            Step::KillConnections,
            Step::RemoveIp(w()),
            Step::Repoint(master("db2", 12))
        ]
    );
    // Once verified for db2: nothing more.
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
    );
    let h = verified(held(vec![], false, Some(ON)), "db2");
    assert!(plan(&d, &h, &a, "db1").is_empty());
}

#[test]
fn agent_start_checks_the_history_without_touching_running_threads() {
    let d = desired(ON, vec![], Some(master("db1", 11)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
    );
    assert_eq!(
        plan(&d, &Held::default(), &a, "db3"),
        vec![Step::CheckSource(master("db1", 11))]
    );
    // Stopped threads at agent start: StartSlave (which checks the history first).
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
    );
    assert_eq!(
        plan(&d, &Held::default(), &a, "db3"),
        vec![Step::StartSlave]
    );
}

#[test]
fn writable_host_skips_sync() {
    let d = desired(ON, vec![w()], None);
    let a = actual(vec![], false, None);
    assert_eq!(
        plan(&d, &Held::default(), &a, "db1"),
        vec![Step::AddIp(w())]
    );
    // Synced earlier, still read-only: no second wait.
    let a = actual(vec![], true, None);
    assert_eq!(
        plan(&d, &held(vec![], true, Some(ON)), &a, "db1"),
        vec![Step::AllowWrite, Step::AddIp(w())]
    );
}

#[test]
fn replicas_are_repointed_in_online_and_replication_states() {
    for st in [
        HostState::Online,
        HostState::ReplicationFail,
        HostState::ReplicationDelay,
    ] {
        let d = desired(st, vec![], Some(master("db2", 12)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Running, Thread::Stopped)),
        );
        assert_eq!(
            plan(&d, &held(vec![], false, Some(st)), &a, "db3"),
            vec![Step::Repoint(master("db2", 12))],
            "{st:?}"
        );
    }
    // Not configured at all → re-point too.
    let d = desired(ON, vec![], Some(master("db2", 12)));
    let a = actual(vec![], true, None);
    assert_eq!(
        plan(&d, &Held::default(), &a, "db3"),
        vec![Step::Repoint(master("db2", 12))]
    );
    // Awaiting recovery: left alone.
    let d = desired(HostState::AwaitingRecovery, vec![], Some(master("db2", 12)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
    );
    assert!(plan(&d, &Held::default(), &a, "db3").is_empty());
}

#[test]
fn active_master_is_never_repointed() {
    let d = desired(ON, vec![], Some(master("db1", 11)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.12", Thread::Stopped, Thread::Stopped)),
    );
    assert!(plan(&d, &Held::default(), &a, "db1").is_empty());
}

#[test]
fn stopped_threads_restart_on_transitions_only() {
    let d = desired(ON, vec![], Some(master("db1", 11)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Running, Thread::Stopped)),
    );
    // Entering ONLINE (or agent start): start them.
    assert_eq!(
        plan(
            &d,
            &held(vec![], false, Some(HostState::AwaitingRecovery)),
            &a,
            "db3"
        ),
        vec![Step::StartSlave]
    );
    assert_eq!(
        plan(&d, &Held::default(), &a, "db3"),
        vec![Step::StartSlave]
    );
    // A renewal of the same ONLINE state: the operator's STOP SLAVE is respected.
    let h = verified(held(vec![], false, Some(ON)), "db1");
    assert!(plan(&d, &h, &a, "db3").is_empty());
}

#[test]
fn replication_fault_reported_by_the_monitor_is_not_undone() {
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Running)),
    );
    for st in [HostState::ReplicationFail, HostState::ReplicationDelay] {
        let d = desired(st, vec![], Some(master("db1", 11)));
        // ONLINE → REPLICATION_*: the stop is the fault being reported; leave it.
        let h = verified(held(vec![], false, Some(ON)), "db1");
        assert!(plan(&d, &h, &a, "db3").is_empty(), "{st:?}");
        // Coming back from HARD_OFFLINE (recovery) or at agent start: start them.
        assert_eq!(
            plan(
                &d,
                &held(vec![], false, Some(HostState::HardOffline)),
                &a,
                "db3"
            ),
            vec![Step::StartSlave],
            "{st:?}"
        );
        assert_eq!(
            plan(&d, &Held::default(), &a, "db3"),
            vec![Step::StartSlave],
            "{st:?}"
        );
    }
}

#[test]
fn admin_offline_stops_and_leaving_starts_replication() {
    let d = desired(HostState::AdminOffline, vec![], Some(master("db1", 11)));
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
    );
    assert_eq!(
        plan(&d, &held(vec![], false, Some(ON)), &a, "db3"),
        vec![Step::StopSlave]
    );
    let a = actual(
        vec![],
        true,
        Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
    );
    assert!(plan(
        &d,
        &held(vec![], false, Some(HostState::AdminOffline)),
        &a,
        "db3"
    )
    .is_empty());
    let d = desired(ON, vec![], Some(master("db1", 11)));
    assert_eq!(
        plan(
            &d,
            &held(vec![], false, Some(HostState::AdminOffline)),
            &a,
            "db3"
        ),
        vec![Step::StartSlave]
    );
}

#[test]
fn unobservable_mysql_still_drops_writer_ip() {
    let d = desired(ON, vec![], None);
    let a = Actual {
        ips: Some(vec![w().ip]),
        mysql: None,
    };
    assert_eq!(
        plan(&d, &held(vec![w()], true, Some(ON)), &a, "db1"),
        vec![Step::DenyWrite, Step::KillConnections, Step::RemoveIp(w())]
    );
}

#[test]
fn stray_read_only_off_is_fixed_on_non_writers() {
    let d = desired(ON, vec![r1()], Some(master("db1", 11)));
    let a = actual(
        vec![r1()],
        false,
        Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
    );
    let h = verified(held(vec![r1()], false, Some(ON)), "db1");
    assert_eq!(
        plan(&d, &h, &a, "db3"),
        vec![Step::DenyWrite, Step::KillConnections]
    );
}

#[test]
fn foreign_addresses_are_never_touched() {
    let d = desired(ON, vec![], None);
    let a = Actual {
        ips: Some(vec![
            Ipv4Addr::new(10, 0, 0, 11),
            Ipv4Addr::new(192, 168, 1, 1),
        ]),
        mysql: Some(MysqlActual {
            read_only: true,
            super_read_only: None,
            slave: None,
        }),
    };
    assert!(plan(&d, &Held::default(), &a, "db1").is_empty());
}

#[test]
fn broken_replication_is_checked_only_when_no_step_touches_it() {
    let am = master("db1", 11);
    let d = desired(ON, vec![r2()], Some(am.clone()));
    let mut broken = slave_of("10.0.0.11", Thread::Stopped, Thread::Running);
    broken.last_io_error = "out-of-order sequence number".into();
    let a = actual(vec![r2()], true, Some(broken.clone()));
    let check = |d: &Desired, a: &Actual, steps: &[Step], this: &str| {
        broken_replication_check(d, a, steps, this).map(|m| m.name.clone())
    };
    assert_eq!(check(&d, &a, &[], "db2"), Some("db1".into()));
    // A step of this pass handles replication (and checks the history itself).
    assert_eq!(check(&d, &a, &[Step::StartSlave], "db2"), None);
    assert_eq!(check(&d, &a, &[Step::Repoint(am.clone())], "db2"), None);
    // Stopped without an error, or pointing elsewhere: nothing to explain.
    let quiet = actual(
        vec![r2()],
        true,
        Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
    );
    assert_eq!(check(&d, &quiet, &[], "db2"), None);
    let mut elsewhere = broken.clone();
    elsewhere.master_host = "10.0.0.13".into();
    assert_eq!(
        check(&d, &actual(vec![], true, Some(elsewhere)), &[], "db2"),
        None
    );
    // ADMIN_OFFLINE, the active master itself, and the writer-to-be are left alone.
    let off = desired(HostState::AdminOffline, vec![], Some(am.clone()));
    assert_eq!(check(&off, &a, &[], "db2"), None);
    assert_eq!(check(&d, &a, &[], "db1"), None);
    let writer = desired(ON, vec![w()], Some(am));
    assert_eq!(check(&writer, &a, &[], "db2"), None);
}
