//! Semi-sync awareness (issue 17, item 6): when the active master falls back from semi-sync to
//! asynchronous replication, `show` says so (text and JSON) and the monitor logs it; when a
//! semi-sync replica is back, the warning goes away.
//!
//! The lab's masters run AFTER_SYNC semi-sync with `rpl_semi_sync_master_wait_no_slave=OFF`:
//! the master is asynchronous exactly while no semi-sync replica is connected. The other
//! master is the writer's only semi-sync replica, so stopping its replication is the fallback.

use std::time::Duration;

use ha_acceptance::{metric_value, Cluster, ClusterOptions, METRICS_ADDR};

const T: Duration = Duration::from_secs(60);

/// `show --json`'s `async_fallback.host`, if any.
fn fallback_host(c: &Cluster) -> Result<Option<String>, String> {
    let out = c.control(&["--json", "show"])?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["async_fallback"]["host"].as_str().map(str::to_string))
}

#[test]
fn the_writers_fallback_to_async_is_shown_and_then_cleared() {
    let c = Cluster::start(ClusterOptions::fast().set("metrics", METRICS_ADDR)).expect("cluster");
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
    eprintln!("{text}");
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
    let m = c.scrape_metrics().expect("metrics");
    assert_eq!(
        metric_value(&m, &format!("ha_async_fallback{{host=\"{w}\"}}")),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric_value(&m, &format!("ha_semi_sync_active{{host=\"{w}\"}}")),
        Some(0.0),
        "{m}"
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
    // Both ends are in the history, in order, and counted.
    let out = c
        .control(&["--json", "history", "--host", &w])
        .expect("history");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("history JSON");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("async_fallback"))
        .collect();
    assert_eq!(
        kinds.last(),
        Some(&"async_fallback_ended"),
        "{}",
        out.stdout
    );
    assert!(kinds.contains(&"async_fallback_started"), "{}", out.stdout);
    let m = c.scrape_metrics().expect("metrics");
    assert!(
        metric_value(&m, "ha_events_total{kind=\"async_fallback_started\"}")
            .is_some_and(|v| v >= 1.0),
        "{m}"
    );
}

/// `explain writer --json`: (successors, passed_over) as (host, why) pairs.
type Reasons = Vec<(String, String)>;

fn explain_writer(c: &Cluster) -> (Reasons, Reasons) {
    let out = c
        .control(&["--json", "explain", "writer"])
        .expect("explain");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("explain JSON");
    let pairs = |k: &str| -> Vec<(String, String)> {
        v[0][k]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["host"].as_str().unwrap_or_default().to_string(),
                            x["why"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    (pairs("successors"), pairs("passed_over"))
}

#[test]
fn with_refuse_failover_after_async_the_writer_waits_for_an_operator() {
    let c =
        Cluster::start(ClusterOptions::fast().set("monitor.refuse_failover_after_async", "true"))
            .expect("cluster");
    let w = c.show().expect("show").writer().expect("a writer");
    let peer = if w == "db1" { "db2" } else { "db1" };
    // The peer keeps replicating, but no longer acknowledges: the writer is asynchronous while
    // the peer stays ONLINE, a candidate in every other respect.
    c.lab
        .sql(
            peer,
            "SET GLOBAL rpl_semi_sync_slave_enabled = 0; STOP SLAVE IO_THREAD; START SLAVE IO_THREAD",
        )
        .expect("peer asynchronous");
    c.wait_for("show reports the asynchronous fallback", T, |c| {
        Ok(fallback_host(c)?.as_deref() == Some(w.as_str()))
    })
    .expect("fallback shown");
    let (successors, passed_over) = explain_writer(&c);
    assert!(successors.is_empty(), "{successors:?}");
    assert!(
        passed_over
            .iter()
            .any(|(h, why)| h == peer && why.contains("asynchronous")),
        "{passed_over:?}"
    );

    c.lab.stop_mysqld(&w).expect("stop the writer's mysqld");
    c.wait_show("old writer HARD_OFFLINE", T, |s| {
        s.state(&w) == "HARD_OFFLINE"
    })
    .expect("writer down");
    // Nobody takes the role on their own, although the peer is ONLINE.
    for _ in 0..10 {
        let s = c.show().expect("show");
        assert_eq!(s.writer(), None, "{}", s.brief());
        assert_eq!(s.state(peer), "ONLINE", "{}", s.brief());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(c.lab.writable_hosts().is_empty(), "nobody writable");
    let log = c.monitor().expect("monitor").log();
    assert_eq!(
        log.matches("Not failing the writer role over").count(),
        1,
        "said once:\n{log}"
    );

    // The operator decides.
    let out = c
        .control(&["move_role", "writer", peer])
        .expect("move_role");
    assert!(
        out.code == 0 && out.stdout.starts_with("OK:"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    c.wait_writer_ready(peer, T)
        .expect("the peer is the writer");
    // The old writer's fallback no longer matters. (The new writer has no semi-sync replica
    // connected now — the old one is down, db3 never acknowledges — so it may show a fallback
    // of its own.)
    c.wait_for("the old writer's fallback no longer matters", T, |c| {
        Ok(fallback_host(c)?.as_deref() != Some(w.as_str()))
    })
    .expect("cleared");
    assert!(c
        .monitor()
        .expect("monitor")
        .log()
        .contains("no longer matters"));
}
