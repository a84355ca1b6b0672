//! S13: the monitor is cut off from the active master only (clients and the other hosts still
//! reach it) → no failover and no write outage: the writer's peer keeps promising not to take
//! the role, so the writer keeps its lease without the monitor, and the monitor, seeing the
//! peer's promises, keeps it ONLINE (rule O0) and says `db1 unreachable from the monitor;
//! reachable from db2`. When the cut heals nothing changes.
//!
//! S13b: the monitor *and* the other writer candidate are cut off from the writer, while the
//! third host still reaches it → the writer cannot get its peer's promise, demotes itself when
//! its lease ends, and the other candidate is promoted. I1 is sampled every 50 ms throughout
//! both, I2 checked at the end.

mod net_common;

use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, Invariants, Show};
use net_common::{assert_converged, bring_back, others, stop_and_check_i1_i2, T};

/// How long the monitor stays cut off in S13.
const CUT: Duration = Duration::from_secs(30);

fn role_table(s: &Show) -> Vec<(String, Vec<Option<String>>)> {
    s.roles
        .iter()
        .map(|r| (r.name.clone(), r.owners.clone()))
        .collect()
}

#[test]
fn s13_monitor_cut_off_from_the_writer_changes_nothing() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let before = c.show().expect("show");
    let w = before.writer().expect("a writer");
    let vip = c.lab.writer_vip();
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.lab
        .cut("mon", &w)
        .expect("cut the monitor off the writer");
    let cut = Instant::now();
    let acked_at_cut = probe.acked_so_far();
    let mut said = false;
    while cut.elapsed() < CUT {
        assert_eq!(
            c.lab.writable_hosts(),
            std::slice::from_ref(&w),
            "the writer stays the only writable host ({:?} after the cut)\n{}",
            cut.elapsed(),
            c.diagnostics()
        );
        assert_eq!(
            c.lab.holders_of(vip).expect("holders"),
            std::slice::from_ref(&w)
        );
        let s = c.show().expect("show");
        assert_eq!(s.state(&w), "ONLINE", "no state change: {}", s.brief());
        assert_eq!(role_table(&s), role_table(&before), "no role move");
        if !said {
            let text = c.control(&["show"]).expect("show").stdout;
            said = text.contains(&format!("{w} unreachable from the monitor; reachable from"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(said, "show never said why the writer stays");
    let failed: Vec<_> = (probe.attempts_so_far().into_iter())
        .filter(|a| !a.ok())
        .collect();
    assert!(failed.is_empty(), "zero write outage: {failed:?}");
    assert!(
        probe.acked_so_far() > acked_at_cut + 100,
        "clients kept writing through the cut"
    );

    c.lab.heal("mon", &w).expect("heal");
    std::thread::sleep(Duration::from_secs(5));
    let s = c.show().expect("show");
    assert!(s.all_online(), "{}", s.brief());
    assert_eq!(
        role_table(&s),
        role_table(&before),
        "no role move after the heal"
    );
    assert_converged(&c, &w);
    let report = stop_and_check_i1_i2(&c, probe, inv, &w);
    eprintln!("S13 probe: {}", report.summary());
}

#[test]
fn s13b_monitor_and_the_other_candidate_cut_off_from_the_writer() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    // The lab's writer role lists db1 and db2 (ha_lab's monitor.yaml).
    let candidate = ["db1", "db2"]
        .into_iter()
        .find(|h| *h != old)
        .expect("another writer candidate")
        .to_string();
    let vip = c.lab.writer_vip();
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.lab
        .cut("mon", &old)
        .expect("cut the monitor off the writer");
    c.lab
        .cut(&candidate, &old)
        .expect("cut the candidate off the writer");
    let cut = Instant::now();
    c.wait_for(
        &format!("{old} demotes itself (no promise from {candidate})"),
        T,
        |c| {
            let ro = c.lab.read_only(&old).map_err(|e| e.to_string())?;
            let holders = c.lab.holders_of(vip).map_err(|e| e.to_string())?;
            Ok(ro && !holders.contains(&old))
        },
    )
    .expect("the writer demotes without its peer");
    eprintln!("S13b: {old} demoted {:?} after the cut", cut.elapsed());
    c.wait_writer_ready(&candidate, T)
        .expect("the other candidate is promoted");
    eprintln!(
        "S13b: {candidate} writable {:?} after the cut",
        cut.elapsed()
    );
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");

    c.lab.heal("mon", &old).expect("heal");
    c.lab.heal(&candidate, &old).expect("heal");
    bring_back(&c, &old);
    for h in others(&c, &[&candidate]) {
        c.wait_for(&format!("{h} replicates from {candidate}"), T, |c| {
            Ok(c.lab
                .replication(&h)
                .map_err(|e| e.to_string())?
                .is_some_and(|r| r.source.as_deref() == Some(candidate.as_str()) && r.running()))
        })
        .expect("replicas follow the new writer");
    }
    assert_converged(&c, &candidate);
    let report = stop_and_check_i1_i2(&c, probe, inv, &candidate);
    eprintln!("S13b probe: {}", report.summary());
}
