//! The hand-over from another HA tool (mysql-mmm) to ha without a write pause
//! (docs/migrating-from-mmm.md, section 5): `ha-agent --adopt-writer` on the writer, the agents,
//! then the monitor. The cluster starts as mysql-mmm leaves it: db1 the writable active master
//! with the writer IP, every host one reader IP, the others read-only replicas, no ha state
//! anywhere.

mod net_common;

use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, Invariants};
use ha_lab::Cmd;
use net_common::T;

/// What mysql-mmm leaves behind when its daemons are stopped.
fn as_mmm_left_it(c: &Cluster) {
    c.lab.make_writable("db1").expect("db1 writable");
    c.lab.add_ip("db1", c.lab.writer_vip()).expect("writer IP");
    for (host, ip) in c.lab.host_names().iter().zip(c.lab.reader_vips()) {
        c.lab.add_ip(host, ip).expect("reader IP");
    }
    assert_eq!(c.lab.writable_hosts(), ["db1"]);
}

/// `ha-agent --adopt-writer --config <db1's agent.yaml>`; returns (exit code, stdout + stderr).
fn permit_adoption(c: &Cluster, host: &str) -> (i32, String) {
    let cfg = c.lab.write_agent_config(host).expect("agent config");
    let out = Cmd::new(c.bins.agent.display().to_string())
        .args(["--adopt-writer", "--config"])
        .arg(cfg.display().to_string())
        .timeout(Duration::from_secs(10))
        .output()
        .expect("ha-agent --adopt-writer");
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", out.stdout, out.stderr),
    )
}

#[test]
fn adopting_the_running_writer_costs_no_write() {
    let c = Cluster::prepare(ClusterOptions::fast()).expect("lab");
    as_mmm_left_it(&c);
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    let (code, out) = permit_adoption(&c, "db1");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("adoption permitted once"), "{out}");

    // Section 5: the other hosts' agents, then the writer's, then the monitor.
    c.start_agent("db2").expect("agent db2");
    c.start_agent("db3").expect("agent db3");
    let adopted_at = Instant::now();
    c.start_agent("db1").expect("agent db1");
    c.start_monitor().expect("monitor");

    let show = c
        .wait_show("db1 ONLINE with the writer role", T, |s| {
            s.writer().as_deref() == Some("db1") && s.state("db1") == "ONLINE"
        })
        .expect("the monitor keeps db1 the writer");
    eprintln!("after the hand-over: {}", show.brief());
    // Past the end of the adoption window: the monitor's lease replaced the adoption, so
    // nothing is fenced when the window ends.
    let window = Duration::from_millis(ha_lease::ADOPT_WINDOW_MS);
    while adopted_at.elapsed() < window + Duration::from_secs(3) {
        assert_eq!(
            c.lab.writable_hosts(),
            ["db1"],
            "db1 stays the only writable host"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let acked = probe.acked_so_far();
    probe.wait_acked(acked + 5, T).expect("writes go on");
    let report = probe.stop();
    inv.assert_clean();
    assert_eq!(
        report.failed_count(),
        0,
        "no write failed during the hand-over: {}",
        report.summary()
    );
    c.assert_no_acked_write_lost(&report, "db1");

    let log = c.agent("db1").expect("agent").log();
    for said in [
        "adopting the writable server",
        "the monitor granted the writer role to the adopted writer",
    ] {
        assert!(log.contains(said), "db1's agent says {said:?}:\n{log}");
    }
    assert!(!log.contains("fencing now"), "db1 was not fenced:\n{log}");
    // Used once: a second permission is refused now that the agent has a state file.
    let (code, out) = permit_adoption(&c, "db1");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("has run on this host before"), "{out}");
    eprintln!("hand-over probe: {}", report.summary());
}

#[test]
fn an_adoption_no_monitor_confirms_ends_in_a_fence() {
    let c = Cluster::prepare(ClusterOptions::fast()).expect("lab");
    as_mmm_left_it(&c);
    let (code, out) = permit_adoption(&c, "db1");
    assert_eq!(code, 0, "{out}");
    let started = Instant::now();
    c.start_agent("db1").expect("agent db1");
    let window = Duration::from_millis(ha_lease::ADOPT_WINDOW_MS);
    // Writable while adopting (no monitor yet)…
    std::thread::sleep(window / 2);
    assert_eq!(
        c.lab.read_only("db1").ok(),
        Some(false),
        "db1 adopted: still writable half-way through the window"
    );
    // …and fenced when the window ends without a grant.
    c.wait_for("db1 fenced when the adoption ends", T, |c| {
        c.lab.read_only("db1").map_err(|e| e.to_string())
    })
    .expect("fenced");
    let took = started.elapsed();
    assert!(
        took >= window - Duration::from_secs(2),
        "fenced after {took:?}, before the window ended"
    );
    let log = c.agent("db1").expect("agent").log();
    assert!(
        log.contains("the adoption ended after"),
        "db1's agent says why it fenced:\n{log}"
    );
    // The permission was used: a restarted agent fences nothing more and adopts nothing.
    let (code, out) = permit_adoption(&c, "db1");
    assert_eq!(code, 1, "{out}");
}
