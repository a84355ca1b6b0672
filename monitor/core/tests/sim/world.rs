//! One schedule: the cluster spec, the fault schedule, the network in flight, the monitor's
//! core and the invariant checks after every tick.

use ha_core::*;
use std::time::Duration;

use super::fnv;
use super::host::*;
use super::peers::PeerNet;

pub(crate) fn spec(rng: &mut Rng) -> ClusterSpec {
    let mut s = ClusterSpec::example();
    if rng.below(4) == 0 {
        s.roles[0].prefer = Some("db1".into());
    }
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
pub(crate) struct Stats {
    pub(crate) writer_ticks: u64,
    pub(crate) writer_changes: u64,
    pub(crate) kills: u64,
    pub(crate) promotion_errors: u64,
    pub(crate) monitor_restarts: u64,
    pub(crate) agent_restarts: u64,
    pub(crate) late_deliveries: u64,
    pub(crate) stale_refusals: u64,
    /// Schedules that start with a hand-over from another HA tool (an adopted writer).
    pub(crate) adoptions: u64,
    /// … in which the adopted writer became ha's writer without a write pause.
    pub(crate) adoptions_kept: u64,
    /// Peer promises given, writer leases renewed by a full round of them, ticks a writer was
    /// writable only thanks to them, and writer grants refused because of one (issue 14).
    pub(crate) promises: u64,
    pub(crate) peer_renewals: u64,
    /// Promises a demoted writer released.
    pub(crate) releases: u64,
    pub(crate) peer_kept_ticks: u64,
    pub(crate) promise_refusals: u64,
    /// Ticks the monitor held an unreachable writer its peers vouched for (rule O0).
    pub(crate) held_ticks: u64,
    /// Redundant monitors (issue 18): a standby took over from the state the leader last
    /// saved, with its own warm check trackers and clock.
    pub(crate) takeovers: u64,
}

/// A request still in the network: delivered at `at` (real time), its reply lost. It travels
/// on a TCP connection to one agent process: a reboot or an agent restart resets it.
pub(crate) struct InFlight {
    pub(crate) host: usize,
    pub(crate) desired: DesiredState,
    pub(crate) at: u64,
    pub(crate) incarnation: u64,
}

/// Runs one schedule; returns a digest of every action for the determinism check.
pub(crate) fn run(seed: u64, ticks: u64, stats: &mut Stats) -> u64 {
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
    // One schedule in four starts with a hand-over from another HA tool: one host writable
    // and adopted by its agent (`ha-agent --adopt-writer`), the monitor starting without a
    // status file and voting; an agent may not answer the start-up query.
    if rng.chance(25) {
        stats.adoptions += 1;
        let adopted = rng.below(3) as usize;
        hosts[adopted].adopt(0);
        let infos: Vec<StartupHostInfo> = hosts
            .iter()
            .filter(|_| !rng.chance(20))
            .map(|h| StartupHostInfo {
                host: h.name.clone(),
                agent: Some((HostState::Unknown, h.roles.clone())),
                agent_epoch: Some(h.epoch),
                system: Some(SystemFacts {
                    writable: h.writable(),
                    ips_present: if h.adopting {
                        vec![WRITER_IP.to_string()]
                    } else {
                        Vec::new()
                    },
                    master: None,
                }),
                facts: Some(h.facts(0)),
            })
            .collect();
        core = Core::startup(spec.clone(), None, infos, Millis(mclock.ms(0))).0;
    }
    // A standby monitor (redundant monitors, issue 18) on its own clock, fed the same check
    // samples (`Core::warm`). Its random choices come from their own generator, so the rest of
    // each schedule is what it was before takeovers existed.
    let mut trng = Rng(seed ^ 0x7a6b_5c4d_3e2f_1a0b);
    let mut sclock = trng.clock();
    let mut standby = Core::new(spec.clone());
    let mut pending: Vec<Input> = Vec::new();
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut isolated = false;
    let eligible: Vec<usize> = spec.roles[0]
        .hosts
        .iter()
        .filter_map(|n| hosts.iter().position(|h| &h.name == n))
        .collect();
    let mut peers = PeerNet::new(hosts.len(), eligible);
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
        // Peer promises: link faults, deliveries, the writer's new round.
        peers.faults(&mut rng);
        peers.tick(&mut hosts, now, &mut rng, stats);
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
        // The leader dies (kill -9) and the standby takes over: the state the leader last saved
        // (etcd's copy of the status file), the standby's warm check trackers, the standby's
        // clock. The dead leader's requests still in the network are delivered late; the
        // simulated agents do not check leadership terms, so only the epoch and lease rules
        // keep them harmless (a stricter test than the real agents, which refuse them).
        // The old leader's host starts a fresh standby on its own clock.
        if trng.permille(3) {
            if let Some(f) = &file {
                stats.takeovers += 1;
                let mut leader = Core::restore(spec.clone(), f, Millis(sclock.ms(now)));
                leader.adopt_checks(&standby);
                core = leader;
                std::mem::swap(&mut mclock, &mut sclock);
                sclock = trng.clock();
                standby = Core::new(spec.clone());
                pending.clear();
                isolated = false;
            }
        }
        let mnow = Millis(mclock.ms(now));
        let checks_from = pending.len();
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
        standby.warm(pending[checks_from..].to_vec(), Millis(sclock.ms(now)));
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
        stats.promise_refusals += hosts
            .iter()
            .filter(|h| {
                h.promotion_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("promised"))
            })
            .count() as u64;
        stats.peer_kept_ticks += hosts.iter().filter(|h| h.kept_by_peers(now)).count() as u64;
        stats.held_ticks += hosts.iter().filter(|h| core.held_by_peers(&h.name)).count() as u64;
        let ip_holders = hosts
            .iter()
            .filter(|h| h.powered && h.holds_writer())
            .count();
        assert!(
            ip_holders <= 1,
            "seed {seed} tick {tick}: writer IP on {ip_holders} hosts"
        );
    }
    stats.adoptions_kept += u64::from(hosts.iter().any(|h| h.kept_adopted));
    digest
}
