//! `--json`: the machine-readable form of every reply (documented in `control/JSON.md`).
//!
//! Rules that keep it stable for scripts:
//! * names and enum values are the ones the text form uses (`ONLINE`, `master`, `rep_threads`);
//! * absent values are `null`, never empty strings (an empty `passive_cause` is `null`);
//! * times come twice: RFC 3339 in UTC (`…Z`) and Unix milliseconds; both `null` when the
//!   monitor does not know the time (it sends 0);
//! * every failure is an object with `"ok": false` and `"error"`, whatever the command, and
//!   the exit code is the same as in text mode.
//!
//! Fields may be added in later versions; existing ones keep their name, type and meaning.

use serde::Serialize;

use ha_proto::{
    CheckStatus, ChecksReply, CommandReply, HostInfo, ModeReply, RoleInfo, RoleMode, ShowReply,
};

use super::checks::{selected, ChecksQuery};
use super::show::host_mode_name;
use crate::timefmt::rfc3339_utc;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// (RFC 3339, Unix ms), both `None` for the "unknown" timestamp 0.
fn instant(unix_ms: i64) -> (Option<String>, Option<i64>) {
    if unix_ms == 0 {
        (None, None)
    } else {
        (Some(rfc3339_utc(unix_ms)), Some(unix_ms))
    }
}

#[derive(Debug, Serialize)]
pub struct ShowJson {
    pub mode: &'static str,
    pub passive_cause: Option<String>,
    pub active_master: Option<String>,
    pub epoch: u64,
    pub network_ok: bool,
    pub hosts: Vec<HostJson>,
    pub roles: Vec<RoleJson>,
    /// The active master fell back from semi-sync to asynchronous replication; `null` if not.
    pub async_fallback: Option<AsyncFallbackJson>,
    /// Redundant monitors: the leading monitor's control address and term; `null` for a
    /// single monitor.
    pub leader: Option<LeaderJson>,
}

#[derive(Debug, Serialize)]
pub struct LeaderJson {
    pub address: String,
    pub term: u64,
}

#[derive(Debug, Serialize)]
pub struct AsyncFallbackJson {
    pub host: String,
    pub since: Option<String>,
    pub since_unix_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct HostJson {
    pub name: String,
    pub ip: String,
    pub mode: &'static str,
    pub state: &'static str,
    /// `name(ip)` strings, sorted as in the text form.
    pub roles: Vec<String>,
    /// The same roles, structured.
    pub role_instances: Vec<RoleInstanceJson>,
    pub agent_reachable: bool,
    pub flapping: bool,
    pub last_state_change: Option<String>,
    pub last_state_change_unix_ms: Option<i64>,
    pub peer: Option<String>,
    /// The active master is unreachable from the monitor but these writer candidates vouch for
    /// it (peer promises): it stays the writer. Empty otherwise.
    pub reachable_from: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RoleInstanceJson {
    pub role: String,
    pub ip: String,
}

#[derive(Debug, Serialize)]
pub struct RoleJson {
    pub name: String,
    pub mode: &'static str,
    pub hosts: Vec<String>,
    pub ips: Vec<String>,
    pub prefer: Option<String>,
    /// Owner of each entry of `ips`, same order; `null` = orphaned.
    pub owners: Vec<Option<String>>,
}

#[derive(Debug, Serialize)]
pub struct CheckJson {
    pub host: String,
    pub check: &'static str,
    pub ok: bool,
    pub last_change: Option<String>,
    pub last_change_unix_ms: Option<i64>,
    pub message: String,
}

/// Reply of ping and of every state-changing command.
#[derive(Debug, Serialize)]
pub struct CommandJson {
    pub ok: bool,
    pub message: String,
    /// The message again when `ok` is false, so every failure has `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ModeJson {
    pub mode: &'static str,
    pub passive_cause: Option<String>,
}

/// Any failure that is not a command reply: usage errors, unknown checks, checks errors,
/// an unreachable monitor.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    pub ok: bool,
    pub error: String,
    /// The monitor address tried (unreachable monitor only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Why it could not be reached (unreachable monitor only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct HelpJson {
    pub commands: Vec<HelpEntryJson>,
}

#[derive(Debug, Serialize)]
pub struct HelpEntryJson {
    pub command: &'static str,
    pub usage: &'static str,
    pub description: &'static str,
}

fn role_mode_name(m: RoleMode) -> &'static str {
    match m {
        RoleMode::Exclusive => "exclusive",
        RoleMode::Balanced => "balanced",
        RoleMode::Unspecified => "unknown",
    }
}

fn host_json(h: &HostInfo) -> HostJson {
    let mut roles = h.roles.clone();
    roles.sort_by(|a, b| (&a.name, &a.ip).cmp(&(&b.name, &b.ip)));
    let (last_state_change, last_state_change_unix_ms) = instant(h.last_state_change_unix_ms);
    HostJson {
        name: h.name.clone(),
        ip: h.ip.clone(),
        mode: host_mode_name(h.mode()),
        state: h.state().mmm_name(),
        roles: roles.iter().map(ToString::to_string).collect(),
        role_instances: roles
            .into_iter()
            .map(|r| RoleInstanceJson {
                role: r.name,
                ip: r.ip,
            })
            .collect(),
        agent_reachable: h.agent_reachable,
        flapping: h.flapping,
        last_state_change,
        last_state_change_unix_ms,
        peer: non_empty(&h.peer),
        reachable_from: h.reachable_from.clone(),
    }
}

fn role_json(r: &RoleInfo) -> RoleJson {
    RoleJson {
        name: r.name.clone(),
        mode: role_mode_name(r.mode()),
        hosts: r.hosts.clone(),
        ips: r.ips.clone(),
        prefer: non_empty(&r.prefer),
        owners: r.owners.iter().map(|o| non_empty(o)).collect(),
    }
}

pub fn show(reply: &ShowReply) -> ShowJson {
    let mut hosts: Vec<&HostInfo> = reply.hosts.iter().collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    ShowJson {
        mode: reply.mode().mmm_name(),
        passive_cause: non_empty(&reply.passive_cause),
        active_master: non_empty(&reply.active_master),
        epoch: reply.epoch,
        network_ok: reply.network_ok,
        hosts: hosts.into_iter().map(host_json).collect(),
        roles: reply.roles.iter().map(role_json).collect(),
        leader: non_empty(&reply.leader).map(|address| LeaderJson {
            address,
            term: reply.leader_term,
        }),
        async_fallback: non_empty(&reply.async_fallback_host).map(|host| {
            let (since, since_unix_ms) = instant(reply.async_fallback_since_unix_ms);
            AsyncFallbackJson {
                host,
                since,
                since_unix_ms,
            }
        }),
    }
}

fn check_json(c: &CheckStatus) -> CheckJson {
    let (last_change, last_change_unix_ms) = instant(c.last_change_unix_ms);
    CheckJson {
        host: c.host.clone(),
        check: c.check().mmm_name(),
        ok: c.ok,
        last_change,
        last_change_unix_ms,
        message: c.message.clone(),
    }
}

/// The rows of a successful `checks` reply (same selection and order as the text form).
/// Call only when `reply.ok`; an ERROR reply is an [`ErrorJson`].
pub fn checks(reply: &ChecksReply, q: &ChecksQuery) -> Vec<CheckJson> {
    selected(reply, q).into_iter().map(check_json).collect()
}

pub fn command(reply: &CommandReply) -> CommandJson {
    CommandJson {
        ok: reply.ok,
        message: reply.message.clone(),
        error: (!reply.ok).then(|| reply.message.clone()),
    }
}

pub fn mode(reply: &ModeReply) -> ModeJson {
    ModeJson {
        mode: reply.mode().mmm_name(),
        passive_cause: non_empty(&reply.passive_cause),
    }
}

pub fn error(message: impl Into<String>) -> ErrorJson {
    ErrorJson {
        ok: false,
        error: message.into(),
        address: None,
        cause: None,
    }
}

pub fn help() -> HelpJson {
    HelpJson {
        commands: super::help::COMMANDS
            .iter()
            .map(|(command, usage, description)| HelpEntryJson {
                command,
                usage,
                description,
            })
            .collect(),
    }
}

/// Pretty-printed JSON plus newline. Serializing these plain structs cannot fail; should it
/// ever, the output is still a valid JSON error object.
pub fn to_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(s) => s + "\n",
        Err(e) => format!(
            "{{\"ok\": false, \"error\": {}}}\n",
            serde_json::Value::String(format!("cannot encode the reply as JSON: {e}"))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_proto::{CheckName, HostMode, HostState, Mode, Role};
    use serde_json::Value;

    fn sample_show() -> ShowReply {
        ShowReply {
            mode: Mode::Passive as i32,
            passive_cause: "Admin switched to passive mode.".into(),
            hosts: vec![
                HostInfo {
                    name: "db2".into(),
                    ip: "10.77.0.12".into(),
                    mode: HostMode::Master as i32,
                    state: HostState::HardOffline as i32,
                    roles: vec![],
                    agent_reachable: false,
                    flapping: true,
                    last_state_change_unix_ms: 0,
                    peer: "db1".into(),
                    reachable_from: Vec::new(),
                },
                HostInfo {
                    name: "db1".into(),
                    ip: "10.77.0.11".into(),
                    mode: HostMode::Master as i32,
                    state: HostState::Online as i32,
                    roles: vec![
                        Role::new("writer", "10.77.0.160"),
                        Role::new("reader", "10.77.0.161"),
                    ],
                    agent_reachable: true,
                    flapping: false,
                    last_state_change_unix_ms: 1_714_564_800_000,
                    peer: "db2".into(),
                    reachable_from: Vec::new(),
                },
            ],
            roles: vec![
                RoleInfo {
                    name: "writer".into(),
                    mode: RoleMode::Exclusive as i32,
                    hosts: vec!["db1".into(), "db2".into()],
                    ips: vec!["10.77.0.160".into()],
                    prefer: "db1".into(),
                    owners: vec!["db1".into()],
                },
                RoleInfo {
                    name: "reader".into(),
                    mode: RoleMode::Balanced as i32,
                    hosts: vec!["db1".into(), "db2".into()],
                    ips: vec!["10.77.0.161".into(), "10.77.0.162".into()],
                    prefer: String::new(),
                    owners: vec!["db1".into(), String::new()],
                },
            ],
            active_master: "db1".into(),
            epoch: 42,
            network_ok: true,
            async_fallback_host: "db1".into(),
            async_fallback_since_unix_ms: 1_714_564_800_000,
            leader: String::new(),
            leader_term: 0,
        }
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn show_shape() {
        let v = parse(&to_text(&show(&sample_show())));
        assert_eq!(v["mode"], "PASSIVE");
        assert_eq!(v["passive_cause"], "Admin switched to passive mode.");
        assert_eq!(v["active_master"], "db1");
        assert_eq!(v["epoch"], 42);
        assert_eq!(v["network_ok"], true);
        assert_eq!(v["async_fallback"]["host"], "db1");
        assert_eq!(v["async_fallback"]["since"], "2024-05-01T12:00:00.000Z");
        let mut synced = sample_show();
        synced.async_fallback_host.clear();
        assert!(parse(&to_text(&show(&synced)))["async_fallback"].is_null());

        let hosts = v["hosts"].as_array().expect("hosts array");
        assert_eq!(hosts.len(), 2);
        let db1 = &hosts[0];
        assert_eq!(db1["name"], "db1", "hosts sorted");
        assert_eq!(db1["ip"], "10.77.0.11");
        assert_eq!(db1["mode"], "master");
        assert_eq!(db1["state"], "ONLINE");
        assert_eq!(
            db1["roles"],
            serde_json::json!(["reader(10.77.0.161)", "writer(10.77.0.160)"])
        );
        assert_eq!(
            db1["role_instances"],
            serde_json::json!([
                {"role": "reader", "ip": "10.77.0.161"},
                {"role": "writer", "ip": "10.77.0.160"}
            ])
        );
        assert_eq!(db1["agent_reachable"], true);
        assert_eq!(db1["flapping"], false);
        assert_eq!(db1["last_state_change"], "2024-05-01T12:00:00.000Z");
        assert_eq!(db1["last_state_change_unix_ms"], 1_714_564_800_000_i64);
        assert_eq!(db1["peer"], "db2");

        let db2 = &hosts[1];
        assert_eq!(db2["state"], "HARD_OFFLINE");
        assert_eq!(db2["roles"], serde_json::json!([]));
        assert_eq!(db2["agent_reachable"], false);
        assert_eq!(db2["flapping"], true);
        assert!(db2["last_state_change"].is_null());
        assert!(db2["last_state_change_unix_ms"].is_null());

        let roles = v["roles"].as_array().expect("roles array");
        assert_eq!(roles[0]["name"], "writer", "config order");
        assert_eq!(roles[0]["mode"], "exclusive");
        assert_eq!(roles[0]["prefer"], "db1");
        assert_eq!(roles[0]["owners"], serde_json::json!(["db1"]));
        assert_eq!(roles[1]["mode"], "balanced");
        assert!(roles[1]["prefer"].is_null());
        assert_eq!(
            roles[1]["ips"],
            serde_json::json!(["10.77.0.161", "10.77.0.162"])
        );
        assert_eq!(roles[1]["owners"], serde_json::json!(["db1", null]));
        assert_eq!(roles[1]["hosts"], serde_json::json!(["db1", "db2"]));
    }

    #[test]
    fn show_keys_are_exactly_the_documented_ones() {
        let v = parse(&to_text(&show(&sample_show())));
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&v),
            [
                "active_master",
                "async_fallback",
                "epoch",
                "hosts",
                "leader",
                "mode",
                "network_ok",
                "passive_cause",
                "roles"
            ]
        );
        assert_eq!(
            keys(&v["hosts"][0]),
            [
                "agent_reachable",
                "flapping",
                "ip",
                "last_state_change",
                "last_state_change_unix_ms",
                "mode",
                "name",
                "peer",
                "reachable_from",
                "role_instances",
                "roles",
                "state"
            ]
        );
        assert_eq!(
            keys(&v["roles"][0]),
            ["hosts", "ips", "mode", "name", "owners", "prefer"]
        );
    }

    #[test]
    fn active_mode_has_null_cause() {
        let mut r = sample_show();
        r.mode = Mode::Active as i32;
        r.passive_cause.clear();
        r.active_master.clear();
        let v = parse(&to_text(&show(&r)));
        assert_eq!(v["mode"], "ACTIVE");
        assert!(v["passive_cause"].is_null());
        assert!(v["active_master"].is_null());
    }

    #[test]
    fn checks_shape() {
        let reply = ChecksReply {
            ok: true,
            message: String::new(),
            checks: vec![
                CheckStatus {
                    host: "db1".into(),
                    check: CheckName::Mysql as i32,
                    ok: false,
                    last_change_unix_ms: 1_714_564_800_123,
                    message: "ERROR: Connect error".into(),
                },
                CheckStatus {
                    host: "db1".into(),
                    check: CheckName::Ping as i32,
                    ok: true,
                    last_change_unix_ms: 1_714_564_800_000,
                    message: "OK".into(),
                },
            ],
        };
        let q = ChecksQuery::parse(None, None).expect("valid");
        let v = parse(&to_text(&checks(&reply, &q)));
        let rows = v.as_array().expect("array");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["check"], "ping", "mmm check order");
        assert_eq!(rows[1]["host"], "db1");
        assert_eq!(rows[1]["check"], "mysql");
        assert_eq!(rows[1]["ok"], false);
        assert_eq!(rows[1]["last_change"], "2024-05-01T12:00:00.123Z");
        assert_eq!(rows[1]["last_change_unix_ms"], 1_714_564_800_123_i64);
        assert_eq!(rows[1]["message"], "ERROR: Connect error");
        let mut keys: Vec<&String> = rows[0].as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "check",
                "host",
                "last_change",
                "last_change_unix_ms",
                "message",
                "ok"
            ]
        );
    }

    #[test]
    fn command_mode_error_help_shapes() {
        let ok = parse(&to_text(&command(&CommandReply {
            ok: true,
            message: "OK: Pinged successfully!".into(),
        })));
        assert_eq!(
            ok,
            serde_json::json!({"ok": true, "message": "OK: Pinged successfully!"})
        );

        let err = parse(&to_text(&command(&CommandReply {
            ok: false,
            message: "ERROR: Unknown host name 'db9'!".into(),
        })));
        assert_eq!(err["ok"], false);
        assert_eq!(err["error"], "ERROR: Unknown host name 'db9'!");
        assert_eq!(err["message"], "ERROR: Unknown host name 'db9'!");

        let m = parse(&to_text(&mode(&ModeReply {
            mode: Mode::Manual as i32,
            passive_cause: String::new(),
        })));
        assert_eq!(
            m,
            serde_json::json!({"mode": "MANUAL", "passive_cause": null})
        );

        let e = parse(&to_text(&error("ERROR: Unknown check 'x'!")));
        assert_eq!(
            e,
            serde_json::json!({"ok": false, "error": "ERROR: Unknown check 'x'!"})
        );

        let h = parse(&to_text(&help()));
        assert_eq!(h["commands"].as_array().map(Vec::len), Some(12));
        assert_eq!(h["commands"][3]["command"], "checks");
    }
}
