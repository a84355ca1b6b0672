//! The real `ha-control` binary's `--json` output: show, checks, commands, mode and errors.

mod common;
mod fake;

use common::{at, dead_port, ha, json, DB3_MYSQL_ERR};
use fake::{start, Fake};
use ha_proto::Mode;

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

#[test]
fn json_explain() {
    let srv = start(Fake::new());
    let out = at(&srv, &["--json", "explain", "writer"]);
    assert_eq!(out.code, 0);
    let v = json(&out);
    assert_eq!(v[0]["role"], "writer");
    assert_eq!(v[0]["ip"], "10.77.0.160");
    assert_eq!(v[0]["owner"], "db1");
    assert_eq!(v[0]["successors"][0]["host"], "db2");
    assert_eq!(v[0]["passed_over"][0]["host"], "db3");
    assert_eq!(v[0]["passed_over"][0]["why"], "not in the role's hosts");
    assert!(v[0]["notes"][0]
        .as_str()
        .is_some_and(|n| n.contains("writer lease")));
    let out = at(&srv, &["--json", "explain", "nosuch"]);
    assert_eq!(out.code, 1);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"], "ERROR: Unknown role 'nosuch'!");
}
