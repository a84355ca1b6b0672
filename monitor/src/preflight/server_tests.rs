use super::*;
use crate::preflight::testdata::{lab_host, MARIADB};

fn set(f: &mut HostFacts, k: &str, v: &str) {
    f.vars.insert(k.into(), v.into());
}

#[test]
fn connect_lines_name_the_address_and_the_fix_for_each_failure() {
    let ip: IpAddr = "10.0.0.11".parse().unwrap();
    let ok = connect_line(
        "db1",
        ip,
        3306,
        "ha_monitor",
        &Ok(lab_host(1, true, true, None)),
    );
    assert_eq!(ok.level, Level::Ok);
    assert_eq!(
        ok.to_string(),
        format!(
            "OK   connect db1: ha_monitor connected to 10.0.0.11:3306 as ha_monitor@% ({MARIADB})"
        )
    );
    for (kind, fix_part) in [
        (ConnectFailure::Timeout, "bind_address"),
        (ConnectFailure::AccessDenied, "credentials.monitor_user"),
        (ConnectFailure::HostNotAllowed, "which-host-patterns"),
        (ConnectFailure::Connect, "hosts.db1.mysql_port"),
        (ConnectFailure::Query, "does not answer"),
    ] {
        let e = ProbeError {
            kind,
            text: "boom".into(),
        };
        let l = connect_line("db1", ip, 3306, "ha_monitor", &Err(e));
        assert_eq!(l.level, Level::Fail, "{kind:?}");
        let s = l.to_string();
        assert!(s.starts_with("FAIL connect db1: ha_monitor "), "{s}");
        assert!(s.contains("10.0.0.11:3306: boom — fix: "), "{s}");
        assert!(s.contains(fix_part), "{kind:?}: {s}");
    }
}

#[test]
fn grant_lines_are_parsed_with_column_lists_and_role_grants() {
    assert_eq!(
        parse_grant("GRANT SLAVE MONITOR ON *.* TO `ha_monitor`@`%` IDENTIFIED BY PASSWORD '*1'"),
        Some((vec!["SLAVE MONITOR".to_string()], "*.*".to_string()))
    );
    assert_eq!(
        parse_grant("GRANT SELECT (a, b), INSERT ON `app`.`t` TO `u`@`%`"),
        Some((
            vec!["SELECT".to_string(), "INSERT".to_string()],
            "app.t".to_string()
        ))
    );
    assert_eq!(
        parse_grant("grant replication client on *.* to 'm'@'10.0.0.2'"),
        Some((vec!["REPLICATION CLIENT".to_string()], "*.*".to_string()))
    );
    assert_eq!(parse_grant("GRANT `dba` TO `u`@`%`"), None);
}

#[test]
fn the_labs_monitor_grant_is_ok() {
    let l = grants_line("db1", "ha_monitor", &lab_host(1, true, true, None));
    assert_eq!(
        l.to_string(),
        "OK   grants db1: ha_monitor@% may run SHOW SLAVE STATUS and cannot write (global privileges: SLAVE MONITOR)"
    );
}

#[test]
fn a_denied_show_slave_status_fails_with_the_grant_to_run() {
    let mut f = lab_host(1, true, true, None);
    f.replica = Replica::Denied("1227 (42000): Access denied".into());
    let l = grants_line("db1", "ha_monitor", &f);
    assert_eq!(l.level, Level::Fail);
    assert_eq!(
        l.fix.as_deref(),
        Some("GRANT SLAVE MONITOR ON *.* TO 'ha_monitor'@'%' (docs/grants.md)")
    );
    f.version = "8.0.36".into();
    let l = grants_line("db1", "ha_monitor", &f);
    assert!(l
        .fix
        .unwrap_or_default()
        .starts_with("GRANT REPLICATION CLIENT ON *.*"));
}

#[test]
fn a_monitor_account_that_can_write_is_a_warning() {
    let mut f = lab_host(1, true, true, None);
    f.grants = Ok(vec![
        "GRANT SLAVE MONITOR, SUPER ON *.* TO `ha_monitor`@`%`".into(),
        "GRANT INSERT ON `app`.* TO `ha_monitor`@`%`".into(),
    ]);
    let l = grants_line("db1", "ha_monitor", &f);
    assert_eq!(l.level, Level::Warn);
    assert!(l.detail.contains("(SUPER ON *.*, INSERT ON app.*)"), "{l}");
    f.grants = Err("timeout".into());
    assert_eq!(grants_line("db1", "ha_monitor", &f).level, Level::Warn);
}

#[test]
fn binlog_needs_log_bin_and_log_slave_updates() {
    let mut f = lab_host(1, true, true, None);
    assert_eq!(
        binlog_line("db1", &f).to_string(),
        "OK   binlog db1: log_bin=ON, log_slave_updates=ON"
    );
    set(&mut f, "log_slave_updates", "OFF");
    let l = binlog_line("db1", &f);
    assert_eq!(l.level, Level::Fail);
    assert!(l.detail.starts_with("log_slave_updates=OFF"), "{l}");
    set(&mut f, "log_bin", "OFF");
    let l = binlog_line("db1", &f);
    assert!(l.detail.starts_with("log_bin=OFF"), "{l}");
    assert!(l.detail.contains("; log_slave_updates=OFF"), "{l}");
    // MySQL 8's name.
    let mut f = lab_host(1, true, true, None);
    f.vars.remove("log_slave_updates");
    set(&mut f, "log_replica_updates", "ON");
    assert_eq!(binlog_line("db1", &f).level, Level::Ok);
}

#[test]
fn gtid_strict_mode_off_fails_and_missing_warns() {
    let mut f = lab_host(1, true, true, None);
    assert_eq!(
        gtid_line("db1", &f).to_string(),
        "OK   gtid db1: gtid_strict_mode=ON"
    );
    set(&mut f, "gtid_strict_mode", "OFF");
    let l = gtid_line("db1", &f);
    assert_eq!(l.level, Level::Fail);
    assert!(
        l.to_string()
            .starts_with("FAIL gtid db1: gtid_strict_mode=OFF: "),
        "{l}"
    );
    assert!(l
        .fix
        .unwrap_or_default()
        .starts_with("SET GLOBAL gtid_strict_mode=1"));
    f.vars.remove("gtid_strict_mode");
    assert_eq!(gtid_line("db1", &f).level, Level::Warn);
    // MySQL: gtid_mode instead.
    f.version = "8.0.36".into();
    set(&mut f, "gtid_mode", "ON");
    set(&mut f, "enforce_gtid_consistency", "ON");
    assert_eq!(gtid_line("db1", &f).level, Level::Ok);
    set(&mut f, "gtid_mode", "OFF_PERMISSIVE");
    assert_eq!(gtid_line("db1", &f).level, Level::Warn);
}

#[test]
fn the_labs_semi_sync_is_ok_on_candidates_and_on_the_replica() {
    let l = semi_sync_line("db1", &lab_host(1, false, true, None), true);
    assert_eq!(
        l.to_string(),
        "OK   semi_sync db1: rpl_semi_sync_master_enabled=ON, rpl_semi_sync_slave_enabled=ON, \
         rpl_semi_sync_master_timeout=30000000 ms, rpl_semi_sync_master_wait_point=AFTER_SYNC, \
         rpl_semi_sync_master_wait_no_slave=OFF"
    );
    let l = semi_sync_line("db3", &lab_host(3, true, false, None), false);
    assert_eq!(
        l.to_string(),
        "OK   semi_sync db3: not a writer candidate, does not acknowledge (rpl_semi_sync_slave_enabled=OFF)"
    );
}

#[test]
fn semi_sync_problems_are_warnings_that_say_why() {
    let warn = |f: &HostFacts, candidate: bool, part: &str| {
        let l = semi_sync_line("db1", f, candidate);
        assert_eq!(l.level, Level::Warn, "{l}");
        assert!(l.detail.contains(part), "{part}: {l}");
        assert!(
            l.fix.as_deref().unwrap_or_default().contains(SEMI_SYNC_DOC),
            "{l}"
        );
    };
    let mut f = lab_host(1, true, true, None);
    set(&mut f, "rpl_semi_sync_master_enabled", "OFF");
    warn(
        &f,
        true,
        "ha cannot promise that no acknowledged write is lost",
    );
    let mut f = lab_host(1, true, true, None);
    set(&mut f, "rpl_semi_sync_slave_enabled", "OFF");
    warn(&f, true, "does not acknowledge the writer's commits");
    let mut f = lab_host(1, true, true, None);
    set(&mut f, "rpl_semi_sync_master_timeout", "9999");
    warn(
        &f,
        true,
        "a short timeout falls back to asynchronous replication silently",
    );
    let mut f = lab_host(1, true, true, None);
    set(&mut f, "rpl_semi_sync_master_wait_point", "AFTER_COMMIT");
    warn(&f, true, "=AFTER_COMMIT: clients can see a commit");
    let mut f = lab_host(1, true, true, None);
    set(&mut f, "rpl_semi_sync_master_wait_no_slave", "ON");
    warn(&f, true, "wait_no_slave=ON");
    warn(&f, false, "wait_no_slave=ON");
    // A replica that acknowledges although it can never be the writer.
    warn(
        &lab_host(3, true, true, None),
        false,
        "cannot become the writer",
    );
    // Two problems: one line, both named.
    let mut f = lab_host(1, true, true, None);
    set(&mut f, "rpl_semi_sync_master_timeout", "500");
    set(&mut f, "rpl_semi_sync_master_wait_point", "AFTER_COMMIT");
    let l = semi_sync_line("db1", &f, true);
    assert_eq!(l.detail.matches("; ").count(), 1, "{l}");
}

#[test]
fn semi_sync_timeout_and_wait_point_only_matter_on_candidates() {
    let mut f = lab_host(3, true, false, None);
    set(&mut f, "rpl_semi_sync_master_timeout", "10");
    set(&mut f, "rpl_semi_sync_master_wait_point", "AFTER_COMMIT");
    assert_eq!(semi_sync_line("db3", &f, false).level, Level::Ok);
}

#[test]
fn a_server_without_semi_sync_warns_only_on_candidates() {
    let mut f = lab_host(1, true, true, None);
    f.vars.retain(|k, _| !k.starts_with("rpl_semi_sync"));
    assert_eq!(semi_sync_line("db1", &f, true).level, Level::Warn);
    assert_eq!(semi_sync_line("db3", &f, false).level, Level::Ok);
    // MySQL 8's names are read as well.
    set(&mut f, "rpl_semi_sync_source_enabled", "ON");
    set(&mut f, "rpl_semi_sync_replica_enabled", "ON");
    set(&mut f, "rpl_semi_sync_source_timeout", "30000000");
    set(&mut f, "rpl_semi_sync_source_wait_point", "AFTER_SYNC");
    set(&mut f, "rpl_semi_sync_source_wait_no_replica", "OFF");
    let l = semi_sync_line("db1", &f, true);
    assert_eq!(l.level, Level::Ok, "{l}");
    assert!(
        l.detail
            .contains("rpl_semi_sync_source_wait_no_replica=OFF"),
        "{l}"
    );
}
