//! The real `ha-control` binary against an in-process fake monitor: stdout and exit code of
//! every monitor command and of `checks` in all four forms.
//!
//! Times are printed in local time, so every run sets `TZ=UTC`.

mod common;
mod fake;

use std::process::Command;

use common::{at, expect, DB3_MYSQL_ERR};
use fake::{start, Fake, Running};
use ha_proto::{CheckName, CheckStatus, HostInfo, HostMode, HostState, Mode};

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
// explain

#[test]
fn explain_one_role_all_roles_and_an_unknown_one() {
    let srv = start(Fake::new());
    let want = "\
writer(10.77.0.160) on db1. If db1 failed now:
  1. db2: ONLINE, agent reachable; fewest roles among the eligible hosts (ties: first in the role's hosts)
  -  db3: not in the role's hosts
  note: the new writer becomes writable only once db1 surely cannot write: at most 5.3 s from now (its writer lease and fence budget), earlier if it confirms its demotion or is killed
";
    expect(&at(&srv, &["explain", "writer"]), 0, want);
    expect(&at(&srv, &["explain"]), 0, want);
    expect(
        &at(&srv, &["explain", "nosuch"]),
        1,
        "ERROR: Unknown role 'nosuch'!\n",
    );
    assert_eq!(
        srv.requests(),
        ["explain(writer)", "explain()", "explain(nosuch)"]
    );
}
