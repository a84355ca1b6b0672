//! Random fault schedules from a seed (issue 15): 2–6 overlapping faults with random timings.
//! Pure: the same seed always gives the same schedule, so a violation is replayed with its
//! seed (`tests/chaos.sh --seed N`).

use std::fmt;
use std::time::Duration;

/// The parties of a lab: the database hosts, the monitor (`mon`) and the client (`cli`).
pub const MONITOR: &str = "mon";
pub const CLIENT: &str = "cli";

/// One fault. Each has a start and an end (the undo), except the admin commands, which are
/// one command at their start (`SetOffline` is undone with `set_online` at its end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `mysqladmin shutdown`-like stop, then start.
    MysqldStop { host: String },
    /// kill -9 of mariadbd, then start.
    MysqldKill { host: String },
    /// SIGSTOP of everything in the node's namespace and its cable pulled; thaw.
    Freeze { node: String },
    /// Cable pulled, then plugged in.
    LinkDown { node: String },
    /// Packet loss on the node's link (percent of egress packets).
    Loss { node: String, percent: u8 },
    /// `a` and `b` cannot reach each other (`one_way`: `b` does not hear `a`, `a` hears `b`).
    Partition { a: String, b: String, one_way: bool },
    /// kill -9 of the host's ha-agent, then started again.
    AgentKill { host: String },
    /// kill -9 of ha-monitor, then started again.
    MonitorKill,
    /// The host's agent runs with its wall clock stepped by `secs` (restarted under
    /// libfaketime), then normally again.
    ClockStep { host: String, secs: i64 },
    /// `move_role writer HOST` racing whatever else happens.
    MoveWriter { host: String },
    /// `set_offline HOST`; `set_online HOST` at its end.
    SetOffline { host: String },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::MysqldStop { host } => write!(f, "mysqld stop on {host}"),
            Fault::MysqldKill { host } => write!(f, "mysqld kill -9 on {host}"),
            Fault::Freeze { node } => write!(f, "freeze {node}"),
            Fault::LinkDown { node } => write!(f, "link down {node}"),
            Fault::Loss { node, percent } => write!(f, "{percent}% packet loss on {node}"),
            Fault::Partition { a, b, one_way } => {
                if *one_way {
                    write!(f, "{b} does not hear {a}")
                } else {
                    write!(f, "partition {a} <-> {b}")
                }
            }
            Fault::AgentKill { host } => write!(f, "ha-agent kill -9 on {host}"),
            Fault::MonitorKill => write!(f, "ha-monitor kill -9"),
            Fault::ClockStep { host, secs } => write!(f, "wall clock {secs:+} s on {host}'s agent"),
            Fault::MoveWriter { host } => write!(f, "move_role writer {host}"),
            Fault::SetOffline { host } => write!(f, "set_offline {host}"),
        }
    }
}

/// A fault and when it starts and ends, from the start of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    pub at: Duration,
    pub duration: Duration,
    pub fault: Fault,
}

impl Timed {
    pub fn end(&self) -> Duration {
        self.at + self.duration
    }
}

/// A seed's schedule, faults in start order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    pub faults: Vec<Timed>,
}

impl Schedule {
    /// When the last fault ends.
    pub fn length(&self) -> Duration {
        self.faults.iter().map(Timed::end).max().unwrap_or_default()
    }

    /// The command that replays this schedule.
    pub fn replay(&self) -> String {
        format!("bash tests/chaos.sh --seed {}", self.seed)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schedule of seed {}:", self.seed)?;
        for t in &self.faults {
            writeln!(
                f,
                "  +{:>5} ms for {:>5} ms: {}",
                t.at.as_millis(),
                t.duration.as_millis(),
                t.fault
            )?;
        }
        Ok(())
    }
}

/// SplitMix64: a small, well-known generator; deterministic across platforms and versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

/// The faults start within this window.
pub const START_WINDOW_MS: u64 = 15_000;
/// A fault lasts between these.
pub const MIN_FAULT_MS: u64 = 500;
pub const MAX_FAULT_MS: u64 = 12_000;

/// The schedule of `seed` for a lab with `hosts`.
pub fn generate(seed: u64, hosts: &[String]) -> Schedule {
    let mut rng = Rng(seed);
    let n = rng.range(2, 6) as usize;
    let mut faults: Vec<Timed> = (0..n)
        .map(|_| Timed {
            at: Duration::from_millis(rng.range(0, START_WINDOW_MS)),
            duration: Duration::from_millis(rng.range(MIN_FAULT_MS, MAX_FAULT_MS)),
            fault: fault(&mut rng, hosts),
        })
        .collect();
    faults.sort_by_key(|t| t.at);
    Schedule { seed, faults }
}

fn fault(rng: &mut Rng, hosts: &[String]) -> Fault {
    let h = rng.pick(hosts).clone();
    let mut nodes: Vec<String> = hosts.to_vec();
    nodes.push(MONITOR.into());
    let node = rng.pick(&nodes).clone();
    match rng.range(0, 10) {
        0 => Fault::MysqldStop { host: h },
        1 => Fault::MysqldKill { host: h },
        2 => Fault::Freeze { node: h },
        3 => Fault::LinkDown { node },
        4 => Fault::Loss {
            node,
            percent: *rng.pick(&[10u8, 30, 60]),
        },
        5 => {
            // monitor–host, host–host or client–host, either or both directions.
            let others: Vec<String> = hosts
                .iter()
                .filter(|o| **o != h)
                .cloned()
                .chain([MONITOR.to_string(), CLIENT.to_string()])
                .collect();
            let other = rng.pick(&others).clone();
            let one_way = rng.range(0, 1) == 1;
            let (a, b) = if rng.range(0, 1) == 1 {
                (h, other)
            } else {
                (other, h)
            };
            Fault::Partition { a, b, one_way }
        }
        6 => Fault::AgentKill { host: h },
        7 => Fault::MonitorKill,
        8 => Fault::ClockStep {
            host: h,
            secs: *rng.pick(&[-3600i64, -30, 30, 3600]),
        },
        9 => Fault::MoveWriter { host: h },
        _ => Fault::SetOffline { host: h },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        ["db1", "db2", "db3"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn a_seed_always_gives_the_same_schedule() {
        for seed in 0..50 {
            assert_eq!(generate(seed, &hosts()), generate(seed, &hosts()));
        }
        assert_ne!(generate(1, &hosts()), generate(2, &hosts()));
    }

    #[test]
    fn schedules_have_two_to_six_sorted_faults_within_the_window() {
        for seed in 0..500 {
            let s = generate(seed, &hosts());
            assert!((2..=6).contains(&s.faults.len()), "{s}");
            assert!(s.faults.windows(2).all(|w| w[0].at <= w[1].at), "{s}");
            for t in &s.faults {
                assert!(t.at <= Duration::from_millis(START_WINDOW_MS));
                assert!(t.duration >= Duration::from_millis(MIN_FAULT_MS));
                assert!(t.duration <= Duration::from_millis(MAX_FAULT_MS));
                if let Fault::Partition { a, b, .. } = &t.fault {
                    assert_ne!(a, b, "{s}");
                }
            }
        }
    }

    #[test]
    fn every_kind_of_fault_occurs() {
        let all: Vec<String> = (0..300)
            .flat_map(|seed| generate(seed, &hosts()).faults)
            .map(|t| {
                format!("{:?}", t.fault)
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        for kind in [
            "MysqldStop",
            "MysqldKill",
            "Freeze",
            "LinkDown",
            "Loss",
            "Partition",
            "AgentKill",
            "MonitorKill",
            "ClockStep",
            "MoveWriter",
            "SetOffline",
        ] {
            assert!(all.iter().any(|k| k == kind), "no {kind}");
        }
        let s = generate(7, &hosts());
        assert!(s.to_string().starts_with("schedule of seed 7:\n  +"), "{s}");
    }
}
