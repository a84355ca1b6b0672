//! `ha-control import-mmm` run as a binary on the mysql-mmm 2.2.1 files in
//! `tests/fixtures/mmm/`: a master-master pair (db1, db2) and a slave (db3) in mysql-mmm's
//! documented layout (mmm_common.conf included by mmm_mon.conf and by each host's
//! mmm_agent.conf), and a malformed monitor file.
//!
//! What is checked: the exit codes, the `not mapped` / `changed` / `added` lines, that every
//! file written passes ha's own loaders (`ha_config::load_monitor` / `load_agent`, the code of
//! `--check-config`, which also refuses world-readable files holding passwords), and that the
//! hosts, roles, IPs, preferences, check periods and accounts came through.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ha_config::{HostMode, MonitorMode, RoleMode, TlsSetting};

mod common;
mod fake;

use common::{ha, Out};

/// name, ip, mode, peer, mysql_port, agent_port
type HostRow<'a> = (&'a str, IpAddr, HostMode, Option<&'a str>, u16, u16);
/// name, mode, hosts, ips, prefer
type RoleRow<'a> = (
    &'a str,
    RoleMode,
    Vec<&'a str>,
    Vec<IpAddr>,
    Option<&'a str>,
);

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mmm")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// The whole fixture cluster with an mmm_agent.conf per host, both ways of naming the host.
fn import_all(out: &Path) -> Out {
    let out = out.display().to_string();
    let (common, mon) = (fixture("mmm_common.conf"), fixture("mmm_mon.conf"));
    let (a1, a2, a3) = (
        fixture("mmm_agent_db1.conf"),
        format!("db2={}", fixture("mmm_agent_db2.conf")),
        fixture("mmm_agent_db3.conf"),
    );
    ha(&[
        "import-mmm",
        "--common",
        &common,
        "--mon",
        &mon,
        "--agent",
        &a1,
        "--agent",
        &a2,
        "--agent",
        &a3,
        "--out",
        &out,
        "--admin",
        "alice",
    ])
}

#[test]
fn converts_the_fixture_cluster() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ha");
    let out = import_all(&dir);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");

    // One line per setting without an equivalent, or whose meaning changes.
    let (common, mon, agent3) = (
        fixture("mmm_common.conf"),
        fixture("mmm_mon.conf"),
        fixture("mmm_agent_db3.conf"),
    );
    for want in [
        format!("{common}:9: pid_path: not mapped: "),
        format!("{common}:10: bin_path: not mapped: "),
        format!("{mon}:4: debug: not mapped: "),
        format!("{mon}:8: pid_path: not mapped: "),
        format!("{mon}:9: bin_path: not mapped: "),
        format!("{mon}:36: restart_after: not mapped: "),
        format!("{mon}:40: type: not mapped: mysql-mmm's <socket> settings are not carried over"),
        format!("{mon}:10: status_path: changed: /var/lib/ha/status.json"),
        format!("{mon}:15: kill_host_bin: changed: /usr/lib/mysql-mmm/monitor/kill_host_ipmi (resolved against bin_path"),
        format!("{mon}:26: check_period: changed: "),
        format!("{mon}:28: timeout: changed: lowered from 2 to 1 for the ping, mysql, rep_threads and rep_backlog checks"),
        format!("{mon}:28: timeout: changed: ha's ping check waits up to timeout"),
        format!("{agent3}:5: max_kill_retries: changed: "),
        format!("{}: tls: added: ", dir.join("monitor.yaml").display()),
        format!("{}: writer_lease: added: ", dir.join("monitor.yaml").display()),
        format!("{}: role_ips, cluster_hosts: added: derived from the roles listing db3 (reader, reporting)", dir.join("agent-db3.yaml").display()),
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&want)),
            "no line starting with {want:?} in:\n{}",
            out.stdout
        );
    }
    // Each source line is reported once, although mmm_common.conf is read four times.
    let pid = format!("{common}:9: pid_path");
    assert_eq!(out.stdout.matches(&pid).count(), 1, "{}", out.stdout);
    let wrote: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("wrote "))
        .collect();
    assert_eq!(wrote.len(), 4, "{}", out.stdout);

    // Every file passes ha's loader (as --check-config) and is not readable by others.
    for name in [
        "monitor.yaml",
        "agent-db1.yaml",
        "agent-db2.yaml",
        "agent-db3.yaml",
    ] {
        let path = dir.join(name);
        let mode = std::fs::metadata(&path)
            .expect("written")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o640, "{name}");
        assert!(wrote.contains(&format!("wrote {} (mode 0640)", path.display()).as_str()));
    }
    let m = ha_config::load_monitor(&dir.join("monitor.yaml")).expect("monitor.yaml loads");

    assert_eq!(m.active_master_role, "writer");
    assert_eq!(
        m.control_addr(),
        "127.0.0.1:9988".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        m.monitor.status_path,
        PathBuf::from("/var/lib/ha/status.json")
    );
    assert_eq!(
        m.monitor.ping_ips,
        [ip("192.168.0.1"), ip("192.168.0.31"), ip("192.168.0.32")]
    );
    assert_eq!(m.monitor.auto_set_online.duration(), secs(60.0));
    assert_eq!(m.monitor.flap_duration.duration(), secs(1800.0));
    assert_eq!(m.monitor.flap_count, 5);
    assert_eq!(m.monitor.wait_for_other_master.duration(), secs(60.0));
    assert_eq!(
        m.monitor.kill_host_bin,
        "/usr/lib/mysql-mmm/monitor/kill_host_ipmi"
    );
    assert!(m.monitor.careful_startup);
    assert_eq!(m.monitor.mode, MonitorMode::Active);
    assert_eq!(m.credentials.monitor_user, "mmm_monitor");
    assert_eq!(m.credentials.monitor_password, "RepMonitor");

    let hosts: Vec<HostRow> = m
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.ip,
                h.mode,
                h.peer.as_deref(),
                h.mysql_port,
                h.agent_port,
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            (
                "db1",
                ip("192.168.0.31"),
                HostMode::Master,
                Some("db2"),
                3306,
                9989
            ),
            (
                "db2",
                ip("192.168.0.32"),
                HostMode::Master,
                Some("db1"),
                3306,
                9989
            ),
            ("db3", ip("192.168.0.33"), HostMode::Slave, None, 3307, 9989),
        ]
    );
    let roles: Vec<RoleRow> = m
        .roles
        .iter()
        .map(|r| {
            let hosts = r.hosts.iter().map(String::as_str).collect();
            (
                r.name.as_str(),
                r.mode,
                hosts,
                r.ips.clone(),
                r.prefer.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (
                "writer",
                RoleMode::Exclusive,
                vec!["db1", "db2"],
                vec![ip("192.168.0.50")],
                None
            ),
            (
                "reader",
                RoleMode::Balanced,
                vec!["db1", "db2", "db3"],
                vec![ip("192.168.0.51"), ip("192.168.0.52"), ip("192.168.0.53")],
                None
            ),
            (
                "reporting",
                RoleMode::Exclusive,
                vec!["db3", "db2"],
                vec![ip("192.168.0.60")],
                Some("db3")
            ),
        ]
    );
    // <check default> applied to every check; the timeout lowered to the check period.
    for c in [
        &m.checks.ping,
        &m.checks.mysql,
        &m.checks.rep_threads,
        &m.checks.rep_backlog,
    ] {
        assert_eq!(c.check_period.duration(), secs(1.0));
        assert_eq!(c.trap_period.duration(), secs(4.0));
        assert_eq!(c.timeout.duration(), secs(1.0));
    }
    assert_eq!(m.checks.rep_backlog.max_backlog.duration(), secs(30.0));
    let tls = m.tls_on().expect("tls on");
    assert_eq!(tls.ca_file, PathBuf::from("/etc/ha/tls/ca.crt"));
    assert_eq!(tls.cert_file, PathBuf::from("/etc/ha/tls/monitor.crt"));
    assert_eq!(tls.admins, ["alice"]);

    for (host, listen, interface, role_ips, kill) in [
        (
            "db1",
            "192.168.0.31:9989",
            "eth0",
            &[
                "192.168.0.50",
                "192.168.0.51",
                "192.168.0.52",
                "192.168.0.53",
            ][..],
            10,
        ),
        (
            "db2",
            "192.168.0.32:9989",
            "eth0",
            &[
                "192.168.0.50",
                "192.168.0.51",
                "192.168.0.52",
                "192.168.0.53",
                "192.168.0.60",
            ],
            10,
        ),
        (
            "db3",
            "192.168.0.33:9989",
            "eth1",
            &[
                "192.168.0.51",
                "192.168.0.52",
                "192.168.0.53",
                "192.168.0.60",
            ],
            5,
        ),
    ] {
        let a = ha_config::load_agent(&dir.join(format!("agent-{host}.yaml")))
            .unwrap_or_else(|e| panic!("agent-{host}.yaml: {e}"));
        assert_eq!(a.this, host);
        assert_eq!(a.listen, listen.parse::<SocketAddr>().expect("listen"));
        assert_eq!(a.cluster_interface, interface, "{host}");
        let got: Vec<String> = a.role_ips.iter().map(ToString::to_string).collect();
        assert_eq!(got, role_ips, "{host}");
        let cluster: Vec<(String, String)> = a
            .cluster_hosts
            .iter()
            .map(|(n, addr)| (n.clone(), addr.to_string()))
            .collect();
        assert_eq!(
            cluster,
            [
                ("db1".to_string(), "192.168.0.31:3306".to_string()),
                ("db2".into(), "192.168.0.32:3306".into()),
                ("db3".into(), "192.168.0.33:3307".into()),
            ]
        );
        assert_eq!(
            (a.mysql.user.as_str(), a.mysql.password.as_str()),
            ("mmm_agent", "RepAgent")
        );
        assert_eq!(a.mysql.host, listen.split(':').next().unwrap_or_default());
        // mmm has no trailing comments: the '#' belongs to the password.
        assert_eq!(
            (a.replication.user.as_str(), a.replication.password.as_str()),
            ("replication", "slave#pw")
        );
        assert_eq!(a.max_kill_retries, kill, "{host}");
        assert_eq!(a.spare_users, ["mmm_monitor"]);
        match &a.tls {
            Some(TlsSetting::On(t)) => {
                assert_eq!(
                    t.cert_file,
                    PathBuf::from(format!("/etc/ha/tls/{host}.crt"))
                );
                assert_eq!(t.monitor_identity, "monitor");
            }
            other => panic!("{host}: tls {other:?}"),
        }
    }
}

#[test]
fn without_agent_files_the_agents_come_from_the_monitors_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().display().to_string();
    let out = ha(&[
        "import-mmm",
        "--mon",
        &fixture("mmm_mon.conf"),
        "--out",
        &dir,
    ]);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let a = ha_config::load_agent(&tmp.path().join("agent-db3.yaml")).expect("loads");
    assert_eq!(
        a.cluster_interface, "eth0",
        "<host default> of mmm_common.conf"
    );
    assert_eq!(a.max_kill_retries, 10);
    let m = ha_config::load_monitor(&tmp.path().join("monitor.yaml")).expect("loads");
    assert!(m.tls_on().is_some_and(|t| t.admins.is_empty()));
    assert!(out
        .stdout
        .contains("no operator may run ha-control commands until tls.admins lists an identity"));

    // A second run refuses to replace the files unless told to.
    let again = ha(&[
        "import-mmm",
        "--mon",
        &fixture("mmm_mon.conf"),
        "--out",
        &dir,
    ]);
    assert_eq!(again.code, 1);
    assert!(
        again
            .stderr
            .contains("monitor.yaml: exists already (give --force to replace it)"),
        "{}",
        again.stderr
    );
    let forced = ha(&[
        "import-mmm",
        "--mon",
        &fixture("mmm_mon.conf"),
        "--out",
        &dir,
        "--force",
    ]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[test]
fn a_malformed_file_is_an_error_naming_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ha");
    let mon = fixture("malformed_mon.conf");
    let out = ha(&[
        "import-mmm",
        "--mon",
        &mon,
        "--out",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!("ERROR: {mon}:10: section <host db4> is not closed: </host> missing before the end of {mon}\n")
    );
    assert!(!dir.exists(), "nothing written");

    // Include loops and missing includes, through the binary too.
    std::fs::write(tmp.path().join("a.conf"), "include b\n").expect("write");
    std::fs::write(tmp.path().join("b.conf"), "\ninclude a.conf\n").expect("write");
    let a = tmp.path().join("a.conf").display().to_string();
    let out = ha(&[
        "import-mmm",
        "--mon",
        &a,
        "--out",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.code, 1);
    let b = tmp.path().join("b.conf").display().to_string();
    assert_eq!(
        out.stderr,
        format!("ERROR: {b}:2: include loop: {a} includes {b} includes {a}\n")
    );
    std::fs::write(tmp.path().join("b.conf"), "debug 0\ninclude nowhere\n").expect("write");
    let out = ha(&[
        "import-mmm",
        "--mon",
        &a,
        "--out",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with(&format!("ERROR: {b}:2: include nowhere.conf: ")),
        "{}",
        out.stderr
    );
}

#[test]
fn json_and_usage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ha");
    let out = ha(&[
        "--json",
        "import-mmm",
        "--mon",
        &fixture("mmm_mon.conf"),
        "--out",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["files"][0]["path"],
        dir.join("monitor.yaml").display().to_string()
    );
    assert_eq!(v["files"][0]["mode"], "0640");
    let notes = v["notes"].as_array().expect("notes");
    assert!(notes
        .iter()
        .any(|n| n["kind"] == "not_mapped" && n["key"] == "restart_after" && n["line"] == 36));

    let out = ha(&["import-mmm", "--mon", &fixture("mmm_mon.conf")]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--out <DIR>"),
        "clap's message, not mmm's: {}",
        out.stderr
    );
    let out = ha(&[
        "import-mmm",
        "--mon",
        "x",
        "--out",
        "y",
        "--admin",
        "bad_name",
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("'bad_name' is not a certificate identity"),
        "{}",
        out.stderr
    );
}
