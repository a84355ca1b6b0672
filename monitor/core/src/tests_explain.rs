//! `explain`: the successor it names is the host the core then gives the role to.

use crate::testkit::*;
use crate::*;
use std::time::Duration;

fn online(spec: ClusterSpec) -> Kit {
    let mut k = Kit::online(spec);
    k.at(120);
    k.step();
    k
}

fn writer(k: &Kit) -> RoleExplanation {
    k.core
        .explain(k.now())
        .into_iter()
        .find(|x| x.role.name == "writer")
        .expect("writer explained")
}

fn owner_of_writer(k: &Kit) -> Option<String> {
    k.core.role_owner("writer", W).map(str::to_string)
}

/// db1 dies: ping and mysql fail past their trap period.
fn kill_db1(k: &mut Kit) {
    k.checks("db1", [false, false, false, false]);
    k.unreachable("db1");
    k.step();
    k.at(10);
    k.checks("db1", [false, false, false, false]);
    k.unreachable("db1");
    k.step();
}

/// The lab cluster with trap periods, so the what-if has to wait them out as the core does.
fn spec_with_traps() -> ClusterSpec {
    let mut s = spec3();
    s.trap_periods = TrapPeriods::uniform(Duration::from_secs(3));
    s
}

#[test]
fn the_named_successor_is_who_gets_the_writer_after_the_failure() {
    for spec in [spec3(), spec_with_traps()] {
        named_successor_gets_the_writer(spec);
    }
}

fn named_successor_gets_the_writer(spec: ClusterSpec) {
    let mut k = online(spec);
    let before = writer(&k);
    assert_eq!(before.owner.as_deref(), Some("db1"));
    let names: Vec<&str> = before.successors.iter().map(|s| s.host.as_str()).collect();
    assert_eq!(names, ["db2"], "{before:?}");
    // db3 is a slave: not a writer candidate, and says so.
    assert_eq!(
        before.passed_over,
        [PassedOver {
            host: "db3".into(),
            why: "not in the role's hosts".into()
        }]
    );
    assert!(
        before.notes.iter().any(|n| n.contains("writer lease")),
        "{:?}",
        before.notes
    );
    // Explaining changes nothing.
    let same = k.core.clone();
    let _ = k.core.explain(k.now());
    assert_eq!(k.core, same);

    kill_db1(&mut k);
    assert_eq!(owner_of_writer(&k).as_deref(), Some("db2"));
}

#[test]
fn a_host_that_cannot_take_the_role_says_why_and_the_table_agrees() {
    let mut k = online(spec3());
    let r = k.cmd(AdminCommand::SetOffline("db2".into()));
    assert!(r.starts_with("OK"), "{r}");
    k.obey_rounds(2);
    let x = writer(&k);
    assert!(x.successors.is_empty(), "{x:?}");
    let db2 = x.passed_over.iter().find(|p| p.host == "db2").expect("db2");
    assert!(db2.why.starts_with("ADMIN_OFFLINE"), "{db2:?}");
    kill_db1(&mut k);
    assert_eq!(
        owner_of_writer(&k),
        None,
        "nobody got the writer, as explained"
    );
}

#[test]
fn manual_mode_keeps_the_role_on_the_failed_host() {
    let mut k = online(spec3());
    let r = k.cmd(AdminCommand::SetMode(Mode::Manual));
    assert!(r.starts_with("OK"), "{r}");
    let x = writer(&k);
    assert!(x.successors.is_empty(), "{x:?}");
    assert!(
        x.notes.iter().any(|n| n.starts_with("mode MANUAL")),
        "{x:?}"
    );
    kill_db1(&mut k);
    assert_eq!(owner_of_writer(&k).as_deref(), Some("db1"));
}

#[test]
fn every_reader_ip_has_an_answer_that_the_failure_confirms() {
    // For each reader IP: fail its owner on a fresh cluster and compare with the explanation.
    let k = online(spec3());
    let mut compared = 0;
    for x in k.core.explain(k.now()) {
        if x.role.name != "reader" {
            continue;
        }
        compared += usize::from(!x.successors.is_empty());
        let owner = x.owner.clone().expect("owned");
        let mut k2 = online(spec3());
        k2.checks(&owner, [false, false, false, false]);
        k2.unreachable(&owner);
        k2.step();
        k2.at(10);
        k2.checks(&owner, [false, false, false, false]);
        k2.unreachable(&owner);
        k2.step();
        let got = k2.core.role_owner("reader", &x.role.ip).map(str::to_string);
        assert_eq!(
            got.as_deref(),
            x.successors.first().map(|s| s.host.as_str()),
            "{x:?}"
        );
    }
    assert!(compared >= 2, "readers with a successor: {compared}");
}
