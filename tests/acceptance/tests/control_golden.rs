//! Golden output of `ha-control` against a running monitor on the lab (issue 7 item 6).
//!
//! Every command and every error path reachable on the lab topology, compared character for
//! character with mysql-mmm's texts (mmm-reference §6.2) and ha-control's exit codes (0 OK,
//! 1 ERROR reply, 2 usage, 3 unreachable); `show` lines are built independently from the lab's
//! addresses; `checks` times are masked after checking their `yyyy/MM/dd HH:mm:ss` shape. One
//! cluster serves the whole walk-through (a lab costs ~20 s); each step is labelled so a
//! failure says where it happened.
//!
//! Not reachable here (covered by the core's unit tests in monitor/core/src/tests_commands.rs
//! and ha-control's tests/cli.rs): the `prefer` lines and `Role … is assigned to preferred host`
//! (the lab config has no `prefer`), `Role … has no IP`, WAIT mode.

use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, ControlOutput, Show};
use serde_json::Value;

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

/// Exact stdout, empty stderr, exit code.
#[track_caller]
fn expect(c: &Cluster, args: &[&str], code: i32, stdout: &str) {
    let o = ctl(c, args);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (code, stdout, ""),
        "ha-control {}",
        args.join(" ")
    );
}

#[track_caller]
fn expect_ok(c: &Cluster, args: &[&str], line: &str) {
    expect(c, args, 0, &format!("{line}\n"));
}

#[track_caller]
fn expect_err(c: &Cluster, args: &[&str], line: &str) {
    expect(c, args, 1, &format!("{line}\n"));
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
/// shape; panics on a malformed one.
fn mask_times(text: &str) -> String {
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
        assert_eq!(shape, "dddd/dd/dd dd:dd:dd]", "bad time in {text:?}");
        out.push_str("<time>]");
        rest = &t[20..];
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

/// What `show` must print for the state in `s`, built from the lab's addresses and the role
/// table (`roles[].owners`), not from the host lines of the JSON.
fn expected_show(c: &Cluster, s: &Show) -> String {
    let mut out = String::new();
    if s.mode == "PASSIVE" {
        out.push_str("# --- Monitor is in PASSIVE MODE ---\n");
        out.push_str(&format!(
            "# Cause: {}\n",
            s.passive_cause.clone().unwrap_or_default()
        ));
    }
    let mut hosts: Vec<_> = c.lab.hosts().to_vec();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    for h in &hosts {
        if s.host(&h.name).is_some_and(|x| !x.agent_reachable) {
            out.push_str(&format!(
                "# Warning: agent on host {} is not reachable\n",
                h.name
            ));
        }
    }
    for h in &hosts {
        let mut roles: Vec<String> = Vec::new();
        for r in &s.roles {
            for (ip, owner) in r.ips.iter().zip(&r.owners) {
                if owner.as_deref() == Some(h.name.as_str()) {
                    roles.push(format!("{}({ip})", r.name));
                }
            }
        }
        roles.sort();
        out.push_str(&format!(
            "  {}({}) {}/{}. Roles: {}\n",
            h.name,
            h.ip,
            host_mode(&h.name),
            s.state(&h.name),
            roles.join(", ")
        ));
    }
    out.push('\n');
    out
}

/// `show` (text) equals [`expected_show`] of a JSON `show` taken around it with the same
/// content (retried while the cluster moves). Returns that state.
#[track_caller]
fn assert_show(c: &Cluster, what: &str) -> Show {
    let start = Instant::now();
    loop {
        let a = c.show().expect("show");
        let text = ctl(c, &["show"]);
        let b = c.show().expect("show");
        let stable = format!(
            "{:?}",
            (
                &a.mode,
                &a.hosts,
                &a.roles.iter().map(|r| &r.owners).collect::<Vec<_>>()
            )
        ) == format!(
            "{:?}",
            (
                &b.mode,
                &b.hosts,
                &b.roles.iter().map(|r| &r.owners).collect::<Vec<_>>()
            )
        );
        let want = expected_show(c, &a);
        if stable && text.code == 0 && text.stdout == want && text.stderr.is_empty() {
            return a;
        }
        if start.elapsed() > Duration::from_secs(15) {
            assert_eq!(
                (text.code, text.stdout.as_str(), text.stderr.as_str()),
                (0, want.as_str(), ""),
                "show ({what}), stable={stable}"
            );
            panic!("show ({what}): the cluster did not hold still");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The reader IP `host` holds (the first one).
fn reader_of(s: &Show, host: &str) -> Option<String> {
    s.roles
        .iter()
        .filter(|r| r.name == "reader")
        .flat_map(|r| r.ips.iter().zip(&r.owners))
        .find(|(_, o)| o.as_deref() == Some(host))
        .map(|(ip, _)| ip.clone())
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

#[test]
fn control_golden_output_against_a_running_monitor() {
    let t0 = Instant::now();
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let vip = c.lab.writer_vip().to_string();

    // --- local commands and usage errors (no monitor needed) ---------------------------------
    expect(&c, &["help"], 0, HELP);
    let o = c.control_raw(&["set_online"]).expect("usage");
    assert_eq!(o.code, 2, "usage error exit code: {o:?}");
    assert_eq!(o.stdout, "");
    assert_eq!(
        o.stderr,
        format!(
            "Invalid command 'set_online'\n\n{}",
            &HELP[..HELP.len() - 1]
        )
    );
    let o = c.control_raw(&["move_role", "writer"]).expect("usage");
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o
        .stderr
        .starts_with("Invalid command 'move_role writer'\n\nValid commands are:\n"));
    let o = c.control_raw(&["frobnicate"]).expect("usage");
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.starts_with("Invalid command 'frobnicate'\n\n"),
        "{o:?}"
    );
    let o = c.control_raw(&[]).expect("usage");
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (2, "", "See 'ha-control help' for usage information\n")
    );
    let o = c.control_raw(&["--json", "set_online"]).expect("usage");
    assert_eq!(o.code, 2, "{o:?}");
    let v: Value = serde_json::from_str(&o.stdout).expect("usage JSON");
    assert_eq!(
        v,
        serde_json::json!({"ok": false, "error": "Invalid command 'set_online'"})
    );

    // --- monitor unreachable: a closed port in the monitor namespace --------------------------
    let o = c
        .control_raw(&["--monitor", "127.0.0.1:9", "--timeout", "3", "ping"])
        .expect("unreachable");
    assert_eq!(o.code, 3, "{o:?}");
    assert_eq!(
        o.stdout,
        "ERROR: Can't connect to monitor daemon!\n  (tried 127.0.0.1:9: connection refused)\n"
    );
    let o = c
        .control_raw(&["--monitor", "127.0.0.1:9", "--json", "show"])
        .expect("unreachable");
    assert_eq!(o.code, 3, "{o:?}");
    let v: Value = serde_json::from_str(&o.stdout).expect("unreachable JSON");
    assert_eq!(
        v,
        serde_json::json!({
            "ok": false,
            "error": "ERROR: Can't connect to monitor daemon!",
            "address": "127.0.0.1:9",
            "cause": "connection refused",
        })
    );

    // --- ping, mode, show ---------------------------------------------------------------------
    expect_ok(&c, &["ping"], "OK: Pinged successfully!");
    expect_ok(&c, &["mode"], "ACTIVE");
    let s = assert_show(&c, "converged");
    let w = s.writer().expect("a writer");
    assert!(w == "db1" || w == "db2", "writer {w}");
    let m = if w == "db1" { "db2" } else { "db1" }.to_string();
    assert!(s.all_online());
    for h in c.lab.host_names() {
        assert_eq!(
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
    assert!(out.contains(&line), "{out:?} lacks {line:?}");

    // --- JSON shapes --------------------------------------------------------------------------
    json_shapes(&c, &w);

    // --- checks -------------------------------------------------------------------------------
    checks_forms(&c);

    // --- set_online / set_offline -------------------------------------------------------------
    expect_ok(
        &c,
        &["set_online", "db3"],
        "OK: This host is already ONLINE. Skipping command.",
    );
    expect_err(
        &c,
        &["set_online", "db9"],
        "ERROR: Unknown host name 'db9'!",
    );
    expect_err(
        &c,
        &["set_offline", "db9"],
        "ERROR: Unknown host name 'db9'!",
    );

    // --- move_role errors (ACTIVE) ------------------------------------------------------------
    expect_err(
        &c,
        &["move_role", "nosuch", "db1"],
        "ERROR: Unknown role name 'nosuch'!",
    );
    expect_err(
        &c,
        &["move_role", "writer", "db9"],
        "ERROR: Unknown host name 'db9'!",
    );
    expect_ok(
        &c,
        &["move_role", "writer", &w],
        &format!("OK: Role is on '{w}' already. Skipping command."),
    );
    expect_err(
        &c,
        &["move_role", "writer", "db3"],
        "ERROR: Host 'db3' can't handle role 'writer'. Only following hosts could: db1, db2",
    );
    expect_err(
        &c,
        &["move_role", "--force", "reader", &m],
        "ERROR: move_role --forced may be used for the active master role only!",
    );
    expect_err(
        &c,
        &["move_role", "--force", "writer", &m],
        "ERROR: Can't force move of role to host with state ONLINE.",
    );
    expect_err(
        &c,
        &["set_ip", &vip, &m],
        "ERROR: This command is only allowed in passive mode",
    );

    // --- modes: manual / active ---------------------------------------------------------------
    expect_ok(&c, &["set_active"], "OK: Already in active mode.");
    expect_ok(&c, &["set_manual"], "OK: Switched into manual mode.");
    expect_ok(&c, &["set_manual"], "OK: Already in manual mode.");
    expect_ok(&c, &["mode"], "MANUAL");
    expect_ok(&c, &["set_active"], "OK: Switched into active mode.");
    expect_ok(&c, &["mode"], "ACTIVE");

    // --- set_offline round trip ---------------------------------------------------------------
    expect_ok(
        &c,
        &["set_offline", "db3"],
        "OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!",
    );
    expect_ok(
        &c,
        &["set_offline", "db3"],
        "OK: This host is already ADMIN_OFFLINE. Skipping command.",
    );
    let s = c
        .wait_show("db3 without roles", T, |s| {
            s.state("db3") == "ADMIN_OFFLINE" && s.readers_assigned() && s.readers()["db3"] == 0
        })
        .expect("db3 offline");
    let show = assert_show(&c, "db3 ADMIN_OFFLINE");
    let db3ip = c.lab.host("db3").expect("db3").ip;
    assert!(
        ctl(&c, &["show"])
            .stdout
            .contains(&format!("  db3({db3ip}) slave/ADMIN_OFFLINE. Roles: \n")),
        "{}",
        show.brief()
    );
    expect_err(
        &c,
        &["move_role", "writer", "db3"],
        "ERROR: Can't move role to host with state ADMIN_OFFLINE.",
    );

    // --- PASSIVE mode -------------------------------------------------------------------------
    expect_ok(&c, &["set_passive"], "OK: Switched into passive mode.");
    expect_ok(&c, &["set_passive"], "OK: Already in passive mode.");
    expect_ok(&c, &["mode"], "PASSIVE");
    let (code, v) = json(&c, &["mode"]);
    assert_eq!(code, 0);
    assert_eq!(
        v,
        serde_json::json!({"mode": "PASSIVE", "passive_cause": "Admin switched to passive mode."})
    );
    let show = assert_show(&c, "passive");
    assert_eq!(
        show.passive_cause.as_deref(),
        Some("Admin switched to passive mode.")
    );
    let text = ctl(&c, &["show"]).stdout;
    assert!(
        text.starts_with(
            "# --- Monitor is in PASSIVE MODE ---\n# Cause: Admin switched to passive mode.\n  db1("
        ),
        "{text:?}"
    );
    expect_err(
        &c,
        &["move_role", "writer", &m],
        "ERROR: This command is not allowed in passive mode",
    );
    expect_err(
        &c,
        &["set_ip", "10.255.255.1", &m],
        "ERROR: Unknown ip '10.255.255.1'!",
    );
    expect_err(
        &c,
        &["set_ip", &vip, "db9"],
        "ERROR: Unknown host name 'db9'!",
    );
    expect_err(
        &c,
        &["set_ip", &vip, "db3"],
        "ERROR: Host 'db3' can't handle role 'writer'. Following hosts could: db1, db2",
    );
    let rip = reader_of(&s, &m).expect("a reader on the other master");
    expect_err(
        &c,
        &["set_ip", &rip, "db3"],
        &format!("ERROR: Host 'db3' is 'ADMIN_OFFLINE' at the moment. Can't move role with ip '{rip}' there."),
    );
    expect_ok(
        &c,
        &["set_ip", &vip, &w],
        &format!("OK: Set role 'writer({vip})' to host '{w}'."),
    );
    expect_ok(&c, &["set_active"], "OK: Switched into active mode.");
    expect_ok(&c, &["mode"], "ACTIVE");
    expect_ok(
        &c,
        &["set_online", "db3"],
        "OK: State of 'db3' changed to ONLINE. Now you can wait some time and check its new roles!",
    );
    c.wait_show("db3 back with a reader", T, |s| {
        s.all_online() && s.readers_assigned() && s.readers()["db3"] == 1
    })
    .expect("db3 online");
    assert_show(&c, "db3 back");

    // --- set_online refused while the peer's replication is broken ---------------------------
    expect_ok(
        &c,
        &["set_offline", &m],
        &format!("OK: State of '{m}' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!"),
    );
    c.lab
        .stop_io_thread(&w)
        .expect("stop IO thread on the writer");
    wait_check(&c, &w, "rep_threads", false);
    expect_err(
        &c,
        &["set_online", &m],
        &format!("ERROR: Some replication checks failed on peer '{w}'. We can't set '{m}' online now. Please, wait some time."),
    );
    c.lab.start_io_thread(&w).expect("start IO thread");
    wait_check(&c, &w, "rep_threads", true);
    expect_ok(
        &c,
        &["set_online", &m],
        &format!("OK: State of '{m}' changed to ONLINE. Now you can wait some time and check its new roles!"),
    );
    settle(&c);

    // --- balanced move_role ------------------------------------------------------------------
    expect_ok(
        &c,
        &["move_role", "reader", "db3"],
        "OK: Balanced role reader has been removed from host 'db3'. Now you can wait some time and check new roles info!",
    );
    settle(&c);

    // --- agent unreachable --------------------------------------------------------------------
    c.stop_agent(&m).expect("stop agent");
    c.wait_show("agent warning", T, |s| {
        s.host(&m).is_some_and(|h| !h.agent_reachable)
    })
    .expect("agent down seen");
    let show = assert_show(&c, "agent down");
    assert!(ctl(&c, &["show"])
        .stdout
        .starts_with(&format!("# Warning: agent on host {m} is not reachable\n")));
    assert_eq!(show.state(&m), "ONLINE");
    expect_err(
        &c,
        &["set_offline", &m],
        &format!("ERROR: Can't reach agent daemon on '{m}'! Can't switch its state!"),
    );
    expect_err(
        &c,
        &["move_role", "writer", &m],
        &format!("ERROR: Can't reach agent daemon on '{m}'! Can't move roles there!"),
    );
    c.start_agent(&m).expect("start agent");
    c.wait_show("agent back", T, |s| {
        s.hosts.iter().all(|h| h.agent_reachable)
    })
    .expect("agent up");

    // --- mysqld down on db3: HARD_OFFLINE texts ----------------------------------------------
    c.lab.stop_mysqld("db3").expect("stop mysqld");
    c.wait_show("db3 HARD_OFFLINE", T, |s| s.state("db3") == "HARD_OFFLINE")
        .expect("hard offline");
    expect_err(
        &c,
        &["set_online", "db3"],
        "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment. It can't be switched to ONLINE.",
    );
    expect_err(
        &c,
        &["set_offline", "db3"],
        "ERROR: Host 'db3' is 'HARD_OFFLINE' at the moment. It can't be switched to ADMIN_OFFLINE.",
    );
    expect_err(
        &c,
        &["move_role", "--force", "writer", "db3"],
        "ERROR: Can't force move of role to host with state HARD_OFFLINE.",
    );
    let o = ctl(&c, &["checks", "db3", "mysql"]);
    assert_eq!(o.code, 0);
    let masked = mask_times(&o.stdout);
    assert!(
        masked.starts_with("db3  mysql  [last change: <time>]  ERROR: ") && masked.ends_with('\n'),
        "{masked:?}"
    );
    assert_show(&c, "db3 HARD_OFFLINE");
    c.lab.start_mysqld("db3").expect("start mysqld");
    settle(&c);

    // --- ADMIN_OFFLINE with mysqld down: checks not ok ---------------------------------------
    expect_ok(
        &c,
        &["set_offline", "db3"],
        "OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!",
    );
    c.lab.stop_mysqld("db3").expect("stop mysqld");
    wait_check(&c, "db3", "mysql", false);
    expect_err(
        &c,
        &["set_online", "db3"],
        "ERROR: Checks ping and/or mysql are not ok for host 'db3'. It can't be switched to ONLINE.",
    );
    c.lab.start_mysqld("db3").expect("start mysqld");
    wait_check(&c, "db3", "mysql", true);
    expect_ok(
        &c,
        &["set_online", "db3"],
        "OK: State of 'db3' changed to ONLINE. Now you can wait some time and check its new roles!",
    );
    settle(&c);

    // --- a planned writer move ----------------------------------------------------------------
    expect_ok(
        &c,
        &["move_role", "writer", &m],
        &format!("OK: Role 'writer' has been moved from '{w}' to '{m}'. Now you can wait some time and check new roles info!"),
    );
    c.wait_show("writer moved", T, |s| {
        s.writer().as_deref() == Some(m.as_str())
    })
    .expect("writer moved");
    c.wait_writer_ready(&m, T).expect("new writer ready");
    settle(&c);
    let s = assert_show(&c, "after move_role");
    assert_eq!(s.writer().as_deref(), Some(m.as_str()));
    eprintln!("control golden walk-through took {:?}", t0.elapsed());
}

fn json_shapes(c: &Cluster, w: &str) {
    // show
    let (code, v) = json(c, &["show"]);
    assert_eq!(code, 0);
    assert_eq!(v["mode"], "ACTIVE");
    assert!(v["passive_cause"].is_null());
    assert_eq!(v["active_master"], w);
    assert!(v["epoch"].is_u64());
    assert!(v["network_ok"].is_boolean());
    let hosts = v["hosts"].as_array().expect("hosts[]");
    let names: Vec<&str> = hosts.iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
    for h in hosts {
        let name = h["name"].as_str().unwrap_or_default();
        let ip = c.lab.host(name).expect("host").ip.to_string();
        assert_eq!(h["ip"], ip.as_str());
        assert_eq!(h["mode"], host_mode(name));
        assert_eq!(h["state"], "ONLINE");
        assert_eq!(h["agent_reachable"], true);
        assert_eq!(h["flapping"], false);
        let roles: Vec<&str> = h["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .map(|r| r.as_str().expect("role string"))
            .collect();
        let inst = h["role_instances"].as_array().expect("role_instances");
        assert_eq!(inst.len(), roles.len());
        for (i, r) in inst.iter().zip(&roles) {
            let (rn, rip) = (
                i["role"].as_str().expect("role"),
                i["ip"].as_str().expect("ip"),
            );
            assert_eq!(format!("{rn}({rip})"), *r);
        }
        let mut sorted = roles.clone();
        sorted.sort();
        assert_eq!(roles, sorted);
        assert!(h["last_state_change"].is_string() || h["last_state_change"].is_null());
        assert!(
            h["last_state_change_unix_ms"].is_i64() || h["last_state_change_unix_ms"].is_null()
        );
        assert!(h["peer"].is_string() || h["peer"].is_null());
    }
    assert_eq!(hosts[0]["peer"], "db2");
    assert_eq!(hosts[1]["peer"], "db1");
    assert!(hosts[2]["peer"].is_null());
    let roles = v["roles"].as_array().expect("roles[]");
    let rnames: Vec<&str> = roles.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(rnames, ["writer", "reader"], "config order");
    for r in roles {
        assert!(r["mode"] == "exclusive" || r["mode"] == "balanced");
        assert!(r["hosts"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string)));
        let ips = r["ips"].as_array().expect("ips");
        let owners = r["owners"].as_array().expect("owners");
        assert_eq!(ips.len(), owners.len());
        assert!(owners.iter().all(|o| o.is_string() || o.is_null()));
        assert!(r["prefer"].is_null());
    }
    assert_eq!(roles[0]["mode"], "exclusive");
    assert_eq!(
        roles[0]["ips"],
        serde_json::json!([c.lab.writer_vip().to_string()])
    );
    assert_eq!(roles[0]["owners"], serde_json::json!([w]));

    // checks
    let (code, v) = json(c, &["checks"]);
    assert_eq!(code, 0);
    let rows = v.as_array().expect("checks is an array");
    assert_eq!(rows.len(), 12);
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
    assert_eq!(keys, want);
    for r in rows {
        assert_eq!(r["ok"], true, "{r}");
        let lc = r["last_change"].as_str().expect("last_change");
        assert!(
            lc.len() == 24 && lc.ends_with('Z') && &lc[10..11] == "T",
            "{lc}"
        );
        assert!(r["last_change_unix_ms"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000));
        assert!(r["message"].as_str().is_some_and(|m| m.starts_with("OK")));
    }

    // error replies
    let (code, v) = json(c, &["checks", "db9"]);
    assert_eq!(code, 1);
    assert_eq!(
        v,
        serde_json::json!({"ok": false, "error": "ERROR: Unknown host name 'db9'!"})
    );
    let (code, v) = json(c, &["checks", "db1", "pong"]);
    assert_eq!(code, 1);
    assert_eq!(
        v,
        serde_json::json!({"ok": false, "error": "ERROR: Unknown check 'pong'!"})
    );
    let (code, v) = json(c, &["set_online", "db9"]);
    assert_eq!(code, 1);
    assert_eq!(
        v,
        serde_json::json!({
            "ok": false,
            "message": "ERROR: Unknown host name 'db9'!",
            "error": "ERROR: Unknown host name 'db9'!",
        })
    );
    let (code, v) = json(c, &["ping"]);
    assert_eq!(code, 0);
    assert_eq!(
        v,
        serde_json::json!({"ok": true, "message": "OK: Pinged successfully!"})
    );
    let (code, v) = json(c, &["mode"]);
    assert_eq!(code, 0);
    assert_eq!(
        v,
        serde_json::json!({"mode": "ACTIVE", "passive_cause": null})
    );
    let (code, v) = json(c, &["help"]);
    assert_eq!(code, 0);
    assert_eq!(v["commands"].as_array().map(Vec::len), Some(12));
}

/// The messages of healthy checks: mmm's texts.
fn healthy_message(check: &str) -> &'static [&'static str] {
    match check {
        "rep_backlog" => &["OK: Backlog is null", "OK"],
        _ => &["OK"],
    }
}

fn checks_forms(c: &Cluster) {
    let hosts = ["db1", "db2", "db3"];
    let checks = ["ping", "mysql", "rep_threads", "rep_backlog"];
    // Lines of `out` (masked) against (host, check) pairs in the given padding.
    let verify =
        |args: &[&str], pairs: &[(&str, &str)], host_w: usize, check_w: usize, last_nl: bool| {
            let o = ctl(c, args);
            assert_eq!((o.code, o.stderr.as_str()), (0, ""), "checks {args:?}");
            let masked = mask_times(&o.stdout);
            let body = if last_nl {
                masked
                    .strip_suffix("\n\n")
                    .unwrap_or_else(|| panic!("{args:?}: no empty last line: {masked:?}"))
                    .to_string()
            } else {
                masked
                    .strip_suffix('\n')
                    .unwrap_or_else(|| panic!("{args:?}: no newline: {masked:?}"))
                    .to_string()
            };
            let lines: Vec<&str> = body.split('\n').collect();
            assert_eq!(lines.len(), pairs.len(), "{args:?}: {masked}");
            for (line, (h, k)) in lines.iter().zip(pairs) {
                let prefix = format!("{h:<host_w$}  {k:<check_w$}  [last change: <time>]  ");
                let msg = line
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("{args:?}: {line:?} does not start with {prefix:?}"));
                assert!(
                    healthy_message(k).contains(&msg),
                    "{args:?}: {h} {k} message {msg:?}"
                );
            }
        };
    let all: Vec<(&str, &str)> = hosts
        .iter()
        .flat_map(|h| checks.iter().map(move |k| (*h, *k)))
        .collect();
    verify(&["checks"], &all, 3, 11, true);
    verify(&["checks", "all"], &all, 3, 11, true);
    verify(&["checks", "all", "all"], &all, 3, 11, true);
    let db1: Vec<(&str, &str)> = checks.iter().map(|k| ("db1", *k)).collect();
    verify(&["checks", "db1"], &db1, 0, 11, true);
    verify(&["checks", "db1", "all"], &db1, 0, 11, true);
    let rt: Vec<(&str, &str)> = hosts.iter().map(|h| (*h, "rep_threads")).collect();
    verify(&["checks", "all", "rep_threads"], &rt, 3, 0, true);
    verify(
        &["checks", "db1", "mysql"],
        &[("db1", "mysql")],
        0,
        0,
        false,
    );
    // Exact line for one check.
    let o = ctl(c, &["checks", "db2", "ping"]);
    assert_eq!(
        mask_times(&o.stdout),
        "db2  ping  [last change: <time>]  OK\n"
    );

    expect_err(c, &["checks", "db9"], "ERROR: Unknown host name 'db9'!");
    expect_err(
        c,
        &["checks", "db9", "mysql"],
        "ERROR: Unknown host name 'db9'!",
    );
    expect_err(
        c,
        &["checks", "db1", "pong"],
        "ERROR: Unknown check 'pong'!",
    );
    expect_err(
        c,
        &["checks", "all", "p.ng"],
        "ERROR: Unknown check 'p.ng'!",
    );
}
