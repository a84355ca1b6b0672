//! # ha-lease — the writer lease, in one place
//!
//! The promise "never two writers" rests on one inequality: the instant an old writer is fenced
//! (writer IP gone, client connections killed, `read_only=1`) comes before the instant the
//! monitor lets a new writer become writable. Both sides of that inequality are computed here,
//! and nowhere else, so the agent (`ha-agent`) and the monitor's core (`ha-core`) cannot drift
//! apart.
//!
//! ## The rule (like Chubby's and Raft's leader leases)
//!
//! Time is only ever compared on **one machine's monotonic clock**; no two clocks are compared
//! with each other, so no clock agreement (NTP) is needed:
//!
//! 1. Every agent reply carries a [`LeaseToken`]: the agent's own clock (`CLOCK_BOOTTIME`, which
//!    keeps counting through suspend) read while building the reply, tagged with the boot it
//!    belongs to. The token is read *before* the reply leaves the agent, so it precedes the
//!    monitor's receipt of that reply in real time.
//! 2. The monitor echoes the newest token it received in every writer grant. For the grant it
//!    records a bound on its own monotonic clock: [`monitor_bound`] = its receipt time of the
//!    reply that carried the token + lease + the agent's declared fence budget.
//! 3. The agent counts its deadline from the token on its own clock: [`AgentDeadline::new`] =
//!    token + (lease + budget)·(1 − ρ) − 1 ms, and starts fencing a budget before that.
//!
//! Because the token's instant precedes the receipt, and the agent shortens its span by the
//! drift allowance ρ ([`DRIFT_PPM`]), the agent is fenced before the monitor's bound whatever
//! the clocks' offsets, and whenever the grant arrives: a grant delivered late, twice or out of
//! order carries an old token and so can only give an *earlier* deadline. A host that stopped
//! answering has a bound of *last acknowledgement + lease + budget*, not *last send + …*.
//!
//! The one assumption: each clock's rate is within ±ρ/2 of real time (ρ = 1 %, i.e. ±5,000
//! ppm; quartz oscillators are within ±100 ppm and NTP slews at most 500 ppm). Offsets and
//! steps of the wall clock do not matter: no wall clock is read.
//!
//! [`promise`] applies the same rule between agents: a peer that promises not to become the
//! writer plays the monitor's part for the writer's lease.

use serde::{Deserialize, Serialize};

pub mod promise;

/// The drift allowance ρ in parts per million: each clock may run up to ρ/2 fast or slow.
pub const DRIFT_PPM: u64 = 10_000;

/// An epoch more than this above the current one is refused as absurd (a corrupt or hostile
/// value): the epoch grows by one per writer change, so a legitimate cluster never jumps this
/// far, and accepting `u64::MAX` would wrap the next increment and lock every agent out.
pub const EPOCH_JUMP_LIMIT: u64 = 1_000_000;

/// The largest fence budget an agent may declare (`agent.yaml` `fence_budget`), and the budget
/// the monitor assumes for an agent that has not told it its own (after a restart).
pub const MAX_FENCE_BUDGET_MS: u64 = 5_000;

/// How long an agent started with a one-time permission to *adopt* the running writer
/// (`ha-agent --adopt-writer`, the hand-over from another HA tool) keeps a writable host
/// writable without a grant, on its own clock from its start. The agent reports the rest as a
/// running lease, and a monitor that starts without a status file exposes every host whose
/// agent did not answer for this much longer ([`unanswered_bound`]).
pub const ADOPT_WINDOW_MS: u64 = 30_000;

/// The monitor's bound, at a start without a status file, for a host whose agent did not
/// answer: whatever a previous monitor granted (`lease_ms`, `budget_ms`) and an adoption
/// started before this instant ([`ADOPT_WINDOW_MS`], widened by the drift margin) are over by
/// then.
pub fn unanswered_bound(now_ms: u64, lease_ms: u64, budget_ms: u64) -> u64 {
    let adopt = ADOPT_WINDOW_MS.saturating_add(budget_ms);
    monitor_bound(now_ms, lease_ms, budget_ms).max(
        now_ms
            .saturating_add(adopt)
            .saturating_add(drift_margin_ms(adopt).saturating_mul(2)),
    )
}

/// One reading of an agent's lease clock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseToken {
    /// The kernel's boot id of the agent's host (`/proc/sys/kernel/random/boot_id`): a
    /// `CLOCK_BOOTTIME` reading means nothing after a reboot.
    pub boot_id: String,
    /// `CLOCK_BOOTTIME` of the agent's host, in milliseconds.
    pub at_ms: u64,
}

/// The margin the agent takes off a span of `ms` for drift: ρ·ms, rounded up, plus 1 ms for
/// the millisecond truncation of both clocks' readings.
pub fn drift_margin_ms(ms: u64) -> u64 {
    let rho = (u128::from(ms) * u128::from(DRIFT_PPM)).div_ceil(1_000_000);
    u64::try_from(rho).unwrap_or(u64::MAX).saturating_add(1)
}

/// The agent's side of one grant, on the agent's lease clock (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDeadline {
    /// Fencing must be complete by this instant.
    pub fenced_by_ms: u64,
    /// Fencing starts here: `fenced_by_ms − budget`.
    pub fence_at_ms: u64,
}

impl AgentDeadline {
    /// The deadline a grant of `lease_ms` echoing a token read at `token_at_ms` gives, for an
    /// agent whose fencing takes at most `budget_ms`.
    pub fn new(token_at_ms: u64, lease_ms: u64, budget_ms: u64) -> AgentDeadline {
        let span = lease_ms.saturating_add(budget_ms);
        let fenced_by_ms = token_at_ms
            .saturating_add(span)
            .saturating_sub(drift_margin_ms(span));
        AgentDeadline {
            fenced_by_ms,
            fence_at_ms: fenced_by_ms.saturating_sub(budget_ms),
        }
    }

    /// The later of two deadlines (renewals never shorten a running lease; each one is safe on
    /// its own, so the later one is too).
    pub fn later(self, other: AgentDeadline) -> AgentDeadline {
        if other.fenced_by_ms > self.fenced_by_ms {
            other
        } else {
            self
        }
    }

    /// Whether the host may still be writable at `now_ms` (fencing has not started).
    pub fn valid_at(&self, now_ms: u64) -> bool {
        now_ms < self.fence_at_ms
    }
}

/// The monitor's bound for a grant echoing a token whose reply it received at `receipt_ms` (its
/// own monotonic clock): after this instant the agent is surely fenced.
pub fn monitor_bound(receipt_ms: u64, lease_ms: u64, budget_ms: u64) -> u64 {
    receipt_ms
        .saturating_add(lease_ms)
        .saturating_add(budget_ms)
}

/// The monitor's bound for a lease an agent reported as running, with `remaining_ms` left until
/// it starts fencing, read with the token of a reply received at `receipt_ms`. The span is
/// measured on two clocks (the agent's up to its reading, the monitor's from its receipt), so it
/// is widened by twice the drift margin.
pub fn bound_from_remaining(receipt_ms: u64, remaining_ms: u64, budget_ms: u64) -> u64 {
    let span = remaining_ms.saturating_add(budget_ms);
    receipt_ms
        .saturating_add(span)
        .saturating_add(drift_margin_ms(span).saturating_mul(2))
}

/// The epoch after `epoch`, or `None` at the end of the range (never wraps).
pub fn next_epoch(epoch: u64) -> Option<u64> {
    epoch.checked_add(1)
}

/// Whether `reported` is a believable epoch for a party that holds `current`: not absurdly far
/// ahead ([`EPOCH_JUMP_LIMIT`]), and not at the very end of the range, where no next epoch
/// exists.
pub fn plausible_epoch(current: u64, reported: u64) -> bool {
    reported <= current.saturating_add(EPOCH_JUMP_LIMIT) && next_epoch(reported).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_arithmetic() {
        // 1 s lease, 200 ms budget: span 1200 ms, margin 12 + 1 ms.
        let d = AgentDeadline::new(10_000, 1_000, 200);
        assert_eq!(d.fenced_by_ms, 10_000 + 1_200 - 13);
        assert_eq!(d.fence_at_ms, d.fenced_by_ms - 200);
        assert!(d.valid_at(10_900));
        assert!(!d.valid_at(d.fence_at_ms));
        assert_eq!(monitor_bound(50_000, 1_000, 200), 51_200);
        // Renewals keep the later deadline.
        let e = AgentDeadline::new(10_500, 1_000, 200);
        assert_eq!(d.later(e), e);
        assert_eq!(e.later(d), e);
    }

    #[test]
    fn no_overflow_on_any_value() {
        let d = AgentDeadline::new(u64::MAX, u64::MAX, u64::MAX);
        assert!(d.fence_at_ms <= d.fenced_by_ms);
        assert_eq!(monitor_bound(u64::MAX, 1, 1), u64::MAX);
        assert_eq!(drift_margin_ms(u64::MAX), u64::MAX.div_ceil(100) + 1);
        let z = AgentDeadline::new(0, 0, 0);
        assert!(!z.valid_at(0));
    }

    #[test]
    fn epochs_never_wrap() {
        assert_eq!(next_epoch(5), Some(6));
        assert_eq!(next_epoch(u64::MAX), None);
        assert!(plausible_epoch(5, 6));
        assert!(plausible_epoch(5, 5 + EPOCH_JUMP_LIMIT));
        assert!(!plausible_epoch(5, 6 + EPOCH_JUMP_LIMIT));
        assert!(!plausible_epoch(u64::MAX - 1, u64::MAX));
        assert!(!plausible_epoch(0, u64::MAX));
    }
}
