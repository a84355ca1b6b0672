//! Writer exposure: the monitor's side of the writer lease (docs/product.md F9), one owner for it.
//!
//! For every host the core knows whether the host **may still be writable or hold the writer
//! IP**, and until when on the monitor's own clock (its [`Bound`]). A new writer is only made
//! writable when no other host may still write ([`Exposure::may_write`] is false for all of
//! them), so this is what I1 ("never two writers") rests on. The arithmetic is crate
//! `ha-lease`'s; the rules for moving the bound are here:
//!
//! * **Grant** ([`Exposure::on_sent`]): a desired state with the writer role echoes the newest
//!   lease token the host's agent sent. The bound becomes at least *receipt of that token plus
//!   lease plus the agent's fence budget*. A send the agent never acknowledges extends nothing
//!   beyond the last acknowledgement, so a silent writer is released at *last acknowledgement
//!   plus lease plus budget*.
//! * **Report** ([`Exposure::on_status`]): an agent that reports a running lease keeps the host
//!   exposed at least until that lease surely ended; one that reports the writer role we did not
//!   send is exposed without bound. The flag is cleared only by a reply to a request *without*
//!   the writer role, with no lease running and the server unable to write: a reply sent during
//!   a promotion (`converged=false`, read_only=1 so far) never clears it.
//! * **Kill**: a successful `kill_host_bin` clears it.
//! * **Restart** ([`Exposure::restored`]): what the status file recorded; a host that may have
//!   been writable (or unknown) is exposed until *restart + lease + budget*: whatever the previous
//!   monitor granted was echoed before it stopped, hence before this restart. Without a status
//!   file, a host whose agent does not answer is exposed for the adoption window longer
//!   ([`Exposure::expose_unanswered`]): its agent may be adopting a writable server.
//!
//! The fencing of hosts whose roles were stripped (mmm's "send status, kill on failure") is
//! tracked here too ([`Fence`]): a kill is the other way to end an exposure.
//!
//! * **Departure** ([`Exposure::writer_departed`]): when the writer role leaves a host, the host
//!   stays exposed, whatever its bound says, until its agent confirmed it cannot write or a kill
//!   ended (successfully or not). The bound assumes a live agent that fences itself; a host whose
//!   agent is dead (kill -9) keeps writing past it, so with `kill_host_bin` configured the new
//!   writer waits for the kill (chaos seed 494: a switchover away from such a host gave two
//!   writers for 8 s).

use crate::io::{AgentFacts, PersistedExposure};
use crate::time::{ms, Millis};
use ha_lease::{
    bound_from_remaining, monitor_bound, unanswered_bound, LeaseToken, MAX_FENCE_BUDGET_MS,
};
use std::time::Duration;

/// Until when a host may still be writable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// No lease (writer_lease = 0) or unknown origin: only a confirmation or a kill ends it.
    Unbounded,
    /// Surely fenced from this instant on.
    Until(Millis),
}

impl Bound {
    fn later(self, other: Bound) -> Bound {
        match (self, other) {
            (Bound::Until(a), Bound::Until(b)) => Bound::Until(a.max(b)),
            _ => Bound::Unbounded,
        }
    }
}

/// Progress of fencing a host whose roles were stripped.
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

/// The newest lease token an agent sent, with the monitor's receipt time.
#[derive(Clone, Debug, PartialEq)]
struct TokenSeen {
    token: LeaseToken,
    receipt: Millis,
    budget: Duration,
}

/// One host's writer exposure and fencing progress.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Exposure {
    /// `None`: cannot write (confirmed, killed, or never granted). `Some`: may write until.
    writable: Option<Bound>,
    fence: Fence,
    newest: Option<TokenSeen>,
    /// The request the next reply answers carried the writer role.
    sent_writer: bool,
    /// The agent's fence budget as last reported (kept for the status file).
    budget: Option<Duration>,
    /// The writer role left this host and neither a delivery nor a kill has ended that yet
    /// (only meaningful while `fence` is not [`Fence::Idle`]).
    departed: bool,
}

impl Default for Exposure {
    fn default() -> Self {
        Exposure {
            writable: None,
            fence: Fence::Idle,
            newest: None,
            sent_writer: false,
            budget: None,
            departed: false,
        }
    }
}

/// The budget to assume for an agent that never told us its own.
fn assumed_budget(known: Option<Duration>) -> Duration {
    known.unwrap_or(Duration::from_millis(MAX_FENCE_BUDGET_MS))
}

impl Exposure {
    /// Whether the host may still be writable or hold the writer IP at `now`.
    pub(crate) fn may_write(&self, now: Millis) -> bool {
        if self.departed && self.fence != Fence::Idle {
            return true;
        }
        match self.writable {
            None => false,
            Some(Bound::Unbounded) => true,
            Some(Bound::Until(t)) => now < t,
        }
    }

    /// Forgets a bound that has passed: the host is surely fenced. Returns whether it changed
    /// (the status file records exposures).
    pub(crate) fn expire(&mut self, now: Millis) -> bool {
        if matches!(self.writable, Some(Bound::Until(t)) if now >= t) {
            self.writable = None;
            return true;
        }
        false
    }

    /// The lease token to echo in the next grant.
    pub(crate) fn token(&self) -> Option<LeaseToken> {
        self.newest.as_ref().map(|s| s.token.clone())
    }

    /// A desired state was sent at `now`; with `grants_writer` it carried the writer role and
    /// `echoed` (with a lease of `lease`; zero = no lease).
    pub(crate) fn on_sent(
        &mut self,
        grants_writer: bool,
        echoed: Option<&LeaseToken>,
        lease: Duration,
        now: Millis,
    ) {
        self.sent_writer = grants_writer;
        if let Fence::AwaitDelivery { sent: false } = self.fence {
            self.fence = Fence::AwaitDelivery { sent: true };
        }
        if !grants_writer {
            return;
        }
        let bound = if lease.is_zero() {
            Bound::Unbounded
        } else {
            match self.newest.as_ref().filter(|s| Some(&s.token) == echoed) {
                Some(s) => {
                    Bound::Until(Millis(monitor_bound(s.receipt.0, ms(lease), ms(s.budget))))
                }
                // No token to echo: the agent grants no lease from this send.
                None => Bound::Until(now),
            }
        };
        self.writable = Some(match self.writable {
            Some(b) => b.later(bound),
            None => bound,
        });
    }

    /// A reply arrived at `now`. `holds_writer`: the agent holds the writer role;
    /// `cannot_write`: its server cannot write ([`AgentFacts::cannot_write`]).
    pub(crate) fn on_status(
        &mut self,
        facts: &AgentFacts,
        holds_writer: bool,
        cannot_write: bool,
        now: Millis,
    ) {
        if let Some(token) = &facts.lease_token {
            self.newest = Some(TokenSeen {
                token: token.clone(),
                receipt: now,
                budget: facts.fence_budget,
            });
            self.budget = Some(facts.fence_budget);
        }
        if let Some(left) = facts.lease_remaining {
            // A lease running on the agent (ours, or one granted before a restart or by
            // another monitor with other settings) lasts at most this long.
            let until = Bound::Until(Millis(bound_from_remaining(
                now.0,
                ms(left),
                ms(facts.fence_budget),
            )));
            self.writable = Some(self.writable.map_or(until, |b| b.later(until)));
        }
        if holds_writer && self.writable.is_none() {
            // A writer role we did not grant (stale agent memory): no known lease origin.
            self.writable = Some(Bound::Unbounded);
        } else if !holds_writer
            && !self.sent_writer
            && facts.lease_remaining.is_none()
            && cannot_write
        {
            self.writable = None;
        }
        // Delivered. A host the writer role left stays pending until it also confirmed it
        // cannot write: its agent may die between the two (chaos seed 356: killed 2 s after the
        // demotion reached it, before it finished), and then only a kill ends its writability.
        if self.fence == (Fence::AwaitDelivery { sent: true })
            && !(self.departed && self.writable.is_some())
        {
            self.set_fence(Fence::Idle);
        }
    }

    /// `kill_host_bin` succeeded: the host holds nothing and cannot write.
    pub(crate) fn killed(&mut self) {
        self.writable = None;
        self.set_fence(Fence::Idle);
    }

    pub(crate) fn fence(&self) -> Fence {
        self.fence
    }

    pub(crate) fn set_fence(&mut self, f: Fence) {
        self.fence = f;
        if f == Fence::Idle {
            self.departed = false;
        }
    }

    /// The writer role left this host: it must hear so (the next reply to a desired state sent
    /// from now on) or be killed before the role may go elsewhere (see the module doc).
    pub(crate) fn writer_departed(&mut self) {
        if self.fence == Fence::Idle {
            self.fence = Fence::AwaitDelivery { sent: false };
        }
        self.departed = true;
    }

    /// Whether the host lost the writer role and is waiting to be told or killed.
    pub(crate) fn departure_pending(&self) -> bool {
        self.departed && self.fence != Fence::Idle
    }

    /// Whether the status file must record the host as possibly writable.
    pub(crate) fn marked(&self) -> bool {
        self.writable.is_some()
    }

    /// The status file's record of this host; `intended`: the host owns the writer role in the
    /// table, so it is about to be granted (it must be on record before the grant is sent).
    pub(crate) fn persisted(&self, intended: bool, now: Millis) -> PersistedExposure {
        let until = match self.writable {
            Some(Bound::Until(t)) => Some(t),
            _ => None,
        };
        PersistedExposure {
            may_write: Some(self.marked() || intended),
            until,
            fence_budget_ms: self.budget.map(ms),
            remaining_ms: until.filter(|t| *t > now).map(|t| t.0 - now.0),
            unbounded: self.writable == Some(Bound::Unbounded),
        }
    }

    /// The exposure after a monitor restart at `now` from what the status file recorded
    /// (`None`: the file predates exposure records, which counts as unknown).
    pub(crate) fn restored(
        p: Option<&PersistedExposure>,
        can_hold_writer: bool,
        lease: Duration,
        now: Millis,
    ) -> Exposure {
        let may_write = match p.and_then(|p| p.may_write) {
            Some(b) => b,
            None => can_hold_writer,
        };
        let budget = p.and_then(|p| p.fence_budget_ms).map(Duration::from_millis);
        let mut e = Exposure {
            budget,
            ..Exposure::default()
        };
        if may_write {
            e.expose_from(lease, now);
        }
        // What the previous monitor still had to wait for: from this start (which comes after
        // that file was written), measured on another clock, hence the drift margins.
        match p {
            Some(p) if p.unbounded => e.writable = Some(Bound::Unbounded),
            Some(PersistedExposure {
                remaining_ms: Some(r),
                ..
            }) => {
                let rest = Bound::Until(Millis(bound_from_remaining(now.0, *r, 0)));
                e.writable = Some(e.writable.map_or(rest, |b| b.later(rest)));
            }
            _ => {}
        }
        e
    }

    /// Exposes the host until `now + lease + budget` (without a lease: unbounded). Used when the
    /// monitor starts and cannot rule out a grant made before it started.
    pub(crate) fn expose_from(&mut self, lease: Duration, now: Millis) {
        let bound = if lease.is_zero() {
            Bound::Unbounded
        } else {
            Bound::Until(Millis(monitor_bound(
                now.0,
                ms(lease),
                ms(assumed_budget(self.budget)),
            )))
        };
        self.writable = Some(self.writable.map_or(bound, |b| b.later(bound)));
    }

    /// Like [`Exposure::expose_from`], for a host whose agent did not answer when the monitor
    /// started without a status file: that agent may also be adopting the host's writable
    /// server (`ha-agent --adopt-writer`), for up to the adoption window from before `now`
    /// (`ha_lease::unanswered_bound`).
    pub(crate) fn expose_unanswered(&mut self, lease: Duration, now: Millis) {
        if lease.is_zero() {
            return self.expose_from(lease, now);
        }
        let bound = Bound::Until(Millis(unanswered_bound(
            now.0,
            ms(lease),
            ms(assumed_budget(self.budget)),
        )));
        self.writable = Some(self.writable.map_or(bound, |b| b.later(bound)));
    }

    /// The bound, if any (`explain`, tests).
    pub(crate) fn bound(&self) -> Option<Bound> {
        self.writable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(at: u64) -> LeaseToken {
        LeaseToken {
            boot_id: "b".into(),
            at_ms: at,
        }
    }

    fn reply(at: u64, lease_running: Option<u64>, read_only: bool) -> AgentFacts {
        AgentFacts {
            read_only,
            lease_token: Some(token(at)),
            fence_budget: Duration::from_millis(200),
            lease_remaining: lease_running.map(Duration::from_millis),
            ..Default::default()
        }
    }

    const L: Duration = Duration::from_millis(1000);

    #[test]
    fn bound_counts_from_the_acknowledgement_not_the_send() {
        let mut e = Exposure::default();
        e.on_status(&reply(5, None, true), false, true, Millis(1_000));
        // Sent much later (the host may already be gone): still counted from the receipt.
        e.on_sent(true, Some(&token(5)), L, Millis(1_900));
        assert_eq!(e.bound(), Some(Bound::Until(Millis(1_000 + 1_000 + 200))));
        assert!(e.may_write(Millis(2_199)));
        assert!(!e.may_write(Millis(2_200)));
        // Sends that are never acknowledged extend nothing.
        e.on_sent(true, Some(&token(5)), L, Millis(2_100));
        assert!(!e.may_write(Millis(2_200)));
    }

    #[test]
    fn a_grant_without_a_token_extends_nothing() {
        let mut e = Exposure::default();
        e.on_sent(true, None, L, Millis(1_000));
        assert!(!e.may_write(Millis(1_000)));
        assert!(e.marked());
    }

    #[test]
    fn replies_during_a_promotion_never_clear_the_flag() {
        let mut e = Exposure::default();
        e.on_status(&reply(5, None, true), false, true, Millis(1_000));
        e.on_sent(true, Some(&token(5)), L, Millis(1_000));
        // converged=false, read_only=1 so far, no writer role yet, no lease yet: stays.
        e.on_status(&reply(6, None, true), false, true, Millis(1_100));
        assert!(e.may_write(Millis(1_100)));
        // A demotion request, answered while the lease still runs: stays.
        e.on_sent(false, None, L, Millis(1_200));
        e.on_status(&reply(7, Some(500), true), false, true, Millis(1_250));
        assert!(e.may_write(Millis(1_250)));
        // The reply without a lease, to a request without the writer role: cleared.
        e.on_sent(false, None, L, Millis(1_300));
        e.on_status(&reply(8, None, true), false, true, Millis(1_350));
        assert!(!e.may_write(Millis(1_350)));
        assert!(!e.marked());
    }

    #[test]
    fn a_reported_lease_exposes_a_host_we_did_not_grant() {
        let mut e = Exposure::default();
        e.on_status(&reply(5, Some(3_000), true), false, true, Millis(10_000));
        assert!(e.may_write(Millis(13_100)));
        assert!(!e.may_write(Millis(14_000)));
        // An unknown writer role: unbounded until a confirmation or a kill.
        let mut e = Exposure::default();
        e.on_status(&reply(5, None, false), true, false, Millis(10_000));
        assert!(e.may_write(Millis(u64::MAX)));
        e.killed();
        assert!(!e.may_write(Millis(0)));
    }

    #[test]
    fn restart_exposes_what_the_file_cannot_rule_out() {
        let now = Millis(50_000);
        let gone = PersistedExposure {
            may_write: Some(false),
            until: None,
            fence_budget_ms: Some(100),
            ..PersistedExposure::default()
        };
        assert!(!Exposure::restored(Some(&gone), true, L, now).may_write(now));
        let maybe = PersistedExposure {
            may_write: Some(true),
            ..gone.clone()
        };
        let e = Exposure::restored(Some(&maybe), true, L, now);
        assert!(e.may_write(Millis(51_099)));
        assert!(!e.may_write(Millis(51_100)));
        // Unknown (an old file): every writer candidate, with the largest budget an agent may have.
        let e = Exposure::restored(None, true, L, now);
        assert!(e.may_write(Millis(51_000 + MAX_FENCE_BUDGET_MS - 1)));
        assert!(!Exposure::restored(None, false, L, now).may_write(now));
        // Without a lease, only a confirmation ends it.
        assert!(
            Exposure::restored(Some(&maybe), true, Duration::ZERO, now).may_write(Millis(u64::MAX))
        );
    }

    /// Found by the simulation with peers' random draws: a monitor started without a status
    /// file exposes an unanswered agent for the adoption window (30 s); restarted from the file
    /// it wrote 2 s later, it used to expose that host for one lease only and promoted another
    /// host while the first was still adopting its writable server.
    #[test]
    fn a_long_exposure_survives_a_restart() {
        let mut e = Exposure::default();
        e.expose_unanswered(L, Millis(0));
        let file = e.persisted(false, Millis(2_000));
        let remaining = file
            .remaining_ms
            .expect("a bounded exposure records what remains");
        assert!(remaining > ha_lease::ADOPT_WINDOW_MS - 2_000);
        // The restarted monitor has another clock (here: one that starts at 7).
        let r = Exposure::restored(Some(&file), true, L, Millis(7));
        assert!(r.may_write(Millis(7 + remaining)));
        assert!(!r.may_write(Millis(
            7 + remaining + 2 * ha_lease::drift_margin_ms(remaining) + 1
        )));
        // An unbounded exposure stays unbounded.
        let mut u = Exposure::default();
        u.expose_from(Duration::ZERO, Millis(0));
        let file = u.persisted(false, Millis(5));
        assert!(file.unbounded);
        assert!(Exposure::restored(Some(&file), true, L, Millis(0)).may_write(Millis(u64::MAX)));
    }

    #[test]
    fn an_unanswered_agent_may_be_adopting() {
        let mut e = Exposure::default();
        e.expose_unanswered(L, Millis(0));
        let window = ha_lease::ADOPT_WINDOW_MS + MAX_FENCE_BUDGET_MS;
        assert!(e.may_write(Millis(window)));
        assert!(!e.may_write(Millis(window + 2 * ha_lease::drift_margin_ms(window))));
        // An adoption reported by the agent: its remaining window, like a running lease.
        let mut e = Exposure::default();
        e.on_status(&reply(5, Some(30_000), false), false, false, Millis(1_000));
        assert!(e.may_write(Millis(31_000 + 200)));
        assert!(!e.may_write(Millis(32_000)));
    }

    #[test]
    fn expiry_forgets_a_passed_bound() {
        let mut e = Exposure::default();
        e.expose_from(L, Millis(0));
        assert!(!e.expire(Millis(10)));
        assert!(e.expire(Millis(1_000 + MAX_FENCE_BUDGET_MS)));
        assert!(!e.marked());
    }
}
