//! Talking to the agents: one lazily connected gRPC channel per host, every call bounded by a
//! deadline (docs/product.md F2). An error reply, a transport error and a timeout are all failures
//! (F12); the error text says which host, which call and why.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use ha_proto::agent_client::AgentClient;
use ha_proto::{
    AgentPingRequest, AgentStatus, AgentStatusRequest, ApplyStateRequest, ClearBadRolesReply,
    ClearBadRolesRequest, SystemStatus,
};

/// Why an agent call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// The agent refused the request: it already applied epoch `held` (higher than ours).
    StaleEpoch { held: u64, message: String },
    /// Timeout, connect error, any other error reply: one line saying which host, which call
    /// and why (F12: every failure is a failure).
    Failed(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::StaleEpoch { message, .. } | AgentError::Failed(message) => {
                f.write_str(message)
            }
        }
    }
}

/// A connection to one host's agent.
#[derive(Clone)]
pub struct AgentLink {
    host: String,
    addr: String,
    client: AgentClient<Channel>,
    deadline: Duration,
}

impl AgentLink {
    /// Creates the link without connecting; the first call connects (within the deadline).
    pub fn new(
        host: &str,
        ip: std::net::IpAddr,
        port: u16,
        deadline: Duration,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, String> {
        let addr = match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad agent address {addr} for host '{host}': {e}"))?;
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("TLS towards the agent of host '{host}' ({addr}): {e}"))?;
        }
        let endpoint = endpoint
            .connect_timeout(deadline)
            .timeout(deadline)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(deadline)
            .keep_alive_while_idle(true);
        Ok(AgentLink {
            host: host.to_string(),
            addr,
            client: AgentClient::new(endpoint.connect_lazy()),
            deadline,
        })
    }

    /// A request carrying the deadline as its `grpc-timeout` header: the agent sizes how long
    /// ApplyState waits for its pass from it (the channel's own timeout sends no header, and an
    /// agent waiting longer than the caller would answer after the caller gave up).
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.deadline);
        r
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs one call with the deadline; maps every failure to a one-line explanation.
    async fn call<T, F>(&self, what: &str, fut: F) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_typed(what, fut).await.map_err(|e| e.to_string())
    }

    /// As [`AgentLink::call`], telling a stale-epoch refusal apart (the agent names the epoch
    /// it holds in the `ha-held-epoch` metadata).
    async fn call_typed<T, F>(&self, what: &str, fut: F) -> Result<T, AgentError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.deadline, fut).await {
            Err(_) => Err(AgentError::Failed(format!(
                "{what} to agent on host '{}' ({}) timed out after {:?}",
                self.host, self.addr, self.deadline
            ))),
            Ok(Err(status)) => {
                let message = format!(
                    "{what} to agent on host '{}' ({}) failed: {}: {}",
                    self.host,
                    self.addr,
                    status.code(),
                    status.message()
                );
                let held = status
                    .metadata()
                    .get(ha_proto::HELD_EPOCH_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                match held {
                    Some(held) if status.code() == tonic::Code::FailedPrecondition => {
                        Err(AgentError::StaleEpoch { held, message })
                    }
                    _ => Err(AgentError::Failed(message)),
                }
            }
            Ok(Ok(resp)) => Ok(resp.into_inner()),
        }
    }

    pub async fn ping(&self) -> Result<ha_proto::AgentPingReply, String> {
        let mut c = self.client.clone();
        let req = AgentPingRequest {
            host: self.host.clone(),
        };
        self.call("Ping", c.ping(self.request(req))).await
    }

    pub async fn apply(&self, req: ApplyStateRequest) -> Result<AgentStatus, AgentError> {
        let mut c = self.client.clone();
        self.call_typed("ApplyState", c.apply_state(self.request(req)))
            .await
    }

    pub async fn status(&self) -> Result<AgentStatus, String> {
        let mut c = self.client.clone();
        let req = AgentStatusRequest {
            host: self.host.clone(),
        };
        self.call("GetStatus", c.get_status(self.request(req)))
            .await
    }

    pub async fn system_status(&self) -> Result<SystemStatus, String> {
        let mut c = self.client.clone();
        let req = AgentStatusRequest {
            host: self.host.clone(),
        };
        self.call("GetSystemStatus", c.get_system_status(self.request(req)))
            .await
    }

    pub async fn clear_bad_roles(
        &self,
        req: ClearBadRolesRequest,
    ) -> Result<ClearBadRolesReply, String> {
        let mut c = self.client.clone();
        self.call("ClearBadRoles", c.clear_bad_roles(self.request(req)))
            .await
    }
}
