//! The `tls` option of the MySQL accounts in monitor.yaml and agent.yaml: where it goes,
//! its default, and that its validation errors name the field.

use ha_config::{AgentConfig, MonitorConfig, MysqlTlsMode};

const AGENT: &str = r#"
this: db1
listen: 10.9.0.11:9989
cluster_interface: eth0
role_ips: []
cluster_hosts: { db1: "10.9.0.11:3306", db2: "10.9.0.12:3306" }
mysql: { user: agent }
replication: { user: repl }
tls: off
"#;

const MONITOR: &str = r#"
active_master_role: writer
monitor: { ip: 127.0.0.1, status_path: /tmp/status.json, ping_ips: [10.9.0.11] }
credentials:
  monitor_user: mon
hosts:
  db1: { ip: 10.9.0.11, mode: master, peer: db2 }
  db2: { ip: 10.9.0.12, mode: master, peer: db1 }
roles:
  writer: { mode: exclusive, hosts: [db1, db2], ips: [10.9.0.160] }
tls: off
"#;

#[test]
fn absent_means_no_tls() {
    let a = AgentConfig::parse(AGENT, "agent.yaml").expect("valid");
    assert_eq!(a.mysql.tls, None);
    assert_eq!(a.replication.tls, None);
    let m = MonitorConfig::parse(MONITOR, "monitor.yaml").expect("valid");
    assert_eq!(m.credentials.monitor_tls, None);
}

#[test]
fn agent_accounts_take_their_own_tls() {
    let text = AGENT
        .replace(
            "mysql: { user: agent }",
            "mysql: { user: agent, tls: { mode: required } }",
        )
        .replace(
            "replication: { user: repl }",
            "replication: { user: repl, tls: { mode: verify-identity, ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem } }",
        );
    let a = AgentConfig::parse(&text, "agent.yaml").expect("valid");
    assert_eq!(a.mysql.tls.map(|t| t.mode), Some(MysqlTlsMode::Required));
    let r = a.replication.tls.expect("replication tls");
    assert_eq!(r.mode, MysqlTlsMode::VerifyIdentity);
    assert_eq!(r.key_file.as_deref(), Some(std::path::Path::new("/k.pem")));
}

#[test]
fn agent_verify_without_ca_names_the_field() {
    let text = AGENT.replace(
        "replication: { user: repl }",
        "replication: { user: repl, tls: { mode: verify-ca } }",
    );
    let err = AgentConfig::parse(&text, "agent.yaml")
        .expect_err("no ca_file")
        .to_string();
    assert!(
        err.starts_with("agent.yaml: replication.tls.ca_file: is required by mode verify-ca"),
        "{err}"
    );
    let text = AGENT.replace(
        "mysql: { user: agent }",
        "mysql: { user: agent, tls: { mode: verify } }",
    );
    let err = AgentConfig::parse(&text, "agent.yaml")
        .expect_err("bad mode")
        .to_string();
    assert!(err.contains("mysql.tls.mode"), "{err}");
    assert!(err.contains("verify-identity"), "{err}");
}

#[test]
fn monitor_checks_account_tls() {
    let text = MONITOR.replace(
        "  monitor_user: mon\n",
        "  monitor_user: mon\n  monitor_tls: { mode: verify-ca, ca_file: /ca.pem }\n",
    );
    let m = MonitorConfig::parse(&text, "monitor.yaml").expect("valid");
    let t = m.credentials.monitor_tls.expect("tls");
    assert_eq!(t.mode, MysqlTlsMode::VerifyCa);
    let text = MONITOR.replace(
        "  monitor_user: mon\n",
        "  monitor_user: mon\n  monitor_tls: { mode: verify-identity }\n",
    );
    let err = MonitorConfig::parse(&text, "monitor.yaml")
        .expect_err("no ca_file")
        .to_string();
    assert!(
        err.starts_with("monitor.yaml: credentials.monitor_tls.ca_file: is required"),
        "{err}"
    );
    let text = MONITOR.replace(
        "  monitor_user: mon\n",
        "  monitor_user: mon\n  monitor_tls: { mode: required, certfile: /c }\n",
    );
    let err = MonitorConfig::parse(&text, "monitor.yaml")
        .expect_err("unknown key")
        .to_string();
    assert!(err.contains("unknown field `certfile`"), "{err}");
}
