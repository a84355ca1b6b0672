//! Every validation error class of monitor.yaml and agent.yaml, each asserting the message names
//! the file and the field; plus the shipped samples load.

use ha_config::{AgentConfig, ConfigErrors, MonitorConfig, RoleMode, Seconds};

const GOOD: &str = r#"
active_master_role: writer
monitor:
  ip: 127.0.0.1
  status_path: /tmp/status.json
  ping_ips: [10.9.0.11]
credentials:
  monitor_user: mon
hosts:
  db1: { ip: 10.9.0.11, mode: master, peer: db2 }
  db2: { ip: 10.9.0.12, mode: master, peer: db1 }
  db3: { ip: 10.9.0.13, mode: slave }
roles:
  writer: { mode: exclusive, hosts: [db1, db2], ips: [10.9.0.160] }
  reader: { mode: balanced, hosts: [db1, db2, db3], ips: [10.9.0.161, 10.9.0.162] }
tls:
  ca_file: /etc/ha/tls/ca.crt
  cert_file: /etc/ha/tls/monitor.crt
  key_file: /etc/ha/tls/monitor.key
  admins: [alice]
  readers: [nagios]
"#;

fn parse(text: &str) -> Result<MonitorConfig, ConfigErrors> {
    MonitorConfig::parse(text, "test.yaml")
}

/// Parses `text`, expects failure, and checks that one error line names `path` and contains
/// `needle`; returns the rendered error text.
fn expect_error(text: &str, path: &str, needle: &str) -> String {
    let err = match parse(text) {
        Ok(_) => panic!("expected an error at {path}, config was accepted"),
        Err(e) => e,
    };
    let rendered = err.to_string();
    let line = rendered
        .lines()
        .find(|l| l.starts_with(&format!("test.yaml: {path}: ")))
        .unwrap_or_else(|| panic!("no error line for path {path:?} in:\n{rendered}"));
    assert!(
        line.contains(needle),
        "error for {path} lacks {needle:?}: {line}"
    );
    rendered
}

#[test]
fn good_config_parses_in_config_order_with_mmm_defaults() {
    let cfg = parse(GOOD).expect("valid");
    let names: Vec<_> = cfg.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
    assert_eq!(cfg.roles[0].name, "writer");
    assert_eq!(cfg.roles[1].mode, RoleMode::Balanced);
    assert_eq!(cfg.monitor.port, 9988);
    assert_eq!(cfg.hosts[0].agent_port, 9989);
    assert_eq!(cfg.hosts[0].mysql_port, 3306);
    assert_eq!(cfg.monitor.flap_duration, Seconds::from_secs(3600));
    assert_eq!(cfg.monitor.flap_count, 3);
    assert!(cfg.monitor.auto_set_online.is_zero());
    assert_eq!(cfg.monitor.wait_for_other_master, Seconds::from_secs(120));
    assert!(cfg.monitor.careful_startup);
    assert_eq!(cfg.checks.ping.check_period, Seconds::from_secs(5));
    assert_eq!(cfg.checks.mysql.trap_period, Seconds::from_secs(10));
    assert_eq!(cfg.checks.rep_threads.timeout, Seconds::from_secs(2));
    assert_eq!(cfg.checks.rep_backlog.max_backlog, Seconds::from_secs(60));
}

#[test]
fn fractional_durations_and_check_defaults() {
    let text = format!(
        "{GOOD}checks:\n  default: {{ check_period: 0.1, trap_period: 0.5, timeout: 0.05 }}\n  rep_backlog: {{ max_backlog: 2.5 }}\n"
    );
    let cfg = parse(&text).expect("valid");
    assert_eq!(cfg.checks.ping.check_period, Seconds::from_millis(100));
    assert_eq!(
        cfg.checks.rep_backlog.trap_period,
        Seconds::from_millis(500)
    );
    assert_eq!(
        cfg.checks.rep_backlog.max_backlog,
        Seconds::from_millis(2500)
    );
    assert_eq!(cfg.checks.mysql.max_backlog, Seconds::from_secs(60));
}

#[test]
fn unknown_key_names_the_field() {
    let text = GOOD.replace("mode: slave }", "mode: slave, ipp: 1 }");
    expect_error(&text, "hosts.db3.ipp", "unknown field `ipp`");
    let text = GOOD.replace("  ip: 127.0.0.1", "  ip: 127.0.0.1\n  bogus: 1");
    expect_error(&text, "monitor.bogus", "unknown field `bogus`");
    expect_error(
        &format!("{GOOD}extra: 1\n"),
        "extra",
        "unknown field `extra`",
    );
}

#[test]
fn missing_required_key_names_the_section() {
    let text = GOOD.replace("  status_path: /tmp/status.json\n", "");
    expect_error(&text, "monitor", "missing field `status_path`");
    let text = GOOD.replace("{ ip: 10.9.0.13, mode: slave }", "{ ip: 10.9.0.13 }");
    expect_error(&text, "hosts.db3", "missing field `mode`");
}

#[test]
fn bad_ip_names_the_field() {
    let text = GOOD.replace("ip: 10.9.0.13,", "ip: 10.9.0.300,");
    expect_error(&text, "hosts.db3.ip", "invalid IP address");
    let text = GOOD.replace("10.9.0.162]", "not-an-ip]");
    expect_error(&text, "roles.reader.ips[1]", "invalid IP address");
}

#[test]
fn ipv6_role_address_and_port_zero_are_refused() {
    let text = GOOD.replace("ips: [10.9.0.160]", "ips: [\"fd00::160\"]");
    expect_error(
        &text,
        "roles.writer.ips[0]",
        "IPv6 role addresses are not supported",
    );
    let text = GOOD.replace("  ip: 127.0.0.1\n", "  ip: 127.0.0.1\n  port: 0\n");
    expect_error(&text, "monitor.port", "between 1 and 65535");
}

#[test]
fn duplicate_ip_is_reported_with_both_places() {
    let text = GOOD.replace("ips: [10.9.0.160]", "ips: [10.9.0.12]");
    expect_error(&text, "roles.writer.ips[0]", "already used by hosts.db2.ip");
    let text = GOOD.replace("10.9.0.162]", "10.9.0.161]");
    expect_error(
        &text,
        "roles.reader.ips[1]",
        "already used by roles.reader.ips[0]",
    );
}

#[test]
fn duplicate_host_name_is_an_error() {
    let text = GOOD.replace(
        "  db3: { ip: 10.9.0.13, mode: slave }",
        "  db3: { ip: 10.9.0.13, mode: slave }\n  db3: { ip: 10.9.0.14, mode: slave }",
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("test.yaml: hosts") && err.contains("duplicate"),
        "{err}"
    );
}

#[test]
fn role_host_that_is_not_a_host() {
    let text = GOOD.replace("hosts: [db1, db2, db3]", "hosts: [db1, db2, db9]");
    expect_error(&text, "roles.reader.hosts[2]", "'db9' is not a host");
}

#[test]
fn master_without_peer() {
    let text = GOOD.replace(
        "{ ip: 10.9.0.12, mode: master, peer: db1 }",
        "{ ip: 10.9.0.12, mode: master }",
    );
    let rendered = expect_error(&text, "hosts.db2.peer", "needs a peer");
    // db1's peer db2 is now not mutual either: both problems are reported.
    assert!(
        rendered.contains("test.yaml: hosts.db1.peer: peers must be mutual"),
        "{rendered}"
    );
}

#[test]
fn non_mutual_peer() {
    let text = GOOD
        .replace(
            "{ ip: 10.9.0.12, mode: master, peer: db1 }",
            "{ ip: 10.9.0.12, mode: master, peer: db3 }",
        )
        .replace(
            "{ ip: 10.9.0.13, mode: slave }",
            "{ ip: 10.9.0.13, mode: master, peer: db2 }",
        );
    expect_error(
        &text,
        "hosts.db1.peer",
        "peers must be mutual: 'db2' has peer 'db3', not 'db1'",
    );
}

#[test]
fn peer_that_is_not_a_host() {
    let text = GOOD.replace("peer: db1 }", "peer: nope }");
    expect_error(&text, "hosts.db2.peer", "'nope' is not a host");
}

#[test]
fn exclusive_role_needs_exactly_one_ip() {
    let text = GOOD.replace("ips: [10.9.0.160]", "ips: [10.9.0.160, 10.9.0.170]");
    expect_error(&text, "roles.writer.ips", "exactly one IP, found 2");
    let text = GOOD.replace("ips: [10.9.0.160]", "ips: []");
    expect_error(&text, "roles.writer.ips", "at least one IP");
}

#[test]
fn prefer_host_not_among_role_hosts() {
    let text = GOOD.replace("ips: [10.9.0.160] }", "ips: [10.9.0.160], prefer: db3 }");
    expect_error(
        &text,
        "roles.writer.prefer",
        "'db3' is not among the role's hosts (db1, db2)",
    );
    let text = GOOD.replace("10.9.0.162] }", "10.9.0.162], prefer: db1 }");
    expect_error(
        &text,
        "roles.reader.prefer",
        "only allowed for exclusive roles",
    );
}

#[test]
fn more_than_two_hosts_in_the_active_master_role() {
    let text = GOOD
        .replace("hosts: [db1, db2], ips", "hosts: [db1, db2, db3], ips")
        .replace(
            "{ ip: 10.9.0.13, mode: slave }",
            "{ ip: 10.9.0.13, mode: master, peer: db1 }",
        );
    expect_error(&text, "roles.writer.hosts", "at most two hosts");
}

#[test]
fn active_master_role_must_exist_and_be_exclusive() {
    let text = GOOD.replace("active_master_role: writer", "active_master_role: boss");
    expect_error(&text, "active_master_role", "'boss' is not a role");
    let text = GOOD.replace("active_master_role: writer", "active_master_role: reader");
    expect_error(&text, "roles.reader.mode", "must be exclusive");
}

#[test]
fn non_positive_periods() {
    let text = format!("{GOOD}checks:\n  mysql: {{ check_period: 0 }}\n");
    expect_error(&text, "checks.mysql.check_period", "greater than 0");
    let text = GOOD.replace(
        "  ping_ips: [10.9.0.11]",
        "  ping_ips: [10.9.0.11]\n  ping_interval: 0",
    );
    expect_error(&text, "monitor.ping_interval", "greater than 0");
    let text = format!("{GOOD}checks:\n  default: {{ trap_period: -1 }}\n");
    expect_error(&text, "checks.default.trap_period", "cannot be negative");
}

#[test]
fn parallel_attempts_default_to_one_and_are_bounded() {
    let cfg = parse(GOOD).expect("valid");
    assert_eq!(cfg.checks.mysql.attempts, 1);
    let text = format!("{GOOD}checks:\n  default: {{ attempts: 3 }}\n  ping: {{ attempts: 5 }}\n");
    let cfg = parse(&text).expect("valid");
    assert_eq!(cfg.checks.mysql.attempts, 3);
    assert_eq!(cfg.checks.ping.attempts, 5);
    let text = format!("{GOOD}checks:\n  rep_threads: {{ attempts: 0 }}\n");
    expect_error(&text, "checks.rep_threads.attempts", "between 1 and 10");
}

#[test]
fn timeout_longer_than_check_period() {
    let text = format!("{GOOD}checks:\n  ping: {{ check_period: 1, timeout: 2 }}\n");
    expect_error(&text, "checks.ping.timeout", "longer than the check period");
}

#[test]
fn writer_lease_shorter_than_renewal_is_an_error() {
    let text = GOOD.replace(
        "  ping_ips: [10.9.0.11]",
        "  ping_ips: [10.9.0.11]\n  writer_lease: 2",
    );
    expect_error(
        &text,
        "monitor.writer_lease",
        "longer than 2 x agent_period + agent_timeout",
    );
    let text = GOOD.replace(
        "  ping_ips: [10.9.0.11]",
        "  ping_ips: [10.9.0.11]\n  writer_lease: 0",
    );
    assert!(parse(&text).is_ok());
}

#[test]
fn bad_enum_value_names_the_field() {
    let text = GOOD.replace(
        "  ping_ips: [10.9.0.11]",
        "  ping_ips: [10.9.0.11]\n  mode: sleepy",
    );
    expect_error(&text, "monitor.mode", "unknown variant `sleepy`");
}

#[test]
fn every_error_is_one_line_naming_the_file() {
    let text = GOOD
        .replace("hosts: [db1, db2, db3]", "hosts: [db1, db9]")
        .replace("ips: [10.9.0.160]", "ips: [10.9.0.160, 10.9.0.170]");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    for line in err.to_string().lines() {
        assert!(line.starts_with("test.yaml: roles."), "{line}");
    }
}

#[test]
fn yaml_syntax_error_is_reported_not_panicked() {
    let err = parse("hosts: [unclosed").unwrap_err().to_string();
    assert!(err.starts_with("test.yaml: "), "{err}");
    let err = parse("").unwrap_err().to_string();
    assert!(err.starts_with("test.yaml"), "{err}");
}

const AGENT: &str = r#"
this: db1
listen: 10.9.0.11:9989
cluster_interface: eth0
role_ips: [10.9.0.160, 10.9.0.161]
cluster_hosts: { db1: "10.9.0.11:3306", db2: "10.9.0.12:3306" }
mysql: { user: agent }
replication: { user: repl }
tls: { ca_file: /etc/ha/tls/ca.crt, cert_file: /etc/ha/tls/db1.crt, key_file: /etc/ha/tls/db1.key, monitor_identity: monitor }
"#;

#[test]
fn agent_config_defaults() {
    let a = AgentConfig::parse(AGENT, "agent.yaml").expect("valid");
    assert_eq!(a.mysql.port, 3306);
    assert_eq!(a.mysql.host, "127.0.0.1");
    assert_eq!(a.max_kill_retries, 10);
    assert_eq!(a.sync_timeout, Seconds::from_secs(30));
}

#[test]
fn agent_config_errors_name_the_field() {
    let err = AgentConfig::parse(
        &AGENT.replace("10.9.0.11:9989", "0.0.0.0:9989"),
        "agent.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("agent.yaml: listen: must be the host's own IP"),
        "{err}"
    );
    let err = AgentConfig::parse(&format!("{AGENT}colour: red\n"), "agent.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `colour`"), "{err}");
    let err = AgentConfig::parse(
        &AGENT.replace("mysql: { user: agent }", "mysql: { port: 3306 }"),
        "agent.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("agent.yaml: mysql: missing field `user`"),
        "{err}"
    );
    let err = AgentConfig::parse(&format!("{AGENT}sync_timeout: 0\n"), "agent.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("agent.yaml: sync_timeout: must be greater than 0"),
        "{err}"
    );
    let err = AgentConfig::parse(
        &format!("{AGENT}max_kill_retries: 4000000000\n"),
        "agent.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("agent.yaml: max_kill_retries: at most 600"),
        "{err}"
    );
    AgentConfig::parse(&format!("{AGENT}max_kill_retries: 600\n"), "agent.yaml")
        .expect("600 is allowed");
}

#[test]
fn agent_role_ips_and_cluster_hosts() {
    let a = AgentConfig::parse(AGENT, "agent.yaml").expect("valid");
    assert_eq!(a.role_ips.len(), 2);
    assert_eq!(
        a.cluster_hosts.get("db2").map(|s| s.to_string()).as_deref(),
        Some("10.9.0.12:3306")
    );
    let bad = |from: &str, to: &str| {
        let text = AGENT.replace(from, to);
        assert_ne!(text, AGENT, "replacement of {from:?} did not apply");
        AgentConfig::parse(&text, "agent.yaml")
            .unwrap_err()
            .to_string()
    };
    let err = bad("10.9.0.161]", "10.9.0.160]");
    assert!(
        err.contains("agent.yaml: role_ips: 10.9.0.160 is listed twice"),
        "{err}"
    );
    let err = bad("10.9.0.161]", "10.9.0.11]");
    assert!(
        err.contains("agent.yaml: role_ips: 10.9.0.11 is the host's own address"),
        "{err}"
    );
    let err = bad("10.9.0.161]", "10.9.0.300]");
    assert!(err.starts_with("agent.yaml: role_ips"), "{err}");
    let err = bad("10.9.0.161]", "127.0.0.1]");
    assert!(err.contains("127.0.0.1 cannot be a role address"), "{err}");
    let err = bad("db1: \"10.9.0.11:3306\", ", "");
    assert!(
        err.contains("agent.yaml: cluster_hosts: must contain this host (\"db1\")"),
        "{err}"
    );
    let err = bad("10.9.0.12:3306", "10.9.0.12");
    assert!(err.starts_with("agent.yaml: cluster_hosts.db2"), "{err}");
    let err = bad("10.9.0.12:3306", "10.9.0.12:0");
    assert!(
        err.contains("agent.yaml: cluster_hosts.db2: needs the MySQL port"),
        "{err}"
    );
    let err = bad("10.9.0.12:3306", "[fd00::12]:3306");
    assert!(
        err.contains("cluster_hosts.db2: [fd00::12]:3306 is not an IPv4"),
        "{err}"
    );
    let err = bad("db2: ", "\"\": ");
    assert!(
        err.contains("cluster_hosts: a host has an empty name"),
        "{err}"
    );
    // Both keys are required; an empty role list is allowed.
    let err = bad("role_ips: [10.9.0.160, 10.9.0.161]\n", "");
    assert!(err.contains("missing field `role_ips`"), "{err}");
    let err = bad(
        "cluster_hosts: { db1: \"10.9.0.11:3306\", db2: \"10.9.0.12:3306\" }\n",
        "",
    );
    assert!(err.contains("missing field `cluster_hosts`"), "{err}");
    let a = AgentConfig::parse(
        &AGENT.replace("[10.9.0.160, 10.9.0.161]", "[]"),
        "agent.yaml",
    )
    .expect("empty role_ips is valid");
    assert!(a.role_ips.is_empty());
}

#[test]
fn shipped_samples_load() {
    // Installed as the package does: 0640 (they hold passwords).
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc");
    let dir = tempfile::tempdir().expect("tempdir");
    let install = |name: &str| {
        use std::os::unix::fs::PermissionsExt;
        let to = dir.path().join(name);
        std::fs::copy(format!("{root}/{name}"), &to).expect("copy sample");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        to
    };
    let m = ha_config::load_monitor(&install("monitor.yaml")).expect("etc/monitor.yaml is valid");
    assert_eq!(m.hosts.len(), 3);
    assert_eq!(m.roles.iter().map(|r| r.ips.len()).sum::<usize>(), 4);
    assert!(m.tls_on().is_some(), "the sample runs with TLS");
    let a = ha_config::load_agent(&install("agent.yaml")).expect("etc/agent.yaml is valid");
    assert_eq!(a.this, "db1");
    assert_eq!(a.role_ips.len(), 4);
    assert_eq!(a.cluster_hosts.len(), 3);
    assert!(a.tls_on().is_some(), "the sample runs with TLS");
    let c = ha_config::load_control(&install("control.yaml")).expect("etc/control.yaml is valid");
    assert!(c.tls_on().is_some());
}

#[test]
fn a_world_readable_file_with_a_password_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../etc");
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("agent.yaml");
    std::fs::copy(format!("{root}/agent.yaml"), &to).expect("copy");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = ha_config::load_agent(&to).unwrap_err().to_string();
    assert!(
        err.contains("holds a password but every user can read it (mode 0644)")
            && err.contains("chmod 0640"),
        "{err}"
    );
    // Without a password there is nothing to protect.
    let text = std::fs::read_to_string(&to)
        .expect("read")
        .replace("password: change-me", "password: \"\"");
    std::fs::write(&to, text).expect("write");
    ha_config::load_agent(&to).expect("no password: mode does not matter");
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = ha_config::load_monitor(std::path::Path::new("/nonexistent/monitor.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/monitor.yaml: cannot read the file"),
        "{err}"
    );
}

#[test]
fn tls_must_be_configured_or_explicitly_off() {
    let no_tls = GOOD[..GOOD.find("tls:").expect("tls in GOOD")].to_string();
    expect_error(&no_tls, "tls", "is required");
    let off = parse(&format!("{no_tls}tls: off\n")).expect("tls: off is accepted");
    assert!(off.tls_on().is_none());
    let on = parse(GOOD).expect("valid");
    let t = on.tls_on().expect("tls on");
    assert_eq!(t.admins, ["alice"]);
    assert_eq!(t.readers, ["nagios"]);
    expect_error(
        &GOOD.replace("admins: [alice]", "admins: [\"al ice\"]"),
        "tls.admins[0]",
        "not a valid certificate identity",
    );
    expect_error(
        &format!("{no_tls}tls: yes please\n"),
        "tls",
        "expected `off`",
    );

    let agent_no_tls = AGENT[..AGENT.find("tls:").expect("tls in AGENT")].to_string();
    let err = AgentConfig::parse(&agent_no_tls, "agent.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("agent.yaml: tls: is required"), "{err}");
    let a =
        AgentConfig::parse(&format!("{agent_no_tls}tls: off\n"), "agent.yaml").expect("tls: off");
    assert!(a.tls_on().is_none());
    let a = AgentConfig::parse(AGENT, "agent.yaml").expect("valid");
    assert_eq!(
        a.tls_on().map(|t| t.monitor_identity.as_str()),
        Some("monitor")
    );
}

/// `coordination.etcd` (redundant monitors): defaults, and every error names its field.
#[test]
fn coordination_defaults_and_errors() {
    let with = |section: &str| format!("{GOOD}coordination:\n  etcd:\n{section}");
    let cfg = parse(&with(
        "    endpoints: [http://10.9.0.21:2379, http://10.9.0.22:2379]\n    tls: off\n",
    ))
    .expect("valid");
    let etcd = cfg.etcd().expect("coordination");
    assert_eq!(etcd.prefix, "/ha/cluster");
    assert_eq!(etcd.lease_ttl, Seconds::from_secs(5));
    assert_eq!(etcd.leader_key(), "/ha/cluster/leader");
    assert_eq!(etcd.state_key(), "/ha/cluster/state");
    assert!(parse(GOOD).expect("valid").etcd().is_none(), "optional");

    expect_error(
        &with("    endpoints: [http://10.9.0.21:2379]\n"),
        "coordination.etcd.tls",
        "is required",
    );
    expect_error(
        &with("    endpoints: []\n    tls: off\n"),
        "coordination.etcd.endpoints",
        "at least one",
    );
    expect_error(
        &with("    endpoints: [https://10.9.0.21:2379]\n    tls: off\n"),
        "coordination.etcd.endpoints[0]",
        "http://HOST:PORT (tls is off)",
    );
    expect_error(
        &with(
            "    endpoints: [http://10.9.0.21:2379]\n    tls: { ca_file: /a, cert_file: /b, key_file: /c }\n",
        ),
        "coordination.etcd.endpoints[0]",
        "https://",
    );
    expect_error(
        &with("    endpoints: [http://10.9.0.21:2379]\n    tls: off\n    lease_ttl: 1\n"),
        "coordination.etcd.lease_ttl",
        "between 2 and 3600",
    );
    expect_error(
        &with("    endpoints: [http://10.9.0.21:2379]\n    tls: off\n    lease_ttl: 2.5\n"),
        "coordination.etcd.lease_ttl",
        "whole seconds",
    );
    expect_error(
        &with("    endpoints: [http://10.9.0.21:2379]\n    tls: off\n    prefix: ha/\n"),
        "coordination.etcd.prefix",
        "leading /",
    );
}
