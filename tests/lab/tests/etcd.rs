//! The lab's etcd (issue 18): three members from Debian's package, each in its own namespace,
//! form one cluster that the monitor's namespace reaches; it survives the loss of its leader
//! and refuses writes once it has lost its quorum.

use std::time::Duration;

use ha_lab::{wait_until, Lab, LabOptions};

const MEMBERS: [&str; 3] = ["etcd1", "etcd2", "etcd3"];

#[test]
fn three_etcd_members_survive_their_leaders_loss_and_refuse_writes_without_quorum() {
    let lab = Lab::start(LabOptions {
        db_hosts: 1,
        replication: false,
        extra_nodes: MEMBERS.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
    .expect("lab");
    let etcd = lab.start_etcd(&MEMBERS).expect("etcd cluster");
    let eps = etcd.endpoints();
    let put = |v: &str| {
        etcd.etcdctl(&lab, "mon", &eps, &["put", "/ha/lab-test", v])
            .expect("etcdctl put")
    };
    let get = || {
        etcd.etcdctl(
            &lab,
            "mon",
            &eps,
            &["get", "--print-value-only", "/ha/lab-test"],
        )
        .expect("etcdctl get")
        .stdout
        .trim()
        .to_string()
    };
    let r = put("v1");
    assert!(r.success(), "a write from the monitor's namespace: {r:?}");
    assert_eq!(get(), "v1");

    // kill -9 the leader: the other two elect one of themselves and take writes again.
    let t = Duration::from_secs(20);
    let leader = wait_until("an etcd leader", t, || etcd.leader(&lab, "mon")).expect("leader");
    etcd.member(&leader)
        .expect("leader's process")
        .kill()
        .expect("kill -9 the leader");
    let next = wait_until("a new etcd leader", t, || {
        Ok(etcd.leader(&lab, "mon")?.filter(|l| *l != leader))
    })
    .expect("a new leader");
    assert!(MEMBERS.contains(&next.as_str()) && next != leader);
    wait_until("a write with two members of three", t, || {
        Ok(put("v2").success().then_some(()))
    })
    .expect("two of three members keep a quorum");
    assert_eq!(get(), "v2");

    // kill -9 the new leader too: one member of three has no quorum, and a write fails
    // within etcdctl's deadline instead of hanging.
    etcd.member(&next)
        .expect("new leader's process")
        .kill()
        .expect("kill -9 the second leader");
    let started = std::time::Instant::now();
    let r = put("v3");
    assert!(!r.success(), "a write without quorum succeeded: {r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
