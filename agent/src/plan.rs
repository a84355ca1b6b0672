//! Planning: (desired state, what the agent holds, what the host actually looks like) → the
//! ordered list of steps still missing. Pure, so the safety ordering is unit tested:
//!
//! 1. **Removals first** (product.md F10: remove before add). Writer removal is
//!    `read_only=1` → kill client connections → remove the writer IP; then other role IPs.
//! 2. **Replication**: ADMIN_OFFLINE stops it; otherwise a host that is not the active master
//!    is re-pointed when it replicates from anything else (ONLINE, REPLICATION_FAIL,
//!    REPLICATION_DELAY — F8), and stopped threads are started when the state changes (agent
//!    start, leaving ADMIN_OFFLINE, entering ONLINE, returning from HARD_OFFLINE) and after
//!    every re-point (F14) — but not on ONLINE → REPLICATION_*, the fault being reported.
//!    A host already replicating from the active master is re-pointed anyway when the active
//!    master changed since the agent last verified it (the old writer of a master-master
//!    pair: its IO thread may hang on a connection closed while it was unreachable), and its
//!    GTID history is checked once after agent start. Replication is (re)started only after
//!    the GTID check found nothing the master lacks.
//! 3. **Reader IPs** added (they never wait for the writer's relay-log sync).
//! 4. **Writer add**: relay-log sync gate (unless already synced/writable) → `read_only=0` →
//!    writer IP (+ gratuitous ARP).
//!
//! A step is planned only when the host differs from the desired state, so applying the same
//! state twice plans nothing the second time (no kill, no ARP, no CHANGE MASTER).

use std::net::Ipv4Addr;

use ha_proto::HostState;

use crate::desired::{Desired, Master, RoleIp};
use crate::sqltext::{SlaveStatus, Thread};

/// One step of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `SET GLOBAL read_only=1` (+ super_read_only).
    DenyWrite,
    /// Kill client connections (sparing in-flight writes up to max_kill_retries s).
    KillConnections,
    RemoveIp(RoleIp),
    StopSlave,
    StartSlave,
    /// Replication already points at the active master but the agent has not verified it since
    /// it started: compare GTID histories (no errant transaction), without touching the threads.
    CheckSource(Master),
    /// `STOP SLAVE`, GTID check, `CHANGE MASTER TO` the master, `START SLAVE`. Also planned
    /// when replication already points there but the active master *changed* since the last
    /// verification (a master-master peer that was the writer): its IO thread may sit on a
    /// connection the new master closed while this host was unreachable, and it must not keep
    /// replicating before its history was checked.
    Repoint(Master),
    /// Relay-log sync gate before becoming writable.
    WaitRelayLog,
    /// `SET GLOBAL read_only=0`.
    AllowWrite,
    AddIp(RoleIp),
}

impl Step {
    /// Steps of the writer-add group: a failure skips the rest of the group.
    pub fn is_writer_add(&self, writer_role: &str) -> bool {
        match self {
            Step::WaitRelayLog | Step::AllowWrite => true,
            Step::AddIp(r) => !writer_role.is_empty() && r.name == writer_role,
            _ => false,
        }
    }
}

/// What the agent believes it holds (in memory; empty after a restart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub roles: Vec<RoleIp>,
    /// The writer role passed the relay-log sync gate for the current tenure.
    pub writer_synced: bool,
    /// Desired state of the last completed pass (`None` after agent start).
    pub applied_state: Option<HostState>,
    /// The active master this host's replication was last verified for: re-pointed at it or its
    /// GTID history checked against it (this host's own name while it is the active master).
    /// `None` after agent start.
    pub verified_master: Option<String>,
}

/// The server's state as observed at the start of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlActual {
    pub read_only: bool,
    pub super_read_only: Option<bool>,
    pub slave: Option<SlaveStatus>,
}

impl MysqlActual {
    pub fn writable(&self) -> bool {
        !self.read_only && self.super_read_only != Some(true)
    }
}

/// What the host actually looks like; `None` = could not be observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    pub ips: Option<Vec<Ipv4Addr>>,
    pub mysql: Option<MysqlActual>,
}

/// States in which a non-master host is (re-)pointed at the active master.
fn repoint_state(s: HostState) -> bool {
    matches!(
        s,
        HostState::Online | HostState::ReplicationFail | HostState::ReplicationDelay
    )
}

fn stopped(s: &SlaveStatus) -> bool {
    s.io == Thread::Stopped || s.sql == Thread::Stopped
}

/// Computes the missing steps. `this` is the agent's host name.
pub fn plan(desired: &Desired, held: &Held, actual: &Actual, this: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let present = |ip: Ipv4Addr| -> Option<bool> { actual.ips.as_ref().map(|v| v.contains(&ip)) };
    let wanted_ips: Vec<Ipv4Addr> = desired.roles.iter().map(|r| r.ip).collect();
    let writer_role = desired.writer_role.as_str();
    let is_writer_name = |r: &RoleIp| !writer_role.is_empty() && r.name == writer_role;

    // Every role instance ha manages on this host: the cluster's roles, what we hold, what is
    // wanted. Anything else on the interface is never touched.
    let mut managed: Vec<RoleIp> = desired.all_roles.clone();
    for r in held.roles.iter().chain(desired.roles.iter()) {
        if !managed.contains(r) {
            managed.push(r.clone());
        }
    }
    managed.sort();
    let mut to_remove: Vec<RoleIp> = Vec::new();
    for r in &managed {
        if wanted_ips.contains(&r.ip) || to_remove.iter().any(|x| x.ip == r.ip) {
            continue;
        }
        // Unknown presence (ip listing failed): try the removal, it is idempotent.
        if present(r.ip) != Some(false) {
            to_remove.push(r.clone());
        }
    }

    // 1. Removals: writer demotion first.
    let writer_wanted = desired.writer().is_some();
    let writer_held = held.roles.iter().any(is_writer_name);
    let writer_ip_leaving = to_remove.iter().any(is_writer_name);
    if !writer_wanted {
        match &actual.mysql {
            Some(m) => {
                let was_writable = m.writable() || !m.read_only;
                if was_writable || m.super_read_only == Some(false) {
                    steps.push(Step::DenyWrite);
                }
                if was_writable || writer_held {
                    steps.push(Step::KillConnections);
                }
            }
            None => {
                // MySQL unobservable: still try (each step reports its own error), then drop
                // the IP so clients cannot reach a possibly writable server through it.
                if writer_held || writer_ip_leaving {
                    steps.push(Step::DenyWrite);
                    steps.push(Step::KillConnections);
                }
            }
        }
    }
    let (w, others): (Vec<RoleIp>, Vec<RoleIp>) = to_remove.into_iter().partition(is_writer_name);
    steps.extend(w.into_iter().map(Step::RemoveIp));
    steps.extend(others.into_iter().map(Step::RemoveIp));

    // 2. Replication.
    if let Some(m) = &actual.mysql {
        // A state change starts stopped threads (agent start, recovery into ONLINE, …) —
        // except ONLINE → REPLICATION_*: that is the monitor reporting this very stop (an
        // operator's STOP SLAVE, an SQL error), and undoing it would hide the fault and make
        // the host bounce between REPLICATION_FAIL and ONLINE.
        let fault_reported = held.applied_state == Some(HostState::Online)
            && matches!(
                desired.state,
                HostState::ReplicationFail | HostState::ReplicationDelay
            );
        let transition = held.applied_state != Some(desired.state) && !fault_reported;
        let left_admin_offline = held.applied_state == Some(HostState::AdminOffline)
            && desired.state != HostState::AdminOffline;
        if desired.state == HostState::AdminOffline {
            if let Some(s) = &m.slave {
                if s.io != Thread::Stopped || s.sql != Thread::Stopped {
                    steps.push(Step::StopSlave);
                }
            }
        } else {
            let source = desired
                .active_master
                .as_ref()
                .filter(|am| am.name != this && !writer_wanted);
            match (source, &m.slave) {
                (Some(am), slave) if repoint_state(desired.state) => match slave {
                    Some(s) if s.is_from(&am.ip.to_string(), am.port) => {
                        let start = stopped(s) && (transition || left_admin_offline);
                        let verified = held.verified_master.as_deref();
                        if verified.is_some_and(|v| v != am.name) {
                            steps.push(Step::Repoint(am.clone()));
                        } else if start {
                            steps.push(Step::StartSlave); // checks the GTID history itself
                        } else if verified.is_none() {
                            steps.push(Step::CheckSource(am.clone()));
                        }
                    }
                    _ => steps.push(Step::Repoint(am.clone())),
                },
                (_, Some(s)) if stopped(s) && left_admin_offline => steps.push(Step::StartSlave),
                _ => {}
            }
        }
    }

    // 3. Reader (non-writer) IPs.
    for r in desired.roles.iter().filter(|r| !is_writer_name(r)) {
        if present(r.ip) != Some(true) {
            steps.push(Step::AddIp(r.clone()));
        }
    }

    // 4. Writer add.
    if let Some(w) = desired.writer() {
        match &actual.mysql {
            Some(m) if m.writable() => {}
            Some(_) => {
                if !held.writer_synced {
                    steps.push(Step::WaitRelayLog);
                }
                steps.push(Step::AllowWrite);
            }
            None => {
                steps.push(Step::WaitRelayLog);
                steps.push(Step::AllowWrite);
            }
        }
        if present(w.ip) != Some(true) {
            steps.push(Step::AddIp(w.clone()));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(n: &str, ip: [u8; 4]) -> RoleIp {
        RoleIp {
            name: n.into(),
            ip: Ipv4Addr::from(ip),
        }
    }
    fn w() -> RoleIp {
        role("writer", [10, 0, 0, 100])
    }
    fn r1() -> RoleIp {
        role("reader", [10, 0, 0, 101])
    }
    fn r2() -> RoleIp {
        role("reader", [10, 0, 0, 102])
    }
    fn master(name: &str, last: u8) -> Master {
        Master {
            name: name.into(),
            ip: Ipv4Addr::new(10, 0, 0, last),
            port: 3306,
        }
    }
    fn desired(state: HostState, roles: Vec<RoleIp>, am: Option<Master>) -> Desired {
        Desired {
            state,
            roles,
            writer_role: "writer".into(),
            active_master: am,
            epoch: 1,
            writer_lease_ms: 0,
            lease_token: None,
            force: false,
            all_roles: vec![w(), r1(), r2()],
            cluster_hosts: vec![],
        }
    }
    fn slave_of(ip: &str, io: Thread, sql: Thread) -> SlaveStatus {
        SlaveStatus {
            master_host: ip.into(),
            master_port: 3306,
            io,
            sql,
            master_log_file: "b.1".into(),
            read_master_log_pos: 10,
            relay_master_log_file: "b.1".into(),
            exec_master_log_pos: 10,
            seconds_behind_master: Some(0),
            last_io_error: String::new(),
            last_sql_error: String::new(),
            using_gtid: "Slave_Pos".into(),
            gtid_io_pos: "0-1-1".into(),
            retrieved_gtid_set: String::new(),
        }
    }
    fn actual(ips: Vec<RoleIp>, ro: bool, slave: Option<SlaveStatus>) -> Actual {
        Actual {
            ips: Some(ips.iter().map(|r| r.ip).collect()),
            mysql: Some(MysqlActual {
                read_only: ro,
                super_read_only: None,
                slave,
            }),
        }
    }
    fn held(roles: Vec<RoleIp>, synced: bool, st: Option<HostState>) -> Held {
        Held {
            roles,
            writer_synced: synced,
            applied_state: st,
            verified_master: None,
        }
    }
    fn verified(mut h: Held, master: &str) -> Held {
        h.verified_master = Some(master.into());
        h
    }
    const ON: HostState = HostState::Online;

    #[test]
    fn promotion_syncs_then_writes_then_adds_ip() {
        let d = desired(ON, vec![r1(), w()], Some(master("db1", 11)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
        );
        let steps = plan(&d, &Held::default(), &a, "db1");
        assert_eq!(
            steps,
            vec![
                Step::AddIp(r1()),
                Step::WaitRelayLog,
                Step::AllowWrite,
                Step::AddIp(w())
            ]
        );
    }

    #[test]
    fn demotion_order_deny_kill_remove_before_adds() {
        let d = desired(ON, vec![r2()], Some(master("db2", 12)));
        let a = actual(
            vec![w(), r1()],
            false,
            Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
        );
        let h = verified(held(vec![w(), r1()], true, Some(ON)), "db2");
        let steps = plan(&d, &h, &a, "db1");
        assert_eq!(
            steps,
            vec![
                Step::DenyWrite,
                Step::KillConnections,
                Step::RemoveIp(w()),
                Step::RemoveIp(r1()),
                Step::AddIp(r2()),
            ]
        );
    }

    #[test]
    fn same_state_twice_plans_nothing() {
        let d = desired(ON, vec![r1(), w()], Some(master("db1", 11)));
        let a = actual(
            vec![w(), r1()],
            false,
            Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
        );
        assert!(plan(&d, &held(vec![r1(), w()], true, Some(ON)), &a, "db1").is_empty());
        // A replica already replicating from the right master: nothing either.
        let d = desired(ON, vec![r2()], Some(master("db1", 11)));
        let a = actual(
            vec![r2()],
            true,
            Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
        );
        let h = verified(held(vec![r2()], false, Some(ON)), "db1");
        assert!(plan(&d, &h, &a, "db3").is_empty());
        // Demoted already: no second kill.
        let d = desired(ON, vec![], Some(master("db2", 12)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
        );
        let h = verified(held(vec![], false, Some(ON)), "db2");
        assert!(plan(&d, &h, &a, "db1").is_empty());
    }

    #[test]
    fn old_writer_is_repointed_at_the_peer_it_already_follows() {
        // db1 was the active master, replicating from its master-master peer db2; db2 took
        // over. db1's IO thread may hang on a connection db2 closed while db1 was cut off, and
        // db1 may hold a write db2 never got: re-point (GTID check, fresh connection).
        let d = desired(ON, vec![], Some(master("db2", 12)));
        let a = actual(
            vec![w()],
            true,
            Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
        );
        let h = verified(held(vec![w()], true, Some(ON)), "db1");
        assert_eq!(
            plan(&d, &h, &a, "db1"),
            vec![
                Step::KillConnections,
                Step::RemoveIp(w()),
                Step::Repoint(master("db2", 12))
            ]
        );
        // Once verified for db2: nothing more.
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.12", Thread::Running, Thread::Running)),
        );
        let h = verified(held(vec![], false, Some(ON)), "db2");
        assert!(plan(&d, &h, &a, "db1").is_empty());
    }

    #[test]
    fn agent_start_checks_the_history_without_touching_running_threads() {
        let d = desired(ON, vec![], Some(master("db1", 11)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
        );
        assert_eq!(
            plan(&d, &Held::default(), &a, "db3"),
            vec![Step::CheckSource(master("db1", 11))]
        );
        // Stopped threads at agent start: StartSlave (which checks the history first).
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
        );
        assert_eq!(
            plan(&d, &Held::default(), &a, "db3"),
            vec![Step::StartSlave]
        );
    }

    #[test]
    fn writable_host_skips_sync() {
        let d = desired(ON, vec![w()], None);
        let a = actual(vec![], false, None);
        assert_eq!(
            plan(&d, &Held::default(), &a, "db1"),
            vec![Step::AddIp(w())]
        );
        // Synced earlier, still read-only: no second wait.
        let a = actual(vec![], true, None);
        assert_eq!(
            plan(&d, &held(vec![], true, Some(ON)), &a, "db1"),
            vec![Step::AllowWrite, Step::AddIp(w())]
        );
    }

    #[test]
    fn replicas_are_repointed_in_online_and_replication_states() {
        for st in [
            HostState::Online,
            HostState::ReplicationFail,
            HostState::ReplicationDelay,
        ] {
            let d = desired(st, vec![], Some(master("db2", 12)));
            let a = actual(
                vec![],
                true,
                Some(slave_of("10.0.0.11", Thread::Running, Thread::Stopped)),
            );
            assert_eq!(
                plan(&d, &held(vec![], false, Some(st)), &a, "db3"),
                vec![Step::Repoint(master("db2", 12))],
                "{st:?}"
            );
        }
        // Not configured at all → re-point too.
        let d = desired(ON, vec![], Some(master("db2", 12)));
        let a = actual(vec![], true, None);
        assert_eq!(
            plan(&d, &Held::default(), &a, "db3"),
            vec![Step::Repoint(master("db2", 12))]
        );
        // Awaiting recovery: left alone.
        let d = desired(HostState::AwaitingRecovery, vec![], Some(master("db2", 12)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
        );
        assert!(plan(&d, &Held::default(), &a, "db3").is_empty());
    }

    #[test]
    fn active_master_is_never_repointed() {
        let d = desired(ON, vec![], Some(master("db1", 11)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.12", Thread::Stopped, Thread::Stopped)),
        );
        assert!(plan(&d, &Held::default(), &a, "db1").is_empty());
    }

    #[test]
    fn stopped_threads_restart_on_transitions_only() {
        let d = desired(ON, vec![], Some(master("db1", 11)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Running, Thread::Stopped)),
        );
        // Entering ONLINE (or agent start): start them.
        assert_eq!(
            plan(
                &d,
                &held(vec![], false, Some(HostState::AwaitingRecovery)),
                &a,
                "db3"
            ),
            vec![Step::StartSlave]
        );
        assert_eq!(
            plan(&d, &Held::default(), &a, "db3"),
            vec![Step::StartSlave]
        );
        // A renewal of the same ONLINE state: the operator's STOP SLAVE is respected.
        let h = verified(held(vec![], false, Some(ON)), "db1");
        assert!(plan(&d, &h, &a, "db3").is_empty());
    }

    #[test]
    fn replication_fault_reported_by_the_monitor_is_not_undone() {
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Running)),
        );
        for st in [HostState::ReplicationFail, HostState::ReplicationDelay] {
            let d = desired(st, vec![], Some(master("db1", 11)));
            // ONLINE → REPLICATION_*: the stop is the fault being reported; leave it.
            let h = verified(held(vec![], false, Some(ON)), "db1");
            assert!(plan(&d, &h, &a, "db3").is_empty(), "{st:?}");
            // Coming back from HARD_OFFLINE (recovery) or at agent start: start them.
            assert_eq!(
                plan(
                    &d,
                    &held(vec![], false, Some(HostState::HardOffline)),
                    &a,
                    "db3"
                ),
                vec![Step::StartSlave],
                "{st:?}"
            );
            assert_eq!(
                plan(&d, &Held::default(), &a, "db3"),
                vec![Step::StartSlave],
                "{st:?}"
            );
        }
    }

    #[test]
    fn admin_offline_stops_and_leaving_starts_replication() {
        let d = desired(HostState::AdminOffline, vec![], Some(master("db1", 11)));
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
        );
        assert_eq!(
            plan(&d, &held(vec![], false, Some(ON)), &a, "db3"),
            vec![Step::StopSlave]
        );
        let a = actual(
            vec![],
            true,
            Some(slave_of("10.0.0.11", Thread::Stopped, Thread::Stopped)),
        );
        assert!(plan(
            &d,
            &held(vec![], false, Some(HostState::AdminOffline)),
            &a,
            "db3"
        )
        .is_empty());
        let d = desired(ON, vec![], Some(master("db1", 11)));
        assert_eq!(
            plan(
                &d,
                &held(vec![], false, Some(HostState::AdminOffline)),
                &a,
                "db3"
            ),
            vec![Step::StartSlave]
        );
    }

    #[test]
    fn unobservable_mysql_still_drops_writer_ip() {
        let d = desired(ON, vec![], None);
        let a = Actual {
            ips: Some(vec![w().ip]),
            mysql: None,
        };
        assert_eq!(
            plan(&d, &held(vec![w()], true, Some(ON)), &a, "db1"),
            vec![Step::DenyWrite, Step::KillConnections, Step::RemoveIp(w())]
        );
    }

    #[test]
    fn stray_read_only_off_is_fixed_on_non_writers() {
        let d = desired(ON, vec![r1()], Some(master("db1", 11)));
        let a = actual(
            vec![r1()],
            false,
            Some(slave_of("10.0.0.11", Thread::Running, Thread::Running)),
        );
        let h = verified(held(vec![r1()], false, Some(ON)), "db1");
        assert_eq!(
            plan(&d, &h, &a, "db3"),
            vec![Step::DenyWrite, Step::KillConnections]
        );
    }

    #[test]
    fn foreign_addresses_are_never_touched() {
        let d = desired(ON, vec![], None);
        let a = Actual {
            ips: Some(vec![
                Ipv4Addr::new(10, 0, 0, 11),
                Ipv4Addr::new(192, 168, 1, 1),
            ]),
            mysql: Some(MysqlActual {
                read_only: true,
                super_read_only: None,
                slave: None,
            }),
        };
        assert!(plan(&d, &Held::default(), &a, "db1").is_empty());
    }
}
