//! S1 + S2: stop mysqld on the active master → HARD_OFFLINE, writer and its reader move, the new
//! writer is writable, db3 replicates from it; start it again → AWAITING_RECOVERY,
//! `set_online` → ONLINE, replicating from the new writer, gets a reader.

use std::time::Duration;

use ha_acceptance::{Cluster, ClusterOptions, Invariants};

const T: Duration = Duration::from_secs(60);

#[test]
fn s1_s2_mysqld_stop_fails_over_and_recovers() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let show = c.show().expect("show");
    let old = show.writer().expect("a writer");
    let inv = Invariants::start(&c.lab);
    let probe = c.start_writes().expect("writes through the writer IP");
    // Who the monitor says would follow the writer (`ha-control --json explain writer`).
    let explain = c
        .control(&["--json", "explain", "writer"])
        .expect("explain");
    assert_eq!(explain.code, 0, "{} {}", explain.stdout, explain.stderr);
    eprintln!(
        "{}",
        c.control(&["explain"]).expect("explain").stdout.trim_end()
    );
    let v: serde_json::Value = serde_json::from_str(&explain.stdout).expect("explain JSON");
    let named = v[0]["successors"][0]["host"]
        .as_str()
        .expect("a successor is named")
        .to_string();

    // S1
    c.lab.stop_mysqld(&old).expect("stop mysqld");
    let show = c
        .wait_show("old writer HARD_OFFLINE, writer moved", T, |s| {
            s.state(&old) == "HARD_OFFLINE" && s.writer().is_some_and(|w| w != old)
        })
        .expect("failover");
    let new = show.writer().expect("new writer");
    assert_eq!(new, named, "the writer went where explain said it would");
    assert!(
        show.host(&old).expect("old").roles.is_empty(),
        "{}",
        show.brief()
    );
    c.wait_writer_ready(&new, T)
        .expect("new writer writable on the VIP");
    c.wait_show("readers re-assigned", T, |s| s.readers_assigned())
        .expect("readers");
    for h in c
        .lab
        .host_names()
        .into_iter()
        .filter(|h| *h != old && *h != new)
    {
        c.wait_for(&format!("{h} replicates from {new}"), T, |c| {
            Ok(c.lab
                .replication(&h)
                .map_err(|e| e.to_string())?
                .is_some_and(|r| r.source.as_deref() == Some(new.as_str()) && r.running()))
        })
        .expect("replica re-pointed");
        c.assert_row_arrives(&new, &h, T).expect("row arrives");
    }
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");

    // S2
    c.lab.start_mysqld(&old).expect("start mysqld");
    c.wait_show("old master AWAITING_RECOVERY or ONLINE", T, |s| {
        matches!(s.state(&old), "AWAITING_RECOVERY" | "ONLINE")
    })
    .expect("recovery state");
    let out = c.control(&["set_online", &old]).expect("set_online");
    assert!(
        out.code == 0 && out.stdout.starts_with("OK:"),
        "set_online: {} {}",
        out.stdout,
        out.stderr
    );
    c.wait_show("old master ONLINE with a reader", T, |s| {
        s.state(&old) == "ONLINE" && s.readers().get(&old).copied().unwrap_or(0) >= 1
    })
    .expect("old master back");
    c.wait_replicating_from(&new, T)
        .expect("everyone replicates from the new writer");
    c.assert_row_arrives(&new, &old, T)
        .expect("row arrives on the old master");

    let report = probe.stop();
    inv.assert_clean();
    c.assert_no_acked_write_lost(&report, &new);
    eprintln!("S1 probe: {}", report.summary());
}
