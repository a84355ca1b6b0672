//! F6 end to end: a candidate that cannot apply its relay log is never made writable.
//!
//! db2's SQL thread is blocked (a row lock, the lab's `induce_lag`) behind an event from db1
//! while db1 keeps taking writes; db2 receives and acknowledges them but cannot apply them.
//! Then db1's mysqld stops. The monitor gives db2 the writer role; db2's agent waits
//! `sync_timeout` for its relay log, refuses to become writable and reports why
//! (`AgentStatus.promotion_error`); the monitor logs the failed promotion and orphans the role
//! (db3 is no master candidate: no writer meanwhile, and never a writable db2 with missing
//! rows — I1 sampled throughout). Once the lock is gone the retry promotes db2, with every
//! acknowledged row (I2).

use std::time::Duration;

use ha_acceptance::{Cluster, ClusterOptions, Invariants};

/// Generous: the agent's sync_timeout (30 s) plus the monitor's promotion retry (30 s).
const T: Duration = Duration::from_secs(120);

#[test]
fn f06_failed_promotion_stays_read_only_and_is_retried() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    let cand = if old == "db1" { "db2" } else { "db1" }.to_string();
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    let lag = c
        .lab
        .induce_lag(&cand, 1)
        .expect("block the candidate's SQL thread");
    probe
        .wait_acked(probe.acked_so_far() + 10, T)
        .expect("writes acknowledged while the candidate cannot apply them");
    c.lab.stop_mysqld(&old).expect("stop mysqld on the writer");

    let failed = format!("Promotion of '{cand}' to 'writer(");
    c.wait_for("the failed promotion is logged", T, |c| {
        let log = c.monitor().map(|m| m.log()).unwrap_or_default();
        Ok(log
            .lines()
            .any(|l| l.contains(&failed) && l.contains("relay-log sync")))
    })
    .expect("F6: the candidate refuses and the monitor says so");
    assert_eq!(
        c.lab.read_only(&cand).ok(),
        Some(true),
        "{cand} stays read-only while its relay log is not applied"
    );
    let show = c.show().expect("show");
    assert_ne!(
        show.writer().as_deref(),
        Some(old.as_str()),
        "the dead writer keeps no role: {}",
        show.brief()
    );
    let agent_log = c.agent(&cand).expect("agent").log();
    assert!(
        agent_log.contains("relay log not applied within sync_timeout"),
        "the agent says why:\n{agent_log}"
    );

    // Repair: the lock goes, the relay log is applied, the retry promotes.
    lag.release().expect("release the lock");
    c.wait_show(&format!("{cand} is the writer"), T, |s| {
        s.writer().as_deref() == Some(cand.as_str())
    })
    .expect("the promotion is retried");
    c.wait_writer_ready(&cand, T)
        .expect("the retried promotion makes it writable on the writer IP");
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");
    let report = probe.stop();
    inv.assert_clean();
    c.assert_no_acked_write_lost(&report, &cand);
    eprintln!("F6 probe: {}", report.summary());
}
