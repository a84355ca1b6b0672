//! S8: four downs of db3 within flap_duration → flapping: after the fourth it is parked in
//! AWAITING_RECOVERY and does not come back by itself although auto_set_online is configured
//! (2 s); `show` reports it flapping; `set_online` clears the flag and brings it back.

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{check_ok, control_ok, reader_ips_of, Scenario, T};

#[test]
fn s8_four_downs_make_db3_flapping() {
    let opts = ClusterOptions::fast().set("monitor.auto_set_online", "2");
    let sc = Scenario::start(opts, Duration::from_millis(100));
    let c = &sc.c;
    let writer = c.show().expect("show").writer().expect("a writer");

    for round in 1..=4 {
        c.lab.stop_mysqld("db3").expect("stop mysqld");
        c.wait_show(&format!("round {round}: db3 HARD_OFFLINE"), T, |s| {
            s.state("db3") == "HARD_OFFLINE" && s.host("db3").is_some_and(|h| h.roles.is_empty())
        })
        .expect("HARD_OFFLINE");
        c.lab.start_mysqld("db3").expect("start mysqld");
        if round < 4 {
            // Not flapping yet: it comes back by itself (down < 60 s, or auto_set_online).
            let s = c
                .wait_show(&format!("round {round}: db3 ONLINE again"), T, |s| {
                    s.state("db3") == "ONLINE"
                })
                .expect("ONLINE");
            assert!(!s.host("db3").expect("db3").flapping, "{}", s.brief());
        }
    }
    let s = c
        .wait_show("db3 AWAITING_RECOVERY and flapping", T, |s| {
            s.state("db3") == "AWAITING_RECOVERY" && s.host("db3").is_some_and(|h| h.flapping)
        })
        .expect("flapping");
    assert!(
        s.host("db3").expect("db3").roles.is_empty(),
        "{}",
        s.brief()
    );
    // Parked: no auto-online although auto_set_online (2 s) and the short-outage rule would
    // bring a non-flapping host back.
    c.wait_for("db3's checks all ok", T, |c| {
        for check in ["ping", "mysql", "rep_threads", "rep_backlog"] {
            if !check_ok(c, "db3", check)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .expect("checks ok");
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let s = c.show().expect("show");
        assert_eq!(s.state("db3"), "AWAITING_RECOVERY", "{}", s.brief());
        assert!(s.host("db3").expect("db3").flapping);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        c.monitor()
            .is_some_and(|m| m.log().contains("Host db3 is flapping!")),
        "the monitor logs the flapping"
    );

    let reply = control_ok(c, &["set_online", "db3"]);
    assert!(reply.contains("changed to ONLINE"), "{reply}");
    let s = c
        .wait_show("db3 ONLINE with a reader, not flapping", T, |s| {
            s.state("db3") == "ONLINE"
                && s.host("db3").is_some_and(|h| !h.flapping)
                && !reader_ips_of(s, "db3").is_empty()
        })
        .expect("back");
    assert_eq!(s.writer().as_deref(), Some(writer.as_str()));
    sc.finish(&writer);
}
