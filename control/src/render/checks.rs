//! `checks`: mmm_control's check listing in its four forms (docs/mmm-behaviour.md §6.2).
//!
//! | command                          | host column            | check column  | newline   |
//! |----------------------------------|------------------------|---------------|-----------|
//! | `checks`, `checks all [all]`     | padded to longest host | padded to 11  | every line|
//! | `checks <host> [all]`            | not padded             | padded to 11  | every line|
//! | `checks all <check>`             | padded to longest host | not padded    | every line|
//! | `checks <host> <check>`          | not padded             | not padded    | none      |
//!
//! Each line is `<host>  <check>  [last change: yyyy/MM/dd HH:mm:ss]  <message>`. The padding
//! rules are mysql-mmm's `sprintf` formats, kept as they are because operators' scripts cut
//! these columns. mysql-mmm listed hosts in hash order; ha lists them sorted (docs/product.md F1),
//! checks in the order ping, mysql, rep_threads, rep_backlog.

use ha_proto::{CheckName, CheckStatus, ChecksReply, ChecksRequest};

/// What `checks` was asked for; decides both the request and the output form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksQuery {
    /// `None` = all hosts.
    pub host: Option<String>,
    /// `None` = all checks.
    pub check: Option<CheckName>,
}

impl ChecksQuery {
    /// Interprets `checks [<host>|all [<check>|all]]`.
    ///
    /// The check name is validated here, before any network traffic, with mysql-mmm's text
    /// `ERROR: Unknown check '<c>'!` (mmm also checks it before the host). Unlike mmm, the name
    /// is compared literally, not as a regular expression (`checks all 'p.ng'` is an error).
    /// Unknown hosts are the monitor's business: it knows the configured hosts.
    pub fn parse(host: Option<&str>, check: Option<&str>) -> Result<Self, String> {
        let check = match check {
            None | Some("all") => None,
            Some(c) => match CheckName::from_mmm_name(c) {
                Some(name) => Some(name),
                None => return Err(format!("ERROR: Unknown check '{c}'!")),
            },
        };
        let host = match host {
            None | Some("all") => None,
            Some(h) => Some(h.to_string()),
        };
        Ok(ChecksQuery { host, check })
    }

    /// The gRPC request: empty host = all hosts, `UNSPECIFIED` check = all checks.
    pub fn request(&self) -> ChecksRequest {
        ChecksRequest {
            host: self.host.clone().unwrap_or_default(),
            check: self.check.unwrap_or(CheckName::Unspecified) as i32,
        }
    }
}

/// Position of a check in mmm's display order (unknown values last).
fn check_rank(c: CheckName) -> usize {
    CheckName::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(CheckName::ALL.len())
}

/// The entries of `reply` that answer `q`, sorted by host then mmm's check order.
pub fn selected<'a>(reply: &'a ChecksReply, q: &ChecksQuery) -> Vec<&'a CheckStatus> {
    let mut rows: Vec<&CheckStatus> = reply
        .checks
        .iter()
        .filter(|c| q.host.as_deref().is_none_or(|h| c.host == h))
        .filter(|c| q.check.is_none_or(|k| c.check() == k))
        .collect();
    rows.sort_by(|a, b| {
        (a.host.as_str(), check_rank(a.check())).cmp(&(b.host.as_str(), check_rank(b.check())))
    });
    rows
}

/// The `checks` reply text, formatting times with `time` (Unix ms → `yyyy/MM/dd HH:mm:ss`).
///
/// An ERROR reply (`ok == false`) is its message verbatim.
pub fn render_checks_with(
    reply: &ChecksReply,
    q: &ChecksQuery,
    time: &dyn Fn(i64) -> String,
) -> String {
    if !reply.ok {
        return reply.message.clone();
    }
    let rows = selected(reply, q);
    let line = |c: &CheckStatus, host_w: usize, check_w: usize| {
        format!(
            "{:<host_w$}  {:<check_w$}  [last change: {}]  {}",
            c.host,
            c.check().mmm_name(),
            time(c.last_change_unix_ms),
            c.message
        )
    };
    match (&q.host, q.check) {
        // One host, one check: a single line without newline.
        (Some(_), Some(_)) => rows.first().map(|c| line(c, 0, 0)).unwrap_or_default(),
        (host, check) => {
            let host_w = match host {
                Some(_) => 0,
                None => rows
                    .iter()
                    .map(|c| c.host.chars().count())
                    .max()
                    .unwrap_or(0),
            };
            let check_w = if check.is_some() { 0 } else { 11 };
            rows.iter()
                .map(|c| line(c, host_w, check_w) + "\n")
                .collect()
        }
    }
}

/// The `checks` reply text with times in the local time zone, as mmm_control shows them.
pub fn render_checks(reply: &ChecksReply, q: &ChecksQuery) -> String {
    render_checks_with(reply, q, &crate::timefmt::mmm_local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::mmm_utc;

    /// 2024-05-01 12:00:00 UTC
    const T0: i64 = 1_714_564_800_000;

    fn status(host: &str, check: CheckName, ok: bool, message: &str) -> CheckStatus {
        CheckStatus {
            host: host.into(),
            check: check as i32,
            ok,
            last_change_unix_ms: T0,
            message: message.into(),
        }
    }

    /// Every check of `hosts`, in scrambled order.
    fn reply(hosts: &[&str]) -> ChecksReply {
        let mut checks = Vec::new();
        for c in CheckName::ALL.iter().rev() {
            for h in hosts.iter().rev() {
                checks.push(status(h, *c, true, &format!("OK: {} {}", c.mmm_name(), h)));
            }
        }
        ChecksReply {
            ok: true,
            message: String::new(),
            checks,
        }
    }

    fn render(r: &ChecksReply, host: Option<&str>, check: Option<&str>) -> String {
        let q = ChecksQuery::parse(host, check).expect("valid query");
        render_checks_with(r, &q, &mmm_utc)
    }

    #[test]
    fn all_hosts_all_checks_pads_both_columns() {
        let r = reply(&["db1", "db10"]);
        let expected = "\
db1   ping         [last change: 2024/05/01 12:00:00]  OK: ping db1
db1   mysql        [last change: 2024/05/01 12:00:00]  OK: mysql db1
db1   rep_threads  [last change: 2024/05/01 12:00:00]  OK: rep_threads db1
db1   rep_backlog  [last change: 2024/05/01 12:00:00]  OK: rep_backlog db1
db10  ping         [last change: 2024/05/01 12:00:00]  OK: ping db10
db10  mysql        [last change: 2024/05/01 12:00:00]  OK: mysql db10
db10  rep_threads  [last change: 2024/05/01 12:00:00]  OK: rep_threads db10
db10  rep_backlog  [last change: 2024/05/01 12:00:00]  OK: rep_backlog db10
";
        assert_eq!(render(&r, None, None), expected);
        assert_eq!(render(&r, Some("all"), None), expected);
        assert_eq!(render(&r, Some("all"), Some("all")), expected);
    }

    #[test]
    fn one_host_all_checks_pads_only_the_check() {
        let mut r = reply(&["db10"]);
        r.checks.retain(|c| c.host == "db10");
        let expected = "\
db10  ping         [last change: 2024/05/01 12:00:00]  OK: ping db10
db10  mysql        [last change: 2024/05/01 12:00:00]  OK: mysql db10
db10  rep_threads  [last change: 2024/05/01 12:00:00]  OK: rep_threads db10
db10  rep_backlog  [last change: 2024/05/01 12:00:00]  OK: rep_backlog db10
";
        assert_eq!(render(&r, Some("db10"), None), expected);
        assert_eq!(render(&r, Some("db10"), Some("all")), expected);
    }

    #[test]
    fn all_hosts_one_check_pads_only_the_host() {
        let mut r = reply(&["db1", "db10", "db2"]);
        r.checks.retain(|c| c.check() == CheckName::Mysql);
        assert_eq!(
            render(&r, Some("all"), Some("mysql")),
            "\
db1   mysql  [last change: 2024/05/01 12:00:00]  OK: mysql db1
db10  mysql  [last change: 2024/05/01 12:00:00]  OK: mysql db10
db2   mysql  [last change: 2024/05/01 12:00:00]  OK: mysql db2
"
        );
    }

    #[test]
    fn one_host_one_check_is_one_line_without_newline() {
        let mut r = reply(&["db1"]);
        r.checks.retain(|c| c.check() == CheckName::RepBacklog);
        r.checks[0].ok = false;
        r.checks[0].message = "ERROR: Backlog is 300".into();
        assert_eq!(
            render(&r, Some("db1"), Some("rep_backlog")),
            "db1  rep_backlog  [last change: 2024/05/01 12:00:00]  ERROR: Backlog is 300"
        );
    }

    #[test]
    fn unknown_check_is_refused_before_asking() {
        assert_eq!(
            ChecksQuery::parse(Some("db1"), Some("pong")),
            Err("ERROR: Unknown check 'pong'!".to_string())
        );
        assert_eq!(
            ChecksQuery::parse(Some("all"), Some("p.ng")),
            Err("ERROR: Unknown check 'p.ng'!".to_string())
        );
    }

    #[test]
    fn request_mapping() {
        let q = ChecksQuery::parse(Some("all"), Some("all")).expect("valid");
        assert_eq!(q.request().host, "");
        assert_eq!(q.request().check, CheckName::Unspecified as i32);
        let q = ChecksQuery::parse(Some("db2"), Some("rep_threads")).expect("valid");
        assert_eq!(q.request().host, "db2");
        assert_eq!(q.request().check, CheckName::RepThreads as i32);
    }

    #[test]
    fn error_reply_is_printed_verbatim() {
        let r = ChecksReply {
            ok: false,
            message: "ERROR: Unknown host name 'db9'!".into(),
            checks: vec![],
        };
        assert_eq!(
            render(&r, Some("db9"), None),
            "ERROR: Unknown host name 'db9'!"
        );
    }
}
