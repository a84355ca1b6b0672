//! Deterministic cluster simulation: random schedules of host crashes and reboots, MySQL
//! outages, network partitions between monitor and host, unreachable and restarting agents,
//! lost, late, duplicated and reordered requests and replies, replication breakage and lag,
//! monitor isolation, monitor restarts from the status file (with failed saves), and operator
//! commands, in virtual time. Every agent and the monitor run on their own clock, with a random
//! offset and a drift within ρ (crate ha-lease). Agents obey desired states and writer leases
//! exactly as the agent does: the lease counts from the echoed token on the agent's clock, a
//! restarted agent keeps its persisted lease (same boot), a rebooted one has none, and a host
//! counts as writable until it is *fenced*, that is until its whole fence budget has passed.
//! After every tick the invariants are checked:
//!
//! * no two simulated hosts writable (read_only=0) or holding the writer IP at once (I1);
//! * at most one writer owner in the role table and among the desired states;
//! * roles are only gained by ONLINE hosts;
//! * identical schedules give identical traces (determinism), and nothing panics.
//!
//! `HA_SIM_SCHEDULES=<n>` runs more schedules (default 10,000); `HA_SIM_SEED` shifts the seeds.

use ha_core::*;
use ha_lease::{AgentDeadline, LeaseToken, DRIFT_PPM};
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
    /// A clock: random offset, drift within ±ρ/2.
    fn clock(&mut self) -> Clock {
        let half = DRIFT_PPM / 2;
        Clock {
            offset: self.below(1_000_000_000),
            ppm: self.below(2 * half + 1) as i64 - half as i64,
        }
    }
}

/// A machine's monotonic clock in ms: `offset + t·(1 + ppm/10⁶)` for real time `t`.
#[derive(Clone, Copy, Debug)]
struct Clock {
    offset: u64,
    ppm: i64,
}

impl Clock {
    fn ms(&self, t: u64) -> u64 {
        let drift = (t as i128 * self.ppm as i128).div_euclid(1_000_000);
        (self.offset as i128 + t as i128 + drift) as u64
    }
}

const TICK: u64 = 250;
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
    boot: u64,
    clock: Clock,
    budget_ms: u64,
    // agent (persisted in its state file: epoch, lease) / server state
    epoch: u64,
    roles: Vec<RoleInstance>,
    read_only: bool,
    writer_synced: bool,
    promotion_error: Option<String>,
    lease: Option<AgentDeadline>,
    /// A promotion under way (relay-log sync): the host becomes writable at this real time if
    /// it is still wanted and its lease still valid. Replies meanwhile say read_only=1.
    promotion: Option<u64>,
    wants_writer: bool,
    /// Changes with every boot and agent restart (connections to the agent are reset).
    incarnation: u64,
}

impl SimHost {
    fn new(name: &str, rng: &mut Rng) -> SimHost {
        SimHost {
            name: name.into(),
            powered: true,
            mysql_up: true,
            partitioned: false,
            agent_up: true,
            io_ok: true,
            lag: 0,
            boot_ms: 0,
            boot: rng.next(),
            clock: rng.clock(),
            budget_ms: rng.below(600),
            epoch: 0,
            roles: Vec::new(),
            read_only: true,
            writer_synced: false,
            promotion_error: None,
            lease: None,
            promotion: None,
            wants_writer: false,
            incarnation: 0,
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
        self.lease = None;
        self.promotion = None;
    }
    fn crash(&mut self) {
        self.powered = false;
        self.roles.clear();
        self.demote();
    }
    /// Power on: a new boot (new boot id: a lease from before means nothing), my.cnf starts
    /// read-only. The agent's state file is on disk: its epoch survives.
    fn boot(&mut self, now: u64, rng: &mut Rng) {
        self.powered = true;
        self.mysql_up = true;
        self.agent_up = true;
        self.boot_ms = now;
        self.boot = rng.next();
        self.incarnation += 1;
        self.roles.clear();
        self.demote();
        self.promotion_error = None;
    }
    /// The agent process restarts: it keeps its persisted epoch and lease (same boot); with no
    /// valid lease it fences at once (read_only=1, writer IP dropped).
    fn agent_restart(&mut self, now: u64) {
        self.agent_up = true;
        self.incarnation += 1;
        let valid = self.lease.is_some_and(|d| d.valid_at(self.clock.ms(now)));
        if !valid && (self.holds_writer() || !self.read_only) {
            self.demote();
        }
    }
    fn reachable(&self) -> bool {
        self.powered && !self.partitioned
    }
    fn token(&self, now: u64) -> LeaseToken {
        LeaseToken {
            boot_id: format!("{:x}", self.boot),
            at_ms: self.clock.ms(now),
        }
    }
    /// The agent's lease watchdog: the host is fenced once the whole budget after the start of
    /// fencing has passed (the slowest fence the agent declares).
    fn watchdog(&mut self, now: u64) {
        if self
            .lease
            .is_some_and(|d| self.clock.ms(now) >= d.fenced_by_ms)
        {
            self.demote();
        }
        // A promotion finishing: only while wanted, under a valid lease (or none configured).
        if self.promotion.is_some_and(|t| now >= t) {
            self.promotion = None;
            let at = self.clock.ms(now);
            let lease_ok = self.lease.is_none_or(|l| l.valid_at(at));
            if self.wants_writer && lease_ok && self.powered && self.mysql_up {
                self.read_only = false;
                self.writer_synced = true;
                self.roles.push(RoleInstance::new("writer", WRITER_IP));
                self.roles.sort();
                self.roles.dedup();
            }
        }
    }
    fn facts(&self, now: u64) -> AgentFacts {
        let at = self.clock.ms(now);
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
            lease_token: Some(self.token(now)),
            fence_budget: Duration::from_millis(self.budget_ms),
            lease_remaining: self
                .lease
                .map(|d| Duration::from_millis(d.fence_at_ms.saturating_sub(at))),
            // The simulated agent always reaches its server when it answers at all.
            ..Default::default()
        }
    }

    /// An obedient agent applying a desired state that arrives at real time `receipt`; a new
    /// promotion finishes at `defer` when given (the relay-log sync takes a while).
    fn apply(&mut self, d: &DesiredState, receipt: u64, defer: Option<u64>) -> Option<AgentReport> {
        if d.epoch < self.epoch {
            return Some(AgentReport::StaleEpoch { held: self.epoch });
        }
        self.epoch = d.epoch;
        self.promotion_error = None;
        let want_writer = d.roles.iter().any(|r| r.name == "writer");
        // The lease this grant gives, if any: counted from the echoed token on our own clock.
        let now_ms = self.clock.ms(receipt);
        let grant = match (&d.lease_token, d.writer_lease.is_zero()) {
            (_, true) => None,
            (Some(t), false) if t.boot_id == format!("{:x}", self.boot) && t.at_ms <= now_ms => {
                Some(AgentDeadline::new(
                    t.at_ms,
                    d.writer_lease.as_millis() as u64,
                    self.budget_ms,
                ))
            }
            _ => Some(AgentDeadline::new(0, 0, 0)), // no usable token: nothing
        };
        let lease_ok = grant.is_none_or(|g| g.valid_at(now_ms))
            || self.lease.is_some_and(|l| l.valid_at(now_ms));
        self.wants_writer = want_writer && lease_ok;
        // The lease starts when the grant is accepted, before the promotion's steps run.
        if let Some(g) = grant.filter(|g| want_writer && g.valid_at(now_ms)) {
            self.lease = Some(self.lease.map_or(g, |l| l.later(g)));
        }
        // Remove first, then add (remove-before-add on the host too).
        if (!want_writer || !lease_ok) && self.holds_writer() {
            self.demote();
        }
        self.roles.retain(|r| d.roles.contains(r));
        for r in &d.roles {
            if r.name == "writer" {
                if !lease_ok {
                    continue;
                }
                let synced = self.mysql_up && self.io_ok && self.lag <= 5;
                if !self.holds_writer() && !synced && !d.force {
                    self.promotion_error = Some("relay log not applied before the deadline".into());
                    continue;
                }
                if !self.mysql_up {
                    continue;
                }
                if !self.holds_writer() {
                    if let Some(t) = defer {
                        self.promotion = self.promotion.or(Some(t));
                        continue;
                    }
                }
                self.read_only = false;
                self.writer_synced = true;
            }
            if !self.roles.contains(r) {
                self.roles.push(r.clone());
            }
        }
        self.roles.sort();
        if !want_writer {
            self.promotion = None;
            if self.roles.iter().all(|r| r.name != "writer") && self.read_only {
                // The demotion is complete: the lease ends with it.
                self.lease = None;
            }
        }
        None
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
    s.trap_periods = TrapPeriods::uniform(Duration::from_millis(rng.below(5) * TICK));
    s.writer_lease = Duration::from_millis([0, 1_200, 3_000, 8_000][rng.below(4) as usize]);
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
    monitor_restarts: u64,
    agent_restarts: u64,
    late_deliveries: u64,
    stale_refusals: u64,
}

/// A request still in the network: delivered at `at` (real time), its reply lost. It travels
/// on a TCP connection to one agent process: a reboot or an agent restart resets it.
struct InFlight {
    host: usize,
    desired: DesiredState,
    at: u64,
    incarnation: u64,
}

/// Runs one schedule; returns a digest of every action for the determinism check.
fn run(seed: u64, ticks: u64, stats: &mut Stats) -> u64 {
    let trace = std::env::var("HA_SIM_TRACE").ok() == Some(seed.to_string());
    let mut last_writer: Option<String> = None;
    let mut rng = Rng(seed);
    let spec = spec(&mut rng);
    let mut mclock = rng.clock();
    let mut core = Core::new(spec.clone());
    let mut file: Option<PersistedState> = None;
    let mut hosts: Vec<SimHost> = ["db1", "db2", "db3"]
        .iter()
        .map(|n| SimHost::new(n, &mut rng))
        .collect();
    let mut pending: Vec<Input> = Vec::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut isolated = false;
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut next_id = 0;
    for tick in 1..=ticks {
        let now = tick * TICK;
        // Faults.
        for h in hosts.iter_mut() {
            if rng.permille(3) {
                if h.powered {
                    h.crash()
                } else {
                    h.boot(now, &mut rng)
                }
            }
            if !h.powered && rng.permille(20) {
                h.boot(now, &mut rng);
            }
            if h.powered && rng.permille(4) {
                h.mysql_up = !h.mysql_up;
                if !h.mysql_up {
                    h.demote();
                }
            }
            if rng.permille(4) {
                h.partitioned = !h.partitioned;
            }
            if rng.permille(3) {
                h.agent_up = !h.agent_up;
            }
            if h.powered && rng.permille(3) {
                stats.agent_restarts += 1;
                h.agent_restart(now);
            }
            if rng.permille(4) {
                h.io_ok = !h.io_ok;
            }
            if rng.permille(4) {
                h.lag = if h.lag > 0 { 0 } else { 30 + rng.below(100) };
            }
            // Leases run on the host's own clock.
            h.watchdog(now);
        }
        // Late deliveries (TCP retransmissions after an outage, duplicates): applied now.
        let (due, later): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|f| f.at <= now);
        in_flight = later;
        for f in due {
            let h = &mut hosts[f.host];
            if h.reachable() && h.agent_up && h.incarnation == f.incarnation {
                if trace {
                    eprintln!(
                        "  late delivery to {}: epoch {} roles {:?}",
                        h.name, f.desired.epoch, f.desired.roles
                    );
                }
                stats.late_deliveries += 1;
                h.apply(&f.desired, now, None);
            }
        }
        if rng.permille(2) {
            isolated = !isolated;
            pending.push(Input::Network {
                reachable: !isolated,
            });
        }
        // The monitor restarts (kill -9) from its last saved status file, on a new clock.
        if rng.permille(3) {
            if let Some(f) = &file {
                stats.monitor_restarts += 1;
                mclock = rng.clock();
                core = Core::restore(spec.clone(), f, Millis(mclock.ms(now)));
                pending.clear();
                isolated = false;
            }
        }
        let mnow = Millis(mclock.ms(now));
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
        if tick == 2 || rng.permille(20) {
            for h in &hosts {
                commands.push(AdminCommand::SetOnline(h.name.clone()));
            }
        }
        if rng.permille(5) {
            let target = hosts[rng.below(2) as usize].name.clone();
            commands.push(AdminCommand::MoveRole {
                role: "writer".into(),
                host: target,
                force: rng.chance(20),
            });
        }
        if rng.permille(2) {
            commands.push(AdminCommand::SetOffline(
                hosts[rng.below(3) as usize].name.clone(),
            ));
        }
        if rng.permille(2) {
            let m = [Mode::Active, Mode::Manual, Mode::Passive][rng.below(3) as usize];
            commands.push(AdminCommand::SetMode(m));
        }
        if core.mode() != Mode::Active && rng.permille(20) {
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
        let actions = core.step(std::mem::take(&mut pending), mnow);
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

        if trace {
            eprintln!("--- tick {tick} (monitor {mnow:?}) epoch {}", core.epoch());
            for h in &hosts {
                eprintln!(
                    "  {} pw{} part{} ag{} ro{} roles{:?} epoch{} lease{:?} promo{:?}",
                    h.name,
                    h.powered,
                    h.partitioned,
                    h.agent_up,
                    h.read_only,
                    h.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    h.epoch,
                    h.lease,
                    h.promotion
                );
            }
            for a in &actions {
                eprintln!("  {a:?}");
            }
        }
        for a in &actions {
            digest = fnv(digest, &format!("{a:?}"));
            match a {
                Action::Kill { host, .. } => {
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
                Action::SaveStatus => {
                    if rng.permille(100) {
                        core.save_failed();
                    } else {
                        let saved = core.persisted();
                        core.saved(&saved);
                        file = Some(saved);
                    }
                }
                _ => {}
            }
        }

        // Sends.
        let desired: Vec<Option<DesiredState>> = hosts
            .iter()
            .map(|h| core.desired_state(&h.name, mnow))
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
        for (i, (h, d)) in hosts.iter_mut().zip(desired).enumerate() {
            let Some(d) = d else { continue };
            if trace {
                eprintln!(
                    "  send {} roles {:?} epoch {} token {:?}",
                    h.name,
                    d.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    d.epoch,
                    d.lease_token.as_ref().map(|t| t.at_ms)
                );
            }
            core.note_sent(&h.name, &d, mnow);
            let delivered = !isolated && h.reachable() && h.agent_up;
            // Some requests are delayed in the network (and may also be delivered again).
            if delivered && rng.permille(40) {
                in_flight.push(InFlight {
                    host: i,
                    desired: d.clone(),
                    at: now + TICK * (1 + rng.below(40)),
                    incarnation: h.incarnation,
                });
                if rng.chance(50) {
                    pending.push(Input::AgentReport {
                        host: h.name.clone(),
                        report: AgentReport::Unreachable {
                            error: "timeout".into(),
                        },
                    });
                    continue;
                }
            }
            let report = if delivered {
                let defer = rng.chance(30).then(|| now + TICK * (1 + rng.below(8)));
                let refused = h.apply(&d, now, defer);
                if let Some(r) = refused {
                    stats.stale_refusals += 1;
                    r
                } else if rng.permille(30) {
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
        let d = run(seed, 480, &mut stats);
        if i % 500 == 0 {
            assert_eq!(
                run(seed, 480, &mut Stats::default()),
                d,
                "seed {seed}: same schedule, different actions"
            );
        }
    }
    eprintln!(
        "{n} schedules x 480 ticks in {:?}: {stats:?}",
        start.elapsed()
    );
    // Not vacuous: writers exist most of the time and change hands often, and every kind of
    // fault happened.
    assert!(stats.writer_ticks > n * 100, "{stats:?}");
    assert!(stats.writer_changes > n, "{stats:?}");
    assert!(stats.monitor_restarts > n / 2, "{stats:?}");
    assert!(stats.agent_restarts > n, "{stats:?}");
    assert!(stats.late_deliveries > n, "{stats:?}");
}

#[test]
fn simulated_cluster_actually_fails_over() {
    // Guard against a vacuous simulation: a healthy cluster gets a writer, and killing it
    // moves the writer to the other master.
    let mut promoted = 0;
    for seed in 0..200u64 {
        let mut rng = Rng(seed);
        let mut spec = spec(&mut rng);
        spec.writer_lease = Duration::from_secs(3);
        let mut core = Core::new(spec);
        let mut hosts: Vec<SimHost> = ["db1", "db2", "db3"]
            .iter()
            .map(|n| SimHost::new(n, &mut rng))
            .collect();
        let mut pending = Vec::new();
        let mut writers_seen = std::collections::BTreeSet::new();
        for tick in 1..=240u64 {
            let now = tick * TICK;
            if tick == 120 {
                hosts[0].crash();
            }
            for h in hosts.iter_mut() {
                h.watchdog(now);
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
            let actions = core.step(std::mem::take(&mut pending), Millis(now));
            if actions.contains(&Action::SaveStatus) {
                let saved = core.persisted();
                core.saved(&saved);
            }
            for h in hosts.iter_mut() {
                let Some(d) = core.desired_state(&h.name, Millis(now)) else {
                    continue;
                };
                core.note_sent(&h.name, &d, Millis(now));
                let report = if h.powered {
                    h.apply(&d, now, None);
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
