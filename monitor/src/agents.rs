//! Talking to the agents: one lazily connected gRPC channel per host, every call bounded by a
//! deadline (product.md F2). An error reply, a transport error and a timeout are all failures
//! (F12); the error text says which host, which call and why.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use ha_proto::agent_client::AgentClient;
use ha_proto::{
    AgentPingRequest, AgentStatus, AgentStatusRequest, ApplyStateRequest, ClearBadRolesReply,
    ClearBadRolesRequest, SystemStatus,
};

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
    ) -> Result<Self, String> {
        let addr = match ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
            std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        };
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad agent address {addr} for host '{host}': {e}"))?
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
        match tokio::time::timeout(self.deadline, fut).await {
            Err(_) => Err(format!(
                "{what} to agent on host '{}' ({}) timed out after {:?}",
                self.host, self.addr, self.deadline
            )),
            Ok(Err(status)) => Err(format!(
                "{what} to agent on host '{}' ({}) failed: {}: {}",
                self.host,
                self.addr,
                status.code(),
                status.message()
            )),
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

    pub async fn apply(&self, mut req: ApplyStateRequest) -> Result<AgentStatus, String> {
        let mut c = self.client.clone();
        // The agent counts the writer lease from this instant (F9: a late delivery must not
        // extend it past what the core assumes).
        req.sent_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.call("ApplyState", c.apply_state(self.request(req)))
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
