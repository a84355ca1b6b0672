//! The holistic view of the active master (issue 14, rule O0, `vouched.rs`): unreachable from
//! the monitor but vouched for by its peers, the writer stays; once they stop vouching, the
//! failover proceeds as before.

use crate::testkit::*;
use crate::*;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(4);

fn online_with_lease() -> Kit {
    Kit::online_with_lease(LEASE)
}

/// db1's checks fail from the monitor and its agent is unreachable; db2 and db3 are fine, and
/// db2's agent reports the promise it gave `writer` `age` ago, replicating from db1 with its IO
/// thread connected.
fn monitor_loses_db1(k: &mut Kit, writer: &str, age: Duration) {
    monitor_loses_db1_io(k, writer, age, true);
}

/// [`monitor_loses_db1`], with db2's IO thread connected to db1 or not (`io`).
fn monitor_loses_db1_io(k: &mut Kit, writer: &str, age: Duration, io: bool) {
    k.checks("db1", [false, false, false, false]);
    k.unreachable("db1");
    for h in ["db2", "db3"] {
        k.checks(h, [true; 4]);
    }
    k.report(
        "db2",
        AgentFacts {
            read_only: true,
            lease_token: Some(k.token()),
            promise_given: Some((writer.into(), age)),
            replicating_from: Some("db1".into()),
            io_running: io,
            ..Default::default()
        },
    );
    k.report(
        "db3",
        AgentFacts {
            read_only: true,
            lease_token: Some(k.token()),
            ..Default::default()
        },
    );
}

#[test]
fn a_writer_its_peers_vouch_for_stays_and_show_says_why() {
    let mut k = online_with_lease();
    let mut logs = Vec::new();
    for _ in 0..10 {
        k.at(1);
        monitor_loses_db1(&mut k, "db1", Duration::from_millis(200));
        k.step();
        logs.extend(k.logs());
    }
    assert_eq!(k.state("db1"), HostState::Online, "{logs:?}");
    assert_eq!(k.core.active_master(), Some("db1"), "no failover");
    assert!(
        logs.iter()
            .any(|l| l.contains("reachable from db2") && l.contains("[rule O0]")),
        "{logs:?}"
    );
    let show = k.core.show_text();
    assert!(
        show.contains("# db1 unreachable from the monitor; reachable from db2"),
        "{show}"
    );
    // db3 is no writer candidate: its silence about promises does not count.
}

#[test]
fn a_stale_promise_or_one_to_another_writer_does_not_hold_the_writer() {
    for (writer, age) in [
        ("db1", Duration::from_secs(5)),
        ("db9", Duration::from_millis(100)),
    ] {
        let mut k = online_with_lease();
        for _ in 0..5 {
            k.at(1);
            monitor_loses_db1(&mut k, writer, age);
            k.step();
        }
        assert_eq!(k.state("db1"), HostState::HardOffline, "{writer} {age:?}");
        assert_eq!(k.core.active_master(), Some("db2"), "failover decided");
    }
}

#[test]
fn the_hold_ends_when_the_peers_lose_the_writer() {
    let mut k = online_with_lease();
    for _ in 0..3 {
        k.at(1);
        monitor_loses_db1(&mut k, "db1", Duration::from_millis(200));
        k.step();
    }
    assert_eq!(k.state("db1"), HostState::Online);
    // db1 stops asking: db2's latest promise ages.
    let mut age = Duration::from_millis(200);
    let mut logs = Vec::new();
    for _ in 0..4 {
        k.at(1);
        age += Duration::from_secs(1);
        monitor_loses_db1(&mut k, "db1", age);
        k.step();
        logs.extend(k.logs());
    }
    assert_eq!(k.state("db1"), HostState::HardOffline, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("no longer held by its peers")),
        "{logs:?}"
    );
    assert_eq!(k.core.active_master(), Some("db2"));
}

#[test]
fn without_a_lease_there_are_no_promises_to_trust() {
    let mut spec = spec3();
    spec.writer_lease = Duration::ZERO;
    let mut k = Kit::online(spec);
    k.at(120);
    for _ in 0..5 {
        k.at(1);
        monitor_loses_db1(&mut k, "db1", Duration::from_millis(100));
        k.step();
    }
    assert_eq!(k.state("db1"), HostState::HardOffline);
}

#[test]
fn a_promise_without_a_connected_io_thread_does_not_hold_the_writer() {
    // db2 still gets asked for promises, but its replication stream from db1 is gone: the
    // monitor does not take the promise alone as proof that db1 serves (the holistic
    // rule asks for both), and the failover proceeds.
    let mut k = online_with_lease();
    let mut logs = Vec::new();
    for _ in 0..10 {
        k.at(1);
        monitor_loses_db1_io(&mut k, "db1", Duration::from_millis(200), false);
        k.step();
        logs.extend(k.logs());
    }
    assert_ne!(k.state("db1"), HostState::Online, "{logs:?}");
    assert!(!logs.iter().any(|l| l.contains("[rule O0]")), "{logs:?}");
}

#[test]
fn one_timed_out_call_to_the_vouching_peer_does_not_end_the_hold() {
    // Under load the monitor's call to db2's agent times out once: db2's last reply (a fresh
    // promise, IO thread connected) still counts until it is older than half a lease.
    let mut k = online_with_lease();
    k.at(1);
    monitor_loses_db1(&mut k, "db1", Duration::from_millis(100));
    k.step();
    k.now += 300;
    k.checks("db1", [false, false, false, false]);
    k.unreachable("db1");
    k.unreachable("db2");
    k.step();
    assert_eq!(k.state("db1"), HostState::Online, "{:?}", k.logs());
    assert_eq!(k.core.active_master(), Some("db1"));
    // Once that reply is too old, the hold ends and the failover proceeds.
    for _ in 0..5 {
        k.at(1);
        k.checks("db1", [false, false, false, false]);
        k.unreachable("db1");
        k.unreachable("db2");
        k.step();
    }
    assert_ne!(k.state("db1"), HostState::Online, "{:?}", k.logs());
}
