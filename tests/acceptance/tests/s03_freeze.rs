//! S3: freeze the active master's host (every process SIGSTOPped + cable pulled: a kernel
//! panic) → failover as in S1: the old writer HARD_OFFLINE without roles, the writer moves, the
//! new writer is writable on the writer IP, db3 replicates from it. Then the host comes back:
//! its agent's writer lease expired while it was frozen, so it demotes itself (read_only=1,
//! writer IP dropped) and never becomes a second writer; AWAITING_RECOVERY (or ONLINE by rule
//! A3), `set_online` → ONLINE, replicating from the new writer (I3).
//!
//! I1 is sampled as clients can observe it ([`NetworkInvariants`]): a frozen host keeps
//! `read_only=0` and the writer IP in its stopped state for as long as it is frozen — nothing on
//! it can run, only fencing (`kill_host_bin`, not configured in the lab) could change that — but
//! it is unreachable. The host therefore resumes in two stages, as a machine whose processes run
//! again before its network is back: processes first (the agent notices the expired lease and
//! demotes the server), cable second. The test asserts the demotion happened before the cable
//! went back in, and the sampler checks the host from then on.
//!
//! I2: one write probe runs through the writer IP for the whole scenario (every 50 ms); every
//! acknowledged row must be on the final writer. A write in flight at the instant of the freeze
//! can stay committed, unacknowledged, in the old master's binlog; ha then refuses to rejoin it
//! with a clear reason and the test rebuilds it from the writer (see s04_link_loss.rs and
//! [`net_common::rejoin`]).

mod net_common;

use ha_acceptance::{Cluster, ClusterOptions};
use ha_lab::{netns, Cmd};
use net_common::{
    assert_converged, others, quick_read_only, rejoin, stop_and_check_i1_i2, NetworkInvariants, T,
};

#[test]
fn s03_freeze() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    let vip = c.lab.writer_vip();
    let inv = NetworkInvariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.lab.freeze(&old).expect("freeze");
    let show = c
        .wait_show("old writer HARD_OFFLINE, writer moved", T, |s| {
            s.state(&old) == "HARD_OFFLINE" && s.writer().is_some_and(|w| w != old)
        })
        .expect("failover");
    let new = show.writer().expect("new writer");
    assert!(
        show.host(&old).expect("old").roles.is_empty(),
        "the frozen old master keeps no role: {}",
        show.brief()
    );
    // The new writer is writable and the only reachable holder of the writer IP (the frozen
    // host still carries it in its stopped kernel state, behind a pulled cable).
    c.wait_for(&format!("{new} writable on the writer IP"), T, |c| {
        let holders: Vec<String> = c
            .lab
            .holders_of(vip)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|h| *h != old)
            .collect();
        let writable: Vec<String> = others(c, &[&old])
            .into_iter()
            .filter(|h| quick_read_only(&c.lab, h) == Some(false))
            .collect();
        Ok(holders == [new.clone()] && writable == [new.clone()])
    })
    .expect("new writer writable on the writer IP");
    c.wait_show("readers re-assigned", T, |s| s.readers_assigned())
        .expect("readers");
    for h in others(&c, &[&old, &new]) {
        c.wait_for(&format!("{h} replicates from {new}"), T, |c| {
            Ok(c.lab
                .replication(&h)
                .map_err(|e| e.to_string())?
                .is_some_and(|r| r.source.as_deref() == Some(new.as_str()) && r.running()))
        })
        .expect("replica re-pointed");
        c.assert_row_arrives(&new, &h, T).expect("row arrives");
    }
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");

    // Thaw, stage 1: processes run again, cable still out.
    let ns = c.lab.host(&old).expect("host").ns.clone();
    // One by one: short-lived commands entering the namespace (the samplers' `ip -n`) may be
    // gone by the time they are signalled.
    for pid in netns::pids(&ns).expect("pids") {
        let _ = Cmd::new("kill").args(["-CONT", &pid.to_string()]).output();
    }
    c.wait_for(&format!("thawed {old} demoted itself"), T, |c| {
        let ips = c.lab.ips(&old).map_err(|e| e.to_string())?;
        Ok(quick_read_only(&c.lab, &old) == Some(true) && !ips.contains(&vip))
    })
    .expect("F9: the expired lease demotes the thawed master");
    let agent_log = c.agent(&old).expect("agent").log();
    assert!(
        agent_log.contains("writer lease expired"),
        "the agent on {old} says why it demoted:\n{agent_log}"
    );
    // Stage 2: cable back in.
    c.lab.link_up(&old).expect("link up");
    let (returned, rebuilt) = rejoin(&c, &old, &new);
    eprintln!("S3: {old} came back {returned}, rebuilt: {rebuilt}");
    let show = c.show().expect("show");
    assert_eq!(
        show.writer().as_deref(),
        Some(new.as_str()),
        "the writer stays on {new}: {}",
        show.brief()
    );
    c.wait_replicating_from(&new, T)
        .expect("old master replicates from the new writer");
    c.assert_row_arrives(&new, &old, T)
        .expect("a row inserted on the writer arrives on the old master");

    assert_converged(&c, &new);
    let report = stop_and_check_i1_i2(&c, probe, inv, &new);
    eprintln!("S3 probe: {}", report.summary());
}
