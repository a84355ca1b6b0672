//! Issue 17: metrics, decision history and hooks on a real failover (S1: mysqld stopped on the
//! active master).
//!
//! - `/metrics` is scraped during the failover: the old writer's state series goes to
//!   HARD_OFFLINE, the writer's owner series moves, the promotion counter and its duration
//!   histogram count one more, the new writer's lease is reported.
//! - A hook configured for every event records the failover's events, in order.
//! - `ha-control history` shows the state change with its rule, the promotion with its duration
//!   and the operator's `set_online` with the operator's identity, and still does after a
//!   monitor restart.

use std::time::{Duration, Instant};

use ha_acceptance::{metric_value as value, Cluster, ClusterOptions, METRICS_ADDR};

const T: Duration = Duration::from_secs(60);

fn hook_script(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let out = dir.join("hook-events.txt");
    let path = dir.join("record-hook.sh");
    let script = format!(
        "#!/bin/sh\n# Records every event; reads the JSON on stdin too.\njson=$(cat)\necho \"$HA_EVENT ${{HA_HOST:-}} ${{HA_CAUSE:-}} $(printf %s \"$json\" | head -c 1)\" >> {}\n",
        out.display()
    );
    std::fs::write(&path, script).expect("write hook");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod hook");
    (path, out)
}

/// A directory for the hook and its record, removed at the end (also after a panic).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let p = std::env::temp_dir().join(format!("ha-observability-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn metrics_history_and_hooks_follow_a_failover() {
    let dir = Scratch::new();
    let (hook, recorded) = hook_script(&dir.0);
    let opts = ClusterOptions::fast()
        .set("metrics", METRICS_ADDR)
        .set("hooks.record.command", &hook.display().to_string());
    let c = Cluster::start(opts).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");

    let before = c.scrape_metrics().expect("metrics before");
    let done_series = "ha_promotions_total{cause=\"failover\",outcome=\"done\"}";
    let done_before = value(&before, done_series).unwrap_or(0.0);
    let hist_before = value(
        &before,
        "ha_promotion_duration_seconds_count{cause=\"failover\"}",
    )
    .unwrap_or(0.0);
    assert_eq!(
        value(
            &before,
            &format!("ha_host_state{{host=\"{old}\",state=\"ONLINE\"}}")
        ),
        Some(1.0),
        "{before}"
    );
    for series in [
        "ha_check_duration_seconds_count{",
        "ha_agent_call_duration_seconds_count{",
        "ha_replication_lag_seconds{",
        "ha_mode{mode=\"ACTIVE\"} 1",
    ] {
        assert!(before.contains(series), "no {series} in\n{before}");
    }
    assert!(
        value(
            &before,
            &format!("ha_writer_lease_remaining_seconds{{host=\"{old}\"}}")
        )
        .is_some_and(|v| v > 0.0),
        "{before}"
    );

    // S1 while scraping every 200 ms.
    c.lab.stop_mysqld(&old).expect("stop mysqld");
    let hard = format!("ha_host_state{{host=\"{old}\",state=\"HARD_OFFLINE\"}}");
    let (mut saw_hard, mut new) = (false, None);
    let started = Instant::now();
    while started.elapsed() < T && new.is_none() {
        let m = c.scrape_metrics().expect("metrics during the failover");
        saw_hard |= value(&m, &hard) == Some(1.0);
        if value(&m, done_series).unwrap_or(0.0) > done_before {
            new = m.lines().find_map(|l| {
                let rest = l.strip_prefix("ha_role_owner{role=\"writer\",")?;
                let host = rest.split("host=\"").nth(1)?.split('"').next()?;
                let owns = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) == Some(1.0);
                (owns && !host.is_empty() && host != old).then(|| host.to_string())
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let new =
        new.unwrap_or_else(|| panic!("no promotion seen in the metrics\n{}", c.diagnostics()));
    assert!(
        saw_hard,
        "the old writer's HARD_OFFLINE never showed in the metrics"
    );
    let after = c.scrape_metrics().expect("metrics after");
    eprintln!("metrics after the failover (excerpt):");
    let shown = [
        "ha_promotion",
        "ha_last_promotion",
        "ha_role_owner{role=\"writer\"",
        "ha_host_state{",
        "ha_writer_lease",
        "ha_events_total",
    ];
    for l in after.lines().filter(|l| {
        shown.iter().any(|p| l.starts_with(p)) && !l.ends_with(" 0.0") && !l.contains("_bucket")
    }) {
        eprintln!("{l}");
    }
    assert_eq!(
        value(&after, done_series),
        Some(done_before + 1.0),
        "{after}"
    );
    assert_eq!(
        value(
            &after,
            "ha_promotion_duration_seconds_count{cause=\"failover\"}"
        ),
        Some(hist_before + 1.0)
    );
    assert_eq!(
        value(&after, "ha_last_promotion{outcome=\"done\"}"),
        Some(1.0)
    );
    c.wait_for("the new writer's lease in the metrics", T, |c| {
        let m = c.scrape_metrics()?;
        Ok(value(
            &m,
            &format!("ha_writer_lease_remaining_seconds{{host=\"{new}\"}}"),
        )
        .is_some_and(|v| v > 0.0))
    })
    .expect("lease series");

    // The hook saw the failover in order: the state change, the promotion, its completion.
    c.wait_for("the hook recorded the promotion", T, |_| {
        let text = std::fs::read_to_string(&recorded).unwrap_or_default();
        Ok(text.contains(&format!("promotion_done {new}")))
    })
    .expect("hook lines");
    let lines = std::fs::read_to_string(&recorded).expect("hook record");
    eprintln!("hook recorded:\n{lines}");
    let pos = |needle: &str| {
        lines
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the hook's record:\n{lines}"))
    };
    let changed = pos(&format!("state_change {old}"));
    let promoted = pos(&format!("promotion_started {new} failover"));
    let done = pos(&format!("promotion_done {new}"));
    assert!(changed < promoted && promoted < done, "{lines}");
    assert!(
        lines.lines().all(|l| l.ends_with(" {")),
        "JSON on stdin: {lines}"
    );

    // The operator brings the old master back: recorded with the operator's identity.
    c.lab.start_mysqld(&old).expect("start mysqld");
    c.wait_show("old master recovering", T, |s| {
        matches!(s.state(&old), "AWAITING_RECOVERY" | "ONLINE")
    })
    .expect("recovery");
    let out = c.control(&["set_online", &old]).expect("set_online");
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);

    // The history survives a monitor restart.
    c.stop_monitor().expect("stop monitor");
    c.start_monitor().expect("start monitor");
    c.wait_for("history after the restart", T, |c| {
        Ok(c.control(&["--json", "history"])?.code == 0)
    })
    .expect("history");
    let history = c.control(&["--json", "history"]).expect("history").stdout;
    let v: serde_json::Value = serde_json::from_str(&history).expect("history JSON");
    let events = v["events"].as_array().expect("events");
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().find(|e| pred(e)).cloned();
    let change = find(&|e| {
        e["kind"] == "state_change" && e["host"] == old.as_str() && e["to"] == "HARD_OFFLINE"
    })
    .expect("the old writer's state change");
    assert!(
        change["rule"].as_str().is_some_and(|r| !r.is_empty()),
        "{change}"
    );
    let done = find(&|e| e["kind"] == "promotion_done" && e["host"] == new.as_str())
        .expect("the promotion");
    assert!(done["duration_ms"].as_u64().is_some(), "{done}");
    let admin = find(&|e| {
        e["kind"] == "admin_command"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("SetOnline"))
    })
    .expect("the operator's set_online");
    assert!(
        admin["operator"]
            .as_str()
            .is_some_and(|o| o.contains(ha_lab::tls::OPERATOR)),
        "{admin}"
    );
    let text = c
        .control(&["history", "--host", &old])
        .expect("history text");
    eprintln!("ha-control history --host {old}:\n{}", text.stdout);
    assert!(text.stdout.contains("state_change"), "{}", text.stdout);
    assert!(
        !text
            .stdout
            .contains(&format!("Host '{new}' is the active master")),
        "filtered by host: {}",
        text.stdout
    );
}
