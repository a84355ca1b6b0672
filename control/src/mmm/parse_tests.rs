//! The grammar of mysql-mmm's configuration files, and every way a file can be malformed.

use super::*;

/// Writes `files` (name, text) into a temporary directory and reads the first one.
fn read(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<MmmConfig, Problem>) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    let mut r = Reader::new();
    let first = dir.path().join(files[0].0);
    let result = r.read(&first).map(|()| {
        r.config.finish();
        r.config
    });
    (dir, result)
}

fn ok(files: &[(&str, &str)]) -> MmmConfig {
    match read(files) {
        (_dir, Ok(c)) => c,
        (_, Err(p)) => panic!("{p}"),
    }
}

/// The problem, with the temporary directory removed from its file name.
fn err(files: &[(&str, &str)]) -> String {
    let (dir, r) = read(files);
    match r {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(p) => p
            .to_string()
            .replace(&format!("{}/", dir.path().display()), ""),
    }
}

fn text<'a>(s: &'a Section, key: &str) -> &'a str {
    s.get(key).map(|v| v.text.as_str()).unwrap_or("<unset>")
}

#[test]
fn variables_sections_lists_and_locations() {
    let c = ok(&[(
        "m.conf",
        "# comment\n\n  active_master_role\twriter  \n<host db1>\n\tip 10.0.0.1\n\tmode master\n</host>\n\
         <role reader>\n  hosts db1 , db2,\n  ips 10.0.0.5\n</role>\n<socket/>\n<host db2/>\n",
    )]);
    assert_eq!(text(&c.globals, "active_master_role"), "writer");
    let v = c.globals.get("active_master_role").expect("set");
    assert_eq!(v.loc.line, 3);
    assert!(v.loc.file.ends_with("m.conf"));
    let db1 = c.host("db1").expect("db1");
    assert_eq!(text(db1, "ip"), "10.0.0.1");
    assert_eq!(db1.loc.as_ref().map(|l| l.line), Some(4));
    assert!(c.host("db2").is_some_and(|s| s.vars.is_empty()));
    let reader = c.role("reader").expect("role");
    assert_eq!(reader.get("hosts").expect("hosts").list(), ["db1", "db2"]);
    assert!(c.socket.is_some());
    assert!(c.monitor.is_none());
}

#[test]
fn values_keep_hashes_and_later_lines_override() {
    let c = ok(&[(
        "m.conf",
        "<host db1>\n ip 10.0.0.1\n replication_password se#cret # not a comment\n</host>\n\
         <host db1>\n ip 10.0.0.9\n</host>\n",
    )]);
    let db1 = c.host("db1").expect("db1");
    assert_eq!(text(db1, "ip"), "10.0.0.9");
    assert_eq!(db1.get("ip").map(|v| v.loc.line), Some(6));
    assert_eq!(text(db1, "replication_password"), "se#cret # not a comment");
    assert_eq!(c.hosts.len(), 1, "re-opening merges");
    let v = Value {
        text: ",a, ,b,,".into(),
        loc: db1.get("ip").expect("ip").loc.clone(),
    };
    assert_eq!(v.list(), ["", "a", "", "b"]);
}

#[test]
fn default_sections_are_templates() {
    let c = ok(&[(
        "m.conf",
        "<host default>\n agent_user a\n mysql_port 3307\n</host>\n<host db1>\n mysql_port 3306\n</host>\n\
         <host db2>\n</host>\n<check default>\n check_period 1\n</check>\n<check mysql>\n check_period 2\n</check>\n",
    )]);
    assert!(c.host("default").is_none());
    let (db1, db2) = (c.host("db1").expect("db1"), c.host("db2").expect("db2"));
    assert_eq!(
        (text(db1, "agent_user"), text(db1, "mysql_port")),
        ("a", "3306")
    );
    assert_eq!(
        (text(db2, "agent_user"), text(db2, "mysql_port")),
        ("a", "3307")
    );
    assert_eq!(
        db2.get("agent_user").map(|v| v.loc.line),
        Some(2),
        "the template's line"
    );
    let names: Vec<&str> = c.checks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["mysql", "ping", "rep_threads", "rep_backlog"]);
    assert_eq!(text(c.check("mysql").expect("mysql"), "check_period"), "2");
    for other in ["ping", "rep_threads", "rep_backlog"] {
        assert_eq!(text(c.check(other).expect(other), "check_period"), "1");
    }
}

#[test]
fn includes_are_relative_to_the_including_file() {
    let c = ok(&[
        (
            "etc/mon.conf",
            "include common\n<monitor>\n ip 127.0.0.1\n</monitor>\n",
        ),
        ("etc/common.conf", "active_master_role writer\n"),
    ]);
    let v = c.globals.get("active_master_role").expect("included");
    assert!(v.loc.file.ends_with("etc/common.conf"), "{}", v.loc);
    assert_eq!(v.loc.line, 1);
    // The same file twice (not a loop) is fine.
    ok(&[
        ("a.conf", "include b.conf\ninclude b.conf\n"),
        ("b.conf", "debug 0\n"),
    ]);
}

#[test]
fn include_problems_name_the_line() {
    assert_eq!(
        err(&[("a.conf", "# x\ninclude missing.conf\n")]),
        "a.conf:2: include missing.conf: missing.conf not found (a relative include is looked up next to the including file)"
    );
    assert_eq!(
        err(&[
            ("a.conf", "include b\n"),
            ("b.conf", "debug 0\ninclude a.conf\n")
        ]),
        "b.conf:2: include loop: a.conf includes b.conf includes a.conf"
    );
    assert_eq!(
        err(&[
            ("a.conf", "<monitor>\n include b\n</monitor>\n"),
            ("b.conf", "")
        ]),
        "a.conf:2: include inside <monitor>: mysql-mmm only reads includes at the top level"
    );
}

#[test]
fn malformed_sections() {
    for (text, want) in [
        (
            "<host db1>\n ip 10.0.0.1\n",
            "m.conf:1: section <host db1> is not closed: </host> missing before the end of",
        ),
        (
            "<host db1>\n<role writer>\n</role>\n",
            "m.conf:2: <role writer> inside <host db1>: sections cannot be nested (is a closing tag missing?)",
        ),
        (
            "debug 0\n</host>\nactive_master_role w\n",
            "m.conf:2: </host> outside a section: mysql-mmm would silently ignore the rest of the file from here",
        ),
        ("<server db1>\n</server>\n", "m.conf:1: unknown section type <server> (mysql-mmm knows role, monitor, socket, copy_method, host, check)"),
        ("<host>\n</host>\n", "m.conf:1: <host> needs a name, e.g. <host NAME>"),
        ("<monitor m1>\n</monitor>\n", "m.conf:1: <monitor> takes no name"),
        ("<check pong>\n</check>\n", "m.conf:1: unknown check 'pong' (mysql-mmm knows default, ping, mysql, rep_threads, rep_backlog)"),
        ("<host db1> # first\n</host>\n", "m.conf:1: malformed section tag '<host db1> # first'"),
        ("<host db 1>\n</host>\n", "m.conf:1: malformed section tag '<host db 1>'"),
        ("<host db1\n", "m.conf:1: malformed section tag '<host db1'"),
    ] {
        let e = err(&[("m.conf", text)]);
        assert!(e.starts_with(want), "{text:?}:\n{e}\nwant: {want}");
    }
}

#[test]
fn malformed_lines() {
    for (text, want) in [
        ("debug\n", "m.conf:1: 'debug' is not a line of mysql-mmm's configuration"),
        ("colour blue\n", "m.conf:1: unknown variable 'colour' at the top level"),
        ("<host db1>\n peer_ip 1.2.3.4\n</host>\n", "m.conf:2: unknown variable 'peer_ip' in <host db1>"),
        ("monitor 1\n", "m.conf:1: unknown variable 'monitor' at the top level ('monitor' is a section: <monitor ...>)"),
        ("include a b\n", "m.conf:1: include needs one file name, got 'a b'"),
    ] {
        let e = err(&[("m.conf", text)]);
        assert!(e.starts_with(want), "{text:?}:\n{e}\nwant: {want}");
    }
}

#[test]
fn a_closing_tag_of_another_type_closes_with_a_warning() {
    let c = ok(&[("m.conf", "<host db1>\n ip 10.0.0.1\n</role>\n")]);
    assert_eq!(c.warnings.len(), 1);
    let (loc, tag, what) = &c.warnings[0];
    assert_eq!((loc.line, tag.as_str()), (3, "</role>"));
    assert!(what.contains("closes <host db1>"), "{what}");
}

#[test]
fn a_missing_file_is_a_problem_not_a_panic() {
    let mut r = Reader::new();
    let e = r
        .read(Path::new("/nonexistent/mmm_mon.conf"))
        .expect_err("missing");
    assert_eq!(e.line, None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/mmm_mon.conf: cannot read the file: "),
        "{e}"
    );
}
