//! S10: the monitor restarted → its state is restored from the status file: same states, same
//! roles, the epoch continues upward, nothing moves afterwards; I1 holds throughout and no
//! acknowledged write is lost.

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{assert_unchanged_for, control_ok, role_table, wait_ips_match_show, Scenario, T};

#[test]
fn s10_monitor_restart_restores_state_and_moves_nothing() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(100));
    let c = &sc.c;
    let before_show = c.show().expect("show");
    let writer = before_show.writer().expect("a writer");
    let before = role_table(&before_show);
    let status = c.lab.dir().join("monitor").join("status.json");
    let text = std::fs::read_to_string(&status).expect("status file exists");
    for h in c.lab.host_names() {
        assert!(text.contains(&h), "status file names {h}: {text}");
    }

    let old_pid = c.monitor().and_then(|m| m.pid());
    c.stop_monitor().expect("stop monitor");
    c.start_monitor().expect("start monitor");
    assert_ne!(
        c.monitor().and_then(|m| m.pid()),
        old_pid,
        "a new monitor process"
    );

    let after_show = c
        .wait_show("the restarted monitor answers", T, |s| !s.hosts.is_empty())
        .expect("monitor back");
    assert_eq!(
        role_table(&after_show),
        before,
        "state restored from the status file: {}",
        after_show.brief()
    );
    assert!(
        after_show.epoch > before_show.epoch,
        "the epoch continues upward from the stored one: {} → {}",
        before_show.epoch,
        after_show.epoch
    );
    // Nothing moves over many check and trap periods, and the hosts agree.
    assert_unchanged_for(
        c,
        &before,
        Duration::from_secs(6),
        "after the monitor restart",
    );
    let s = wait_ips_match_show(c);
    assert_eq!(s.writer().as_deref(), Some(writer.as_str()));
    assert!(
        s.epoch >= after_show.epoch,
        "epoch went backwards: {} → {}",
        after_show.epoch,
        s.epoch
    );
    assert!(
        c.monitor().is_some_and(|m| m
            .log()
            .contains("Restored states and roles from the status file")),
        "the monitor restored from the status file (not startup voting)"
    );

    // Second restart with a host out of service: ADMIN_OFFLINE survives it (db3 keeps no
    // roles, its replication stays stopped), and set_online afterwards works as usual.
    control_ok(c, &["set_offline", "db3"]);
    let s = c
        .wait_show("db3 ADMIN_OFFLINE, its reader elsewhere", T, |s| {
            s.state("db3") == "ADMIN_OFFLINE"
                && s.host("db3").is_some_and(|h| h.roles.is_empty())
                && s.readers_assigned()
        })
        .expect("db3 offline");
    c.wait_for("replication on db3 stopped", T, |c| {
        let r = c.lab.replication("db3").map_err(|e| e.to_string())?;
        Ok(r.is_some_and(|r| r.io_running == "No" && r.sql_running == "No"))
    })
    .expect("db3 replication stopped");
    let offline = role_table(&s);
    c.stop_monitor().expect("stop monitor");
    c.start_monitor().expect("start monitor");
    let again = c
        .wait_show("the restarted monitor answers", T, |s| !s.hosts.is_empty())
        .expect("monitor back");
    assert_eq!(role_table(&again), offline, "{}", again.brief());
    assert!(again.epoch > s.epoch, "{} → {}", s.epoch, again.epoch);
    assert_unchanged_for(
        c,
        &offline,
        Duration::from_secs(4),
        "after the second restart",
    );
    let r = c
        .lab
        .replication("db3")
        .expect("replication")
        .expect("replica");
    assert!(
        r.io_running == "No" && r.sql_running == "No",
        "db3 replication still stopped: {r:?}"
    );
    control_ok(c, &["set_online", "db3"]);
    sc.finish(&writer);
}
