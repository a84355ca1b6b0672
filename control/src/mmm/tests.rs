//! The mapping: what each problem of a convertible-looking mmm configuration turns into.

use std::os::unix::fs::PermissionsExt;

use super::*;

/// A minimal valid mmm_mon.conf (with what mmm_common.conf usually holds) plus `extra` lines.
const BASE: &str = "active_master_role writer
<host default>
 cluster_interface eth0
 agent_user mmm_agent
 agent_password RepAgent
 replication_user repl
 replication_password slave
 monitor_user mmm_monitor
 monitor_password RepMonitor
</host>
<host db1>
 ip 10.0.0.1
 mode master
 peer db2
</host>
<host db2>
 ip 10.0.0.2
 mode master
 peer db1
</host>
<role writer>
 hosts db1, db2
 ips 10.0.0.100
 mode exclusive
</role>
<monitor>
 ip 127.0.0.1
 status_path /var/lib/mmm/status
 ping_ips 10.0.0.1
</monitor>
";

struct Run {
    dir: tempfile::TempDir,
    outcome: Outcome,
}

impl Run {
    /// stdout/stderr with the temporary directory removed from paths.
    fn text(&self, s: &str) -> String {
        s.replace(&format!("{}/", self.dir.path().display()), "")
    }
    fn out(&self) -> String {
        self.text(&self.outcome.stdout)
    }
    fn err(&self) -> String {
        self.text(&self.outcome.stderr)
    }
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("out").join(name)).unwrap_or_default()
    }
}

/// Writes mmm_mon.conf = BASE + `extra` (and `agents`: name → text) and runs import-mmm.
fn import(extra: &str, agents: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mon = dir.path().join("mmm_mon.conf");
    std::fs::write(&mon, format!("{BASE}{extra}")).expect("write");
    let mut args = ImportArgs {
        common: None,
        mon,
        agents: Vec::new(),
        out: dir.path().join("out"),
        admins: vec!["alice".into()],
        force: false,
    };
    for (name, text) in agents {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        args.agents.push(AgentFile { host: None, path });
    }
    let outcome = run(&args, false);
    Run { dir, outcome }
}

#[test]
fn the_minimal_configuration_converts_and_loads() {
    let r = import("", &[]);
    assert_eq!(r.outcome.code, EXIT_OK, "{}", r.err());
    assert!(
        r.out().contains("wrote out/monitor.yaml (mode 0640)"),
        "{}",
        r.out()
    );
    for name in ["monitor.yaml", "agent-db1.yaml", "agent-db2.yaml"] {
        let path = r.dir.path().join("out").join(name);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o640), "{name}");
    }
    let m = ha_config::load_monitor(&r.dir.path().join("out/monitor.yaml")).expect("loads");
    assert_eq!(m.hosts.len(), 2);
    // No check settings: mmm's defaults, which need no change.
    assert!(!r.out().contains("timeout: changed"), "{}", r.out());
    // Running again refuses to overwrite, --force replaces.
    let again = run(
        &ImportArgs {
            common: None,
            mon: r.dir.path().join("mmm_mon.conf"),
            agents: Vec::new(),
            out: r.dir.path().join("out"),
            admins: Vec::new(),
            force: false,
        },
        false,
    );
    assert_eq!(again.code, EXIT_ERROR_REPLY);
    assert!(
        again
            .stderr
            .contains("exists already (give --force to replace it)"),
        "{}",
        again.stderr
    );
}

#[test]
fn values_ha_cannot_take_are_errors_at_their_line() {
    for (extra, want) in [
        // line 31 is the first line after BASE
        ("<role reader>\n hosts db1, db2\n ips 10.0.0.50, 10.0.0.51\n mode exclusive\n</role>\n",
         "ERROR: mmm_mon.conf:33: ips: an exclusive role has exactly one IP in ha"),
        ("<host db3>\n ip 10.0.0.3 # db3\n mode slave\n</host>\n",
         "ERROR: mmm_mon.conf:32: ip: '10.0.0.3 # db3' is not an IP address (mysql-mmm has no trailing comments"),
        ("<host db3>\n ip 10.0.0.3\n mode slave\n monitor_user other\n</host>\n",
         "ERROR: mmm_mon.conf:34: monitor_user/monitor_password of <host db3> differ from those of the first host"),
        ("<host db_3>\n ip 10.0.0.3\n mode slave\n</host>\n",
         "ERROR: mmm_mon.conf:31: host name 'db_3' cannot be the identity of its TLS certificate"),
        ("<host db3>\n ip 10.0.0.3\n mode master\n peer db1\n</host>\n",
         "ERROR: mmm_mon.conf:34: ha refuses the converted value: hosts.db3.peer: peers must be mutual"),
        ("<check mysql>\n check_period 0\n</check>\n",
         "ERROR: mmm_mon.conf:32: ha refuses the converted value: checks.mysql.check_period: must be greater than 0"),
        ("<monitor>\n kill_host_bin fence\n</monitor>\n",
         "ERROR: mmm_mon.conf:32: kill_host_bin: 'fence' is relative and <monitor> has no bin_path"),
        ("<monitor>\n mode standby\n</monitor>\n",
         "ERROR: mmm_mon.conf:32: mode: 'standby' is not one of active, manual, wait, passive"),
    ] {
        let r = import(extra, &[]);
        assert_eq!(r.outcome.code, EXIT_ERROR_REPLY, "{extra}");
        assert!(r.err().starts_with(want), "{extra}\n{}\nwant: {want}", r.err());
        assert!(!r.dir.path().join("out").exists(), "nothing written");
    }
}

#[test]
fn settings_without_equivalent_or_with_another_meaning_are_listed() {
    let extra = "<role reader>\n hosts db1, db2\n ips 10.0.0.50, 10.0.0.51\n mode balanced\n prefer db1\n</role>\n\
                 <monitor>\n mode passive\n</monitor>\n<copy_method ssh>\n backup_command x\n</copy_method>\n\
                 clone_dirs data\n<socket>\n type ssl\n cert_file /etc/mmm.crt\n</socket>\n";
    let r = import(extra, &[]);
    assert_eq!(r.outcome.code, EXIT_OK, "{}", r.err());
    let out = r.out();
    for want in [
        "mmm_mon.conf:35: prefer: not mapped: mysql-mmm ignores prefer on a balanced role and ha refuses it",
        "mmm_mon.conf:38: mode: changed: in PASSIVE mode ha sends nothing",
        "mmm_mon.conf:41: backup_command: not mapped: used only by mmm_backup",
        "mmm_mon.conf:43: clone_dirs: not mapped:",
        "mmm_mon.conf:45: type: not mapped: mysql-mmm's <socket> settings are not carried over",
        "mmm_mon.conf:46: cert_file: not mapped:",
        "mmm_mon.conf:28: status_path: changed: /var/lib/ha/status.json",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(
        !r.file("monitor.yaml").contains("prefer"),
        "{}",
        r.file("monitor.yaml")
    );
    assert!(r.file("monitor.yaml").contains("mode: passive"));
}

#[test]
fn agent_files_take_precedence_and_must_agree() {
    let agent = |this: &str, extra: &str| {
        format!("active_master_role writer\nthis {this}\n<host {this}>\n cluster_interface bond0\n agent_user a2\n agent_password p\n replication_user repl\n{extra}</host>\n")
    };
    let r = import("", &[("db1.conf", &agent("db1", ""))]);
    assert_eq!(r.outcome.code, EXIT_OK, "{}", r.err());
    let a = r.file("agent-db1.yaml");
    assert!(
        a.contains("cluster_interface: bond0") && a.contains("user: \"a2\""),
        "{a}"
    );
    assert!(r.file("agent-db2.yaml").contains("cluster_interface: eth0"));
    // db1's agent uses another account than db2's: ha uses each agent's own everywhere.
    assert!(
        r.out()
            .contains("db1.conf:5: agent_user: changed: ha-agent uses this account on every host"),
        "{}",
        r.out()
    );

    let r = import("", &[("db1.conf", &agent("db1", " ip 10.0.0.9\n"))]);
    assert_eq!(r.outcome.code, EXIT_ERROR_REPLY);
    assert!(
        r.err().starts_with(
            "ERROR: db1.conf:8: 10.0.0.9 here, 10.0.0.1 in the monitor's configuration"
        ),
        "{}",
        r.err()
    );

    let r = import("", &[("db9.conf", &agent("db9", ""))]);
    assert_eq!(r.outcome.code, EXIT_ERROR_REPLY);
    assert!(
        r.err().contains("host 'db9' is not a host of"),
        "{}",
        r.err()
    );
}

#[test]
fn agent_settings_missing_everywhere_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mon = dir.path().join("mmm_mon.conf");
    std::fs::write(&mon, BASE.replace(" cluster_interface eth0\n", "")).expect("write");
    let o = run(
        &ImportArgs {
            common: None,
            mon,
            agents: Vec::new(),
            out: dir.path().join("out"),
            admins: Vec::new(),
            force: false,
        },
        true,
    );
    assert_eq!(o.code, EXIT_ERROR_REPLY);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["ok"], false);
    let e = v["error"].as_str().unwrap_or_default();
    assert!(
        e.contains(":10: cluster_interface: missing in <host db1>, needed for ha-agent (or give --agent db1=PATH/mmm_agent.conf)"),
        "{e}"
    );
}

#[test]
fn a_kill_retry_count_above_ha_bound_is_lowered_and_said() {
    let r = import("max_kill_retries 5000\n", &[]);
    assert_eq!(r.outcome.code, EXIT_OK, "{}", r.err());
    assert!(
        r.out()
            .contains("max_kill_retries: changed: lowered from 5000 to 600"),
        "{}",
        r.out()
    );
    assert!(r.file("agent-db1.yaml").contains("max_kill_retries: 600"));
    let a =
        ha_config::AgentConfig::parse(&r.file("agent-db1.yaml"), "agent-db1.yaml").expect("valid");
    assert_eq!(a.max_kill_retries, 600);
}
