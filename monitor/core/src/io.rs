//! What goes into the core ([`Input`]) and what comes out ([`Action`], [`DesiredState`]).
//!
//! The daemon turns the world into inputs (check results, agent replies, kill results, operator
//! commands) and executes the actions; it holds no policy of its own.

use crate::spec::{Check, CheckOutcome, HostState, Mode, RoleInstance};
use crate::time::Millis;
use ha_lease::LeaseToken;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One observation fed to [`crate::Core::step`].
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Raw result of one check run; the core applies the trap logic (§3.4, F11).
    CheckResult {
        host: String,
        check: Check,
        outcome: CheckOutcome,
        message: String,
    },
    /// Result of the `ping_ips` network self-check (§3.7). While unreachable nothing changes.
    Network { reachable: bool },
    /// Result of the last call to that host's agent. The daemon must feed a reply to `step`
    /// before it calls `note_sent` for the next send to the same host (one call in flight per
    /// host), so a report is never older than the latest recorded send.
    AgentReport { host: String, report: AgentReport },
    /// Outcome of a [`Action::Kill`].
    KillResult {
        host: String,
        ok: bool,
        output: String,
    },
    /// An operator command from ha-control; answered by exactly one [`Action::Reply`].
    Command { id: u64, command: AdminCommand },
}

/// Result of one agent call.
// One report per agent call, moved once into the core: boxing the common variant would cost an
// allocation per reply to save stack space nobody holds on to.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum AgentReport {
    /// Timeout, connect error, TLS error, RPC error: every failure is a failure (F12).
    Unreachable { error: String },
    /// What the agent holds and what the host looks like after the call.
    Status(AgentFacts),
    /// The agent refused the request because it already applied a higher epoch, `held` (a
    /// monitor restarted from an old status file, or another monitor). The core continues above
    /// it when the value is plausible (crate ha-lease, `plausible_epoch`).
    StaleEpoch { held: u64 },
}

/// What an agent reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentFacts {
    /// System uptime of the DB host (seconds), for the "was it restarted?" rule A3.
    pub uptime_secs: f64,
    /// Highest epoch the agent applied.
    pub epoch: u64,
    /// Roles the agent holds (successfully applied).
    pub roles: Vec<RoleInstance>,
    /// `@@read_only` of the local MySQL as the agent read it (meaningless when `mysql_down`).
    pub read_only: bool,
    /// The agent could not reach its local MySQL.
    pub mysql_down: bool,
    /// Managed role IPs present on the host's cluster interface.
    pub ips_present: Vec<String>,
    /// The writer role passed the relay-log sync gate and the host is writable.
    pub writer_synced: bool,
    /// Set when the most recent apply (at `epoch`) included the writer role and the agent
    /// refused to become writable (relay-log sync failed or timed out, F6).
    pub promotion_error: Option<String>,
    /// Host the local MySQL replicates from, if any.
    pub replicating_from: Option<String>,
    pub io_running: bool,
    pub sql_running: bool,
    /// The agent's lease clock read while it built the reply; echoed in writer grants.
    pub lease_token: Option<LeaseToken>,
    /// How long the agent's fencing may take; the monitor's lease bound includes it.
    pub fence_budget: Duration,
    /// The agent's writer lease has this long left until it starts fencing (`None`: no lease
    /// running). Read together with `lease_token`.
    pub lease_remaining: Option<Duration>,
    /// The master side of semi-sync replication on the host (`None`: not loaded or unknown).
    #[serde(default)]
    pub semi_sync: Option<SemiSyncFacts>,
    /// The latest peer promise this host's agent gave on this boot: to which writer, and how
    /// long before the reply (ARCHITECTURE.md "Peer promises").
    #[serde(default)]
    pub promise_given: Option<(String, Duration)>,
    /// The writer grant is refused because of a peer promise (`promotion_error` says which),
    /// for at most this long: the monitor waits instead of trying the next candidate.
    #[serde(default)]
    pub refused_for_promise: Option<Duration>,
}

/// The master (source) side of semi-sync replication as a host's agent reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemiSyncFacts {
    /// Configured on (`rpl_semi_sync_master_enabled`).
    pub enabled: bool,
    /// Waiting for acknowledgements now (`Rpl_semi_sync_master_status`); `false` with
    /// `enabled`: fallen back to asynchronous replication.
    pub active: bool,
}

impl AgentFacts {
    /// Whether nothing can write on this host: the server says read_only=1, or the server is
    /// down while the agent holds neither the writer role nor the writer IP. In the second case
    /// the agent, which converges continuously, re-asserts read_only=1 as soon as the server is
    /// back (and the documented my.cnf starts it read-only); without this a stopped mysqld on
    /// the writer would delay every failover by a whole writer lease.
    pub fn cannot_write(&self, holds_writer_role: bool, writer_ip: Option<&str>) -> bool {
        if self.mysql_down {
            !holds_writer_role
                && !writer_ip.is_some_and(|ip| self.ips_present.iter().any(|p| p == ip))
        } else {
            self.read_only
        }
    }
}

/// Operator commands that change something (the read-only ones are served from the views).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminCommand {
    Ping,
    SetOnline(String),
    SetOffline(String),
    MoveRole {
        role: String,
        host: String,
        force: bool,
    },
    SetIp {
        ip: String,
        host: String,
    },
    /// `set_active`, `set_manual`, `set_passive` (WAIT can only be configured).
    SetMode(Mode),
}

pub(crate) fn log(out: &mut Vec<Action>, level: Level, message: String) {
    out.push(Action::Log { level, message });
}

/// Log severity. mmm logs every operator-relevant event as FATAL; ha grades them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Something the daemon must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reply to command `id` with mysql-mmm's exact text (§6.2).
    Reply { id: u64, ok: bool, message: String },
    /// Run `kill_host_bin <host> <ping_ok 0|1>` and report a [`Input::KillResult`]. Only emitted
    /// in ACTIVE mode (F3) and never while the monitor's own network is down.
    Kill { host: String, ping_ok: bool },
    /// One line per decision, with its reason.
    Log { level: Level, message: String },
    /// The persisted state changed: write the status file (atomically).
    SaveStatus,
    /// A decision, in structured form, for the history, hooks and metrics. Always emitted next
    /// to the [`Action::Log`] line that explains it; the daemon never acts on it otherwise.
    Event(Event),
}

/// What kind of decision an [`Event`] records. Its `snake_case` name is the history's and the
/// hooks' spelling (`HA_EVENT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A host changed state (`from`, `to`, `rule`).
    StateChange,
    /// A role instance got another owner, or none (`role`, `from`, `to`).
    RoleMove,
    /// The writer role was given to `host` (`from`: the previous writer; `cause`: failover or
    /// switchover).
    PromotionStarted,
    /// `host` confirmed it is the writable active master (`duration_ms` since the start).
    PromotionDone,
    /// `host` refused to become writable; the role is tried elsewhere.
    PromotionFailed,
    /// The orphaned writer role is not given to anyone (`message` says why).
    PromotionRefused,
    /// `kill_host_bin` runs for `host`.
    FenceStarted,
    FenceDone,
    FenceFailed,
    /// The monitor's mode changed (`from`, `to`).
    ModeChange,
    /// The monitor's own network check changed (`to`: reachable or unreachable).
    NetworkChange,
    /// Semi-sync on the active master `host` fell back to asynchronous replication.
    AsyncFallbackStarted,
    /// `host` is semi-sync again, or no longer the active master.
    AsyncFallbackEnded,
    /// An operator command and its answer (recorded by the daemon, which knows the operator).
    AdminCommand,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::StateChange,
        EventKind::RoleMove,
        EventKind::PromotionStarted,
        EventKind::PromotionDone,
        EventKind::PromotionFailed,
        EventKind::PromotionRefused,
        EventKind::FenceStarted,
        EventKind::FenceDone,
        EventKind::FenceFailed,
        EventKind::ModeChange,
        EventKind::NetworkChange,
        EventKind::AsyncFallbackStarted,
        EventKind::AsyncFallbackEnded,
        EventKind::AdminCommand,
    ];

    /// The `snake_case` name (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::StateChange => "state_change",
            EventKind::RoleMove => "role_move",
            EventKind::PromotionStarted => "promotion_started",
            EventKind::PromotionDone => "promotion_done",
            EventKind::PromotionFailed => "promotion_failed",
            EventKind::PromotionRefused => "promotion_refused",
            EventKind::FenceStarted => "fence_started",
            EventKind::FenceDone => "fence_done",
            EventKind::FenceFailed => "fence_failed",
            EventKind::ModeChange => "mode_change",
            EventKind::NetworkChange => "network_change",
            EventKind::AsyncFallbackStarted => "async_fallback_started",
            EventKind::AsyncFallbackEnded => "async_fallback_ended",
            EventKind::AdminCommand => "admin_command",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One decision with the facts it used. Fields that do not apply to a kind are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Role instance, `name(ip)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The state machine rule of a state change (`O5`, ...), or `admin` / `startup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `failover` or `switchover` for promotions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The log line's text: what happened and why.
    pub message: String,
}

impl Event {
    pub fn new(kind: EventKind, message: String) -> Event {
        Event {
            kind,
            host: None,
            role: None,
            from: None,
            to: None,
            rule: None,
            cause: None,
            duration_ms: None,
            message,
        }
    }

    pub fn host(mut self, host: &str) -> Event {
        self.host = Some(host.to_string());
        self
    }

    pub fn from_to(mut self, from: Option<String>, to: Option<String>) -> Event {
        self.from = from;
        self.to = to;
        self
    }
}

/// Logs `message` and records it as an event of `kind` about `host`.
pub(crate) fn log_event(out: &mut Vec<Action>, level: Level, event: Event) {
    out.push(Action::Log {
        level,
        message: event.message.clone(),
    });
    out.push(Action::Event(event));
}

/// What one agent should converge to now (the content of an `ApplyState` request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    pub state: HostState,
    /// Roles to hold, sorted by name then IP; nothing else.
    pub roles: Vec<RoleInstance>,
    /// The active master replicas must replicate from. `None` means "leave replication as it
    /// is": it is only named once the new writer confirmed it is synced and writable (F7).
    pub active_master: Option<String>,
    pub epoch: u64,
    /// Writer lease, counted by the agent from `lease_token` (zero = no lease).
    pub writer_lease: Duration,
    /// Promote even if the relay-log sync fails (`move_role --force`).
    pub force: bool,
    /// The newest lease token received from this host's agent (`None`: none yet). It changes
    /// with every reply, so it is not part of what the host is asked to converge to.
    pub lease_token: Option<LeaseToken>,
    /// With the writer role: every other host eligible for it, in config order. The writer
    /// keeps its lease without the monitor only while all of them promise not to take the role
    /// (ARCHITECTURE.md "Peer promises"); all of them, reachable or not, so that no host the
    /// monitor could promote is left out.
    pub writer_peers: Vec<String>,
}

impl DesiredState {
    /// Whether this must be sent now although the host was sent `last` less than an agent
    /// period ago: the target changed, or the last send could carry no lease token and this one
    /// can (the agent grants no writer lease without one; the first reply brings it).
    pub fn needs_send(&self, last: Option<&DesiredState>) -> bool {
        let Some(last) = last else { return true };
        let target_changed = DesiredState {
            lease_token: None,
            ..self.clone()
        } != DesiredState {
            lease_token: None,
            ..last.clone()
        };
        target_changed || (last.lease_token.is_none() && self.lease_token.is_some())
    }
}

/// What the system of one host looks like at startup (`GetSystemStatus`, §7.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFacts {
    /// `@@read_only = 0`.
    pub writable: bool,
    /// Managed IPs actually present on the cluster interface.
    pub ips_present: Vec<String>,
    /// Host name the local MySQL replicates from.
    pub master: Option<String>,
}

/// What the agent and the system of one host reported when the monitor starts (§7.3). The
/// status file's part ("stored") is passed to [`crate::Core::startup`] as a [`PersistedState`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StartupHostInfo {
    pub host: String,
    /// State and roles the agent remembers (`None`: agent not reachable).
    pub agent: Option<(HostState, Vec<RoleInstance>)>,
    /// Highest epoch the agent applied, if it answered.
    pub agent_epoch: Option<u64>,
    /// What the host's system looks like (`None`: unknown).
    pub system: Option<SystemFacts>,
    /// The agent's full report (lease token, running lease, fence budget), if it answered.
    pub facts: Option<AgentFacts>,
}

/// Whether a host may be writable, as the status file records it (see `exposure.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedExposure {
    /// `Some(false)`: it cannot write; `Some(true)`: it may (or is about to be granted the
    /// writer role); `None`: unknown. A restarted monitor treats `Some(true)` and `None` as
    /// exposed until restart + lease + fence budget.
    pub may_write: Option<bool>,
    /// The bound at the time of saving, on the saving monitor's clock (for operators; a restart
    /// does not rely on it, its clock is another one).
    pub until: Option<Millis>,
    /// The agent's fence budget as last reported.
    pub fence_budget_ms: Option<u64>,
    /// How long the bound still had to run when the file was written. A restarted monitor
    /// keeps the host exposed at least that long from its own start (widened for drift): an
    /// exposure longer than one lease, such as an agent that may be adopting a writable server,
    /// survives the restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    /// The exposure had no bound (no lease, or an agent reported the writer role it was never
    /// sent): only a confirmation or a kill ends it, before and after a restart.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unbounded: bool,
}

/// Persisted part of one host: everything the core needs to continue after a restart as if it
/// had not stopped (state timers, the uptime of rule A3, flapping, writer exposure).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedHost {
    pub name: String,
    pub state: HostState,
    /// Roles of the host in the role table, sorted.
    pub roles: Vec<RoleInstance>,
    pub flap: crate::flap::Flap,
    /// When the state last changed (`None` in files of older versions: the restart time).
    #[serde(default)]
    pub last_state_change: Option<Millis>,
    /// Uptime the agent reported while the host was ONLINE (rule A3), 0 = unknown.
    #[serde(default)]
    pub last_uptime: f64,
    /// A failed promotion (F6) at this instant keeps it from being retried at once.
    #[serde(default)]
    pub promotion_failed_at: Option<Millis>,
    /// `None` in files of older versions: unknown.
    #[serde(default)]
    pub exposure: Option<PersistedExposure>,
}

/// What survives a monitor restart (the status file). Hosts in config order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedState {
    /// Highest epoch ever handed out; a restarted monitor continues above it.
    pub epoch: u64,
    pub hosts: Vec<PersistedHost>,
    /// The writer role's owner had confirmed it is synced and writable in its current tenure
    /// (no other host has had the role since). A restarted monitor continues that tenure: a
    /// renewed grant to it does not depend on its relay-log gate (`None` in older files).
    #[serde(default)]
    pub confirmed_writer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(read_only: bool, mysql_down: bool, ips: &[&str]) -> AgentFacts {
        AgentFacts {
            read_only,
            mysql_down,
            ips_present: ips.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reachable_server_decides_by_read_only() {
        assert!(facts(true, false, &[]).cannot_write(false, Some("10.0.0.1")));
        assert!(!facts(false, false, &[]).cannot_write(false, Some("10.0.0.1")));
    }

    #[test]
    fn server_down_cannot_write_unless_writer_role_or_ip_remains() {
        assert!(facts(false, true, &["10.0.0.2"]).cannot_write(false, Some("10.0.0.1")));
        assert!(!facts(false, true, &[]).cannot_write(true, Some("10.0.0.1")));
        assert!(!facts(false, true, &["10.0.0.1"]).cannot_write(false, Some("10.0.0.1")));
    }
}
