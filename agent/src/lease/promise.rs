//! Peer promises on the promising side (ARCHITECTURE.md "Peer promises"; the rule and its
//! proof are crate `ha-lease`, `promise`).
//!
//! The writer's agent asks every other writer candidate to promise not to accept a writer
//! grant before a deadline. This agent, when asked, promises on its own lease clock unless it
//! holds a newer epoch, is the writer or is being promoted ([`Promise::give`]); until the
//! promise ends it refuses every writer grant, forced or not ([`Promise::holds`]). The promise
//! is in the state file, so a restarted agent keeps it; after a reboot its clock restarted, so
//! it refuses writer grants for the longest span it ever promised ([`Promise::rebooted`]).

use ha_lease::promise::{after_boot_until, promise_until, refusal, PeerView, Refusal};
use serde::{Deserialize, Serialize};

/// What this agent promised, on its lease clock (ms) of the boot the state file names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// No writer grant is accepted before this instant.
    until_ms: Option<u64>,
    /// The writer the latest promise was given to (for messages).
    to: String,
    /// The longest span (lease + budget) ever promised: what a reboot waits out.
    span_ms: u64,
    /// When the latest promise was given (`None` after a reboot: another clock).
    #[serde(default)]
    given_ms: Option<u64>,
    /// The running promise was given to more than one writer: no single writer may release it.
    #[serde(default)]
    mixed: bool,
}

impl Promise {
    /// Promises `writer` (of `epoch`, asking for `lease_ms` + `budget_ms`) at `now_ms`, or
    /// says why not. Returns the promise's end on this agent's clock.
    pub fn give(
        &mut self,
        me: PeerView,
        writer: &str,
        epoch: u64,
        lease_ms: u64,
        budget_ms: u64,
        now_ms: u64,
    ) -> Result<u64, Refusal> {
        if let Some(r) = refusal(me, epoch, lease_ms, budget_ms) {
            return Err(r);
        }
        let until = promise_until(now_ms, lease_ms, budget_ms);
        self.mixed = match self.holds(now_ms) {
            Some((to, _)) => self.mixed || to != writer,
            None => false,
        };
        self.until_ms = Some(self.until_ms.map_or(until, |u| u.max(until)));
        self.to = writer.to_string();
        self.span_ms = self.span_ms.max(lease_ms.saturating_add(budget_ms));
        self.given_ms = Some(now_ms);
        Ok(until)
    }

    /// `writer`, demoted, no longer needs the promise: it ends at once if it was given to that
    /// writer alone (a promise to two writers waits its time). Returns whether it ended. The
    /// longest span stays: a reboot still waits it out (the release may not have reached disk).
    pub fn release(&mut self, writer: &str, now_ms: u64) -> bool {
        match self.holds(now_ms) {
            Some((to, _)) if to == writer && !self.mixed => {
                self.until_ms = None;
                true
            }
            _ => false,
        }
    }

    /// The writer a promise running at `now_ms` was given to, and how long it still runs.
    pub fn holds(&self, now_ms: u64) -> Option<(&str, u64)> {
        let until = self.until_ms.filter(|u| now_ms < *u)?;
        Some((self.to.as_str(), until - now_ms))
    }

    /// The state file is from another boot: its instants cannot be read on this clock. Any
    /// promise ever given is treated as running for its longest span from `now_ms`.
    pub fn rebooted(&mut self, now_ms: u64) {
        self.given_ms = None;
        if self.span_ms > 0 {
            self.until_ms = Some(after_boot_until(now_ms, self.span_ms));
            if self.to.is_empty() {
                self.to = "a writer before this boot".into();
            }
        } else {
            self.until_ms = None;
        }
    }

    /// The state file could not be read: whether a promise was given is unknown, so the
    /// longest promise any peer could have been given is assumed, from `now_ms`.
    pub fn unknown(now_ms: u64) -> Promise {
        let span = ha_lease::promise::MAX_PROMISE_SPAN_MS;
        Promise {
            until_ms: Some(after_boot_until(now_ms, span)),
            to: "a writer (the state file could not be read)".into(),
            span_ms: span,
            given_ms: None,
            mixed: true,
        }
    }

    /// The latest promise given on this boot: to whom, how long ago, and how long it still
    /// holds (for the monitor: the writer is alive for its peers).
    pub fn latest(&self, now_ms: u64) -> Option<(&str, u64, u64)> {
        let given = self.given_ms?;
        let left = self.holds(now_ms).map_or(0, |(_, l)| l);
        Some((self.to.as_str(), now_ms.saturating_sub(given), left))
    }

    /// The longest span promised so far (a change is fsynced: it must survive a power loss).
    pub fn span_ms(&self) -> u64 {
        self.span_ms
    }

    /// Why a writer grant is refused at `now_ms`, if it is.
    pub fn refuses_writer(&self, now_ms: u64) -> Option<String> {
        self.holds(now_ms).map(|(to, left)| {
            format!(
                "this host promised {to} not to become the writer for another {left} ms (peer promise): \
                 the role is taken once the promise ends, unless {to} keeps renewing it"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(epoch: u64) -> PeerView {
        PeerView {
            epoch,
            ..PeerView::default()
        }
    }

    #[test]
    fn a_promise_holds_for_lease_plus_budget_and_only_grows() {
        let mut p = Promise::default();
        assert_eq!(p.holds(0), None);
        assert_eq!(p.give(idle(3), "db1", 3, 5_000, 250, 1_000), Ok(6_250));
        assert_eq!(p.holds(1_000), Some(("db1", 5_250)));
        assert!(p.refuses_writer(6_249).is_some_and(|m| m.contains("db1")));
        assert_eq!(p.refuses_writer(6_250), None);
        // A late, shorter request never shortens a running promise.
        assert_eq!(p.give(idle(3), "db1", 3, 1_000, 0, 1_100), Ok(2_100));
        assert_eq!(p.holds(6_000), Some(("db1", 250)));
        assert_eq!(p.span_ms(), 5_250);
        assert_eq!(p.latest(1_600), Some(("db1", 500, 4_650)));
    }

    #[test]
    fn only_the_writer_promised_alone_releases_the_promise() {
        let mut p = Promise::default();
        p.give(idle(3), "db1", 3, 5_000, 250, 0).expect("promised");
        assert!(!p.release("db3", 10), "another writer cannot release it");
        assert!(p.release("db1", 10));
        assert_eq!(p.refuses_writer(10), None);
        assert_eq!(p.span_ms(), 5_250, "a reboot still waits the longest span");
        p.give(idle(3), "db1", 3, 5_000, 250, 20).expect("promised");
        p.give(idle(3), "db3", 3, 5_000, 250, 30).expect("promised");
        assert!(!p.release("db3", 40), "promised to two writers");
        assert!(!p.release("db1", 40));
        assert!(p.refuses_writer(40).is_some());
        assert!(p.holds(5_999).is_none());
        p.give(idle(3), "db3", 3, 5_000, 250, 6_000)
            .expect("promised");
        assert!(p.release("db3", 6_001), "a fresh promise to one writer");
        assert!(!Promise::unknown(0).release("a writer (the state file could not be read)", 1));
    }

    #[test]
    fn refusals_leave_the_promise_alone() {
        let mut p = Promise::default();
        assert_eq!(
            p.give(idle(4), "db1", 3, 5_000, 250, 0),
            Err(Refusal::StaleEpoch { held: 4 })
        );
        let writer = PeerView {
            writer: true,
            ..idle(3)
        };
        assert_eq!(
            p.give(writer, "db1", 3, 5_000, 250, 0),
            Err(Refusal::Writer)
        );
        assert_eq!(p, Promise::default());
    }

    #[test]
    fn a_reboot_waits_the_longest_span_ever_promised() {
        let mut p = Promise::default();
        p.rebooted(10);
        assert_eq!(p.holds(10), None, "never promised: nothing to wait for");
        p.give(idle(1), "db1", 1, 5_000, 250, 1_000)
            .expect("promised");
        p.rebooted(40);
        assert_eq!(p.holds(40), Some(("db1", 5_250)));
        assert_eq!(
            p.latest(40),
            None,
            "a promise of another boot proves nothing now"
        );
        let u = Promise::unknown(0);
        assert!(u
            .holds(ha_lease::promise::MAX_PROMISE_SPAN_MS - 1)
            .is_some());
    }
}
