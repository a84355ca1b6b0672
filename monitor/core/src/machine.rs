//! Host state transitions (docs/mmm-behaviour.md §2.2) and the WAIT-mode exit (§2.3).
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
use crate::ids::HostId;
use crate::io::log;
use crate::io::{Action, Level};
use crate::rules::{self, Decision, Effect, Facts, Reason, PEER_GRACE};
use crate::spec::{Check, HostMode, HostState, Mode};
use crate::time::Millis;
use std::time::Duration;

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
        for h in self.hosts.ids() {
            self.evaluate_host(h, active_master, now, out);
        }
    }

    fn peer_of(&self, h: HostId, active_master: Option<HostId>) -> Option<Peer> {
        let spec = self.spec.host(h)?;
        let p = match &spec.peer {
            Some(p) => self.spec.host_id(p),
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

    fn checks_text(&self, h: HostId, with_replication: bool) -> String {
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

    /// Applies a transition found by a rule and logs it with its reason and rule name.
    fn transition(&mut self, h: HostId, d: &Decision, now: Millis, out: &mut Vec<Action>) {
        let from = self.hosts[h].state;
        let to = d.to;
        let level = match to {
            HostState::HardOffline => Level::Error,
            HostState::ReplicationFail | HostState::ReplicationDelay => Level::Warn,
            _ => Level::Info,
        };
        let reason = match d.reason {
            Reason::Checks { with_replication } => {
                format!(" ({})", self.checks_text(h, with_replication))
            }
            Reason::PeerNotOnline => {
                format!(" ({}; its peer is not ONLINE)", self.checks_text(h, true))
            }
            Reason::StableAfterFlapping { secs } => format!(
                " because it was stable for {secs} seconds after flapping (auto_set_online)"
            ),
            Reason::ShortOutage { secs } => {
                format!(" because it was down for only {secs} seconds")
            }
            Reason::AutoSetOnline {
                after_secs,
                in_state_secs,
            } => format!(
                " because of auto_set_online({after_secs} seconds). It was in state AWAITING_RECOVERY for {in_state_secs} seconds"
            ),
        };
        let name = self.host_name(h);
        let rule = format!("{:?}", d.rule);
        let message =
            format!("State of host '{name}' changed from {from} to {to}{reason} [rule {rule}]");
        if self.set_state(h, to, now, (&rule, &message), out) {
            log(out, level, message);
        }
    }

    /// Logs when rule O0 starts or stops holding the active master `h` (unreachable from the
    /// monitor, vouched for by its peers).
    fn note_hold(&mut self, h: HostId, f: &Facts, now: Millis, out: &mut Vec<Action>) {
        let held = f.state == HostState::Online && f.is_active_master && !f.alive && f.vouched;
        if held == self.hosts[h].held_by_peers {
            return;
        }
        self.hosts[h].held_by_peers = held;
        let name = self.host_name(h).to_string();
        if held {
            let by = self.vouched_by(h, now).join(", ");
            log(
                out,
                Level::Warn,
                format!(
                    "Host '{name}' is unreachable from the monitor ({}) but reachable from {by}: it stays the writer, kept writable by its peers' promises [rule O0]",
                    self.checks_text(h, false)
                ),
            );
        } else {
            log(
                out,
                Level::Info,
                format!("Host '{name}' is no longer held by its peers (reachable from the monitor again, or its peers lost it)"),
            );
        }
    }

    /// What the rules need to know about host `h`, observed now.
    fn facts(&self, h: HostId, active_master: Option<HostId>, now: Millis) -> Facts {
        let rt = &self.hosts[h];
        let threads = rt.check(Check::RepThreads);
        let backlog = rt.check(Check::RepBacklog);
        let peer = self.peer_of(h, active_master);
        let last_check_change = Check::ALL
            .iter()
            .filter_map(|&c| rt.check(c).last_change)
            .max()
            .unwrap_or(now);
        Facts {
            state: rt.state,
            alive: rt.alive(),
            threads_ok: threads.ok(),
            threads_failed: threads.failed(),
            backlog_ok: backlog.ok(),
            backlog_failed: backlog.failed(),
            flapping: rt.flap.flapping,
            is_active_master: Some(h) == active_master,
            vouched: Some(h) == active_master && !self.vouched_by(h, now).is_empty(),
            active_master_exists: active_master.is_some(),
            can_be_active_master: self.can_be_active_master(h),
            peer_online: peer.as_ref().is_some_and(|p| p.online),
            peer_healthy: peer.as_ref().is_some_and(|p| p.online && p.alive),
            peer_in_grace: peer.as_ref().is_some_and(|p| {
                p.online
                    && p.online_since
                        .is_some_and(|t| !now.reached(t, PEER_GRACE + Duration::from_millis(1)))
            }),
            stable_for: now.since(last_check_change),
            in_state_for: now.since(rt.last_state_change),
            auto_set_online: self.spec.auto_set_online,
            flap_duration: self.spec.flap_duration,
            uptime_gain: (rt.last_uptime > 0.0).then_some(rt.uptime - rt.last_uptime),
        }
    }

    /// Runs the rules (crate `rules`) for host `h` and carries out the transition they find.
    fn evaluate_host(
        &mut self,
        h: HostId,
        active_master: Option<HostId>,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let rt = &self.hosts[h];
        if matches!(rt.state, HostState::AdminOffline | HostState::Unknown) {
            return;
        }
        if rt.check(Check::Ping).recorded.is_none() || rt.check(Check::Mysql).recorded.is_none() {
            return;
        }
        let facts = self.facts(h, active_master, now);
        self.note_hold(h, &facts, now, out);
        let Some(d) = rules::decide(&facts) else {
            return;
        };
        self.transition(h, &d, now, out);
        // Only ACTIVE mode takes roles away and fences.
        if self.mode == Mode::Active {
            match d.effect {
                Effect::StripRoles => self.strip_roles(h, true, out),
                Effect::Fence => self.start_fence(h, out),
                Effect::None => {}
            }
        }
    }

    pub(crate) fn can_be_active_master(&self, h: HostId) -> bool {
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
        let masters: Vec<HostId> = self.spec.masters().into_iter().take(2).collect();
        let online: Vec<HostId> = masters
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
        for h in self.hosts.ids() {
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
