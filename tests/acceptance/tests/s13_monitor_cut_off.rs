//! S13: the monitor is cut off from the active master only (clients and the other hosts still
//! reach it) → the monitor fails over, but the old master keeps serving until its writer lease
//! expires and then demotes itself (F9); the new writer becomes writable only after that. I1 is
//! sampled every 50 ms throughout: this is the two-writers test. Heal, `set_online`, I3.

mod net_common;

use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, Invariants};
use net_common::{assert_converged, bring_back, others, quick_read_only, stop_and_check_i1_i2, T};

#[test]
fn s13_monitor_cut_off() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    let vip = c.lab.writer_vip();
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.lab
        .cut("mon", &old)
        .expect("cut the monitor off the master");
    let cut_at = Instant::now();
    let acked_at_cut = probe.acked_so_far();

    // Timeline, sampled every ~50 ms: when did the old master stop being a writer (read_only=1
    // and no writer IP), when did another host become writable?
    let mut old_demoted: Option<Duration> = None;
    let mut new_writable: Option<(String, Duration)> = None;
    let mut acked_at_demotion = None;
    while new_writable.is_none() {
        assert!(
            cut_at.elapsed() < T,
            "no new writer within {T:?}\n{}",
            c.diagnostics()
        );
        if old_demoted.is_none() {
            let ro = quick_read_only(&c.lab, &old);
            let has_vip = c.lab.ips(&old).expect("ips").contains(&vip);
            if ro == Some(true) && !has_vip {
                old_demoted = Some(cut_at.elapsed());
                acked_at_demotion = Some(probe.acked_so_far());
            }
        }
        for h in others(&c, &[&old]) {
            if quick_read_only(&c.lab, &h) == Some(false) {
                new_writable = Some((h, cut_at.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let (new, new_at) = new_writable.expect("new writer");
    let old_at = old_demoted.unwrap_or_else(|| {
        panic!(
            "{new} became writable at +{new_at:?} while {old} had not demoted itself\n{}",
            c.diagnostics()
        )
    });
    eprintln!("S13: {old} demoted at +{old_at:?}, {new} writable at +{new_at:?}");
    assert!(old_at <= new_at);
    // The old master kept serving clients until its lease ran out: writes were acknowledged
    // after the cut (it is still reachable by clients and replicas).
    let acked_at_demotion = acked_at_demotion.unwrap_or_default();
    assert!(
        acked_at_demotion > acked_at_cut,
        "the old master served no write between the cut ({acked_at_cut} acked) and its demotion ({acked_at_demotion})"
    );
    let agent_log = c.agent(&old).expect("agent").log();
    assert!(
        agent_log.contains("writer lease expired"),
        "{old} demoted itself because its lease expired:\n{agent_log}"
    );

    let show = c
        .wait_show("old writer HARD_OFFLINE, writer on the new host", T, |s| {
            s.state(&old) == "HARD_OFFLINE" && s.writer().as_deref() == Some(new.as_str())
        })
        .expect("failover as seen by the monitor");
    assert!(
        show.host(&old).expect("old").roles.is_empty(),
        "{}",
        show.brief()
    );
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

    c.lab.heal("mon", &old).expect("heal");
    let returned = bring_back(&c, &old);
    eprintln!("S13: {old} came back {returned}");
    c.wait_replicating_from(&new, T)
        .expect("old master replicates from the new writer");
    c.assert_row_arrives(&new, &old, T)
        .expect("a row inserted on the writer arrives on the old master");

    assert_converged(&c, &new);
    let report = stop_and_check_i1_i2(&c, probe, inv, &new);
    eprintln!("S13 probe: {}", report.summary());
}
