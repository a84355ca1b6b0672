//! Semi-sync awareness: the active master falling back to asynchronous replication.
//!
//! With semi-sync replication a commit is acknowledged to the client only once a replica has
//! it, which is what "no acknowledged write is lost in a failover" rests on (docs/product.md I2).
//! When no acknowledgement comes within `rpl_semi_sync_master_timeout`, or no semi-sync
//! replica is connected, the master switches to asynchronous replication on its own
//! (`Rpl_semi_sync_master_status=OFF`) and keeps acknowledging commits — the promise silently
//! stops holding. The agent of the active master reports that status; the core records when the
//! fallback began, logs it, shows it (`show`), and with `monitor.refuse_failover_after_async`
//! refuses to give the writer role to another host on its own while the fallback stands: an
//! operator's `move_role` still moves it, and the old writer may take it back.
//!
//! The fallback ends when the active master reports semi-sync active again (a replica caught
//! up), or semi-sync switched off in its configuration, or another host is confirmed as the
//! active master.

use crate::core::Core;
use crate::fallback::AsyncFallback;
use crate::ids::HostId;
use crate::io::{log, log_event, Action, Event, EventKind, Level, SemiSyncFacts};
use crate::spec::Mode;
use crate::time::Millis;

impl Core {
    /// After a status reply from `h`: starts or ends the fallback record.
    pub(crate) fn note_semi_sync(&mut self, h: HostId, now: Millis, out: &mut Vec<Action>) {
        if let Some(f) = self.async_fallback {
            if self.confirmed_writer.is_some_and(|w| w != f.host) {
                let name = self.host_name(f.host).to_string();
                self.async_fallback = None;
                log(
                    out,
                    Level::Info,
                    format!("Another host is the active master now: the asynchronous fallback of '{name}' no longer matters"),
                );
            }
        }
        if self.confirmed_writer != Some(h) {
            return;
        }
        let name = self.host_name(h).to_string();
        // Unknown (not loaded, or the agent could not read it) changes nothing.
        let Some(semi_sync) = self.hosts[h].facts.as_ref().and_then(|f| f.semi_sync) else {
            return;
        };
        let fell_back = semi_sync
            == SemiSyncFacts {
                enabled: true,
                active: false,
            };
        match (fell_back, self.async_fallback) {
            (true, None) => {
                self.async_fallback = Some(AsyncFallback {
                    host: h,
                    since: now,
                    refusal_logged: false,
                });
                log(
                    out,
                    Level::Error,
                    format!(
                        "Semi-sync replication on the active master '{name}' fell back to asynchronous replication (Rpl_semi_sync_master_status=OFF): writes acknowledged from now on may be missing on every other host{}",
                        if self.spec.refuse_failover_after_async {
                            "; the writer role will not fail over on its own while this lasts (refuse_failover_after_async)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            (false, Some(f)) if f.host == h => {
                self.async_fallback = None;
                log(
                    out,
                    Level::Info,
                    format!("Semi-sync replication on the active master '{name}' is active again"),
                );
            }
            _ => {}
        }
    }

    /// Whether the writer role may not go to `h` on its own: the old active master fell back to
    /// asynchronous replication and the configuration refuses the failover.
    pub(crate) fn failover_refused(&self, h: HostId) -> bool {
        self.spec.refuse_failover_after_async && self.async_fallback.is_some_and(|f| f.host != h)
    }

    /// Logs once why the orphaned writer role is not given to another host.
    pub(crate) fn log_async_refusal(&mut self, out: &mut Vec<Action>) {
        let Some(f) = self.async_fallback else {
            return;
        };
        let orphaned = self
            .table
            .writer_entry()
            .is_some_and(|e| self.table.entries[e].owner.is_none());
        if !self.spec.refuse_failover_after_async
            || f.refusal_logged
            || !orphaned
            || self.mode != Mode::Active
        {
            return;
        }
        let name = self.host_name(f.host).to_string();
        let event = Event::new(
            EventKind::PromotionRefused,
            format!(
                "Not failing the writer role over: '{name}' had fallen back to asynchronous replication, so acknowledged writes may be missing on every candidate (refuse_failover_after_async). Bring '{name}' back, or move the role anyway: move_role writer HOST"
            ),
        );
        let mut event = event.from_to(Some(name), None);
        event.cause = Some("failover".into());
        log_event(out, Level::Error, event);
        if let Some(f) = self.async_fallback.as_mut() {
            f.refusal_logged = true;
        }
    }

    /// The active master's asynchronous fallback, if one stands: (host, since).
    pub fn async_fallback(&self) -> Option<(&str, Millis)> {
        self.async_fallback
            .map(|f| (self.host_name(f.host), f.since))
    }
}
