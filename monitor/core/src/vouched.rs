//! The holistic view of the active master (issue 14, after orchestrator's DeadMaster vs
//! UnreachableMaster): when the monitor's checks fail on the active master but the other writer
//! candidates' agents report that it asked them for peer promises moments ago, and their IO
//! threads are connected to it, the writer is alive and connected to its peers — only the
//! monitor lost it. It then stays ONLINE with its
//! roles (rule O0 in `rules.rs`) instead of failing over; `show` says
//! `db1 unreachable from the monitor; reachable from db2`.
//!
//! Why this is safe: while its peers vouch for it, the writer keeps its lease on their promises,
//! and no other candidate would take the role anyway (ARCHITECTURE.md "Peer promises"). The
//! hold ends as soon as one candidate whose agent answers reports no fresh promise to it (the
//! writer lost that peer, so its lease runs out within one lease), or none reports one: then
//! rule O1 applies and the failover proceeds as before. The writer asks its peers only while
//! its own MySQL answers, so a writer whose server died is not held.

use std::time::Duration;

use crate::core::Core;
use crate::ids::HostId;
use crate::time::Millis;

/// How recent a peer's promise must be to count: half a lease (the writer asks every quarter
/// lease), within these bounds.
const FRESH_MIN: Duration = Duration::from_millis(500);
const FRESH_MAX: Duration = Duration::from_millis(2_500);

impl Core {
    /// How recent a promise must be to count; `None` without a writer lease (no promises).
    fn promise_fresh(&self) -> Option<Duration> {
        let lease = self.spec.writer_lease;
        (!lease.is_zero()).then(|| (lease / 2).clamp(FRESH_MIN, FRESH_MAX))
    }

    /// The other writer candidates that vouch for `h` at `now`: each reported a fresh promise
    /// to it and replicates from it with its IO thread connected. Empty when none does, or when
    /// one whose agent answers does not (a writer that lost one peer cannot keep its lease; a
    /// replica that lost its stream is evidence the writer is not serving).
    pub(crate) fn vouched_by(&self, h: HostId, now: Millis) -> Vec<String> {
        let Some(fresh) = self.promise_fresh() else {
            return Vec::new();
        };
        let Some(role) = self.spec.writer_role().and_then(|r| self.spec.role(r)) else {
            return Vec::new();
        };
        let me = self.host_name(h);
        let mut by = Vec::new();
        for name in role.hosts.iter().filter(|n| *n != me) {
            let Some(c) = self.spec.host_id(name) else {
                continue;
            };
            let rt = &self.hosts[c];
            let (Some(facts), Some(at)) = (&rt.facts, rt.facts_at) else {
                continue;
            };
            let vouches = facts
                .promise_given
                .as_ref()
                .is_some_and(|(w, age)| w == me && *age + now.since(at) <= fresh);
            let follows = facts.replicating_from.as_deref() == Some(me) && facts.io_running;
            if rt.agent_down && !vouches {
                // Its last reply is too old to tell: neither for nor against. A reply still
                // fresh counts although a later call timed out (a loaded host must not end the
                // hold on one slow answer).
                continue;
            }
            if !vouches || !follows {
                return Vec::new();
            }
            by.push(name.clone());
        }
        by
    }

    /// Whether rule O0 holds `host` (unreachable from the monitor, vouched for by its peers).
    pub fn held_by_peers(&self, host: &str) -> bool {
        self.spec
            .host_id(host)
            .is_some_and(|h| self.hosts[h].held_by_peers)
    }

    /// The line `show` prints for an active master held by its peers.
    pub(crate) fn held_line(&self, h: HostId, now: Millis) -> Option<String> {
        let by = self.vouched_by(h, now);
        (self.hosts[h].held_by_peers && !by.is_empty()).then(|| {
            format!(
                "# {} unreachable from the monitor; reachable from {}",
                self.host_name(h),
                by.join(", ")
            )
        })
    }
}
