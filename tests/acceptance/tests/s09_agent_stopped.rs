//! S9: db3's agent stopped → `ha-control show` warns `# Warning: agent on host db3 is not
//! reachable`; no role moves to or from db3: it keeps its reader (on its interface too), and
//! when db2 is taken offline meanwhile, db2's reader goes to db1, not to db3. The agent
//! restarted → the warning is gone and db3 takes part again.

mod ops_common;

use std::time::Duration;

use ha_acceptance::ClusterOptions;
use ops_common::{
    assert_unchanged_for, control_ok, reader_ips_of, role_table, wait_ips_match_show, Scenario, T,
};

const WARNING: &str = "# Warning: agent on host db3 is not reachable";

fn show_text(c: &ha_acceptance::Cluster) -> String {
    let out = c.control(&["show"]).expect("show");
    assert_eq!(out.code, 0, "show: {} {}", out.stdout, out.stderr);
    out.stdout
}

#[test]
fn s9_agent_stopped_keeps_its_roles_and_gets_no_new_ones() {
    let sc = Scenario::start(ClusterOptions::fast(), Duration::from_millis(100));
    let c = &sc.c;
    let show = c.show().expect("show");
    let writer = show.writer().expect("a writer");
    assert_eq!(writer, "db1", "the lab starts with db1 as writer");
    assert!(
        !show_text(c).contains("# Warning"),
        "no warning while healthy"
    );
    let db3_readers = reader_ips_of(&show, "db3");
    assert!(!db3_readers.is_empty(), "{}", show.brief());
    let before = role_table(&show);

    c.stop_agent("db3").expect("stop agent");
    c.wait_show("db3's agent unreachable", T, |s| {
        s.host("db3").is_some_and(|h| !h.agent_reachable)
    })
    .expect("agent_down");
    let text = show_text(c);
    assert!(
        text.lines().any(|l| l == WARNING),
        "show text lacks the warning:\n{text}"
    );
    // Only db3 is warned about.
    assert_eq!(
        text.matches("# Warning: agent on host").count(),
        1,
        "{text}"
    );
    // Nothing moves: db3 stays ONLINE with its reader, on its interface as well.
    assert_unchanged_for(c, &before, Duration::from_secs(4), "agent of db3 down");
    let s = wait_ips_match_show(c);
    assert_eq!(reader_ips_of(&s, "db3"), db3_readers);

    // No new role goes to db3: db2's reader must land on db1.
    let db2_readers = reader_ips_of(&s, "db2");
    control_ok(c, &["set_offline", "db2"]);
    let s = c
        .wait_show("db2 ADMIN_OFFLINE, its reader re-assigned", T, |s| {
            s.state("db2") == "ADMIN_OFFLINE"
                && s.host("db2").is_some_and(|h| h.roles.is_empty())
                && s.readers_assigned()
        })
        .expect("db2 offline");
    assert_eq!(
        reader_ips_of(&s, "db3"),
        db3_readers,
        "db3 (agent down) got no new role: {}",
        s.brief()
    );
    for ip in &db2_readers {
        assert!(
            reader_ips_of(&s, "db1").contains(ip),
            "{ip} went to db1: {}",
            s.brief()
        );
    }
    let during = role_table(&s);
    assert_unchanged_for(
        c,
        &during,
        Duration::from_secs(2),
        "db2 offline, agent of db3 down",
    );
    wait_ips_match_show(c);
    assert!(show_text(c).lines().any(|l| l == WARNING));

    // The agent is back: warning gone, db3 is served roles again.
    c.start_agent("db3").expect("start agent");
    c.wait_show("db3's agent reachable again", T, |s| {
        s.host("db3").is_some_and(|h| h.agent_reachable)
    })
    .expect("agent back");
    // (With db2 ADMIN_OFFLINE its replication is stopped, so db1 has no semi-sync replica and
    // show rightly warns about the asynchronous fallback: only the agent warning must go.)
    let text = show_text(c);
    assert!(
        !text.contains("# Warning: agent on host"),
        "agent warning still shown:\n{text}"
    );
    // It kept its reader and, reachable again, gets its share of db2's (balancing).
    c.wait_show("db3 takes a second reader from db1", T, |s| {
        let r = reader_ips_of(s, "db3");
        r.len() == 2 && db3_readers.iter().all(|ip| r.contains(ip))
    })
    .expect("balancing towards db3");
    wait_ips_match_show(c);

    control_ok(c, &["set_online", "db2"]);
    sc.finish(&writer);
}
