//! An in-process fake of ha-monitor's control service with mysql-mmm's reply texts.
//!
//! It keeps just enough state (mode, passive cause, host states) to answer like the real
//! monitor for the three-host demo cluster (db1, db2 masters, db3 slave; writer + 3 readers),
//! and records every request so tests can check what ha-control sent.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ha_proto::monitor_server::{Monitor, MonitorServer};
use ha_proto::*;
use tonic::{Request, Response, Status};

/// 2024-05-01 12:00:00 UTC
pub const T0: i64 = 1_714_564_800_000;

#[derive(Debug)]
pub struct State {
    pub mode: Mode,
    pub passive_cause: String,
    pub show: ShowReply,
    pub checks: Vec<CheckStatus>,
    /// Every request received, as `rpc(args)`.
    pub requests: Vec<String>,
}

#[derive(Clone)]
pub struct Fake {
    pub state: Arc<Mutex<State>>,
    /// Answer every call only after this long.
    pub delay: Duration,
    /// Fail every call with this status code.
    pub fail: Option<tonic::Code>,
}

fn host(
    name: &str,
    ip: &str,
    mode: HostMode,
    state: HostState,
    roles: &[(&str, &str)],
) -> HostInfo {
    HostInfo {
        name: name.into(),
        ip: ip.into(),
        mode: mode as i32,
        state: state as i32,
        roles: roles.iter().map(|(n, i)| Role::new(*n, *i)).collect(),
        agent_reachable: true,
        flapping: false,
        last_state_change_unix_ms: T0,
        peer: String::new(),
        reachable_from: Vec::new(),
    }
}

/// The demo cluster: db1 active master, db3 HARD_OFFLINE with its agent down.
pub fn demo_show() -> ShowReply {
    let mut db3 = host(
        "db3",
        "10.77.0.13",
        HostMode::Slave,
        HostState::HardOffline,
        &[],
    );
    db3.agent_reachable = false;
    ShowReply {
        mode: Mode::Active as i32,
        passive_cause: String::new(),
        hosts: vec![
            host(
                "db1",
                "10.77.0.11",
                HostMode::Master,
                HostState::Online,
                &[("reader", "10.77.0.161"), ("writer", "10.77.0.160")],
            ),
            host(
                "db2",
                "10.77.0.12",
                HostMode::Master,
                HostState::Online,
                &[("reader", "10.77.0.162"), ("reader", "10.77.0.163")],
            ),
            db3,
        ],
        roles: vec![
            RoleInfo {
                name: "writer".into(),
                mode: RoleMode::Exclusive as i32,
                hosts: vec!["db1".into(), "db2".into()],
                ips: vec!["10.77.0.160".into()],
                prefer: "db1".into(),
                owners: vec!["db1".into()],
            },
            RoleInfo {
                name: "reader".into(),
                mode: RoleMode::Balanced as i32,
                hosts: vec!["db1".into(), "db2".into(), "db3".into()],
                ips: vec![
                    "10.77.0.161".into(),
                    "10.77.0.162".into(),
                    "10.77.0.163".into(),
                ],
                prefer: String::new(),
                owners: vec!["db1".into(), "db2".into(), "db2".into()],
            },
        ],
        active_master: "db1".into(),
        epoch: 7,
        network_ok: true,
        async_fallback_host: String::new(),
        async_fallback_since_unix_ms: 0,
        leader: String::new(),
        leader_term: 0,
    }
}

/// `explain` of the demo cluster: db3 is HARD_OFFLINE, so only db2 can follow db1.
pub fn demo_explain() -> Vec<RoleExplanation> {
    let why = |host: &str, why: &str| HostReason {
        host: host.into(),
        why: why.into(),
    };
    vec![RoleExplanation {
        role: "writer".into(),
        ip: "10.77.0.160".into(),
        owner: "db1".into(),
        successors: vec![why(
            "db2",
            "ONLINE, agent reachable; fewest roles among the eligible hosts (ties: first in the role's hosts)",
        )],
        passed_over: vec![why("db3", "not in the role's hosts")],
        notes: vec!["the new writer becomes writable only once db1 surely cannot write: at most 5.3 s from now (its writer lease and fence budget), earlier if it confirms its demotion or is killed".into()],
    }]
}

pub fn demo_checks() -> Vec<CheckStatus> {
    let mut out = Vec::new();
    for h in ["db1", "db2", "db3"] {
        for c in CheckName::ALL {
            let ok = h != "db3" || c == CheckName::Ping;
            out.push(CheckStatus {
                host: h.into(),
                check: c as i32,
                ok,
                last_change_unix_ms: T0,
                message: if ok {
                    "OK".into()
                } else {
                    "ERROR: Connect error (host 10.77.0.13:3306): Can't connect".into()
                },
            });
        }
    }
    out
}

impl Fake {
    pub fn new() -> Fake {
        Fake {
            state: Arc::new(Mutex::new(State {
                mode: Mode::Active,
                passive_cause: String::new(),
                show: demo_show(),
                checks: demo_checks(),
                requests: Vec::new(),
            })),
            delay: Duration::ZERO,
            fail: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn enter(&self, what: String) -> Result<(), Status> {
        self.lock().requests.push(what);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match self.fail {
            Some(code) => Err(Status::new(code, "injected failure")),
            None => Ok(()),
        }
    }

    fn known(&self, host: &str) -> bool {
        self.lock().show.hosts.iter().any(|h| h.name == host)
    }

    fn state_of(&self, host: &str) -> HostState {
        self.lock()
            .show
            .hosts
            .iter()
            .find(|h| h.name == host)
            .map(|h| h.state())
            .unwrap_or(HostState::Unknown)
    }
}

fn reply(ok: bool, message: impl Into<String>) -> Result<Response<CommandReply>, Status> {
    Ok(Response::new(CommandReply {
        ok,
        message: message.into(),
    }))
}

fn unknown_host(h: &str) -> Result<Response<CommandReply>, Status> {
    reply(false, format!("ERROR: Unknown host name '{h}'!"))
}

#[tonic::async_trait]
impl Monitor for Fake {
    async fn ping(&self, _: Request<MonitorPingRequest>) -> Result<Response<CommandReply>, Status> {
        self.enter("ping()".into()).await?;
        reply(true, "OK: Pinged successfully!")
    }

    async fn show(&self, _: Request<ShowRequest>) -> Result<Response<ShowReply>, Status> {
        self.enter("show()".into()).await?;
        let s = self.lock();
        let mut show = s.show.clone();
        show.mode = s.mode as i32;
        show.passive_cause = s.passive_cause.clone();
        Ok(Response::new(show))
    }

    async fn checks(&self, r: Request<ChecksRequest>) -> Result<Response<ChecksReply>, Status> {
        let r = r.into_inner();
        self.enter(format!("checks({}, {})", r.host, r.check().mmm_name()))
            .await?;
        if !r.host.is_empty() && !self.known(&r.host) {
            return Ok(Response::new(ChecksReply {
                ok: false,
                message: format!("ERROR: Unknown host name '{}'!", r.host),
                checks: vec![],
            }));
        }
        let checks = self
            .lock()
            .checks
            .iter()
            .filter(|c| r.host.is_empty() || c.host == r.host)
            .filter(|c| r.check() == CheckName::Unspecified || c.check() == r.check())
            .cloned()
            .collect();
        Ok(Response::new(ChecksReply {
            ok: true,
            message: String::new(),
            checks,
        }))
    }

    async fn history(&self, r: Request<HistoryRequest>) -> Result<Response<HistoryReply>, Status> {
        let req = r.into_inner();
        self.enter(format!("history({})", req.host)).await?;
        let events = vec![HistoryEvent {
            time_unix_ms: 1_700_000_000_000,
            kind: "state_change".into(),
            host: "db1".into(),
            from: "ONLINE".into(),
            to: "HARD_OFFLINE".into(),
            rule: "O1".into(),
            message: "State of host 'db1' changed from ONLINE to HARD_OFFLINE (ping: OK, mysql: not OK) [rule O1]".into(),
            ..Default::default()
        }]
        .into_iter()
        .filter(|e| req.host.is_empty() || e.host == req.host)
        .filter(|e| e.time_unix_ms >= req.since_unix_ms)
        .collect();
        Ok(Response::new(HistoryReply {
            ok: true,
            message: String::new(),
            events,
            skipped_lines: 0,
        }))
    }

    async fn explain(&self, r: Request<ExplainRequest>) -> Result<Response<ExplainReply>, Status> {
        let role = r.into_inner().role;
        self.enter(format!("explain({role})")).await?;
        let roles: Vec<RoleExplanation> = demo_explain()
            .into_iter()
            .filter(|x| role.is_empty() || x.role == role)
            .collect();
        if roles.is_empty() {
            return Ok(Response::new(ExplainReply {
                ok: false,
                message: format!("ERROR: Unknown role '{role}'!"),
                roles,
            }));
        }
        Ok(Response::new(ExplainReply {
            ok: true,
            message: String::new(),
            roles,
        }))
    }

    async fn set_online(&self, r: Request<HostRequest>) -> Result<Response<CommandReply>, Status> {
        let h = r.into_inner().host;
        self.enter(format!("set_online({h})")).await?;
        if !self.known(&h) {
            return unknown_host(&h);
        }
        match self.state_of(&h) {
            HostState::Online => reply(true, "OK: This host is already ONLINE. Skipping command."),
            HostState::AdminOffline | HostState::AwaitingRecovery => reply(
                true,
                format!("OK: State of '{h}' changed to ONLINE. Now you can wait some time and check its new roles!"),
            ),
            s => reply(
                false,
                format!(
                    "ERROR: Host '{h}' is '{}' at the moment. It can't be switched to ONLINE.",
                    s.mmm_name()
                ),
            ),
        }
    }

    async fn set_offline(&self, r: Request<HostRequest>) -> Result<Response<CommandReply>, Status> {
        let h = r.into_inner().host;
        self.enter(format!("set_offline({h})")).await?;
        if !self.known(&h) {
            return unknown_host(&h);
        }
        reply(
            true,
            format!("OK: State of '{h}' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"),
        )
    }

    async fn move_role(
        &self,
        r: Request<MoveRoleRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let r = r.into_inner();
        self.enter(format!(
            "move_role({}, {}, force={})",
            r.role, r.host, r.force
        ))
        .await?;
        if self.lock().mode == Mode::Passive {
            return reply(false, "ERROR: This command is not allowed in passive mode");
        }
        if r.role != "writer" && r.role != "reader" {
            return reply(false, format!("ERROR: Unknown role name '{}'!", r.role));
        }
        if !self.known(&r.host) {
            return unknown_host(&r.host);
        }
        if r.force {
            if r.role != "writer" {
                return reply(
                    false,
                    "ERROR: move_role --forced may be used for the active master role only!",
                );
            }
            return reply(true, format!("OK: Role 'writer' has been moved from 'db1' to '{}' enforcedly. Now you can wait some time and check new roles info!", r.host));
        }
        if r.host == "db1" {
            return reply(true, "OK: Role is on 'db1' already. Skipping command.");
        }
        reply(true, format!("OK: Role '{}' has been moved from 'db1' to '{}'. Now you can wait some time and check new roles info!", r.role, r.host))
    }

    async fn set_ip(&self, r: Request<SetIpRequest>) -> Result<Response<CommandReply>, Status> {
        let r = r.into_inner();
        self.enter(format!("set_ip({}, {})", r.ip, r.host)).await?;
        if self.lock().mode != Mode::Passive {
            return reply(false, "ERROR: This command is only allowed in passive mode");
        }
        if r.ip != "10.77.0.160" {
            return reply(false, format!("ERROR: Unknown ip '{}'!", r.ip));
        }
        reply(
            true,
            format!("OK: Set role 'writer({})' to host '{}'.", r.ip, r.host),
        )
    }

    async fn get_mode(&self, _: Request<GetModeRequest>) -> Result<Response<ModeReply>, Status> {
        self.enter("get_mode()".into()).await?;
        let s = self.lock();
        Ok(Response::new(ModeReply {
            mode: s.mode as i32,
            passive_cause: s.passive_cause.clone(),
        }))
    }

    async fn set_mode(&self, r: Request<SetModeRequest>) -> Result<Response<CommandReply>, Status> {
        let mode = r.into_inner().mode();
        self.enter(format!("set_mode({})", mode.mmm_name())).await?;
        let word = match mode {
            Mode::Active => "active",
            Mode::Manual => "manual",
            Mode::Passive => "passive",
            _ => return reply(false, "ERROR: Unsupported mode"),
        };
        let mut s = self.lock();
        if s.mode == mode {
            return reply(true, format!("OK: Already in {word} mode."));
        }
        s.mode = mode;
        s.passive_cause = if mode == Mode::Passive {
            "Admin switched to passive mode.".into()
        } else {
            String::new()
        };
        reply(true, format!("OK: Switched into {word} mode."))
    }
}

/// A running fake: the server lives on its own runtime until this is dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub fake: Fake,
    _rt: tokio::runtime::Runtime,
}

impl Running {
    pub fn requests(&self) -> Vec<String> {
        self.fake.lock().requests.clone()
    }

    pub fn set_mode(&self, mode: Mode, cause: &str) {
        let mut s = self.fake.lock();
        s.mode = mode;
        s.passive_cause = cause.into();
    }
}

pub fn start(fake: Fake) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let svc = MonitorServer::new(fake.clone());
    rt.spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await;
    });
    Running {
        addr,
        fake,
        _rt: rt,
    }
}
