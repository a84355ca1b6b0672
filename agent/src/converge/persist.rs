//! The state file: what survives a restart of the agent (epoch, writer lease, writer IPs).

use super::Agent;
use crate::lease::clock;
use crate::lease::store::Persisted;

impl Agent {
    /// Loads the state file. Returns whether a valid writer lease was restored.
    pub(super) fn restore(&self) -> bool {
        let stored = match self.store.load() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e}; starting without a stored epoch or lease (the host is fenced if it is writable)");
                None
            }
        };
        let Some(st) = stored else {
            return false;
        };
        let now = clock::now_ms();
        let mut g = self.lock();
        g.max_epoch = st.epoch;
        g.writer_ips = st.writer_ips.clone();
        if let Some(r) = st.lease.role() {
            if !g.writer_ips.contains(&r.ip) {
                g.writer_ips.push(r.ip);
            }
        }
        let valid = st.boot_id == self.boot_id && st.lease.valid_at(now);
        if valid {
            tracing::info!(
                epoch = st.epoch,
                "restored the writer lease of {} from {}: {} ms left until fencing",
                st.lease.role().map(|r| r.to_string()).unwrap_or_default(),
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
        valid
    }

    /// Writes the state file (epoch, lease, writer IPs) as it is now.
    pub(crate) fn persist(&self) {
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
                },
            )
        };
        let result = self.store.save(seq, &snapshot);
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
    }
}
