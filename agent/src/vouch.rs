//! Peer promises, the writer's side (ARCHITECTURE.md "Peer promises"; rule and proof in crate
//! `ha-lease`, `promise`): while this host holds the writer role under a lease, every period
//! it reads its lease clock and asks each peer the monitor named (every other writer
//! candidate) to promise not to take the role. Once all of them answered that token, the
//! lease is extended exactly as a monitor grant echoing the token would have extended it. So
//! the writer keeps writing while the monitor is away, and stops within one lease once one
//! peer no longer promises (cut off, or told of a newer epoch by the monitor).
//!
//! A round starts only when the local server answers (peers' promises tell the monitor that
//! the writer is alive). Every call has a deadline; a round that does not complete extends
//! nothing. Nothing here
//! shortens a lease or revives one whose fencing started: [`Agent::extend_by_peers`].
//!
//! Once the monitor demoted this writer and the demotion completed (read-only confirmed, lease
//! ended), it tells the peers it asked that it no longer needs their promises
//! ([`Agent::take_demotion`]), so a switchover promotes the next writer at once instead of
//! after the last promise. A release that does not arrive only makes the peer wait it out.

use std::sync::Arc;
use std::time::Duration;

use ha_lease::promise::PromiseRound;
use ha_lease::LeaseToken;
use ha_proto::agent_client::AgentClient;
use ha_proto::{PromiseReply, PromiseRequest};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::converge::{Agent, Ask};
use crate::desired::Peer;
use crate::lease::clock;

/// How often the writer asks: a quarter of its lease, within these bounds.
const PERIOD_MIN: Duration = Duration::from_millis(100);
const PERIOD_MAX: Duration = Duration::from_millis(1_000);
/// How long one round of requests may take (connect, the peer's state-file write, reply).
const CALL_DEADLINE: Duration = Duration::from_millis(800);

/// The period for a lease of `lease_ms`.
pub(crate) fn period(lease_ms: u64) -> Duration {
    (Duration::from_millis(lease_ms) / 4).clamp(PERIOD_MIN, PERIOD_MAX)
}

/// Starts the task on the daemon's runtime. `tls`: this agent's own certificate files, which it
/// presents to its peers (`None` with `tls: off`).
pub(crate) fn spawn(agent: Arc<Agent>, tls: Option<ha_tls::TlsFiles>) {
    tokio::spawn(async move {
        let mut links: Vec<(Peer, AgentClient<Channel>)> = Vec::new();
        let mut last_ok: Option<bool> = None;
        // The peers asked while this host was the writer, until they are told it is demoted.
        let mut asked: Vec<Peer> = Vec::new();
        loop {
            let ask = agent.vouch_request(clock::now_ms());
            let pause = ask.as_ref().map_or(PERIOD_MAX, |a| period(a.lease_ms));
            if !asked.is_empty() && agent.take_demotion() {
                release(&agent, &asked, &links).await;
                asked.clear();
            }
            if let Some(ask) = ask {
                asked.clone_from(&ask.peers);
                links.retain(|(p, _)| ask.peers.contains(p));
                for p in &ask.peers {
                    if !links.iter().any(|(q, _)| q == p) {
                        match client(p, tls.as_ref()) {
                            Ok(c) => links.push((p.clone(), c)),
                            Err(e) => {
                                tracing::error!("cannot ask peer {} for promises: {e}", p.name)
                            }
                        }
                    }
                }
                let ok = round(&agent, &ask, &links).await;
                if last_ok != Some(ok) {
                    if ok {
                        tracing::info!("every writer candidate promised not to take the role: this writer's lease no longer depends on the monitor alone");
                    } else {
                        tracing::warn!("not every writer candidate promised: this writer's lease depends on the monitor's renewals (it demotes itself when they stop)");
                    }
                    last_ok = Some(ok);
                }
            } else {
                last_ok = None;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = agent.vouch_wake.notified() => {}
            }
        }
    });
}

/// A peer's answer to one `Promise` call, or the deadline passing.
type Answer =
    Result<Result<tonic::Response<PromiseReply>, tonic::Status>, tokio::time::error::Elapsed>;

/// Sends `req` to peer `name` on its own task under [`CALL_DEADLINE`] (few peers, short calls:
/// all of them at once).
fn call(
    calls: &mut tokio::task::JoinSet<(String, Answer)>,
    name: String,
    mut c: AgentClient<Channel>,
    req: PromiseRequest,
) {
    calls.spawn(async move {
        let mut r = tonic::Request::new(req);
        r.set_timeout(CALL_DEADLINE);
        let reply = tokio::time::timeout(CALL_DEADLINE, c.promise(r)).await;
        (name, reply)
    });
}

/// Tells every peer in `peers` that this writer was demoted and no longer needs its promise
/// (each call under its deadline; a peer that does not hear it waits its promise out).
async fn release(agent: &Agent, peers: &[Peer], links: &[(Peer, AgentClient<Channel>)]) {
    let mut calls = tokio::task::JoinSet::new();
    for (p, c) in links.iter().filter(|(p, _)| peers.contains(p)) {
        let req = PromiseRequest {
            writer: agent.cfg.this.clone(),
            host: p.name.clone(),
            epoch: agent.lock().max_epoch,
            release: true,
            ..Default::default()
        };
        call(&mut calls, p.name.clone(), c.clone(), req);
    }
    while let Some(joined) = calls.join_next().await {
        let Ok((name, reply)) = joined else { continue };
        match reply {
            Ok(Ok(_)) => tracing::info!("demoted: told {name} its promise is no longer needed"),
            Ok(Err(s)) => tracing::warn!(
                "demoted, but {name} refused the release of its promise ({}): it refuses the writer role until the promise ends",
                s.message()
            ),
            Err(_) => tracing::warn!(
                "demoted, but {name} did not answer the release of its promise within {CALL_DEADLINE:?}: it refuses the writer role until the promise ends"
            ),
        }
    }
}

/// A lazily connected client for `p`, with this agent's certificate when TLS is on.
fn client(p: &Peer, tls: Option<&ha_tls::TlsFiles>) -> Result<AgentClient<Channel>, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{}", p.addr))
        .map_err(|e| format!("address {}: {e}", p.addr))?
        .connect_timeout(CALL_DEADLINE)
        .timeout(CALL_DEADLINE);
    if let Some(files) = tls {
        let cfg: ClientTlsConfig =
            ha_tls::client_config(files, &p.name).map_err(|e| e.to_string())?;
        ep = ep.tls_config(cfg).map_err(|e| e.to_string())?;
    }
    Ok(AgentClient::new(ep.connect_lazy()))
}

/// One round: a fresh token to every peer at once; the lease is extended when all promised it.
/// Returns whether they did.
async fn round(agent: &Agent, ask: &Ask, links: &[(Peer, AgentClient<Channel>)]) -> bool {
    if !agent.server_answers(CALL_DEADLINE).await {
        tracing::debug!("the local server does not answer: not asking the peers for promises");
        return false;
    }
    let token = LeaseToken {
        boot_id: agent.boot_id.clone(),
        at_ms: clock::now_ms(),
    };
    // All at once, each under its deadline (a task per peer: few, and short).
    let mut calls = tokio::task::JoinSet::new();
    for (p, c) in links {
        let req = PromiseRequest {
            writer: agent.cfg.this.clone(),
            host: p.name.clone(),
            epoch: ask.epoch,
            token: Some(ha_proto::LeaseToken {
                boot_id: token.boot_id.clone(),
                at_ms: token.at_ms,
            }),
            lease_ms: ask.lease_ms,
            fence_budget_ms: ask.budget_ms,
            release: false,
        };
        call(&mut calls, p.name.clone(), c.clone(), req);
    }
    let mut round = PromiseRound::new(token.clone(), ask.lease_ms, ask.budget_ms);
    while let Some(joined) = calls.join_next().await {
        let Ok((name, reply)) = joined else { continue };
        match reply {
            Ok(Ok(r)) => {
                let r = r.into_inner();
                let echoed = r.token.as_ref().map(|t| (t.boot_id.as_str(), t.at_ms));
                if r.promised && echoed == Some((token.boot_id.as_str(), token.at_ms)) {
                    round.promised(&name);
                } else {
                    tracing::debug!("peer {name} did not promise: {}", r.refusal);
                }
            }
            Ok(Err(status)) => tracing::debug!("peer {name}: Promise failed: {}", status.message()),
            Err(_) => tracing::debug!("peer {name}: no answer within {CALL_DEADLINE:?}"),
        }
    }
    let required: Vec<String> = ask.peers.iter().map(|p| p.name.clone()).collect();
    match round.deadline(&required) {
        Some(d) => agent.extend_by_peers(d, ask.lease_ms, token.at_ms),
        None => false,
    }
}
