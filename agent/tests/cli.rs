//! The binary's start-up with a configured but unusable `tls:` section: it refuses to start
//! and names the file (it never runs without TLS when TLS is configured).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn unusable_tls_stops_the_agent_naming_the_file() {
    let sample = format!("{}/../etc/agent.yaml", env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    // A CA and a certificate for db1, but the key of another identity.
    ha_tls::certs::create_ca(dir.path(), "test CA", 1).expect("ca");
    ha_tls::certs::issue(dir.path(), "db1", &[], 1).expect("db1");
    ha_tls::certs::issue(dir.path(), "db2", &[], 1).expect("db2");
    let to = dir.path().join("agent.yaml");
    let text = std::fs::read_to_string(sample)
        .expect("read sample")
        .replace("/etc/ha/tls/db1.key", "/etc/ha/tls/db2.key")
        .replace("/etc/ha/tls/", &format!("{}/", dir.path().display()))
        .replace(
            "/var/lib/ha",
            &dir.path().join("state").display().to_string(),
        );
    std::fs::write(&to, text).expect("write");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_ha-agent"))
        .args(["--config", to.to_str().expect("utf8 path")])
        .output()
        .expect("run ha-agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("db2.key: private key does not match"),
        "names the key file and the problem: {stderr}"
    );
}
