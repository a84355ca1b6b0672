//! A promotion catches up from a replica that is ahead of the new master. MariaDB sends the old
//! master's binlog events to every replica before the semi-sync ACK, so db3 (which does not
//! acknowledge) can hold a transaction db2 (the candidate) never received. Promoted as is, db2
//! would leave db3 with a transaction its new master lacks: refused for ever. The agent on db2
//! replicates the difference from db3 before it becomes writable, and db3 then follows db2.

mod common;

use std::time::Duration;

use common::*;
use ha_lab::{wait_until, Lab, LabOptions};

fn count(lab: &Lab, host: &str, sql: &str) -> Option<u64> {
    lab.sql_value(host, sql)
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
}

#[test]
fn promotion_catches_up_from_a_replica_ahead_of_it() {
    let lab = Lab::start(LabOptions::default()).expect("lab starts");
    let opts = AgentOpts::default();
    let a2 = start_agent(&lab, "db2", &opts);
    let a3 = start_agent(&lab, "db3", &opts);
    let _logs = LogsOnPanic(vec![a2.clone(), a3.clone()]);
    let c = Cluster::of(&lab);

    lab.make_writable("db1").expect("db1 writable");
    lab.sql(
        "db1",
        "CREATE TABLE hatest.cu_t (id INT PRIMARY KEY); INSERT INTO hatest.cu_t VALUES (0)",
    )
    .expect("table on db1 (acknowledged by db2)");
    let row = |id: u32| format!("SELECT COUNT(*) FROM hatest.cu_t WHERE id = {id}");
    for h in ["db2", "db3"] {
        wait_until(&format!("{h} has row 0"), Duration::from_secs(20), || {
            Ok((count(&lab, h, &row(0)) == Some(1)).then_some(()))
        })
        .unwrap();
    }
    // db2 stops receiving; db1's next write reaches db3 only (no semi-sync replica connected:
    // the commit does not wait).
    lab.stop_io_thread("db2").expect("stop db2's IO thread");
    lab.sql("db1", "INSERT INTO hatest.cu_t VALUES (1)")
        .expect("write on db1");
    wait_until("db3 has row 1", Duration::from_secs(20), || {
        Ok((count(&lab, "db3", &row(1)) == Some(1)).then_some(()))
    })
    .unwrap();
    assert_eq!(count(&lab, "db2", &row(1)), Some(0), "db2 is behind db3");
    lab.stop_mysqld("db1").expect("the old master dies");

    // Promote db2.
    let st = apply(
        &lab,
        "db2",
        c.req("db2", vec![c.writer_role()], Some("db2"), 2),
    )
    .expect("apply db2");
    let st = if st.converged {
        st
    } else {
        wait_status(&lab, "db2", "promotion", Duration::from_secs(30), |s| {
            s.converged
        })
    };
    assert!(!st.read_only, "{st:#?}");
    assert_eq!(
        count(&lab, "db2", &row(1)),
        Some(1),
        "db2 caught up from db3 before becoming writable"
    );
    let log = a2.log();
    assert!(
        log.contains("catching up from it before becoming writable")
            && log.contains("caught up from db3"),
        "the agent says what it did:\n{log}"
    );
    let conns = lab
        .sql("db2", "SHOW ALL SLAVES STATUS")
        .expect("show all slaves");
    assert!(
        !conns.iter().flatten().any(|v| v == "ha_catchup"),
        "the temporary connection is removed: {conns:?}"
    );

    // db3 follows db2: nothing errant, replication runs, a new row arrives.
    let st = apply(&lab, "db3", c.req("db3", vec![], Some("db2"), 2)).expect("apply db3");
    let st = if st.converged {
        st
    } else {
        wait_status(&lab, "db3", "re-point", Duration::from_secs(30), |s| {
            s.converged
        })
    };
    assert!(st.last_error.is_empty(), "{st:#?}");
    lab.sql("db2", "INSERT INTO hatest.cu_t VALUES (2)")
        .expect("write on db2");
    wait_until("db3 has row 2", Duration::from_secs(20), || {
        Ok((count(&lab, "db3", &row(2)) == Some(1)).then_some(()))
    })
    .unwrap();
    assert!(
        !a3.log().contains("refused"),
        "db3 was not refused:\n{}",
        a3.log()
    );
}
