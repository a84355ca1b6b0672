//! Harness for the agent's lab tests: start `ha-agent` as a real process inside a DB host's
//! namespace and talk gRPC to it from the monitor namespace (the test process itself lives in
//! the root namespace, which cannot reach the lab).

#![allow(dead_code)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ha_lab::{creds, netns, wait_until, Lab, ProcHandle, AGENT_PORT, MYSQL_PORT};
use ha_proto::agent_client::AgentClient;
use ha_proto::{
    AgentPingRequest, AgentStatus, AgentStatusRequest, ApplyStateRequest, HostState, MasterInfo,
    Role,
};
use tonic::transport::{Channel, Endpoint};

/// Per-host agent settings the tests vary.
#[derive(Clone)]
pub struct AgentOpts {
    pub sync_timeout: f64,
    pub repoint_timeout: f64,
    pub max_kill_retries: u32,
    pub mysql_timeout: f64,
    pub uptime_file: Option<PathBuf>,
    pub fence_budget: f64,
}

impl Default for AgentOpts {
    fn default() -> Self {
        AgentOpts {
            sync_timeout: 10.0,
            repoint_timeout: 10.0,
            max_kill_retries: 2,
            mysql_timeout: 3.0,
            uptime_file: None,
            fence_budget: 0.25,
        }
    }
}

/// Writes the host's agent.yaml and starts ha-agent in its namespace; waits until it answers.
pub fn start_agent(lab: &Lab, host: &str, opts: &AgentOpts) -> ProcHandle {
    let h = lab.host(host).expect("host");
    let tls = lab.cert_files(host).expect("lab certificates");
    // Every host may hold every role IP of [`Cluster`] (tests move the writer freely).
    let c = Cluster::of(lab);
    let role_ips: Vec<String> = std::iter::once(c.writer)
        .chain(c.readers.iter().copied())
        .map(|i| i.to_string())
        .collect();
    let cluster_hosts: Vec<String> = c
        .hosts
        .iter()
        .map(|m| format!("{}: \"{}:{}\"", m.name, m.ip, m.port))
        .collect();
    let yaml = format!(
        "this: {host}\nlisten: {ip}:{AGENT_PORT}\ncluster_interface: eth0\n\
         role_ips: [{ri}]\ncluster_hosts: {{ {ch} }}\n\
         mysql:\n  host: 127.0.0.1\n  port: {MYSQL_PORT}\n  user: {au}\n  password: {ap}\n\
         replication:\n  user: {ru}\n  password: {rp}\n\
         max_kill_retries: {k}\nmysql_timeout: {m}\nsync_timeout: {s}\nrepoint_timeout: {r}\n\
         state_dir: {state}\nfence_budget: {b}\nspare_users: [{mu}]\n\
         tls:\n  ca_file: {ca}\n  cert_file: {cert}\n  key_file: {key}\n  monitor_identity: {mi}\n",
        ca = tls.ca.display(),
        cert = tls.cert.display(),
        key = tls.key.display(),
        mi = ha_lab::tls::MONITOR_IDENTITY,
        ip = h.ip,
        ri = role_ips.join(", "),
        ch = cluster_hosts.join(", "),
        state = lab.dir().join("agents").join(host).display(),
        b = opts.fence_budget,
        mu = creds::MONITOR_USER,
        au = creds::AGENT_USER,
        ap = creds::AGENT_PASSWORD,
        ru = creds::REPL_USER,
        rp = creds::REPL_PASSWORD,
        k = opts.max_kill_retries,
        m = opts.mysql_timeout,
        s = opts.sync_timeout,
        r = opts.repoint_timeout,
    );
    let cfg = lab
        .write_private_file(&format!("agent-{host}.yaml"), yaml)
        .expect("write agent config");
    let mut env: Vec<(&str, String)> = vec![("HA_LOG", "ha_agent=debug,info".to_string())];
    if let Some(u) = &opts.uptime_file {
        env.push(("HA_AGENT_UPTIME_FILE", u.display().to_string()));
    }
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = lab
        .spawn_in(
            host,
            env!("CARGO_BIN_EXE_ha-agent"),
            ["--config", cfg.to_str().expect("utf-8 path")],
            &env_ref,
        )
        .expect("spawn ha-agent");
    wait_agent_up(lab, host, &p);
    p
}

/// Waits until the agent process `p` of `host` answers Ping (after a start or restart).
pub fn wait_agent_up(lab: &Lab, host: &str, p: &ProcHandle) {
    let addr = agent_addr(lab, host);
    let name = host.to_string();
    let pc = p.clone();
    wait_until(
        &format!("ha-agent on {host} answers Ping"),
        Duration::from_secs(20),
        || {
            if !pc.is_running() {
                return Err(ha_lab::Error::Other(format!(
                    "ha-agent exited: {}",
                    pc.log_tail(30)
                )));
            }
            let n = name.clone();
            let r = call(lab, addr, move |mut c| async move {
                c.ping(AgentPingRequest { host: n }).await
            });
            Ok(r.ok().map(|_| ()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", p.log_tail(40)));
}

pub fn agent_addr(lab: &Lab, host: &str) -> SocketAddr {
    SocketAddr::from((lab.host(host).expect("host").ip, AGENT_PORT))
}

/// Runs `f` with a connected client on a thread inside the monitor namespace.
pub fn call<T, F, Fut>(lab: &Lab, addr: SocketAddr, f: F) -> Result<T, tonic::Status>
where
    T: Send + 'static,
    F: FnOnce(AgentClient<Channel>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    call_as(lab, addr, Caller::Monitor, f)
}

/// Who calls the agent in a test.
#[derive(Clone, Copy, Debug)]
pub enum Caller {
    /// The monitor's certificate (the agent's `monitor_identity`).
    Monitor,
    /// Another identity of the lab's CA.
    Identity(&'static str),
    /// The monitor's identity, signed by a foreign CA.
    Foreign,
    /// TLS without a client certificate.
    NoCertificate,
    /// Plaintext gRPC.
    Plaintext,
}

/// [`call`] as `caller`.
pub fn call_as<T, F, Fut>(
    lab: &Lab,
    addr: SocketAddr,
    caller: Caller,
    f: F,
) -> Result<T, tonic::Status>
where
    T: Send + 'static,
    F: FnOnce(AgentClient<Channel>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let host = lab
        .hosts()
        .iter()
        .find(|h| std::net::IpAddr::V4(h.ip) == addr.ip())
        .map(|h| h.name.clone())
        .expect("an agent address of the lab");
    let tls = client_tls(lab, &host, caller);
    let ns = lab.mon().ns.clone();
    netns::in_netns(&ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| tonic::Status::internal(format!("runtime: {e}")))?;
        rt.block_on(async move {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
                .map_err(|e| tonic::Status::internal(e.to_string()))?;
            if let Some(tls) = tls {
                ep = ep
                    .tls_config(tls)
                    .map_err(|e| tonic::Status::internal(e.to_string()))?;
            }
            let ch = ep
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(30))
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("connect {addr}: {e}")))?;
            f(AgentClient::new(ch)).await.map(|r| r.into_inner())
        })
    })
    .expect("thread in the monitor namespace")
}

fn client_tls(lab: &Lab, host: &str, caller: Caller) -> Option<tonic::transport::ClientTlsConfig> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let own = |dir: std::path::PathBuf, identity: &str| {
        let f = ha_tls::TlsFiles::in_dir(&dir, identity);
        ha_tls::client_config(&f, host).expect("client TLS config")
    };
    match caller {
        Caller::Monitor => Some(own(
            lab.tls_dir().expect("tls dir"),
            ha_lab::tls::MONITOR_IDENTITY,
        )),
        Caller::Identity(id) => Some(own(lab.tls_dir().expect("tls dir"), id)),
        Caller::Foreign => {
            // The foreign CA's monitor certificate, trusting the lab's CA for the server.
            let lab_dir = lab.tls_dir().expect("tls dir");
            let foreign = lab.foreign_tls_dir().expect("foreign tls dir");
            let read = |p: std::path::PathBuf| std::fs::read(&p).expect("read PEM");
            Some(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read(lab_dir.join("ca.crt"))))
                    .identity(Identity::from_pem(
                        read(foreign.join("monitor.crt")),
                        read(foreign.join("monitor.key")),
                    ))
                    .domain_name(host),
            )
        }
        Caller::NoCertificate => {
            let lab_dir = lab.tls_dir().expect("tls dir");
            let ca = std::fs::read(lab_dir.join("ca.crt")).expect("read CA");
            Some(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name(host),
            )
        }
        Caller::Plaintext => None,
    }
}

/// Describes the cluster for ApplyState requests.
pub struct Cluster {
    pub writer: Ipv4Addr,
    pub readers: Vec<Ipv4Addr>,
    pub hosts: Vec<MasterInfo>,
}

impl Cluster {
    pub fn of(lab: &Lab) -> Cluster {
        Cluster {
            writer: lab.writer_vip(),
            // At least three reader IPs, also in one-host labs.
            readers: (0..lab.hosts().len().max(3))
                .map(|i| lab.ip(161 + i as u8))
                .collect(),
            hosts: lab
                .hosts()
                .iter()
                .map(|h| MasterInfo {
                    name: h.name.clone(),
                    ip: h.ip.to_string(),
                    port: u32::from(h.port),
                })
                .collect(),
        }
    }

    pub fn writer_role(&self) -> Role {
        Role::new("writer", self.writer.to_string())
    }

    pub fn reader_role(&self, i: usize) -> Role {
        Role::new("reader", self.readers[i].to_string())
    }

    pub fn all_roles(&self) -> Vec<Role> {
        let mut v = vec![self.writer_role()];
        v.extend((0..self.readers.len()).map(|i| self.reader_role(i)));
        v
    }

    pub fn master(&self, name: &str) -> Option<MasterInfo> {
        self.hosts.iter().find(|h| h.name == name).cloned()
    }

    /// A request for `host`: ONLINE, `roles`, active master `am`.
    pub fn req(
        &self,
        host: &str,
        roles: Vec<Role>,
        am: Option<&str>,
        epoch: u64,
    ) -> ApplyStateRequest {
        ApplyStateRequest {
            leader_term: 0,
            writer_peers: Vec::new(),
            host: host.into(),
            state: HostState::Online as i32,
            roles,
            active_master: am.and_then(|m| self.master(m)),
            epoch,
            writer_lease_ms: 0,
            writer_role: "writer".into(),
            force: false,
            lease_token: None,
            all_roles: self.all_roles(),
            cluster_hosts: self.hosts.clone(),
        }
    }
}

/// Sends `req`. A writer grant with a lease and no token gets a fresh one from the agent first,
/// as the monitor echoes the newest token it received.
pub fn apply(
    lab: &Lab,
    host: &str,
    mut req: ApplyStateRequest,
) -> Result<AgentStatus, tonic::Status> {
    if req.writer_lease_ms > 0 && req.lease_token.is_none() {
        req.lease_token = status(lab, host)?.lease_token;
    }
    let addr = agent_addr(lab, host);
    call(lab, addr, move |mut c| async move {
        let mut r = tonic::Request::new(req);
        r.set_timeout(Duration::from_secs(15));
        c.apply_state(r).await
    })
}

pub fn status(lab: &Lab, host: &str) -> Result<AgentStatus, tonic::Status> {
    let addr = agent_addr(lab, host);
    let h = host.to_string();
    call(lab, addr, move |mut c| async move {
        c.get_status(AgentStatusRequest { host: h }).await
    })
}

/// Polls GetStatus until `pred` holds.
pub fn wait_status(
    lab: &Lab,
    host: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&AgentStatus) -> bool,
) -> AgentStatus {
    let t0 = Instant::now();
    let mut last = None;
    loop {
        if let Ok(st) = status(lab, host) {
            if pred(&st) {
                return st;
            }
            last = Some(st);
        }
        if t0.elapsed() > timeout {
            panic!(
                "{host}: timed out after {timeout:?} waiting for {what}; last status: {last:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Names of the operations in a status, for assertions and messages.
pub fn op_names(st: &AgentStatus) -> Vec<String> {
    st.operations.iter().map(|o| o.operation.clone()).collect()
}

pub fn has_ip(lab: &Lab, host: &str, ip: Ipv4Addr) -> bool {
    lab.ips(host).expect("ips").contains(&ip)
}

/// Prints the agent's log tail when a test fails (call in a drop guard or on error paths).
pub fn dump_logs(procs: &[&ProcHandle]) {
    for p in procs {
        eprintln!("----- {} -----\n{}", p.name(), p.log_tail(60));
    }
}

/// Prints the agent logs if the test panics.
pub struct LogsOnPanic(pub Vec<ProcHandle>);

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            dump_logs(&self.0.iter().collect::<Vec<_>>());
        }
    }
}
