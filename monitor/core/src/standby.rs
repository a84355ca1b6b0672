//! Redundant monitors (issue 18): what a standby's core does, when a monitor may act, and how a
//! standby takes over.
//!
//! * A standby keeps its checks warm ([`Core::warm`]): check results and the network self-check
//!   go through the same trap logic as on the leader, but nothing else happens — no
//!   transition, no role, no agent call, no status. When it is elected it restores the leader's
//!   persisted state (like a restarted monitor, `startup.rs`) and adopts those warm trackers
//!   ([`Core::adopt_checks`]), so a writer that died before the takeover is not given a fresh
//!   trap period.
//! * [`Tenure`] says whether the leader may act now. It is the lease rule of Chubby and Raft
//!   leader leases, on the leader's own monotonic clock: a renewal sent at `s` and answered
//!   keeps the lease alive until at least `s + ttl` on etcd's clock (etcd starts counting when
//!   it receives the renewal, which is after `s`). The leader stops acting at
//!   `s + ttl - margin`; etcd cannot expire the lease, and no standby can win the election,
//!   before `s + ttl`. The margin covers the two clocks' rate difference and the time between
//!   the validity check and the last agent request of a pass.

use std::time::Duration;

use crate::core::Core;
use crate::io::Input;
use crate::time::Millis;

impl Core {
    /// A standby's pass: applies check results and the network self-check, so the check
    /// trackers are warm at a takeover. Decides nothing and emits nothing (the leader logs and
    /// acts; a standby that logged every check change would only duplicate its journal).
    pub fn warm(&mut self, inputs: Vec<Input>, now: Millis) {
        self.now = self.now.max(now);
        let mut discarded = Vec::new();
        for input in inputs {
            match input {
                Input::Network { reachable } => self.apply_network(reachable, &mut discarded),
                Input::CheckResult {
                    host,
                    check,
                    outcome,
                    message,
                } => self.apply_check(&host, check, outcome, &message, now, &mut discarded),
                // Agent replies, kill results and commands belong to a leader.
                Input::AgentReport { .. } | Input::KillResult { .. } | Input::Command { .. } => {}
            }
        }
    }

    /// Takes over the check trackers and the network status of `warm`, a core of the same
    /// cluster that observed the checks until now (a standby becoming leader).
    pub fn adopt_checks(&mut self, warm: &Core) {
        if warm.spec.hosts != self.spec.hosts {
            return;
        }
        for h in self.hosts.ids() {
            self.hosts[h].checks = warm.hosts[h].checks.clone();
        }
        self.network_up = warm.network_up;
    }
}

/// The leader's right to act in one leadership term (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenure {
    /// The leadership term: the create revision of the leadership key, carried by every agent
    /// request (agents refuse older terms).
    pub term: u64,
    /// The leader may act before this instant (monitor clock), not at or after it.
    valid_until: Millis,
}

impl Tenure {
    /// A term won with a lease whose grant (or latest renewal) was sent at `sent`.
    pub fn won(term: u64, sent: Millis, ttl: Duration) -> Tenure {
        Tenure {
            term,
            valid_until: Millis(sent.0.saturating_add(acting_window(ttl).as_millis() as u64)),
        }
    }

    /// A renewal sent at `sent` was answered with the lease alive for `ttl`. Validity never
    /// moves backwards (an older renewal answered late changes nothing).
    pub fn renewed(&mut self, sent: Millis, ttl: Duration) {
        let until = Millis(sent.0.saturating_add(acting_window(ttl).as_millis() as u64));
        self.valid_until = self.valid_until.max(until);
    }

    /// May the leader act at `now`?
    pub fn valid(&self, now: Millis) -> bool {
        now < self.valid_until
    }

    pub fn valid_until(&self) -> Millis {
        self.valid_until
    }
}

/// How long after sending a renewal the leader may act: the lease TTL less a margin of a tenth
/// of it, at least 200 ms (1.8 s of a 2 s lease).
pub fn acting_window(ttl: Duration) -> Duration {
    let margin = (ttl / 10).max(Duration::from_millis(200));
    ttl.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use crate::{Check, CheckOutcome, HostState, Mode};

    #[test]
    fn tenure_ends_before_the_lease_can() {
        let ttl = Duration::from_secs(2);
        let mut t = Tenure::won(7, Millis(1_000), ttl);
        assert!(t.valid(Millis(2_799)));
        assert!(
            !t.valid(Millis(2_800)),
            "1.8 s of a 2 s lease, counted from the send"
        );
        t.renewed(Millis(2_000), ttl);
        assert!(t.valid(Millis(3_799)) && !t.valid(Millis(3_800)));
        // A late answer to an older renewal does not shorten it.
        t.renewed(Millis(1_500), ttl);
        assert_eq!(t.valid_until(), Millis(3_800));
        assert_eq!(
            acting_window(Duration::from_secs(30)),
            Duration::from_secs(27)
        );
    }

    #[test]
    fn a_standby_observes_checks_but_decides_nothing() {
        let mut k = Kit::online(spec3());
        let mut standby = Core::new(spec3());
        let samples = Check::ALL
            .into_iter()
            .map(|check| Input::CheckResult {
                host: "db3".into(),
                check,
                outcome: if check == Check::Mysql {
                    CheckOutcome::Error
                } else {
                    CheckOutcome::Ok
                },
                message: "sample".into(),
            })
            .collect();
        standby.warm(samples, Millis(k.now));
        // Nothing moved: every host is still as a fresh core starts.
        assert!(standby
            .hosts
            .iter()
            .all(|h| h.state == HostState::AwaitingRecovery));
        assert!(standby.hosts[DB3].check(Check::Mysql).failed());

        // The taking-over core (here: the leader's state) adopts the failure and acts on its
        // first pass, without a new trap period.
        let mut taken = k.core.clone();
        taken.adopt_checks(&standby);
        k.core = taken;
        k.at(1).step();
        assert_eq!(k.state("db3"), HostState::HardOffline);
        assert_eq!(k.core.mode(), Mode::Active);
    }
}
