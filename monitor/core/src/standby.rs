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
            valid_until: acting_until(sent, ttl),
        }
    }

    /// A renewal sent at `sent` was answered with the lease alive for `ttl`. Validity never
    /// moves backwards (an older renewal answered late changes nothing).
    pub fn renewed(&mut self, sent: Millis, ttl: Duration) {
        self.valid_until = self.valid_until.max(acting_until(sent, ttl));
    }

    /// May the leader act at `now`?
    pub fn valid(&self, now: Millis) -> bool {
        now < self.valid_until
    }

    pub fn valid_until(&self) -> Millis {
        self.valid_until
    }
}

/// What a coordinated monitor does in one main-loop pass ([`LeaderState::verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Lead: step the core, save, drive the agents.
    Act,
    /// A term was won and its lease is valid: load the state, then act.
    TakeOver,
    /// The term this monitor acted in is over: drop its state, back to standby.
    StepDown,
    /// Standby, or a leader whose renewal is overdue: observe only.
    Observe,
}

/// A change of a coordinated monitor's right to act that deserves a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenureNote {
    /// The acting leader's lease renewal is overdue: it stops acting (once per lapse).
    Lapsed { term: u64 },
    /// A renewal was answered again after a lapse: it acts again in the same term.
    Resumed { term: u64 },
}

/// A coordinated monitor's leadership, as the election reports it: the won term's tenure and
/// the term whose state it took over. Pure: the election task and the main loop feed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderState {
    tenure: Option<Tenure>,
    /// The term whose state this monitor loaded and acts on.
    acting: Option<u64>,
    /// The term whose lapse was reported (once per lapse).
    lapsed: Option<u64>,
}

impl LeaderState {
    /// `term` was won with a lease granted by a request sent at `sent`.
    pub fn won(&mut self, term: u64, sent: Millis, ttl: Duration) {
        self.tenure = Some(Tenure::won(term, sent, ttl));
    }

    /// A renewal of `term`'s lease, sent at `sent`, was answered.
    pub fn renewed(&mut self, term: u64, sent: Millis, ttl: Duration) {
        if let Some(t) = self.tenure.as_mut().filter(|t| t.term == term) {
            t.renewed(sent, ttl);
        }
    }

    /// `term` is over (etcd expired the lease, or a save found a newer term). Returns whether
    /// it was this monitor's current term.
    pub fn lost(&mut self, term: u64) -> bool {
        let ours = self.tenure.is_some_and(|t| t.term == term);
        if ours {
            self.tenure = None;
        }
        ours
    }

    /// The state of `term` was taken over: the monitor acts in it from now on.
    pub fn took_over(&mut self, term: u64) {
        self.acting = Some(term);
    }

    /// What to do in the pass starting at `now`, and what changed worth logging.
    pub fn verdict(&mut self, now: Millis) -> (Verdict, Option<TenureNote>) {
        let Some(t) = self.tenure else {
            let v = if self.acting.take().is_some() {
                Verdict::StepDown
            } else {
                Verdict::Observe
            };
            return (v, None);
        };
        if !t.valid(now) {
            let note = (self.acting == Some(t.term) && self.lapsed != Some(t.term)).then(|| {
                self.lapsed = Some(t.term);
                TenureNote::Lapsed { term: t.term }
            });
            return (Verdict::Observe, note);
        }
        let note = self
            .lapsed
            .take()
            .map(|_| TenureNote::Resumed { term: t.term });
        let v = match self.acting {
            Some(a) if a == t.term => Verdict::Act,
            // A new term while the old one's state is still loaded: drop it first.
            Some(_) => {
                self.acting = None;
                Verdict::StepDown
            }
            None => Verdict::TakeOver,
        };
        (v, note)
    }

    /// May the monitor act at `now` (checked again before orders, after a save that blocked)?
    pub fn valid(&self, now: Millis) -> bool {
        self.leading().is_some() && self.tenure.is_some_and(|t| t.valid(now))
    }

    /// The term this monitor leads and acts in (its lease possibly overdue), if any.
    pub fn leading(&self) -> Option<u64> {
        match (self.acting, self.tenure) {
            (Some(a), Some(t)) if a == t.term => Some(a),
            _ => None,
        }
    }

    /// The won term, taken over or not.
    pub fn term(&self) -> Option<u64> {
        self.tenure.map(|t| t.term)
    }
}

/// How long after sending a renewal the leader may act: the lease TTL less a margin of a tenth
/// of it, at least 200 ms (1.8 s of a 2 s lease).
pub fn acting_window(ttl: Duration) -> Duration {
    let margin = (ttl / 10).max(Duration::from_millis(200));
    ttl.saturating_sub(margin)
}

/// The end of the acting window of a grant or renewal sent at `sent`.
fn acting_until(sent: Millis, ttl: Duration) -> Millis {
    Millis(sent.0.saturating_add(acting_window(ttl).as_millis() as u64))
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
    fn a_won_term_is_taken_over_acted_in_paused_and_lost() {
        let ttl = Duration::from_secs(2);
        let mut l = LeaderState::default();
        assert_eq!(l.verdict(Millis(0)), (Verdict::Observe, None), "a standby");
        l.won(7, Millis(1_000), ttl);
        assert_eq!(l.verdict(Millis(1_100)).0, Verdict::TakeOver);
        assert_eq!(
            l.verdict(Millis(1_100)).0,
            Verdict::TakeOver,
            "until taken over"
        );
        l.took_over(7);
        assert_eq!(l.verdict(Millis(1_200)), (Verdict::Act, None));
        assert!(l.valid(Millis(2_799)) && !l.valid(Millis(2_800)));
        // No renewal answered in time: observe, reported once.
        assert_eq!(
            l.verdict(Millis(2_800)),
            (Verdict::Observe, Some(TenureNote::Lapsed { term: 7 }))
        );
        assert_eq!(l.verdict(Millis(2_900)), (Verdict::Observe, None));
        // A renewal answered again: the same term acts again.
        l.renewed(7, Millis(2_700), ttl);
        assert_eq!(
            l.verdict(Millis(2_950)),
            (Verdict::Act, Some(TenureNote::Resumed { term: 7 }))
        );
        // Another term's events change nothing; losing ours steps down once.
        l.renewed(6, Millis(9_000), ttl);
        assert!(!l.valid(Millis(4_500)));
        assert!(!l.lost(6));
        assert!(l.lost(7));
        assert_eq!(l.verdict(Millis(3_000)), (Verdict::StepDown, None));
        assert_eq!(l.verdict(Millis(3_000)), (Verdict::Observe, None));
        assert_eq!(l.leading(), None);
    }

    #[test]
    fn a_new_term_drops_the_old_terms_state_first() {
        let ttl = Duration::from_secs(5);
        let mut l = LeaderState::default();
        l.won(7, Millis(0), ttl);
        l.took_over(7);
        // The election lost 7 and won 9 before the main loop looked.
        l.won(9, Millis(100), ttl);
        assert_eq!(l.verdict(Millis(200)).0, Verdict::StepDown);
        assert_eq!(l.verdict(Millis(200)).0, Verdict::TakeOver);
        l.took_over(9);
        assert_eq!(l.leading(), Some(9));
        assert_eq!(l.term(), Some(9));
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
