//! Builders shared by the planner's table tests.

use std::net::Ipv4Addr;

use ha_proto::HostState;

use super::{Actual, Held, MysqlActual};
use crate::desired::{Desired, Master, RoleIp};
use crate::sqltext::{SlaveStatus, Thread};

pub(super) fn role(n: &str, ip: [u8; 4]) -> RoleIp {
    RoleIp {
        name: n.into(),
        ip: Ipv4Addr::from(ip),
    }
}
pub(super) fn w() -> RoleIp {
    role("writer", [10, 0, 0, 100])
}
pub(super) fn r1() -> RoleIp {
    role("reader", [10, 0, 0, 101])
}
pub(super) fn r2() -> RoleIp {
    role("reader", [10, 0, 0, 102])
}
pub(super) fn master(name: &str, last: u8) -> Master {
    Master {
        name: name.into(),
        ip: Ipv4Addr::new(10, 0, 0, last),
        port: 3306,
    }
}
pub(super) fn desired(state: HostState, roles: Vec<RoleIp>, am: Option<Master>) -> Desired {
    Desired {
        leader_term: 0,
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
        writer_peers: vec![],
    }
}
pub(super) fn slave_of(ip: &str, io: Thread, sql: Thread) -> SlaveStatus {
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
pub(super) fn actual(ips: Vec<RoleIp>, ro: bool, slave: Option<SlaveStatus>) -> Actual {
    Actual {
        ips: Some(ips.iter().map(|r| r.ip).collect()),
        mysql: Some(MysqlActual {
            read_only: ro,
            super_read_only: None,
            slave,
        }),
    }
}
pub(super) fn held(roles: Vec<RoleIp>, synced: bool, st: Option<HostState>) -> Held {
    Held {
        roles,
        writer_synced: synced,
        applied_state: st,
        verified_master: None,
    }
}
pub(super) fn verified(mut h: Held, master: &str) -> Held {
    h.verified_master = Some(master.into());
    h
}
pub(super) const ON: HostState = HostState::Online;
