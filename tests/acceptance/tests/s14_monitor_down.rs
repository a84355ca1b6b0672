//! S14: the monitor goes down → the agents keep their roles as the lease policy says, and
//! nothing flaps when it comes back.
//!
//! The policy is `monitor.writer_lease` (docs/product.md F9):
//! * `writer_lease: 0` — no lease: every agent keeps every role for as long as the monitor is
//!   away; the writer stays writable and clients keep writing. (Availability first: an
//!   isolated master is then *not* demoted either, see S13.)
//! * `writer_lease > 0` (the default) — safety first: the writer demotes itself when its lease
//!   runs out (read_only=1, client connections killed, writer IP dropped), so writes stop while
//!   no monitor renews the lease. Reader roles are kept.
//!
//! Either way, restarting the monitor restores states and roles from the status file: every
//! host ONLINE again, a writer again, no host marked flapping, no state change meanwhile.

mod net_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, Invariants, Show};
use net_common::{assert_converged, T};

/// Reader IP → the hosts carrying it.
fn reader_holders(c: &Cluster) -> BTreeMap<String, Vec<String>> {
    c.lab
        .reader_vips()
        .into_iter()
        .map(|ip| (ip.to_string(), c.lab.holders_of(ip).expect("holders_of")))
        .collect()
}

/// Role → owners, for comparing role tables.
fn role_table(s: &Show) -> Vec<(String, Vec<String>, Vec<Option<String>>)> {
    s.roles
        .iter()
        .map(|r| (r.name.clone(), r.ips.clone(), r.owners.clone()))
        .collect()
}

/// Restarts the monitor and checks it restored the cluster from the status file without
/// flapping: every host ONLINE with the same roles for a few seconds. Returns the writer.
fn restart_monitor_and_check(c: &Cluster, before: &Show) -> String {
    c.start_monitor().expect("start monitor");
    let show = c
        .wait_show("monitor back: every host ONLINE with a writer", T, |s| {
            s.all_online() && s.writer().is_some() && s.readers_assigned()
        })
        .expect("monitor restored the cluster");
    let log = c.monitor().expect("monitor").log();
    assert!(
        log.contains("Restored states and roles from the status file"),
        "the monitor restored from its status file:\n{log}"
    );
    assert_eq!(
        role_table(&show),
        role_table(before),
        "roles restored unchanged: before {}\nafter {}",
        before.brief(),
        show.brief()
    );
    // Nothing flaps: for a while, every poll shows every host ONLINE, none flapping, the same
    // roles.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let s = c.show().expect("show");
        assert!(
            s.all_online() && s.hosts.iter().all(|h| !h.flapping),
            "a host left ONLINE or is flapping after the monitor restart: {}",
            s.brief()
        );
        assert_eq!(role_table(&s), role_table(before), "{}", s.brief());
        std::thread::sleep(Duration::from_millis(200));
    }
    show.writer().expect("writer")
}

#[test]
fn s14_monitor_down_without_lease_keeps_every_role() {
    let c =
        Cluster::start(ClusterOptions::fast().set("monitor.writer_lease", "0")).expect("cluster");
    let before = c.show().expect("show");
    let w = before.writer().expect("a writer");
    let vip = c.lab.writer_vip();
    let readers = reader_holders(&c);
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.stop_monitor().expect("stop monitor");
    // Well past the default fast lease (3 s) and the agents' own timers: nothing changes.
    let acked_before = probe.acked_so_far();
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        assert_eq!(
            c.lab.writable_hosts(),
            std::slice::from_ref(&w),
            "the writer stays writable"
        );
        assert_eq!(
            c.lab.holders_of(vip).expect("holders"),
            std::slice::from_ref(&w),
            "the writer keeps the writer IP"
        );
        assert_eq!(
            reader_holders(&c),
            readers,
            "reader IPs stay where they were"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let acked_during = probe.acked_so_far() - acked_before;
    assert!(
        acked_during >= 40,
        "clients kept writing without the monitor: only {acked_during} writes in 8 s"
    );
    let failed: Vec<_> = probe
        .attempts_so_far()
        .into_iter()
        .filter(|a| !a.ok())
        .collect();
    assert!(
        failed.is_empty(),
        "no write failed while the monitor was down: {failed:?}"
    );

    let writer = restart_monitor_and_check(&c, &before);
    assert_eq!(writer, w, "the writer did not move");
    assert_converged(&c, &w);
    let report = probe.stop();
    inv.assert_clean();
    let missing = report.missing_on(&c.lab, &w).expect("missing_on");
    assert!(
        missing.is_empty(),
        "I2: acknowledged rows missing on {w}: {missing:?}"
    );
    assert_eq!(report.failed_count(), 0, "{}", report.summary());
    eprintln!("S14 (lease 0) probe: {}", report.summary());
}

#[test]
fn s14_monitor_down_with_lease_demotes_the_writer() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let before = c.show().expect("show");
    let w = before.writer().expect("a writer");
    let vip = c.lab.writer_vip();
    let readers = reader_holders(&c);
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");

    c.stop_monitor().expect("stop monitor");
    let stopped = Instant::now();
    c.wait_for(
        &format!("{w} demotes itself when its lease runs out"),
        T,
        |c| {
            let ro = c.lab.read_only(&w).map_err(|e| e.to_string())?;
            let holders = c.lab.holders_of(vip).map_err(|e| e.to_string())?;
            Ok(ro && holders.is_empty())
        },
    )
    .expect("F9: writer lease expiry");
    let demoted_after = stopped.elapsed();
    eprintln!("S14 (lease 3 s): {w} demoted {demoted_after:?} after the monitor stopped");
    assert!(
        c.lab.writable_hosts().is_empty(),
        "nobody writable without a monitor"
    );
    let agent_log = c.agent(&w).expect("agent").log();
    assert!(
        agent_log.contains("writer lease expired"),
        "the agent on {w} says why it demoted:\n{agent_log}"
    );
    // Writes stop (that is the configured policy); reader roles stay.
    std::thread::sleep(Duration::from_secs(1));
    let acked = probe.acked_so_far();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        probe.acked_so_far(),
        acked,
        "no write is acknowledged while nobody holds a valid writer lease"
    );
    assert_eq!(
        reader_holders(&c),
        readers,
        "reader IPs stay where they were"
    );

    let writer = restart_monitor_and_check(&c, &before);
    eprintln!("S14 (lease 3 s): writer after the restart: {writer}");
    c.wait_writer_ready(&writer, T)
        .expect("a writable writer on the writer IP again");
    probe
        .wait_acked(acked + 5, T)
        .expect("writes resume once the monitor is back");
    assert_converged(&c, &writer);
    let report = probe.stop();
    inv.assert_clean();
    let missing = report.missing_on(&c.lab, &writer).expect("missing_on");
    assert!(
        missing.is_empty(),
        "I2: acknowledged rows missing on {writer}: {missing:?}"
    );
    eprintln!("S14 (lease 3 s) probe: {}", report.summary());
}
