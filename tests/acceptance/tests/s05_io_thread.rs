//! S5: stop the IO thread on a non-writer → REPLICATION_FAIL, its reader moves to other hosts;
//! start it → ONLINE, the reader comes back. Done for the slave db3, then for the passive
//! master db2 (whose configured peer is the active master db1).
//!
//! mysql-mmm's rule O3 ignores replication errors for 60 s after the peer came ONLINE; the
//! cluster set every host online at start-up, so the faults are injected after that grace.

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{
    assert_unchanged_for, reader_ips_of, role_table, wait_ips_match_show, Scenario, T,
};

#[test]
fn s5_io_thread_stopped_on_a_non_writer() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(100));
    let c = &sc.c;
    let writer = c.show().expect("show").writer().expect("a writer");
    assert_eq!(writer, "db1", "the lab starts with db1 as writer");
    // Nothing moves while the cluster is healthy (and the grace period runs out).
    let before = role_table(&c.show().expect("show"));
    assert_unchanged_for(c, &before, Duration::from_secs(3), "healthy cluster");
    sc.wait_peer_grace();

    for host in ["db3", "db2"] {
        let had = reader_ips_of(&c.show().expect("show"), host);
        assert!(!had.is_empty(), "{host} holds a reader before the fault");

        c.lab.stop_io_thread(host).expect("stop IO thread");
        let s = c
            .wait_show(&format!("{host} REPLICATION_FAIL without roles"), T, |s| {
                s.state(host) == "REPLICATION_FAIL"
                    && s.host(host).is_some_and(|h| h.roles.is_empty())
                    && s.readers_assigned()
            })
            .expect("REPLICATION_FAIL");
        assert_eq!(
            s.writer().as_deref(),
            Some(writer.as_str()),
            "{}",
            s.brief()
        );
        for h in c.lab.host_names().iter().filter(|h| *h != host) {
            assert_eq!(s.state(h), "ONLINE", "{}", s.brief());
        }
        // Its readers now sit on the other hosts, for real.
        let s = wait_ips_match_show(c);
        assert!(reader_ips_of(&s, host).is_empty(), "{}", s.brief());
        // The fault is the operator's: ha leaves the stopped thread alone, and the host stays
        // out of service while it lasts.
        let r = c
            .lab
            .replication(host)
            .expect("replication")
            .expect("replica");
        assert_eq!(
            r.io_running, "No",
            "{host}: IO thread restarted behind our back"
        );
        let during = role_table(&s);
        assert_unchanged_for(c, &during, Duration::from_secs(2), "REPLICATION_FAIL");

        c.lab.start_io_thread(host).expect("start IO thread");
        c.wait_show(&format!("{host} ONLINE with a reader again"), T, |s| {
            s.state(host) == "ONLINE" && !reader_ips_of(s, host).is_empty() && s.readers_assigned()
        })
        .expect("back ONLINE");
        let s = wait_ips_match_show(c);
        assert_eq!(
            s.writer().as_deref(),
            Some(writer.as_str()),
            "{}",
            s.brief()
        );
    }

    sc.finish(&writer);
}
