//! The JSON shapes of `show`, `checks` and the error replies (control/JSON.md).

use ha_acceptance::golden::{Case, Golden};
use ha_acceptance::Cluster;
use serde_json::Value;

// `json` is both the `ha-control --json` helper and serde_json's macro.
use super::{host_mode, json};

pub fn json_shapes(c: &Cluster, g: &mut Golden, w: &str) {
    // show
    let (code, v) = json(c, &["show"]);
    check_eq!(g, code, 0);
    check_eq!(g, v["mode"], "ACTIVE");
    check!(g, v["passive_cause"].is_null());
    check_eq!(g, v["active_master"], w);
    check!(g, v["epoch"].is_u64());
    check!(g, v["network_ok"].is_boolean());
    let hosts = v["hosts"].as_array().expect("hosts[]");
    let names: Vec<&str> = hosts.iter().filter_map(|h| h["name"].as_str()).collect();
    check_eq!(g, names, ["db1", "db2", "db3"]);
    for h in hosts {
        let name = h["name"].as_str().unwrap_or_default();
        let ip = c.lab.host(name).expect("host").ip.to_string();
        check_eq!(g, h["ip"], ip.as_str());
        check_eq!(g, h["mode"], host_mode(name));
        check_eq!(g, h["state"], "ONLINE");
        check_eq!(g, h["agent_reachable"], true);
        check_eq!(g, h["flapping"], false);
        let roles: Vec<&str> = h["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .map(|r| r.as_str().expect("role string"))
            .collect();
        let inst = h["role_instances"].as_array().expect("role_instances");
        check_eq!(g, inst.len(), roles.len());
        for (i, r) in inst.iter().zip(&roles) {
            let (rn, rip) = (
                i["role"].as_str().expect("role"),
                i["ip"].as_str().expect("ip"),
            );
            check_eq!(g, format!("{rn}({rip})"), *r);
        }
        let mut sorted = roles.clone();
        sorted.sort();
        check_eq!(g, roles, sorted);
        check!(
            g,
            h["last_state_change"].is_string() || h["last_state_change"].is_null()
        );
        check!(
            g,
            h["last_state_change_unix_ms"].is_i64() || h["last_state_change_unix_ms"].is_null()
        );
        check!(g, h["peer"].is_string() || h["peer"].is_null());
    }
    check_eq!(g, hosts[0]["peer"], "db2");
    check_eq!(g, hosts[1]["peer"], "db1");
    check!(g, hosts[2]["peer"].is_null());
    let roles = v["roles"].as_array().expect("roles[]");
    let rnames: Vec<&str> = roles.iter().filter_map(|r| r["name"].as_str()).collect();
    check_eq!(g, rnames, ["writer", "reader"], "config order");
    for r in roles {
        check!(g, r["mode"] == "exclusive" || r["mode"] == "balanced");
        check!(
            g,
            r["hosts"]
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string))
        );
        let ips = r["ips"].as_array().expect("ips");
        let owners = r["owners"].as_array().expect("owners");
        check_eq!(g, ips.len(), owners.len());
        check!(g, owners.iter().all(|o| o.is_string() || o.is_null()));
        check!(g, r["prefer"].is_null());
    }
    check_eq!(g, roles[0]["mode"], "exclusive");
    check_eq!(g, roles[0]["ips"], json!([c.lab.writer_vip().to_string()]));
    check_eq!(g, roles[0]["owners"], json!([w]));

    // checks
    let (code, v) = json(c, &["checks"]);
    check_eq!(g, code, 0);
    let rows = v.as_array().expect("checks is an array");
    check_eq!(g, rows.len(), 12);
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["host"].as_str().expect("host").to_string(),
                r["check"].as_str().expect("check").to_string(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for h in ["db1", "db2", "db3"] {
        for k in ["ping", "mysql", "rep_threads", "rep_backlog"] {
            want.push((h.to_string(), k.to_string()));
        }
    }
    check_eq!(g, keys, want);
    for r in rows {
        check_eq!(g, r["ok"], true, "{r}");
        let lc = r["last_change"].as_str().expect("last_change");
        check!(
            g,
            lc.len() == 24 && lc.ends_with('Z') && &lc[10..11] == "T",
            "{lc}"
        );
        check!(
            g,
            r["last_change_unix_ms"]
                .as_i64()
                .is_some_and(|t| t > 1_600_000_000_000)
        );
        check!(
            g,
            r["message"].as_str().is_some_and(|m| m.starts_with("OK"))
        );
    }

    // error replies
    g.run(
        c,
        &[
            Case::json(
                &["--json", "checks", "db9"],
                1,
                json!({"ok": false, "error": "ERROR: Unknown host name 'db9'!"}),
            ),
            Case::json(
                &["--json", "checks", "db1", "pong"],
                1,
                json!({"ok": false, "error": "ERROR: Unknown check 'pong'!"}),
            ),
            Case::json(
                &["--json", "set_online", "db9"],
                1,
                json!({
                    "ok": false,
                    "message": "ERROR: Unknown host name 'db9'!",
                    "error": "ERROR: Unknown host name 'db9'!",
                }),
            ),
            Case::json(
                &["--json", "ping"],
                0,
                json!({"ok": true, "message": "OK: Pinged successfully!"}),
            ),
            Case::json(
                &["--json", "mode"],
                0,
                json!({"mode": "ACTIVE", "passive_cause": null}),
            ),
        ],
    );
    let (code, v) = json(c, &["help"]);
    check_eq!(g, code, 0);
    check_eq!(g, v["commands"].as_array().map(Vec::len), Some(12));
}
