//! The monitor's persisted state in etcd: what the status file holds for a single monitor.
//!
//! Every write is one transaction "if the leadership key still has my term's create revision,
//! put the state": a deposed leader's write fails instead of overwriting its successor's.
//! Reads are etcd's default linearizable reads, so a new leader sees every state its
//! predecessor committed.

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};

use ha_config::EtcdCoordination;

use super::election::bounded;

/// Why a save did not land.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// The leadership key is gone or belongs to a newer term: this monitor no longer leads.
    Deposed,
    /// etcd did not answer, or refused; the leader retries with its next pass.
    Failed(String),
}

/// The state keys of one leadership term.
pub(crate) struct EtcdStore {
    client: Client,
    lease: i64,
    term: u64,
    ttl: Duration,
    leader_key: String,
    state_key: String,
    deadline: Duration,
}

impl EtcdStore {
    pub(crate) fn new(etcd: &EtcdCoordination, client: Client, lease: i64, term: u64) -> Self {
        let ttl = etcd.lease_ttl.duration();
        EtcdStore {
            client,
            lease,
            term,
            ttl,
            leader_key: etcd.leader_key(),
            state_key: etcd.state_key(),
            // A save blocks the main loop: well inside the acting window.
            deadline: (ttl / 4).min(Duration::from_secs(1)),
        }
    }

    pub(crate) fn term(&self) -> u64 {
        self.term
    }

    /// The stored document the previous leaders left (`None`: the cluster never had one).
    /// `Err`: etcd did not answer.
    pub(crate) async fn load(&mut self) -> Result<Option<Vec<u8>>, String> {
        let what = format!("read etcd key {}", self.state_key);
        let got = bounded(
            self.deadline,
            &what,
            self.client.get(self.state_key.clone(), None),
        )
        .await?;
        Ok(got.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// Writes `doc` (see [`crate::status_file::encode`]) if this term still leads.
    pub(crate) async fn save(&mut self, doc: Vec<u8>) -> Result<(), SaveError> {
        let txn = Txn::new()
            .when(vec![Compare::create_revision(
                self.leader_key.clone(),
                CompareOp::Equal,
                self.term as i64,
            )])
            .and_then(vec![TxnOp::put(self.state_key.clone(), doc, None)]);
        let what = format!("write etcd key {}", self.state_key);
        match bounded(self.deadline, &what, self.client.txn(txn)).await {
            Ok(r) if r.succeeded() => Ok(()),
            Ok(_) => Err(SaveError::Deposed),
            Err(e) => Err(SaveError::Failed(e)),
        }
    }

    /// Gives the leadership up (shutdown, after the last save).
    pub(crate) async fn resign(&mut self) {
        super::election::resign(&mut self.client, self.lease, self.ttl).await;
    }
}
