//! The [`Core`]: all monitor state, and one main-loop pass ([`Core::step`]).
//!
//! The individual concerns live in their own modules as `impl Core` blocks: `machine.rs`
//! (state transitions), `commands.rs`, `failover.rs` (writer gate, remove-before-add, fencing),
//! `startup.rs` (startup voting, persistence) and `views.rs` (read-only views).

use crate::flap::Flap;
use crate::io::{Action, AgentFacts, AgentReport, DesiredState, Input, Level};
use crate::roles::{MoveWhy, RoleTable};
use crate::spec::{Check, ClusterSpec, HostState, Mode};
use crate::time::Millis;
use crate::traps::{CheckTrack, TrapEvent};
use std::collections::BTreeSet;

/// Upper bound of how long the writer role may still be in effect on a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseBound {
    /// No lease (writer_lease = 0) or unknown origin: only a confirmation or a kill ends it.
    Unbounded,
    /// The agent demotes itself by this instant at the latest.
    Until(Millis),
}

/// Progress of fencing a host whose roles were stripped (mmm's "send status, kill on failure").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fence {
    Idle,
    /// Roles were stripped; waiting to learn whether the agent got the news. `sent` becomes true
    /// once a desired state was sent after the strip, so only a reply to it counts as delivery.
    AwaitDelivery {
        sent: bool,
    },
    /// A kill was requested and its result is outstanding.
    Killing,
}

/// Runtime data of one host (mmm-reference §1 bookkeeping plus ha's safety tracking).
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
    /// Indexed by `Check::index()`.
    pub checks: [CheckTrack; 4],
    /// Table entries the host may hold right now as far as we know (sent to it and not yet
    /// confirmed dropped). Remove-before-add is decided on this (F10).
    pub maybe_holds: BTreeSet<usize>,
    /// The host may hold the writer role / be writable (sent or reported, not confirmed gone).
    pub writer_exposed: bool,
    pub lease_bound: LeaseBound,
    pub fence: Fence,
    /// The host refused a promotion at this instant (F6); it is skipped as writer candidate for
    /// [`crate::failover::PROMOTION_RETRY`].
    pub promotion_failed_at: Option<Millis>,
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
            checks: [
                CheckTrack::new(),
                CheckTrack::new(),
                CheckTrack::new(),
                CheckTrack::new(),
            ],
            maybe_holds: BTreeSet::new(),
            writer_exposed: false,
            lease_bound: LeaseBound::Unbounded,
            fence: Fence::Idle,
            promotion_failed_at: None,
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
    pub(crate) hosts: Vec<HostRt>,
    pub(crate) table: RoleTable,
    pub(crate) mode: Mode,
    pub(crate) passive_cause: String,
    pub(crate) network_up: bool,
    /// Highest epoch handed out; bumped whenever the writer gets a new owner.
    pub(crate) epoch: u64,
    /// Owner of the writer role that confirmed it is synced and writable at the current epoch.
    pub(crate) confirmed_writer: Option<usize>,
    /// Writer owner placed by `move_role --force`: its promotion ignores the sync gate.
    pub(crate) force_writer: Option<usize>,
    /// Epoch for which "waiting for the old writer" was logged (log once, not every pass).
    pub(crate) gate_logged: Option<u64>,
    /// Persisted state changed since the last `SaveStatus`.
    pub(crate) dirty: bool,
}

pub(crate) fn log(out: &mut Vec<Action>, level: Level, message: String) {
    out.push(Action::Log { level, message });
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
        }
    }

    pub(crate) fn host_name(&self, h: usize) -> &str {
        self.spec
            .hosts
            .get(h)
            .map(|s| s.name.as_str())
            .unwrap_or("")
    }

    /// One main-loop pass (mmm-reference §0.2, with ha's fixes):
    /// 1. apply inputs (check results through the trap logic, agent reports, kill results,
    ///    network status); commands are queued;
    /// 2. state transitions in config order, then the WAIT-mode exit (skipped while the
    ///    network is down);
    /// 3. commands in arrival order, one reply each;
    /// 4. writer promotion progress (failed promotions, confirmations), role distribution
    ///    (not in PASSIVE, not while the network is down);
    /// 5. `SaveStatus` if the persisted state changed (not in PASSIVE, not while isolated).
    pub fn step(&mut self, inputs: Vec<Input>, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        let mut commands = Vec::new();
        for input in inputs {
            match input {
                Input::Network { reachable } => self.apply_network(reachable, &mut out),
                Input::CheckResult {
                    host,
                    check,
                    outcome,
                    message,
                } => self.apply_check(&host, check, outcome, &message, now, &mut out),
                Input::AgentReport { host, report } => self.apply_report(&host, report, &mut out),
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
            self.log_gate(now, &mut out);
        }
        if self.dirty && self.network_up && self.mode != Mode::Passive {
            self.dirty = false;
            out.push(Action::SaveStatus);
        }
        out
    }

    fn apply_network(&mut self, reachable: bool, out: &mut Vec<Action>) {
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

    fn apply_check(
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
        let Some(h) = self.spec.host_index(host) else {
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

    fn apply_report(&mut self, host: &str, report: AgentReport, out: &mut Vec<Action>) {
        let Some(h) = self.spec.host_index(host) else {
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
                if matches!(rt.fence, Fence::AwaitDelivery { .. }) {
                    self.request_kill(h, out);
                }
            }
            AgentReport::Status(facts) => {
                let writer_entry = self.table.writer_entry();
                let held: BTreeSet<usize> = facts
                    .roles
                    .iter()
                    .filter_map(|r| self.table.find(&self.spec, &r.name, &r.ip))
                    .collect();
                if facts.epoch > self.epoch {
                    self.epoch = facts.epoch;
                    self.dirty = true;
                }
                let rt = &mut self.hosts[h];
                rt.agent_seen = true;
                if rt.agent_down {
                    rt.agent_down = false;
                    log(
                        out,
                        Level::Info,
                        format!("Agent on host '{host}' is reachable again"),
                    );
                }
                rt.uptime = facts.uptime_secs;
                if rt.state == HostState::Online {
                    rt.last_uptime = facts.uptime_secs;
                }
                rt.maybe_holds = held;
                let holds_writer = writer_entry.is_some_and(|w| rt.maybe_holds.contains(&w));
                if holds_writer && !rt.writer_exposed {
                    // Writer we did not send (e.g. stale agent memory): no known lease origin.
                    rt.writer_exposed = true;
                    rt.lease_bound = LeaseBound::Unbounded;
                } else if !holds_writer
                    && facts.cannot_write(
                        false,
                        writer_entry
                            .map(|w| self.table.instance(&self.spec, w).ip)
                            .as_deref(),
                    )
                {
                    rt.writer_exposed = false;
                }
                if rt.fence == (Fence::AwaitDelivery { sent: true }) {
                    rt.fence = Fence::Idle;
                }
                rt.facts = Some(facts);
            }
        }
    }

    fn apply_kill_result(&mut self, host: &str, ok: bool, output: &str, out: &mut Vec<Action>) {
        let Some(h) = self.spec.host_index(host) else {
            return;
        };
        let rt = &mut self.hosts[h];
        rt.fence = Fence::Idle;
        if ok {
            // A fenced host holds nothing any more: its IPs and writability are gone.
            rt.maybe_holds.clear();
            rt.writer_exposed = false;
            log(out, Level::Info, format!("Killed host '{host}': {output}"));
        } else {
            log(
                out,
                Level::Error,
                format!("Could not kill host '{host}' - there may be some duplicate ips now! ({output})"),
            );
        }
    }

    /// The state setter (§1): records the change time, `online_since`, runs the flap counter on
    /// every change out of ONLINE except to ADMIN_OFFLINE. Returns whether the state changed.
    pub(crate) fn set_state(
        &mut self,
        h: usize,
        new: HostState,
        now: Millis,
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
        if old == HostState::Online
            && new != HostState::AdminOffline
            && rt.flap.left_online(now, duration, limit)
        {
            log(out, Level::Error, format!("Host {name} is flapping!"));
        }
        self.dirty = true;
        true
    }

    /// Changes the owner of table entry `e`; bumps the epoch when the writer gets a new owner so
    /// that the new writer's epoch is strictly higher than any before.
    pub(crate) fn set_owner(&mut self, e: usize, to: Option<usize>) {
        let Some(entry) = self.table.entries.get_mut(e) else {
            return;
        };
        if entry.owner == to {
            return;
        }
        entry.owner = to;
        self.dirty = true;
        if self.table.is_writer(e) {
            self.confirmed_writer = None;
            self.force_writer = None;
            if to.is_some() {
                self.epoch += 1;
            }
        }
    }

    /// CR: removes every role of `h` from the table. With `fence` (ACTIVE mode only) the host is
    /// fenced if the news cannot reach it ("S/K").
    pub(crate) fn strip_roles(&mut self, h: usize, fence: bool, out: &mut Vec<Action>) {
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
            let eligible = |r: usize, h: usize| self.eligible(r, h, now);
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

    pub(crate) fn eligible(&self, r: usize, h: usize, now: Millis) -> bool {
        let Some(rt) = self.hosts.get(h) else {
            return false;
        };
        if !self.spec.can_hold(r, h) || rt.state != HostState::Online || rt.agent_down {
            return false;
        }
        if Some(r) == self.spec.writer_role() {
            if let Some(at) = rt.promotion_failed_at {
                return now.reached(at, crate::failover::PROMOTION_RETRY);
            }
        }
        true
    }

    /// What to send to `host`'s agent now. `None` = send nothing: PASSIVE mode, the monitor is
    /// isolated, or the host is unknown.
    pub fn desired_state(&self, host: &str, now: Millis) -> Option<DesiredState> {
        if self.mode == Mode::Passive || !self.network_up {
            return None;
        }
        let h = self.spec.host_index(host)?;
        let rt = self.hosts.get(h)?;
        let mut roles = Vec::new();
        let mut has_writer = false;
        for e in self.table.owned_by(h) {
            if self.released_for(e, h, now) {
                has_writer |= self.table.is_writer(e);
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
            force: has_writer && self.force_writer == Some(h),
        })
    }

    /// The daemon calls this when it sends `desired` to `host` at `now` (before the reply).
    /// Everything sent may now be held by the host; a writer role sent now may stay in effect
    /// until `now + agent_timeout + writer_lease` (or forever without a lease).
    pub fn note_sent(&mut self, host: &str, desired: &DesiredState, now: Millis) {
        let Some(h) = self.spec.host_index(host) else {
            return;
        };
        let writer_entry = self.table.writer_entry();
        let entries: Vec<usize> = desired
            .roles
            .iter()
            .filter_map(|r| self.table.find(&self.spec, &r.name, &r.ip))
            .collect();
        let bound = if desired.writer_lease.is_zero() {
            LeaseBound::Unbounded
        } else {
            LeaseBound::Until(now.plus(self.spec.agent_timeout).plus(desired.writer_lease))
        };
        let rt = &mut self.hosts[h];
        for &e in &entries {
            rt.maybe_holds.insert(e);
        }
        if writer_entry.is_some_and(|w| entries.contains(&w)) {
            rt.lease_bound = if rt.writer_exposed {
                later(rt.lease_bound, bound)
            } else {
                bound
            };
            rt.writer_exposed = true;
        }
        if rt.fence == (Fence::AwaitDelivery { sent: false }) {
            rt.fence = Fence::AwaitDelivery { sent: true };
        }
    }
}

/// The later of two lease bounds (unbounded wins).
fn later(a: LeaseBound, b: LeaseBound) -> LeaseBound {
    match (a, b) {
        (LeaseBound::Until(x), LeaseBound::Until(y)) => LeaseBound::Until(x.max(y)),
        _ => LeaseBound::Unbounded,
    }
}
