//! S4: pull the active master's cable, later plug it back in → failover; the isolated old
//! master demotes itself when its writer lease expires (F9); on return AWAITING_RECOVERY (or
//! ONLINE by rule A3: unreachable < 60 s without a reboot); after `set_online` a row inserted on
//! the writer arrives on the old master — the field notes' bug (F14: replication of the old
//! master was re-pointed but never restarted) shown fixed.
//!
//! I2: one write probe runs through the writer IP for the whole scenario (every 50 ms); every
//! write it got an OK for must be on the final writer. A write *in flight* at the instant of
//! the fault is already in the old master's binlog (semi-sync AFTER_SYNC) when the link drops;
//! when the lease demotion kills the waiting session it stays committed there, unacknowledged,
//! while the new master never gets it. ha then refuses to rejoin the old master with a clear
//! reason (its agent compares GTID histories; REPLICATION_FAIL), the test rebuilds it from the
//! writer as the README tells operators to, and sets it online ([`net_common::rejoin`]).

mod net_common;

use ha_acceptance::{Cluster, ClusterOptions, Invariants};
use net_common::{assert_converged, others, rejoin, stop_and_check_i1_i2, T};

#[test]
fn s04_link_loss() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    let vip = c.lab.writer_vip();
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.lab.link_down(&old).expect("link down");
    let show = c
        .wait_show("old writer HARD_OFFLINE, writer moved", T, |s| {
            s.state(&old) == "HARD_OFFLINE" && s.writer().is_some_and(|w| w != old)
        })
        .expect("failover");
    let new = show.writer().expect("new writer");
    assert!(
        show.host(&old).expect("old").roles.is_empty(),
        "the unreachable old master keeps no role: {}",
        show.brief()
    );
    // Still cut off, the old master demoted itself (lease expired: read_only=1, writer IP
    // dropped) — the new writer is only writable after that, which the sampler checks.
    c.wait_for(&format!("isolated {old} demoted itself"), T, |c| {
        let ro = c.lab.read_only(&old).map_err(|e| e.to_string())?;
        let ips = c.lab.ips(&old).map_err(|e| e.to_string())?;
        Ok(ro && !ips.contains(&vip))
    })
    .expect("F9: lease demotion of the isolated master");
    c.wait_writer_ready(&new, T)
        .expect("new writer writable on the writer IP");
    for h in others(&c, &[&old, &new]) {
        c.wait_for(&format!("{h} replicates from {new}"), T, |c| {
            Ok(c.lab
                .replication(&h)
                .map_err(|e| e.to_string())?
                .is_some_and(|r| r.source.as_deref() == Some(new.as_str()) && r.running()))
        })
        .expect("replica re-pointed");
    }
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");

    c.lab.link_up(&old).expect("link up");
    let (returned, rebuilt) = rejoin(&c, &old, &new);
    eprintln!("S4: {old} came back {returned}, rebuilt: {rebuilt}");
    // F14: replication of the old master restarted towards the new writer, end to end.
    c.wait_replicating_from(&new, T)
        .expect("old master replicates from the new writer");
    c.assert_row_arrives(&new, &old, T)
        .expect("F14: a row inserted on the writer arrives on the old master");

    assert_converged(&c, &new);
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes still succeed");
    let report = stop_and_check_i1_i2(&c, probe, inv, &new);
    eprintln!("S4 probe: {}", report.summary());
}
