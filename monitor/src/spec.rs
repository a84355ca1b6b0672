//! Converts the validated configuration into the core's [`ClusterSpec`].

use ha_config::{MonitorConfig, MonitorMode};
use ha_core::{Check, ClusterSpec, HostMode, HostSpec, Mode, RoleMode, RoleSpec, TrapPeriods};

pub fn cluster_spec(cfg: &MonitorConfig) -> ClusterSpec {
    let hosts = cfg
        .hosts
        .iter()
        .map(|h| HostSpec {
            name: h.name.clone(),
            ip: h.ip.to_string(),
            mode: match h.mode {
                ha_config::HostMode::Master => HostMode::Master,
                ha_config::HostMode::Slave => HostMode::Slave,
            },
            peer: h.peer.clone(),
        })
        .collect();
    let roles = cfg
        .roles
        .iter()
        .map(|r| RoleSpec {
            name: r.name.clone(),
            mode: match r.mode {
                ha_config::RoleMode::Exclusive => RoleMode::Exclusive,
                ha_config::RoleMode::Balanced => RoleMode::Balanced,
            },
            hosts: r.hosts.clone(),
            ips: r.ips.iter().map(|ip| ip.to_string()).collect(),
            prefer: r.prefer.clone(),
        })
        .collect();
    let trap = |k: Check| cfg.checks.get(k).trap_period.duration();
    let m = &cfg.monitor;
    ClusterSpec {
        hosts,
        roles,
        active_master_role: cfg.active_master_role.clone(),
        trap_periods: TrapPeriods {
            ping: trap(Check::Ping),
            mysql: trap(Check::Mysql),
            rep_threads: trap(Check::RepThreads),
            rep_backlog: trap(Check::RepBacklog),
        },
        flap_duration: m.flap_duration.duration(),
        flap_count: m.flap_count,
        auto_set_online: m.auto_set_online.duration(),
        wait_for_other_master: m.wait_for_other_master.duration(),
        careful_startup: m.careful_startup,
        initial_mode: match m.mode {
            MonitorMode::Active => Mode::Active,
            MonitorMode::Manual => Mode::Manual,
            MonitorMode::Wait => Mode::Wait,
            MonitorMode::Passive => Mode::Passive,
        },
        writer_lease: m.writer_lease.duration(),
        kill_host_configured: !m.kill_host_bin.is_empty(),
        refuse_failover_after_async: m.refuse_failover_after_async,
    }
}
