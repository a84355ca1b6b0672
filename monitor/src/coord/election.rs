//! The election task: campaigns for the leadership key, keeps the won lease alive, and tells
//! the main loop what happened. It decides nothing about acting: the main loop asks the pure
//! [`ha_core::Tenure`] whether the latest answered renewal still allows it.
//!
//! The leadership key `<prefix>/leader` holds the leader's control address and is bound to the
//! leader's lease; its create revision is the term. Campaign = one transaction "create the key
//! if it does not exist", so at most one monitor holds it at a time, and a later term always
//! has a higher number (etcd revisions only grow).

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp};
use tokio::sync::mpsc;

use ha_config::EtcdCoordination;

use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// What the election task reports to the main loop.
pub(crate) enum ElectionEvent {
    /// This monitor won `term` with a lease whose grant was sent at `sent` (clock ms).
    Won {
        term: u64,
        sent: u64,
        ttl: Duration,
        client: Box<Client>,
        lease: i64,
    },
    /// The lease of `term` was renewed by a request sent at `sent`.
    Renewed { term: u64, sent: u64, ttl: Duration },
    /// The leadership of `term` is over (lease expired or revoked).
    Lost { term: u64 },
    /// Who leads as far as this monitor can tell (control address, term); `None`: nobody, or
    /// etcd cannot be reached.
    Leader(Option<(String, u64)>),
}

/// Settings of one election task.
pub(crate) struct Election {
    pub etcd: EtcdCoordination,
    /// This monitor's control address: the leadership key's value, where standbys send
    /// ha-control.
    pub me: String,
    pub clock: Clock,
    pub events: mpsc::Sender<ElectionEvent>,
}

/// Deadline of one etcd request: a third of the lease, at most 2 s.
fn request_deadline(ttl: Duration) -> Duration {
    (ttl / 3).min(Duration::from_secs(2))
}

impl Election {
    fn ttl(&self) -> Duration {
        self.etcd.lease_ttl.duration()
    }

    /// Runs until shutdown: connect, campaign, lead until the lease is lost, campaign again.
    pub(crate) async fn run(self, mut shutdown: Shutdown) {
        let mut last_error = String::new();
        loop {
            let round = async {
                let mut client = self.connect().await?;
                self.campaign_and_lead(&mut client).await
            };
            let result = tokio::select! {
                r = round => r,
                _ = shutdown.recv() => return,
            };
            if let Err(e) = result {
                if e != last_error {
                    tracing::error!(
                        "etcd coordination: {e}; this monitor does not lead until etcd answers \
                         (endpoints {:?})",
                        self.etcd.endpoints
                    );
                    last_error = e;
                }
                let _ = self.events.send(ElectionEvent::Leader(None)).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.recv() => return,
            }
        }
    }

    async fn connect(&self) -> Result<Client, String> {
        let deadline = request_deadline(self.ttl());
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(deadline)
            .with_timeout(deadline)
            .with_keep_alive(Duration::from_secs(1), deadline);
        if let Some(t) = self.etcd.tls_on() {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| {
                    format!("cannot read {} (coordination.etcd.tls): {e}", p.display())
                })
            };
            let ca = read(&t.ca_file)?;
            let cert = read(&t.cert_file)?;
            let key = read(&t.key_file)?;
            opts = opts.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(ca))
                    .identity(etcd_client::Identity::from_pem(cert, key)),
            );
        }
        tokio::time::timeout(deadline, Client::connect(&self.etcd.endpoints, Some(opts)))
            .await
            .map_err(|_| format!("no etcd endpoint answered within {deadline:?}"))?
            .map_err(|e| format!("cannot connect to etcd: {e}"))
    }

    /// Polls the leadership key until it is free, then tries to create it bound to a new
    /// lease; on a win, keeps the lease alive until it is lost. Returns on etcd errors.
    async fn campaign_and_lead(&self, client: &mut Client) -> Result<(), String> {
        let key = self.etcd.leader_key();
        let ttl = self.ttl();
        let deadline = request_deadline(ttl);
        let poll = (ttl / 20).clamp(Duration::from_millis(50), Duration::from_millis(250));
        let mut seen: Option<(String, u64)> = None;
        loop {
            let current = bounded(
                deadline,
                "read the leadership key",
                client.get(key.clone(), None),
            )
            .await?;
            match current.kvs().first() {
                Some(kv) => {
                    let leader = (
                        kv.value_str().unwrap_or("?").to_string(),
                        kv.create_revision() as u64,
                    );
                    if seen.as_ref() != Some(&leader) {
                        tracing::info!(
                            "Monitor {} leads (term {}); this monitor is a standby",
                            leader.0,
                            leader.1
                        );
                        let _ = self
                            .events
                            .send(ElectionEvent::Leader(Some(leader.clone())))
                            .await;
                        seen = Some(leader);
                    }
                    tokio::time::sleep(poll).await;
                    continue;
                }
                None => {
                    if seen.take().is_some() {
                        let _ = self.events.send(ElectionEvent::Leader(None)).await;
                    }
                }
            }
            // Free: grant a lease, then try to create the key bound to it.
            let sent = self.clock.now_ms();
            let grant = bounded(
                deadline,
                "grant a lease",
                client.lease_grant(ttl.as_secs() as i64, None),
            )
            .await?;
            let lease = grant.id();
            let txn = Txn::new()
                .when(vec![Compare::create_revision(
                    key.clone(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then(vec![TxnOp::put(
                    key.clone(),
                    self.me.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            let won = bounded(deadline, "create the leadership key", client.txn(txn)).await?;
            if !won.succeeded() {
                // Another monitor was faster; its key shows up on the next poll.
                let _ = bounded(deadline, "revoke a lease", client.lease_revoke(lease)).await;
                continue;
            }
            let term = won.header().map(|h| h.revision()).unwrap_or(0) as u64;
            tracing::warn!(
                "This monitor ({}) won the leadership: term {term}, lease {lease:x} ({}s)",
                self.me,
                ttl.as_secs()
            );
            let _ = self
                .events
                .send(ElectionEvent::Won {
                    term,
                    sent,
                    ttl: Duration::from_secs(grant.ttl().max(0) as u64),
                    client: Box::new(client.clone()),
                    lease,
                })
                .await;
            let why = self.keep_alive(client, term, lease).await;
            tracing::error!("Lost the leadership (term {term}): {why}");
            let _ = self.events.send(ElectionEvent::Lost { term }).await;
        }
    }

    /// A fresh connection after a failed renewal: a connection that silently lost its peer
    /// (a partition drops packets) may otherwise stay stuck long after the network healed.
    async fn reconnect(&self, client: &mut Client) {
        if let Ok(c) = self.connect().await {
            *client = c;
        }
    }

    /// Renews `lease` every third of its TTL until etcd says it is gone. Errors and late
    /// answers are logged and retried: the main loop stops acting by itself when no renewal
    /// is answered in time, and a renewal that works again resumes the same term.
    async fn keep_alive(&self, client: &mut Client, term: u64, lease: i64) -> String {
        let ttl = self.ttl();
        let deadline = request_deadline(ttl);
        let period = ttl / 3;
        let mut stream = None;
        let mut failing = false;
        loop {
            if stream.is_none() {
                match bounded(
                    deadline,
                    "open the lease keep-alive",
                    client.lease_keep_alive(lease),
                )
                .await
                {
                    Ok(s) => stream = Some(s),
                    Err(e) if e.contains("lease not found") => {
                        return "etcd no longer knows the lease (it expired)".to_string();
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!("etcd coordination: {e}; retrying");
                            failing = true;
                        }
                        self.reconnect(client).await;
                        tokio::time::sleep(period / 2).await;
                        continue;
                    }
                }
            }
            let Some((keeper, answers)) = stream.as_mut() else {
                continue;
            };
            let sent = self.clock.now_ms();
            let renewed = async {
                keeper.keep_alive().await?;
                answers.message().await
            };
            match tokio::time::timeout(deadline, renewed).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => {
                    if failing {
                        tracing::info!(
                            "etcd coordination: the lease of term {term} is renewed again"
                        );
                        failing = false;
                    }
                    let ttl = Duration::from_secs(r.ttl() as u64);
                    let _ = self
                        .events
                        .send(ElectionEvent::Renewed { term, sent, ttl })
                        .await;
                }
                Ok(Ok(Some(_))) => return "etcd says the lease has expired".to_string(),
                other => {
                    let what = match other {
                        Ok(Ok(_)) => "etcd closed the keep-alive stream".to_string(),
                        Ok(Err(e)) => format!("renewal failed: {e}"),
                        Err(_) => format!("no renewal answered within {deadline:?}"),
                    };
                    if !failing {
                        tracing::warn!("etcd coordination: {what} (term {term}); retrying");
                        failing = true;
                    }
                    stream = None;
                    self.reconnect(client).await;
                }
            }
            tokio::time::sleep(period).await;
        }
    }
}

/// Runs one etcd request under `deadline`, naming it in the error.
pub(super) async fn bounded<T>(
    deadline: Duration,
    what: &str,
    request: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("cannot {what}: {e}")),
        Err(_) => Err(format!("cannot {what}: no answer within {deadline:?}")),
    }
}

/// Gives the lease up at shutdown, so a standby takes over at once instead of after the TTL.
/// Called only after the main loop stopped acting.
pub(crate) async fn resign(client: &mut Client, lease: i64, ttl: Duration) {
    match bounded(
        request_deadline(ttl),
        "revoke the leadership lease",
        client.lease_revoke(lease),
    )
    .await
    {
        Ok(_) => tracing::info!("Gave up the leadership: a standby can take over at once"),
        Err(e) => tracing::warn!("{e}; a standby takes over when the lease expires"),
    }
}
