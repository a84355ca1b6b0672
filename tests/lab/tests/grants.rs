//! The lab's accounts can do exactly what ha needs, verified by trying over TCP from the
//! namespaces the daemons run in (agent: its own host via 127.0.0.1; monitor: `mon`).

use std::time::Duration;

use ha_lab::{creds, wait_until, Lab, LabOptions, Output};

fn as_user(lab: &Lab, node: &str, host: &str, user: &str, pw: &str, sql: &str) -> Output {
    lab.exec(
        node,
        &[
            "mariadb",
            "--no-defaults",
            "--connect-timeout=5",
            "-h",
            host,
            "-u",
            user,
            &format!("-p{pw}"),
            "-N",
            "-B",
            "-e",
            sql,
        ],
    )
    .unwrap()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.success(), "expected success, got: {}", o.stderr);
    o.stdout
}

#[track_caller]
fn denied(o: Output) {
    assert!(
        !o.success(),
        "expected access denied, got success: {}",
        o.stdout
    );
    assert!(
        o.stderr.contains("denied") || o.stderr.contains("1227") || o.stderr.contains("1142"),
        "{}",
        o.stderr
    );
}

#[test]
fn accounts_have_exactly_the_needed_privileges() {
    let lab = Lab::start(LabOptions::default()).unwrap();
    let agent = |h: &str, sql: &str| {
        as_user(
            &lab,
            h,
            "127.0.0.1",
            creds::AGENT_USER,
            creds::AGENT_PASSWORD,
            sql,
        )
    };
    let db1 = lab.host("db1").unwrap().ip.to_string();
    let db3 = lab.host("db3").unwrap().ip.to_string();

    // --- ha_agent (on db3, a replica of db1)
    ok(agent(
        "db3",
        "SET GLOBAL read_only = 0; SET GLOBAL read_only = 1",
    ));
    ok(agent("db3", "SHOW SLAVE STATUS"));
    ok(agent("db3", "SHOW MASTER STATUS"));
    ok(agent(
        "db3",
        "SELECT @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_slave_pos, @@GLOBAL.gtid_current_pos",
    ));
    ok(agent(
        "db3",
        &format!(
            "STOP SLAVE; SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_slave_pos; \
             CHANGE MASTER TO MASTER_HOST='{db1}', MASTER_PORT=3306, MASTER_USER='{}', \
             MASTER_PASSWORD='{}', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos; START SLAVE; \
             SELECT MASTER_GTID_WAIT(@@GLOBAL.gtid_slave_pos, 1)",
            creds::REPL_USER,
            creds::REPL_PASSWORD
        ),
    ));
    lab.wait_replication_running(Duration::from_secs(10))
        .unwrap();
    // Sees and kills an application connection.
    let client = lab
        .spawn_in(
            "cli",
            "mariadb",
            [
                "--no-defaults",
                "-h",
                &db3,
                "-u",
                creds::APP_USER,
                &format!("-p{}", creds::APP_PASSWORD),
                "hatest",
                "-e",
                "SELECT SLEEP(60)",
            ],
            &[],
        )
        .unwrap();
    let id = wait_until(
        "app connection visible to the agent",
        Duration::from_secs(10),
        || {
            let out = agent("db3", "SHOW FULL PROCESSLIST");
            Ok(out
                .stdout
                .lines()
                .find(|l| l.split('\t').nth(1) == Some(creds::APP_USER))
                .and_then(|l| l.split('\t').next().map(str::to_string)))
        },
    )
    .unwrap();
    ok(agent("db3", &format!("KILL {id}")));
    wait_until("killed client exits", Duration::from_secs(10), || {
        Ok((!client.is_running()).then_some(()))
    })
    .unwrap();
    // Nothing broader.
    denied(agent("db3", "SELECT * FROM hatest.t"));
    denied(agent("db3", "CREATE USER 'evil'@'%'"));
    // (CONNECTION ADMIN also allows connection variables such as max_connections; that is
    // inherent to the privilege.)
    denied(agent(
        "db3",
        "SET GLOBAL innodb_flush_log_at_trx_commit = 2",
    ));
    denied(agent("db3", "SET GLOBAL sync_binlog = 0"));

    // --- ha_monitor (from the monitor namespace)
    let mon = |sql: &str| {
        as_user(
            &lab,
            "mon",
            &db1,
            creds::MONITOR_USER,
            creds::MONITOR_PASSWORD,
            sql,
        )
    };
    assert_eq!(ok(mon("SELECT 1")).trim(), "1");
    ok(mon("SHOW SLAVE STATUS"));
    denied(mon("SET GLOBAL read_only = 0"));
    denied(mon("SHOW MASTER STATUS"));
    denied(mon("SELECT * FROM hatest.t"));

    // --- app (from the client namespace)
    lab.make_writable("db1").unwrap();
    let app = |sql: &str| as_user(&lab, "cli", &db1, creds::APP_USER, creds::APP_PASSWORD, sql);
    ok(app(
        "INSERT INTO hatest.t (v) VALUES ('app'); SELECT COUNT(*) FROM hatest.t",
    ));
    denied(app("CREATE TABLE hatest.x (i INT)"));
    denied(app("SHOW SLAVE STATUS"));
    denied(app("SELECT * FROM mysql.user"));

    // --- ha_repl can only replicate
    let repl = as_user(
        &lab,
        "db2",
        &db1,
        creds::REPL_USER,
        creds::REPL_PASSWORD,
        "SELECT * FROM hatest.t",
    );
    denied(repl);
}
