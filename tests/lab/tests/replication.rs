//! The lab's cluster: isolation rules, accounts, topology, and replication flowing
//! db1→db2, db1→db3 and db2→db1 (→db3 through log_slave_updates).

use std::time::Duration;

use ha_lab::{wait_until, Cmd, Lab, LabOptions};

fn count_on(lab: &Lab, host: &str, v: &str) -> u64 {
    lab.sql_value(
        host,
        &format!("SELECT COUNT(*) FROM hatest.t WHERE v = '{v}'"),
    )
    .unwrap()
    .unwrap()
    .parse()
    .unwrap()
}

fn wait_row(lab: &Lab, host: &str, v: &str) {
    wait_until(
        &format!("row {v} on {host}"),
        Duration::from_secs(10),
        || Ok((count_on(lab, host, v) == 1).then_some(())),
    )
    .unwrap();
}

#[test]
fn topology_isolation_and_replication_flows() {
    let t0 = std::time::Instant::now();
    let lab = Lab::start(LabOptions::default()).expect("lab starts");
    let started = t0.elapsed();
    eprintln!("lab {} up in {started:?}", lab.prefix());
    assert!(
        started < Duration::from_secs(15),
        "3-host lab took {started:?}"
    );

    // Isolation: no default route in any namespace, no address on the bridge.
    for n in lab.nodes() {
        let routes = Cmd::new("ip")
            .args(["-n", &n.ns, "route", "show"])
            .run()
            .unwrap()
            .stdout;
        assert!(!routes.contains("default"), "{}: {routes}", n.ns);
        assert_eq!(lab.ips(&n.name).unwrap(), vec![n.ip], "{}", n.name);
    }
    let br = Cmd::new("ip")
        .args(["-o", "addr", "show", "dev", lab.bridge()])
        .run()
        .unwrap()
        .stdout;
    assert!(!br.contains("inet"), "bridge has an address: {br}");

    // Everyone read-only; semi-sync on; only the master candidates (db1, db2) acknowledge, so
    // an acknowledged write is always on the host ha would promote.
    for h in lab.hosts() {
        assert!(
            lab.read_only(&h.name).unwrap(),
            "{} writable at start",
            h.name
        );
        let v = lab
            .sql_value(&h.name, "SELECT @@rpl_semi_sync_master_enabled + @@rpl_semi_sync_slave_enabled + @@gtid_strict_mode + @@log_slave_updates")
            .unwrap();
        let expected = if h.server_id <= 2 { "4" } else { "3" };
        assert_eq!(v.as_deref(), Some(expected), "{}", h.name);
    }
    assert!(lab.writable_hosts().is_empty());

    // Only our accounts; no anonymous user.
    let users: Vec<String> = lab
        .sql(
            "db1",
            "SELECT CONCAT(User,'@',Host) FROM mysql.user ORDER BY 1",
        )
        .unwrap()
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(
        users,
        [
            "app@%",
            "ha_agent@%",
            "ha_monitor@%",
            "ha_repl@%",
            "mariadb.sys@localhost",
            "root@localhost"
        ]
    );

    // Topology: db1 <-> db2, db3 <- db1, by GTID.
    let src = |h: &str| lab.replication(h).unwrap().expect("is a replica");
    assert_eq!(src("db1").source.as_deref(), Some("db2"));
    assert_eq!(src("db2").source.as_deref(), Some("db1"));
    assert_eq!(src("db3").source.as_deref(), Some("db1"));
    for h in ["db1", "db2", "db3"] {
        let s = src(h);
        assert!(s.healthy(), "{h}: {s:?}");
        assert_eq!(s.using_gtid, "Slave_Pos");
    }
    // Only db2 (the other master candidate) is a semi-sync replica of db1; db3 replicates
    // asynchronously so its ACK can never stand in for db2's.
    let clients = lab
        .sql("db1", "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'")
        .unwrap();
    assert_eq!(clients[0][1], "1", "{clients:?}");

    // db1 -> db2, db3
    lab.make_writable("db1").unwrap();
    lab.sql("db1", "INSERT INTO hatest.t (v) VALUES ('from-db1')")
        .unwrap();
    wait_row(&lab, "db2", "from-db1");
    wait_row(&lab, "db3", "from-db1");

    // Switch: db2 -> db1 -> db3
    lab.make_read_only("db1").unwrap();
    lab.make_writable("db2").unwrap();
    lab.sql("db2", "INSERT INTO hatest.t (v) VALUES ('from-db2')")
        .unwrap();
    wait_row(&lab, "db1", "from-db2");
    wait_row(&lab, "db3", "from-db2");
    lab.wait_caught_up("db3", "db2", Duration::from_secs(5))
        .unwrap();
    assert_eq!(lab.writable_hosts(), vec!["db2".to_string()]);
    // All hosts converge on the same GTID state.
    let pos = lab.gtid_current_pos("db2").unwrap();
    assert_eq!(lab.gtid_current_pos("db3").unwrap(), pos);
    assert!(lab.replication("db3").unwrap().unwrap().healthy());

    // change_master re-points by GTID: db3 now from db2.
    lab.change_master("db3", "db2").unwrap();
    lab.wait_replication_running(Duration::from_secs(10))
        .unwrap();
    assert_eq!(src("db3").source.as_deref(), Some("db2"));
    lab.sql("db2", "INSERT INTO hatest.t (v) VALUES ('after-repoint')")
        .unwrap();
    wait_row(&lab, "db3", "after-repoint");
}

#[test]
fn single_and_two_host_labs() {
    let one = Lab::start(LabOptions::hosts(1)).unwrap();
    assert!(one.replication("db1").unwrap().is_none());
    let two = Lab::start(LabOptions {
        semi_sync: false,
        ..LabOptions::hosts(2)
    })
    .unwrap();
    assert_ne!(one.subnet_cidr(), two.subnet_cidr());
    assert_eq!(
        two.replication("db1").unwrap().unwrap().source.as_deref(),
        Some("db2")
    );
    assert_eq!(two.reader_vips().len(), 2);
}
