//! Running one schedule on a fresh lab cluster with the checker on all the time (issue 15):
//! I1 sampled every 50 ms, two write clients through the writer IP (I2), convergence after the
//! operator's healing (I3), and no daemon exit the schedule did not cause (I4).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ha_lab::{ProbeOptions, ProbeReport};

use super::faults::Applier;
use super::schedule::{generate, Schedule, Timed};
use super::semisync::SemiSyncWatch;
use crate::cluster::{Cluster, ClusterOptions, Result};
use crate::invariants::Invariants;

/// How long the cluster may take to converge once everything is healed.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(120);

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `I1` … `I4`.
    pub invariant: &'static str,
    pub detail: String,
}

/// What one schedule did.
#[derive(Debug)]
pub struct Outcome {
    pub schedule: Schedule,
    pub violations: Vec<Violation>,
    /// Faults, healing and operator commands, with their time from the schedule's start.
    pub timeline: Vec<String>,
    /// Promotions the monitor began during the run (its history's `promotion_started`):
    /// failovers and switchovers.
    pub failovers: usize,
    /// The longest time no write was acknowledged, over both clients.
    pub outage: Duration,
    pub acked: usize,
    /// Acknowledged writes missing on the final writer that were acknowledged while a master
    /// committed without a semi-sync acknowledgement (`Rpl_semi_sync_master_no_tx` grew):
    /// asynchronous, so not covered by I2.
    pub lost_in_async_fallback: usize,
    /// Hosts rebuilt because they held never-acknowledged (errant) transactions.
    pub rebuilt: Vec<String>,
}

impl Outcome {
    /// Everything needed to understand a violation, and the command that replays it.
    pub fn report(&self) -> String {
        let mut s = format!(
            "seed {}: {} violation(s)\n{}timeline:\n",
            self.schedule.seed,
            self.violations.len(),
            self.schedule
        );
        for l in &self.timeline {
            s += &format!("  {l}\n");
        }
        for v in &self.violations {
            s += &format!("{}: {}\n", v.invariant, v.detail);
        }
        s += &format!("replay: {}\n", self.schedule.replay());
        s
    }
}

/// Deliberate breakage, to show the checker catches what it claims to (its own test).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sabotage {
    /// Make a host other than the writer writable for a moment once the faults are over.
    pub second_writer: bool,
    /// Delete an acknowledged write on the final writer (without binary logging) before I2.
    pub lose_a_write: bool,
}

/// The chaos cluster: the scenarios' fast settings, plus fencing (`kill_host_bin` shuts a
/// fenced host's switch port, [`ClusterOptions::fence_ports`]). Without fencing, a writer
/// whose agent stays dead past its lease is fenced by nobody (seeds 169 and 204, a known limit
/// in ARCHITECTURE.md); production deployments that want I1 under that fault configure
/// `kill_host_bin` the same way.
pub fn options() -> ClusterOptions {
    ClusterOptions {
        fence_ports: true,
        ..ClusterOptions::fast()
    }
}

/// Runs the schedule of `seed` on a new lab cluster with [`options`].
pub fn run_seed(seed: u64) -> Result<Outcome> {
    run_seed_with(seed, options())
}

/// Runs the schedule of `seed` on a new lab cluster started with `opts`.
pub fn run_seed_with(seed: u64, opts: ClusterOptions) -> Result<Outcome> {
    let c = Cluster::start(opts).map_err(|e| format!("cluster: {e}"))?;
    let schedule = generate(seed, &c.lab.host_names());
    run(&c, schedule, Sabotage::default())
}

/// Runs `schedule` on the running cluster `c` (with `sabotage`, for the checker's own test).
pub fn run(c: &Cluster, schedule: Schedule, sabotage: Sabotage) -> Result<Outcome> {
    let t0 = Instant::now();
    let wall0 = unix_ms();
    let mut timeline = vec![format!("+0 ms: writer {:?}", c.show()?.writer())];
    let inv = Invariants::start_reachable_only(&c.lab);
    let semi = SemiSyncWatch::start(&c.lab, t0);
    let vip = c.lab.writer_vip();
    let probes = [
        (
            t0.elapsed(),
            c.lab
                .start_probe(ProbeOptions::new(vip).interval(Duration::from_millis(50))),
        ),
        (
            t0.elapsed(),
            c.lab
                .start_probe(ProbeOptions::new(vip).interval(Duration::from_millis(70))),
        ),
    ];
    let mut applier = Applier::new(c);
    for (at, start, i) in steps(&schedule) {
        let due = t0 + at;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = &schedule.faults[i];
        let what = if start { "start" } else { "end" };
        let result = if start {
            applier.start(&t.fault)
        } else {
            applier.end(&t.fault)
        };
        let ms = t0.elapsed().as_millis();
        timeline.push(match result {
            Ok(note) => format!("+{ms} ms: {what} {}{note}", t.fault),
            Err(e) => format!("+{ms} ms: {what} {} FAILED: {e}", t.fault),
        });
    }
    let mut violations = applier.unexpected_exits();
    let ms = t0.elapsed().as_millis();
    timeline.push(format!("+{ms} ms: healing everything"));
    for line in applier.heal_all() {
        timeline.push(format!("+{} ms: heal: {line}", t0.elapsed().as_millis()));
    }
    let mut rebuilt = Vec::new();
    let converged = operator(c, &mut timeline, &mut rebuilt, t0);
    if let (true, Ok(w)) = (sabotage.second_writer, &converged) {
        timeline.push(format!(
            "+{} ms: sabotage: a second writer",
            t0.elapsed().as_millis()
        ));
        second_writer(c, w)?;
    }
    let writer = match &converged {
        Ok(w) => Some(w.clone()),
        Err(e) => {
            violations.push(Violation {
                invariant: "I3",
                detail: format!("no convergence within {CONVERGE_BOUND:?} of healing: {e}"),
            });
            c.show().ok().and_then(|s| s.writer())
        }
    };
    // Let the clients see the converged writer before they stop.
    std::thread::sleep(Duration::from_secs(2));
    let reports: Vec<(Duration, ProbeReport)> = probes
        .into_iter()
        .filter_map(|(offset, p)| match p {
            Ok(p) => Some((offset, p.stop())),
            Err(e) => {
                violations.push(Violation {
                    invariant: "I2",
                    detail: format!("a write client did not start: {e}"),
                });
                None
            }
        })
        .collect();
    let (samples, i1) = inv.stop();
    timeline.push(format!("I1: {samples} samples"));
    violations.extend(i1.into_iter().map(|d| Violation {
        invariant: "I1",
        detail: d,
    }));
    violations.extend(applier.unexpected_exits());
    let fallbacks = semi.stop();
    timeline.push(format!(
        "semi-sync: asynchronous commits in {} window(s): {}",
        fallbacks.len(),
        fallbacks
            .iter()
            .map(|(a, b)| format!("+{}..+{} ms", a.as_millis(), b.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let unprotected = |at: Duration| fallbacks.iter().any(|(from, to)| at >= *from && at <= *to);
    if let (true, Some(w)) = (sabotage.lose_a_write, &writer) {
        // The newest write a semi-sync replica acknowledged: I2 covers it.
        let victim = reports.first().and_then(|(offset, r)| {
            r.attempts
                .iter()
                .rev()
                .find(|a| a.ok() && !unprotected(*offset + a.finished))
                .map(|a| (r.run.clone(), a.seq))
        });
        let (run_id, seq) = victim.ok_or("sabotage: no acknowledged write to delete")?;
        timeline.push(format!("sabotage: acknowledged write {seq} deleted on {w}"));
        c.lab
            .sql(
                w,
                &format!(
                    "SET sql_log_bin=0; DELETE FROM hatest.probe WHERE run = '{run_id}' AND seq = {seq}"
                ),
            )
            .map_err(|e| format!("sabotage: {e}"))?;
    }
    let mut lost_in_async_fallback = 0;
    if let Some(w) = &writer {
        for (offset, r) in &reports {
            let missing = r.missing_on(&c.lab, w).map_err(|e| e.to_string())?;
            for seq in missing {
                let acked_at = r
                    .attempts
                    .iter()
                    .find(|a| a.seq == seq)
                    .map(|a| *offset + a.finished)
                    .unwrap_or_default();
                if unprotected(acked_at) {
                    lost_in_async_fallback += 1;
                } else {
                    violations.push(Violation {
                        invariant: "I2",
                        detail: format!(
                            "write {seq} of client {} acknowledged at +{} ms is missing on the final writer {w}",
                            r.run,
                            acked_at.as_millis()
                        ),
                    });
                }
            }
        }
    }
    let decisions = decisions(c, wall0);
    let failovers = decisions
        .iter()
        .filter(|(_, kind, _)| kind == "promotion_started")
        .count();
    merge_decisions(&mut timeline, &decisions);
    Ok(Outcome {
        failovers,

        outage: reports
            .iter()
            .map(|(_, r)| r.longest_outage())
            .max()
            .unwrap_or_default(),
        acked: reports.iter().map(|(_, r)| r.ok_count()).sum(),
        lost_in_async_fallback,
        rebuilt,
        schedule,
        violations,
        timeline,
    })
}

/// Sabotage: makes a replica writable for 1.5 s (the sampler must see two writers, even on a
/// loaded machine where a sampling round takes longer than its 50 ms).
fn second_writer(c: &Cluster, writer: &str) -> Result<()> {
    let other = c
        .lab
        .host_names()
        .into_iter()
        .find(|h| h != writer)
        .ok_or("no second host")?;
    // Its agent would put read_only back within a pass (CI once saw it win every sample):
    // stop it meanwhile, as a crashed agent would be.
    c.stop_agent(&other)?;
    c.lab
        .sql(&other, "SET GLOBAL read_only=0")
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(1500));
    c.lab
        .sql(&other, "SET GLOBAL read_only=1")
        .map_err(|e| e.to_string())?;
    c.start_agent(&other)
}

/// Fault starts and ends in time order: (when, is a start, fault index).
fn steps(s: &Schedule) -> Vec<(Duration, bool, usize)> {
    let mut v: Vec<(Duration, bool, usize)> = s
        .faults
        .iter()
        .enumerate()
        .flat_map(|(i, t): (usize, &Timed)| [(t.at, true, i), (t.end(), false, i)])
        .collect();
    v.sort_by_key(|(at, start, i)| (*at, !*start, *i));
    v
}

/// The operator after the healing: sets hosts online, rebuilds a host holding
/// never-acknowledged transactions, until the cluster converged (I3). The writer's name.
fn operator(
    c: &Cluster,
    timeline: &mut Vec<String>,
    rebuilt: &mut Vec<String>,
    t0: Instant,
) -> Result<String> {
    let start = Instant::now();
    let mut stuck_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut last = String::new();
    while start.elapsed() < CONVERGE_BOUND {
        for line in super::faults::reenable_fenced_ports(c) {
            timeline.push(format!(
                "+{} ms: operator: {line}",
                t0.elapsed().as_millis()
            ));
        }
        let show = match c.show() {
            Ok(s) => s,
            Err(e) => {
                last = e;
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        last = show.brief();
        if show.all_online() && show.readers_assigned() {
            if let Some(w) = show.writer() {
                let left = CONVERGE_BOUND.saturating_sub(start.elapsed());
                let ready = c
                    .wait_writer_ready(&w, left.min(Duration::from_secs(10)))
                    .and_then(|()| c.wait_replicating_from(&w, left.min(Duration::from_secs(10))));
                match ready {
                    Ok(()) => {
                        timeline.push(format!(
                            "+{} ms: converged, writer {w}",
                            t0.elapsed().as_millis()
                        ));
                        return Ok(w);
                    }
                    Err(e) => last = e,
                }
            }
        }
        for h in &show.hosts {
            if h.state == "ONLINE" {
                stuck_since.remove(&h.name);
                continue;
            }
            let since = *stuck_since
                .entry(h.name.clone())
                .or_insert_with(Instant::now);
            if matches!(h.state.as_str(), "ADMIN_OFFLINE" | "AWAITING_RECOVERY")
                && h.agent_reachable
            {
                if let Ok(out) = c.control(&["set_online", &h.name]) {
                    if out.code == 0 {
                        timeline.push(format!(
                            "+{} ms: operator: set_online {} ({})",
                            t0.elapsed().as_millis(),
                            h.name,
                            h.state
                        ));
                    }
                }
            }
            let refused = c
                .agent(&h.name)
                .is_some_and(|a| a.log().contains("Rebuild this host from"));
            if refused && since.elapsed() > Duration::from_secs(10) {
                if let Some(w) = show.writer() {
                    timeline.push(format!(
                        "+{} ms: operator: rebuild {} from {w} (never-acknowledged transactions)",
                        t0.elapsed().as_millis(),
                        h.name
                    ));
                    super::faults::rebuild(c, &h.name, &w)?;
                    rebuilt.push(h.name.clone());
                    stuck_since.remove(&h.name);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("last show: {last}\n{}", c.diagnostics()))
}

/// The monitor's decisions since `wall0` (its history: time since `wall0`, kind, message),
/// oldest first.
fn decisions(c: &Cluster, wall0: i64) -> Vec<(u128, String, String)> {
    let Ok(out) = c.control(&["--json", "history", "--limit", "100000"]) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    let Some(events) = v["events"].as_array() else {
        return Vec::new();
    };
    events
        .iter()
        .filter_map(|e| {
            let t = e["time_unix_ms"].as_i64()?;
            let at = u128::try_from(t.checked_sub(wall0)?).ok()?;
            let kind = e["kind"].as_str()?.to_string();
            Some((
                at,
                kind,
                e["message"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Puts the monitor's decisions into the timeline of faults, healing and operator commands,
/// in time order (each line starts with `+N ms:`), so a report shows cause and reaction
/// together.
fn merge_decisions(timeline: &mut Vec<String>, decisions: &[(u128, String, String)]) {
    timeline.extend(
        decisions
            .iter()
            .map(|(at, kind, msg)| format!("+{at} ms: monitor {kind}: {msg}")),
    );
    let at = |l: &String| -> u128 {
        l.strip_prefix('+')
            .and_then(|r| r.split_once(" ms:"))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or(u128::MAX)
    };
    timeline.sort_by_key(at);
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::merge_decisions;

    #[test]
    fn decisions_are_merged_into_the_timeline_in_time_order() {
        let mut timeline = vec![
            "+0 ms: writer Some(\"db1\")".to_string(),
            "+1500 ms: start link down db1".to_string(),
            "+9000 ms: healing everything".to_string(),
        ];
        let decisions = [
            (
                2600,
                "state_change".to_string(),
                "db1 HARD_OFFLINE".to_string(),
            ),
            (1500, "fence_started".to_string(), "fencing db1".to_string()),
        ];
        merge_decisions(&mut timeline, &decisions);
        assert_eq!(
            timeline,
            [
                "+0 ms: writer Some(\"db1\")",
                "+1500 ms: start link down db1",
                "+1500 ms: monitor fence_started: fencing db1",
                "+2600 ms: monitor state_change: db1 HARD_OFFLINE",
                "+9000 ms: healing everything",
            ]
        );
    }
}
