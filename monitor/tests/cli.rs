//! The binary's command line: `--check-config` prints `OK` or one line per problem naming the
//! file and the field, with exit status 0/1; `--version`.

use std::process::Command;

fn monitor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ha-monitor"))
}

fn sample() -> String {
    format!("{}/../etc/monitor.yaml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_config_accepts_the_sample() {
    // Installed 0640 as a package would (it holds a password).
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("monitor.yaml");
    std::fs::copy(sample(), &to).expect("copy");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let out = monitor()
        .args(["--check-config", to.to_str().expect("utf8 path")])
        .output()
        .expect("run ha-monitor");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    assert_eq!(out.status.code(), Some(0));

    // World-readable with a password: refused, saying how to fix it.
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = monitor()
        .args(["--check-config", to.to_str().expect("utf8 path")])
        .output()
        .expect("run ha-monitor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("every user can read it") && stdout.contains("chmod 0640"),
        "{stdout}"
    );
}

#[test]
fn check_config_names_file_and_field_of_each_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(sample())
        .expect("read sample")
        .replace("ips: [10.0.60.160]", "ips: [10.0.60.160, 10.0.60.170]")
        .replace("hosts: [db1, db2, db3]", "hosts: [db1, db2, db9]");
    std::fs::write(&bad, text).expect("write");
    let out = monitor()
        .args(["--check-config", bad.to_str().expect("utf8 path")])
        .output()
        .expect("run ha-monitor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let file = bad.display().to_string();
    assert!(
        lines[0].starts_with(&format!("{file}: roles.writer.ips: ")),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}: roles.reader.hosts[2]: 'db9' is not a host"
        )),
        "{stdout}"
    );
}

#[test]
fn unreadable_config_is_an_error_not_a_crash() {
    let out = monitor()
        .args(["--check-config", "/nonexistent/monitor.yaml"])
        .output()
        .expect("run ha-monitor");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("/nonexistent/monitor.yaml: cannot read the file"));
}

#[test]
fn version() {
    let out = monitor().arg("--version").output().expect("run ha-monitor");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ha-monitor {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unusable_tls_stops_the_monitor_naming_the_file() {
    // The sample points at /etc/ha/tls/*, which does not exist here: the monitor must refuse
    // to start rather than run without TLS.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("monitor.yaml");
    let text = std::fs::read_to_string(sample())
        .expect("read sample")
        .replace("/etc/ha/tls/", &format!("{}/", dir.path().display()));
    std::fs::write(&to, text).expect("write");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = monitor()
        .args(["--config", to.to_str().expect("utf8 path")])
        .output()
        .expect("run ha-monitor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/ca.crt: cannot read", dir.path().display())),
        "{stderr}"
    );
}
