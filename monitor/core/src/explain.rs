//! "If this role's owner failed now, who would get it, and why not the others?"
//! (`ha-control explain`).
//!
//! Answered by running a **copy of this core** through the failure — the owner's ping and mysql
//! checks fail for a trap period, as they would for a dead host — and reading the role table
//! afterwards. So the answer cannot disagree with what the core would do: the first successor
//! is the host the role table gives the role to; the next ones are who would get it if each
//! earlier successor failed as well. Everything else is said from the current state: why every
//! other host would not get the role, and what holds the whole role back (mode, the monitor's
//! own network, the old writer's lease).
//!
//! What the core cannot know is not predicted: a candidate that has not applied its relay log
//! in time, or has transactions the old master lacks, refuses the promotion on its agent
//! (`promotion_error`), and the next successor is tried (docs/product.md F6).

use crate::core::Core;
use crate::exposure::Bound;
use crate::failover::PROMOTION_RETRY;
use crate::ids::{EntryId, HostId, RoleId};
use crate::io::Input;
use crate::spec::{Check, CheckOutcome, HostState, Mode, RoleInstance, RoleMode};
use crate::time::Millis;

/// A host that would get the role, and why it comes at this place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub host: String,
    pub why: String,
}

/// A host that would not get the role, and the exact reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassedOver {
    pub host: String,
    pub why: String,
}

/// One role instance: its owner, who would follow it, who would not and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleExplanation {
    pub role: RoleInstance,
    pub owner: Option<String>,
    /// In order: the first gets the role if the owner failed now, the second if the first
    /// failed too, and so on. Empty: nobody would get it.
    pub successors: Vec<Successor>,
    /// Every other host (neither the owner nor a successor), in config order.
    pub passed_over: Vec<PassedOver>,
    /// What holds the whole role back, if anything.
    pub notes: Vec<String>,
}

impl Core {
    /// The explanation of every role instance, in config order.
    pub fn explain(&self, now: Millis) -> Vec<RoleExplanation> {
        self.table
            .entries
            .ids()
            .map(|e| self.explain_entry(e, now))
            .collect()
    }

    fn explain_entry(&self, e: EntryId, now: Millis) -> RoleExplanation {
        let r = self.table.entries[e].role;
        let owner = self.table.entries[e].owner;
        let mut what_if = self.clone();
        let mut at = now;
        let mut gone: Vec<HostId> = Vec::new();
        let mut successors = Vec::new();
        let mut failing = owner;
        while let Some(h) = failing {
            at = what_if.fail_host(h, at);
            gone.push(h);
            failing = what_if.table.entries[e].owner.filter(|n| !gone.contains(n));
            if let Some(n) = failing {
                successors.push(Successor {
                    host: self.host_name(n).to_string(),
                    why: self.why_chosen(r, n),
                });
            }
        }
        let passed_over = self
            .hosts
            .ids()
            .filter(|&h| Some(h) != owner && !gone.contains(&h))
            .map(|h| PassedOver {
                host: self.host_name(h).to_string(),
                why: self.why_not(r, h, now),
            })
            .collect();
        RoleExplanation {
            role: self.table.instance(&self.spec, e),
            owner: owner.map(|h| self.host_name(h).to_string()),
            successors,
            passed_over,
            notes: self.notes(e, owner, now),
        }
    }

    /// Feeds the copy a dead host `h` (ping and mysql failing from `at` for their trap periods)
    /// and steps it; returns the instant reached.
    fn fail_host(&mut self, h: HostId, at: Millis) -> Millis {
        let host = self.host_name(h).to_string();
        let dead = |host: &str| -> Vec<Input> {
            [Check::Ping, Check::Mysql]
                .into_iter()
                .map(|check| Input::CheckResult {
                    host: host.to_string(),
                    check,
                    outcome: CheckOutcome::Error,
                    message: "what-if: the host failed".into(),
                })
                .collect()
        };
        self.step(dead(&host), at);
        let trap = self
            .spec
            .trap_periods
            .get(Check::Ping)
            .max(self.spec.trap_periods.get(Check::Mysql));
        let later = at.plus(trap).plus(std::time::Duration::from_millis(1));
        self.step(dead(&host), later);
        later
    }

    fn why_chosen(&self, r: RoleId, h: HostId) -> String {
        let role = self.spec.role(r);
        let preferred = role.is_some_and(|role| {
            role.mode == RoleMode::Exclusive && role.prefer.as_deref() == Some(self.host_name(h))
        });
        if preferred {
            "ONLINE, agent reachable; the role's preferred host".into()
        } else {
            "ONLINE, agent reachable; fewest roles among the eligible hosts (ties: first in the role's hosts)".into()
        }
    }

    fn why_not(&self, r: RoleId, h: HostId, now: Millis) -> String {
        let rt = &self.hosts[h];
        if !self.spec.can_hold(r, h) {
            return "not in the role's hosts".into();
        }
        if rt.state != HostState::Online {
            let mut why = format!("{}: only ONLINE hosts get roles", rt.state);
            if rt.flap.flapping {
                why.push_str(" (flapping: set_online it when it is stable)");
            }
            return why;
        }
        if rt.agent_down {
            return "its agent is not reachable".into();
        }
        if Some(r) == self.spec.writer_role() {
            if let Some((old, _)) = self.async_fallback().filter(|_| self.failover_refused(h)) {
                return format!(
                    "{old} had fallen back to asynchronous replication: no automatic failover (refuse_failover_after_async); move_role writer {} moves it anyway",
                    self.host_name(h)
                );
            }
            if let Some(at) = rt.promotion_failed_at {
                if !now.reached(at, PROMOTION_RETRY) {
                    let left = PROMOTION_RETRY.saturating_sub(now.since(at));
                    return format!(
                        "refused a promotion {} s ago (see its promotion error in show); tried again in {} s",
                        now.since(at).as_secs(),
                        left.as_secs().max(1)
                    );
                }
            }
        }
        match self.mode {
            Mode::Active => "eligible, but not chosen (see the notes)".into(),
            m => format!("mode {}: no automatic role moves", m.name()),
        }
    }

    fn notes(&self, e: EntryId, owner: Option<HostId>, now: Millis) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.network_up {
            notes.push(
                "the monitor considers itself cut off (no ping_ips answer): it changes no roles"
                    .to_string(),
            );
        }
        match self.mode {
            Mode::Active => {}
            Mode::Passive => notes.push(
                "mode PASSIVE: the monitor changes no roles and sends nothing (set_active)".into(),
            ),
            m => notes.push(format!(
                "mode {}: roles stay on failed hosts; move them with move_role (or set_active)",
                m.name()
            )),
        }
        if let (true, Some(o)) = (self.table.is_writer(e), owner) {
            let name = self.host_name(o);
            match self.hosts[o].exposure.bound() {
                Some(Bound::Until(t)) if t > now => notes.push(format!(
                    "the new writer becomes writable only once {name} surely cannot write: at most {:.1} s from now (its writer lease and fence budget), earlier if it confirms its demotion or is killed",
                    t.since(now).as_secs_f64()
                )),
                Some(Bound::Unbounded) => notes.push(format!(
                    "the new writer becomes writable only once {name} confirms its demotion or is killed (no writer lease bounds it)"
                )),
                _ => {}
            }
        }
        notes
    }
}
