//! Peer promises: how a writer keeps its lease while the monitor is away (issue 14), without a
//! second writer.
//!
//! A promise is a lease granted by a *peer* instead of the monitor, with the same arithmetic
//! and the same no-clock-agreement rule:
//!
//! 1. The writer's agent W reads its lease clock and sends that [`LeaseToken`] in a promise
//!    request to every other host eligible for the writer role, with the lease and its own
//!    fence budget.
//! 2. A peer P that may promise ([`refusal`] is `None`) records on **its own** clock that it
//!    accepts no writer grant until [`promise_until`] = its receipt of the request + lease +
//!    budget, persists that, and answers. Until then it refuses every writer grant, forced or
//!    not, and says so.
//! 3. W, once *every* eligible peer answered the same token ([`PromiseRound::deadline`]), counts
//!    its deadline from that token on its own clock exactly as for a monitor's grant
//!    ([`AgentDeadline::new`]).
//!
//! The token precedes each peer's receipt in real time, and W shortens its span by the drift
//! allowance, so W is fenced before any peer's promise ends — the inequality of the monitor's
//! lease with the peer in the monitor's place (`tests/props.rs` checks both). Hence while W
//! holds every promise, no peer becomes writable whatever the monitor decides, and once one
//! peer stops promising (it cannot hear W, or it was told of a newer epoch) W's lease runs out
//! before that peer's last promise does.
//!
//! A promise held across a reboot would be read on a clock that restarted, so an agent that
//! finds a promise from an earlier boot waits one whole promised span from its start
//! ([`after_boot_until`]) before it accepts a writer grant.

use crate::{monitor_bound, AgentDeadline, LeaseToken};

/// The longest promise a peer gives (lease + budget), whatever a request asks: a hostile or
/// misconfigured writer cannot lock the other candidates out for longer than this.
pub const MAX_PROMISE_SPAN_MS: u64 = 120_000;

/// Until when, on the promising peer's own clock, it accepts no writer grant: its receipt of
/// the request + lease + budget (the span capped at [`MAX_PROMISE_SPAN_MS`]).
pub fn promise_until(receipt_ms: u64, lease_ms: u64, budget_ms: u64) -> u64 {
    let span = lease_ms.saturating_add(budget_ms);
    if span > MAX_PROMISE_SPAN_MS {
        receipt_ms.saturating_add(MAX_PROMISE_SPAN_MS)
    } else {
        monitor_bound(receipt_ms, lease_ms, budget_ms)
    }
}

/// What the peer knows about itself when a promise request arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerView {
    /// The newest epoch the peer has seen (from the monitor or from other requests).
    pub epoch: u64,
    /// It holds the writer role, or is writable.
    pub writer: bool,
    /// It was asked to become the writer and has not given up (a promotion under way).
    pub promoting: bool,
}

/// Why a peer does not promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request's epoch is older than one the peer has seen: a newer writer was chosen.
    StaleEpoch { held: u64 },
    /// The peer is the writer, or becoming it.
    Writer,
    /// The request asks for more than [`MAX_PROMISE_SPAN_MS`], for no lease at all, or carries
    /// an absurd epoch ([`crate::plausible_epoch`]).
    Invalid,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::StaleEpoch { held } => write!(
                f,
                "the request's epoch is older than this host's epoch {held}: a newer writer was chosen"
            ),
            Refusal::Writer => write!(f, "this host is the writer, or being promoted"),
            Refusal::Invalid => write!(
                f,
                "the request asks for no lease, for more than {MAX_PROMISE_SPAN_MS} ms, or carries an absurd epoch"
            ),
        }
    }
}

/// Whether the peer described by `me` may promise to a writer of `epoch` asking for `lease_ms`
/// + `budget_ms`; `None` means it may.
pub fn refusal(me: PeerView, epoch: u64, lease_ms: u64, budget_ms: u64) -> Option<Refusal> {
    if epoch < me.epoch {
        return Some(Refusal::StaleEpoch { held: me.epoch });
    }
    if !crate::plausible_epoch(me.epoch, epoch) {
        return Some(Refusal::Invalid);
    }
    if me.writer || me.promoting {
        return Some(Refusal::Writer);
    }
    if lease_ms == 0 || lease_ms.saturating_add(budget_ms) > MAX_PROMISE_SPAN_MS {
        return Some(Refusal::Invalid);
    }
    None
}

/// After a reboot the peer's clock restarted, so a promise recorded on the old boot cannot be
/// compared with it: the peer refuses writer grants until a whole span of `span_ms` (the
/// longest promise it recorded) after its agent started at `start_ms` on the new clock.
pub fn after_boot_until(start_ms: u64, span_ms: u64) -> u64 {
    start_ms.saturating_add(span_ms.min(MAX_PROMISE_SPAN_MS))
}

/// One round of promise requests by the writer: the token it sent and who answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromiseRound {
    pub token: LeaseToken,
    pub lease_ms: u64,
    pub budget_ms: u64,
    answered: Vec<String>,
}

impl PromiseRound {
    pub fn new(token: LeaseToken, lease_ms: u64, budget_ms: u64) -> PromiseRound {
        PromiseRound {
            token,
            lease_ms,
            budget_ms,
            answered: Vec::new(),
        }
    }

    /// `peer` promised, answering this round's token.
    pub fn promised(&mut self, peer: &str) {
        if !self.answered.iter().any(|p| p == peer) {
            self.answered.push(peer.to_string());
        }
    }

    /// The deadline this round gives once every peer in `required` promised; `None` while one
    /// is missing. An empty `required` gives nothing: a writer with no peer to vouch for it
    /// keeps only the monitor's lease.
    pub fn deadline(&self, required: &[String]) -> Option<AgentDeadline> {
        if required.is_empty() || !required.iter().all(|r| self.answered.contains(r)) {
            return None;
        }
        Some(AgentDeadline::new(
            self.token.at_ms,
            self.lease_ms,
            self.budget_ms,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(at_ms: u64) -> LeaseToken {
        LeaseToken {
            boot_id: "b".into(),
            at_ms,
        }
    }

    #[test]
    fn a_promise_lasts_lease_plus_budget_on_the_peers_clock_and_is_capped() {
        assert_eq!(promise_until(1_000, 5_000, 250), 6_250);
        assert_eq!(
            promise_until(1_000, u64::MAX, 1),
            1_000 + MAX_PROMISE_SPAN_MS
        );
        assert_eq!(promise_until(u64::MAX, 5_000, 250), u64::MAX);
    }

    #[test]
    fn peers_refuse_stale_epochs_writers_and_absurd_spans() {
        let me = PeerView {
            epoch: 7,
            ..Default::default()
        };
        assert_eq!(refusal(me, 7, 5_000, 250), None);
        assert_eq!(refusal(me, 8, 5_000, 250), None);
        assert_eq!(
            refusal(me, 6, 5_000, 250),
            Some(Refusal::StaleEpoch { held: 7 })
        );
        let writer = PeerView { writer: true, ..me };
        assert_eq!(refusal(writer, 7, 5_000, 250), Some(Refusal::Writer));
        let promoting = PeerView {
            promoting: true,
            ..me
        };
        assert_eq!(refusal(promoting, 7, 5_000, 250), Some(Refusal::Writer));
        assert_eq!(refusal(me, 7, 0, 250), Some(Refusal::Invalid));
        assert_eq!(refusal(me, u64::MAX, 5_000, 250), Some(Refusal::Invalid));
        assert_eq!(
            refusal(me, 7, MAX_PROMISE_SPAN_MS, 1),
            Some(Refusal::Invalid)
        );
    }

    #[test]
    fn a_round_counts_only_when_every_required_peer_promised() {
        let mut r = PromiseRound::new(token(10_000), 1_000, 200);
        let required = vec!["db2".to_string(), "db4".to_string()];
        assert_eq!(r.deadline(&required), None);
        r.promised("db2");
        r.promised("db2");
        assert_eq!(r.deadline(&required), None);
        r.promised("db4");
        assert_eq!(
            r.deadline(&required),
            Some(AgentDeadline::new(10_000, 1_000, 200))
        );
        assert_eq!(r.deadline(&[]), None, "no peers: no peer lease");
    }

    #[test]
    fn after_a_reboot_the_peer_waits_a_whole_span() {
        assert_eq!(after_boot_until(500, 5_250), 5_750);
        assert_eq!(after_boot_until(500, u64::MAX), 500 + MAX_PROMISE_SPAN_MS);
    }
}
