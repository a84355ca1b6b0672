//! Shared steps of the network-fault scenarios (S3, S4, S13, S14).
//!
//! Kept in its own module (not in the fixture) so these scenarios can evolve without touching
//! the shared `ha_acceptance` library. Not every scenario uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, Invariants, Show};
use ha_lab::{Lab, Probe, ProbeReport};

/// Generous bound of every wait.
pub const T: Duration = Duration::from_secs(60);

/// `set_online host`, which must answer `OK: …`.
pub fn set_online(c: &Cluster, host: &str) {
    let out = c.control(&["set_online", host]).expect("set_online");
    assert!(
        out.code == 0 && out.stdout.starts_with("OK:"),
        "set_online {host}: exit {} {} {}",
        out.code,
        out.stdout,
        out.stderr
    );
}

/// Waits until the returning `host` is AWAITING_RECOVERY (or ONLINE: mysql-mmm's rule A3 puts a
/// host that was unreachable for less than 60 s without a reboot back online on its own) with
/// its agent reachable, then sets it online if needed and waits until it is ONLINE. Returns the state it came back in.
pub fn bring_back(c: &Cluster, host: &str) -> String {
    // The checks may see the host again before an agent call does; `set_online` is refused
    // ("Can't reach agent daemon") until then, as an operator would see.
    let s = c
        .wait_show(
            &format!("{host} AWAITING_RECOVERY or ONLINE, its agent reachable"),
            T,
            |s| {
                matches!(s.state(host), "AWAITING_RECOVERY" | "ONLINE")
                    && s.host(host).is_some_and(|h| h.agent_reachable)
            },
        )
        .expect("recovery state");
    let returned = s.state(host).to_string();
    if returned == "AWAITING_RECOVERY" {
        set_online(c, host);
    }
    c.wait_show(&format!("{host} ONLINE"), T, |s| s.state(host) == "ONLINE")
        .expect("back ONLINE");
    returned
}

/// `gtid_binlog_state` of `host` as (domain, server_id) → last seq_no.
fn binlog_state(c: &Cluster, host: &str) -> BTreeMap<(u32, u32), u64> {
    let s = c
        .lab
        .sql_value(host, "SELECT @@GLOBAL.gtid_binlog_state")
        .expect("gtid_binlog_state")
        .unwrap_or_default();
    let mut m = BTreeMap::new();
    for g in s.split(',').filter(|g| !g.trim().is_empty()) {
        let v: Vec<u64> = g.trim().split('-').filter_map(|x| x.parse().ok()).collect();
        if let [d, srv, seq] = v[..] {
            m.insert((d as u32, srv as u32), seq);
        }
    }
    m
}

/// Errant transactions of `host` with respect to `writer` (the agent's rule, read
/// independently here): (domain, server_id) pairs where `host` has a newer GTID than `writer`.
pub fn errant(c: &Cluster, host: &str, writer: &str) -> Vec<String> {
    // The host first: the writer keeps committing (the probe) and the host replicates it, so
    // reading the writer first could make its newest transaction look like the host's own.
    let h = binlog_state(c, host);
    let w = binlog_state(c, writer);
    h.into_iter()
        .filter(|(k, seq)| w.get(k).is_none_or(|m| seq > m))
        .map(|((d, srv), seq)| {
            format!(
                "{d}-{srv}-{seq} (writer: {})",
                w.get(&(d, srv))
                    .map_or("none".into(), |m| format!("{d}-{srv}-{m}"))
            )
        })
        .collect()
}

/// `set_online host`, retried while the monitor refuses for a passing reason (e.g. the peer's
/// replication checks have not caught up yet).
pub fn set_online_patiently(c: &Cluster, host: &str) {
    let start = Instant::now();
    loop {
        let out = c.control(&["set_online", host]).expect("set_online");
        if out.code == 0 && out.stdout.starts_with("OK:") {
            return;
        }
        assert!(
            start.elapsed() < T,
            "set_online {host}: exit {} {} {}",
            out.code,
            out.stdout,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The old master `host` is back on the network after a failover to `writer`. A write that was
/// in flight on it at the instant of the fault may have stayed committed there, never
/// acknowledged and never on `writer` (semi-sync AFTER_SYNC; the lease demotion killed the
/// waiting session). Then ha must refuse to rejoin it — the agent says why, the monitor logs
/// it, the host is REPLICATION_FAIL (or stays AWAITING_RECOVERY: `set_online` is refused while
/// the writer's own replication from it is broken by the same divergence) — and the operator
/// rebuilds it ([`ha_lab::Lab::rebuild_from`], with its agent stopped meanwhile) and sets it
/// online. Without errant transactions it simply comes back ([`bring_back`]). Returns the
/// state it came back in and whether it had to be rebuilt.
pub fn rejoin(c: &Cluster, host: &str, writer: &str) -> (String, bool) {
    let s = c
        .wait_show(&format!("{host} back after the outage"), T, |s| {
            matches!(
                s.state(host),
                "AWAITING_RECOVERY" | "ONLINE" | "REPLICATION_FAIL"
            ) && s.host(host).is_some_and(|h| h.agent_reachable)
        })
        .expect("recovery state");
    let returned = s.state(host).to_string();
    let found = errant(c, host, writer);
    if found.is_empty() {
        eprintln!("{host} has no unacknowledged transaction: rejoining directly");
        bring_back(c, host);
        return (returned, false);
    }
    eprintln!("{host} has unacknowledged transaction(s) {found:?}: ha must refuse to rejoin it");
    // The refusal: the agent's clear error, logged by the monitor, and no replication into
    // the divergence; REPLICATION_FAIL once the monitor tries to bring it ONLINE.
    let mut refused_online = String::new();
    c.wait_for(&format!("ha refuses to rejoin {host}"), T, |c| {
        let show = c.show()?;
        let state = show.state(host).to_string();
        if state == "AWAITING_RECOVERY" && refused_online.is_empty() {
            let out = c.control(&["set_online", host])?;
            if out.code != 0 {
                refused_online = out.stdout.trim().to_string();
            }
        }
        let mon = c.monitor().map(|m| m.log()).unwrap_or_default();
        let explained = mon.lines().any(|l| {
            l.contains(&format!("Agent on host '{host}' reports:"))
                && l.contains(&format!("host {host} has"))
                && l.contains(&format!("the new master {writer} does not have"))
                && l.contains("never acknowledged")
        });
        Ok(explained
            && (state == "REPLICATION_FAIL"
                || (state == "AWAITING_RECOVERY" && !refused_online.is_empty())))
    })
    .expect("refusal with a clear reason");
    let show = c.show().expect("show");
    eprintln!(
        "{host} refused: state {}{}",
        show.state(host),
        if refused_online.is_empty() {
            String::new()
        } else {
            format!("; set_online: {refused_online}")
        }
    );
    assert!(
        show.host(host).is_some_and(|h| h.roles.is_empty()),
        "{host} holds no role while refused: {}",
        show.brief()
    );
    assert_eq!(
        quick_read_only(&c.lab, host),
        Some(true),
        "{host} stays read-only"
    );
    let agent_log = c.agent(host).expect("agent").log();
    assert!(
        agent_log.contains("refused: host") && agent_log.contains("Rebuild this host from"),
        "the agent on {host} says why it does not replicate:\n{agent_log}"
    );
    if let Some(r) = c.lab.replication(host).expect("replication") {
        assert!(
            !(r.running() && r.last_sql_error.is_empty()),
            "{host} must not replicate into the divergence: {r:?}"
        );
    }
    // The DBA procedure (README: Rejoining an old master that has unacknowledged transactions).
    c.stop_agent(host).expect("stop agent");
    let t = Instant::now();
    let rebuilt = c.lab.rebuild_from(host, writer).expect("rebuild_from");
    eprintln!(
        "{host} rebuilt from {writer} in {:?}: {rebuilt:?}",
        t.elapsed()
    );
    assert!(
        errant(c, host, writer).is_empty(),
        "{host} has no errant GTID any more"
    );
    c.start_agent(host).expect("start agent");
    let s = c
        .wait_show(&format!("{host} recovering"), T, |s| {
            s.host(host).is_some_and(|h| h.agent_reachable)
                && matches!(
                    s.state(host),
                    "AWAITING_RECOVERY" | "ONLINE" | "REPLICATION_FAIL"
                )
        })
        .expect("state after the rebuild");
    if s.state(host) == "AWAITING_RECOVERY" {
        set_online_patiently(c, host);
    }
    c.wait_show(&format!("{host} ONLINE"), T, |s| s.state(host) == "ONLINE")
        .expect("back ONLINE after the rebuild");
    (returned, true)
}

/// I3 (docs/product.md §4); see [`Cluster::assert_converged`].
pub fn assert_converged(c: &Cluster, writer: &str) -> Show {
    c.assert_converged(writer)
}

/// The hosts other than `a` and `b`.
pub fn others(c: &Cluster, not: &[&str]) -> Vec<String> {
    c.lab
        .host_names()
        .into_iter()
        .filter(|h| !not.contains(&h.as_str()))
        .collect()
}

/// True when `host`'s cable is pulled (its bridge-side veth is administratively down).
pub fn unplugged(lab: &Lab, host: &str) -> bool {
    lab.node(host)
        .ok()
        .and_then(|n| ha_acceptance::veth_up(&n.veth))
        == Some(false)
}

pub use ha_acceptance::quick_read_only;

/// I1 as clients can observe it; see [`Invariants::start_reachable_only`].
pub struct NetworkInvariants;

impl NetworkInvariants {
    pub fn start(lab: &Lab) -> Invariants {
        Invariants::start_reachable_only(lab)
    }
}

/// The end of a failure scenario: stops the write probe, then checks I1 (the sampler saw no
/// two writers) and I2 (every acknowledged row is on `writer`). Returns the probe's report.
pub fn stop_and_check_i1_i2(
    c: &Cluster,
    probe: Probe,
    inv: Invariants,
    writer: &str,
) -> ProbeReport {
    let report = probe.stop();
    inv.assert_clean();
    let missing = report.missing_on(&c.lab, writer).expect("missing_on");
    assert!(
        missing.is_empty(),
        "I2: acknowledged rows missing on {writer}: {missing:?}"
    );
    report
}
