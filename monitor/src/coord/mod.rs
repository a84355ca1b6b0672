//! Redundant monitors through etcd (issue 18): the election task ([`election`]), the state kept
//! in etcd ([`store`]), and [`Coord`], the main loop's view of its own leadership.
//!
//! Only the leader acts. Whether it may act at a given instant is the pure
//! [`ha_core::Tenure`]'s answer; this module only feeds it what the election task saw.

mod election;
mod store;

use tokio::sync::mpsc;

use ha_config::MonitorConfig;
use ha_core::Tenure;

use crate::clock::Clock;
use crate::persist::Stored;
use crate::shutdown::Shutdown;
pub use crate::snapshot::Leadership;
use election::Election;
pub(crate) use election::ElectionEvent;
use store::{EtcdStore, SaveError};

/// What the main loop does in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Lead: step the core, save, drive the agents.
    Act,
    /// A term was won and its lease is valid: load the state, then act.
    TakeOver,
    /// The term this monitor acted in is over: drop its state and go back to standby.
    StepDown,
    /// Standby, or a leader whose renewal is overdue: observe only.
    Observe,
}

/// The main loop's leadership bookkeeping.
pub(crate) struct Coord {
    events: mpsc::Receiver<ElectionEvent>,
    me: String,
    etcd: ha_config::EtcdCoordination,
    tenure: Option<Tenure>,
    /// The store of the won term (from the election task's `Won`).
    store: Option<EtcdStore>,
    /// The term whose state this monitor loaded and acts on.
    acting: Option<u64>,
    leader: Option<(String, u64)>,
    /// The term whose overdue renewal was logged (once per lapse).
    lapse_logged: Option<u64>,
    /// The last save error logged (once until it changes or a save works again).
    save_failing: Option<String>,
    /// The term whose failed state read at takeover was logged (once per term).
    load_warned: Option<u64>,
}

impl Coord {
    /// Starts the election task when `coordination:` is configured.
    pub(crate) fn spawn(cfg: &MonitorConfig, clock: Clock, shutdown: Shutdown) -> Option<Coord> {
        let etcd = cfg.etcd()?.clone();
        let me = cfg.control_addr().to_string();
        let (tx, rx) = mpsc::channel(64);
        let election = Election {
            etcd: etcd.clone(),
            me: me.clone(),
            clock,
            events: tx,
        };
        tokio::spawn(election.run(shutdown));
        Some(Coord {
            events: rx,
            me,
            etcd,
            tenure: None,
            store: None,
            acting: None,
            leader: None,
            lapse_logged: None,
            save_failing: None,
            load_warned: None,
        })
    }

    /// The next election event (for the main loop's `select!`).
    pub(crate) async fn next_event(&mut self) -> Option<ElectionEvent> {
        self.events.recv().await
    }

    pub(crate) fn on_event(&mut self, ev: ElectionEvent) {
        match ev {
            ElectionEvent::Won {
                term,
                sent,
                ttl,
                client,
                lease,
            } => {
                self.tenure = Some(Tenure::won(term, ha_core::Millis(sent), ttl));
                self.store = Some(EtcdStore::new(&self.etcd, *client, lease, term));
                self.leader = Some((self.me.clone(), term));
            }
            ElectionEvent::Renewed { term, sent, ttl } => {
                if let Some(t) = self.tenure.as_mut().filter(|t| t.term == term) {
                    t.renewed(ha_core::Millis(sent), ttl);
                }
            }
            ElectionEvent::Lost { term, .. } => self.lost(term),
            ElectionEvent::Leader(l) => self.leader = l,
        }
    }

    /// The term is over (lease gone, or a save found a newer leader).
    pub(crate) fn lost(&mut self, term: u64) {
        if self.tenure.is_some_and(|t| t.term == term) {
            self.tenure = None;
            self.store = None;
        }
    }

    pub(crate) fn verdict(&mut self, now: u64) -> Verdict {
        let Some(t) = self.tenure else {
            return if self.acting.take().is_some() {
                Verdict::StepDown
            } else {
                Verdict::Observe
            };
        };
        if !t.valid(ha_core::Millis(now)) {
            if self.acting == Some(t.term) && self.lapse_logged != Some(t.term) {
                tracing::error!(
                    "Leadership term {}: no lease renewal answered in time; not acting until \
                     etcd answers again (a standby takes over if the lease expires)",
                    t.term
                );
                self.lapse_logged = Some(t.term);
            }
            return Verdict::Observe;
        }
        if self.lapse_logged.take().is_some() {
            tracing::info!("Leadership term {}: lease renewed, acting again", t.term);
        }
        match self.acting {
            Some(a) if a == t.term => Verdict::Act,
            // A new term while the old one's state is still loaded: drop it first.
            Some(_) => {
                self.acting = None;
                Verdict::StepDown
            }
            None => Verdict::TakeOver,
        }
    }

    /// May the leader still act at `now` (re-checked after a save that blocked the loop)?
    pub(crate) fn valid(&self, now: u64) -> bool {
        self.acting.is_some() && self.tenure.is_some_and(|t| t.valid(ha_core::Millis(now)))
    }

    pub(crate) fn took_over(&mut self, term: u64) {
        self.acting = Some(term);
    }

    /// The state the previous leaders left in etcd, for the takeover of the won term.
    /// `None`: no term won, or etcd did not answer (logged; the next pass retries).
    pub(crate) async fn load(&mut self) -> Option<(u64, Stored)> {
        let store = self.store.as_mut()?;
        let from = format!("etcd key {}", self.etcd.state_key());
        let stored = match store.load().await {
            Ok(Some(doc)) => {
                let text = String::from_utf8_lossy(&doc);
                match crate::status_file::decode(&text, std::path::Path::new(&from)) {
                    Ok(state) => Stored::Found { state, from },
                    Err(e) => Stored::Unreadable(e.to_string()),
                }
            }
            Ok(None) => Stored::Missing {
                note: format!("No stored state in {from}"),
            },
            Err(e) => {
                if self.load_warned != Some(store.term()) {
                    tracing::warn!("Taking over term {}: {e}; retrying", store.term());
                    self.load_warned = Some(store.term());
                }
                return None;
            }
        };
        Some((store.term(), stored))
    }

    pub(crate) fn leadership(&self) -> Leadership {
        match (self.acting, self.tenure) {
            (Some(a), Some(t)) if a == t.term => Leadership::Leading {
                me: self.me.clone(),
                term: a,
            },
            _ => Leadership::Standby {
                me: self.me.clone(),
                leader: self.leader.clone().filter(|(who, _)| *who != self.me),
            },
        }
    }

    /// Saves the core's persisted state under this term and tells the core how it went (as
    /// the status file writer does). A save refused because the leadership key has a newer
    /// term ends this monitor's term at once.
    pub(crate) async fn save(&mut self, core: &mut ha_core::Core, now_ms: u64) {
        let snapshot = core.persisted();
        let Some(store) = self.store.as_mut() else {
            core.save_failed();
            return;
        };
        let term = store.term();
        let result = match crate::status_file::encode(&snapshot, now_ms) {
            Ok(doc) => store.save(doc).await,
            Err(e) => Err(SaveError::Failed(format!("cannot encode the state: {e}"))),
        };
        match result {
            Ok(()) => {
                core.saved(&snapshot);
                if self.save_failing.take().is_some() {
                    tracing::info!("state saved to etcd again (term {term})");
                }
            }
            Err(SaveError::Deposed) => {
                core.save_failed();
                tracing::error!(
                    "etcd refused the state of term {term}: the leadership key is gone or \
                     belongs to a newer term, so this monitor no longer leads"
                );
                self.lost(term);
            }
            Err(SaveError::Failed(text)) => {
                core.save_failed();
                if self.save_failing.as_deref() != Some(text.as_str()) {
                    tracing::error!(
                        "{text}; retrying with every pass. Until it works no new writer is \
                         promoted (a new leader must know of every writer grant)"
                    );
                }
                self.save_failing = Some(text);
            }
        }
    }

    /// Shutdown of a leader, after its last save: the lease is revoked, a standby takes over at
    /// once.
    pub(crate) async fn resign(&mut self) {
        if let Some(s) = self.store.as_mut() {
            s.resign().await;
        }
    }
}
