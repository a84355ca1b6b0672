//! S11: `ha-control move_role writer db2` under write load (a write every 50 ms through the
//! writer IP) → planned switch: db2 becomes the only writer, no acknowledged write is lost
//! (I2), the write pause is short, every replica follows db2; then back to db1 the same way
//! (I3 on db1).

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{control_ok, Scenario, T};

#[test]
fn s11_move_writer_under_write_load() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(50));
    let c = &sc.c;
    let show = c.show().expect("show");
    let old = show.writer().expect("a writer");
    assert_eq!(old, "db1", "the lab starts with db1 as writer");
    sc.probe.wait_acked(20, T).expect("write load running");

    let reply = control_ok(c, &["move_role", "writer", "db2"]);
    assert!(
        reply.contains("has been moved from 'db1' to 'db2'"),
        "{reply}"
    );
    let s = c
        .wait_show("writer on db2", T, |s| s.writer().as_deref() == Some("db2"))
        .expect("writer moved");
    assert!(s.epoch > show.epoch, "a writer change bumps the epoch");
    assert_eq!(s.state("db1"), "ONLINE", "{}", s.brief());
    c.wait_writer_ready("db2", T)
        .expect("db2 writable on the writer IP");
    assert!(c.lab.read_only("db1").expect("read_only"), "db1 read-only");
    sc.probe
        .wait_acked(sc.probe.acked_so_far() + 20, T)
        .expect("writes resume on db2");
    // The move sticks (no preferred host pulls it back).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.show().expect("show").writer().as_deref(), Some("db2"));
    c.wait_replicating_from("db2", T)
        .expect("replicas follow db2");
    c.assert_row_arrives("db2", "db1", T)
        .expect("row arrives on db1");

    // And back, still under load: the old writer is a valid target again.
    let epoch = c.show().expect("show").epoch;
    let reply = control_ok(c, &["move_role", "writer", "db1"]);
    assert!(
        reply.contains("has been moved from 'db2' to 'db1'"),
        "{reply}"
    );
    let s = c
        .wait_show("writer back on db1", T, |s| {
            s.writer().as_deref() == Some("db1")
        })
        .expect("writer moved back");
    assert!(s.epoch > epoch, "a writer change bumps the epoch");
    c.wait_writer_ready("db1", T)
        .expect("db1 writable on the writer IP");

    let report = sc.finish("db1");
    let outage = report.longest_outage();
    eprintln!("S11 longest write pause over two move_role: {outage:?}");
    assert!(outage < Duration::from_secs(10), "write pause {outage:?}");
}
