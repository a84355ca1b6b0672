//! What the lab's servers look like to the preflight (tests/lab/src/mariadb.rs `render`), for
//! the unit tests: db1 and db2 writer candidates, db3 a replica, addresses 10.0.0.11–13.

use super::{HostFacts, Replica, SlaveRow};

pub const MARIADB: &str = "10.11.6-MariaDB-0+deb12u1-log";

/// A lab host: its server_id, read_only, whether it acknowledges semi-sync, and the address it
/// replicates from (`None`: not a replica).
pub fn lab_host(server_id: u32, read_only: bool, acks: bool, source: Option<&str>) -> HostFacts {
    let mut f = HostFacts {
        version: MARIADB.into(),
        account: "ha_monitor@%".into(),
        grants: Ok(vec![
            "GRANT SLAVE MONITOR ON *.* TO `ha_monitor`@`%` IDENTIFIED BY PASSWORD '*00'".into(),
        ]),
        ..HostFacts::default()
    };
    let on = |b: bool| if b { "ON" } else { "OFF" }.to_string();
    for (k, v) in [
        ("server_id", server_id.to_string()),
        ("read_only", on(read_only)),
        ("log_bin", on(true)),
        ("log_slave_updates", on(true)),
        ("gtid_strict_mode", on(true)),
        ("auto_increment_increment", "1".into()),
        ("auto_increment_offset", "1".into()),
        ("rpl_semi_sync_master_enabled", on(true)),
        ("rpl_semi_sync_slave_enabled", on(acks)),
        ("rpl_semi_sync_master_timeout", "30000000".into()),
        ("rpl_semi_sync_master_wait_point", "AFTER_SYNC".into()),
        ("rpl_semi_sync_master_wait_no_slave", on(false)),
    ] {
        f.vars.insert(k.into(), v);
    }
    if let Some(ip) = source {
        f.replica = Replica::Of(replicating_from(ip));
    }
    f
}

/// A healthy replica row: both threads running, no lag.
pub fn replicating_from(ip: &str) -> SlaveRow {
    SlaveRow {
        master_host: ip.into(),
        master_port: Some(3306),
        io_running: "Yes".into(),
        sql_running: "Yes".into(),
        seconds_behind: Some(0),
        ..SlaveRow::default()
    }
}

/// The lab with db1 the writer: db1 ⇄ db2, db3 ← db1.
pub fn lab() -> Vec<HostFacts> {
    vec![
        lab_host(1, false, true, Some("10.0.0.12")),
        lab_host(2, true, true, Some("10.0.0.11")),
        lab_host(3, true, false, Some("10.0.0.11")),
    ]
}

/// monitor.yaml of that lab (as tests/lab/src/config.rs writes it, without TLS).
pub const LAB_YAML: &str = "
active_master_role: writer
monitor:
  ip: 127.0.0.1
  status_path: /tmp/ha-preflight-test/status.json
  ping_ips: [10.0.0.3]
credentials:
  monitor_user: ha_monitor
  monitor_password: pw
hosts:
  db1: {ip: 10.0.0.11, mode: master, peer: db2}
  db2: {ip: 10.0.0.12, mode: master, peer: db1}
  db3: {ip: 10.0.0.13, mode: slave}
roles:
  writer: {mode: exclusive, hosts: [db1, db2], ips: [10.0.0.160]}
  reader: {mode: balanced, hosts: [db1, db2, db3], ips: [10.0.0.161, 10.0.0.162, 10.0.0.163]}
tls: off
";
