//! The state file: what survives a restart of the agent (epoch, writer lease, writer IPs).

use super::Agent;
use crate::lease::clock;
use crate::lease::store::Persisted;

/// What the state file gave at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restored {
    /// A writer lease (or an adoption) still valid on this boot.
    ValidLease,
    /// A file without a valid lease, or one that cannot be read.
    NoValidLease,
    /// No file: this agent never ran here (or the file was deleted).
    NoFile,
}

impl Agent {
    /// Loads the state file.
    pub(super) fn restore(&self) -> Restored {
        let stored = match self.store.load() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}; starting without a stored epoch or lease (the host is fenced if it is writable), and refusing the writer role for {} s in case this agent had promised a peer not to take it", ha_lease::promise::MAX_PROMISE_SPAN_MS / 1000);
                self.lock().promise = crate::lease::promise::Promise::unknown(clock::now_ms());
                return Restored::NoValidLease;
            }
        };
        let Some(st) = stored else {
            return Restored::NoFile;
        };
        let now = clock::now_ms();
        let mut g = self.lock();
        g.max_epoch = st.epoch;
        g.max_term = st.leader_term;
        g.writer_ips = st.writer_ips.clone();
        g.writer_peers = st.writer_peers.clone();
        if let Some(r) = st.lease.role() {
            if !g.writer_ips.contains(&r.ip) {
                g.writer_ips.push(r.ip);
            }
        }
        let same_boot = st.boot_id == self.boot_id;
        g.promise = st.promise.clone();
        if !same_boot {
            g.promise.rebooted(now);
        }
        if let Some(why) = g.promise.refuses_writer(now) {
            tracing::info!(
                "restored a peer promise from {}: {why}",
                self.store.path().display()
            );
        }
        let valid = same_boot && st.lease.valid_at(now);
        if valid {
            tracing::info!(
                epoch = st.epoch,
                "restored the writer lease of {} from {}: {} ms left until fencing",
                st.lease
                    .role()
                    .map_or("the adopted writer".to_string(), |r| r.to_string()),
                self.store.path().display(),
                st.lease.remaining_ms(now)
            );
            g.lease = st.lease;
        } else {
            if st.lease.running() {
                tracing::warn!(
                    "the writer lease in {} is over (or from another boot): fencing if this host is writable",
                    self.store.path().display()
                );
            }
            tracing::info!(
                epoch = st.epoch,
                "restored epoch {} from {}",
                st.epoch,
                self.store.path().display()
            );
        }
        if valid {
            Restored::ValidLease
        } else {
            Restored::NoValidLease
        }
    }

    /// Writes the state file (epoch, lease, writer IPs, promise) as it is now; an error is
    /// logged (once until it changes) and returned.
    pub(crate) fn persist(&self) -> Result<(), String> {
        let (seq, snapshot) = {
            let mut g = self.lock();
            g.persist_seq += 1;
            (
                g.persist_seq,
                Persisted {
                    boot_id: self.boot_id.clone(),
                    epoch: g.max_epoch,
                    lease: g.lease.clone(),
                    writer_ips: g.writer_ips.clone(),
                    promise: g.promise.clone(),
                    writer_peers: g.writer_peers.clone(),
                    leader_term: g.max_term,
                },
            )
        };
        let result = self.store.save(seq, &snapshot);
        let report = result.clone();
        let mut last = self.store_error.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                if last.take().is_some() {
                    tracing::info!(
                        "agent state file {} written again",
                        self.store.path().display()
                    );
                }
            }
            Err(e) => {
                if last.as_deref() != Some(e.as_str()) {
                    tracing::error!("{e}; a restart of this agent would lose its epoch and lease (and fence the host if it is writable)");
                }
                *last = Some(e);
            }
        }
        report
    }
}
