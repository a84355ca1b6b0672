//! For each gRPC service a real client and a real server talk over loopback TCP: proves the
//! generated code, the transport features and the message shapes work together.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use ha_proto::agent_client::AgentClient;
use ha_proto::agent_server::{Agent, AgentServer};
use ha_proto::monitor_client::MonitorClient;
use ha_proto::monitor_server::{Monitor, MonitorServer};
use ha_proto::*;

struct FakeAgent;

#[tonic::async_trait]
impl Agent for FakeAgent {
    async fn ping(&self, r: Request<AgentPingRequest>) -> Result<Response<AgentPingReply>, Status> {
        let host = r.into_inner().host;
        if host != "db1" {
            return Err(Status::permission_denied(format!(
                "request for host '{host}' but this agent is 'db1'"
            )));
        }
        Ok(Response::new(AgentPingReply {
            host,
            agent_version: "test".into(),
            uptime_seconds: 12.5,
        }))
    }

    async fn apply_state(
        &self,
        r: Request<ApplyStateRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        let r = r.into_inner();
        Ok(Response::new(AgentStatus {
            host: r.host,
            state: r.state,
            roles: r.roles,
            epoch: r.epoch,
            read_only: false,
            writer_synced: true,
            converged: true,
            replication: Some(ReplicationStatus {
                configured: true,
                source_name: "db2".into(),
                io_thread: ThreadState::Running as i32,
                sql_thread: ThreadState::Running as i32,
                seconds_behind_master: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn get_status(
        &self,
        r: Request<AgentStatusRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        Ok(Response::new(AgentStatus {
            host: r.into_inner().host,
            ..Default::default()
        }))
    }

    async fn get_system_status(
        &self,
        _: Request<AgentStatusRequest>,
    ) -> Result<Response<SystemStatus>, Status> {
        Ok(Response::new(SystemStatus {
            writable: true,
            ips_present: vec!["10.0.0.160".into()],
            ..Default::default()
        }))
    }

    async fn clear_bad_roles(
        &self,
        r: Request<ClearBadRolesRequest>,
    ) -> Result<Response<ClearBadRolesReply>, Status> {
        let n = r.into_inner().all_roles.len() as u32;
        Ok(Response::new(ClearBadRolesReply {
            removed: n,
            removed_roles: Vec::new(),
            message: format!("OK: Removed {n} roles"),
        }))
    }

    async fn promise(
        &self,
        _: Request<ha_proto::PromiseRequest>,
    ) -> Result<Response<ha_proto::PromiseReply>, Status> {
        Err(Status::unimplemented(
            "the loopback agent gives no peer promises",
        ))
    }
}

struct FakeMonitor;

fn reply(ok: bool, message: &str) -> Result<Response<CommandReply>, Status> {
    Ok(Response::new(CommandReply {
        ok,
        message: message.into(),
    }))
}

#[tonic::async_trait]
impl Monitor for FakeMonitor {
    async fn ping(&self, _: Request<MonitorPingRequest>) -> Result<Response<CommandReply>, Status> {
        reply(true, "OK: Pinged successfully!")
    }
    async fn show(&self, _: Request<ShowRequest>) -> Result<Response<ShowReply>, Status> {
        Ok(Response::new(ShowReply {
            mode: Mode::Active as i32,
            hosts: vec![HostInfo {
                name: "db1".into(),
                state: HostState::Online as i32,
                roles: vec![Role::new("writer", "10.0.0.160")],
                agent_reachable: true,
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
    async fn checks(&self, r: Request<ChecksRequest>) -> Result<Response<ChecksReply>, Status> {
        let r = r.into_inner();
        Ok(Response::new(ChecksReply {
            ok: false,
            message: format!("ERROR: Unknown host name '{}'!", r.host),
            checks: Vec::new(),
        }))
    }
    async fn set_online(&self, r: Request<HostRequest>) -> Result<Response<CommandReply>, Status> {
        reply(
            true,
            &format!(
                "OK: State of '{}' changed to ONLINE. Now you can wait some time and check its new roles!",
                r.into_inner().host
            ),
        )
    }
    async fn set_offline(&self, _: Request<HostRequest>) -> Result<Response<CommandReply>, Status> {
        reply(true, "OK")
    }
    async fn move_role(
        &self,
        r: Request<MoveRoleRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let r = r.into_inner();
        reply(r.force, &format!("{} {} {}", r.role, r.host, r.force))
    }
    async fn set_ip(&self, _: Request<SetIpRequest>) -> Result<Response<CommandReply>, Status> {
        reply(false, "ERROR: This command is only allowed in passive mode")
    }
    async fn get_mode(&self, _: Request<GetModeRequest>) -> Result<Response<ModeReply>, Status> {
        Ok(Response::new(ModeReply {
            mode: Mode::Passive as i32,
            passive_cause: "Admin switched to passive mode.".into(),
        }))
    }
    async fn set_mode(&self, r: Request<SetModeRequest>) -> Result<Response<CommandReply>, Status> {
        match Mode::try_from(r.into_inner().mode) {
            Ok(Mode::Manual) => reply(true, "OK: Switched into manual mode."),
            _ => Err(Status::invalid_argument("unexpected mode")),
        }
    }
    async fn explain(&self, _: Request<ExplainRequest>) -> Result<Response<ExplainReply>, Status> {
        Err(Status::unimplemented("not used by these tests"))
    }

    async fn history(&self, _: Request<HistoryRequest>) -> Result<Response<HistoryReply>, Status> {
        Err(Status::unimplemented("not used by these tests"))
    }
}

async fn listener() -> (TcpListenerStream, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (TcpListenerStream::new(listener), addr)
}

async fn channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect over loopback")
}

#[tokio::test]
async fn agent_service_over_loopback() {
    let (incoming, addr) = listener().await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AgentServer::new(FakeAgent))
            .serve_with_incoming(incoming),
    );
    let mut c = AgentClient::new(channel(addr).await);

    let pong = c
        .ping(AgentPingRequest { host: "db1".into() })
        .await
        .expect("ping")
        .into_inner();
    assert_eq!(pong.uptime_seconds, 12.5);
    let err = c
        .ping(AgentPingRequest { host: "db9".into() })
        .await
        .expect_err("wrong host is refused");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(err.message().contains("this agent is 'db1'"));

    let status = c
        .apply_state(ApplyStateRequest {
            host: "db1".into(),
            state: HostState::Online as i32,
            roles: vec![Role::new("writer", "10.0.0.160")],
            epoch: 7,
            writer_lease_ms: 3000,
            writer_role: "writer".into(),
            ..Default::default()
        })
        .await
        .expect("apply")
        .into_inner();
    assert_eq!(status.epoch, 7);
    assert_eq!(status.roles, vec![Role::new("writer", "10.0.0.160")]);
    assert_eq!(status.state(), HostState::Online);
    let repl = status.replication.expect("replication");
    assert_eq!(repl.io_thread(), ThreadState::Running);
    assert_eq!(repl.seconds_behind_master, Some(0));

    let sys = c
        .get_system_status(AgentStatusRequest { host: "db1".into() })
        .await
        .expect("system status")
        .into_inner();
    assert!(sys.writable);
    assert_eq!(sys.ips_present, ["10.0.0.160"]);

    let cleared = c
        .clear_bad_roles(ClearBadRolesRequest {
            leader_term: 0,
            host: "db1".into(),
            all_roles: vec![Role::new("reader", "10.0.0.161")],
            writer_role: "writer".into(),
        })
        .await
        .expect("clear bad roles")
        .into_inner();
    assert_eq!(cleared.message, "OK: Removed 1 roles");
    let st = c
        .get_status(AgentStatusRequest { host: "db1".into() })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(st.host, "db1");
}

#[tokio::test]
async fn monitor_service_over_loopback() {
    let (incoming, addr) = listener().await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(MonitorServer::new(FakeMonitor))
            .serve_with_incoming(incoming),
    );
    let mut c = MonitorClient::new(channel(addr).await);

    let r = c
        .ping(MonitorPingRequest {})
        .await
        .expect("ping")
        .into_inner();
    assert_eq!(
        (r.ok, r.message.as_str()),
        (true, "OK: Pinged successfully!")
    );
    let show = c.show(ShowRequest {}).await.expect("show").into_inner();
    assert_eq!(show.mode(), Mode::Active);
    assert_eq!(format_roles(&show.hosts[0].roles), "writer(10.0.0.160)");
    let checks = c
        .checks(ChecksRequest {
            host: "db9".into(),
            check: CheckName::Mysql as i32,
        })
        .await
        .expect("checks")
        .into_inner();
    assert!(!checks.ok);
    assert_eq!(checks.message, "ERROR: Unknown host name 'db9'!");
    let r = c
        .set_online(HostRequest { host: "db2".into() })
        .await
        .expect("set_online")
        .into_inner();
    assert!(r
        .message
        .starts_with("OK: State of 'db2' changed to ONLINE."));
    let r = c
        .move_role(MoveRoleRequest {
            role: "writer".into(),
            host: "db2".into(),
            force: true,
        })
        .await
        .expect("move_role")
        .into_inner();
    assert_eq!(r.message, "writer db2 true");
    let r = c
        .set_ip(SetIpRequest {
            ip: "10.0.0.161".into(),
            host: "db2".into(),
        })
        .await
        .expect("set_ip")
        .into_inner();
    assert!(!r.ok);
    let m = c
        .get_mode(GetModeRequest {})
        .await
        .expect("mode")
        .into_inner();
    assert_eq!(m.mode(), Mode::Passive);
    let r = c
        .set_mode(SetModeRequest {
            mode: Mode::Manual as i32,
        })
        .await
        .expect("set_mode")
        .into_inner();
    assert_eq!(r.message, "OK: Switched into manual mode.");
    let e = c
        .set_mode(SetModeRequest { mode: 42 })
        .await
        .expect_err("bad mode");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let off = c
        .set_offline(HostRequest { host: "db1".into() })
        .await
        .expect("set_offline")
        .into_inner();
    assert!(off.ok);
}
