//! The write probe runs in the client namespace, sees outages and finds lost acknowledged rows.

use std::time::Duration;

use ha_lab::{Lab, LabOptions, ProbeOptions};

#[test]
fn probe_sees_outage_and_missing_rows() {
    let lab = Lab::start(LabOptions::default()).unwrap();
    lab.make_writable("db1").unwrap();
    let vip = lab.writer_vip();
    lab.add_ip("db1", vip).unwrap();

    let probe = lab.start_probe(ProbeOptions::new(vip)).unwrap();
    probe.wait_acked(5, Duration::from_secs(10)).unwrap();
    // The socket lives in the client namespace: it resolved the VIP to db1's MAC.
    let mac = lab
        .neighbour(vip)
        .unwrap()
        .expect("cli has an ARP entry for the VIP");
    assert_eq!(lab.node_with_mac(&mac).as_deref(), Some("db1"));

    lab.stop_mysqld("db1").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    lab.start_mysqld("db1").unwrap();
    lab.make_writable("db1").unwrap();
    let before = probe.acked_so_far();
    probe
        .wait_acked(before + 5, Duration::from_secs(15))
        .unwrap();
    let report = probe.stop();
    eprintln!("{}", report.summary());
    assert!(report.probe_error.is_none(), "{report:?}");
    assert!(report.failed_count() > 0);
    assert!(
        report.longest_outage() >= Duration::from_millis(1500),
        "{}",
        report.summary()
    );
    assert!(report.longest_outage() < Duration::from_secs(20));

    // Every acknowledged write reached the semi-sync replicas.
    lab.wait_caught_up("db2", "db1", Duration::from_secs(10))
        .unwrap();
    lab.wait_caught_up("db3", "db1", Duration::from_secs(10))
        .unwrap();
    for h in ["db1", "db2", "db3"] {
        assert!(report.missing_on(&lab, h).unwrap().is_empty(), "{h}");
    }

    // Losing an acknowledged row on db3 (locally, not replicated) is detected.
    let victim = report.acked()[3];
    lab.sql(
        "db3",
        &format!(
            "SET SESSION sql_log_bin=0; DELETE FROM hatest.probe WHERE run='{}' AND seq={victim}",
            report.run
        ),
    )
    .unwrap();
    assert_eq!(report.missing_on(&lab, "db3").unwrap(), vec![victim]);
    assert!(report.missing_on(&lab, "db2").unwrap().is_empty());
}

#[test]
fn probe_against_read_only_host_fails_every_attempt() {
    let lab = Lab::start(LabOptions::hosts(1)).unwrap();
    let ip = lab.host("db1").unwrap().ip;
    let probe = lab
        .start_probe(ProbeOptions::new(ip).interval(Duration::from_millis(50)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let report = probe.stop();
    assert_eq!(report.ok_count(), 0, "{}", report.summary());
    assert!(report.failed_count() >= 3);
    assert!(
        report
            .errors()
            .iter()
            .any(|(e, _)| e.contains("read-only") || e.contains("1290")),
        "{:?}",
        report.errors()
    );
    assert!(report.longest_outage() >= Duration::from_millis(500));
}
