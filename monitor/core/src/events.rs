//! Structured events for the history, hooks and metrics ([`Action::Event`]).
//!
//! Changes of state that the core can see as a difference — role owners, the confirmed writer,
//! the mode, the network, the asynchronous fallback — are found by comparing a [`Digest`] taken
//! before a step with the state after it, so no code path that moves a role can forget to
//! record it. Host state changes are recorded by the state setter itself (it knows the rule);
//! failed and refused promotions and fencing where they are decided.

use crate::core::Core;
use crate::ids::{EntryId, HostId, IdVec};
use crate::io::{Action, Event, EventKind};
use crate::spec::{HostState, Mode};
use crate::time::Millis;

/// What the events compare: taken before a step by [`Core::digest`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Digest {
    owners: IdVec<EntryId, Option<HostId>>,
    states: IdVec<HostId, HostState>,
    confirmed_writer: Option<HostId>,
    mode: Mode,
    network_up: bool,
    async_fallback: Option<HostId>,
}

impl Core {
    pub(crate) fn digest(&self) -> Digest {
        Digest {
            owners: self.table.entries.iter().map(|e| e.owner).collect(),
            states: self.hosts.iter().map(|rt| rt.state).collect(),
            confirmed_writer: self.confirmed_writer,
            mode: self.mode,
            network_up: self.network_up,
            async_fallback: self.async_fallback.map(|f| f.host),
        }
    }

    fn name_of(&self, h: Option<HostId>) -> Option<String> {
        h.map(|h| self.host_name(h).to_string())
    }

    /// Emits one event per difference between `before` and now.
    pub(crate) fn record_changes(&mut self, before: &Digest, now: Millis, out: &mut Vec<Action>) {
        if before.network_up != self.network_up {
            let to = if self.network_up {
                "reachable"
            } else {
                "unreachable"
            };
            let event = Event::new(EventKind::NetworkChange, format!("Network is {to}"))
                .from_to(None, Some(to.to_string()));
            out.push(Action::Event(event));
        }
        if before.mode != self.mode {
            let (from, to) = (before.mode.name(), self.mode.name());
            let event = Event::new(
                EventKind::ModeChange,
                format!("Mode changed from {from} to {to}"),
            )
            .from_to(Some(from.to_string()), Some(to.to_string()));
            out.push(Action::Event(event));
        }
        self.record_role_moves(before, now, out);
        // Only a promotion this core started is done: a writer re-confirmed after a monitor
        // restart was promoted before it.
        if self.confirmed_writer != before.confirmed_writer && self.writer_since.is_some() {
            if let Some(w) = self.confirmed_writer {
                let name = self.host_name(w).to_string();
                let mut event = Event::new(
                    EventKind::PromotionDone,
                    format!(
                        "Host '{name}' is the active master now (writable, epoch {})",
                        self.epoch
                    ),
                )
                .host(&name);
                if let Some((since, cause)) = self.writer_since.take() {
                    event.duration_ms = Some(now.since(since).as_millis() as u64);
                    event.cause = Some(cause.to_string());
                }
                out.push(Action::Event(event));
            }
        }
        let fallback = self.async_fallback.map(|f| f.host);
        if fallback != before.async_fallback {
            if let Some(h) = before.async_fallback {
                let name = self.host_name(h).to_string();
                let event = Event::new(
                    EventKind::AsyncFallbackEnded,
                    format!("The asynchronous fallback of '{name}' ended"),
                )
                .host(&name);
                out.push(Action::Event(event));
            }
            if let Some(h) = fallback {
                let name = self.host_name(h).to_string();
                let event = Event::new(
                    EventKind::AsyncFallbackStarted,
                    format!("Semi-sync replication on the active master '{name}' fell back to asynchronous replication"),
                )
                .host(&name);
                out.push(Action::Event(event));
            }
        }
    }

    fn record_role_moves(&mut self, before: &Digest, now: Millis, out: &mut Vec<Action>) {
        for e in self.table.entries.ids() {
            let (old, new) = (
                before.owners.get(e).copied().flatten(),
                self.table.entries[e].owner,
            );
            if old == new {
                continue;
            }
            let inst = self.table.instance(&self.spec, e).to_string();
            let (from, to) = (self.name_of(old), self.name_of(new));
            let message = match (&from, &to) {
                (Some(f), Some(t)) => format!("Role '{inst}' moved from '{f}' to '{t}'"),
                (Some(f), None) => format!("Role '{inst}' taken from '{f}' (orphaned)"),
                (None, Some(t)) => format!("Role '{inst}' given to '{t}'"),
                (None, None) => continue,
            };
            let mut event =
                Event::new(EventKind::RoleMove, message).from_to(from.clone(), to.clone());
            // The host the role went to, or left when orphaned (hooks' HA_HOST).
            event.host = to.clone().or_else(|| from.clone());
            event.role = Some(inst.clone());
            out.push(Action::Event(event));
            if !self.table.is_writer(e) {
                continue;
            }
            self.writer_since = None;
            let Some(t) = &to else { continue };
            // A switchover moves the role away from a host that is still ONLINE (move_role);
            // every other new writer replaces a failed or absent one.
            let switchover = old.is_some_and(|o| {
                before.states.get(o) == Some(&HostState::Online)
                    && self.hosts[o].state == HostState::Online
            });
            let cause = if switchover { "switchover" } else { "failover" };
            self.writer_since = Some((now, cause));
            let mut event = Event::new(
                EventKind::PromotionStarted,
                format!("Promoting '{t}' to '{inst}' ({cause})"),
            )
            .host(t)
            .from_to(from, to.clone());
            event.role = Some(inst);
            event.cause = Some(cause.to_string());
            out.push(Action::Event(event));
        }
    }
}
