//! Monitor startup: restoring the status file (S10) and startup role voting (docs/mmm-behaviour.md §7.4).
//!
//! Both start from what may already be true in the cluster, so the writer exposure of every host
//! that might be writable is set conservatively (`exposure.rs`): a previous monitor instance may
//! have renewed its lease right before it stopped, so it may last until `now + writer_lease +
//! fence budget` (or forever without a lease), unless the host shows it cannot write.

use crate::core::Core;
use crate::exposure::Exposure;
use crate::ids::{EntryId, HostId, IdVec};
use crate::io::{log, Action, AgentFacts, Level, PersistedState, StartupHostInfo, SystemFacts};
use crate::spec::{ClusterSpec, HostMode, HostState, Mode, RoleInstance};
use crate::time::Millis;
use std::collections::BTreeSet;

/// The evidence for one (role, ip) pair on one host, for voting and the startup table.
#[derive(Clone, Copy, Default)]
struct Evidence {
    stored: bool,
    system: bool,
    agent: bool,
}

impl Core {
    /// A core continuing from the status file, without role changes (S10), and as if the
    /// monitor had not stopped: state timers, the uptime of rule A3, flapping, failed
    /// promotions and writer exposure come back. Unknown hosts and roles in the file are
    /// ignored; hosts missing from it start AWAITING_RECOVERY.
    pub fn restore(spec: ClusterSpec, persisted: &PersistedState, now: Millis) -> Core {
        let mut core = Core::blank(spec, HostState::AwaitingRecovery, now);
        for h in core.hosts.ids() {
            let ph = persisted.hosts.iter().find(|p| p.name == core.host_name(h));
            let exposure = ph.and_then(|p| p.exposure.as_ref());
            core.hosts[h].exposure = Exposure::restored(
                exposure,
                core.can_be_active_master(h),
                core.spec.writer_lease,
                now,
            );
            core.on_record[h] = exposure.and_then(|x| x.may_write) == Some(true);
            let Some(ph) = ph else { continue };
            let rt = &mut core.hosts[h];
            rt.state = ph.state;
            rt.last_state_change = ph.last_state_change.unwrap_or(now);
            rt.online_since = (ph.state == HostState::Online).then_some(rt.last_state_change);
            rt.last_uptime = ph.last_uptime;
            rt.flap = ph.flap.clone();
            rt.promotion_failed_at = ph.promotion_failed_at;
            for r in &ph.roles {
                let Some(e) = core.valid_entry(r, h) else {
                    continue;
                };
                if core.table.entries[e].owner.is_none() {
                    core.table.entries[e].owner = Some(h);
                }
                core.hosts[h].maybe_holds.insert(e);
            }
        }
        // The writer's tenure continues only if the file says it is still the writer's owner.
        core.confirmed_writer = persisted
            .confirmed_writer
            .as_deref()
            .and_then(|n| core.spec.host_id(n))
            .filter(|&w| core.table.active_master() == Some(w));
        let mut out = Vec::new();
        core.epoch = persisted.epoch;
        core.bump_epoch(&mut out);
        // Rewrite the file at once: an older format gains its exposure records.
        core.dirty = true;
        core
    }

    /// The table entry for `r` if it exists in the config and host `h` may hold it.
    fn valid_entry(&self, r: &RoleInstance, h: HostId) -> Option<EntryId> {
        let e = self.table.find(&self.spec, &r.name, &r.ip)?;
        self.spec
            .can_hold(self.table.entries[e].role, h)
            .then_some(e)
    }

    /// Startup without a status file: what each agent reported seeds its token and running
    /// lease (an adoption counts as one); every host that is not shown unable to write (agent
    /// answered: no writer role, no lease, read_only; system: not writable, no writer IP) is
    /// exposed until `now + lease + budget`, and one whose agent did not answer for the
    /// adoption window longer (`ha_lease::unanswered_bound`).
    fn seed_exposures(&mut self, infos: &[StartupHostInfo], now: Millis) {
        let writer_ip = self
            .table
            .writer_entry()
            .map(|w| self.table.instance(&self.spec, w).ip);
        for h in self.hosts.ids() {
            let name = self.host_name(h).to_string();
            let info = infos.iter().find(|i| i.host == name);
            let facts: Option<&AgentFacts> = info.and_then(|i| i.facts.as_ref());
            let system = info.and_then(|i| i.system.as_ref());
            let holds_writer = facts.is_some_and(|f| {
                f.roles
                    .iter()
                    .any(|r| r.name == self.spec.active_master_role)
            });
            let rt = &mut self.hosts[h];
            if let Some(f) = facts {
                let cannot = f.cannot_write(holds_writer, writer_ip.as_deref());
                rt.exposure.on_status(f, holds_writer, cannot, now);
            }
            let shown_clear = facts.is_some_and(|f| {
                !holds_writer
                    && f.lease_remaining.is_none()
                    && f.cannot_write(false, writer_ip.as_deref())
            }) && system.is_some_and(|s| {
                !s.writable
                    && !writer_ip
                        .as_ref()
                        .is_some_and(|ip| s.ips_present.contains(ip))
            });
            if facts.is_none() {
                rt.exposure.expose_unanswered(self.spec.writer_lease, now);
            } else if !shown_clear {
                rt.exposure.expose_from(self.spec.writer_lease, now);
            }
        }
    }

    /// Startup role voting (§7.4): combines the status file (`stored`), what the agents remember
    /// and what the systems look like. Ties go to the host first in config order (F1). With a
    /// conflict (the writer IP configured on several hosts) and `careful_startup`, the monitor
    /// starts PASSIVE with the startup table as the cause.
    pub fn startup(
        spec: ClusterSpec,
        stored: Option<&PersistedState>,
        infos: Vec<StartupHostInfo>,
        now: Millis,
    ) -> (Core, Vec<Action>) {
        let mut out = Vec::new();
        let mut core = Core::blank(spec, HostState::Unknown, now);
        let empty = PersistedState {
            confirmed_writer: None,
            epoch: 0,
            hosts: Vec::new(),
        };
        let stored = stored.unwrap_or(&empty);
        for info in &infos {
            if core.spec.host_id(&info.host).is_none() {
                log(
                    &mut out,
                    Level::Warn,
                    format!(
                        "Ignoring startup information of unknown host '{}'",
                        info.host
                    ),
                );
            }
        }
        let names: IdVec<HostId, String> = core.spec.hosts.iter().map(|h| h.name.clone()).collect();
        let info_of = |h: HostId| infos.iter().find(|i| i.host == names[h]);
        let stored_of = |h: HostId| stored.hosts.iter().find(|p| p.name == names[h]);

        // Evidence per (entry, host).
        let row: IdVec<HostId, Evidence> = vec![Evidence::default(); names.len()].into();
        let mut ev: IdVec<EntryId, IdVec<HostId, Evidence>> =
            vec![row; core.table.entries.len()].into();
        let discard =
            |core: &Core, r: &RoleInstance, h: HostId, out: &mut Vec<Action>| -> Option<EntryId> {
                let e = core.valid_entry(r, h);
                if e.is_none() {
                    log(
                        out,
                        Level::Warn,
                        format!(
                            "Detected change in role definitions: '{r}' on host '{}' is discarded",
                            core.host_name(h)
                        ),
                    );
                }
                e
            };
        for h in core.hosts.ids() {
            if let Some(p) = stored_of(h) {
                core.hosts[h].flap = p.flap.clone();
                for r in &p.roles {
                    if let Some(e) = discard(&core, r, h, &mut out) {
                        ev[e][h].stored = true;
                    }
                }
            }
            if let Some((_, roles)) = info_of(h).and_then(|i| i.agent.as_ref()) {
                for r in roles {
                    if let Some(e) = discard(&core, r, h, &mut out) {
                        ev[e][h].agent = true;
                    }
                }
            }
            if let Some(sys) = info_of(h).and_then(|i| i.system.as_ref()) {
                for ip in &sys.ips_present {
                    if let Some(e) = core.table.find_ip(ip) {
                        if core.spec.can_hold(core.table.entries[e].role, h) {
                            ev[e][h].system = true;
                        }
                    }
                }
            }
        }

        // Host states: the first of these that stored or agent state equals.
        let manual = core.spec.initial_mode.is_manual();
        let order = [
            HostState::AdminOffline,
            HostState::HardOffline,
            HostState::ReplicationFail,
            HostState::ReplicationDelay,
            HostState::Online,
        ];
        let mut states: IdVec<HostId, HostState> = core
            .hosts
            .ids()
            .map(|h| {
                let s = stored_of(h).map(|p| p.state);
                let a = info_of(h).and_then(|i| i.agent.as_ref()).map(|(st, _)| *st);
                order
                    .into_iter()
                    .find(|&x| s == Some(x) || a == Some(x))
                    .unwrap_or(HostState::AwaitingRecovery)
            })
            .collect();

        let system = |h: HostId| info_of(h).and_then(|i| i.system.clone());
        let mut conflict = false;
        let writer_entry = core.table.writer_entry();
        let masters = core.spec.masters();
        for e in core.table.entries.ids() {
            let r = core.table.entries[e].role;
            let is_writer = Some(e) == writer_entry;
            let mut best: Option<(u32, HostId)> = None;
            let mut configured_on = 0;
            for h in core.hosts.ids() {
                if !core.spec.can_hold(r, h) {
                    continue;
                }
                let x = ev[e][h];
                configured_on += usize::from(x.system);
                let mut votes = if is_writer {
                    let writable = system(h).is_some_and(|s| s.writable);
                    let followers = core
                        .hosts
                        .ids()
                        .filter(|&o| !masters.contains(&o))
                        .filter(|&o| {
                            system(o).and_then(|s| s.master).as_deref() == Some(names[h].as_str())
                        })
                        .count() as u32;
                    4 * u32::from(writable)
                        + 2 * u32::from(x.system)
                        + u32::from(x.stored)
                        + u32::from(x.agent)
                        + followers
                } else {
                    4 * u32::from(x.system) + 2 * u32::from(x.stored) + u32::from(x.agent)
                };
                let st = states[h];
                let zero = if is_writer {
                    st == HostState::AdminOffline || (st == HostState::HardOffline && !manual)
                } else {
                    st == HostState::AdminOffline
                        || (!manual
                            && !matches!(st, HostState::Online | HostState::AwaitingRecovery))
                };
                if zero {
                    votes = 0;
                }
                if votes > 0 && best.is_none_or(|(v, _)| votes > v) {
                    best = Some((votes, h));
                }
            }
            let inst = core.table.instance(&core.spec, e);
            if configured_on > 1 {
                log(
                    &mut out,
                    Level::Warn,
                    format!("Role '{inst}' was configured on {configured_on} hosts during monitor startup."),
                );
                conflict |= is_writer;
            }
            let Some((_, winner)) = best else { continue };
            core.table.entries[e].owner = Some(winner);
            let st = &mut states[winner];
            if is_writer {
                if !manual || st.is_replication_problem() {
                    *st = HostState::Online;
                }
            } else if *st == HostState::AwaitingRecovery {
                *st = HostState::Online;
            }
        }

        // Apply states through the setter, starting from the stored state (a stored ONLINE host
        // that comes up as anything else counts as a downtime, as in mmm).
        for (h, &st) in states.iter_enumerated() {
            core.hosts[h].state = stored_of(h).map(|p| p.state).unwrap_or(HostState::Unknown);
            let why = format!(
                "State of host '{}' at startup: {st} (startup voting)",
                core.host_name(h)
            );
            core.set_state(h, st, now, ("startup", &why), &mut out);
            let info = info_of(h);
            let agent_ok = info.is_some_and(|i| i.agent.is_some());
            core.hosts[h].agent_seen = agent_ok;
            if !agent_ok && st != HostState::AdminOffline {
                core.hosts[h].agent_down = true;
                log(
                    &mut out,
                    Level::Error,
                    format!(
                        "Can't reach agent on host '{}' during startup",
                        core.host_name(h)
                    ),
                );
            }
            let held: BTreeSet<EntryId> = core
                .table
                .entries
                .ids()
                .filter(|&e| ev[e][h].stored || ev[e][h].agent || ev[e][h].system)
                .collect();
            core.hosts[h].maybe_holds = held;
        }
        core.seed_exposures(&infos, now);
        core.epoch = stored.epoch;
        for i in &infos {
            if let Some(e) = i.agent_epoch {
                core.adopt_epoch(&i.host, e, &mut out);
            }
        }
        core.bump_epoch(&mut out);

        let table = core.startup_table(&ev, &infos, stored);
        log(&mut out, Level::Info, table.clone());
        if conflict && core.spec.careful_startup {
            core.mode = Mode::Passive;
            core.passive_cause = format!("Conflicting roles during startup:\n\n{table}");
        }
        log(
            &mut out,
            Level::Info,
            format!("Monitor started in {} mode.", core.mode.name()),
        );
        core.dirty = true;
        if core.mode != Mode::Passive {
            core.dirty = false;
            out.push(Action::SaveStatus);
        }
        (core, out)
    }

    /// The startup table (§7.4), used in the log and as the passive cause.
    fn startup_table(
        &self,
        ev: &IdVec<EntryId, IdVec<HostId, Evidence>>,
        infos: &[StartupHostInfo],
        stored: &PersistedState,
    ) -> String {
        let yes = |b: bool| if b { "Yes" } else { "-" };
        let role_w = self
            .spec
            .roles
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(4)
            + 17;
        let host_w = self
            .spec
            .hosts
            .iter()
            .map(|h| h.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut lines = vec![
            "Startup status:".to_string(),
            String::new(),
            "Roles:".to_string(),
            format!(
                "    {:<role_w$}  {:<host_w$}  {:<6}  {:<6}  {:<6}",
                "Role", "Host", "Stored", "System", "Agent"
            ),
        ];
        for (e, row) in ev.iter_enumerated() {
            let inst = self.table.instance(&self.spec, e).to_string();
            for (h, x) in row.iter_enumerated() {
                if x.stored || x.system || x.agent {
                    lines.push(format!(
                        "    {:<role_w$}  {:<host_w$}  {:<6}  {:<6}  {:<6}",
                        inst,
                        self.host_name(h),
                        yes(x.stored),
                        yes(x.system),
                        yes(x.agent)
                    ));
                }
            }
        }
        lines.push(String::new());
        lines.push("Hosts:".to_string());
        lines.push(format!(
            "    {:<host_w$}  {:<6}  {:<8}  {:<17}  {:<17}",
            "Host", "Master", "Writable", "Stored state", "Agent state"
        ));
        for spec in &self.spec.hosts {
            let info = infos.iter().find(|i| i.host == spec.name);
            let sys: Option<&SystemFacts> = info.and_then(|i| i.system.as_ref());
            let master = match spec.mode {
                HostMode::Master => "-".to_string(),
                HostMode::Slave => sys
                    .and_then(|s| s.master.clone())
                    .unwrap_or_else(|| "?".into()),
            };
            let writable = match sys {
                Some(s) if s.writable => "Yes",
                Some(_) => "No",
                None => "?",
            };
            let stored_state = stored
                .hosts
                .iter()
                .find(|p| p.name == spec.name)
                .map(|p| p.state.name())
                .unwrap_or("?");
            let agent_state = info
                .and_then(|i| i.agent.as_ref())
                .map(|(s, _)| s.name())
                .unwrap_or("?");
            lines.push(format!(
                "    {:<host_w$}  {:<6}  {:<8}  {:<17}  {:<17}",
                spec.name, master, writable, stored_state, agent_state
            ));
        }
        lines
            .iter()
            .map(|l| l.trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
