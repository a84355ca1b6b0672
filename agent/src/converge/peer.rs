//! Peer promises (the rule is crate `ha-lease`, `promise`): the promising side — deciding a
//! `Promise` request and recording it ([`crate::lease::promise`] holds the state) — and the
//! writer's side's two touch points with the agent's state: what to ask ([`Agent::vouch_request`])
//! and the extension a complete round gives ([`Agent::extend_by_peers`]; the asking itself is
//! `crate::vouch`).

use ha_lease::promise::PeerView;
use ha_lease::AgentDeadline;

use super::Agent;
use crate::lease::clock;

/// What the writer asks its peers for in one round (the asking is `crate::vouch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub peers: Vec<crate::desired::Peer>,
    pub epoch: u64,
    pub lease_ms: u64,
    pub budget_ms: u64,
}

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

    /// What the writer asks its peers now: `None` unless this host holds the writer role under
    /// a running lease and the monitor named its peers.
    pub(crate) fn vouch_request(&self, now_ms: u64) -> Option<Ask> {
        let g = self.lock();
        let running = g.lease.role().is_some() && g.lease.valid_at(now_ms);
        if !running || g.writer_peers.is_empty() || g.lease.length_ms() == 0 {
            return None;
        }
        Some(Ask {
            peers: g.writer_peers.clone(),
            epoch: g.max_epoch,
            lease_ms: g.lease.length_ms(),
            budget_ms: super::ms(self.cfg.fence_budget.duration()),
        })
    }

    /// Every peer promised a round asked at `asked_ms`, which gives deadline `d`: the lease is
    /// extended as a monitor's grant would extend it — only while it still runs (a fence, once
    /// started, is never undone), never shortened, and never by promises asked before this
    /// writer released them. Recorded in the state file before it counts.
    pub(crate) fn extend_by_peers(&self, d: AgentDeadline, lease_ms: u64, asked_ms: u64) -> bool {
        let now = clock::now_ms();
        {
            let mut g = self.lock();
            if asked_ms <= g.released_before_ms {
                return false;
            }
            let Some(role) = g.lease.role().cloned() else {
                return false;
            };
            if !g.lease.valid_at(now) || !d.valid_at(now) {
                return false;
            }
            g.lease.grant(&role, d, lease_ms);
        }
        let _ = self.persist(); // an error is logged; the restart rule covers a lost renewal
        self.lease_changed.notify_one();
        true
    }

    /// A demotion completed since the last call and this host is still demoted (no lease, not
    /// writable): its peers' promises may be released. From now on, promises asked earlier
    /// extend nothing ([`Agent::extend_by_peers`]).
    pub(crate) fn take_demotion(&self) -> bool {
        let mut g = self.lock();
        if g.demoted_at.take().is_none() || g.lease.running() || g.held.writer_synced {
            return false;
        }
        g.released_before_ms = clock::now_ms();
        true
    }

    /// `writer` says it was demoted and no longer needs this host's promise
    /// ([`crate::lease::promise::Promise::release`]). Returns whether the promise ended.
    pub fn release_promise(&self, writer: &str) -> bool {
        let now = clock::now_ms();
        let released = self.lock().promise.release(writer, now);
        if released {
            let _ = self.persist(); // an error is logged; a lost release only makes us wait
        }
        released
    }

    /// Whether the local server answers within `deadline`. The writer asks its peers only
    /// then: the monitor reads their promises as "the writer is alive", which must not hold for
    /// a writer whose MySQL is gone.
    pub(crate) async fn server_answers(&self, deadline: std::time::Duration) -> bool {
        let mut db = self.status_db.lock().await;
        matches!(tokio::time::timeout(deadline, db.ping()).await, Ok(Ok(())))
    }
}
