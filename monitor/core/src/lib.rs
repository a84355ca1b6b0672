//! # ha-core — the monitor's pure decision core
//!
//! Every decision of ha-monitor lives here: host state machine (docs/mmm-behaviour.md §2), trap logic
//! (§3.4), flap detection (§3A), role table and distribution (§4), modes (§6.3), operator
//! commands with mysql-mmm's reply texts (§6.2), startup voting (§7.4) and the failover /
//! switchover plan with writer leases (docs/product.md F6, F7, F9, F10). No sockets, no clock reads,
//! no sleeps, no randomness: the daemon feeds observations and executes actions, so identical
//! inputs always give identical outputs.
//!
//! ## API
//!
//! ```text
//! Core::new(spec: ClusterSpec) -> Core                        // fresh cluster (tests, simulations)
//! Core::startup(spec, stored: Option<&PersistedState>, Vec<StartupHostInfo>, now) -> (Core, Vec<Action>)
//! Core::restore(spec, &PersistedState, now) -> Core           // continue from the status file
//! core.step(Vec<Input>, now: Millis) -> Vec<Action>           // one main-loop pass
//! core.desired_state(host, now) -> Option<DesiredState>       // None: send nothing (PASSIVE, isolated)
//! core.note_sent(host, &DesiredState, now)                    // call when sending ApplyState
//! // views
//! core.mode() / passive_cause() / network_up() / epoch() / spec()
//! core.hosts() -> Vec<HostView> / host(name) / state(name) / agent_down(name) / flapping(name)
//! core.check_status(host, Check) -> Option<CheckView>
//! core.role_owner(role, ip) / role_table() / active_master() / confirmed_writer()
//! core.persisted() -> PersistedState / show_text() -> String  // `show`, exactly mmm's format
//! ```
//!
//! ## Daemon contract
//!
//! * `now` is monotonic milliseconds (ms since the UNIX epoch from a monotonic-adjusted source).
//! * Per pass: `step` with everything observed since the last pass, execute `Kill`/`Reply`/
//!   `Log`/`SaveStatus`, then for every host `desired_state` → `note_sent` → send `ApplyState`.
//! * At most one agent call in flight per host, and its reply (`Input::AgentReport`) is fed to
//!   `step` before the next `note_sent` for that host: remove-before-add and the writer gate
//!   rely on replies describing the agent *after* the latest send.
//! * `DesiredState.active_master == None` means "leave replication as it is": replicas are only
//!   re-pointed once the new writer confirmed it is synced and writable (F7).
//! * An agent must report `promotion_error` when the most recent apply (at its `epoch`) included
//!   the writer role and it refused to become writable; the core then orphans the writer role and
//!   tries the next candidate (F6). A host that failed is retried after [`PROMOTION_RETRY`].
//!
//! ## Deliberate divergences from mysql-mmm (see module docs)
//!
//! Config order everywhere (F1); UNKNOWN at start is no failure and checks cannot get stuck
//! failed (F11); PASSIVE evaluates host states for display but changes no roles, sends nothing
//! and never kills; MANUAL/WAIT never kill (F3); while the monitor's own network is down nothing
//! changes, roles included (§10.25); `move_role` on orphaned roles and WAIT with one master do
//! not crash (F4); every agent failure is a failure (F12).

mod commands;
mod core;
mod epochs;
mod events;
mod explain;
mod exposure;
mod failover;
mod fallback;
pub mod flap;
mod ids;
mod io;
mod machine;
mod roles;
pub mod rules;
mod semisync;
mod spec;
mod standby;
mod startup;
mod time;
mod traps;
mod views;
mod vouched;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_commands;
#[cfg(test)]
mod tests_events;
#[cfg(test)]
mod tests_explain;
#[cfg(test)]
mod tests_failover;
#[cfg(test)]
mod tests_lease;
#[cfg(test)]
mod tests_machine;
#[cfg(test)]
mod tests_modes;
#[cfg(test)]
mod tests_semisync;
#[cfg(test)]
mod tests_startup;
#[cfg(test)]
mod tests_vouched;

pub use crate::core::Core;
pub use explain::{PassedOver, RoleExplanation, Successor};
pub use failover::PROMOTION_RETRY;
pub use ha_lease::LeaseToken;
pub use io::*;
pub use rules::{Rule, PEER_GRACE, SHORT_OUTAGE_SECS};
pub use spec::*;
pub use standby::{acting_window, LeaderState, Tenure, TenureNote, Verdict};
pub use time::Millis;
pub use views::{CheckView, HostView};
