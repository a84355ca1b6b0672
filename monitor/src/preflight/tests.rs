//! The whole evaluation on the lab's monitor.yaml: the lab as it should be, and one host down.

use super::testdata::{lab, LAB_YAML};
use super::*;

fn config() -> MonitorConfig {
    MonitorConfig::parse(LAB_YAML, "monitor.yaml").expect("the test configuration parses")
}

fn ok(facts: Vec<HostFacts>) -> Vec<Result<HostFacts, ProbeError>> {
    facts.into_iter().map(Ok).collect()
}

#[test]
fn the_lab_as_it_should_be_has_no_fail_and_only_the_auto_increment_warning() {
    let report = evaluate(&config(), &ok(lab()));
    let text: Vec<String> = report.lines.iter().map(|l| l.to_string()).collect();
    let checks: Vec<&str> = report.lines.iter().map(|l| l.check.as_str()).collect();
    assert_eq!(
        checks,
        [
            "connect db1",
            "connect db2",
            "connect db3",
            "grants db1",
            "grants db2",
            "grants db3",
            "server_id",
            "binlog db1",
            "binlog db2",
            "binlog db3",
            "gtid db1",
            "gtid db2",
            "gtid db3",
            "read_only",
            "auto_increment",
            "semi_sync db1",
            "semi_sync db2",
            "semi_sync db3",
            "topology db1",
            "topology db2",
            "topology db3",
        ],
        "{text:#?}"
    );
    let not_ok: Vec<&Line> = report
        .lines
        .iter()
        .filter(|l| l.level != Level::Ok)
        .collect();
    assert_eq!(not_ok.len(), 1, "{text:#?}");
    assert_eq!(not_ok[0].check, "auto_increment");
    assert!(!report.failed());
    assert_eq!(
        report.summary(),
        "summary: 20 OK, 1 WARN, 0 FAIL: ha can run; read the WARN lines"
    );
}

#[test]
fn an_unreachable_host_is_one_fail_line_and_is_left_out_of_the_rest() {
    let mut probes = ok(lab());
    probes[2] = Err(ProbeError {
        kind: ConnectFailure::Timeout,
        text: "no connection within 5s".into(),
    });
    let report = evaluate(&config(), &probes);
    let fails: Vec<String> = report
        .lines
        .iter()
        .filter(|l| l.level == Level::Fail)
        .map(|l| l.to_string())
        .collect();
    assert_eq!(fails.len(), 1, "{fails:#?}");
    assert!(
        fails[0].starts_with("FAIL connect db3: ha_monitor cannot connect to 10.0.0.13:3306: no connection within 5s — fix: "),
        "{fails:#?}"
    );
    assert!(report
        .lines
        .iter()
        .all(|l| !l.check.ends_with(" db3") || l.check == "connect db3"));
    let server_id = report
        .lines
        .iter()
        .find(|l| l.check == "server_id")
        .expect("line");
    assert!(
        server_id
            .detail
            .ends_with("(not checked: db3, see its connect line)"),
        "{server_id}"
    );
    assert!(report.failed());
    assert!(report
        .summary()
        .ends_with("1 FAIL: fix the FAIL lines before starting ha"));
}

#[test]
fn lines_print_as_documented() {
    assert_eq!(
        Line::ok("server_id", "unique").to_string(),
        "OK   server_id: unique"
    );
    assert_eq!(Line::warn("x", "d", "f").to_string(), "WARN x: d — fix: f");
    assert_eq!(Line::fail("x", "d", "f").to_string(), "FAIL x: d — fix: f");
}

#[test]
fn an_invalid_file_is_reported_as_fail_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("monitor.yaml");
    std::fs::write(&path, "hosts: [").expect("write");
    assert_eq!(main(&path), std::process::ExitCode::from(1));
}
