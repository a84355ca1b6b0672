//! Operator commands (docs/mmm-behaviour.md §6.2) with mysql-mmm's reply texts, character for character.
//!
//! Differences from mmm, all crash fixes (F4): `move_role` of an orphaned role and
//! `move_role --force` while the writer has no owner work (the old owner is shown as ''),
//! and instead of pinging the agent synchronously the core uses what it knows: an agent that is
//! down or has never answered counts as unreachable.

use crate::core::Core;
use crate::ids::{HostId, Id};
use crate::io::log;
use crate::io::{Action, AdminCommand, Level};
use crate::spec::{Check, HostState, Mode, RoleMode};
use crate::time::Millis;

/// Outcome of one command: (ok, reply text).
type Reply = (bool, String);

fn ok(s: String) -> Reply {
    (true, s)
}

fn err(s: String) -> Reply {
    (false, s)
}

impl Core {
    pub(crate) fn run_command(
        &mut self,
        id: u64,
        command: AdminCommand,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let (ok, message) = match command {
            AdminCommand::Ping => ok("OK: Pinged successfully!".into()),
            AdminCommand::SetOnline(h) => self.cmd_set_online(&h, now, out),
            AdminCommand::SetOffline(h) => self.cmd_set_offline(&h, now, out),
            AdminCommand::MoveRole { role, host, force } => {
                self.cmd_move_role(&role, &host, force, now, out)
            }
            AdminCommand::SetIp { ip, host } => self.cmd_set_ip(&ip, &host, out),
            AdminCommand::SetMode(mode) => self.cmd_set_mode(mode, out),
        };
        out.push(Action::Reply { id, ok, message });
    }

    fn agent_reachable(&self, h: HostId) -> bool {
        self.hosts
            .get(h)
            .is_some_and(|rt| rt.agent_seen && !rt.agent_down)
    }

    fn cmd_set_online(&mut self, host: &str, now: Millis, out: &mut Vec<Action>) -> Reply {
        let Some(h) = self.spec.host_id(host) else {
            return err(format!("ERROR: Unknown host name '{host}'!"));
        };
        let state = self.hosts[h].state;
        if state == HostState::Online {
            return ok("OK: This host is already ONLINE. Skipping command.".into());
        }
        if !matches!(state, HostState::AdminOffline | HostState::AwaitingRecovery) {
            return err(format!(
                "ERROR: Host '{host}' is '{state}' at the moment. It can't be switched to ONLINE."
            ));
        }
        if !self.hosts[h].alive() {
            return err(format!(
                "ERROR: Checks ping and/or mysql are not ok for host '{host}'. It can't be switched to ONLINE."
            ));
        }
        if let Some(p) = self
            .spec
            .host(h)
            .and_then(|s| s.peer.as_deref())
            .and_then(|p| self.spec.host_id(p))
        {
            let peer = &self.hosts[p];
            if peer.state == HostState::Online
                && (peer.check(Check::RepThreads).failed()
                    || peer.check(Check::RepBacklog).failed())
            {
                return err(format!(
                    "ERROR: Some replication checks failed on peer '{}'. We can't set '{host}' online now. Please, wait some time.",
                    self.host_name(p)
                ));
            }
        }
        if !self.agent_reachable(h) {
            return err(format!(
                "ERROR: Can't reach agent daemon on '{host}'! Can't switch its state!"
            ));
        }
        let message = format!("Admin changed state of '{host}' from {state} to ONLINE");
        self.set_state(h, HostState::Online, now, ("admin", &message), out);
        self.hosts[h].flap.flapping = false;
        self.hosts[h].promotion_failed_at = None;
        log(out, Level::Info, message);
        ok(format!(
            "OK: State of '{host}' changed to ONLINE. Now you can wait some time and check its new roles!"
        ))
    }

    fn cmd_set_offline(&mut self, host: &str, now: Millis, out: &mut Vec<Action>) -> Reply {
        let Some(h) = self.spec.host_id(host) else {
            return err(format!("ERROR: Unknown host name '{host}'!"));
        };
        let state = self.hosts[h].state;
        if state == HostState::AdminOffline {
            return ok("OK: This host is already ADMIN_OFFLINE. Skipping command.".into());
        }
        if !matches!(
            state,
            HostState::Online | HostState::ReplicationFail | HostState::ReplicationDelay
        ) {
            return err(format!(
                "ERROR: Host '{host}' is '{state}' at the moment. It can't be switched to ADMIN_OFFLINE."
            ));
        }
        if !self.agent_reachable(h) {
            return err(format!(
                "ERROR: Can't reach agent daemon on '{host}'! Can't switch its state!"
            ));
        }
        let message = format!("Admin changed state of '{host}' from {state} to ADMIN_OFFLINE");
        self.set_state(h, HostState::AdminOffline, now, ("admin", &message), out);
        // Not a flap and no kill: the operator asked for it and the agent is reachable.
        self.strip_roles(h, false, out);
        log(out, Level::Info, message);
        ok(format!(
            "OK: State of '{host}' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"
        ))
    }

    fn cmd_move_role(
        &mut self,
        role: &str,
        host: &str,
        force: bool,
        now: Millis,
        out: &mut Vec<Action>,
    ) -> Reply {
        if self.mode == Mode::Passive {
            return err("ERROR: This command is not allowed in passive mode".into());
        }
        let Some(r) = self.spec.role_id(role) else {
            return err(format!("ERROR: Unknown role name '{role}'!"));
        };
        let Some(h) = self.spec.host_id(host) else {
            return err(format!("ERROR: Unknown host name '{host}'!"));
        };
        let role_spec = self.spec.roles[r.index()].clone();
        let state = self.hosts[h].state;
        if force {
            if role != self.spec.active_master_role {
                return err(
                    "ERROR: move_role --forced may be used for the active master role only!".into(),
                );
            }
            if !state.is_replication_problem() {
                return err(format!(
                    "ERROR: Can't force move of role to host with state {state}."
                ));
            }
        } else if role_spec.mode == RoleMode::Balanced {
            for e in self.table.owned_by(h) {
                if self.table.entries[e].role == r {
                    self.set_owner(e, None);
                }
            }
            log(
                out,
                Level::Info,
                format!("Admin removed balanced role '{role}' from host '{host}'"),
            );
            return ok(format!(
                "OK: Balanced role {role} has been removed from host '{host}'. Now you can wait some time and check new roles info!"
            ));
        } else if state != HostState::Online {
            return err(format!(
                "ERROR: Can't move role to host with state {state}."
            ));
        }
        if !self.spec.can_hold(r, h) {
            return err(format!(
                "ERROR: Host '{host}' can't handle role '{role}'. Only following hosts could: {}",
                role_spec.hosts.join(", ")
            ));
        }
        let Some(e) = self.table.first_entry(r) else {
            return err(format!("Error: Role {role} has no IP."));
        };
        let old = self.table.entries[e].owner;
        if old == Some(h) {
            return ok(format!(
                "OK: Role is on '{host}' already. Skipping command."
            ));
        }
        if !self.agent_reachable(h) {
            return err(format!(
                "ERROR: Can't reach agent daemon on '{host}'! Can't move roles there!"
            ));
        }
        let old_name = old
            .map(|o| self.host_name(o).to_string())
            .unwrap_or_default();
        if !force && self.mode == Mode::Active {
            if let (Some(o), Some(p)) = (old, role_spec.prefer.as_deref()) {
                if self.host_name(o) == p {
                    return err(format!(
                        "ERROR: Role '{role}' is assigned to preferred host '{p}'. Can't move it!"
                    ));
                }
            }
        }
        let inst = self.table.instance(&self.spec, e);
        self.set_owner(e, Some(h));
        if force {
            self.force_writer = Some(h);
            let why = format!("Admin moved the writer role to '{host}' enforcedly");
            self.set_state(h, HostState::Online, now, ("admin", &why), out);
            if let Some(o) = old {
                self.demote_forced_old_owner(o, now, out);
            }
            log(
                out,
                Level::Warn,
                format!("Admin moved role '{inst}' from '{old_name}' to '{host}' enforcedly"),
            );
            return ok(format!(
                "OK: Role '{role}' has been moved from '{old_name}' to '{host}' enforcedly. Now you can wait some time and check new roles info!"
            ));
        }
        log(
            out,
            Level::Info,
            format!("Admin moved role '{inst}' from '{old_name}' to '{host}'"),
        );
        ok(format!(
            "OK: Role '{role}' has been moved from '{old_name}' to '{host}'. Now you can wait some time and check new roles info!"
        ))
    }

    /// `move_role --force`: the old owner takes the replication state it is in; in ACTIVE mode
    /// it then loses its remaining roles.
    fn demote_forced_old_owner(&mut self, o: HostId, now: Millis, out: &mut Vec<Action>) {
        let rt = &self.hosts[o];
        let to = if rt.check(Check::RepThreads).failed() {
            Some(HostState::ReplicationFail)
        } else if rt.check(Check::RepBacklog).failed() {
            Some(HostState::ReplicationDelay)
        } else {
            None
        };
        if let Some(to) = to {
            let from = rt.state;
            let message = format!(
                "State of host '{}' changed from {from} to {to}",
                self.host_name(o)
            );
            if self.set_state(o, to, now, ("admin", &message), out) {
                log(out, Level::Warn, message);
            }
            if self.mode == Mode::Active {
                self.strip_roles(o, false, out);
            }
        }
    }

    fn cmd_set_ip(&mut self, ip: &str, host: &str, out: &mut Vec<Action>) -> Reply {
        if self.mode != Mode::Passive {
            return err("ERROR: This command is only allowed in passive mode".into());
        }
        let Some(e) = self.table.find_ip(ip) else {
            return err(format!("ERROR: Unknown ip '{ip}'!"));
        };
        let Some(h) = self.spec.host_id(host) else {
            return err(format!("ERROR: Unknown host name '{host}'!"));
        };
        let r = self.table.entries[e].role;
        let role_spec = &self.spec.roles[r.index()];
        if !self.spec.can_hold(r, h) {
            return err(format!(
                "ERROR: Host '{host}' can't handle role '{}'. Following hosts could: {}",
                role_spec.name,
                role_spec.hosts.join(", ")
            ));
        }
        let state = self.hosts[h].state;
        if state != HostState::Online {
            return err(format!(
                "ERROR: Host '{host}' is '{state}' at the moment. Can't move role with ip '{ip}' there."
            ));
        }
        let inst = self.table.instance(&self.spec, e);
        self.set_owner(e, Some(h));
        log(
            out,
            Level::Info,
            format!("Admin set role '{inst}' to host '{host}'"),
        );
        ok(format!("OK: Set role '{inst}' to host '{host}'."))
    }

    fn cmd_set_mode(&mut self, mode: Mode, out: &mut Vec<Action>) -> Reply {
        let from = self.mode;
        match mode {
            Mode::Active => {
                if from == Mode::Active {
                    return ok("OK: Already in active mode.".into());
                }
                self.mode = Mode::Active;
                self.passive_cause.clear();
                // Leaving PASSIVE or a manual mode: roles left on hosts that are not ONLINE go.
                self.cleanup_for_active(out);
                self.dirty = true;
                log(
                    out,
                    Level::Info,
                    format!("Admin switched from {} to ACTIVE mode", from.name()),
                );
                ok("OK: Switched into active mode.".into())
            }
            Mode::Manual => {
                // mmm quirk kept: WAIT counts as manual, so it is "already" manual.
                if from.is_manual() {
                    return ok("OK: Already in manual mode.".into());
                }
                self.mode = Mode::Manual;
                self.passive_cause.clear();
                self.dirty = true;
                log(
                    out,
                    Level::Info,
                    format!("Admin switched from {} to MANUAL mode", from.name()),
                );
                ok("OK: Switched into manual mode.".into())
            }
            Mode::Passive => {
                if from == Mode::Passive {
                    return ok("OK: Already in passive mode.".into());
                }
                self.mode = Mode::Passive;
                self.passive_cause = "Admin switched to passive mode.".into();
                log(
                    out,
                    Level::Warn,
                    format!("Admin switched from {} to PASSIVE mode", from.name()),
                );
                ok("OK: Switched into passive mode.".into())
            }
            Mode::Wait => err("ERROR: WAIT mode can only be configured, not switched into.".into()),
        }
    }
}
