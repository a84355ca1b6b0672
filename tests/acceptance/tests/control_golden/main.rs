//! Golden output of `ha-control` against a running monitor on the lab (issue 7 item 6).
//!
//! Every command and every error path reachable on the lab topology, compared character for
//! character with mysql-mmm's texts (docs/mmm-behaviour.md §6.2) and ha-control's exit codes (0 OK,
//! 1 ERROR reply, 2 usage, 3 unreachable); `show` lines are built independently from the lab's
//! addresses; `checks` times are masked after checking their `yyyy/MM/dd HH:mm:ss` shape. One
//! cluster serves the whole walk-through (a lab costs ~20 s). The expected outputs are tables of
//! `ha_acceptance::golden::Case`s run in order between the steps that change state; every
//! mismatch is collected under its step's label and the test fails once at the end, listing all
//! of them (waits and set-up steps the walk-through cannot continue without still stop it).
//!
//! Not reachable here (covered by the core's unit tests in monitor/core/src/tests_commands.rs
//! and ha-control's tests/cli_commands.rs): the `prefer` lines and `Role … is assigned to
//! preferred host` (the lab config has no `prefer`), `Role … has no IP`, WAIT mode.

use std::time::{Duration, Instant};

use ha_acceptance::golden::{err, ok, Case, Golden, Text};
use ha_acceptance::{Cluster, ClusterOptions, ControlOutput};
use serde_json::{json, Value};

/// `assert!` that records a mismatch in a [`Golden`] instead of panicking.
macro_rules! check {
    ($g:expr, $cond:expr $(,)?) => {
        $g.check($cond, || format!("line {}: {}", line!(), stringify!($cond)))
    };
    ($g:expr, $cond:expr, $($fmt:tt)+) => {
        $g.check($cond, || format!("line {}: {}", line!(), format!($($fmt)+)))
    };
}

/// `assert_eq!` that records a mismatch in a [`Golden`] instead of panicking.
macro_rules! check_eq {
    ($g:expr, $got:expr, $want:expr $(,)?) => {
        $g.eq(&$got, &$want, || {
            format!("line {}: {} == {}", line!(), stringify!($got), stringify!($want))
        })
    };
    ($g:expr, $got:expr, $want:expr, $($fmt:tt)+) => {
        $g.eq(&$got, &$want, || format!("line {}: {}", line!(), format!($($fmt)+)))
    };
}

mod checks;
mod json_shapes;
mod show;

use show::{assert_show, reader_of};

const T: Duration = Duration::from_secs(60);

/// mmm_control's help text plus mmm_control's final newline.
const HELP: &str = "\
Valid commands are:
    help                              - show this message
    ping                              - ping monitor
    show                              - show status
    checks [<host>|all [<check>|all]] - show checks status
    set_online <host>                 - set host <host> online
    set_offline <host>                - set host <host> offline
    mode                              - print current mode.
    set_active                        - switch into active mode.
    set_manual                        - switch into manual mode.
    set_passive                       - switch into passive mode.
    move_role [--force] <role> <host> - move exclusive role <role> to host <host>
                                        (Only use --force if you know what you are doing!)
    set_ip <ip> <host>                - set role with ip <ip> to host <host>

";

fn ctl(c: &Cluster, args: &[&str]) -> ControlOutput {
    c.control(args)
        .unwrap_or_else(|e| panic!("ha-control {}: {e}", args.join(" ")))
}

fn json(c: &Cluster, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = ctl(c, &a);
    let v = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("ha-control {}: bad JSON ({e}): {}", a.join(" "), o.stdout));
    (o.code, v)
}

/// Replaces every `[last change: yyyy/MM/dd HH:mm:ss]` time by `<time>` after checking its
/// shape; records a malformed one.
fn mask_times(g: &mut Golden, text: &str) -> String {
    const TAG: &str = "[last change: ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(TAG) {
        out.push_str(&rest[..i + TAG.len()]);
        let t = &rest[i + TAG.len()..];
        let stamp: Vec<char> = t.chars().take(20).collect();
        let shape: String = stamp
            .iter()
            .map(|ch| if ch.is_ascii_digit() { 'd' } else { *ch })
            .collect();
        check_eq!(g, shape, "dddd/dd/dd dd:dd:dd]", "bad time in {text:?}");
        out.push_str("<time>]");
        rest = t.get(20..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// `master` for the lab's db1/db2, `slave` for the others.
fn host_mode(name: &str) -> &'static str {
    if name == "db1" || name == "db2" {
        "master"
    } else {
        "slave"
    }
}

fn check_ok(c: &Cluster, host: &str, check: &str) -> Option<bool> {
    let (code, v) = json(c, &["checks", host, check]);
    if code != 0 {
        return None;
    }
    v.get(0).and_then(|e| e["ok"].as_bool())
}

#[track_caller]
fn wait_check(c: &Cluster, host: &str, check: &str, ok: bool) {
    c.wait_for(&format!("checks {host} {check} ok={ok}"), T, |c| {
        Ok(check_ok(c, host, check) == Some(ok))
    })
    .expect("check state");
}

/// Sets AWAITING_RECOVERY hosts online until every host is ONLINE with roles.
fn settle(c: &Cluster) {
    c.wait_for("every host ONLINE", T, |c| {
        let s = c.show()?;
        for h in &s.hosts {
            if h.state == "AWAITING_RECOVERY" {
                let _ = c.control(&["set_online", &h.name]);
            }
        }
        Ok(s.all_online() && s.writer().is_some() && s.readers_assigned())
    })
    .expect("settle");
}

const OFFLINE_OK: &str = "Now you can wait some time and check all roles!";
const ONLINE_OK: &str = "Now you can wait some time and check its new roles!";

#[test]
fn control_golden_output_against_a_running_monitor() {
    let t0 = Instant::now();
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let vip = c.lab.writer_vip().to_string();
    let mut g = Golden::new();

    g.step("local commands and usage errors (no monitor needed)");
    let usage = |args: &[&str], stderr: Text| Case::new(args, 2, "").raw().stderr(stderr);
    g.run(
        &c,
        &[
            Case::new(&["help"], 0, HELP),
            usage(
                &["set_online"],
                Text::Exact(format!(
                    "Invalid command 'set_online'\n\n{}",
                    &HELP[..HELP.len() - 1]
                )),
            ),
            usage(
                &["move_role", "writer"],
                Text::Prefix("Invalid command 'move_role writer'\n\nValid commands are:\n".into()),
            )
            .stdout(Text::Any),
            usage(
                &["frobnicate"],
                Text::Prefix("Invalid command 'frobnicate'\n\n".into()),
            )
            .stdout(Text::Any),
            usage(
                &[],
                Text::Exact("See 'ha-control help' for usage information\n".into()),
            ),
            Case::json(
                &["--json", "set_online"],
                2,
                json!({"ok": false, "error": "Invalid command 'set_online'"}),
            )
            .raw(),
        ],
    );

    g.step("monitor unreachable: a closed port in the monitor namespace");
    g.run(
        &c,
        &[
            Case::new(
                &["--monitor", "127.0.0.1:9", "--timeout", "3", "ping"],
                3,
                "ERROR: Can't connect to monitor daemon!\n  (tried 127.0.0.1:9: connection refused)\n",
            )
            .raw()
            .stderr(Text::Any),
            Case::json(
                &["--monitor", "127.0.0.1:9", "--json", "show"],
                3,
                json!({
                    "ok": false,
                    "error": "ERROR: Can't connect to monitor daemon!",
                    "address": "127.0.0.1:9",
                    "cause": "connection refused",
                }),
            )
            .raw(),
        ],
    );

    g.step("ping, mode, show");
    g.run(
        &c,
        &[
            ok(&["ping"], "OK: Pinged successfully!"),
            ok(&["mode"], "ACTIVE"),
        ],
    );
    let s = assert_show(&c, &mut g, "converged");
    let w = s.writer().expect("a writer");
    check!(g, w == "db1" || w == "db2", "writer {w}");
    let m = if w == "db1" { "db2" } else { "db1" }.to_string();
    check!(g, s.all_online());
    for h in c.lab.host_names() {
        check_eq!(
            g,
            s.readers().get(&h),
            Some(&1),
            "one reader each: {}",
            s.brief()
        );
    }
    // The writer's line, spelled out.
    let out = ctl(&c, &["show"]).stdout;
    let wip = c.lab.host(&w).expect("host").ip;
    let line = format!(
        "  {w}({wip}) master/ONLINE. Roles: reader({}), writer({vip})\n",
        reader_of(&s, &w).expect("writer's reader")
    );
    check!(g, out.contains(&line), "{out:?} lacks {line:?}");

    g.step("JSON shapes");
    json_shapes::json_shapes(&c, &mut g, &w);

    g.step("checks");
    checks::checks_forms(&c, &mut g);

    g.step("set_online / set_offline, move_role errors (ACTIVE), modes");
    g.run(
        &c,
        &[
            ok(&["set_online", "db3"], "OK: This host is already ONLINE. Skipping command."),
            err(&["set_online", "db9"], "ERROR: Unknown host name 'db9'!"),
            err(&["set_offline", "db9"], "ERROR: Unknown host name 'db9'!"),
            err(&["move_role", "nosuch", "db1"], "ERROR: Unknown role name 'nosuch'!"),
            err(&["move_role", "writer", "db9"], "ERROR: Unknown host name 'db9'!"),
            ok(
                &["move_role", "writer", &w],
                &format!("OK: Role is on '{w}' already. Skipping command."),
            ),
            err(
                &["move_role", "writer", "db3"],
                "ERROR: Host 'db3' can't handle role 'writer'. Only following hosts could: db1, db2",
            ),
            err(
                &["move_role", "--force", "reader", &m],
                "ERROR: move_role --forced may be used for the active master role only!",
            ),
            err(
                &["move_role", "--force", "writer", &m],
                "ERROR: Can't force move of role to host with state ONLINE.",
            ),
            err(
                &["set_ip", &vip, &m],
                "ERROR: This command is only allowed in passive mode",
            ),
            ok(&["set_active"], "OK: Already in active mode."),
            ok(&["set_manual"], "OK: Switched into manual mode."),
            ok(&["set_manual"], "OK: Already in manual mode."),
            ok(&["mode"], "MANUAL"),
            ok(&["set_active"], "OK: Switched into active mode."),
            ok(&["mode"], "ACTIVE"),
        ],
    );

    g.step("set_offline round trip");
    g.run(
        &c,
        &[
            ok(
                &["set_offline", "db3"],
                &format!("OK: State of 'db3' changed to ADMIN_OFFLINE. {OFFLINE_OK}"),
            ),
            ok(
                &["set_offline", "db3"],
                "OK: This host is already ADMIN_OFFLINE. Skipping command.",
            ),
        ],
    );
    let s = c
        .wait_show("db3 without roles", T, |s| {
            s.state("db3") == "ADMIN_OFFLINE" && s.readers_assigned() && s.readers()["db3"] == 0
        })
        .expect("db3 offline");
    let show = assert_show(&c, &mut g, "db3 ADMIN_OFFLINE");
    let db3ip = c.lab.host("db3").expect("db3").ip;
    check!(
        g,
        ctl(&c, &["show"])
            .stdout
            .contains(&format!("  db3({db3ip}) slave/ADMIN_OFFLINE. Roles: \n")),
        "{}",
        show.brief()
    );
    g.run(
        &c,
        &[err(
            &["move_role", "writer", "db3"],
            "ERROR: Can't move role to host with state ADMIN_OFFLINE.",
        )],
    );

    g.step("PASSIVE mode");
    let passive = "Admin switched to passive mode.";
    g.run(
        &c,
        &[
            ok(&["set_passive"], "OK: Switched into passive mode."),
            ok(&["set_passive"], "OK: Already in passive mode."),
            ok(&["mode"], "PASSIVE"),
            Case::json(
                &["--json", "mode"],
                0,
                json!({"mode": "PASSIVE", "passive_cause": passive}),
            ),
        ],
    );
    let show = assert_show(&c, &mut g, "passive");
    check_eq!(g, show.passive_cause.as_deref(), Some(passive));
    let text = ctl(&c, &["show"]).stdout;
    check!(
        g,
        text.starts_with(&format!(
            "# --- Monitor is in PASSIVE MODE ---\n# Cause: {passive}\n  db1("
        )),
        "{text:?}"
    );
    let rip = reader_of(&s, &m).expect("a reader on the other master");
    g.run(
        &c,
        &[
            err(
                &["move_role", "writer", &m],
                "ERROR: This command is not allowed in passive mode",
            ),
            err(&["set_ip", "10.255.255.1", &m], "ERROR: Unknown ip '10.255.255.1'!"),
            err(&["set_ip", &vip, "db9"], "ERROR: Unknown host name 'db9'!"),
            err(
                &["set_ip", &vip, "db3"],
                "ERROR: Host 'db3' can't handle role 'writer'. Following hosts could: db1, db2",
            ),
            err(
                &["set_ip", &rip, "db3"],
                &format!("ERROR: Host 'db3' is 'ADMIN_OFFLINE' at the moment. Can't move role with ip '{rip}' there."),
            ),
            ok(
                &["set_ip", &vip, &w],
                &format!("OK: Set role 'writer({vip})' to host '{w}'."),
            ),
            ok(&["set_active"], "OK: Switched into active mode."),
            ok(&["mode"], "ACTIVE"),
            ok(
                &["set_online", "db3"],
                &format!("OK: State of 'db3' changed to ONLINE. {ONLINE_OK}"),
            ),
        ],
    );
    c.wait_show("db3 back with a reader", T, |s| {
        s.all_online() && s.readers_assigned() && s.readers()["db3"] == 1
    })
    .expect("db3 online");
    assert_show(&c, &mut g, "db3 back");

    g.step("set_online refused while the peer's replication is broken");
    g.run(
        &c,
        &[ok(
            &["set_offline", &m],
            &format!("OK: State of '{m}' changed to ADMIN_OFFLINE. {OFFLINE_OK}"),
        )],
    );
    c.lab
        .stop_io_thread(&w)
        .expect("stop IO thread on the writer");
    wait_check(&c, &w, "rep_threads", false);
    g.run(
        &c,
        &[err(
            &["set_online", &m],
            &format!("ERROR: Some replication checks failed on peer '{w}'. We can't set '{m}' online now. Please, wait some time."),
        )],
    );
    c.lab.start_io_thread(&w).expect("start IO thread");
    wait_check(&c, &w, "rep_threads", true);
    g.run(
        &c,
        &[ok(
            &["set_online", &m],
            &format!("OK: State of '{m}' changed to ONLINE. {ONLINE_OK}"),
        )],
    );
    settle(&c);

    g.step("balanced move_role");
    g.run(
        &c,
        &[ok(
            &["move_role", "reader", "db3"],
            "OK: Balanced role reader has been removed from host 'db3'. Now you can wait some time and check new roles info!",
        )],
    );
    settle(&c);

    g.step("agent unreachable");
    c.stop_agent(&m).expect("stop agent");
    c.wait_show("agent warning", T, |s| {
        s.host(&m).is_some_and(|h| !h.agent_reachable)
    })
    .expect("agent down seen");
    let show = assert_show(&c, &mut g, "agent down");
    check!(
        g,
        ctl(&c, &["show"])
            .stdout
            .starts_with(&format!("# Warning: agent on host {m} is not reachable\n"))
    );
    check_eq!(g, show.state(&m), "ONLINE");
    g.run(
        &c,
        &[
            err(
                &["set_offline", &m],
                &format!("ERROR: Can't reach agent daemon on '{m}'! Can't switch its state!"),
            ),
            err(
                &["move_role", "writer", &m],
                &format!("ERROR: Can't reach agent daemon on '{m}'! Can't move roles there!"),
            ),
        ],
    );
    c.start_agent(&m).expect("start agent");
    c.wait_show("agent back", T, |s| {
        s.hosts.iter().all(|h| h.agent_reachable)
    })
    .expect("agent up");

    g.step("mysqld down on db3: HARD_OFFLINE texts");
    c.lab.stop_mysqld("db3").expect("stop mysqld");
    c.wait_show("db3 HARD_OFFLINE", T, |s| s.state("db3") == "HARD_OFFLINE")
        .expect("hard offline");
    let hard = "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment.";
    g.run(
        &c,
        &[
            err(
                &["set_online", "db3"],
                &format!("{hard} It can't be switched to ONLINE."),
            ),
            err(
                &["set_offline", "db3"],
                &format!("{hard} It can't be switched to ADMIN_OFFLINE."),
            ),
            err(
                &["move_role", "--force", "writer", "db3"],
                "ERROR: Can't force move of role to host with state HARD_OFFLINE.",
            ),
        ],
    );
    let o = ctl(&c, &["checks", "db3", "mysql"]);
    check_eq!(g, o.code, 0);
    let masked = mask_times(&mut g, &o.stdout);
    check!(
        g,
        masked.starts_with("db3  mysql  [last change: <time>]  ERROR: ") && masked.ends_with('\n'),
        "{masked:?}"
    );
    assert_show(&c, &mut g, "db3 HARD_OFFLINE");
    c.lab.start_mysqld("db3").expect("start mysqld");
    settle(&c);

    g.step("ADMIN_OFFLINE with mysqld down: checks not ok");
    g.run(
        &c,
        &[ok(
            &["set_offline", "db3"],
            &format!("OK: State of 'db3' changed to ADMIN_OFFLINE. {OFFLINE_OK}"),
        )],
    );
    c.lab.stop_mysqld("db3").expect("stop mysqld");
    wait_check(&c, "db3", "mysql", false);
    g.run(
        &c,
        &[err(
            &["set_online", "db3"],
            "ERROR: Checks ping and/or mysql are not ok for host 'db3'. It can't be switched to ONLINE.",
        )],
    );
    c.lab.start_mysqld("db3").expect("start mysqld");
    wait_check(&c, "db3", "mysql", true);
    g.run(
        &c,
        &[ok(
            &["set_online", "db3"],
            &format!("OK: State of 'db3' changed to ONLINE. {ONLINE_OK}"),
        )],
    );
    settle(&c);

    g.step("a planned writer move");
    g.run(
        &c,
        &[ok(
            &["move_role", "writer", &m],
            &format!("OK: Role 'writer' has been moved from '{w}' to '{m}'. Now you can wait some time and check new roles info!"),
        )],
    );
    c.wait_show("writer moved", T, |s| {
        s.writer().as_deref() == Some(m.as_str())
    })
    .expect("writer moved");
    c.wait_writer_ready(&m, T).expect("new writer ready");
    settle(&c);
    let s = assert_show(&c, &mut g, "after move_role");
    check_eq!(g, s.writer().as_deref(), Some(m.as_str()));
    eprintln!("control golden walk-through took {:?}", t0.elapsed());
    g.finish();
}
