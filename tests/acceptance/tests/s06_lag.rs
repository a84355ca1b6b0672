//! S6: replica lag above max_backlog (5 s in the fast settings) → REPLICATION_DELAY, its reader
//! moves; once the lag is released → ONLINE, the reader comes back. Done for the slave db3,
//! then for the passive master db2.
//!
//! mysql-mmm's rule O3 ignores replication errors for 60 s after the peer came ONLINE; the
//! cluster set every host online at start-up, so the lag is induced after that grace.

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{
    assert_unchanged_for, reader_ips_of, role_table, wait_ips_match_show, Scenario, T,
};

#[test]
fn s6_replica_lag_above_max_backlog() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(100));
    let c = &sc.c;
    let writer = c.show().expect("show").writer().expect("a writer");
    assert_eq!(writer, "db1", "the lab starts with db1 as writer");
    sc.wait_peer_grace();

    for host in ["db3", "db2"] {
        let had = reader_ips_of(&c.show().expect("show"), host);
        assert!(!had.is_empty(), "{host} holds a reader before the fault");

        // Seconds_Behind_Master ≥ 7 > max_backlog 5, both threads still running.
        let lag = c.lab.induce_lag(host, 7).expect("induce lag");
        let s = c
            .wait_show(&format!("{host} REPLICATION_DELAY without roles"), T, |s| {
                s.state(host) == "REPLICATION_DELAY"
                    && s.host(host).is_some_and(|h| h.roles.is_empty())
                    && s.readers_assigned()
            })
            .expect("REPLICATION_DELAY");
        assert_eq!(
            s.writer().as_deref(),
            Some(writer.as_str()),
            "{}",
            s.brief()
        );
        for h in c.lab.host_names().iter().filter(|h| *h != host) {
            assert_eq!(s.state(h), "ONLINE", "{}", s.brief());
        }
        let s = wait_ips_match_show(c);
        assert!(reader_ips_of(&s, host).is_empty(), "{}", s.brief());
        let r = c
            .lab
            .replication(host)
            .expect("replication")
            .expect("replica");
        assert!(
            r.running() && r.seconds_behind.is_some_and(|l| l > 5),
            "{host} lags with both threads running: {r:?}"
        );
        let during = role_table(&s);
        assert_unchanged_for(c, &during, Duration::from_secs(2), "REPLICATION_DELAY");

        lag.release().expect("release lag");
        c.wait_show(&format!("{host} ONLINE with a reader again"), T, |s| {
            s.state(host) == "ONLINE" && !reader_ips_of(s, host).is_empty() && s.readers_assigned()
        })
        .expect("back ONLINE");
        let r = c
            .lab
            .replication(host)
            .expect("replication")
            .expect("replica");
        assert!(
            r.running() && r.seconds_behind.is_some_and(|l| l <= 5),
            "{host} caught up: {r:?}"
        );
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
