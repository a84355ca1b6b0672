//! S12: `set_offline db1` (the writer) → ADMIN_OFFLINE, its roles leave (the writer moves to
//! db2, its reader to another host), replication on db1 is stopped, db1 is read-only without
//! IPs; `set_online db1` → ONLINE, it gets a reader back, its replication is restarted towards
//! the new writer and verified (threads running, a marker row arrives).

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{
    assert_unchanged_for, control_ok, reader_ips_of, role_table, wait_ips_match_show, Scenario, T,
};

#[test]
fn s12_set_offline_and_set_online_of_the_writer() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(50));
    let c = &sc.c;
    let show = c.show().expect("show");
    let old = show.writer().expect("a writer");
    assert_eq!(old, "db1", "the lab starts with db1 as writer");
    let epoch = show.epoch;

    let reply = control_ok(c, &["set_offline", &old]);
    assert!(reply.contains("changed to ADMIN_OFFLINE"), "{reply}");
    let s = c
        .wait_show("db1 ADMIN_OFFLINE without roles, writer on db2", T, |s| {
            s.state(&old) == "ADMIN_OFFLINE"
                && s.host(&old).is_some_and(|h| h.roles.is_empty())
                && s.writer().as_deref() == Some("db2")
                && s.readers_assigned()
        })
        .expect("roles leave db1");
    assert!(
        s.epoch > epoch,
        "a writer change bumps the epoch: {}",
        s.brief()
    );
    let new = "db2".to_string();
    c.wait_writer_ready(&new, T)
        .expect("db2 writable on the writer IP");
    let s = wait_ips_match_show(c);
    assert!(
        c.lab
            .ips(&old)
            .expect("ips")
            .iter()
            .all(|ip| { !s.roles.iter().any(|r| r.ips.contains(&ip.to_string())) }),
        "db1 still holds a role IP"
    );
    assert!(
        c.lab.read_only(&old).expect("read_only"),
        "db1 is read-only"
    );
    // Replication on db1 stopped (the agent's ADMIN_OFFLINE step).
    c.wait_for("replication on db1 stopped", T, |c| {
        let r = c.lab.replication(&old).map_err(|e| e.to_string())?;
        Ok(r.is_some_and(|r| r.io_running == "No" && r.sql_running == "No"))
    })
    .expect("db1 replication stopped");
    // db3 follows the new writer.
    c.wait_for("db3 replicates from db2", T, |c| {
        Ok(c.lab
            .replication("db3")
            .map_err(|e| e.to_string())?
            .is_some_and(|r| r.source.as_deref() == Some("db2") && r.running()))
    })
    .expect("db3 re-pointed");
    c.assert_row_arrives(&new, "db3", T)
        .expect("row arrives on db3");
    sc.probe
        .wait_acked(sc.probe.acked_so_far() + 5, T)
        .expect("writes go on through the writer IP");
    // ADMIN_OFFLINE is sticky: nothing brings db1 back by itself.
    let during = role_table(&c.show().expect("show"));
    assert_unchanged_for(c, &during, Duration::from_secs(3), "db1 ADMIN_OFFLINE");

    let reply = control_ok(c, &["set_online", &old]);
    assert!(reply.contains("changed to ONLINE"), "{reply}");
    c.wait_show("db1 ONLINE with a reader", T, |s| {
        s.state(&old) == "ONLINE" && !reader_ips_of(s, &old).is_empty()
    })
    .expect("db1 back");
    c.wait_for("db1 replicates from db2", T, |c| {
        Ok(c.lab
            .replication(&old)
            .map_err(|e| e.to_string())?
            .is_some_and(|r| r.source.as_deref() == Some("db2") && r.running()))
    })
    .expect("db1 replication restarted");
    c.assert_row_arrives(&new, &old, T)
        .expect("row arrives on db1");

    let report = sc.finish(&new);
    eprintln!(
        "S12 longest write outage: {} ms",
        report.longest_outage_ms()
    );
}
