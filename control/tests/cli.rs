//! The real `ha-control` binary against an in-process fake monitor: stdout, stderr and exit
//! code of every command and every error path.
//!
//! Times are printed in local time, so every run sets `TZ=UTC`.

mod fake;

use std::process::Command;
use std::time::{Duration, Instant};

use fake::{start, Fake, Running};
use ha_proto::{CheckName, CheckStatus, HostInfo, HostMode, HostState, Mode};

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

fn ha(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_ha-control"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run ha-control");
    Out {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Runs ha-control with `--monitor <fake>` followed by `args`.
fn at(srv: &Running, args: &[&str]) -> Out {
    let addr = srv.addr.to_string();
    let mut all = vec!["--monitor", addr.as_str()];
    all.extend_from_slice(args);
    ha(&all)
}

fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", out.stdout))
}

#[track_caller]
fn expect(out: &Out, code: i32, stdout: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (code, stdout),
        "stderr: {}",
        out.stderr
    );
}

/// A port on which nothing listens (bound, then released).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

const SHOW_DEMO: &str = "\
# Warning: agent on host db3 is not reachable
  db1(10.77.0.11) master/ONLINE. Roles: reader(10.77.0.161), writer(10.77.0.160)
  db2(10.77.0.12) master/ONLINE. Roles: reader(10.77.0.162), reader(10.77.0.163)
  db3(10.77.0.13) slave/HARD_OFFLINE. Roles: 
# Role writer is assigned to it's preferred host db1.

";

// ------------------------------------------------------------------------------------------
// plain commands

#[test]
fn ping() {
    let srv = start(Fake::new());
    expect(&at(&srv, &["ping"]), 0, "OK: Pinged successfully!\n");
    assert_eq!(srv.requests(), ["ping()"]);
}

#[test]
fn show_matches_mmm_and_the_library_renderer() {
    let srv = start(Fake::new());
    let out = at(&srv, &["show"]);
    expect(&out, 0, SHOW_DEMO);
    // The library renderer (reused by the lab tests) gives the same bytes.
    assert_eq!(
        ha_control::render::terminal(&ha_control::render::render_show(&fake::demo_show())),
        SHOW_DEMO
    );
}

#[test]
fn show_passive_with_multi_line_cause() {
    let srv = start(Fake::new());
    srv.set_mode(
        Mode::Passive,
        "Conflicting roles during startup:\n\nStartup status:\nRoles:\n  writer(10.77.0.160)  db1  Yes  Yes  -\n",
    );
    let out = at(&srv, &["show"]);
    let expected = format!(
        "# --- Monitor is in PASSIVE MODE ---\n\
         # Cause: Conflicting roles during startup:\n\
         # \n\
         # Startup status:\n\
         # Roles:\n\
         #   writer(10.77.0.160)  db1  Yes  Yes  -\n\
         # \n\
         {SHOW_DEMO}"
    );
    expect(&out, 0, &expected);
}

#[test]
fn prefer_line_when_role_is_elsewhere_or_orphaned() {
    let srv = start(Fake::new());
    srv.fake.state.lock().expect("lock").show.roles[0].owners = vec!["db2".into()];
    let out = at(&srv, &["show"]);
    assert!(out.stdout.ends_with(
        "# Role writer has db1 configured as it's preferred host but is assigned to db2 at the moment.\n\n"
    ));
    srv.fake.state.lock().expect("lock").show.roles[0].owners = vec![String::new()];
    let out = at(&srv, &["show"]);
    assert!(out
        .stdout
        .ends_with("# Role writer has db1 configured as it's preferred host.\n\n"));
}

#[test]
fn mode_commands_and_their_replies() {
    let srv = start(Fake::new());
    expect(&at(&srv, &["mode"]), 0, "ACTIVE\n");
    expect(
        &at(&srv, &["set_active"]),
        0,
        "OK: Already in active mode.\n",
    );
    expect(
        &at(&srv, &["set_passive"]),
        0,
        "OK: Switched into passive mode.\n",
    );
    expect(
        &at(&srv, &["set_passive"]),
        0,
        "OK: Already in passive mode.\n",
    );
    expect(&at(&srv, &["mode"]), 0, "PASSIVE\n");
    assert!(at(&srv, &["show"]).stdout.starts_with(
        "# --- Monitor is in PASSIVE MODE ---\n# Cause: Admin switched to passive mode.\n"
    ));
    expect(
        &at(&srv, &["set_manual"]),
        0,
        "OK: Switched into manual mode.\n",
    );
    expect(&at(&srv, &["mode"]), 0, "MANUAL\n");
    expect(
        &at(&srv, &["set_active"]),
        0,
        "OK: Switched into active mode.\n",
    );
    let sent: Vec<String> = srv
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("set_mode"))
        .collect();
    assert_eq!(
        sent,
        [
            "set_mode(ACTIVE)",
            "set_mode(PASSIVE)",
            "set_mode(PASSIVE)",
            "set_mode(MANUAL)",
            "set_mode(ACTIVE)"
        ]
    );
}

#[test]
fn set_online_and_set_offline() {
    let srv = start(Fake::new());
    expect(
        &at(&srv, &["set_online", "db1"]),
        0,
        "OK: This host is already ONLINE. Skipping command.\n",
    );
    expect(
        &at(&srv, &["set_online", "db3"]),
        1,
        "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment. It can't be switched to ONLINE.\n",
    );
    expect(
        &at(&srv, &["set_online", "db9"]),
        1,
        "ERROR: Unknown host name 'db9'!\n",
    );
    expect(
        &at(&srv, &["set_offline", "db2"]),
        0,
        "OK: State of 'db2' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!\n",
    );
    expect(
        &at(&srv, &["set_offline", "db9"]),
        1,
        "ERROR: Unknown host name 'db9'!\n",
    );
}

#[test]
fn move_role_plain_and_forced() {
    let srv = start(Fake::new());
    expect(
        &at(&srv, &["move_role", "writer", "db2"]),
        0,
        "OK: Role 'writer' has been moved from 'db1' to 'db2'. Now you can wait some time and check new roles info!\n",
    );
    expect(
        &at(&srv, &["move_role", "--force", "writer", "db2"]),
        0,
        "OK: Role 'writer' has been moved from 'db1' to 'db2' enforcedly. Now you can wait some time and check new roles info!\n",
    );
    expect(
        &at(&srv, &["move_role", "--force", "reader", "db2"]),
        1,
        "ERROR: move_role --forced may be used for the active master role only!\n",
    );
    expect(
        &at(&srv, &["move_role", "writer", "db1"]),
        0,
        "OK: Role is on 'db1' already. Skipping command.\n",
    );
    expect(
        &at(&srv, &["move_role", "bogus", "db1"]),
        1,
        "ERROR: Unknown role name 'bogus'!\n",
    );
    assert_eq!(
        &srv.requests()[..3],
        [
            "move_role(writer, db2, force=false)",
            "move_role(writer, db2, force=true)",
            "move_role(reader, db2, force=true)"
        ]
    );
    srv.set_mode(Mode::Passive, "x");
    expect(
        &at(&srv, &["move_role", "writer", "db2"]),
        1,
        "ERROR: This command is not allowed in passive mode\n",
    );
}

#[test]
fn set_ip_only_in_passive() {
    let srv = start(Fake::new());
    expect(
        &at(&srv, &["set_ip", "10.77.0.160", "db2"]),
        1,
        "ERROR: This command is only allowed in passive mode\n",
    );
    srv.set_mode(Mode::Passive, "Admin switched to passive mode.");
    expect(
        &at(&srv, &["set_ip", "10.77.0.160", "db2"]),
        0,
        "OK: Set role 'writer(10.77.0.160)' to host 'db2'.\n",
    );
    expect(
        &at(&srv, &["set_ip", "10.77.0.199", "db2"]),
        1,
        "ERROR: Unknown ip '10.77.0.199'!\n",
    );
}

// ------------------------------------------------------------------------------------------
// checks, all four forms

/// Adds a host with a longer name so the host column padding shows.
fn with_db10(srv: &Running) {
    let mut s = srv.fake.state.lock().expect("lock");
    s.show.hosts.push(HostInfo {
        name: "db10".into(),
        ip: "10.77.0.20".into(),
        mode: HostMode::Slave as i32,
        state: HostState::Online as i32,
        agent_reachable: true,
        ..Default::default()
    });
    for c in CheckName::ALL {
        s.checks.push(CheckStatus {
            host: "db10".into(),
            check: c as i32,
            ok: true,
            last_change_unix_ms: fake::T0 + 61_000,
            message: "OK".into(),
        });
    }
}

const DB3_MYSQL_ERR: &str = "ERROR: Connect error (host 10.77.0.13:3306): Can't connect";

#[test]
fn checks_all_hosts_all_checks() {
    let srv = start(Fake::new());
    with_db10(&srv);
    let mut expected = String::new();
    for h in ["db1", "db10", "db2", "db3"] {
        for c in ["ping", "mysql", "rep_threads", "rep_backlog"] {
            let (t, msg) = match h {
                "db10" => ("2024/05/01 12:01:01", "OK"),
                "db3" if c != "ping" => ("2024/05/01 12:00:00", DB3_MYSQL_ERR),
                _ => ("2024/05/01 12:00:00", "OK"),
            };
            expected.push_str(&format!("{h:<4}  {c:<11}  [last change: {t}]  {msg}\n"));
        }
    }
    expected.push('\n');
    for args in [
        &["checks"][..],
        &["checks", "all"],
        &["checks", "all", "all"],
    ] {
        expect(&at(&srv, args), 0, &expected);
    }
    assert!(expected.starts_with("db1   ping         [last change: 2024/05/01 12:00:00]  OK\n"));
}

#[test]
fn checks_one_host() {
    let srv = start(Fake::new());
    with_db10(&srv);
    let expected = "\
db3  ping         [last change: 2024/05/01 12:00:00]  OK
db3  mysql        [last change: 2024/05/01 12:00:00]  ERROR: Connect error (host 10.77.0.13:3306): Can't connect
db3  rep_threads  [last change: 2024/05/01 12:00:00]  ERROR: Connect error (host 10.77.0.13:3306): Can't connect
db3  rep_backlog  [last change: 2024/05/01 12:00:00]  ERROR: Connect error (host 10.77.0.13:3306): Can't connect

";
    expect(&at(&srv, &["checks", "db3"]), 0, expected);
    expect(&at(&srv, &["checks", "db3", "all"]), 0, expected);
    assert_eq!(
        srv.requests(),
        ["checks(db3, unknown)", "checks(db3, unknown)"]
    );
}

#[test]
fn checks_all_hosts_one_check() {
    let srv = start(Fake::new());
    with_db10(&srv);
    expect(
        &at(&srv, &["checks", "all", "rep_backlog"]),
        0,
        "\
db1   rep_backlog  [last change: 2024/05/01 12:00:00]  OK
db10  rep_backlog  [last change: 2024/05/01 12:01:01]  OK
db2   rep_backlog  [last change: 2024/05/01 12:00:00]  OK
db3   rep_backlog  [last change: 2024/05/01 12:00:00]  ERROR: Connect error (host 10.77.0.13:3306): Can't connect

",
    );
    let out = at(&srv, &["checks", "all", "ping"]);
    assert!(
        out.stdout.starts_with("db1   ping  [last change: "),
        "{}",
        out.stdout
    );
}

#[test]
fn checks_one_host_one_check() {
    let srv = start(Fake::new());
    expect(
        &at(&srv, &["checks", "db3", "mysql"]),
        0,
        &format!("db3  mysql  [last change: 2024/05/01 12:00:00]  {DB3_MYSQL_ERR}\n"),
    );
    assert_eq!(srv.requests(), ["checks(db3, mysql)"]);
}

#[test]
fn checks_time_follows_tz() {
    let srv = start(Fake::new());
    let addr = srv.addr.to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ha-control"))
        .args(["--monitor", &addr, "checks", "db1", "ping"])
        .env("TZ", "Europe/Berlin")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 12:00 UTC is 14:00 CEST where the tz database is installed; without it glibc falls
    // back to UTC. Either way the format holds.
    let expected = if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        "db1  ping  [last change: 2024/05/01 14:00:00]  OK\n"
    } else {
        "db1  ping  [last change: 2024/05/01 12:00:00]  OK\n"
    };
    assert_eq!(stdout, expected);
}

#[test]
fn checks_errors() {
    let srv = start(Fake::new());
    expect(
        &at(&srv, &["checks", "db9"]),
        1,
        "ERROR: Unknown host name 'db9'!\n",
    );
    expect(
        &at(&srv, &["checks", "db9", "ping"]),
        1,
        "ERROR: Unknown host name 'db9'!\n",
    );
    let before = srv.requests().len();
    expect(
        &at(&srv, &["checks", "db1", "pong"]),
        1,
        "ERROR: Unknown check 'pong'!\n",
    );
    expect(
        &at(&srv, &["checks", "all", "Ping"]),
        1,
        "ERROR: Unknown check 'Ping'!\n",
    );
    assert_eq!(
        srv.requests().len(),
        before,
        "unknown checks are refused locally"
    );
}

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
// --json

#[test]
fn json_show() {
    let srv = start(Fake::new());
    let out = at(&srv, &["--json", "show"]);
    assert_eq!(out.code, 0);
    let v = json(&out);
    assert_eq!(v["mode"], "ACTIVE");
    assert!(v["passive_cause"].is_null());
    assert_eq!(v["active_master"], "db1");
    assert_eq!(v["epoch"], 7);
    assert_eq!(v["network_ok"], true);
    let hosts = v["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0]["name"], "db1");
    assert_eq!(hosts[0]["mode"], "master");
    assert_eq!(hosts[0]["state"], "ONLINE");
    assert_eq!(hosts[0]["roles"][1], "writer(10.77.0.160)");
    assert_eq!(hosts[0]["role_instances"][1]["role"], "writer");
    assert_eq!(hosts[0]["role_instances"][1]["ip"], "10.77.0.160");
    assert_eq!(hosts[0]["last_state_change"], "2024-05-01T12:00:00.000Z");
    assert_eq!(hosts[0]["last_state_change_unix_ms"], fake::T0);
    assert_eq!(hosts[2]["state"], "HARD_OFFLINE");
    assert_eq!(hosts[2]["agent_reachable"], false);
    assert!(hosts[2]["flapping"].is_boolean());
    let roles = v["roles"].as_array().expect("roles");
    assert_eq!(roles[0]["name"], "writer");
    assert_eq!(roles[0]["prefer"], "db1");
    assert_eq!(roles[1]["mode"], "balanced");
    assert_eq!(roles[1]["owners"].as_array().map(Vec::len), Some(3));

    srv.set_mode(Mode::Passive, "line 1\nline 2");
    let v = json(&at(&srv, &["show", "--json"]));
    assert_eq!(v["mode"], "PASSIVE");
    assert_eq!(v["passive_cause"], "line 1\nline 2");
}

#[test]
fn json_checks() {
    let srv = start(Fake::new());
    let out = at(&srv, &["--json", "checks"]);
    assert_eq!(out.code, 0);
    let v = json(&out);
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0]["host"], "db1");
    assert_eq!(rows[0]["check"], "ping");
    assert_eq!(rows[5]["check"], "mysql");
    assert_eq!(rows[9]["host"], "db3");
    assert_eq!(rows[9]["ok"], false);
    assert_eq!(rows[9]["message"], DB3_MYSQL_ERR);
    assert_eq!(rows[9]["last_change"], "2024-05-01T12:00:00.000Z");
    assert_eq!(rows[9]["last_change_unix_ms"], fake::T0);

    let out = at(&srv, &["--json", "checks", "db9"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        json(&out),
        serde_json::json!({"ok": false, "error": "ERROR: Unknown host name 'db9'!"})
    );
    let out = at(&srv, &["--json", "checks", "db1", "pong"]);
    assert_eq!(out.code, 1);
    assert_eq!(json(&out)["error"], "ERROR: Unknown check 'pong'!");
}

#[test]
fn json_commands_mode_and_errors() {
    let srv = start(Fake::new());
    let out = at(&srv, &["--json", "ping"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        json(&out),
        serde_json::json!({"ok": true, "message": "OK: Pinged successfully!"})
    );

    let out = at(&srv, &["--json", "set_online", "db9"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        json(&out),
        serde_json::json!({
            "ok": false,
            "message": "ERROR: Unknown host name 'db9'!",
            "error": "ERROR: Unknown host name 'db9'!"
        })
    );

    let out = at(&srv, &["--json", "set_passive"]);
    assert_eq!(json(&out)["ok"], true);
    let out = at(&srv, &["--json", "mode"]);
    assert_eq!(
        json(&out),
        serde_json::json!({"mode": "PASSIVE", "passive_cause": "Admin switched to passive mode."})
    );

    let out = at(&srv, &["--json", "set_online"]);
    assert_eq!((out.code, out.stderr.as_str()), (2, ""));
    assert_eq!(
        json(&out),
        serde_json::json!({"ok": false, "error": "Invalid command 'set_online'"})
    );

    let port = dead_port();
    let addr = format!("127.0.0.1:{port}");
    let out = ha(&["--json", "--monitor", &addr, "show"]);
    assert_eq!(out.code, 3);
    assert_eq!(
        json(&out),
        serde_json::json!({
            "ok": false,
            "error": "ERROR: Can't connect to monitor daemon!",
            "address": addr,
            "cause": "connection refused"
        })
    );
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
