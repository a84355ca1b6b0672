//! What the agent reports: the live status (GetStatus) and the system facts startup role
//! voting needs (GetSystemStatus).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use ha_proto::{AgentStatus, HostState, ReplicationStatus, SystemStatus, ThreadState};

use super::{ms, Agent};
use crate::desired::{Desired, RoleIp};
use crate::lease::clock;
use crate::sqltext::Thread;
use crate::{ip, uptime};

fn thread_state(t: Thread) -> ThreadState {
    match t {
        Thread::Running => ThreadState::Running,
        Thread::Connecting => ThreadState::Connecting,
        Thread::Stopped => ThreadState::Stopped,
    }
}

impl Agent {
    /// Reads the live status (bounded by mysql_timeout overall).
    pub async fn status(&self) -> AgentStatus {
        let now = clock::now_ms();
        let (
            desired,
            held,
            lease_ms,
            ops,
            last_errors,
            last_error,
            converged,
            epoch,
            am,
            pe,
            pr,
            refused_for,
        ) = {
            let g = self.lock();
            (
                g.desired.clone(),
                g.held.clone(),
                g.lease.remaining_ms(now),
                g.operations.clone(),
                g.last_errors.list(),
                g.last_error.clone(),
                g.converged,
                g.max_epoch,
                g.active_master.clone(),
                // A writer grant refused because of a peer promise says so, as a promotion
                // error, for as long as the refusal stands.
                match &g.promise_refusal {
                    Some(why) if g.promotion_error.is_empty() => why.clone(),
                    _ => g.promotion_error.clone(),
                },
                g.promise.latest(now).map(|(writer, age_ms, remaining_ms)| {
                    ha_proto::GivenPromise {
                        writer: writer.to_string(),
                        age_ms,
                        remaining_ms,
                    }
                }),
                if g.promise_refusal.is_some() {
                    // At least 1: the refusal stands now even if the promise ends this instant.
                    g.promise.holds(now).map_or(1, |(_, left)| left.max(1))
                } else {
                    0
                },
            )
        };
        let mut st = AgentStatus {
            host: self.cfg.this.clone(),
            agent_version: crate::VERSION.to_string(),
            state: desired
                .as_ref()
                .map(|d| d.state)
                .unwrap_or(HostState::Unknown) as i32,
            roles: held.roles.iter().map(RoleIp::to_proto).collect(),
            epoch,
            writer_lease_remaining_ms: lease_ms,
            writer_synced: held.writer_synced,
            active_master: am,
            last_error,
            operations: ops,
            last_errors,
            converged,
            promotion_error: pe,
            promise: pr,
            writer_refused_for_ms: refused_for,
            ..Default::default()
        };
        let mut errors: Vec<String> = Vec::new();
        match uptime::read() {
            Ok(u) => st.uptime_seconds = u,
            Err(e) => errors.push(e),
        }
        // Managed IPs present.
        let mut managed: BTreeSet<std::net::Ipv4Addr> = BTreeSet::new();
        if let Some(d) = &desired {
            managed.extend(d.all_roles.iter().map(|r| r.ip));
            managed.extend(d.roles.iter().map(|r| r.ip));
        }
        managed.extend(held.roles.iter().map(|r| r.ip));
        match ip::list_v4(&self.cfg.cluster_interface).await {
            Ok(v) => {
                st.ips_present = v
                    .iter()
                    .filter(|i| managed.contains(i))
                    .map(|i| i.to_string())
                    .collect()
            }
            Err(e) => errors.push(e),
        }
        let hosts = desired
            .as_ref()
            .map(|d| d.cluster_hosts.clone())
            .unwrap_or_default();
        let mut db = self.status_db.lock().await;
        let r = tokio::time::timeout(self.cfg.mysql_timeout.duration() * 2, async {
            let ro = db.read_only().await?;
            self.status_conn_id
                .store(db.connection_id().unwrap_or(0), Ordering::Relaxed);
            let slave = db.slave_status().await?;
            let pos = db.gtid_positions().await?;
            // Only a writable server's master side matters (the monitor reads it for the active
            // master); not knowing it is no reason to fail the whole status.
            let semi_sync = if ro.read_only {
                None
            } else {
                db.semi_sync().await.ok().flatten()
            };
            Ok::<_, String>((ro, slave, pos, semi_sync))
        })
        .await;
        match r {
            Ok(Ok((ro, slave, pos, semi_sync))) => {
                st.mysql_reachable = true;
                st.semi_sync = semi_sync.map(|s| ha_proto::SemiSync {
                    enabled: s.enabled,
                    active: s.active,
                });
                st.read_only = ro.read_only;
                st.super_read_only = ro.super_read_only.unwrap_or(false);
                st.gtid_binlog_pos = pos.binlog;
                st.gtid_slave_pos = pos.slave;
                st.gtid_current_pos = pos.current;
                st.replication = Some(match slave {
                    None => ReplicationStatus::default(),
                    Some(s) => ReplicationStatus {
                        configured: true,
                        source_name: Desired::host_name_of(&hosts, &s.master_host, s.master_port),
                        source_ip: s.master_host.clone(),
                        source_port: u32::from(s.master_port),
                        io_thread: thread_state(s.io) as i32,
                        sql_thread: thread_state(s.sql) as i32,
                        seconds_behind_master: s.seconds_behind_master,
                        last_io_error: s.last_io_error.clone(),
                        last_sql_error: s.last_sql_error.clone(),
                        using_gtid: s.uses_gtid(),
                    },
                });
            }
            Ok(Err(e)) => {
                st.mysql_reachable = false;
                errors.push(e);
            }
            Err(_) => {
                db.reset();
                st.mysql_reachable = false;
                errors.push(format!(
                    "MySQL at {} did not answer the status queries within {:.1} s",
                    db.endpoint(),
                    (self.cfg.mysql_timeout.duration() * 2).as_secs_f64()
                ));
            }
        }
        if !errors.is_empty() {
            let e = errors.join("; ");
            st.last_error = if st.last_error.is_empty() {
                e
            } else {
                format!("{}; {e}", st.last_error)
            };
        }
        st.fence_budget_ms = ms(self.cfg.fence_budget.duration());
        // Read last, right before the reply leaves: the monitor counts from its receipt.
        st.lease_token = Some(ha_proto::LeaseToken {
            boot_id: self.boot_id.clone(),
            at_ms: clock::now_ms(),
        });
        st
    }

    /// What startup role voting needs: facts read from the system only.
    pub async fn system_status(&self) -> SystemStatus {
        let mut st = SystemStatus {
            host: self.cfg.this.clone(),
            ..Default::default()
        };
        let mut errors: Vec<String> = Vec::new();
        match uptime::read() {
            Ok(u) => st.uptime_seconds = u,
            Err(e) => errors.push(e),
        }
        match ip::list(&self.cfg.cluster_interface).await {
            Ok(v) => st.ips_present = v.iter().map(IpAddr::to_string).collect(),
            Err(e) => errors.push(format!("could not check which IPs are configured: {e}")),
        }
        let hosts = self
            .lock()
            .desired
            .as_ref()
            .map(|d| d.cluster_hosts.clone())
            .unwrap_or_default();
        let mut db = self.status_db.lock().await;
        let r = tokio::time::timeout(self.cfg.mysql_timeout.duration() * 2, async {
            let ro = db.read_only().await?;
            let slave = db.slave_status().await?;
            Ok::<_, String>((ro, slave))
        })
        .await;
        match r {
            Ok(Ok((ro, slave))) => {
                st.mysql_reachable = true;
                st.writable = !ro.read_only;
                if let Some(s) = slave {
                    st.master_name = Desired::host_name_of(&hosts, &s.master_host, s.master_port);
                    st.master_ip = s.master_host;
                    st.master_port = u32::from(s.master_port);
                }
            }
            Ok(Err(e)) => errors.push(format!("could not check if MySQL is writable: {e}")),
            Err(_) => {
                db.reset();
                errors.push(format!(
                    "could not check if MySQL is writable: {} did not answer in time",
                    db.endpoint()
                ));
            }
        }
        st.error = errors.join("; ");
        st
    }
}
