use super::*;
use crate::preflight::testdata::{lab, replicating_from};
use crate::preflight::{HostFacts, Level};

const BACKLOG: Duration = Duration::from_secs(10);

fn members(facts: &[HostFacts]) -> Vec<Member<'_>> {
    let names = ["db1", "db2", "db3"];
    let peers = [Some("db2"), Some("db1"), None];
    facts
        .iter()
        .enumerate()
        .map(|(i, f)| Member {
            name: names[i],
            ip: format!("10.0.0.{}", 11 + i).parse().unwrap(),
            port: 3306,
            candidate: i < 2,
            peer: peers[i],
            facts: Some(f),
        })
        .collect()
}

fn lines(facts: &[HostFacts]) -> Vec<String> {
    topology_lines(&members(facts), BACKLOG)
        .iter()
        .map(|l| l.to_string())
        .collect()
}

fn row_mut(f: &mut HostFacts) -> &mut SlaveRow {
    match &mut f.replica {
        Replica::Of(r) => r,
        other => panic!("not a replica: {other:?}"),
    }
}

#[test]
fn the_labs_topology_is_ok() {
    let got = lines(&lab());
    assert_eq!(
        got,
        [
            "OK   topology db1: the writer (the writable host); replicates from its peer db2 (Slave_IO_Running: Yes, Slave_SQL_Running: Yes)",
            "OK   topology db2: replicates from the writer db1 (10.0.0.11:3306), Slave_IO_Running: Yes, Slave_SQL_Running: Yes, 0 s behind",
            "OK   topology db3: replicates from the writer db1 (10.0.0.11:3306), Slave_IO_Running: Yes, Slave_SQL_Running: Yes, 0 s behind",
        ]
    );
}

#[test]
fn before_the_first_start_the_common_source_is_the_writer() {
    let mut facts = lab();
    facts[0].vars.insert("read_only".into(), "ON".into());
    let got = lines(&facts);
    assert!(
        got[0].starts_with("OK   topology db1: the writer (no host is writable yet; the source of every other host)"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("OK   topology db3: replicates from the writer db1"),
        "{got:?}"
    );
    // Two hosts replicating from each other: either is the writer; the first candidate is taken.
    let two = &facts[..2];
    let got = lines(two);
    assert!(got.iter().all(|l| l.starts_with("OK   ")), "{got:?}");
}

#[test]
fn no_common_source_and_no_writer_fails_with_the_edges() {
    let mut facts = lab();
    facts[0].vars.insert("read_only".into(), "ON".into());
    facts[2].replica = Replica::None;
    let got = lines(&facts);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("FAIL topology: no host is writable and no host is the source of every other host (db1 ← db2, db2 ← db1, db3 ← nobody) — fix: "),
        "{got:?}"
    );
}

#[test]
fn a_replica_of_another_host_fails_with_the_change_master_to_run() {
    let mut facts = lab();
    *row_mut(&mut facts[2]) = replicating_from("10.0.0.12");
    let l = &topology_lines(&members(&facts), BACKLOG)[2];
    assert_eq!(l.level, Level::Fail);
    assert!(
        l.to_string().starts_with(
            "FAIL topology db3: replicates from db2 (10.0.0.12:3306), not from the writer db1 (10.0.0.11:3306) — fix: on db3: STOP SLAVE; CHANGE MASTER TO MASTER_HOST='10.0.0.11', MASTER_PORT=3306,"
        ),
        "{l}"
    );
    assert!(l
        .fix
        .as_deref()
        .unwrap_or_default()
        .contains("MASTER_USE_GTID=slave_pos"));
}

#[test]
fn a_replica_of_an_unknown_address_or_port_fails() {
    let mut facts = lab();
    *row_mut(&mut facts[2]) = replicating_from("10.0.0.160");
    let l = &topology_lines(&members(&facts), BACKLOG)[2];
    assert_eq!(l.level, Level::Fail);
    assert!(
        l.detail
            .starts_with("replicates from 10.0.0.160:3306, which is no host's"),
        "{l}"
    );
    let mut facts = lab();
    row_mut(&mut facts[2]).master_port = Some(3307);
    assert_eq!(
        topology_lines(&members(&facts), BACKLOG)[2].level,
        Level::Fail
    );
}

#[test]
fn no_replication_or_stopped_threads_fail() {
    let mut facts = lab();
    facts[2].replica = Replica::None;
    let l = &topology_lines(&members(&facts), BACKLOG)[2];
    assert_eq!(l.level, Level::Fail);
    assert!(l.detail.starts_with("does not replicate"), "{l}");

    let mut facts = lab();
    let r = row_mut(&mut facts[2]);
    r.io_running = "No".into();
    r.sql_running = "No".into();
    let l = &topology_lines(&members(&facts), BACKLOG)[2];
    assert_eq!(
        l.to_string(),
        "FAIL topology db3: replication from the writer db1 is not running (Slave_IO_Running: No, Slave_SQL_Running: No) — fix: START SLAVE on db3; if a thread stops again, its Last_IO_Error/Last_SQL_Error says why (docs/troubleshooting.md#replication-steps)"
    );
}

#[test]
fn connecting_warns_unless_it_failed_and_lag_warns() {
    let mut facts = lab();
    row_mut(&mut facts[2]).io_running = "Connecting".into();
    assert_eq!(
        topology_lines(&members(&facts), BACKLOG)[2].level,
        Level::Warn
    );
    row_mut(&mut facts[2]).last_io_error = "error connecting to master".into();
    let l = &topology_lines(&members(&facts), BACKLOG)[2];
    assert_eq!(l.level, Level::Fail);
    assert!(
        l.detail
            .contains("Last_IO_Error: error connecting to master"),
        "{l}"
    );

    let mut facts = lab();
    row_mut(&mut facts[1]).seconds_behind = Some(60);
    let l = &topology_lines(&members(&facts), BACKLOG)[1];
    assert_eq!(l.level, Level::Warn);
    assert!(
        l.detail
            .contains("Backlog is too big (60 s > max_backlog 10 s)"),
        "{l}"
    );
}

#[test]
fn a_source_given_by_name_warns() {
    let mut facts = lab();
    row_mut(&mut facts[2]).master_host = "db1".into();
    let l = &topology_lines(&members(&facts), BACKLOG)[2];
    assert_eq!(l.level, Level::Warn);
    assert!(l.detail.contains("Master_Host is the name \"db1\""), "{l}");
}

#[test]
fn the_writer_may_replicate_from_its_peer_only() {
    let mut facts = lab();
    *row_mut(&mut facts[0]) = replicating_from("10.0.0.13");
    let l = &topology_lines(&members(&facts), BACKLOG)[0];
    assert_eq!(l.level, Level::Warn);
    assert!(
        l.detail
            .contains("replicates from db3 (10.0.0.13:3306), which is not its peer"),
        "{l}"
    );
    let mut facts = lab();
    facts[0].replica = Replica::None;
    assert_eq!(
        topology_lines(&members(&facts), BACKLOG)[0].to_string(),
        "OK   topology db1: the writer (the writable host); replicates from nobody"
    );
    let mut facts = lab();
    row_mut(&mut facts[0]).sql_running = "No".into();
    assert_eq!(
        topology_lines(&members(&facts), BACKLOG)[0].level,
        Level::Warn
    );
}

#[test]
fn two_writable_hosts_are_not_judged_and_unread_hosts_are_skipped() {
    let mut facts = lab();
    facts[1].vars.insert("read_only".into(), "OFF".into());
    let got = lines(&facts);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("WARN topology: not checked"), "{got:?}");
    let facts = lab();
    let mut m = members(&facts);
    m[2].facts = None;
    assert_eq!(topology_lines(&m, BACKLOG).len(), 2);
}
