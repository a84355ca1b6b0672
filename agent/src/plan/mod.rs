//! Planning: (desired state, what the agent holds, what the host actually looks like) → the
//! ordered list of steps still missing. Pure, so the safety ordering is unit tested:
//!
//! 1. **Removals first** (docs/product.md F10: remove before add). Writer removal is
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

/// The step's name in `operations`, the log and `last_error` (one spelling for each step).
impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::DenyWrite => f.write_str("read_only=1"),
            Step::KillConnections => f.write_str("kill connections"),
            Step::RemoveIp(r) => write!(f, "remove ip {} ({})", r.ip, r.name),
            Step::StopSlave => f.write_str("stop slave"),
            Step::StartSlave => f.write_str("start slave"),
            Step::Repoint(m) => write!(f, "change master to {} ({}:{})", m.name, m.ip, m.port),
            Step::CheckSource(m) => write!(f, "check gtid history against {}", m.name),
            Step::WaitRelayLog => f.write_str("relay-log sync"),
            Step::AllowWrite => f.write_str("read_only=0"),
            Step::AddIp(r) => write!(f, "add ip {} ({})", r.ip, r.name),
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

/// The master this host should replicate from: the active master, unless this host is the
/// active master or is to be the writer.
pub fn source<'a>(desired: &'a Desired, this: &str) -> Option<&'a Master> {
    desired
        .active_master
        .as_ref()
        .filter(|am| am.name != this && desired.writer().is_none())
}

/// Whether this host's replication currently points at `m`.
pub fn follows(actual: &Actual, m: &Master) -> bool {
    actual
        .mysql
        .as_ref()
        .and_then(|x| x.slave.as_ref())
        .is_some_and(|s| s.is_from(&m.ip.to_string(), m.port))
}

/// Replication from the active master that broke with an error (for example MariaDB's own
/// reconnect after an outage ran into "out-of-order sequence number"), while no step of this
/// pass touches replication: the master to compare GTID histories with, so the agent can say
/// whether this host has transactions the master lacks. ADMIN_OFFLINE hosts are left alone.
pub fn broken_replication_check<'a>(
    desired: &'a Desired,
    actual: &Actual,
    steps: &[Step],
    this: &str,
) -> Option<&'a Master> {
    let broken = actual
        .mysql
        .as_ref()
        .and_then(|x| x.slave.as_ref())
        .is_some_and(|s| {
            stopped(s) && (!s.last_io_error.is_empty() || !s.last_sql_error.is_empty())
        });
    let replication_step = steps.iter().any(|s| {
        matches!(
            s,
            Step::Repoint(_) | Step::StartSlave | Step::CheckSource(_)
        )
    });
    source(desired, this).filter(|am| {
        broken
            && !replication_step
            && follows(actual, am)
            && desired.state != HostState::AdminOffline
    })
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
            match (source(desired, this), &m.slave) {
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

mod reconcile;

pub use reconcile::{
    demotion_complete, probe_stopped, reconcile, DemotionEnd, DemotionFacts, Following,
    PromotionError, Reconciled, RunReport,
};

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
