//! Conversions between the outside world (check results, proto messages, config) and the pure
//! core's vocabulary. Kept in one place so the daemon loop reads as plumbing only.

use ha_config::MonitorConfig;
use ha_core::{
    AdminCommand, AgentFacts, AgentReport, Check, Core, DesiredState, HostState, Input, Level,
    Millis, RoleInstance, StartupHostInfo, SystemFacts,
};
use ha_proto as pb;

use crate::agents::AgentError;
use crate::checks::CheckReport;
use crate::kill::KillOutcome;
use crate::snapshot::Snapshot;

pub fn millis(ms: u64) -> Millis {
    Millis(ms)
}

pub fn check_input(r: CheckReport) -> Input {
    Input::CheckResult {
        host: r.host,
        check: r.check,
        outcome: r.observation.outcome,
        message: r.observation.message,
    }
}

pub fn network_input(reachable: bool) -> Input {
    Input::Network { reachable }
}

pub fn kill_input(host: &str, out: &KillOutcome) -> Input {
    Input::KillResult {
        host: host.to_string(),
        ok: out.ok,
        output: out.output.clone(),
    }
}

pub fn command_input(id: u64, command: AdminCommand) -> Input {
    Input::Command { id, command }
}

fn thread_running(t: i32) -> bool {
    t == pb::ThreadState::Running as i32
}

/// The agent's reply as the core sees it: facts only; what they mean (e.g. whether the host
/// can still write) is decided in the core (`AgentFacts::cannot_write`).
pub fn agent_facts(s: &pb::AgentStatus) -> AgentFacts {
    let repl = s.replication.clone().unwrap_or_default();
    AgentFacts {
        uptime_secs: s.uptime_seconds,
        epoch: s.epoch,
        roles: s.roles.iter().map(RoleInstance::from).collect(),
        read_only: s.read_only,
        mysql_down: !s.mysql_reachable,
        ips_present: s.ips_present.clone(),
        writer_synced: s.writer_synced && s.mysql_reachable && !s.read_only,
        promotion_error: (!s.promotion_error.is_empty()).then(|| s.promotion_error.clone()),
        replicating_from: (repl.configured && !repl.source_name.is_empty())
            .then(|| repl.source_name.clone()),
        io_running: thread_running(repl.io_thread),
        sql_running: thread_running(repl.sql_thread),
        lease_token: s.lease_token.as_ref().map(|t| ha_core::LeaseToken {
            boot_id: t.boot_id.clone(),
            at_ms: t.at_ms,
        }),
        fence_budget: std::time::Duration::from_millis(s.fence_budget_ms),
        lease_remaining: u64::try_from(s.writer_lease_remaining_ms)
            .ok()
            .map(std::time::Duration::from_millis),
        semi_sync: s
            .semi_sync
            .filter(|_| s.mysql_reachable)
            .map(|x| ha_core::SemiSyncFacts {
                enabled: x.enabled,
                active: x.active,
            }),
        promise_given: s
            .promise
            .as_ref()
            .map(|p| (p.writer.clone(), std::time::Duration::from_millis(p.age_ms))),
        refused_for_promise: (s.writer_refused_for_ms > 0)
            .then(|| std::time::Duration::from_millis(s.writer_refused_for_ms)),
    }
}

pub fn agent_input(host: &str, result: &Result<pb::AgentStatus, AgentError>) -> Input {
    let report = match result {
        Ok(s) => AgentReport::Status(agent_facts(s)),
        Err(AgentError::StaleEpoch { held, .. }) => AgentReport::StaleEpoch { held: *held },
        Err(AgentError::Failed(e)) => AgentReport::Unreachable { error: e.clone() },
    };
    Input::AgentReport {
        host: host.to_string(),
        report,
    }
}

pub fn startup_info(
    cfg: &MonitorConfig,
    host: &str,
    agent: Option<pb::AgentStatus>,
    system: Option<pb::SystemStatus>,
) -> StartupHostInfo {
    let managed: Vec<String> = cfg
        .roles
        .iter()
        .flat_map(|r| r.ips.iter().map(|ip| ip.to_string()))
        .collect();
    StartupHostInfo {
        host: host.to_string(),
        agent: agent.as_ref().map(|a| {
            (
                HostState::from(pb::HostState::try_from(a.state).unwrap_or(pb::HostState::Unknown)),
                a.roles.iter().map(RoleInstance::from).collect(),
            )
        }),
        agent_epoch: agent.as_ref().map(|a| a.epoch),
        facts: agent.as_ref().map(agent_facts),
        system: system
            .filter(|s| s.error.is_empty() || s.mysql_reachable)
            .map(|s| {
                let master = if !s.master_name.is_empty() {
                    Some(s.master_name.clone())
                } else if !s.master_ip.is_empty() {
                    cfg.hosts
                        .iter()
                        .find(|h| h.ip.to_string() == s.master_ip)
                        .map(|h| h.name.clone())
                } else {
                    None
                };
                SystemFacts {
                    writable: s.mysql_reachable && s.writable,
                    ips_present: s
                        .ips_present
                        .iter()
                        .filter(|ip| managed.contains(ip))
                        .cloned()
                        .collect(),
                    master,
                }
            }),
    }
}

/// The ApplyState request for `host`.
/// `term`: the leadership term of redundant monitors (0 for a single monitor); agents refuse
/// requests of a term older than one they obeyed.
pub fn apply_request(
    cfg: &MonitorConfig,
    host: &str,
    d: &DesiredState,
    term: u64,
) -> pb::ApplyStateRequest {
    let master_info = |name: &str| {
        cfg.host(name).map(|h| pb::MasterInfo {
            name: h.name.clone(),
            ip: h.ip.to_string(),
            port: u32::from(h.mysql_port),
        })
    };
    pb::ApplyStateRequest {
        host: host.to_string(),
        state: pb::HostState::from(d.state) as i32,
        roles: d.roles.iter().map(pb::Role::from).collect(),
        active_master: d.active_master.as_deref().and_then(master_info),
        epoch: d.epoch,
        writer_lease_ms: d.writer_lease.as_millis() as u64,
        writer_role: cfg.active_master_role.clone(),
        force: d.force,
        lease_token: d.lease_token.as_ref().map(|t| pb::LeaseToken {
            boot_id: t.boot_id.clone(),
            at_ms: t.at_ms,
        }),
        all_roles: cfg
            .roles
            .iter()
            .flat_map(|r| {
                r.ips
                    .iter()
                    .map(|ip| pb::Role::new(r.name.clone(), ip.to_string()))
            })
            .collect(),
        cluster_hosts: cfg
            .hosts
            .iter()
            .filter_map(|h| master_info(&h.name))
            .collect(),
        writer_peers: d
            .writer_peers
            .iter()
            .filter_map(|name| cfg.host(name))
            .map(|h| pb::PeerAgent {
                name: h.name.clone(),
                address: std::net::SocketAddr::from((h.ip, h.agent_port)).to_string(),
            })
            .collect(),
        leader_term: term,
    }
}

pub fn log(level: Level, message: &str) {
    match level {
        Level::Info => tracing::info!("{message}"),
        Level::Warn => tracing::warn!("{message}"),
        Level::Error => tracing::error!("{message}"),
    }
}

/// What `show`, `checks`, `mode` and `explain` answer, built from the core's views at `now`
/// (`explain` from the copy of the core it keeps).
pub fn snapshot(cfg: &MonitorConfig, core: &Core, now: Millis) -> Snapshot {
    let mut hosts: Vec<pb::HostInfo> = cfg
        .hosts
        .iter()
        .filter_map(|h| {
            let view = core.host(&h.name)?;
            Some(pb::HostInfo {
                name: h.name.clone(),
                ip: h.ip.to_string(),
                mode: match h.mode {
                    ha_config::HostMode::Master => pb::HostMode::Master as i32,
                    ha_config::HostMode::Slave => pb::HostMode::Slave as i32,
                },
                state: pb::HostState::from(view.state) as i32,
                roles: view.roles.iter().map(pb::Role::from).collect(),
                agent_reachable: !view.agent_down,
                flapping: view.flapping,
                last_state_change_unix_ms: view.last_state_change.0 as i64,
                peer: h.peer.clone().unwrap_or_default(),
                reachable_from: view.reachable_from.clone(),
            })
        })
        .collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let roles = cfg
        .roles
        .iter()
        .map(|r| pb::RoleInfo {
            name: r.name.clone(),
            mode: match r.mode {
                ha_config::RoleMode::Exclusive => pb::RoleMode::Exclusive as i32,
                ha_config::RoleMode::Balanced => pb::RoleMode::Balanced as i32,
            },
            hosts: r.hosts.clone(),
            ips: r.ips.iter().map(|ip| ip.to_string()).collect(),
            prefer: r.prefer.clone().unwrap_or_default(),
            owners: r
                .ips
                .iter()
                .map(|ip| {
                    core.role_owner(&r.name, &ip.to_string())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
        })
        .collect();
    let mut checks = Vec::new();
    let mut names: Vec<&str> = cfg.hosts.iter().map(|h| h.name.as_str()).collect();
    names.sort();
    for name in names {
        for c in Check::ALL {
            if let Some(st) = core.check_status(name, c) {
                checks.push(pb::CheckStatus {
                    host: name.to_string(),
                    check: pb::CheckName::from(c) as i32,
                    ok: st.ok.unwrap_or(false),
                    last_change_unix_ms: st.last_change.map(|m| m.0 as i64).unwrap_or(0),
                    message: st.message.clone(),
                });
            }
        }
    }
    Snapshot {
        show: pb::ShowReply {
            mode: pb::Mode::from(core.mode()) as i32,
            passive_cause: core.passive_cause().to_string(),
            hosts,
            roles,
            active_master: core.active_master().unwrap_or_default().to_string(),
            epoch: core.epoch(),
            network_ok: core.network_up(),
            async_fallback_host: core
                .async_fallback()
                .map(|(h, _)| h.to_string())
                .unwrap_or_default(),
            async_fallback_since_unix_ms: core
                .async_fallback()
                .map_or(0, |(_, since)| since.0 as i64),
            leader: String::new(),
            leader_term: 0,
        },
        checks,
        core: Some((std::sync::Arc::new(core.clone()), now)),
        leadership: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MonitorConfig {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/monitor.yaml"))
                .expect("sample config");
        MonitorConfig::parse(&text, "monitor.yaml").expect("valid sample")
    }

    fn status(
        reachable: bool,
        read_only: bool,
        roles: &[(&str, &str)],
        ips: &[&str],
    ) -> pb::AgentStatus {
        pb::AgentStatus {
            mysql_reachable: reachable,
            read_only,
            roles: roles.iter().map(|(n, ip)| pb::Role::new(*n, *ip)).collect(),
            ips_present: ips.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// The core's rule applied to what the bridge reports, with the sample's writer role.
    fn cannot_write(f: &AgentFacts) -> bool {
        let holds = f.roles.iter().any(|r| r.name == "writer");
        f.cannot_write(holds, Some("10.0.60.160"))
    }

    #[test]
    fn read_only_server_cannot_write() {
        let f = agent_facts(&status(true, true, &[], &[]));
        assert!(cannot_write(&f));
        let f = agent_facts(&status(true, false, &[], &[]));
        assert!(!cannot_write(&f));
    }

    #[test]
    fn mysql_down_without_writer_role_or_ip_counts_as_demoted() {
        let f = agent_facts(&status(
            false,
            false,
            &[("reader", "10.0.60.161")],
            &["10.0.60.161"],
        ));
        assert!(
            cannot_write(&f),
            "no writer role, no writer IP, server down: nothing can write"
        );
    }

    #[test]
    fn mysql_down_with_writer_role_or_ip_is_not_demoted() {
        let f = agent_facts(&status(false, false, &[("writer", "10.0.60.160")], &[]));
        assert!(!cannot_write(&f), "still holds the writer role");
        let f = agent_facts(&status(false, false, &[], &["10.0.60.160"]));
        assert!(!cannot_write(&f), "writer IP still present");
    }

    #[test]
    fn writer_synced_needs_a_writable_reachable_server() {
        let mut s = status(true, false, &[("writer", "10.0.60.160")], &["10.0.60.160"]);
        s.writer_synced = true;
        assert!(agent_facts(&s).writer_synced);
        s.read_only = true;
        assert!(!agent_facts(&s).writer_synced);
    }

    #[test]
    fn failed_sync_is_a_promotion_error() {
        let mut s = status(true, true, &[], &[]);
        s.promotion_error = "relay-log sync: SQL thread is stopped".into();
        let f = agent_facts(&s);
        assert_eq!(
            f.promotion_error.as_deref(),
            Some("relay-log sync: SQL thread is stopped")
        );
        // Any other failed step (e.g. a reader IP) is not a promotion failure.
        let mut s = status(true, true, &[], &[]);
        s.last_error = "add ip 10.0.0.161 (reader): Cannot find device".into();
        s.operations = vec![pb::OperationResult {
            operation: "add ip 10.0.0.161 (reader)".into(),
            ok: false,
            message: "Cannot find device".into(),
            duration_ms: 1,
        }];
        assert_eq!(agent_facts(&s).promotion_error, None);
    }

    #[test]
    fn apply_request_carries_master_address_and_all_roles() {
        let c = cfg();
        let d = DesiredState {
            state: HostState::Online,
            roles: vec![RoleInstance::new("reader", "10.0.60.162")],
            active_master: Some("db2".into()),
            epoch: 9,
            writer_lease: std::time::Duration::from_secs(10),
            force: false,
            lease_token: Some(ha_core::LeaseToken {
                boot_id: "b".into(),
                at_ms: 42,
            }),
            writer_peers: vec!["db2".into()],
        };
        let r = apply_request(&c, "db3", &d, 0);
        let m = r.active_master.expect("master");
        assert_eq!(
            (m.name.as_str(), m.ip.as_str(), m.port),
            ("db2", "10.0.60.101", 3306)
        );
        assert_eq!(r.writer_lease_ms, 10_000);
        assert_eq!(r.all_roles.len(), 4);
        assert_eq!(r.cluster_hosts.len(), 3);
        assert_eq!(r.writer_role, "writer");
        assert_eq!(r.lease_token.map(|t| t.at_ms), Some(42));
        let peers: Vec<(String, String)> = r
            .writer_peers
            .into_iter()
            .map(|p| (p.name, p.address))
            .collect();
        assert_eq!(peers, [("db2".to_string(), "10.0.60.101:9989".to_string())]);
    }

    #[test]
    fn lease_facts_come_through() {
        let mut s = status(true, true, &[], &[]);
        s.writer_lease_remaining_ms = -1;
        s.fence_budget_ms = 250;
        s.lease_token = Some(pb::LeaseToken {
            boot_id: "b".into(),
            at_ms: 7,
        });
        let f = agent_facts(&s);
        assert_eq!(f.lease_remaining, None);
        assert_eq!(f.fence_budget.as_millis(), 250);
        assert_eq!(f.lease_token.map(|t| t.at_ms), Some(7));
        s.writer_lease_remaining_ms = 900;
        assert_eq!(
            agent_facts(&s).lease_remaining.map(|d| d.as_millis()),
            Some(900)
        );
    }
}
