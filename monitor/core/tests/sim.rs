//! Deterministic cluster simulation: random schedules of host crashes, MySQL outages, network
//! partitions between monitor and host, lost agents, lost replies, replication breakage and lag,
//! monitor isolation and operator commands, in virtual time. Agents obey desired states and
//! writer leases exactly as specified (F9). After every tick the invariants are checked:
//!
//! * no two simulated hosts writable (read_only=0) or holding the writer IP at once (I1);
//! * at most one writer owner in the role table and among the desired states;
//! * roles are only gained by ONLINE hosts;
//! * identical schedules give identical traces (determinism), and nothing panics.
//!
//! `HA_SIM_SCHEDULES=<n>` runs more schedules (default 10,000); `HA_SIM_SEED` shifts the seeds.

use ha_core::*;
use std::time::Duration;

/// splitmix64: tiny, seedable, good enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(1000) < percent * 10
    }
    fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

const TICK: u64 = 1000;
const WRITER_IP: &str = "10.0.0.100";

#[derive(Clone, Debug)]
struct SimHost {
    name: String,
    powered: bool,
    mysql_up: bool,
    partitioned: bool,
    agent_up: bool,
    io_ok: bool,
    lag: u64,
    boot_ms: u64,
    // agent / server state
    epoch: u64,
    roles: Vec<RoleInstance>,
    read_only: bool,
    writer_synced: bool,
    promotion_error: Option<String>,
    lease_until: Option<u64>,
}

impl SimHost {
    fn new(name: &str) -> SimHost {
        SimHost {
            name: name.into(),
            powered: true,
            mysql_up: true,
            partitioned: false,
            agent_up: true,
            io_ok: true,
            lag: 0,
            boot_ms: 0,
            epoch: 0,
            roles: Vec::new(),
            read_only: true,
            writer_synced: false,
            promotion_error: None,
            lease_until: None,
        }
    }
    fn holds_writer(&self) -> bool {
        self.roles.iter().any(|r| r.name == "writer")
    }
    fn writable(&self) -> bool {
        self.powered && self.mysql_up && !self.read_only
    }
    fn demote(&mut self) {
        self.roles.retain(|r| r.name != "writer");
        self.read_only = true;
        self.writer_synced = false;
        self.lease_until = None;
    }
    fn crash(&mut self) {
        self.powered = false;
        self.roles.clear();
        self.demote();
    }
    fn boot(&mut self, now: u64) {
        self.powered = true;
        self.mysql_up = true;
        self.agent_up = true;
        self.boot_ms = now;
        self.epoch = 0;
        self.roles.clear();
        self.demote();
        self.promotion_error = None;
    }
    fn reachable(&self) -> bool {
        self.powered && !self.partitioned
    }
    fn facts(&self, now: u64) -> AgentFacts {
        AgentFacts {
            uptime_secs: (now - self.boot_ms) as f64 / 1000.0 + 100.0,
            epoch: self.epoch,
            roles: self.roles.clone(),
            read_only: self.read_only,
            writer_synced: self.writer_synced,
            promotion_error: self.promotion_error.clone(),
            replicating_from: None,
            io_running: self.io_ok,
            sql_running: self.io_ok,
            // The simulated agent always reaches its server when it answers at all.
            ..Default::default()
        }
    }

    /// An obedient agent applying a desired state received at `receipt`.
    fn apply(&mut self, d: &DesiredState, receipt: u64) {
        if d.epoch < self.epoch {
            return; // stale monitor: refused
        }
        self.epoch = d.epoch;
        self.promotion_error = None;
        let want_writer = d.roles.iter().any(|r| r.name == "writer");
        // Remove first, then add (remove-before-add on the host too).
        if !want_writer && self.holds_writer() {
            self.demote();
        }
        self.roles.retain(|r| d.roles.contains(r));
        for r in &d.roles {
            if r.name == "writer" {
                let synced = self.mysql_up && self.io_ok && self.lag <= 5;
                if !self.holds_writer() && !synced && !d.force {
                    self.promotion_error = Some("relay log not applied before the deadline".into());
                    continue;
                }
                if !self.mysql_up {
                    continue;
                }
                self.read_only = false;
                self.writer_synced = true;
                self.lease_until = (!d.writer_lease.is_zero())
                    .then(|| receipt + d.writer_lease.as_millis() as u64);
            }
            if !self.roles.contains(r) {
                self.roles.push(r.clone());
            }
        }
        self.roles.sort();
    }
}

fn spec(rng: &mut Rng) -> ClusterSpec {
    let host = |n: &str, ip: &str, mode, peer: Option<&str>| HostSpec {
        name: n.into(),
        ip: ip.into(),
        mode,
        peer: peer.map(Into::into),
    };
    let mut s = ClusterSpec::with_defaults(
        vec![
            host("db1", "10.0.0.1", HostMode::Master, Some("db2")),
            host("db2", "10.0.0.2", HostMode::Master, Some("db1")),
            host("db3", "10.0.0.3", HostMode::Slave, None),
        ],
        vec![
            RoleSpec {
                name: "writer".into(),
                mode: RoleMode::Exclusive,
                hosts: vec!["db1".into(), "db2".into()],
                ips: vec![WRITER_IP.into()],
                prefer: (rng.below(4) == 0).then(|| "db1".into()),
            },
            RoleSpec {
                name: "reader".into(),
                mode: RoleMode::Balanced,
                hosts: vec!["db1".into(), "db2".into(), "db3".into()],
                ips: vec![
                    "10.0.0.101".into(),
                    "10.0.0.102".into(),
                    "10.0.0.103".into(),
                ],
                prefer: None,
            },
        ],
        "writer",
    );
    s.trap_periods = TrapPeriods::uniform(Duration::from_millis(rng.below(3) * TICK));
    s.writer_lease = Duration::from_secs([0, 5, 15][rng.below(3) as usize]);
    s.agent_timeout = Duration::from_secs(2);
    s.kill_host_configured = rng.chance(50);
    s.auto_set_online = Duration::from_secs([0, 10][rng.below(2) as usize]);
    s.flap_duration = Duration::from_secs(300);
    s.wait_for_other_master = Duration::from_secs(20);
    s.initial_mode = if rng.below(8) == 0 {
        Mode::Wait
    } else {
        Mode::Active
    };
    s
}

/// What happened in one schedule (to show the simulation is not vacuous).
#[derive(Default, Debug)]
struct Stats {
    writer_ticks: u64,
    writer_changes: u64,
    kills: u64,
    promotion_errors: u64,
}

/// Runs one schedule; returns a digest of every action for the determinism check.
fn run(seed: u64, ticks: u64, stats: &mut Stats) -> u64 {
    let mut last_writer: Option<String> = None;
    let mut rng = Rng(seed);
    let spec = spec(&mut rng);
    let mut core = Core::new(spec.clone());
    let mut hosts: Vec<SimHost> = ["db1", "db2", "db3"]
        .iter()
        .map(|n| SimHost::new(n))
        .collect();
    let mut pending: Vec<Input> = Vec::new();
    let mut isolated = false;
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut next_id = 0;
    for tick in 1..=ticks {
        let now = tick * TICK;
        // Faults.
        for h in hosts.iter_mut() {
            if rng.permille(8) {
                if h.powered {
                    h.crash()
                } else {
                    h.boot(now)
                }
            }
            if !h.powered && rng.permille(60) {
                h.boot(now);
            }
            if h.powered && rng.permille(10) {
                h.mysql_up = !h.mysql_up;
                if !h.mysql_up {
                    h.demote();
                }
            }
            if rng.permille(8) {
                h.partitioned = !h.partitioned;
            }
            if rng.permille(8) {
                h.agent_up = !h.agent_up;
            }
            if rng.permille(10) {
                h.io_ok = !h.io_ok;
            }
            if rng.permille(10) {
                h.lag = if h.lag > 0 { 0 } else { 30 + rng.below(100) };
            }
            // Leases run on the host's own clock.
            if h.lease_until.is_some_and(|t| now >= t) {
                h.demote();
            }
        }
        if rng.permille(5) {
            isolated = !isolated;
            pending.push(Input::Network {
                reachable: !isolated,
            });
        }
        // Checks.
        for h in &hosts {
            let ok = |b: bool| {
                if b {
                    CheckOutcome::Ok
                } else {
                    CheckOutcome::Error
                }
            };
            let reach = h.reachable();
            let db = reach && h.mysql_up;
            let rep = |good: bool| {
                if !reach {
                    CheckOutcome::Error
                } else if !h.mysql_up {
                    CheckOutcome::Unknown
                } else {
                    ok(good)
                }
            };
            for (check, outcome) in [
                (Check::Ping, ok(reach)),
                (Check::Mysql, ok(db)),
                (Check::RepThreads, rep(h.io_ok)),
                (Check::RepBacklog, rep(h.lag <= 60)),
            ] {
                let outcome = if rng.permille(10) {
                    CheckOutcome::Unknown
                } else {
                    outcome
                };
                pending.push(Input::CheckResult {
                    host: h.name.clone(),
                    check,
                    outcome,
                    message: String::new(),
                });
            }
        }
        // Operator.
        let mut commands = Vec::new();
        if tick == 2 || rng.permille(60) {
            for h in &hosts {
                commands.push(AdminCommand::SetOnline(h.name.clone()));
            }
        }
        if rng.permille(15) {
            let target = hosts[rng.below(2) as usize].name.clone();
            commands.push(AdminCommand::MoveRole {
                role: "writer".into(),
                host: target,
                force: rng.chance(20),
            });
        }
        if rng.permille(5) {
            commands.push(AdminCommand::SetOffline(
                hosts[rng.below(3) as usize].name.clone(),
            ));
        }
        if rng.permille(5) {
            let m = [Mode::Active, Mode::Manual, Mode::Passive][rng.below(3) as usize];
            commands.push(AdminCommand::SetMode(m));
        }
        if core.mode() != Mode::Active && rng.permille(50) {
            commands.push(AdminCommand::SetMode(Mode::Active));
        }
        for command in commands {
            next_id += 1;
            pending.push(Input::Command {
                id: next_id,
                command,
            });
        }

        let before = core.role_table();
        let actions = core.step(std::mem::take(&mut pending), Millis(now));
        let after = core.role_table();

        // Invariant: roles are only gained by ONLINE hosts.
        for ((inst, old), (_, new)) in before.iter().zip(&after) {
            if let Some(n) = new {
                if old.as_ref() != Some(n) {
                    assert_eq!(
                        core.state(n),
                        Some(HostState::Online),
                        "seed {seed} tick {tick}: {inst} gained by {n}"
                    );
                }
            }
        }
        let table_writers = after
            .iter()
            .filter(|(i, o)| i.name == "writer" && o.is_some())
            .count();
        assert!(table_writers <= 1, "seed {seed}: two writers in the table");

        for a in &actions {
            digest = fnv(digest, &format!("{a:?}"));
            if let Action::Kill { host, .. } = a {
                stats.kills += 1;
                let ok = rng.chance(90);
                if ok {
                    if let Some(h) = hosts.iter_mut().find(|h| &h.name == host) {
                        h.crash();
                    }
                }
                pending.push(Input::KillResult {
                    host: host.clone(),
                    ok,
                    output: String::new(),
                });
            }
        }

        // Sends.
        let desired: Vec<Option<DesiredState>> = hosts
            .iter()
            .map(|h| core.desired_state(&h.name, Millis(now)))
            .collect();
        let desired_writers = desired
            .iter()
            .flatten()
            .filter(|d| d.roles.iter().any(|r| r.name == "writer"))
            .count();
        assert!(
            desired_writers <= 1,
            "seed {seed} tick {tick}: two desired writers"
        );
        for (h, d) in hosts.iter_mut().zip(desired) {
            let Some(d) = d else { continue };
            core.note_sent(&h.name, &d, Millis(now));
            let delivered = !isolated && h.reachable() && h.agent_up;
            let report = if delivered {
                let receipt = now + rng.below(2001);
                h.apply(&d, receipt);
                if rng.permille(30) {
                    AgentReport::Unreachable {
                        error: "reply lost".into(),
                    }
                } else {
                    AgentReport::Status(h.facts(now))
                }
            } else {
                AgentReport::Unreachable {
                    error: "timeout".into(),
                }
            };
            pending.push(Input::AgentReport {
                host: h.name.clone(),
                report,
            });
        }

        // I1: one writer at any sampled instant.
        let writable: Vec<&str> = hosts
            .iter()
            .filter(|h| h.writable())
            .map(|h| h.name.as_str())
            .collect();
        assert!(
            writable.len() <= 1,
            "seed {seed} tick {tick}: writable {writable:?}\n{hosts:#?}"
        );
        if let Some(w) = writable.first() {
            stats.writer_ticks += 1;
            if last_writer.as_deref() != Some(w) {
                stats.writer_changes += 1;
                last_writer = Some(w.to_string());
            }
        }
        stats.promotion_errors +=
            hosts.iter().filter(|h| h.promotion_error.is_some()).count() as u64;
        let ip_holders = hosts
            .iter()
            .filter(|h| h.powered && h.holds_writer())
            .count();
        assert!(
            ip_holders <= 1,
            "seed {seed} tick {tick}: writer IP on {ip_holders} hosts"
        );
    }
    digest
}

fn fnv(mut h: u64, s: &str) -> u64 {
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_schedules_keep_the_invariants() {
    let n = env("HA_SIM_SCHEDULES", 10_000);
    let base = env("HA_SIM_SEED", 0);
    let start = std::time::Instant::now();
    let mut stats = Stats::default();
    for i in 0..n {
        let seed = base.wrapping_add(i).wrapping_mul(0x2545_F491_4F6C_DD1D);
        let d = run(seed, 120, &mut stats);
        if i % 500 == 0 {
            assert_eq!(
                run(seed, 120, &mut Stats::default()),
                d,
                "seed {seed}: same schedule, different actions"
            );
        }
    }
    eprintln!(
        "{n} schedules x 120 ticks in {:?}: {stats:?}",
        start.elapsed()
    );
    // Not vacuous: writers exist most of the time and change hands often.
    assert!(stats.writer_ticks > n * 30, "{stats:?}");
    assert!(stats.writer_changes > n, "{stats:?}");
}

#[test]
fn simulated_cluster_actually_fails_over() {
    // Guard against a vacuous simulation: a healthy cluster gets a writer, and killing it
    // moves the writer to the other master.
    let mut promoted = 0;
    for seed in 0..200u64 {
        let mut rng = Rng(seed);
        let mut spec = spec(&mut rng);
        spec.writer_lease = Duration::from_secs(5);
        let mut core = Core::new(spec);
        let mut hosts: Vec<SimHost> = ["db1", "db2", "db3"]
            .iter()
            .map(|n| SimHost::new(n))
            .collect();
        let mut pending = Vec::new();
        let mut writers_seen = std::collections::BTreeSet::new();
        for tick in 1..=60u64 {
            let now = tick * TICK;
            if tick == 30 {
                hosts[0].crash();
            }
            for h in hosts.iter_mut() {
                if h.lease_until.is_some_and(|t| now >= t) {
                    h.demote();
                }
            }
            for h in &hosts {
                let o = if h.powered {
                    CheckOutcome::Ok
                } else {
                    CheckOutcome::Error
                };
                for c in Check::ALL {
                    pending.push(Input::CheckResult {
                        host: h.name.clone(),
                        check: c,
                        outcome: o,
                        message: String::new(),
                    });
                }
                if tick == 2 {
                    pending.push(Input::Command {
                        id: tick,
                        command: AdminCommand::SetOnline(h.name.clone()),
                    });
                }
            }
            core.step(std::mem::take(&mut pending), Millis(now));
            for h in hosts.iter_mut() {
                let Some(d) = core.desired_state(&h.name, Millis(now)) else {
                    continue;
                };
                core.note_sent(&h.name, &d, Millis(now));
                let report = if h.powered {
                    h.apply(&d, now);
                    AgentReport::Status(h.facts(now))
                } else {
                    AgentReport::Unreachable {
                        error: "down".into(),
                    }
                };
                pending.push(Input::AgentReport {
                    host: h.name.clone(),
                    report,
                });
                if h.writable() {
                    writers_seen.insert(h.name.clone());
                }
            }
        }
        if writers_seen.len() == 2 && hosts[1].writable() {
            promoted += 1;
        }
    }
    assert!(promoted >= 190, "only {promoted}/200 runs failed over");
}
