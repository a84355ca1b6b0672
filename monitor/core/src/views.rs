//! Read-only views for `show`, `checks`, `mode` and the status file.

use crate::core::Core;
use crate::ids::{HostId, Id};
use crate::io::{PersistedHost, PersistedState};
use crate::spec::{Check, HostMode, HostState, Mode, RoleInstance};
use crate::time::Millis;

/// One host as `show` presents it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostView {
    pub name: String,
    pub ip: String,
    pub mode: HostMode,
    pub state: HostState,
    /// Roles in the role table, sorted.
    pub roles: Vec<RoleInstance>,
    pub agent_down: bool,
    pub flapping: bool,
    pub last_state_change: Millis,
    pub online_since: Option<Millis>,
    /// Latest agent-reported uptime (seconds).
    pub uptime: f64,
    /// Held by rule O0: unreachable from the monitor, reachable from these writer candidates.
    pub reachable_from: Vec<String>,
}

/// Recorded status of one check (what `checks` prints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckView {
    /// `Some(true)` ok, `Some(false)` failed, `None` no OK/ERROR result yet (F11).
    pub ok: Option<bool>,
    /// When the status last changed (`None` while it was never established).
    pub last_change: Option<Millis>,
    pub message: String,
}

impl Core {
    pub fn spec(&self) -> &crate::ClusterSpec {
        &self.spec
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Why the monitor is in PASSIVE mode (may span several lines); empty otherwise.
    pub fn passive_cause(&self) -> &str {
        &self.passive_cause
    }

    /// The monitor's own network is considered reachable.
    pub fn network_up(&self) -> bool {
        self.network_up
    }

    /// Highest epoch handed out so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// All hosts in config order.
    pub fn hosts(&self) -> Vec<HostView> {
        self.hosts.ids().map(|h| self.host_view(h)).collect()
    }

    pub fn host(&self, name: &str) -> Option<HostView> {
        self.spec.host_id(name).map(|h| self.host_view(h))
    }

    fn host_view(&self, h: HostId) -> HostView {
        let (spec, rt) = (&self.spec.hosts[h.index()], &self.hosts[h]);
        HostView {
            name: spec.name.clone(),
            ip: spec.ip.clone(),
            mode: spec.mode,
            state: rt.state,
            roles: self.table.roles_of(&self.spec, h),
            agent_down: rt.agent_down,
            flapping: rt.flap.flapping,
            last_state_change: rt.last_state_change,
            online_since: rt.online_since,
            uptime: rt.uptime,
            reachable_from: if rt.held_by_peers {
                self.vouched_by(h, self.now)
            } else {
                Vec::new()
            },
        }
    }

    pub fn state(&self, host: &str) -> Option<HostState> {
        self.spec.host_id(host).map(|h| self.hosts[h].state)
    }

    pub fn agent_down(&self, host: &str) -> bool {
        self.spec
            .host_id(host)
            .is_some_and(|h| self.hosts[h].agent_down)
    }

    pub fn flapping(&self, host: &str) -> bool {
        self.spec
            .host_id(host)
            .is_some_and(|h| self.hosts[h].flap.flapping)
    }

    /// What the host's agent reported last (`None`: no reply yet).
    pub fn agent_facts(&self, host: &str) -> Option<&crate::AgentFacts> {
        let h = self.spec.host_id(host)?;
        self.hosts.get(h)?.facts.as_ref()
    }

    pub fn check_status(&self, host: &str, check: Check) -> Option<CheckView> {
        let t = self.hosts.get(self.spec.host_id(host)?)?.check(check);
        Some(CheckView {
            ok: t.recorded,
            last_change: t.last_change,
            message: t.message.clone(),
        })
    }

    /// Owner of `role(ip)` in the role table.
    pub fn role_owner(&self, role: &str, ip: &str) -> Option<&str> {
        let e = self.table.find(&self.spec, role, ip)?;
        self.table.entries[e].owner.map(|h| self.host_name(h))
    }

    /// The whole role table in config order: each role instance and its owner.
    pub fn role_table(&self) -> Vec<(RoleInstance, Option<String>)> {
        self.table
            .entries
            .ids()
            .map(|e| {
                let owner = self.table.entries[e]
                    .owner
                    .map(|h| self.host_name(h).to_string());
                (self.table.instance(&self.spec, e), owner)
            })
            .collect()
    }

    /// Owner of the active master role in the table (it may not be writable yet).
    pub fn active_master(&self) -> Option<&str> {
        self.table.active_master().map(|h| self.host_name(h))
    }

    /// The writer that confirmed it is synced and writable at the current epoch.
    pub fn confirmed_writer(&self) -> Option<&str> {
        self.confirmed_writer.map(|h| self.host_name(h))
    }

    /// The status file content. The owner of the writer role is recorded as possibly writable
    /// even before it is granted: the grant is only sent once this is saved (write-ahead).
    pub fn persisted(&self) -> PersistedState {
        let writer = self.table.active_master();
        PersistedState {
            epoch: self.epoch,
            hosts: self
                .hosts
                .ids()
                .map(|h| {
                    let rt = &self.hosts[h];
                    PersistedHost {
                        name: self.host_name(h).to_string(),
                        state: rt.state,
                        roles: self.table.roles_of(&self.spec, h),
                        flap: rt.flap.clone(),
                        last_state_change: Some(rt.last_state_change),
                        last_uptime: rt.last_uptime,
                        promotion_failed_at: rt.promotion_failed_at,
                        exposure: Some(rt.exposure.persisted(writer == Some(h), self.now)),
                    }
                })
                .collect(),
            confirmed_writer: self.confirmed_writer.map(|w| self.host_name(w).to_string()),
        }
    }

    /// `show` exactly as mmm prints it (docs/mmm-behaviour.md §6.2), hosts sorted by name.
    pub fn show_text(&self) -> String {
        let mut lines = Vec::new();
        if self.mode == Mode::Passive {
            lines.push("# --- Monitor is in PASSIVE MODE ---".to_string());
            let cause = format!("Cause: {}", self.passive_cause);
            lines.extend(cause.lines().map(|l| format!("# {l}")));
        }
        let mut order: Vec<HostId> = self.hosts.ids().collect();
        order.sort_by(|&a, &b| self.host_name(a).cmp(self.host_name(b)));
        for &h in &order {
            if let Some(line) = self.held_line(h, self.now) {
                lines.push(line);
            }
            if self.hosts[h].agent_down {
                lines.push(format!(
                    "# Warning: agent on host {} is not reachable",
                    self.host_name(h)
                ));
            }
        }
        for &h in &order {
            let v = self.host_view(h);
            let roles: Vec<String> = v.roles.iter().map(|r| r.to_string()).collect();
            lines.push(format!(
                "  {}({}) {}/{}. Roles: {}",
                v.name,
                v.ip,
                v.mode.name(),
                v.state,
                roles.join(", ")
            ));
        }
        for role in &self.spec.roles {
            let (Some(p), Some(ip)) = (&role.prefer, role.ips.first()) else {
                continue;
            };
            let line = match self.role_owner(&role.name, ip) {
                Some(o) if o == p => format!("# Role {} is assigned to it's preferred host {p}.", role.name),
                Some(o) => format!(
                    "# Role {} has {p} configured as it's preferred host but is assigned to {o} at the moment.",
                    role.name
                ),
                None => format!("# Role {} has {p} configured as it's preferred host.", role.name),
            };
            lines.push(line);
        }
        lines.join("\n")
    }
}
