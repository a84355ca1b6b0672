//! `ha-monitor --preflight` (issue 17, item 5) on the lab: the lab as it should be passes
//! (exit 0, no FAIL line), and each broken setting gives its own FAIL or WARN line, and
//! nothing else, with the exit code that goes with it.
//!
//! One lab, agents running, no monitor (preflight is what you run before starting it), db1
//! made the writer by hand as another tool would leave it. The variants run one after the
//! other; each is undone and a clean run is awaited before the next.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions};
use ha_lab::Cmd;

/// Bound of every wait for a clean run after undoing a variant.
const T: Duration = Duration::from_secs(30);

/// The one WARN of the lab as it should be: it leaves auto_increment at the defaults.
const LAB_WARNING: &str = "auto_increment";

struct Run {
    code: i32,
    stdout: String,
    took: Duration,
}

impl Run {
    /// The lines of a level (`FAIL`, `WARN`).
    fn lines(&self, level: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{level} ")))
            .collect()
    }

    /// The check names of every WARN and FAIL line.
    fn not_ok(&self) -> BTreeSet<String> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("WARN ") || l.starts_with("FAIL "))
            .filter_map(|l| l.get(5..)?.split(':').next())
            .map(str::to_string)
            .collect()
    }

    fn clean(&self) -> bool {
        self.code == 0 && self.not_ok() == BTreeSet::from([LAB_WARNING.to_string()])
    }
}

fn preflight(c: &Cluster, config: &Path) -> Run {
    let start = Instant::now();
    let out = Cmd::in_ns(&c.lab.mon().ns, c.bins.monitor.display().to_string())
        .args(["--preflight", "--config"])
        .arg(config.display().to_string())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("ha-monitor --preflight runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        took: start.elapsed(),
    }
}

/// Runs preflight until it is clean (exit 0, only the lab's warning), at most [`T`].
fn wait_clean(c: &Cluster, config: &Path, after: &str) -> Run {
    let start = Instant::now();
    loop {
        let run = preflight(c, config);
        if run.clean() {
            return run;
        }
        assert!(
            start.elapsed() < T,
            "not clean {T:?} after {after} (exit {}):\n{}",
            run.code,
            run.stdout
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn sql(c: &Cluster, host: &str, statement: &str) {
    c.lab
        .sql(host, statement)
        .unwrap_or_else(|e| panic!("{host}: {statement}: {e}"));
}

/// One broken setting: the lines it must produce (prefixes, in output order), the checks of
/// every WARN/FAIL line (besides the lab's own warning), and the exit code.
fn expect_broken(
    c: &Cluster,
    config: &Path,
    what: &str,
    lines: &[&str],
    checks: &[&str],
    code: i32,
) {
    let run = preflight(c, config);
    eprintln!(
        "--- {what} ({} ms, exit {})\n{}",
        run.took.as_millis(),
        run.code,
        run.stdout
    );
    assert_eq!(run.code, code, "{what}: exit code\n{}", run.stdout);
    for want in lines {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(want)),
            "{what}: no line starting with {want:?}\n{}",
            run.stdout
        );
    }
    let mut expected: BTreeSet<String> = checks.iter().map(|s| s.to_string()).collect();
    expected.insert(LAB_WARNING.to_string());
    assert_eq!(
        run.not_ok(),
        expected,
        "{what}: WARN/FAIL lines\n{}",
        run.stdout
    );
    let summary = run.stdout.lines().last().unwrap_or_default();
    assert!(summary.starts_with("summary: "), "{summary}");
}

fn monitor_config(c: &Cluster) -> PathBuf {
    let overrides: Vec<(&str, &str)> = c
        .opts
        .monitor
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    c.lab
        .write_monitor_config(&overrides)
        .expect("the lab's monitor.yaml")
}

#[test]
fn preflight_passes_on_the_lab_and_names_each_broken_setting() {
    let c = Cluster::prepare(ClusterOptions::fast()).expect("lab");
    for h in c.lab.host_names() {
        c.start_agent(&h).expect("agent");
    }
    let config = monitor_config(&c);

    // As prepared: replicating, nobody writable (before ha's first start).
    let run = wait_clean(&c, &config, "starting the agents");
    eprintln!("--- before ha's first start\n{}", run.stdout);
    assert!(run.lines("FAIL").is_empty());
    assert!(run
        .stdout
        .contains("OK   read_only: no host is writable (read_only=1 on db1, db2, db3)"));
    assert!(run.stdout.contains(
        "OK   topology db1: the writer (no host is writable yet; the source of every other host)"
    ));

    // db1 the writer, as mysql-mmm leaves it: the lab as it should be.
    c.lab.make_writable("db1").expect("db1 writable");
    let run = wait_clean(&c, &config, "making db1 writable");
    eprintln!(
        "--- the lab as it should be ({} ms)\n{}",
        run.took.as_millis(),
        run.stdout
    );
    assert_eq!(
        c.lab.writable_hosts(),
        ["db1"],
        "the agents left db1 writable"
    );
    for want in [
        "OK   connect db1: ha_monitor connected to ",
        "OK   grants db3: ha_monitor@% may run SHOW SLAVE STATUS and cannot write",
        "OK   server_id: unique: db1=1, db2=2, db3=3",
        "OK   read_only: db1 is the only writable host; read_only=1 on db2, db3.",
        "OK   semi_sync db1: rpl_semi_sync_master_enabled=ON, rpl_semi_sync_slave_enabled=ON",
        "OK   semi_sync db3: not a writer candidate, does not acknowledge",
        "OK   topology db1: the writer (the writable host); replicates from its peer db2",
        "OK   topology db3: replicates from the writer db1",
        "OK   agent db2: ha-agent ",
        "WARN auto_increment: db1 increment 1 offset 1, db2 increment 1 offset 1",
        "summary: 23 OK, 1 WARN, 0 FAIL: ha can run; read the WARN lines",
    ] {
        assert!(
            run.stdout.contains(want),
            "missing {want:?}\n{}",
            run.stdout
        );
    }

    sql(&c, "db3", "SET GLOBAL server_id=1");
    expect_broken(
        &c,
        &config,
        "duplicate server_id",
        &["FAIL server_id: db1 and db3 have the same server_id 1 — fix: "],
        &["server_id"],
        1,
    );
    sql(&c, "db3", "SET GLOBAL server_id=3");
    wait_clean(&c, &config, "restoring server_id");

    sql(&c, "db2", "SET GLOBAL read_only=0");
    expect_broken(
        &c,
        &config,
        "a second writable host",
        &[
            "FAIL read_only: 2 hosts are writable: db1, db2",
            "WARN topology: not checked: more than one host is writable",
        ],
        &["read_only", "topology"],
        1,
    );
    c.lab.make_read_only("db2").expect("db2 read-only again");
    wait_clean(&c, &config, "restoring read_only");

    sql(&c, "db2", "SET GLOBAL gtid_strict_mode=0");
    expect_broken(
        &c,
        &config,
        "gtid_strict_mode off",
        &["FAIL gtid db2: gtid_strict_mode=OFF: "],
        &["gtid db2"],
        1,
    );
    sql(&c, "db2", "SET GLOBAL gtid_strict_mode=1");
    wait_clean(&c, &config, "restoring gtid_strict_mode");

    sql(&c, "db1", "SET GLOBAL rpl_semi_sync_master_enabled=0");
    expect_broken(
        &c,
        &config,
        "semi-sync master side off on the writer",
        &["WARN semi_sync db1: rpl_semi_sync_master_enabled=OFF: semi-sync is not enabled"],
        &["semi_sync db1"],
        0,
    );
    sql(&c, "db1", "SET GLOBAL rpl_semi_sync_master_enabled=1");
    wait_clean(&c, &config, "restoring semi-sync");

    c.stop_agent("db3").expect("stop db3's agent");
    expect_broken(
        &c,
        &config,
        "db3's agent stopped",
        &["FAIL agent db3: GetStatus to agent on host 'db3' "],
        &["agent db3"],
        1,
    );
    c.start_agent("db3").expect("start db3's agent");
    wait_clean(&c, &config, "restarting db3's agent");

    c.lab.stop_replication("db3").expect("STOP SLAVE on db3");
    expect_broken(
        &c,
        &config,
        "replication stopped on db3",
        &["FAIL topology db3: replication from the writer db1 is not running (Slave_IO_Running: No, Slave_SQL_Running: No) — fix: START SLAVE on db3"],
        &["topology db3"],
        1,
    );
    c.lab.start_replication("db3").expect("START SLAVE on db3");
    wait_clean(&c, &config, "restarting replication");

    c.lab.change_master("db3", "db2").expect("db3 from db2");
    let ip = |h: &str| c.lab.host(h).expect("lab host").ip;
    let wrong_source = format!(
        "FAIL topology db3: replicates from db2 ({}:3306), not from the writer db1 ({db1}:3306) — fix: on db3: STOP SLAVE; CHANGE MASTER TO MASTER_HOST='{db1}', MASTER_PORT=3306,",
        ip("db2"),
        db1 = ip("db1")
    );
    expect_broken(
        &c,
        &config,
        "db3 replicating from db2",
        &[&wrong_source],
        &["topology db3"],
        1,
    );
    c.lab
        .change_master("db3", "db1")
        .expect("db3 from db1 again");
    wait_clean(&c, &config, "re-pointing db3 to db1");

    // A host nobody can reach: FAIL lines within the deadline, not a hang or a crash.
    c.lab.link_down("db3").expect("db3's cable pulled");
    let took = Instant::now();
    expect_broken(
        &c,
        &config,
        "db3 unreachable",
        &[
            "FAIL connect db3: ha_monitor cannot connect to ",
            "FAIL agent db3: ",
        ],
        &["connect db3", "agent db3"],
        1,
    );
    assert!(
        took.elapsed() < Duration::from_secs(20),
        "an unreachable host costs one deadline (5 s) per connection, not more: {:?}",
        took.elapsed()
    );
    c.lab.link_up("db3").expect("db3's cable back");
    let run = wait_clean(&c, &config, "plugging db3 back in");
    assert_eq!(run.code, 0);
    assert_eq!(c.lab.writable_hosts(), ["db1"]);
}
