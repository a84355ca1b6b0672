//! Host state transitions (mmm-reference §2.2) and the WAIT-mode exit (§2.3).
//!
//! Rules are evaluated per host in config order (F1); the first matching rule applies. Deviations
//! from mmm, each deliberate:
//! * a host whose ping or mysql check has no recorded status yet is not evaluated (F11: absence
//!   of evidence is not a failure);
//! * only ACTIVE mode strips roles and fences (kills); MANUAL/WAIT keep roles and never kill,
//!   PASSIVE evaluates states (so `show` stays truthful) but changes no roles and kills nobody
//!   (F3);
//! * R4 fences only in ACTIVE mode (mmm also killed in MANUAL and PASSIVE).

use crate::core::Core;
use crate::io::log;
use crate::io::{Action, Level};
use crate::spec::{Check, HostMode, HostState, Mode};
use crate::time::Millis;
use std::time::Duration;

/// O3: replication errors are ignored this long after the peer came ONLINE (MySQL's default
/// master-connect-retry: the replica needs that long to reconnect).
pub const PEER_GRACE: Duration = Duration::from_secs(60);
/// A3: a host that was away for less than this without a reboot comes back ONLINE by itself.
pub const SHORT_OUTAGE_SECS: f64 = 60.0;

/// What the per-host evaluation needs to know about the peer.
struct Peer {
    online: bool,
    online_since: Option<Millis>,
    alive: bool,
}

impl Core {
    /// Step 2 of the main loop. `active_master` is captured once, before the loop (§2.1).
    pub(crate) fn run_transitions(&mut self, now: Millis, out: &mut Vec<Action>) {
        let active_master = self.table.active_master();
        for h in 0..self.hosts.len() {
            self.evaluate_host(h, active_master, now, out);
        }
    }

    fn peer_of(&self, h: usize, active_master: Option<usize>) -> Option<Peer> {
        let spec = self.spec.hosts.get(h)?;
        let p = match &spec.peer {
            Some(p) => self.spec.host_index(p),
            None if spec.mode == HostMode::Slave => active_master,
            None => None,
        }?;
        let rt = self.hosts.get(p)?;
        Some(Peer {
            online: rt.state == HostState::Online,
            online_since: rt.online_since,
            alive: rt.alive(),
        })
    }

    fn checks_text(&self, h: usize, with_replication: bool) -> String {
        let rt = &self.hosts[h];
        let word = |c: Check| match rt.check(c).recorded {
            Some(true) => "OK",
            Some(false) => "not OK",
            None => "unknown",
        };
        let mut s = format!("ping: {}, mysql: {}", word(Check::Ping), word(Check::Mysql));
        if with_replication {
            s += &format!(
                ", rep_threads: {}, rep_backlog: {}",
                word(Check::RepThreads),
                word(Check::RepBacklog)
            );
        }
        s
    }

    /// Applies a transition found by a rule and logs it with its reason.
    fn transition(
        &mut self,
        h: usize,
        to: HostState,
        reason: String,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let from = self.hosts[h].state;
        if !self.set_state(h, to, now, out) {
            return;
        }
        let level = match to {
            HostState::HardOffline => Level::Error,
            HostState::ReplicationFail | HostState::ReplicationDelay => Level::Warn,
            _ => Level::Info,
        };
        let name = self.host_name(h);
        log(
            out,
            level,
            format!("State of host '{name}' changed from {from} to {to}{reason}"),
        );
    }

    fn evaluate_host(
        &mut self,
        h: usize,
        active_master: Option<usize>,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let rt = &self.hosts[h];
        let state = rt.state;
        if matches!(state, HostState::AdminOffline | HostState::Unknown) {
            return;
        }
        if rt.check(Check::Ping).recorded.is_none() || rt.check(Check::Mysql).recorded.is_none() {
            return;
        }
        let alive = rt.alive();
        let threads = rt.check(Check::RepThreads).clone();
        let backlog = rt.check(Check::RepBacklog).clone();
        let all_ok = alive && threads.ok() && backlog.ok();
        let flapping = rt.flap.flapping;
        let peer = self.peer_of(h, active_master);
        let peer_online = peer.as_ref().is_some_and(|p| p.online);
        let peer_healthy = peer.as_ref().is_some_and(|p| p.online && p.alive);
        let strip = self.mode == Mode::Active;
        match state {
            HostState::Online => {
                if !alive {
                    // O1
                    let why = format!(" ({})", self.checks_text(h, false));
                    self.transition(h, HostState::HardOffline, why, now, out);
                    if strip {
                        self.strip_roles(h, true, out);
                    }
                } else if Some(h) == active_master {
                    // O2: replication problems on the active master are never acted upon.
                } else if peer.as_ref().is_some_and(|p| {
                    p.online
                        && p.online_since
                            .is_some_and(|t| !now.reached(t, PEER_GRACE + Duration::from_millis(1)))
                }) {
                    // O3: grace period after the peer came ONLINE.
                } else if threads.failed() && peer_healthy {
                    // O4
                    let why = format!(" ({})", self.checks_text(h, true));
                    self.transition(h, HostState::ReplicationFail, why, now, out);
                    if strip {
                        self.strip_roles(h, true, out);
                    }
                } else if threads.ok() && backlog.failed() && peer_healthy {
                    // O5
                    let why = format!(" ({})", self.checks_text(h, true));
                    self.transition(h, HostState::ReplicationDelay, why, now, out);
                    if strip {
                        self.strip_roles(h, true, out);
                    }
                }
                // O6: stay.
            }
            HostState::AwaitingRecovery => {
                let rt = &self.hosts[h];
                if !alive {
                    // A1: no send, no kill.
                    let why = format!(" ({})", self.checks_text(h, false));
                    self.transition(h, HostState::HardOffline, why, now, out);
                } else if all_ok && flapping {
                    // A2: a flapping host only comes back after flap_duration of stable checks.
                    let last = Check::ALL
                        .iter()
                        .filter_map(|&c| rt.check(c).last_change)
                        .max()
                        .unwrap_or(now);
                    if !self.spec.auto_set_online.is_zero()
                        && now.reached(last, self.spec.flap_duration)
                    {
                        let why = format!(
                            " because it was stable for {} seconds after flapping (auto_set_online)",
                            now.since(last).as_secs()
                        );
                        self.transition(h, HostState::Online, why, now, out);
                    }
                } else if all_ok
                    && rt.last_uptime > 0.0
                    && rt.uptime - rt.last_uptime > 0.0
                    && rt.uptime - rt.last_uptime < SHORT_OUTAGE_SECS
                {
                    // A3: down briefly and not rebooted (agent-reported uptime kept counting).
                    let secs = (rt.uptime - rt.last_uptime) as u64;
                    let why = format!(" because it was down for only {secs} seconds");
                    self.transition(h, HostState::Online, why, now, out);
                } else if all_ok
                    && !self.spec.auto_set_online.is_zero()
                    && now.reached(rt.last_state_change, self.spec.auto_set_online)
                {
                    // A4
                    let why = format!(
                        " because of auto_set_online({} seconds). It was in state AWAITING_RECOVERY for {} seconds",
                        self.spec.auto_set_online.as_secs(),
                        now.since(rt.last_state_change).as_secs()
                    );
                    self.transition(h, HostState::Online, why, now, out);
                }
                // A5: stay (an AWAITING_RECOVERY host never moves to REPLICATION_*).
            }
            HostState::HardOffline => {
                if alive {
                    let gate = active_master.is_some() || !self.can_be_active_master(h);
                    let to = if gate && threads.failed() {
                        HostState::ReplicationFail // H1
                    } else if gate && threads.ok() && backlog.failed() {
                        HostState::ReplicationDelay // H2
                    } else {
                        HostState::AwaitingRecovery // H3
                    };
                    let why = format!(" ({})", self.checks_text(h, true));
                    self.transition(h, to, why, now, out);
                }
                // H4: stay.
            }
            HostState::ReplicationFail | HostState::ReplicationDelay => {
                if state == HostState::ReplicationFail && alive && threads.ok() && backlog.failed()
                {
                    // R1
                    let why = format!(" ({})", self.checks_text(h, true));
                    self.transition(h, HostState::ReplicationDelay, why, now, out);
                } else if state == HostState::ReplicationDelay && alive && threads.failed() {
                    // R2
                    let why = format!(" ({})", self.checks_text(h, true));
                    self.transition(h, HostState::ReplicationFail, why, now, out);
                } else if alive && ((threads.ok() && backlog.ok()) || !peer_online) {
                    // R3: with the peer not ONLINE the host serves readers again; as writer
                    // candidate it still has to pass the agent's sync gate (F6).
                    let to = if flapping {
                        HostState::AwaitingRecovery
                    } else {
                        HostState::Online
                    };
                    let why = if threads.ok() && backlog.ok() {
                        format!(" ({})", self.checks_text(h, true))
                    } else {
                        format!(" ({}; its peer is not ONLINE)", self.checks_text(h, true))
                    };
                    self.transition(h, to, why, now, out);
                } else if !alive {
                    // R4: fence only in ACTIVE mode (F3); roles are not cleared (mmm).
                    let why = format!(" ({})", self.checks_text(h, false));
                    self.transition(h, HostState::HardOffline, why, now, out);
                    if strip {
                        self.start_fence(h, out);
                    }
                }
                // R5: stay.
            }
            HostState::AdminOffline | HostState::Unknown => {}
        }
    }

    pub(crate) fn can_be_active_master(&self, h: usize) -> bool {
        self.spec
            .writer_role()
            .is_some_and(|r| self.spec.can_hold(r, h))
    }

    /// §2.3, fixed for clusters with fewer than two masters (F4): WAIT ends when every listed
    /// master (at most the first two) is ONLINE, or when one of two has been ONLINE for
    /// `wait_for_other_master`.
    pub(crate) fn wait_mode_exit(&mut self, now: Millis, out: &mut Vec<Action>) {
        if self.mode != Mode::Wait {
            return;
        }
        let masters: Vec<usize> = self.spec.masters().into_iter().take(2).collect();
        let online: Vec<usize> = masters
            .iter()
            .copied()
            .filter(|&m| self.hosts[m].state == HostState::Online)
            .collect();
        if online.len() == masters.len() {
            log(
                out,
                Level::Info,
                "All masters are ONLINE. Switching from WAIT to ACTIVE mode.".into(),
            );
        } else if !self.spec.wait_for_other_master.is_zero()
            && online.len() == 1
            && self.hosts[online[0]]
                .online_since
                .is_some_and(|t| now.reached(t, self.spec.wait_for_other_master))
        {
            let missing: Vec<&str> = masters
                .iter()
                .filter(|m| !online.contains(m))
                .map(|&m| self.host_name(m))
                .collect();
            log(
                out,
                Level::Warn,
                format!(
                    "Master {} did not come ONLINE within {} seconds. Switching from WAIT to ACTIVE mode.",
                    missing.join(", "),
                    self.spec.wait_for_other_master.as_secs()
                ),
            );
        } else {
            return;
        }
        self.mode = Mode::Active;
        self.cleanup_for_active(out);
    }

    /// Manual→active cleanup: roles left on non-ONLINE hosts in a manual mode are removed, and
    /// the host is fenced if it cannot be told.
    pub(crate) fn cleanup_for_active(&mut self, out: &mut Vec<Action>) {
        for h in 0..self.hosts.len() {
            if self.hosts[h].state != HostState::Online && !self.table.owned_by(h).is_empty() {
                let msg = format!(
                    "Removing roles of host '{}' because it is {}",
                    self.host_name(h),
                    self.hosts[h].state
                );
                log(out, Level::Info, msg);
                self.strip_roles(h, true, out);
            }
        }
    }
}
