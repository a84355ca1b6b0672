//! The gRPC `Agent` service (proto/ha.proto) and the daemon's run function.
//!
//! Requests are served concurrently; every state change goes through the converger, which
//! serialises them. Input is never trusted: a request for another host, or for anything
//! `agent.yaml` does not allow ([`crate::allow`]), is refused with PermissionDenied, malformed
//! or oversized content with InvalidArgument, a stale epoch with FailedPrecondition, a second
//! concurrent state change from the same caller with ResourceExhausted ([`crate::gate`]) — each
//! with a message saying what was wrong. Request strings in messages and logs are escaped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ha_config::AgentConfig;
use ha_proto::agent_server::{Agent as AgentRpc, AgentServer};
use ha_proto::{
    AgentPingReply, AgentPingRequest, AgentStatus, AgentStatusRequest, ApplyStateRequest,
    ClearBadRolesReply, ClearBadRolesRequest, PromiseReply, PromiseRequest, SystemStatus,
};
use tonic::{Request, Response, Status};

use crate::allow::{self, Policy};
use crate::converge::{Agent, Refusal};
use crate::desired::RoleIp;
use crate::gate::{CallerGate, Permit, GRACE};
use crate::uptime;

/// Largest request the Agent service decodes (the largest legitimate ApplyState, 64 roles and
/// hosts, is a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Concurrent requests served per connection (the monitor sends one at a time per host).
pub const CONCURRENCY_PER_CONNECTION: usize = 4;

/// How long ApplyState waits for its pass when the caller sent no deadline.
pub const DEFAULT_APPLY_WAIT: Duration = Duration::from_millis(1500);
/// Kept free of the caller's deadline to read and send the status.
const REPLY_MARGIN: Duration = Duration::from_millis(400);

/// The service object handed to tonic.
#[derive(Clone)]
pub struct AgentService {
    agent: Arc<Agent>,
    policy: Arc<Policy>,
    gate: Arc<CallerGate>,
    /// With TLS: the only certificate identities allowed to call (agent.yaml
    /// `tls.monitor_identity`). `None` = `tls: off`.
    callers: Option<Arc<[String]>>,
    /// With TLS: who may ask for a peer promise: the agents of the other `cluster_hosts`, whose
    /// certificate identity is their host name. `None` = `tls: off`.
    peers: Option<Arc<[String]>>,
}

/// Parses the `grpc-timeout` header (`<digits><unit>`, unit one of H M S m u n).
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long ApplyState may wait for the pass: the caller's deadline minus a margin, else
/// [`DEFAULT_APPLY_WAIT`]; never less than 50 ms nor more than 60 s.
pub fn apply_wait(grpc_timeout: Option<Duration>) -> Duration {
    match grpc_timeout {
        Some(t) => t
            .saturating_sub(REPLY_MARGIN)
            .clamp(Duration::from_millis(50), Duration::from_secs(60)),
        None => DEFAULT_APPLY_WAIT,
    }
}

impl AgentService {
    pub fn new(agent: Arc<Agent>) -> Self {
        let policy = Arc::new(Policy::new(&agent.cfg));
        let callers = agent
            .cfg
            .tls_on()
            .map(|t| Arc::from(vec![t.monitor_identity.clone()]));
        let peers = agent.cfg.tls_on().map(|_| {
            let others: Vec<String> = (agent.cfg.cluster_hosts.keys())
                .filter(|h| **h != agent.cfg.this)
                .cloned()
                .collect();
            Arc::from(others)
        });
        AgentService {
            agent,
            policy,
            gate: Arc::new(CallerGate::new()),
            callers,
            peers,
        }
    }

    /// Refuses a caller whose certificate is not the monitor's (mutual TLS already proved
    /// it holds a certificate of the cluster CA). Every RPC starts here.
    fn authorize<T>(&self, request: &Request<T>, what: &str) -> Result<(), Status> {
        let Some(allowed) = &self.callers else {
            return Ok(());
        };
        ha_tls::caller_identity(request, allowed)
            .map(drop)
            .inspect_err(|s| tracing::warn!("refused {what}: {}", s.message()))
    }

    /// The state-change slot of the caller at `remote` (see [`crate::gate`]); callers whose
    /// address is unknown share one slot.
    async fn enter(&self, remote: Option<SocketAddr>, what: &str) -> Result<Permit<'_>, Status> {
        let ip = remote
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.gate.enter(ip, GRACE).await.map_err(|e| {
            tracing::warn!("refused {what}: {e}");
            Status::resource_exhausted(e)
        })
    }

    pub fn agent(&self) -> &Arc<Agent> {
        &self.agent
    }

    fn check_host(&self, host: &str) -> Result<(), Status> {
        self.policy.check_host(host).map_err(|r| {
            if let allow::Rejection::Denied(m) = &r {
                tracing::warn!("refused: {m}");
            }
            r.to_status()
        })
    }
}

/// The `Promise` RPC, checked: the caller is another cluster host's agent asking for itself.
fn check_promise(
    this: &str,
    cluster: &[String],
    caller: Option<&str>,
    req: &PromiseRequest,
) -> Result<(), allow::Rejection> {
    use allow::Rejection::{Denied, Invalid};
    if req.writer.len() > allow::MAX_STR || req.host.len() > allow::MAX_STR {
        return Err(Invalid(format!(
            "Promise: a host name longer than {} bytes",
            allow::MAX_STR
        )));
    }
    if req.host != this {
        return Err(Denied(format!(
            "Promise: meant for host {}, this is {this}",
            crate::desired::q(&req.host)
        )));
    }
    if req.writer == this || !cluster.contains(&req.writer) {
        return Err(Denied(format!(
            "Promise: {} is not another host of cluster_hosts",
            crate::desired::q(&req.writer)
        )));
    }
    if let Some(c) = caller.filter(|c| *c != req.writer) {
        return Err(Denied(format!(
            "Promise: the caller {} asks on behalf of {}; a writer asks for itself",
            crate::desired::q(c),
            crate::desired::q(&req.writer)
        )));
    }
    Ok(())
}

/// Refuses `what` with `r`, logged (the message escapes request strings).
fn refuse(what: &str, r: allow::Rejection) -> Status {
    tracing::warn!("refused {what}: {}", r.message());
    r.to_status()
}

#[tonic::async_trait]
impl AgentRpc for AgentService {
    async fn ping(
        &self,
        request: Request<AgentPingRequest>,
    ) -> Result<Response<AgentPingReply>, Status> {
        self.authorize(&request, "Ping")?;
        let req = request.into_inner();
        self.check_host(&req.host)?;
        Ok(Response::new(AgentPingReply {
            host: self.agent.cfg.this.clone(),
            agent_version: crate::VERSION.to_string(),
            uptime_seconds: uptime::read().unwrap_or(0.0),
        }))
    }

    async fn apply_state(
        &self,
        request: Request<ApplyStateRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        self.authorize(&request, "ApplyState")?;
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let _permit = self.enter(request.remote_addr(), "ApplyState").await?;
        let req = request.into_inner();
        let admitted = self
            .policy
            .check_apply(&req)
            .map_err(|r| refuse("ApplyState", r))?;
        if !admitted.ignored.is_empty() {
            tracing::debug!(
                "ApplyState: all_roles outside role_ips ignored: {}",
                list(&admitted.ignored)
            );
        }
        let desired = admitted.desired;
        let seq = self.agent.accept(desired).map_err(|r| {
            tracing::warn!("refused ApplyState: {r}");
            match r {
                Refusal::StaleEpoch { highest, .. } => {
                    let mut s = Status::failed_precondition(r.to_string());
                    if let Ok(v) = highest.to_string().parse() {
                        s.metadata_mut().insert(ha_proto::HELD_EPOCH_METADATA, v);
                    }
                    s
                }
                Refusal::AbsurdEpoch { .. } => Status::invalid_argument(r.to_string()),
                Refusal::DeposedLeader { .. } => Status::failed_precondition(r.to_string()),
            }
        })?;
        self.agent.wait_done(seq, apply_wait(timeout)).await;
        Ok(Response::new(self.agent.status().await))
    }

    async fn get_status(
        &self,
        request: Request<AgentStatusRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        self.authorize(&request, "GetStatus")?;
        self.check_host(&request.get_ref().host)?;
        Ok(Response::new(self.agent.status().await))
    }

    async fn get_system_status(
        &self,
        request: Request<AgentStatusRequest>,
    ) -> Result<Response<SystemStatus>, Status> {
        self.authorize(&request, "GetSystemStatus")?;
        self.check_host(&request.get_ref().host)?;
        Ok(Response::new(self.agent.system_status().await))
    }

    async fn clear_bad_roles(
        &self,
        request: Request<ClearBadRolesRequest>,
    ) -> Result<Response<ClearBadRolesReply>, Status> {
        self.authorize(&request, "ClearBadRoles")?;
        let _permit = self.enter(request.remote_addr(), "ClearBadRoles").await?;
        let req = request.into_inner();
        self.agent.admit_term(req.leader_term).map_err(|r| {
            tracing::warn!("refused ClearBadRoles: {r}");
            Status::failed_precondition(r.to_string())
        })?;
        let (roles, ignored) = self
            .policy
            .check_clear(&req)
            .map_err(|r| refuse("ClearBadRoles", r))?;
        if !ignored.is_empty() {
            tracing::info!(
                "ClearBadRoles: ignored {} role(s) outside role_ips of agent.yaml (never removed by this agent): {}",
                ignored.len(),
                list(&ignored)
            );
        }
        let (removed, failures) = self
            .agent
            .clear_bad_roles(&roles, req.writer_role.trim())
            .await
            .map_err(|e| Status::unavailable(format!("ERROR: {e}")))?;
        let n = u32::try_from(removed.len()).unwrap_or(u32::MAX);
        let message = if failures.is_empty() {
            format!("OK: Removed {n} roles")
        } else {
            format!(
                "ERROR: Removed {n} roles, failed to remove {}: {}",
                failures.len(),
                failures.join("; ")
            )
        };
        Ok(Response::new(ClearBadRolesReply {
            removed: n,
            removed_roles: removed.iter().map(RoleIp::to_proto).collect(),
            message,
        }))
    }

    async fn promise(
        &self,
        request: Request<PromiseRequest>,
    ) -> Result<Response<PromiseReply>, Status> {
        let caller = match &self.peers {
            Some(allowed) => Some(
                ha_tls::caller_identity(&request, allowed)
                    .inspect_err(|s| tracing::warn!("refused Promise: {}", s.message()))?,
            ),
            None => None,
        };
        let req = request.into_inner();
        let cluster: Vec<String> = self.agent.cfg.cluster_hosts.keys().cloned().collect();
        check_promise(&self.agent.cfg.this, &cluster, caller.as_deref(), &req)
            .map_err(|r| refuse("Promise", r))?;
        if req.release {
            let released = self.agent.release_promise(&req.writer);
            let who = crate::desired::q(&req.writer);
            let refusal = if released {
                tracing::info!("{who} was demoted and released this host's promise: writer grants are taken again");
                String::new()
            } else {
                "no promise to this writer alone is running".to_string()
            };
            return Ok(Response::new(PromiseReply {
                promised: false,
                refusal,
                epoch: self.agent.epoch(),
                remaining_ms: self.agent.promise_remaining_ms(),
                token: req.token,
            }));
        }
        let asked = (req.writer.as_str(), req.epoch, req.lease_ms);
        let outcome =
            (self.agent).promise(&req.writer, req.epoch, req.lease_ms, req.fence_budget_ms);
        let (promised, refusal, remaining_ms) = match outcome {
            Ok(g) => {
                tracing::debug!(
                    "promised {} (epoch {}, lease {} ms): no writer grant for {} ms",
                    asked.0,
                    asked.1,
                    asked.2,
                    g.remaining_ms
                );
                (true, String::new(), g.remaining_ms)
            }
            Err(why) => {
                tracing::info!(
                    "no promise to {} (epoch {}): {why}",
                    crate::desired::q(asked.0),
                    asked.1
                );
                (false, why, self.agent.promise_remaining_ms())
            }
        };
        Ok(Response::new(PromiseReply {
            promised,
            refusal,
            epoch: self.agent.epoch(),
            remaining_ms,
            token: req.token,
        }))
    }
}

/// Errors that stop the daemon at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot serve the agent on {addr}: {source} (is another ha-agent running, or is {ip} not an address of this host?)", ip = addr.ip())]
    Serve {
        addr: SocketAddr,
        source: tonic::transport::Error,
    },
    #[error("cannot start mutual TLS: {0}")]
    Tls(#[from] ha_tls::TlsError),
    #[error("cannot bind {addr}: {source} (is another ha-agent running, or is {ip} not an address of this host?)", ip = addr.ip())]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    cfg: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // TLS material first: a configured but unusable `tls:` stops the agent here, naming the file.
    let tls = match cfg.tls_on() {
        Some(t) => Some(Arc::new(ha_tls::ServerTls::new(ha_tls::TlsFiles::of(t))?)),
        None => {
            tracing::warn!(
                "TLS IS OFF (agent.yaml `tls: off`): anyone who can reach {} can make this host writable, move its IPs and re-point its replication. Configure tls: (README, \"Security\")",
                cfg.listen
            );
            None
        }
    };
    let addr = cfg.listen;
    // Bind first so an address problem is reported as such, before any background task runs.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let own_tls = cfg.tls_on().map(ha_tls::TlsFiles::of);
    let agent = Agent::new(cfg);
    agent.spawn();
    crate::vouch::spawn(agent.clone(), own_tls);
    tracing::info!(
        host = %agent.cfg.this,
        interface = %agent.cfg.cluster_interface,
        tls = tls.is_some(),
        "ha-agent {} listening on {addr}",
        crate::VERSION
    );
    let server = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .add_service(
            AgentServer::new(AgentService::new(agent)).max_decoding_message_size(MAX_MESSAGE_BYTES),
        );
    // Config loaded, TLS material checked, the port bound: `systemctl start` returns.
    ha_proto::systemd::ready(&format!("serving on {addr}"));
    let served = match tls {
        Some(tls) => {
            ha_tls::reload_on_sighup(tls.clone());
            let incoming = ha_tls::incoming(listener, tls, HANDSHAKE_TIMEOUT);
            server
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            server
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    };
    ha_proto::systemd::stopping();
    served.map_err(|source| RunError::Serve { addr, source })
}

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Role instances for a log line (names cannot hold control characters: validated).
fn list(roles: &[RoleIp]) -> String {
    roles
        .iter()
        .map(RoleIp::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout("12Q"), None);
        assert_eq!(apply_wait(None), DEFAULT_APPLY_WAIT);
        assert_eq!(
            apply_wait(Some(Duration::from_secs(3))),
            Duration::from_millis(2600)
        );
        assert_eq!(
            apply_wait(Some(Duration::from_millis(100))),
            Duration::from_millis(50)
        );
    }

    #[test]
    fn only_another_cluster_host_asks_for_a_promise_for_itself() {
        let cluster: Vec<String> = ["db1", "db2", "db3"].map(String::from).to_vec();
        let req = |writer: &str, host: &str| PromiseRequest {
            writer: writer.into(),
            host: host.into(),
            ..PromiseRequest::default()
        };
        let denied =
            |r: Result<(), allow::Rejection>| matches!(r, Err(allow::Rejection::Denied(_)));
        assert_eq!(
            check_promise("db2", &cluster, Some("db1"), &req("db1", "db2")),
            Ok(())
        );
        assert_eq!(
            check_promise("db2", &cluster, None, &req("db3", "db2")),
            Ok(())
        );
        assert!(denied(check_promise(
            "db2",
            &cluster,
            Some("db1"),
            &req("db1", "db3")
        )));
        assert!(denied(check_promise(
            "db2",
            &cluster,
            Some("db2"),
            &req("db2", "db2")
        )));
        assert!(denied(check_promise(
            "db2",
            &cluster,
            Some("db1"),
            &req("db9", "db2")
        )));
        assert!(denied(check_promise(
            "db2",
            &cluster,
            Some("db3"),
            &req("db1", "db2")
        )));
        let long = "x".repeat(allow::MAX_STR + 1);
        assert!(matches!(
            check_promise("db2", &cluster, None, &req(&long, "db2")),
            Err(allow::Rejection::Invalid(_))
        ));
    }
}
