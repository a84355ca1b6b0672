//! The [`Core`]: all monitor state, and one main-loop pass ([`Core::step`]).
//!
//! The individual concerns live in their own modules as `impl Core` blocks: `machine.rs`
//! (state transitions), `commands.rs`, `failover.rs` (writer gate, remove-before-add, fencing),
//! `epochs.rs` (the cluster's epoch), `startup.rs` (startup voting, persistence) and `views.rs`
//! (read-only views).

use crate::exposure::{Exposure, Fence};
use crate::flap::Flap;
use crate::ids::{EntryId, HostId, IdVec, RoleId};
use crate::io::{
    log, Action, AgentFacts, AgentReport, DesiredState, Event, EventKind, Input, Level,
};
use crate::roles::{MoveWhy, RoleTable};
use crate::spec::{Check, ClusterSpec, HostState, Mode};
use crate::time::Millis;
use crate::traps::{CheckTrack, TrapEvent};
use ha_lease::next_epoch;
use std::collections::BTreeSet;

/// Runtime data of one host (docs/mmm-behaviour.md §1 bookkeeping plus ha's safety tracking).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HostRt {
    pub state: HostState,
    pub last_state_change: Millis,
    pub online_since: Option<Millis>,
    /// Uptime from the latest agent reply.
    pub uptime: f64,
    /// Uptime from the latest agent reply received while ONLINE (0 until then).
    pub last_uptime: f64,
    pub flap: Flap,
    /// The agent could not be reached although the host pings.
    pub agent_down: bool,
    /// At least one agent reply arrived since the core started.
    pub agent_seen: bool,
    pub facts: Option<AgentFacts>,
    /// When `facts` arrived.
    pub facts_at: Option<Millis>,
    /// The active master failed the monitor's checks but its peers vouch for it (rule O0,
    /// `vouched.rs`).
    pub held_by_peers: bool,
    /// Indexed by `Check::index()`.
    pub checks: [CheckTrack; 4],
    /// Table entries the host may hold right now as far as we know (sent to it and not yet
    /// confirmed dropped). Remove-before-add is decided on this (F10).
    pub maybe_holds: BTreeSet<EntryId>,
    /// Whether the host may be writable, until when, and its fencing (`exposure.rs`).
    pub exposure: Exposure,
    /// The host refused a promotion at this instant (F6); it is skipped as writer candidate for
    /// [`crate::failover::PROMOTION_RETRY`].
    pub promotion_failed_at: Option<Millis>,
    /// The host, owning the writer role, refuses it because of a peer promise and the monitor
    /// waits for that promise to end (logged once per wait).
    pub waits_for_promise: bool,
}

impl HostRt {
    pub(crate) fn new(state: HostState, now: Millis) -> HostRt {
        HostRt {
            state,
            last_state_change: now,
            online_since: (state == HostState::Online).then_some(now),
            uptime: 0.0,
            last_uptime: 0.0,
            flap: Flap::default(),
            agent_down: false,
            agent_seen: false,
            facts: None,
            facts_at: None,
            held_by_peers: false,
            checks: [
                CheckTrack::new(),
                CheckTrack::new(),
                CheckTrack::new(),
                CheckTrack::new(),
            ],
            maybe_holds: BTreeSet::new(),
            exposure: Exposure::default(),
            promotion_failed_at: None,
            waits_for_promise: false,
        }
    }

    pub(crate) fn check(&self, c: Check) -> &CheckTrack {
        &self.checks[c.index()]
    }

    /// ping ok and mysql ok (recorded).
    pub(crate) fn alive(&self) -> bool {
        self.check(Check::Ping).ok() && self.check(Check::Mysql).ok()
    }
}

/// All monitor state. Cloning and comparing it is how the tests check determinism.
#[derive(Clone, Debug, PartialEq)]
pub struct Core {
    pub(crate) spec: ClusterSpec,
    pub(crate) hosts: IdVec<HostId, HostRt>,
    pub(crate) table: RoleTable,
    pub(crate) mode: Mode,
    pub(crate) passive_cause: String,
    pub(crate) network_up: bool,
    /// Highest epoch handed out; bumped whenever the writer gets a new owner.
    pub(crate) epoch: u64,
    /// Owner of the writer role that confirmed it is synced and writable at the current epoch.
    pub(crate) confirmed_writer: Option<HostId>,
    /// Writer owner placed by `move_role --force`: its promotion ignores the sync gate.
    pub(crate) force_writer: Option<HostId>,
    /// Epoch for which "waiting for the old writer" was logged (log once, not every pass).
    pub(crate) gate_logged: Option<u64>,
    /// Persisted state changed since the last `SaveStatus`.
    pub(crate) dirty: bool,
    /// Per host: the last status file saved records it as possibly writable. The writer role is
    /// only sent to a host on record, so a restarted monitor knows of every grant (write-ahead).
    pub(crate) on_record: IdVec<HostId, bool>,
    /// Implausible epoch last refused (logged once per value).
    pub(crate) refused_epoch: Option<u64>,
    /// The active master fell back from semi-sync to asynchronous replication (`semisync.rs`).
    pub(crate) async_fallback: Option<crate::fallback::AsyncFallback>,
    /// When the writer role got its current owner, and why (`failover` or `switchover`): for
    /// the promotion's events and duration; not persisted.
    pub(crate) writer_since: Option<(Millis, &'static str)>,
    /// The instant of the latest step (or of the start): what the status file's remaining
    /// exposures are counted from.
    pub(crate) now: Millis,
}

impl Core {
    /// A core for a cluster about which nothing is known yet: every host AWAITING_RECOVERY, all
    /// roles orphaned, no host ever told to be writer. The daemon normally uses
    /// [`Core::startup`] or [`Core::restore`]; `new` is for fresh clusters and tests.
    pub fn new(spec: ClusterSpec) -> Core {
        Core::blank(spec, HostState::AwaitingRecovery, Millis(0))
    }

    pub(crate) fn blank(spec: ClusterSpec, state: HostState, now: Millis) -> Core {
        let mode = spec.initial_mode;
        let passive_cause = if mode == Mode::Passive {
            "Configured to start up in passive mode.".to_string()
        } else {
            String::new()
        };
        let n = spec.hosts.len();
        Core {
            hosts: spec.hosts.iter().map(|_| HostRt::new(state, now)).collect(),
            table: RoleTable::new(&spec),
            spec,
            mode,
            passive_cause,
            network_up: true,
            epoch: 0,
            confirmed_writer: None,
            force_writer: None,
            gate_logged: None,
            dirty: false,
            on_record: vec![false; n].into(),
            refused_epoch: None,
            async_fallback: None,
            writer_since: None,
            now,
        }
    }

    pub(crate) fn host_name(&self, h: HostId) -> &str {
        self.spec.host(h).map(|s| s.name.as_str()).unwrap_or("")
    }

    /// One main-loop pass (docs/mmm-behaviour.md §0.2, with ha's fixes):
    /// 1. apply inputs (check results through the trap logic, agent reports, kill results,
    ///    network status); commands are queued;
    /// 2. state transitions in config order, then the WAIT-mode exit (skipped while the
    ///    network is down);
    /// 3. commands in arrival order, one reply each;
    /// 4. writer promotion progress (failed promotions, confirmations), role distribution
    ///    (not in PASSIVE, not while the network is down);
    /// 5. `SaveStatus` if the persisted state changed (not in PASSIVE, not while isolated);
    ///    the daemon answers with [`Core::saved`] or [`Core::save_failed`].
    pub fn step(&mut self, inputs: Vec<Input>, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        let mut commands = Vec::new();
        let before = self.digest();
        self.now = self.now.max(now);
        for rt in self.hosts.iter_mut() {
            self.dirty |= rt.exposure.expire(now);
        }
        for input in inputs {
            match input {
                Input::Network { reachable } => self.apply_network(reachable, &mut out),
                Input::CheckResult {
                    host,
                    check,
                    outcome,
                    message,
                } => self.apply_check(&host, check, outcome, &message, now, &mut out),
                Input::AgentReport { host, report } => {
                    self.apply_report(&host, report, now, &mut out)
                }
                Input::KillResult { host, ok, output } => {
                    self.apply_kill_result(&host, ok, &output, &mut out)
                }
                Input::Command { id, command } => commands.push((id, command)),
            }
        }
        if self.network_up {
            self.run_transitions(now, &mut out);
            self.wait_mode_exit(now, &mut out);
        }
        for (id, command) in commands {
            self.run_command(id, command, now, &mut out);
        }
        if self.network_up && self.mode != Mode::Passive {
            self.promotion_progress(now, &mut out);
            self.distribute(now, &mut out);
            self.fence_departed_writers(&mut out);
            self.log_async_refusal(&mut out);
            self.log_gate(now, &mut out);
        }
        self.record_changes(&before, now, &mut out);
        if self.dirty && self.network_up && self.mode != Mode::Passive {
            self.dirty = false;
            out.push(Action::SaveStatus);
        }
        out
    }

    pub(crate) fn apply_network(&mut self, reachable: bool, out: &mut Vec<Action>) {
        if reachable == self.network_up {
            return;
        }
        self.network_up = reachable;
        if reachable {
            log(out, Level::Info, "Network is reachable".into());
        } else {
            log(out, Level::Error, "Network is unreachable".into());
        }
    }

    pub(crate) fn apply_check(
        &mut self,
        host: &str,
        check: Check,
        outcome: crate::CheckOutcome,
        message: &str,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        // While isolated the checkers pause in mmm; a result now would describe our own outage.
        if !self.network_up {
            return;
        }
        let Some(h) = self.spec.host_id(host) else {
            return;
        };
        let trap = self.spec.trap_periods.get(check);
        let event = self.hosts[h].checks[check.index()].observe(outcome, message, now, trap);
        let c = check.name();
        match event {
            TrapEvent::Quiet => {}
            TrapEvent::Recovered => {
                log(out, Level::Info, format!("Check '{c}' on '{host}' is ok!"))
            }
            TrapEvent::Failed { for_secs } => log(
                out,
                Level::Error,
                format!(
                    "Check '{c}' on '{host}' has failed for {for_secs} seconds! Message: {message}"
                ),
            ),
            TrapEvent::Unknown => log(
                out,
                Level::Warn,
                format!("Check '{c}' on '{host}' is in unknown state! Message: {message}"),
            ),
        }
    }

    fn apply_report(
        &mut self,
        host: &str,
        report: AgentReport,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let Some(h) = self.spec.host_id(host) else {
            return;
        };
        match report {
            AgentReport::Unreachable { error } => {
                // While isolated every agent looks unreachable; acting on that would be wrong.
                if !self.network_up {
                    return;
                }
                let rt = &mut self.hosts[h];
                if !rt.check(Check::Ping).failed() && !rt.agent_down {
                    rt.agent_down = true;
                    log(
                        out,
                        Level::Error,
                        format!("Can't reach agent on host '{host}': {error}"),
                    );
                }
                if matches!(rt.exposure.fence(), Fence::AwaitDelivery { .. }) {
                    self.request_kill(h, out);
                }
            }
            AgentReport::StaleEpoch { held } => {
                self.mark_reachable(h, out);
                if self.adopt_epoch(host, held, out) {
                    // Our orders must be newer than anything the agent applied.
                    self.bump_epoch(out);
                }
            }
            AgentReport::Status(facts) => {
                self.mark_reachable(h, out);
                if facts.epoch > self.epoch {
                    self.adopt_epoch(host, facts.epoch, out);
                }
                let writer_entry = self.table.writer_entry();
                let held: BTreeSet<EntryId> = facts
                    .roles
                    .iter()
                    .filter_map(|r| self.table.find(&self.spec, &r.name, &r.ip))
                    .collect();
                let writer_ip = writer_entry.map(|w| self.table.instance(&self.spec, w).ip);
                let cannot_write = facts.cannot_write(false, writer_ip.as_deref());
                let rt = &mut self.hosts[h];
                rt.uptime = facts.uptime_secs;
                // Saved with the next state change, which is when rule A3 needs it.
                if rt.state == HostState::Online {
                    rt.last_uptime = facts.uptime_secs;
                }
                rt.maybe_holds = held;
                let holds_writer = writer_entry.is_some_and(|w| rt.maybe_holds.contains(&w));
                let was = rt.exposure.marked();
                rt.exposure
                    .on_status(&facts, holds_writer, cannot_write, now);
                self.dirty |= was != rt.exposure.marked();
                rt.facts = Some(facts);
                rt.facts_at = Some(now);
                self.note_semi_sync(h, now, out);
            }
        }
    }

    /// A reply arrived: the agent is reachable (again).
    fn mark_reachable(&mut self, h: HostId, out: &mut Vec<Action>) {
        let name = self.host_name(h).to_string();
        let rt = &mut self.hosts[h];
        rt.agent_seen = true;
        if rt.agent_down {
            rt.agent_down = false;
            log(
                out,
                Level::Info,
                format!("Agent on host '{name}' is reachable again"),
            );
        }
    }

    /// The state setter (§1): records the change time, `online_since`, runs the flap counter on
    /// every change out of ONLINE except to ADMIN_OFFLINE, and records a `state_change` event
    /// with `rule` (a rule name, `admin` or `startup`) and `why` (the caller logs the line).
    /// Returns whether the state changed.
    pub(crate) fn set_state(
        &mut self,
        h: HostId,
        new: HostState,
        now: Millis,
        (rule, why): (&str, &str),
        out: &mut Vec<Action>,
    ) -> bool {
        let (duration, limit) = (self.spec.flap_duration, self.spec.flap_count);
        let name = self.host_name(h).to_string();
        let Some(rt) = self.hosts.get_mut(h) else {
            return false;
        };
        let old = rt.state;
        if old == new {
            return false;
        }
        rt.state = new;
        rt.last_state_change = now;
        if new == HostState::Online {
            rt.online_since = Some(now);
            rt.promotion_failed_at = None;
        }
        let flapped = old == HostState::Online
            && new != HostState::AdminOffline
            && rt.flap.left_online(now, duration, limit);
        let mut event = Event::new(EventKind::StateChange, why.to_string())
            .host(&name)
            .from_to(Some(old.to_string()), Some(new.to_string()));
        event.rule = Some(rule.to_string());
        out.push(Action::Event(event));
        if flapped {
            log(out, Level::Error, format!("Host {name} is flapping!"));
        }
        self.dirty = true;
        true
    }

    /// Changes the owner of table entry `e`; bumps the epoch when the writer gets a new owner so
    /// that the new writer's epoch is strictly higher than any before.
    pub(crate) fn set_owner(&mut self, e: EntryId, to: Option<HostId>) {
        let Some(entry) = self.table.entries.get_mut(e) else {
            return;
        };
        if entry.owner == to {
            return;
        }
        let from = entry.owner;
        entry.owner = to;
        self.dirty = true;
        if self.table.is_writer(e) {
            if let Some(rt) = from.and_then(|o| self.hosts.get_mut(o)) {
                if self.mode == Mode::Active {
                    rt.exposure.writer_departed();
                }
                rt.waits_for_promise = false;
            }
            self.confirmed_writer = None;
            self.force_writer = None;
            // Every change of the writer's owner, also to nobody, starts a new epoch: the old
            // writer's demotion then carries an epoch its earlier grants do not, so a grant
            // delivered late (a timed-out request still in the network) is refused as stale
            // after the demotion was confirmed — without this, such a grant made the demoted
            // host writable again next to its successor (found by the simulation, seed 36892
            // of the 100,000-schedule run). Never wraps: epochs above `u64::MAX - 1` are
            // refused as implausible, so the end of the range is never reached in practice.
            self.epoch = next_epoch(self.epoch).unwrap_or(self.epoch);
        }
    }

    /// CR: removes every role of `h` from the table. With `fence` (ACTIVE mode only) the host is
    /// fenced if the news cannot reach it ("S/K").
    pub(crate) fn strip_roles(&mut self, h: HostId, fence: bool, out: &mut Vec<Action>) {
        for e in self.table.owned_by(h) {
            self.set_owner(e, None);
        }
        if fence && self.mode == Mode::Active {
            self.start_fence(h, out);
        }
    }

    /// Role distribution (§4.4) with ha's eligibility: ONLINE, agent reachable, listed for the
    /// role, and for the writer not a recently failed promotion candidate.
    fn distribute(&mut self, now: Millis, out: &mut Vec<Action>) {
        let mut table = self.table.clone();
        let moves = {
            let eligible = |r: RoleId, h: HostId| self.eligible(r, h, now);
            table.distribute(&self.spec, &eligible, self.mode == Mode::Active)
        };
        for m in moves {
            let inst = self.table.instance(&self.spec, m.entry);
            let to = self.host_name(m.to).to_string();
            let from = m
                .from
                .map(|f| self.host_name(f).to_string())
                .unwrap_or_default();
            let msg = match m.why {
                MoveWhy::Orphan => format!("Orphaned role '{inst}' has been assigned to '{to}'"),
                MoveWhy::Prefer => {
                    format!("Moving role '{inst}' from host '{from}' to preferred host '{to}'")
                }
                MoveWhy::Balance => {
                    format!("Moving role '{inst}' from host '{from}' to host '{to}' (balancing)")
                }
            };
            log(out, Level::Info, msg);
            self.set_owner(m.entry, Some(m.to));
        }
    }

    /// What to send to `host`'s agent now. `None` = send nothing: PASSIVE mode, the monitor is
    /// isolated, or the host is unknown.
    pub fn desired_state(&self, host: &str, now: Millis) -> Option<DesiredState> {
        if self.mode == Mode::Passive || !self.network_up {
            return None;
        }
        let h = self.spec.host_id(host)?;
        let rt = self.hosts.get(h)?;
        let mut roles = Vec::new();
        let mut has_writer = false;
        for e in self.table.owned_by(h) {
            let writer = self.table.is_writer(e);
            // The writer role goes out only once the status file records the host as possibly
            // writable: a monitor restarted after the send must know of the grant.
            let on_record = self.on_record.get(h).copied().unwrap_or(false);
            if self.released_for(e, h, now) && (!writer || on_record) {
                has_writer |= writer;
                roles.push(self.table.instance(&self.spec, e));
            }
        }
        roles.sort();
        let active_master = if has_writer {
            Some(host.to_string())
        } else {
            self.confirmed_writer.map(|w| self.host_name(w).to_string())
        };
        Some(DesiredState {
            state: rt.state,
            roles,
            active_master,
            epoch: self.epoch,
            writer_lease: self.spec.writer_lease,
            // `move_role --force`, or the confirmed writer's tenure continuing (its role renewed
            // after it fenced itself while the monitor was away): no other host has had the
            // role since it confirmed, so every acknowledged write is already on it and a
            // relay log it cannot apply (a diverged peer's) must not take the writer down.
            force: has_writer && (self.force_writer == Some(h) || self.confirmed_writer == Some(h)),
            lease_token: rt.exposure.token(),
            writer_peers: if has_writer {
                self.writer_peers(h)
            } else {
                Vec::new()
            },
        })
    }

    /// Every host other than `h` that may hold the writer role, in config order.
    fn writer_peers(&self, h: HostId) -> Vec<String> {
        let Some(role) = self.spec.writer_role().and_then(|r| self.spec.role(r)) else {
            return Vec::new();
        };
        let me = self.host_name(h);
        role.hosts.iter().filter(|n| *n != me).cloned().collect()
    }

    /// The daemon calls this when it sends `desired` to `host` at `now` (before the reply).
    /// Everything sent may now be held by the host; a writer role sent now may stay in effect
    /// until the echoed token's receipt + lease + the agent's fence budget (`exposure.rs`).
    pub fn note_sent(&mut self, host: &str, desired: &DesiredState, now: Millis) {
        let Some(h) = self.spec.host_id(host) else {
            return;
        };
        let writer_entry = self.table.writer_entry();
        let entries: Vec<EntryId> = desired
            .roles
            .iter()
            .filter_map(|r| self.table.find(&self.spec, &r.name, &r.ip))
            .collect();
        let grants_writer = writer_entry.is_some_and(|w| entries.contains(&w));
        let rt = &mut self.hosts[h];
        for &e in &entries {
            rt.maybe_holds.insert(e);
        }
        let was = rt.exposure.marked();
        rt.exposure.on_sent(
            grants_writer,
            desired.lease_token.as_ref(),
            desired.writer_lease,
            now,
        );
        self.dirty |= was != rt.exposure.marked();
    }

    /// The status file now holds `saved` (the value [`Core::persisted`] returned): hosts it
    /// records as possibly writable may be granted the writer role.
    pub fn saved(&mut self, saved: &crate::io::PersistedState) {
        for h in self.hosts.ids() {
            let name = self.host_name(h);
            let on = saved.hosts.iter().any(|p| {
                p.name == name && p.exposure.as_ref().and_then(|x| x.may_write) == Some(true)
            });
            if let Some(r) = self.on_record.get_mut(h) {
                *r = on;
            }
        }
    }

    /// Saving the status file failed: it is retried after the next step, and no new writer is
    /// granted meanwhile.
    pub fn save_failed(&mut self) {
        self.dirty = true;
    }
}
