//! The failover / switchover plan and its safety gates (docs/product.md F6, F7, F9, F10).
//!
//! The role table changes at once; what an agent is *told* lags behind until it is safe:
//!
//! 1. **Demote** — the old writer's desired state no longer contains the writer role.
//! 2. **Wait** — the new owner's desired state gets the writer role only when no other host may
//!    still be writable (`exposure.rs`): each one either confirmed its demotion, or its writer
//!    lease surely ended (last acknowledgement + `writer_lease` + its fence budget), or it was
//!    killed successfully — and only once the status file records the new owner as possibly
//!    writable.
//! 3. **Sync and promote** — the agent applies the relay log before it becomes writable; if it
//!    cannot (`promotion_error`), the writer role is orphaned again, the failure is logged and the
//!    next eligible candidate is tried (the failed one is skipped for [`PROMOTION_RETRY`]).
//! 4. **Re-point** — only once the new writer reported `writer_synced` and `!read_only` do the
//!    other hosts' desired states name it as `active_master` (F7).
//!
//! The same remove-before-add rule holds for every other role: an IP is only given to its new
//! owner once the old owner confirmed dropping it, or is unreachable (ping failed or agent
//! down), or was killed (F10).

use crate::core::Core;
use crate::exposure::Fence;
use crate::ids::{EntryId, HostId, RoleId};
use crate::io::{log, log_event, Action, Event, EventKind, Level};
use crate::spec::{Check, HostState};
use crate::time::Millis;
use std::time::Duration;

/// How long a host that refused a promotion is skipped as writer candidate. Long enough for the
/// other candidates to be tried first, short enough that a cluster whose every candidate lagged
/// retries on its own once the lag is gone.
pub const PROMOTION_RETRY: Duration = Duration::from_secs(30);

impl Core {
    /// Whether host `h` may still be writable / hold the writer IP at `now`.
    pub(crate) fn may_write(&self, h: HostId, now: Millis) -> bool {
        self.hosts
            .get(h)
            .is_some_and(|rt| rt.exposure.may_write(now))
    }

    /// Whether host `h` may get role `r` now: ONLINE, agent reachable, listed for the role, and
    /// for the writer not a recently failed promotion candidate, nor refused because the old
    /// active master fell back to asynchronous replication (`semisync.rs`).
    pub(crate) fn eligible(&self, r: RoleId, h: HostId, now: Millis) -> bool {
        let Some(rt) = self.hosts.get(h) else {
            return false;
        };
        if !self.spec.can_hold(r, h) || rt.state != HostState::Online || rt.agent_down {
            return false;
        }
        if Some(r) == self.spec.writer_role() {
            if self.failover_refused(h) {
                return false;
            }
            if let Some(at) = rt.promotion_failed_at {
                return now.reached(at, PROMOTION_RETRY);
            }
        }
        true
    }

    /// Whether table entry `e` may be handed to host `to` now: nobody else may still hold it.
    pub(crate) fn released_for(&self, e: EntryId, to: HostId, now: Millis) -> bool {
        let writer = self.table.is_writer(e);
        self.hosts
            .iter_enumerated()
            .filter(|&(h, _)| h != to)
            .all(|(h, rt)| {
                if writer {
                    !self.may_write(h, now)
                } else {
                    !rt.maybe_holds.contains(&e) || rt.agent_down || rt.check(Check::Ping).failed()
                }
            })
    }

    /// Roles of `h` were stripped in ACTIVE mode: fence it unless the agent gets the news.
    /// mmm kills when the send fails; sending to a host whose ping fails always fails.
    pub(crate) fn start_fence(&mut self, h: HostId, out: &mut Vec<Action>) {
        let Some(rt) = self.hosts.get_mut(h) else {
            return;
        };
        if rt.exposure.fence() == Fence::Killing {
            return;
        }
        rt.exposure.set_fence(Fence::AwaitDelivery { sent: false });
        if rt.check(Check::Ping).failed() || rt.agent_down {
            self.request_kill(h, out);
        }
    }

    /// A host the writer role left that cannot hear it (agent unreachable or ping failing) is
    /// killed now; the new writer waits for the kill's outcome (`Exposure::writer_departed`).
    /// mmm kills only hosts stripped because they failed; a switchover away from a host whose
    /// agent is dead needs the same (chaos seed 494).
    pub(crate) fn fence_departed_writers(&mut self, out: &mut Vec<Action>) {
        let silent: Vec<HostId> = self
            .hosts
            .iter_enumerated()
            .filter(|(_, rt)| {
                rt.exposure.departure_pending()
                    && matches!(rt.exposure.fence(), Fence::AwaitDelivery { .. })
                    && (rt.agent_down || rt.check(Check::Ping).failed())
            })
            .map(|(h, _)| h)
            .collect();
        for h in silent {
            self.request_kill(h, out);
        }
    }

    /// Emits a kill for `h` (ACTIVE mode only, F3; never while the monitor itself is isolated).
    pub(crate) fn request_kill(&mut self, h: HostId, out: &mut Vec<Action>) {
        if self.mode != crate::Mode::Active || !self.network_up {
            return;
        }
        let name = self.host_name(h).to_string();
        let configured = self.spec.kill_host_configured;
        let Some(rt) = self.hosts.get_mut(h) else {
            return;
        };
        if configured {
            rt.exposure.set_fence(Fence::Killing);
            let ping_ok = rt.check(Check::Ping).ok();
            let event = Event::new(
                EventKind::FenceStarted,
                format!(
                    "Fencing host '{name}' with kill_host_bin (ping {})",
                    if ping_ok { "OK" } else { "not OK" }
                ),
            );
            out.push(Action::Event(event.host(&name)));
            out.push(Action::Kill {
                host: name,
                ping_ok,
            });
        } else {
            rt.exposure.set_fence(Fence::Idle);
            let event = Event::new(
                EventKind::FenceFailed,
                format!(
                    "Could not kill host '{name}' - there may be some duplicate ips now! \
                     (There's no binary configured for killing hosts.)"
                ),
            );
            log_event(out, Level::Error, event.host(&name));
        }
    }

    /// The outcome of a [`Action::Kill`]: a fenced host holds nothing any more.
    pub(crate) fn apply_kill_result(
        &mut self,
        host: &str,
        ok: bool,
        output: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(h) = self.spec.host_id(host) else {
            return;
        };
        let rt = &mut self.hosts[h];
        rt.exposure.set_fence(Fence::Idle);
        if ok {
            // A fenced host holds nothing any more: its IPs and writability are gone.
            rt.maybe_holds.clear();
            rt.exposure.killed();
            self.dirty = true;
            let event = Event::new(
                EventKind::FenceDone,
                format!("Killed host '{host}': {output}"),
            );
            log_event(out, Level::Info, event.host(host));
        } else {
            let event = Event::new(
                EventKind::FenceFailed,
                format!("Could not kill host '{host}' - there may be some duplicate ips now! ({output})"),
            );
            log_event(out, Level::Error, event.host(host));
        }
    }

    /// Step 3 and 4 of the plan for the current writer owner: give up on a failed promotion,
    /// or record the confirmation that re-points the replicas.
    pub(crate) fn promotion_progress(&mut self, now: Millis, out: &mut Vec<Action>) {
        let (Some(e), Some(w)) = (self.table.writer_entry(), self.table.active_master()) else {
            return;
        };
        if self.confirmed_writer == Some(w) {
            return;
        }
        let inst = self.table.instance(&self.spec, e);
        let name = self.host_name(w).to_string();
        let Some(facts) = self.hosts.get(w).and_then(|rt| rt.facts.clone()) else {
            return;
        };
        if facts.epoch < self.epoch {
            return;
        }
        if let (Some(err), Some(left)) = (&facts.promotion_error, facts.refused_for_promise) {
            // Not a failed promotion: the host promised the previous writer not to take the role
            // (peer promises), and so did every other candidate. Once the promise ends (the
            // previous writer no longer asks for it) a repeated grant is taken.
            let rt = &mut self.hosts[w];
            if !rt.waits_for_promise {
                rt.waits_for_promise = true;
                log(
                    out,
                    Level::Warn,
                    format!(
                        "Role '{inst}' is not taken by '{name}' yet: {err}. Waiting for the promise to end (at most {:.1} s); the grant is repeated meanwhile",
                        left.as_secs_f64()
                    ),
                );
            }
            return;
        }
        if let Some(rt) = self.hosts.get_mut(w) {
            rt.waits_for_promise = false;
        }
        if let Some(err) = &facts.promotion_error {
            if self.force_writer != Some(w) {
                let mut event = Event::new(
                    EventKind::PromotionFailed,
                    format!("Promotion of '{name}' to '{inst}' failed: {err}. The role stays orphaned and the next candidate is tried."),
                )
                .host(&name);
                event.role = Some(inst.to_string());
                event.cause = self.writer_since.map(|(_, c)| c.to_string());
                log_event(out, Level::Error, event);
                self.set_owner(e, None);
                if let Some(rt) = self.hosts.get_mut(w) {
                    rt.promotion_failed_at = Some(now);
                }
                return;
            }
        }
        let holds = facts.roles.contains(&inst);
        if holds && !facts.read_only && (facts.writer_synced || self.force_writer == Some(w)) {
            self.confirmed_writer = Some(w);
            self.dirty = true;
            log(
                out,
                Level::Info,
                format!("Host '{name}' is the active master now (writable, epoch {}); replicas follow it", self.epoch),
            );
        }
    }

    /// Logs once per epoch that the writer waits for the old writer to let go.
    pub(crate) fn log_gate(&mut self, now: Millis, out: &mut Vec<Action>) {
        let (Some(e), Some(w)) = (self.table.writer_entry(), self.table.active_master()) else {
            return;
        };
        if self.gate_logged == Some(self.epoch) || self.released_for(e, w, now) {
            return;
        }
        self.gate_logged = Some(self.epoch);
        let blockers: Vec<&str> = self
            .hosts
            .ids()
            .filter(|&h| h != w && self.may_write(h, now))
            .map(|h| self.host_name(h))
            .collect();
        log(
            out,
            Level::Warn,
            format!(
                "Role '{}' is not given to '{}' yet: waiting until {} confirmed its demotion, was killed or its writer lease expired",
                self.table.instance(&self.spec, e),
                self.host_name(w),
                blockers.join(", ")
            ),
        );
    }
}
