//! The forms of `checks` (all hosts, one host, one check) and their errors.

use ha_acceptance::golden::{err, Golden};
use ha_acceptance::Cluster;

use super::{ctl, mask_times};

/// The messages of healthy checks: mmm's texts.
fn healthy_message(check: &str) -> &'static [&'static str] {
    match check {
        "rep_backlog" => &["OK: Backlog is null", "OK"],
        _ => &["OK"],
    }
}

/// Lines of `checks ARGS…` (masked) against (host, check) pairs in the given padding.
fn verify(
    c: &Cluster,
    g: &mut Golden,
    args: &[&str],
    pairs: &[(&str, &str)],
    (host_w, check_w): (usize, usize),
    last_nl: bool,
) {
    let o = ctl(c, args);
    check_eq!(g, (o.code, o.stderr.as_str()), (0, ""), "checks {args:?}");
    let masked = mask_times(g, &o.stdout);
    let body = if last_nl {
        masked.strip_suffix("\n\n")
    } else {
        masked.strip_suffix('\n')
    };
    let Some(body) = body else {
        let what = if last_nl {
            "no empty last line"
        } else {
            "no newline"
        };
        g.record(format!("{args:?}: {what}: {masked:?}"));
        return;
    };
    let lines: Vec<&str> = body.split('\n').collect();
    check_eq!(g, lines.len(), pairs.len(), "{args:?}: {masked}");
    for (line, (h, k)) in lines.iter().zip(pairs) {
        let prefix = format!("{h:<host_w$}  {k:<check_w$}  [last change: <time>]  ");
        let Some(msg) = line.strip_prefix(&prefix) else {
            g.record(format!("{args:?}: {line:?} does not start with {prefix:?}"));
            continue;
        };
        check!(
            g,
            healthy_message(k).contains(&msg),
            "{args:?}: {h} {k} message {msg:?}"
        );
    }
}

pub fn checks_forms(c: &Cluster, g: &mut Golden) {
    let hosts = ["db1", "db2", "db3"];
    let checks = ["ping", "mysql", "rep_threads", "rep_backlog"];
    let all: Vec<(&str, &str)> = hosts
        .iter()
        .flat_map(|h| checks.iter().map(move |k| (*h, *k)))
        .collect();
    verify(c, g, &["checks"], &all, (3, 11), true);
    verify(c, g, &["checks", "all"], &all, (3, 11), true);
    verify(c, g, &["checks", "all", "all"], &all, (3, 11), true);
    let db1: Vec<(&str, &str)> = checks.iter().map(|k| ("db1", *k)).collect();
    verify(c, g, &["checks", "db1"], &db1, (0, 11), true);
    verify(c, g, &["checks", "db1", "all"], &db1, (0, 11), true);
    let rt: Vec<(&str, &str)> = hosts.iter().map(|h| (*h, "rep_threads")).collect();
    verify(c, g, &["checks", "all", "rep_threads"], &rt, (3, 0), true);
    verify(
        c,
        g,
        &["checks", "db1", "mysql"],
        &[("db1", "mysql")],
        (0, 0),
        false,
    );
    // Exact line for one check.
    let o = ctl(c, &["checks", "db2", "ping"]);
    let masked = mask_times(g, &o.stdout);
    check_eq!(g, masked, "db2  ping  [last change: <time>]  OK\n");

    g.run(
        c,
        &[
            err(&["checks", "db9"], "ERROR: Unknown host name 'db9'!"),
            err(
                &["checks", "db9", "mysql"],
                "ERROR: Unknown host name 'db9'!",
            ),
            err(&["checks", "db1", "pong"], "ERROR: Unknown check 'pong'!"),
            err(&["checks", "all", "p.ng"], "ERROR: Unknown check 'p.ng'!"),
        ],
    );
}
