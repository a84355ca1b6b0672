//! The real `ha-control` binary: usage errors, local commands (help, version, completions, man
//! page), finding the monitor (`--config`) and every way of failing to reach it.
//!
//! Times are printed in local time, so every run sets `TZ=UTC`.

mod common;
mod fake;

use std::time::{Duration, Instant};

use common::{at, dead_port, expect, ha, json};
use fake::{start, Fake};

// ------------------------------------------------------------------------------------------
// usage errors (exit 2): nothing is sent

#[test]
fn usage_errors() {
    let srv = start(Fake::new());
    for (args, line) in [
        (&["set_online"][..], "set_online"),
        (&["set_offline", "db1", "db2"], "set_offline db1 db2"),
        (&["checks", "db1", "ping", "x"], "checks db1 ping x"),
        (
            &["move_role", "--force", "writer"],
            "move_role --force writer",
        ),
        (&["set_ip", "10.0.0.1"], "set_ip 10.0.0.1"),
        (&["mode", "now"], "mode now"),
        (&["frobnicate"], "frobnicate"),
    ] {
        let out = at(&srv, args);
        assert_eq!(out.code, 2, "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(
            out.stderr,
            format!(
                "Invalid command '{line}'\n\n{}",
                ha_control::render::help::HELP
            ),
            "{args:?}"
        );
    }
    assert!(srv.requests().is_empty());

    let out = ha(&[]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (2, "See 'ha-control help' for usage information\n")
    );
    let out = ha(&["--timeout", "soon", "ping"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("'soon' is not a number of seconds"),
        "{}",
        out.stderr
    );
    let out = ha(&["--monitor", "a:b:c:x", "ping"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("invalid monitor address"),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------------------------------------------
// unreachable monitor (exit 3)

#[test]
fn nothing_listening() {
    let port = dead_port();
    let addr = format!("127.0.0.1:{port}");
    for cmd in [
        &["ping"][..],
        &["show"],
        &["checks"],
        &["set_online", "db1"],
        &["mode"],
    ] {
        let mut args = vec!["--monitor", addr.as_str()];
        args.extend_from_slice(cmd);
        expect(
            &ha(&args),
            3,
            &format!(
                "ERROR: Can't connect to monitor daemon!\n  (tried {addr}: connection refused)\n"
            ),
        );
    }
}

#[test]
fn no_reply_within_the_timeout() {
    let mut f = Fake::new();
    f.delay = Duration::from_secs(20);
    let srv = start(f);
    let started = Instant::now();
    let out = at(&srv, &["--timeout", "0.5", "show"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    expect(
        &out,
        3,
        &format!(
            "ERROR: Can't connect to monitor daemon!\n  (tried {}: no answer within 0.5 s)\n",
            srv.addr
        ),
    );
}

#[test]
fn grpc_error_statuses() {
    let mut f = Fake::new();
    f.fail = Some(tonic::Code::Internal);
    let srv = start(f);
    expect(
        &at(&srv, &["ping"]),
        1,
        "ERROR: The monitor failed the request: Internal: injected failure\n",
    );

    let mut f = Fake::new();
    f.fail = Some(tonic::Code::Unavailable);
    let srv = start(f);
    expect(
        &at(&srv, &["ping"]),
        3,
        &format!(
            "ERROR: Can't connect to monitor daemon!\n  (tried {}: injected failure)\n",
            srv.addr
        ),
    );
}

// ------------------------------------------------------------------------------------------
// configuration file

/// 0600: a config file with a password that others can read is refused.
fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn config_with_port(port: u16) -> String {
    let text = include_str!("../../etc/monitor.yaml");
    assert!(text.contains("  port: 9988\n"));
    text.replace("  port: 9988\n", &format!("  port: {port}\n"))
}

#[test]
fn address_from_the_config_file() {
    let srv = start(Fake::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("monitor.yaml");
    std::fs::write(&path, config_with_port(srv.addr.port())).expect("write");
    private(&path);
    let p = path.to_string_lossy().into_owned();
    expect(
        &ha(&["--config", &p, "ping"]),
        0,
        "OK: Pinged successfully!\n",
    );
    expect(&ha(&["ping", "-c", &p]), 0, "OK: Pinged successfully!\n");
}

#[test]
fn unusable_config_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.yaml");
    let p = missing.to_string_lossy().into_owned();
    let out = ha(&["--config", &p, "ping"]);
    assert_eq!(out.code, 3);
    assert!(out.stdout.starts_with(&format!(
        "ERROR: Can't connect to monitor daemon!\n  (no monitor address: cannot load {p} (give --config FILE or --monitor ADDR):\n  {p}: cannot read the file:"
    )), "{}", out.stdout);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "monitor: [\n").expect("write");
    let b = bad.to_string_lossy().into_owned();
    let out = ha(&["--config", &b, "show"]);
    assert_eq!(out.code, 3);
    assert!(out
        .stdout
        .starts_with("ERROR: Can't connect to monitor daemon!\n"));
    assert!(out.stdout.contains(&b), "{}", out.stdout);
    assert!(out.stdout.ends_with(")\n"));
}

// ------------------------------------------------------------------------------------------
// local commands

#[test]
fn version_help_completions_man() {
    expect(
        &ha(&["--version"]),
        0,
        &format!("ha-control {}\n", env!("CARGO_PKG_VERSION")),
    );
    // help is answered locally, even with nobody listening
    let dead = format!("127.0.0.1:{}", dead_port());
    expect(
        &ha(&["--monitor", &dead, "help"]),
        0,
        &format!("{}\n", ha_control::render::help::HELP),
    );
    let v = json(&ha(&["help", "--json"]));
    assert_eq!(v["commands"].as_array().map(Vec::len), Some(12));

    for shell in ["bash", "zsh", "fish"] {
        let out = ha(&["generate-completions", shell]);
        assert_eq!(out.code, 0, "{shell}");
        assert!(out.stdout.contains("set_online"), "{shell}");
        assert!(out.stdout.contains("move_role"), "{shell}");
    }
    let out = ha(&["generate-man"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains(".TH ha-control"),
        "{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
    assert!(out.stdout.contains("set_online"));
    assert!(
        !out.stdout.contains("generate-man"),
        "hidden helpers stay out of the man page"
    );
}
