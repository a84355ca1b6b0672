//! Peer promises, the promising side: deciding a `Promise` request and recording it (the rule
//! is crate `ha-lease`, `promise`; the state is [`crate::lease::promise`]).

use ha_lease::promise::PeerView;

use super::Agent;
use crate::lease::clock;

/// A promise given: this agent refuses writer grants for `remaining_ms` from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Given {
    pub remaining_ms: u64,
}

impl Agent {
    /// Decides whether to promise `writer` (of `epoch`, asking for `lease_ms` + `budget_ms`),
    /// and records the promise in the state file before answering: a promise the next start of
    /// this agent might not know of is never given. Never learns the epoch from a peer: only
    /// the monitor raises it.
    pub fn promise(
        &self,
        writer: &str,
        epoch: u64,
        lease_ms: u64,
        budget_ms: u64,
    ) -> Result<Given, String> {
        let now = clock::now_ms();
        let until = {
            let mut g = self.lock();
            let me = PeerView {
                epoch: g.max_epoch,
                writer: g.lease.running() || g.held.writer_synced,
                promoting: g.desired.as_ref().is_some_and(|d| d.writer().is_some()),
            };
            g.promise
                .give(me, writer, epoch, lease_ms, budget_ms, now)
                .map_err(|r| r.to_string())?
        };
        self.persist().map_err(|e| {
            format!("the promise cannot be recorded ({e}); this host refuses writer grants anyway until it would have ended")
        })?;
        Ok(Given {
            remaining_ms: until.saturating_sub(now),
        })
    }

    /// How long this agent still refuses writer grants because of a promise (0: it does not).
    pub fn promise_remaining_ms(&self) -> u64 {
        let now = clock::now_ms();
        self.lock().promise.holds(now).map_or(0, |(_, left)| left)
    }
}
