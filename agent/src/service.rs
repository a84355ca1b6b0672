//! The gRPC `Agent` service (proto/ha.proto) and the daemon's run function.
//!
//! Requests are served concurrently; every state change goes through the converger, which
//! serialises them. Input is never trusted: a request for another host is refused with
//! PermissionDenied, malformed content with InvalidArgument, a stale epoch with
//! FailedPrecondition — each with a message saying what was wrong.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ha_config::AgentConfig;
use ha_proto::agent_server::{Agent as AgentRpc, AgentServer};
use ha_proto::{
    AgentPingReply, AgentPingRequest, AgentStatus, AgentStatusRequest, ApplyStateRequest,
    ClearBadRolesReply, ClearBadRolesRequest, SystemStatus,
};
use tonic::{Request, Response, Status};

use crate::converge::{Agent, Refusal};
use crate::desired::{Desired, RoleIp};
use crate::uptime;

/// How long ApplyState waits for its pass when the caller sent no deadline.
pub const DEFAULT_APPLY_WAIT: Duration = Duration::from_millis(1500);
/// Kept free of the caller's deadline to read and send the status.
const REPLY_MARGIN: Duration = Duration::from_millis(400);

/// The service object handed to tonic.
#[derive(Clone)]
pub struct AgentService {
    agent: Arc<Agent>,
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
        AgentService { agent }
    }

    pub fn agent(&self) -> &Arc<Agent> {
        &self.agent
    }

    fn check_host(&self, host: &str) -> Result<(), Status> {
        let this = &self.agent.cfg.this;
        if host.is_empty() {
            return Err(Status::invalid_argument(format!(
                "request has no host name; this agent is '{this}'"
            )));
        }
        if host != this {
            tracing::warn!("refused a request for host '{host}': this agent is '{this}'");
            return Err(Status::permission_denied(format!(
                "request for host '{host}' but this agent is '{this}'"
            )));
        }
        Ok(())
    }
}

fn parse_roles(roles: &[ha_proto::Role], field: &str) -> Result<Vec<RoleIp>, Status> {
    roles
        .iter()
        .map(|r| {
            let ip = r.ip.trim().parse().map_err(|_| {
                Status::invalid_argument(format!(
                    "{field}: role '{}' has an invalid IP {:?} (expected an IPv4 address)",
                    r.name, r.ip
                ))
            })?;
            if r.name.trim().is_empty() {
                return Err(Status::invalid_argument(format!(
                    "{field}: a role has an empty name (ip '{}')",
                    r.ip
                )));
            }
            Ok(RoleIp {
                name: r.name.clone(),
                ip,
            })
        })
        .collect()
}

#[tonic::async_trait]
impl AgentRpc for AgentService {
    async fn ping(
        &self,
        request: Request<AgentPingRequest>,
    ) -> Result<Response<AgentPingReply>, Status> {
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
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let req = request.into_inner();
        self.check_host(&req.host)?;
        let desired = Desired::from_request(&req, &self.agent.cfg.this).map_err(|e| {
            tracing::warn!("refused ApplyState: {e}");
            Status::invalid_argument(e)
        })?;
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
            }
        })?;
        self.agent.wait_done(seq, apply_wait(timeout)).await;
        Ok(Response::new(self.agent.status().await))
    }

    async fn get_status(
        &self,
        request: Request<AgentStatusRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        self.check_host(&request.get_ref().host)?;
        Ok(Response::new(self.agent.status().await))
    }

    async fn get_system_status(
        &self,
        request: Request<AgentStatusRequest>,
    ) -> Result<Response<SystemStatus>, Status> {
        self.check_host(&request.get_ref().host)?;
        Ok(Response::new(self.agent.system_status().await))
    }

    async fn clear_bad_roles(
        &self,
        request: Request<ClearBadRolesRequest>,
    ) -> Result<Response<ClearBadRolesReply>, Status> {
        let req = request.into_inner();
        self.check_host(&req.host)?;
        let roles = parse_roles(&req.all_roles, "all_roles")?;
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
}

/// Errors that stop the daemon at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot serve the agent on {addr}: {source} (is another ha-agent running, or is {ip} not an address of this host?)", ip = addr.ip())]
    Serve {
        addr: SocketAddr,
        source: tonic::transport::Error,
    },
    #[error("tls is configured but this ha-agent build has no TLS support yet; remove the tls section or use a TLS-enabled build")]
    TlsUnsupported,
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
    if cfg.tls.is_some() {
        return Err(RunError::TlsUnsupported);
    }
    let addr = cfg.listen;
    // Bind first so an address problem is reported as such, before any background task runs.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let agent = Agent::new(cfg);
    agent.spawn();
    tracing::info!(
        host = %agent.cfg.this,
        interface = %agent.cfg.cluster_interface,
        "ha-agent {} listening on {addr}",
        crate::VERSION
    );
    let incoming = tokio_stream_listener(listener);
    tonic::transport::Server::builder()
        .add_service(AgentServer::new(AgentService::new(agent)))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|source| RunError::Serve { addr, source })
}

/// Adapts a bound listener to the stream tonic wants.
fn tokio_stream_listener(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    tokio_stream::wrappers::TcpListenerStream::new(listener)
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
}
