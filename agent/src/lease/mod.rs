//! The writer lease on the agent's side (docs/product.md F9; arithmetic and safety argument in crate
//! `ha-lease`).
//!
//! An agent holding the writer role fences its host (writer IP removed, client connections
//! killed, `read_only=1`) before the monitor could make another host writable, unless the
//! monitor renews the role in time. The deadline counts from the lease token the monitor echoes
//! — a reading of this host's `CLOCK_BOOTTIME` taken before the monitor granted anything — so
//! no clock agreement is needed and a grant delivered late, twice or out of order never extends
//! the lease past the monitor's bound.
//!
//! * [`Lease`] (this file): the pure state — grant, renewal, validity, expiry.
//! * [`clock`]: `CLOCK_BOOTTIME` and the boot id.
//! * [`store`]: the state file (`state_dir`), so a restarted agent keeps a valid lease (no write
//!   outage) and its epoch, and one without a valid lease fences at once.
//! * [`promise`]: what this agent promised a peer writer (no writer grant accepted until then).
//! * [`adopt`]: the one-time permission to adopt a writer another HA tool left writable; the
//!   adoption itself is a lease without a role ([`Lease::adopt`]).
//! * The guard — the watchdog (its own thread and runtime), the expiry and the fence — is part
//!   of the converger (`crate::converge::guard`): it changes the host, as the converger does.

pub mod adopt;
pub mod clock;
pub mod promise;
pub mod store;

use ha_lease::{AgentDeadline, LeaseToken};
use serde::{Deserialize, Serialize};

use crate::desired::RoleIp;

/// Why a writer grant gave no lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoGrant {
    /// The request carried no token (the monitor's first contact).
    NoToken,
    /// The token was read on another boot of this host (or another host).
    OtherBoot { token_boot: String },
    /// The token is from this agent's future: never issued by it.
    FutureToken { at_ms: u64, now_ms: u64 },
    /// The lease counted from the token had already run out on arrival.
    Expired { fence_at_ms: u64, now_ms: u64 },
}

impl std::fmt::Display for NoGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoGrant::NoToken => write!(f, "the request carries no lease token yet"),
            NoGrant::OtherBoot { token_boot } => write!(
                f,
                "its lease token was issued on another boot ({token_boot:?}), not this host's current one"
            ),
            NoGrant::FutureToken { at_ms, now_ms } => write!(
                f,
                "its lease token ({at_ms} ms) is ahead of this host's clock ({now_ms} ms): not issued by this agent"
            ),
            NoGrant::Expired { fence_at_ms, now_ms } => write!(
                f,
                "the lease it grants ran out {} ms before it arrived (delivered late)",
                now_ms.saturating_sub(*fence_at_ms)
            ),
        }
    }
}

/// The running writer lease, on this host's lease clock (ms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// `None`: no lease running.
    deadline: Option<AgentDeadline>,
    /// The writer role the lease covers. It keeps running while the monitor demotes the host,
    /// and forces the demotion if that has not finished when the lease ends. `None` with a
    /// deadline: an adoption ([`Lease::adopt`]), which no monitor granted.
    role: Option<RoleIp>,
    /// The lease length of the last grant (for log lines).
    length_ms: u64,
}

impl Lease {
    /// The deadline a writer grant of `lease_ms` echoing `token` gives this agent at `now_ms`,
    /// or why it gives none.
    pub fn deadline_for(
        token: Option<&LeaseToken>,
        boot_id: &str,
        now_ms: u64,
        lease_ms: u64,
        budget_ms: u64,
    ) -> Result<AgentDeadline, NoGrant> {
        let t = token.ok_or(NoGrant::NoToken)?;
        if t.boot_id != boot_id {
            return Err(NoGrant::OtherBoot {
                token_boot: t.boot_id.clone(),
            });
        }
        if t.at_ms > now_ms {
            return Err(NoGrant::FutureToken {
                at_ms: t.at_ms,
                now_ms,
            });
        }
        let d = AgentDeadline::new(t.at_ms, lease_ms, budget_ms);
        if !d.valid_at(now_ms) {
            return Err(NoGrant::Expired {
                fence_at_ms: d.fence_at_ms,
                now_ms,
            });
        }
        Ok(d)
    }

    /// Starts or renews the lease for `role`. A renewal never shortens a running lease of the
    /// same role (each grant is safe on its own, so the later deadline is too).
    pub fn grant(&mut self, role: &RoleIp, d: AgentDeadline, length_ms: u64) {
        let same = self.role.as_ref() == Some(role);
        self.deadline = Some(match self.deadline {
            Some(old) if same => old.later(d),
            _ => d,
        });
        self.role = Some(role.clone());
        self.length_ms = length_ms;
    }

    /// Adopts the writable server found at start-up (`ha-agent --adopt-writer`) until `d`: the
    /// operator's one-time grant, for a hand-over from another HA tool. It ends when a monitor
    /// grants the writer role (the grant replaces it), when a desired state without the writer
    /// role arrives, or at `d`, whichever comes first (see [`adopt`]).
    pub fn adopt(&mut self, d: AgentDeadline, length_ms: u64) {
        self.deadline = Some(d);
        self.role = None;
        self.length_ms = length_ms;
    }

    /// Whether the running lease is an adoption rather than a monitor's grant.
    pub fn adopting(&self) -> bool {
        self.deadline.is_some() && self.role.is_none()
    }

    /// Ends the lease (demotion complete, expiry handled, lease switched off).
    pub fn clear(&mut self) {
        *self = Lease::default();
    }

    pub fn deadline(&self) -> Option<AgentDeadline> {
        self.deadline
    }

    pub fn role(&self) -> Option<&RoleIp> {
        self.role.as_ref()
    }

    pub fn length_ms(&self) -> u64 {
        self.length_ms
    }

    pub fn running(&self) -> bool {
        self.deadline.is_some()
    }

    /// Whether the host may still be writable at `now_ms` (fencing has not started).
    pub fn valid_at(&self, now_ms: u64) -> bool {
        self.deadline.is_some_and(|d| d.valid_at(now_ms))
    }

    /// Milliseconds until fencing starts; 0 once due, -1 when no lease runs.
    pub fn remaining_ms(&self, now_ms: u64) -> i64 {
        match self.deadline {
            None => -1,
            Some(d) => i64::try_from(d.fence_at_ms.saturating_sub(now_ms)).unwrap_or(i64::MAX),
        }
    }

    /// Whether fencing is due at `now_ms`.
    pub fn due(&self, now_ms: u64) -> bool {
        self.deadline.is_some_and(|d| now_ms >= d.fence_at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(at: u64) -> LeaseToken {
        LeaseToken {
            boot_id: "boot".into(),
            at_ms: at,
        }
    }

    fn role() -> RoleIp {
        RoleIp {
            name: "writer".into(),
            ip: "10.0.0.100".parse().expect("ip"),
        }
    }

    #[test]
    fn a_grant_counts_from_the_token_not_from_arrival() {
        // Token read at 10 000; grant arrives 400 ms later: the lease ends 400 ms earlier than
        // a fresh one would.
        let d =
            Lease::deadline_for(Some(&token(10_000)), "boot", 10_400, 1_000, 200).expect("granted");
        assert_eq!(d.fenced_by_ms, 10_000 + 1_200 - 13);
        assert_eq!(d.fence_at_ms, d.fenced_by_ms - 200);
        let mut l = Lease::default();
        l.grant(&role(), d, 1_000);
        assert!(l.valid_at(10_400));
        assert_eq!(l.remaining_ms(10_400), (d.fence_at_ms - 10_400) as i64);
        assert!(l.due(d.fence_at_ms));
        assert!(!l.valid_at(d.fence_at_ms));
    }

    #[test]
    fn bad_tokens_grant_nothing() {
        assert_eq!(
            Lease::deadline_for(None, "boot", 5, 1_000, 0),
            Err(NoGrant::NoToken)
        );
        assert!(matches!(
            Lease::deadline_for(Some(&token(5)), "other", 5, 1_000, 0),
            Err(NoGrant::OtherBoot { .. })
        ));
        assert!(matches!(
            Lease::deadline_for(Some(&token(50)), "boot", 5, 1_000, 0),
            Err(NoGrant::FutureToken { .. })
        ));
        // Delivered 5 s late (a TCP retransmission after a link flap): nothing.
        assert!(matches!(
            Lease::deadline_for(Some(&token(10_000)), "boot", 15_000, 3_000, 0),
            Err(NoGrant::Expired { .. })
        ));
    }

    #[test]
    fn late_and_reordered_grants_never_shorten_or_extend_past_their_token() {
        let mut l = Lease::default();
        let newer = Lease::deadline_for(Some(&token(2_000)), "boot", 2_100, 1_000, 0).expect("ok");
        let older = Lease::deadline_for(Some(&token(1_500)), "boot", 2_200, 1_000, 0).expect("ok");
        l.grant(&role(), newer, 1_000);
        l.grant(&role(), older, 1_000); // arrives after the newer one
        assert_eq!(l.deadline(), Some(newer));
        l.grant(&role(), newer, 1_000); // a duplicate
        assert_eq!(l.deadline(), Some(newer));
        l.clear();
        assert!(!l.running());
        assert_eq!(l.remaining_ms(0), -1);
    }

    #[test]
    fn a_grant_replaces_an_adoption_even_when_it_ends_earlier() {
        let mut l = Lease::default();
        l.adopt(AgentDeadline::new(1_000, 30_000, 0), 30_000);
        assert!(l.adopting() && l.running() && l.valid_at(20_000));
        assert_eq!(l.role(), None);
        let granted =
            Lease::deadline_for(Some(&token(2_000)), "boot", 2_100, 1_000, 0).expect("ok");
        l.grant(&role(), granted, 1_000);
        assert!(!l.adopting());
        assert_eq!(
            l.deadline(),
            Some(granted),
            "the monitor's bound, not the adoption's"
        );
        assert_eq!(l.role(), Some(&role()));
    }
}
