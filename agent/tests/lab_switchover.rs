//! A planned writer move db1 → db2 driven by ApplyState, on real MariaDB in namespaces:
//! promotion, idempotency, demotion order, IP move with gratuitous ARP (the client's neighbour
//! entry follows), re-pointing db3 by GTID and a row written on the new master arriving on it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_lab::{wait_until, Lab, LabOptions};
use ha_proto::HostState;

#[test]
fn writer_moves_arp_follows_replica_repoints_and_reapply_changes_nothing() {
    let t0 = Instant::now();
    let lab = Lab::start(LabOptions::default()).expect("lab starts");
    let opts = AgentOpts::default();
    let a1 = start_agent(&lab, "db1", &opts);
    let a2 = start_agent(&lab, "db2", &opts);
    let a3 = start_agent(&lab, "db3", &opts);
    let _logs = LogsOnPanic(vec![a1.clone(), a2.clone(), a3.clone()]);
    let c = Cluster::of(&lab);
    let (w, r1, r2, r3) = (
        c.writer_role(),
        c.reader_role(0),
        c.reader_role(1),
        c.reader_role(2),
    );

    // --- db1 becomes the writer -------------------------------------------------------------
    let st = apply(
        &lab,
        "db1",
        c.req("db1", vec![w.clone(), r1.clone()], Some("db1"), 1),
    )
    .expect("apply db1");
    assert!(st.converged, "db1 not converged: {st:#?}");
    assert!(st.writer_synced, "{st:#?}");
    assert!(!st.read_only);
    let ops = op_names(&st);
    let pos = |name: &str| {
        ops.iter()
            .position(|o| o.starts_with(name))
            .unwrap_or_else(|| panic!("no {name:?} in {ops:?}"))
    };
    assert!(pos("relay-log sync") < pos("read_only=0"), "{ops:?}");
    assert!(
        pos("read_only=0") < pos(&format!("add ip {}", c.writer)),
        "{ops:?}"
    );
    assert!(
        ops.contains(&format!("gratuitous arp {}", c.writer)),
        "{ops:?}"
    );
    assert!(!lab.read_only("db1").unwrap());
    assert!(has_ip(&lab, "db1", c.writer));
    for (h, r) in [("db2", &r2), ("db3", &r3)] {
        let st = apply(&lab, h, c.req(h, vec![r.clone()], Some("db1"), 1)).expect("apply");
        assert!(st.converged, "{h}: {st:#?}");
        assert!(lab.read_only(h).unwrap());
    }
    assert_eq!(lab.writable_hosts(), vec!["db1".to_string()]);

    // The client resolves the writer IP to db1's MAC.
    let db1_mac = lab.host("db1").unwrap().mac.clone();
    let db2_mac = lab.host("db2").unwrap().mac.clone();
    let n = lab.resolve_neighbour(c.writer).unwrap();
    assert!(
        n.as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(&db1_mac)),
        "client neighbour for {}: {n:?}, db1 is {db1_mac}",
        c.writer
    );

    // --- idempotency: the same state again changes nothing -------------------------------
    let st = apply(
        &lab,
        "db1",
        c.req("db1", vec![w.clone(), r1.clone()], Some("db1"), 2),
    )
    .expect("re-apply db1");
    assert!(st.converged, "{st:#?}");
    assert!(
        st.operations.is_empty(),
        "second apply must not kill, ARP or change anything: {:?}",
        op_names(&st)
    );
    let st = apply(&lab, "db3", c.req("db3", vec![r3.clone()], Some("db1"), 2)).expect("db3");
    assert!(st.operations.is_empty(), "{:?}", op_names(&st));

    // A client connection on db1 that the demotion must kill.
    let victim_id: String = lab
        .sql_value("db1", "SELECT CONNECTION_ID()")
        .unwrap()
        .unwrap_or_default();
    assert!(!victim_id.is_empty());
    let sleeper = std::thread::spawn({
        let sock = lab.host("db1").unwrap().socket.clone();
        move || {
            ha_lab::Cmd::new("mariadb")
                .args([
                    "--no-defaults",
                    "-S",
                    sock.to_str().unwrap(),
                    "-u",
                    "root",
                    "-e",
                    "SELECT SLEEP(60)",
                ])
                .timeout(Duration::from_secs(70))
                .output()
        }
    });
    wait_until("sleeper visible on db1", Duration::from_secs(10), || {
        Ok(lab
            .sql_value("db1", "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(60)%'")?
            .is_some_and(|v| v != "0")
            .then_some(()))
    })
    .unwrap();

    // --- planned move: demote db1 (remove before add), then promote db2 ------------------
    let st =
        apply(&lab, "db1", c.req("db1", vec![r1.clone()], Some("db2"), 3)).expect("demote db1");
    assert!(st.converged, "{st:#?}");
    let ops = op_names(&st);
    let p_ro = ops
        .iter()
        .position(|o| o == "read_only=1")
        .expect("read_only=1 step");
    let p_kill = ops
        .iter()
        .position(|o| o == "kill connections")
        .expect("kill step");
    let p_rm = ops
        .iter()
        .position(|o| o.starts_with(&format!("remove ip {}", c.writer)))
        .expect("remove ip step");
    assert!(p_ro < p_kill && p_kill < p_rm, "{ops:?}");
    assert!(lab.read_only("db1").unwrap());
    assert!(!has_ip(&lab, "db1", c.writer));
    let killed = sleeper.join().unwrap().unwrap();
    assert!(
        !killed.success(),
        "the client connection on db1 should have been killed"
    );
    assert!(
        st.roles.iter().all(|r| r.name != "writer"),
        "{:?}",
        st.roles
    );

    let st = apply(
        &lab,
        "db2",
        c.req("db2", vec![w.clone(), r2.clone()], Some("db2"), 3),
    )
    .expect("promote db2");
    assert!(st.converged && st.writer_synced && !st.read_only, "{st:#?}");
    assert!(has_ip(&lab, "db2", c.writer));
    assert_eq!(lab.writable_hosts(), vec!["db2".to_string()]);

    // The gratuitous ARP moved the client's existing neighbour entry to db2's MAC (no ping).
    let mac = wait_until(
        "client neighbour entry follows the writer IP",
        Duration::from_secs(5),
        || {
            let n = lab.neighbour(c.writer)?;
            Ok(n.filter(|m| m.eq_ignore_ascii_case(&db2_mac)))
        },
    )
    .unwrap_or_else(|e| panic!("{e}; db1 {db1_mac}, db2 {db2_mac}"));
    assert!(mac.eq_ignore_ascii_case(&db2_mac));

    // --- db3 re-points to db2 by GTID; a row written on db2 arrives ----------------------
    let st =
        apply(&lab, "db3", c.req("db3", vec![r3.clone()], Some("db2"), 3)).expect("repoint db3");
    let ops = op_names(&st);
    assert!(
        ops.iter().any(|o| o.starts_with("change master to db2")),
        "{ops:?}"
    );
    let st = wait_status(
        &lab,
        "db3",
        "converged replica of db2",
        Duration::from_secs(30),
        |s| s.converged,
    );
    let rep = st.replication.clone().expect("replication");
    assert_eq!(rep.source_name, "db2", "{rep:?}");
    assert!(rep.using_gtid, "{rep:?}");
    assert_eq!(st.active_master, "db2");
    let lr = lab.replication("db3").unwrap().expect("db3 replicates");
    assert_eq!(lr.source.as_deref(), Some("db2"));
    assert!(lr.healthy(), "{lr:?}");
    lab.sql("db2", "INSERT INTO hatest.t (v) VALUES ('after-repoint')")
        .unwrap();
    wait_until(
        "row written on db2 arrives on db3",
        Duration::from_secs(20),
        || {
            Ok(lab
                .row_exists("db3", "hatest.t", "v = 'after-repoint'")?
                .then_some(()))
        },
    )
    .unwrap();
    // Re-applying on db3 changes nothing (no second CHANGE MASTER).
    let st = apply(&lab, "db3", c.req("db3", vec![r3.clone()], Some("db2"), 4)).expect("db3 again");
    assert!(st.operations.is_empty(), "{:?}", op_names(&st));

    // db1 (the old master) still replicates from db2 (master-master): unchanged.
    let st = apply(&lab, "db1", c.req("db1", vec![r1.clone()], Some("db2"), 4)).expect("db1 again");
    assert!(st.operations.is_empty(), "{:?}", op_names(&st));
    wait_until("row arrives on db1", Duration::from_secs(20), || {
        Ok(lab
            .row_exists("db1", "hatest.t", "v = 'after-repoint'")?
            .then_some(()))
    })
    .unwrap();

    // ADMIN_OFFLINE stops replication on db3; leaving it starts it again (verified running).
    let mut off = c.req("db3", vec![], Some("db2"), 5);
    off.state = HostState::AdminOffline as i32;
    let st = apply(&lab, "db3", off).expect("db3 admin offline");
    assert!(st.converged, "{st:#?}");
    assert!(
        op_names(&st).contains(&"stop slave".to_string()),
        "{:?}",
        op_names(&st)
    );
    assert!(
        !has_ip(&lab, "db3", c.readers[2]),
        "ADMIN_OFFLINE holds no roles"
    );
    let lr = lab.replication("db3").unwrap().expect("db3 replica");
    assert_eq!(
        (lr.io_running.as_str(), lr.sql_running.as_str()),
        ("No", "No")
    );
    let st =
        apply(&lab, "db3", c.req("db3", vec![r3.clone()], Some("db2"), 6)).expect("db3 online");
    let st = if st.converged {
        st
    } else {
        wait_status(
            &lab,
            "db3",
            "replication restarted",
            Duration::from_secs(30),
            |s| s.converged,
        )
    };
    assert!(
        st.operations
            .iter()
            .any(|o| o.operation == "start slave" && o.ok),
        "{:?}",
        st.operations
    );
    assert!(lab.replication("db3").unwrap().expect("replica").healthy());
    eprintln!("switchover test took {:?}", t0.elapsed());
}
