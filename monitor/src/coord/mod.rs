//! Redundant monitors through etcd (issue 18): the election task ([`election`]), the state kept
//! in etcd ([`store`]), and [`Coord`], the main loop's view of its own leadership.
//!
//! Only the leader acts. Whether this monitor may act in a pass is the pure
//! [`ha_core::LeaderState`]'s answer (its `Tenure` compares the instants); this module only
//! feeds it what the election task saw, logs what it reports, and holds the term's store.

mod election;
mod store;

use tokio::sync::mpsc;

use ha_config::MonitorConfig;
pub(crate) use ha_core::Verdict;
use ha_core::{LeaderState, Millis, TenureNote};

use crate::clock::Clock;
use crate::persist::{SaveOutcome, Stored};
use crate::shutdown::Shutdown;
use crate::snapshot::Leadership;
use election::Election;
pub(crate) use election::ElectionEvent;
use store::{EtcdStore, SaveError};

/// The main loop's leadership bookkeeping.
pub(crate) struct Coord {
    events: mpsc::Receiver<ElectionEvent>,
    me: String,
    etcd: ha_config::EtcdCoordination,
    /// The won term and whether this monitor may act in it (pure, `ha_core`).
    state: LeaderState,
    /// The store of the won term (from the election task's `Won`).
    store: Option<EtcdStore>,
    leader: Option<(String, u64)>,
    /// How the last saves went (a failure is logged once until it changes).
    save_outcome: SaveOutcome,
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
            state: LeaderState::default(),
            store: None,
            leader: None,
            save_outcome: SaveOutcome::default(),
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
                self.state.won(term, Millis(sent), ttl);
                self.store = Some(EtcdStore::new(&self.etcd, *client, lease, term));
                self.leader = Some((self.me.clone(), term));
            }
            ElectionEvent::Renewed { term, sent, ttl } => {
                self.state.renewed(term, Millis(sent), ttl)
            }
            ElectionEvent::Lost { term, .. } => self.lost(term),
            ElectionEvent::Leader(l) => self.leader = l,
        }
    }

    /// The term is over (lease gone, or a save found a newer leader).
    pub(crate) fn lost(&mut self, term: u64) {
        if self.state.lost(term) {
            self.store = None;
        }
    }

    /// What this pass does (`ha_core::LeaderState::verdict`), with its log lines.
    pub(crate) fn verdict(&mut self, now: u64) -> Verdict {
        let (verdict, note) = self.state.verdict(Millis(now));
        match note {
            Some(TenureNote::Lapsed { term }) => tracing::error!(
                "Leadership term {term}: no lease renewal answered in time; not acting until \
                 etcd answers again (a standby takes over if the lease expires)"
            ),
            Some(TenureNote::Resumed { term }) => {
                tracing::info!("Leadership term {term}: lease renewed, acting again")
            }
            None => {}
        }
        verdict
    }

    /// May the leader still act at `now` (re-checked after a save that blocked the loop)?
    pub(crate) fn valid(&self, now: u64) -> bool {
        self.state.valid(Millis(now))
    }

    pub(crate) fn took_over(&mut self, term: u64) {
        self.state.took_over(term);
    }

    /// The state the previous leaders left in etcd, for the takeover of the won term.
    /// `None`: no term won, or etcd did not answer (logged; the next pass retries).
    pub(crate) async fn load(&mut self) -> Option<(u64, Stored)> {
        let store = self.store.as_mut()?;
        match store.load().await {
            Ok(doc) => Some((
                store.term(),
                Stored::from_etcd(doc.as_deref(), &self.etcd.state_key()),
            )),
            Err(e) => {
                if self.load_warned != Some(store.term()) {
                    tracing::warn!("Taking over term {}: {e}; retrying", store.term());
                    self.load_warned = Some(store.term());
                }
                None
            }
        }
    }

    pub(crate) fn leadership(&self) -> Leadership {
        match self.state.leading() {
            Some(term) => Leadership::Leading {
                me: self.me.clone(),
                term,
            },
            None => Leadership::Standby {
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
        let result = match result {
            Ok(()) => Ok(()),
            Err(SaveError::Failed(text)) => Err(text),
            Err(SaveError::Deposed) => {
                core.save_failed();
                tracing::error!(
                    "etcd refused the state of term {term}: the leadership key is gone or \
                     belongs to a newer term, so this monitor no longer leads"
                );
                self.lost(term);
                return;
            }
        };
        self.save_outcome.report(
            core,
            &snapshot,
            result,
            || format!("state saved to etcd again (term {term})"),
            "a new leader",
        );
    }

    /// Shutdown of a leader, after its last save: the lease is revoked, a standby takes over at
    /// once.
    pub(crate) async fn resign(&mut self) {
        if let Some(s) = self.store.as_mut() {
            s.resign().await;
        }
    }
}
