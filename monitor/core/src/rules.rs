//! The host state-transition rules, as data: one named [`Rule`] per transition and one pure
//! function per source state. Changing a rule means editing one arm here and its test.
//!
//! The rules are mysql-mmm's monitor rules, with ha's deliberate deviations (see
//! `machine.rs`). In words, evaluated in this order for each host (first match wins):
//!
//! | rule | from | when | to | and |
//! |---|---|---|---|---|
//! | O0 | ONLINE | it is the active master, ping or mysql failed, and its peers vouch for it (`vouched.rs`) | stay | unreachable from the monitor only: no failover, `show` says so |
//! | O1 | ONLINE | ping or mysql failed | HARD_OFFLINE | roles removed (ACTIVE mode) |
//! | O2 | ONLINE | it is the active master | stay | replication problems on the writer are never acted upon |
//! | O3 | ONLINE | its peer came ONLINE less than 60 s ago | stay | replication needs that long to reconnect |
//! | O4 | ONLINE | rep_threads failed, peer ONLINE and alive | REPLICATION_FAIL | roles removed (ACTIVE mode) |
//! | O5 | ONLINE | rep_threads OK, rep_backlog failed, peer ONLINE and alive | REPLICATION_DELAY | roles removed (ACTIVE mode) |
//! | A1 | AWAITING_RECOVERY | ping or mysql failed | HARD_OFFLINE | — |
//! | A2 | AWAITING_RECOVERY | all checks OK, flapping, stable for flap_duration, auto_set_online on | ONLINE | — |
//! | A3 | AWAITING_RECOVERY | all checks OK, down for less than 60 s without a reboot (uptime kept counting) | ONLINE | — |
//! | A4 | AWAITING_RECOVERY | all checks OK, in the state for auto_set_online | ONLINE | — |
//! | H1 | HARD_OFFLINE | alive again, rep_threads failed, and an active master exists or it cannot be one | REPLICATION_FAIL | — |
//! | H2 | HARD_OFFLINE | alive again, rep_backlog failed (same gate) | REPLICATION_DELAY | — |
//! | H3 | HARD_OFFLINE | alive again otherwise | AWAITING_RECOVERY | — |
//! | R1 | REPLICATION_FAIL | threads OK again but backlog failed | REPLICATION_DELAY | — |
//! | R2 | REPLICATION_DELAY | threads failed | REPLICATION_FAIL | — |
//! | R3 | REPLICATION_* | replication OK again, or its peer is not ONLINE | ONLINE (AWAITING_RECOVERY if flapping) | — |
//! | R4 | REPLICATION_* | ping or mysql failed | HARD_OFFLINE | fenced with kill_host_bin (ACTIVE mode) |
//!
//! ADMIN_OFFLINE and UNKNOWN hosts are never evaluated; neither is a host whose ping or mysql
//! check has no recorded result yet (absence of evidence is not a failure).

use std::time::Duration;

use crate::spec::HostState;

/// O3: replication errors are ignored this long after the peer came ONLINE (MySQL's default
/// master-connect-retry: the replica needs that long to reconnect).
pub const PEER_GRACE: Duration = Duration::from_secs(60);
/// A3: a host that was away for less than this without a reboot comes back ONLINE by itself.
pub const SHORT_OUTAGE_SECS: f64 = 60.0;

/// The name of a transition rule (the table above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    O1,
    O4,
    O5,
    A1,
    A2,
    A3,
    A4,
    H1,
    H2,
    H3,
    R1,
    R2,
    R3,
    R4,
}

/// What else happens with the transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The host's roles are taken away (ACTIVE mode only).
    StripRoles,
    /// The host is fenced with `kill_host_bin` (ACTIVE mode only).
    Fence,
}

/// Why, for the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The check results (`with_replication`: also rep_threads / rep_backlog).
    Checks { with_replication: bool },
    /// The check results, and its peer is not ONLINE (R3).
    PeerNotOnline,
    /// Stable this long after flapping (A2).
    StableAfterFlapping { secs: u64 },
    /// Down only this long, no reboot (A3).
    ShortOutage { secs: u64 },
    /// auto_set_online elapsed (A4).
    AutoSetOnline { after_secs: u64, in_state_secs: u64 },
}

/// A transition found by a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub rule: Rule,
    pub to: HostState,
    pub effect: Effect,
    pub reason: Reason,
}

/// Everything the rules look at, observed before they run.
#[derive(Clone, Debug)]
pub struct Facts {
    pub state: HostState,
    /// ping and mysql OK.
    pub alive: bool,
    pub threads_ok: bool,
    pub threads_failed: bool,
    pub backlog_ok: bool,
    pub backlog_failed: bool,
    pub flapping: bool,
    pub is_active_master: bool,
    /// The other writer candidates report fresh peer promises to this host (`vouched.rs`).
    pub vouched: bool,
    /// An active master exists (any host).
    pub active_master_exists: bool,
    /// The host may hold the writer role.
    pub can_be_active_master: bool,
    pub peer_online: bool,
    /// Peer ONLINE with ping and mysql OK.
    pub peer_healthy: bool,
    /// The peer came ONLINE less than the grace period ago (O3).
    pub peer_in_grace: bool,
    /// Since the last change of any check result.
    pub stable_for: Duration,
    /// How long it has been in its state.
    pub in_state_for: Duration,
    pub auto_set_online: Duration,
    pub flap_duration: Duration,
    /// Agent-reported uptime minus the uptime recorded when it went away, if both known.
    pub uptime_gain: Option<f64>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            state: HostState::Unknown,
            alive: false,
            threads_ok: false,
            threads_failed: false,
            backlog_ok: false,
            backlog_failed: false,
            flapping: false,
            is_active_master: false,
            vouched: false,
            active_master_exists: false,
            can_be_active_master: false,
            peer_online: false,
            peer_healthy: false,
            peer_in_grace: false,
            stable_for: Duration::ZERO,
            in_state_for: Duration::ZERO,
            auto_set_online: Duration::ZERO,
            flap_duration: Duration::ZERO,
            uptime_gain: None,
        }
    }
}

impl Facts {
    fn all_ok(&self) -> bool {
        self.alive && self.threads_ok && self.backlog_ok
    }
}

/// The transition for a host, if any rule applies.
pub fn decide(f: &Facts) -> Option<Decision> {
    match f.state {
        HostState::Online => from_online(f),
        HostState::AwaitingRecovery => from_awaiting_recovery(f),
        HostState::HardOffline => from_hard_offline(f),
        HostState::ReplicationFail | HostState::ReplicationDelay => from_replication(f),
        HostState::AdminOffline | HostState::Unknown => None,
    }
}

fn d(rule: Rule, to: HostState, effect: Effect, reason: Reason) -> Option<Decision> {
    Some(Decision {
        rule,
        to,
        effect,
        reason,
    })
}

const CHECKS: Reason = Reason::Checks {
    with_replication: false,
};
const ALL_CHECKS: Reason = Reason::Checks {
    with_replication: true,
};

fn from_online(f: &Facts) -> Option<Decision> {
    use HostState::*;
    if !f.alive && f.is_active_master && f.vouched {
        None // O0: alive for its peers, only the monitor lost it
    } else if !f.alive {
        d(Rule::O1, HardOffline, Effect::StripRoles, CHECKS)
    } else if f.is_active_master || f.peer_in_grace {
        None // O2, O3
    } else if f.threads_failed && f.peer_healthy {
        d(Rule::O4, ReplicationFail, Effect::StripRoles, ALL_CHECKS)
    } else if f.threads_ok && f.backlog_failed && f.peer_healthy {
        d(Rule::O5, ReplicationDelay, Effect::StripRoles, ALL_CHECKS)
    } else {
        None
    }
}

fn from_awaiting_recovery(f: &Facts) -> Option<Decision> {
    use HostState::*;
    if !f.alive {
        return d(Rule::A1, HardOffline, Effect::None, CHECKS);
    }
    if !f.all_ok() {
        return None;
    }
    if f.flapping {
        // A flapping host only comes back after flap_duration of stable checks.
        return (!f.auto_set_online.is_zero() && f.stable_for >= f.flap_duration).then_some(
            Decision {
                rule: Rule::A2,
                to: Online,
                effect: Effect::None,
                reason: Reason::StableAfterFlapping {
                    secs: f.stable_for.as_secs(),
                },
            },
        );
    }
    if let Some(gain) = f.uptime_gain.filter(|g| *g > 0.0 && *g < SHORT_OUTAGE_SECS) {
        return d(
            Rule::A3,
            Online,
            Effect::None,
            Reason::ShortOutage { secs: gain as u64 },
        );
    }
    if !f.auto_set_online.is_zero() && f.in_state_for >= f.auto_set_online {
        return d(
            Rule::A4,
            Online,
            Effect::None,
            Reason::AutoSetOnline {
                after_secs: f.auto_set_online.as_secs(),
                in_state_secs: f.in_state_for.as_secs(),
            },
        );
    }
    None
}

fn from_hard_offline(f: &Facts) -> Option<Decision> {
    use HostState::*;
    if !f.alive {
        return None;
    }
    let gate = f.active_master_exists || !f.can_be_active_master;
    if gate && f.threads_failed {
        d(Rule::H1, ReplicationFail, Effect::None, ALL_CHECKS)
    } else if gate && f.threads_ok && f.backlog_failed {
        d(Rule::H2, ReplicationDelay, Effect::None, ALL_CHECKS)
    } else {
        d(Rule::H3, AwaitingRecovery, Effect::None, ALL_CHECKS)
    }
}

fn from_replication(f: &Facts) -> Option<Decision> {
    use HostState::*;
    let fail = f.state == ReplicationFail;
    if fail && f.alive && f.threads_ok && f.backlog_failed {
        d(Rule::R1, ReplicationDelay, Effect::None, ALL_CHECKS)
    } else if !fail && f.alive && f.threads_failed {
        d(Rule::R2, ReplicationFail, Effect::None, ALL_CHECKS)
    } else if f.alive && ((f.threads_ok && f.backlog_ok) || !f.peer_online) {
        // With the peer not ONLINE the host serves readers again; as writer candidate it still
        // has to pass the agent's sync gate.
        let to = if f.flapping { AwaitingRecovery } else { Online };
        let reason = if f.threads_ok && f.backlog_ok {
            ALL_CHECKS
        } else {
            Reason::PeerNotOnline
        };
        d(Rule::R3, to, Effect::None, reason)
    } else if !f.alive {
        d(Rule::R4, HardOffline, Effect::Fence, CHECKS)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostState::*;

    fn healthy(state: HostState) -> Facts {
        Facts {
            state,
            alive: true,
            threads_ok: true,
            backlog_ok: true,
            peer_online: true,
            peer_healthy: true,
            can_be_active_master: true,
            active_master_exists: true,
            ..Facts::default()
        }
    }

    fn rule(f: &Facts) -> Option<(Rule, HostState)> {
        decide(f).map(|d| (d.rule, d.to))
    }

    #[test]
    fn table() {
        let dead = |s| Facts {
            alive: false,
            ..healthy(s)
        };
        let threads = |s| Facts {
            threads_ok: false,
            threads_failed: true,
            ..healthy(s)
        };
        let backlog = |s| Facts {
            backlog_ok: false,
            backlog_failed: true,
            ..healthy(s)
        };
        type Case = (&'static str, Facts, Option<(Rule, HostState)>);
        let cases: Vec<Case> = vec![
            ("O1", dead(Online), Some((Rule::O1, HardOffline))),
            (
                "O2",
                Facts {
                    is_active_master: true,
                    ..threads(Online)
                },
                None,
            ),
            (
                "O3",
                Facts {
                    peer_in_grace: true,
                    ..threads(Online)
                },
                None,
            ),
            ("O4", threads(Online), Some((Rule::O4, ReplicationFail))),
            ("O5", backlog(Online), Some((Rule::O5, ReplicationDelay))),
            (
                "O4 needs a healthy peer",
                Facts {
                    peer_healthy: false,
                    ..threads(Online)
                },
                None,
            ),
            ("O6", healthy(Online), None),
            ("A1", dead(AwaitingRecovery), Some((Rule::A1, HardOffline))),
            (
                "A2",
                Facts {
                    flapping: true,
                    auto_set_online: Duration::from_secs(10),
                    flap_duration: Duration::from_secs(60),
                    stable_for: Duration::from_secs(60),
                    ..healthy(AwaitingRecovery)
                },
                Some((Rule::A2, Online)),
            ),
            (
                "A2 not yet",
                Facts {
                    flapping: true,
                    auto_set_online: Duration::from_secs(10),
                    flap_duration: Duration::from_secs(60),
                    stable_for: Duration::from_secs(59),
                    uptime_gain: Some(5.0),
                    ..healthy(AwaitingRecovery)
                },
                None,
            ),
            (
                "A3",
                Facts {
                    uptime_gain: Some(20.0),
                    ..healthy(AwaitingRecovery)
                },
                Some((Rule::A3, Online)),
            ),
            (
                "A3 not after a reboot",
                Facts {
                    uptime_gain: Some(-100.0),
                    ..healthy(AwaitingRecovery)
                },
                None,
            ),
            (
                "A4",
                Facts {
                    auto_set_online: Duration::from_secs(10),
                    in_state_for: Duration::from_secs(10),
                    ..healthy(AwaitingRecovery)
                },
                Some((Rule::A4, Online)),
            ),
            ("A5", healthy(AwaitingRecovery), None),
            (
                "H1",
                threads(HardOffline),
                Some((Rule::H1, ReplicationFail)),
            ),
            (
                "H2",
                backlog(HardOffline),
                Some((Rule::H2, ReplicationDelay)),
            ),
            (
                "H3",
                healthy(HardOffline),
                Some((Rule::H3, AwaitingRecovery)),
            ),
            (
                "H3 for a master candidate with no active master",
                Facts {
                    active_master_exists: false,
                    ..threads(HardOffline)
                },
                Some((Rule::H3, AwaitingRecovery)),
            ),
            ("H4", dead(HardOffline), None),
            (
                "R1",
                backlog(ReplicationFail),
                Some((Rule::R1, ReplicationDelay)),
            ),
            (
                "R2",
                threads(ReplicationDelay),
                Some((Rule::R2, ReplicationFail)),
            ),
            ("R3", healthy(ReplicationFail), Some((Rule::R3, Online))),
            (
                "R3 peer not online",
                Facts {
                    peer_online: false,
                    ..threads(ReplicationFail)
                },
                Some((Rule::R3, Online)),
            ),
            (
                "R3 flapping",
                Facts {
                    flapping: true,
                    ..healthy(ReplicationDelay)
                },
                Some((Rule::R3, AwaitingRecovery)),
            ),
            ("R4", dead(ReplicationFail), Some((Rule::R4, HardOffline))),
            ("R5", threads(ReplicationFail), None),
            ("admin offline", dead(AdminOffline), None),
        ];
        let mut wrong = Vec::new();
        for (name, facts, want) in &cases {
            let got = rule(facts);
            if got != *want {
                wrong.push(format!("{name}: got {got:?}, want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert_eq!(
            decide(&dead(ReplicationDelay)).map(|d| d.effect),
            Some(Effect::Fence)
        );
        assert_eq!(
            decide(&dead(Online)).map(|d| d.effect),
            Some(Effect::StripRoles)
        );
    }
}
