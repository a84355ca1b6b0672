//! `explain [<role>]`: if a role's owner failed now, who would get it and why not the others.
//! Not a mysql-mmm command; the text is ha's own:
//!
//! ```text
//! writer(10.0.0.100) on db1. If db1 failed now:
//!   1. db2: ONLINE, agent reachable; the role's preferred host
//!   -  db3: not in the role's hosts
//!   note: the new writer becomes writable only once db1 surely cannot write: …
//! ```
//!
//! An orphaned role says `writer(10.0.0.100) has no owner. It would go to:`; a role nobody
//! would get says `  nobody would get it`.

use serde::Serialize;

use ha_proto::{ExplainReply, HostReason, RoleExplanation};

/// The reply as text (without mmm_control's final newline; see [`super::terminal`]).
pub fn render_explain(reply: &ExplainReply) -> String {
    if !reply.ok {
        return reply.message.clone();
    }
    let mut out: Vec<String> = Vec::new();
    for x in &reply.roles {
        let role = format!("{}({})", x.role, x.ip);
        out.push(if x.owner.is_empty() {
            format!("{role} has no owner. It would go to:")
        } else {
            format!("{role} on {}. If {} failed now:", x.owner, x.owner)
        });
        if x.successors.is_empty() {
            out.push("  nobody would get it".into());
        }
        for (i, s) in x.successors.iter().enumerate() {
            out.push(format!("  {}. {}: {}", i + 1, s.host, s.why));
        }
        for p in &x.passed_over {
            out.push(format!("  -  {}: {}", p.host, p.why));
        }
        for n in &x.notes {
            out.push(format!("  note: {n}"));
        }
    }
    out.join("\n")
}

#[derive(Debug, Serialize)]
pub struct HostReasonJson {
    pub host: String,
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct RoleExplanationJson {
    pub role: String,
    pub ip: String,
    pub owner: Option<String>,
    pub successors: Vec<HostReasonJson>,
    pub passed_over: Vec<HostReasonJson>,
    pub notes: Vec<String>,
}

fn reasons(v: &[HostReason]) -> Vec<HostReasonJson> {
    v.iter()
        .map(|r| HostReasonJson {
            host: r.host.clone(),
            why: r.why.clone(),
        })
        .collect()
}

fn role_json(x: &RoleExplanation) -> RoleExplanationJson {
    RoleExplanationJson {
        role: x.role.clone(),
        ip: x.ip.clone(),
        owner: (!x.owner.is_empty()).then(|| x.owner.clone()),
        successors: reasons(&x.successors),
        passed_over: reasons(&x.passed_over),
        notes: x.notes.clone(),
    }
}

/// The role explanations of a successful reply (an ERROR reply is an `ErrorJson`).
pub fn explain_json(reply: &ExplainReply) -> Vec<RoleExplanationJson> {
    reply.roles.iter().map(role_json).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(host: &str, why: &str) -> HostReason {
        HostReason {
            host: host.into(),
            why: why.into(),
        }
    }

    #[test]
    fn text_form() {
        let reply = ExplainReply {
            ok: true,
            message: String::new(),
            roles: vec![
                RoleExplanation {
                    role: "writer".into(),
                    ip: "10.0.0.100".into(),
                    owner: "db1".into(),
                    successors: vec![reason("db2", "ONLINE, agent reachable")],
                    passed_over: vec![reason("db3", "not in the role's hosts")],
                    notes: vec!["mode MANUAL".into()],
                },
                RoleExplanation {
                    role: "reader".into(),
                    ip: "10.0.0.101".into(),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(
            render_explain(&reply),
            "writer(10.0.0.100) on db1. If db1 failed now:\n  1. db2: ONLINE, agent reachable\n  -  db3: not in the role's hosts\n  note: mode MANUAL\nreader(10.0.0.101) has no owner. It would go to:\n  nobody would get it"
        );
        let json = serde_json::to_value(explain_json(&reply)).expect("json");
        assert_eq!(json[0]["successors"][0]["host"], "db2");
        assert_eq!(json[1]["owner"], serde_json::Value::Null);
        let err = ExplainReply {
            ok: false,
            message: "ERROR: Unknown role 'x'!".into(),
            roles: vec![],
        };
        assert_eq!(render_explain(&err), "ERROR: Unknown role 'x'!");
    }
}
