//! Semi-sync awareness (issue 17, item 6): when the active master falls back from semi-sync to
//! asynchronous replication, `show` says so (text and JSON) and the monitor logs it; when a
//! semi-sync replica is back, the warning goes away.
//!
//! The lab's masters run AFTER_SYNC semi-sync with `rpl_semi_sync_master_wait_no_slave=OFF`:
//! the master is asynchronous exactly while no semi-sync replica is connected. The other
//! master is the writer's only semi-sync replica, so stopping its replication is the fallback.

use std::time::Duration;

use ha_acceptance::{Cluster, ClusterOptions};

const T: Duration = Duration::from_secs(60);

/// `show --json`'s `async_fallback.host`, if any.
fn fallback_host(c: &Cluster) -> Result<Option<String>, String> {
    let out = c.control(&["--json", "show"])?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["async_fallback"]["host"].as_str().map(str::to_string))
}

#[test]
fn the_writers_fallback_to_async_is_shown_and_then_cleared() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let w = c.show().expect("show").writer().expect("a writer");
    let peer = if w == "db1" { "db2" } else { "db1" };
    assert_eq!(fallback_host(&c).expect("show"), None, "semi-sync at start");

    c.lab
        .sql(peer, "STOP SLAVE")
        .expect("stop the semi-sync replica");
    c.wait_for("show reports the asynchronous fallback", T, |c| {
        Ok(fallback_host(c)?.as_deref() == Some(w.as_str()))
    })
    .expect("fallback shown");
    let text = c.control(&["show"]).expect("show").stdout;
    assert!(
        text.contains(&format!(
            "# Warning: semi-sync replication on the active master {w} fell back to asynchronous at"
        )),
        "{text}"
    );
    let log = c.monitor().expect("monitor").log();
    assert!(
        log.contains("fell back to asynchronous replication"),
        "the monitor logs it:\n{log}"
    );

    c.lab
        .sql(peer, "START SLAVE")
        .expect("start the replica again");
    c.wait_for("the warning goes away", T, |c| {
        Ok(fallback_host(c)?.is_none())
    })
    .expect("fallback cleared");
    assert!(c
        .monitor()
        .expect("monitor")
        .log()
        .contains("is active again"));
}
