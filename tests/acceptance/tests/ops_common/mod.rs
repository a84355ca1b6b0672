//! Shared steps of the operational scenarios (S5–S12): replication faults, flapping, agent and
//! monitor restarts, operator commands.
//!
//! Kept in its own module (not in the fixture) so these scenarios can evolve without touching
//! the shared `ha_acceptance` library. Not every scenario uses every helper.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, Invariants, Show};
use ha_lab::{Probe, ProbeOptions};

/// Generous bound of every wait.
pub const T: Duration = Duration::from_secs(60);

/// mysql-mmm rule O3: replication errors of a host are ignored for 60 s after its peer came
/// ONLINE (`ha_core::machine::PEER_GRACE`). [`Cluster::start`] sets every host online, so a
/// replication fault is only acted upon once this much time passed since then.
pub const PEER_GRACE: Duration = Duration::from_secs(60);

/// A cluster under observation: I1 sampled continuously, a write probe through the writer IP
/// (I2), and the instant every host came ONLINE (for the O3 grace period).
pub struct Scenario {
    pub c: Cluster,
    pub inv: Invariants,
    pub probe: Probe,
    pub online_at: Instant,
}

impl Scenario {
    /// Starts a cluster with `opts`, the I1 sampler and a probe writing every `interval`.
    pub fn start(opts: ClusterOptions, interval: Duration) -> Scenario {
        let c = Cluster::start(opts).expect("cluster");
        let online_at = Instant::now();
        let inv = Invariants::start(&c.lab);
        let probe = c
            .lab
            .start_probe(ProbeOptions::new(c.lab.writer_vip()).interval(interval))
            .expect("probe");
        probe.wait_acked(5, T).expect("probe writes at start");
        Scenario {
            c,
            inv,
            probe,
            online_at,
        }
    }

    /// Sleeps until the O3 grace period since start-up is over (plus a margin).
    pub fn wait_peer_grace(&self) {
        let until = self.online_at + PEER_GRACE + Duration::from_secs(2);
        let now = Instant::now();
        if until > now {
            eprintln!(
                "waiting {:?} for the O3 peer grace period to end",
                until - now
            );
            std::thread::sleep(until - now);
        }
    }

    /// I3 on `writer`, then I2 (every acknowledged probe row on `writer`) and I1 (no violation
    /// during the whole scenario). Returns the probe summary.
    pub fn finish(self, writer: &str) -> ha_lab::ProbeReport {
        assert_converged(&self.c, writer);
        self.probe
            .wait_acked(self.probe.acked_so_far() + 5, T)
            .expect("probe writes at the end");
        let report = self.probe.stop();
        self.inv.assert_clean();
        let missing = report.missing_on(&self.c.lab, writer).expect("missing_on");
        assert!(
            missing.is_empty(),
            "I2: acknowledged rows missing on {writer}: {missing:?}"
        );
        eprintln!("probe: {}", report.summary());
        report
    }
}

/// Runs `ha-control ARGS…` and asserts an `OK: …` reply with exit 0; returns stdout.
///
/// `set_online`, `set_offline` and `move_role` first ping the target's agent once with
/// `agent_timeout` (0.5 s in the fast settings); on an overloaded test machine that single
/// attempt can time out (`ERROR: Can't reach agent daemon …`), so — like an operator — this
/// retries that one reply a few times.
pub fn control_ok(c: &Cluster, args: &[&str]) -> String {
    let mut out = c.control(args).expect("ha-control");
    for _ in 0..5 {
        if !out.stdout.contains("Can't reach agent daemon") {
            break;
        }
        eprintln!(
            "ha-control {}: {} (retrying)",
            args.join(" "),
            out.stdout.trim()
        );
        std::thread::sleep(Duration::from_secs(1));
        out = c.control(args).expect("ha-control");
    }
    assert!(
        out.code == 0 && out.stdout.starts_with("OK:"),
        "ha-control {}: exit {} {} {}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// (host, state, sorted roles) of every host: what must not change when "nothing moves".
pub fn role_table(s: &Show) -> Vec<(String, String, Vec<String>)> {
    s.hosts
        .iter()
        .map(|h| {
            let mut r = h.roles.clone();
            r.sort();
            (h.name.clone(), h.state.clone(), r)
        })
        .collect()
}

/// Polls `show` for `dur` and asserts the role table equals `expected` every time.
pub fn assert_unchanged_for(
    c: &Cluster,
    expected: &[(String, String, Vec<String>)],
    dur: Duration,
    what: &str,
) {
    let start = Instant::now();
    let mut polls = 0;
    while start.elapsed() < dur {
        let s = c.show().expect("show");
        assert_eq!(
            role_table(&s),
            expected,
            "{what}: states/roles changed after {:?}\n{}",
            start.elapsed(),
            s.brief()
        );
        polls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(polls >= 3, "{what}: only {polls} polls");
}

/// Reader IPs held by `host` according to `show` (the IP inside `reader(ip)`).
pub fn reader_ips_of(s: &Show, host: &str) -> Vec<String> {
    s.host(host)
        .map(|h| {
            h.roles
                .iter()
                .filter_map(|r| r.strip_prefix("reader(")?.strip_suffix(')'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every role IP sits on exactly the host `show` names as its owner (and on no other), and an
/// unowned IP sits nowhere.
pub fn wait_ips_match_show(c: &Cluster) -> Show {
    let mut last = None;
    c.wait_for("role IPs on the hosts match show", T, |c| {
        let s = c.show()?;
        for r in &s.roles {
            for (ip, owner) in r.ips.iter().zip(&r.owners) {
                let ip: std::net::Ipv4Addr = ip.parse().map_err(|e| format!("{ip}: {e}"))?;
                let holders = c.lab.holders_of(ip).map_err(|e| e.to_string())?;
                let want: Vec<String> = owner.iter().cloned().collect();
                if holders != want {
                    return Err(format!(
                        "{} {ip}: on {holders:?}, show says {owner:?}",
                        r.name
                    ));
                }
            }
        }
        last = Some(s);
        Ok(true)
    })
    .expect("IPs match show");
    last.expect("show")
}

/// I3 (docs/product.md §4); see [`Cluster::assert_converged`].
pub fn assert_converged(c: &Cluster, writer: &str) -> Show {
    c.assert_converged(writer)
}

/// `ha-control --json checks HOST CHECK` → whether the monitor records the check as ok.
pub fn check_ok(c: &Cluster, host: &str, check: &str) -> Result<bool, String> {
    let out = c.control(&["--json", "checks", host, check])?;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("checks {host} {check}: bad JSON ({e}): {}", out.stdout))?;
    let row = match &v {
        serde_json::Value::Array(rows) => rows.first().cloned(),
        other => Some(other.clone()),
    }
    .ok_or_else(|| format!("checks {host} {check}: empty answer"))?;
    row.get("ok")
        .and_then(serde_json::Value::as_bool)
        .ok_or_else(|| format!("checks {host} {check}: no ok field: {row}"))
}
