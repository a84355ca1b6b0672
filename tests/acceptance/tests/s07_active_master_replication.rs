//! S7: stop replication on the active master → nothing moves. mysql-mmm's rule O2: replication
//! problems of the active master are never acted upon (its "replication" is the link back from
//! the passive master, irrelevant to the clients).
//!
//! The fault is injected after the 60 s peer grace (O3), so it is O2 that keeps the master
//! ONLINE, not the grace.

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{assert_unchanged_for, check_ok, role_table, Scenario, T};

#[test]
fn s7_replication_stopped_on_the_active_master_moves_nothing() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(100));
    let c = &sc.c;
    let show = c.show().expect("show");
    let writer = show.writer().expect("a writer");
    let epoch = show.epoch;
    sc.wait_peer_grace();
    let before = role_table(&c.show().expect("show"));

    c.lab
        .stop_replication(&writer)
        .expect("STOP SLAVE on the writer");
    // The monitor sees it (its check fails)…
    c.wait_for(&format!("rep_threads on {writer} failing"), T, |c| {
        Ok(!check_ok(c, &writer, "rep_threads")?)
    })
    .expect("rep_threads fails");
    // …and nothing moves for many check periods (0.2 s) and trap periods (1 s).
    assert_unchanged_for(
        c,
        &before,
        Duration::from_secs(8),
        "replication stopped on the active master",
    );
    let s = c.show().expect("show");
    assert_eq!(s.epoch, epoch, "no writer change: {}", s.brief());
    assert_eq!(c.lab.writable_hosts(), vec![writer.clone()]);
    assert_eq!(
        c.lab.holders_of(c.lab.writer_vip()).expect("holders"),
        vec![writer.clone()]
    );
    assert!(
        sc.probe.acked_so_far() > 0,
        "writes went on through the writer IP"
    );

    c.lab
        .start_replication(&writer)
        .expect("START SLAVE on the writer");
    c.wait_for(&format!("rep_threads on {writer} ok"), T, |c| {
        check_ok(c, &writer, "rep_threads")
    })
    .expect("rep_threads ok again");
    assert_unchanged_for(c, &before, Duration::from_secs(2), "replication restarted");

    sc.finish(&writer);
}
