//! The `Monitor` gRPC service ha-control talks to.
//!
//! Reads (`show`, `checks`, `mode`) are answered from the snapshot the main loop publishes after
//! every step, so they never wait for the loop. Commands are queued to the main loop, which runs
//! them through the pure core in arrival order (docs/mmm-behaviour.md §0.2 step 3) and answers with
//! mysql-mmm's reply text.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tonic::{Request, Response, Status};

use ha_core::AdminCommand as Command;
use ha_proto::monitor_server::Monitor;
use ha_proto::{
    CheckName, ChecksReply, ChecksRequest, CommandReply, ExplainReply, ExplainRequest,
    GetModeRequest, HistoryEvent, HistoryReply, HistoryRequest, HostInfo, HostRequest, Mode,
    ModeReply, MonitorPingRequest, MoveRoleRequest, SetIpRequest, SetModeRequest, ShowReply,
    ShowRequest,
};

use crate::observe::history::{self, Filter, Record};
use crate::snapshot::Leadership;
pub use crate::snapshot::Snapshot;

/// A queued command and where its reply goes.
#[derive(Debug)]
pub struct QueuedCommand {
    pub command: Command,
    pub reply: oneshot::Sender<CommandReply>,
    /// Who asked, for the history: `operator 'NAME' (ADDRESS)`.
    pub operator: String,
}

/// Who may use ha-control (monitor.yaml `tls.admins` / `tls.readers`); `None` = `tls: off`.
#[derive(Debug, Clone)]
pub struct Operators {
    admins: Vec<String>,
    /// Admins and readers: who may read.
    everyone: Vec<String>,
}

impl Operators {
    pub fn new(admins: Vec<String>, readers: Vec<String>) -> Operators {
        let everyone = admins.iter().chain(&readers).cloned().collect();
        Operators { admins, everyone }
    }
}

/// What an RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// `show`, `checks`, `mode`, `ping`.
    Read,
    /// Everything that changes state.
    Admin,
}

pub struct ControlService {
    snapshot: watch::Receiver<Snapshot>,
    operators: Option<Operators>,
    commands: mpsc::Sender<QueuedCommand>,
    /// How long a command may wait for the main loop before ha-control gets an error.
    command_deadline: Duration,
    /// The decision history file (`None`: this service answers `history` with an error).
    history: Option<std::path::PathBuf>,
}

impl ControlService {
    pub fn new(
        snapshot: watch::Receiver<Snapshot>,
        commands: mpsc::Sender<QueuedCommand>,
        command_deadline: Duration,
        operators: Option<Operators>,
    ) -> Self {
        ControlService {
            snapshot,
            operators,
            commands,
            command_deadline,
            history: None,
        }
    }

    pub fn with_history(mut self, path: std::path::PathBuf) -> Self {
        self.history = Some(path);
        self
    }

    /// The caller's identity if it may do `level`: its certificate (already verified against
    /// the cluster CA by the TLS handshake) must name an admin, or a reader for reads.
    fn allow<T>(&self, req: &Request<T>, level: Level, what: &str) -> Result<String, Status> {
        let from = req
            .remote_addr()
            .map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        let Some(ops) = &self.operators else {
            self.leads()?;
            return Ok(format!("a plaintext caller at {from}"));
        };
        let who = ha_tls::caller_identity(req, &ops.everyone)
            .inspect_err(|s| tracing::warn!("refused {what}: {}", s.message()))?;
        if level == Level::Admin && !ops.admins.contains(&who) {
            let msg = format!(
                "operator '{who}' ({from}) may only read (monitor.yaml tls.readers); {what} needs an identity listed in tls.admins"
            );
            tracing::warn!("refused {what}: {msg}");
            return Err(Status::permission_denied(msg));
        }
        self.leads()?;
        Ok(format!("operator '{who}' ({from})"))
    }

    /// Redundant monitors: only the leader answers. A standby refuses with the leader's
    /// address in the `ha-leader` metadata, which ha-control follows.
    fn leads(&self) -> Result<(), Status> {
        let Leadership::Standby { me, leader } = self.snapshot.borrow().leadership.clone() else {
            return Ok(());
        };
        match leader {
            Some((addr, term)) => {
                let mut status = Status::failed_precondition(format!(
                    "this monitor ({me}) is a standby; the leader is {addr} (term {term})"
                ));
                if let Ok(v) = addr.parse() {
                    status.metadata_mut().insert(ha_proto::LEADER_METADATA, v);
                }
                Err(status)
            }
            None => Err(Status::unavailable(format!(
                "this monitor ({me}) is a standby and no monitor leads right now (an election \
                 is under way, or etcd cannot be reached); retry in a few seconds"
            ))),
        }
    }

    /// Checks the caller and logs who asked for a state change; returns who.
    fn admin<T>(&self, req: &Request<T>, what: &str) -> Result<String, Status> {
        let who = self.allow(req, Level::Admin, what)?;
        tracing::info!("admin command {what} from {who}");
        Ok(who)
    }

    async fn run(
        &self,
        command: Command,
        operator: String,
    ) -> Result<Response<CommandReply>, Status> {
        let (tx, rx) = oneshot::channel();
        let what = format!("{command:?}");
        self.commands
            .send(QueuedCommand {
                command,
                reply: tx,
                operator,
            })
            .await
            .map_err(|_| Status::unavailable("the monitor is shutting down"))?;
        match tokio::time::timeout(self.command_deadline, rx).await {
            Ok(Ok(reply)) => Ok(Response::new(reply)),
            Ok(Err(_)) => Err(Status::unavailable(
                "the monitor's main loop stopped before answering",
            )),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "the monitor's main loop did not answer {what} within {:?}",
                self.command_deadline
            ))),
        }
    }
}

fn history_event(r: &Record) -> HistoryEvent {
    let e = &r.event;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    HistoryEvent {
        time_unix_ms: r.time_unix_ms,
        kind: e.kind.name().to_string(),
        host: text(&e.host),
        role: text(&e.role),
        from: text(&e.from),
        to: text(&e.to),
        rule: text(&e.rule),
        cause: text(&e.cause),
        duration_ms: e.duration_ms,
        operator: text(&r.operator),
        message: e.message.clone(),
    }
}

/// Answers `checks [host|all [check|all]]` from a snapshot (docs/mmm-behaviour.md §6.2).
/// `explain [role]`: every role instance, or those of `role` (mmm's error text for an unknown
/// role).
pub fn select_explain(snapshot: &Snapshot, role: &str) -> ExplainReply {
    let roles: Vec<_> = snapshot
        .explain()
        .into_iter()
        .filter(|x| role.is_empty() || x.role == role)
        .collect();
    if roles.is_empty() && !role.is_empty() {
        return ExplainReply {
            ok: false,
            message: format!("ERROR: Unknown role '{role}'!"),
            roles,
        };
    }
    ExplainReply {
        ok: true,
        message: String::new(),
        roles,
    }
}

pub fn select_checks(snapshot: &Snapshot, host: &str, check: CheckName) -> ChecksReply {
    if !host.is_empty()
        && !snapshot
            .show
            .hosts
            .iter()
            .any(|h: &HostInfo| h.name == host)
    {
        return ChecksReply {
            ok: false,
            message: format!("ERROR: Unknown host name '{host}'!"),
            checks: Vec::new(),
        };
    }
    let checks = snapshot
        .checks
        .iter()
        .filter(|c| host.is_empty() || c.host == host)
        .filter(|c| check == CheckName::Unspecified || c.check == check as i32)
        .cloned()
        .collect();
    ChecksReply {
        ok: true,
        message: String::new(),
        checks,
    }
}

#[tonic::async_trait]
impl Monitor for ControlService {
    async fn ping(
        &self,
        req: Request<MonitorPingRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let who = self.allow(&req, Level::Read, "ping")?;
        self.run(Command::Ping, who).await
    }

    async fn show(&self, req: Request<ShowRequest>) -> Result<Response<ShowReply>, Status> {
        self.allow(&req, Level::Read, "show")?;
        Ok(Response::new(self.snapshot.borrow().show.clone()))
    }

    async fn checks(&self, req: Request<ChecksRequest>) -> Result<Response<ChecksReply>, Status> {
        self.allow(&req, Level::Read, "checks")?;
        let req = req.into_inner();
        let check = CheckName::try_from(req.check)
            .map_err(|_| Status::invalid_argument(format!("unknown check number {}", req.check)))?;
        let snap = self.snapshot.borrow().clone();
        Ok(Response::new(select_checks(&snap, &req.host, check)))
    }

    async fn explain(
        &self,
        req: Request<ExplainRequest>,
    ) -> Result<Response<ExplainReply>, Status> {
        self.allow(&req, Level::Read, "explain")?;
        let role = req.into_inner().role;
        let snapshot = self.snapshot.borrow().clone();
        Ok(Response::new(select_explain(&snapshot, &role)))
    }

    async fn history(
        &self,
        req: Request<HistoryRequest>,
    ) -> Result<Response<HistoryReply>, Status> {
        self.allow(&req, Level::Read, "history")?;
        let Some(path) = self.history.clone() else {
            return Err(Status::unimplemented("this monitor keeps no history"));
        };
        let r = req.into_inner();
        let filter = Filter {
            since_unix_ms: (r.since_unix_ms > 0).then_some(r.since_unix_ms),
            host: (!r.host.is_empty()).then_some(r.host),
            kind: (!r.kind.is_empty()).then_some(r.kind),
            limit: if r.limit == 0 { 1000 } else { r.limit as usize },
        };
        let read = tokio::task::spawn_blocking(move || history::read(&path, &filter))
            .await
            .map_err(|e| Status::internal(format!("reading the history failed: {e}")))?;
        Ok(Response::new(match read {
            Ok((records, skipped)) => HistoryReply {
                ok: true,
                message: String::new(),
                events: records.iter().map(history_event).collect(),
                skipped_lines: skipped as u32,
            },
            Err(e) => HistoryReply {
                ok: false,
                message: format!("ERROR: {e}"),
                ..Default::default()
            },
        }))
    }

    async fn set_online(
        &self,
        req: Request<HostRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let command = Command::SetOnline(req.get_ref().host.clone());
        let who = self.admin(&req, &format!("{command:?}"))?;
        self.run(command, who).await
    }

    async fn set_offline(
        &self,
        req: Request<HostRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let command = Command::SetOffline(req.get_ref().host.clone());
        let who = self.admin(&req, &format!("{command:?}"))?;
        self.run(command, who).await
    }

    async fn move_role(
        &self,
        req: Request<MoveRoleRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let r = req.get_ref();
        let command = Command::MoveRole {
            role: r.role.clone(),
            host: r.host.clone(),
            force: r.force,
        };
        let who = self.admin(&req, &format!("{command:?}"))?;
        self.run(command, who).await
    }

    async fn set_ip(&self, req: Request<SetIpRequest>) -> Result<Response<CommandReply>, Status> {
        let r = req.get_ref();
        let command = Command::SetIp {
            ip: r.ip.clone(),
            host: r.host.clone(),
        };
        let who = self.admin(&req, &format!("{command:?}"))?;
        self.run(command, who).await
    }

    async fn get_mode(&self, req: Request<GetModeRequest>) -> Result<Response<ModeReply>, Status> {
        self.allow(&req, Level::Read, "mode")?;
        let snap = self.snapshot.borrow();
        Ok(Response::new(ModeReply {
            mode: snap.show.mode,
            passive_cause: snap.show.passive_cause.clone(),
        }))
    }

    async fn set_mode(
        &self,
        req: Request<SetModeRequest>,
    ) -> Result<Response<CommandReply>, Status> {
        let who = self.admin(&req, &format!("set_mode({})", req.get_ref().mode))?;
        let mode = req.into_inner().mode;
        // The core decides (WAIT, for one, is refused there with mysql-mmm's text).
        match Mode::try_from(mode).ok().and_then(Mode::mode) {
            Some(m) => self.run(Command::SetMode(m), who).await,
            None => Err(Status::invalid_argument(format!(
                "unknown mode number {mode}: use ACTIVE, MANUAL or PASSIVE"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn snap() -> Snapshot {
        let host = |n: &str| HostInfo {
            name: n.into(),
            ..Default::default()
        };
        let check = |h: &str, c: CheckName| ha_proto::CheckStatus {
            host: h.into(),
            check: c as i32,
            ok: true,
            last_change_unix_ms: 0,
            message: "OK".into(),
        };
        Snapshot {
            show: ShowReply {
                hosts: vec![host("db1"), host("db2")],
                ..Default::default()
            },
            checks: ["db1", "db2"]
                .iter()
                .flat_map(|h| CheckName::ALL.map(|c| check(h, c)))
                .collect(),
            leadership: Default::default(),
            core: Some((
                Arc::new(ha_core::Core::new(ha_core::ClusterSpec::example())),
                ha_core::Millis(0),
            )),
        }
    }

    #[test]
    fn explain_selects_a_role_or_all_and_refuses_an_unknown_one() {
        let all = select_explain(&snap(), "");
        assert!(all.roles.len() >= 2, "{all:?}");
        let readers = select_explain(&snap(), "reader");
        assert!(readers.ok && !readers.roles.is_empty());
        assert!(readers.roles.iter().all(|r| r.role == "reader"));
        let r = select_explain(&snap(), "nosuch");
        assert!(!r.ok);
        assert_eq!(r.message, "ERROR: Unknown role 'nosuch'!");
    }

    #[test]
    fn all_checks_of_all_hosts() {
        let r = select_checks(&snap(), "", CheckName::Unspecified);
        assert!(r.ok);
        assert_eq!(r.checks.len(), 8);
    }

    #[test]
    fn one_host_one_check() {
        let r = select_checks(&snap(), "db2", CheckName::RepThreads);
        assert_eq!(r.checks.len(), 1);
        assert_eq!(r.checks[0].host, "db2");
        assert_eq!(r.checks[0].check, CheckName::RepThreads as i32);
        let r = select_checks(&snap(), "", CheckName::Ping);
        assert_eq!(r.checks.len(), 2);
    }

    #[test]
    fn unknown_host_is_mmm_error_text() {
        let r = select_checks(&snap(), "db9", CheckName::Unspecified);
        assert!(!r.ok);
        assert_eq!(r.message, "ERROR: Unknown host name 'db9'!");
    }

    #[tokio::test]
    async fn set_mode_wait_goes_to_the_core() {
        let (_snap_tx, snap_rx) = watch::channel(Snapshot::default());
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<QueuedCommand>(1);
        let svc = ControlService::new(snap_rx, cmd_tx, Duration::from_secs(1), None);
        let core = tokio::spawn(async move {
            let q = cmd_rx.recv().await.expect("a queued command");
            assert!(matches!(q.command, Command::SetMode(ha_core::Mode::Wait)));
            let _ = q.reply.send(CommandReply {
                ok: false,
                message: "from the core".into(),
            });
        });
        let reply = svc
            .set_mode(Request::new(SetModeRequest {
                mode: Mode::Wait as i32,
            }))
            .await
            .expect("a reply")
            .into_inner();
        core.await.expect("the fake core ran");
        assert_eq!(reply.message, "from the core");
    }
}
