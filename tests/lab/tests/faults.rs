//! Every fault has the observable effect it promises, and undoing it restores the cluster.

use std::time::Duration;

use ha_lab::{wait_until, Error, Lab, LabOptions, Netem, NetemBackend, MYSQL_PORT};

const T: Duration = Duration::from_secs(1);

fn lab() -> Lab {
    Lab::start(LabOptions::default()).expect("lab starts")
}

#[test]
fn mysqld_stop_kill_start() {
    let lab = lab();
    let ip = lab.host("db2").unwrap().ip;
    assert!(lab.tcp_connects("cli", ip, MYSQL_PORT, T).unwrap());

    lab.stop_mysqld("db2").unwrap();
    assert!(!lab.mysqld_running("db2").unwrap());
    assert!(
        !lab.tcp_connects("cli", ip, MYSQL_PORT, T).unwrap(),
        "port still open after stop"
    );
    assert!(lab.read_only("db2").is_err());
    // The host itself is alive.
    assert!(lab.ping("cli", ip, T).unwrap());

    lab.start_mysqld("db2").unwrap();
    assert!(lab.tcp_connects("cli", ip, MYSQL_PORT, T).unwrap());
    lab.wait_replication_running(Duration::from_secs(15))
        .unwrap();

    lab.kill_mysqld("db2").unwrap();
    assert!(
        !lab.tcp_connects("cli", ip, MYSQL_PORT, T).unwrap(),
        "port open after SIGKILL"
    );
    // db1's replication from db2 notices (IO thread reconnecting).
    wait_until("db1 IO thread to lose db2", Duration::from_secs(15), || {
        Ok((lab.replication("db1")?.unwrap().io_running != "Yes").then_some(()))
    })
    .unwrap();
    lab.start_mysqld("db2").unwrap();
    lab.wait_replication_running(Duration::from_secs(15))
        .unwrap();
    // Replication from db1 to db2 works after the crash.
    lab.make_writable("db1").unwrap();
    lab.sql("db1", "INSERT INTO hatest.t (v) VALUES ('after-crash')")
        .unwrap();
    lab.wait_caught_up("db2", "db1", Duration::from_secs(10))
        .unwrap();
    assert!(lab
        .row_exists("db2", "hatest.t", "v='after-crash'")
        .unwrap());
}

#[test]
fn freeze_thaw_and_link() {
    let lab = lab();
    let ip = lab.host("db1").unwrap().ip;
    let agent = lab.spawn_in("db1", "sleep", ["600"], &[]).unwrap();

    lab.freeze("db1").unwrap();
    assert!(!lab.ping("cli", ip, T).unwrap(), "frozen host answers ping");
    let states = lab.process_states("db1").unwrap();
    assert!(states.len() >= 2, "{states:?}");
    assert!(
        states.iter().all(|(_, s)| *s == 'T'),
        "not all stopped: {states:?}"
    );
    // A frozen server does not answer: the admin client times out with a clear error.
    let t0 = std::time::Instant::now();
    let err = lab.read_only("db1").unwrap_err();
    assert!(err.to_string().contains("db1"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20));

    lab.thaw("db1").unwrap();
    assert!(lab
        .process_states("db1")
        .unwrap()
        .iter()
        .all(|(_, s)| *s != 'T'));
    wait_until("ping after thaw", Duration::from_secs(5), || {
        Ok(lab.ping("cli", ip, T)?.then_some(()))
    })
    .unwrap();
    assert!(lab.read_only("db1").unwrap());
    assert!(agent.is_running());

    // Link down: the host is alive but unreachable; addresses stay.
    lab.link_down("db1").unwrap();
    assert!(!lab.ping("cli", ip, T).unwrap());
    assert!(lab.ips("db1").unwrap().contains(&ip));
    assert!(
        lab.read_only("db1").unwrap(),
        "mysqld should still answer over its socket"
    );
    lab.link_up("db1").unwrap();
    wait_until("ping after link up", Duration::from_secs(5), || {
        Ok(lab.ping("cli", ip, T)?.then_some(()))
    })
    .unwrap();
    lab.wait_replication_running(Duration::from_secs(20))
        .unwrap();
}

#[test]
fn cut_isolates_exactly_two_nodes() {
    let lab = lab();
    let db1 = lab.host("db1").unwrap().ip;
    let db2 = lab.host("db2").unwrap().ip;
    let mon = lab.mon().ip;
    lab.cut("mon", "db1").unwrap();
    assert!(!lab.ping("mon", db1, T).unwrap(), "mon reaches db1");
    assert!(!lab.ping("db1", mon, T).unwrap(), "db1 reaches mon");
    assert!(!lab.tcp_connects("mon", db1, MYSQL_PORT, T).unwrap());
    assert!(lab.ping("mon", db2, T).unwrap(), "mon lost db2");
    assert!(lab.ping("db1", db2, T).unwrap(), "db1 lost db2");
    assert!(lab.ping("cli", db1, T).unwrap(), "cli lost db1");
    assert!(lab.tcp_connects("cli", db1, MYSQL_PORT, T).unwrap());
    // Role IPs db1 holds are cut too (matched by MAC).
    let vip = lab.writer_vip();
    lab.add_ip("db1", vip).unwrap();
    assert!(
        !lab.tcp_connects("mon", vip, MYSQL_PORT, T).unwrap(),
        "mon reaches db1's VIP"
    );
    assert!(lab.tcp_connects("cli", vip, MYSQL_PORT, T).unwrap());
    lab.heal("db1", "mon").unwrap();
    assert!(lab.ping("mon", db1, T).unwrap());
    assert!(lab.tcp_connects("mon", vip, MYSQL_PORT, T).unwrap());
}

#[test]
fn netem_loss_and_latency() {
    let lab = lab();
    let ip = lab.host("db3").unwrap().ip;
    assert_eq!(
        lab.ping_loss("cli", ip, 20, Duration::from_millis(10))
            .unwrap(),
        0.0
    );
    let backend = lab.netem("db3", Netem::loss(60.0)).unwrap();
    let loss = lab
        .ping_loss("cli", ip, 60, Duration::from_millis(10))
        .unwrap();
    eprintln!("loss with {backend:?}: {loss}");
    assert!(loss > 0.3 && loss < 0.9, "loss {loss}");
    lab.clear_netem("db3").unwrap();
    assert_eq!(
        lab.ping_loss("cli", ip, 20, Duration::from_millis(10))
            .unwrap(),
        0.0
    );

    match lab.netem(
        "db3",
        Netem::delay(Duration::from_millis(100), Duration::from_millis(10)),
    ) {
        Ok(NetemBackend::Tc) => {
            let t0 = std::time::Instant::now();
            assert!(lab.ping("cli", ip, T).unwrap());
            assert!(t0.elapsed() >= Duration::from_millis(90));
            lab.clear_netem("db3").unwrap();
        }
        Err(Error::Unsupported(why)) => eprintln!("latency not testable here: {why}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn replication_threads_and_lag() {
    let lab = lab();
    lab.stop_io_thread("db3").unwrap();
    let s = lab.replication("db3").unwrap().unwrap();
    assert_eq!(
        (s.io_running.as_str(), s.sql_running.as_str()),
        ("No", "Yes")
    );
    lab.start_io_thread("db3").unwrap();
    lab.stop_sql_thread("db3").unwrap();
    let s = lab.replication("db3").unwrap().unwrap();
    assert_eq!(s.sql_running, "No");
    lab.start_sql_thread("db3").unwrap();
    lab.wait_replication_running(Duration::from_secs(10))
        .unwrap();

    // Lag above a threshold while both threads keep running.
    let t0 = std::time::Instant::now();
    let guard = lab.induce_lag("db3", 3).unwrap();
    eprintln!("lag of 3 s reached after {:?}", t0.elapsed());
    let s = lab.replication("db3").unwrap().unwrap();
    assert!(s.seconds_behind.unwrap() >= 3, "{s:?}");
    assert!(s.running(), "{s:?}");
    guard.release().unwrap();
    wait_until("db3 to catch up", Duration::from_secs(10), || {
        Ok((lab.replication("db3")?.unwrap().seconds_behind == Some(0)).then_some(()))
    })
    .unwrap();
    lab.wait_caught_up("db3", "db1", Duration::from_secs(5))
        .unwrap();
}

#[test]
fn spawned_process_stop_start_pause() {
    let lab = lab();
    let p = lab
        .spawn_in(
            "mon",
            "sh",
            ["-c", "echo hello from $NAME; exec sleep 600"],
            &[("NAME", "mon")],
        )
        .unwrap();
    let pid = p.pid().unwrap();
    let mon_pids = ha_lab::netns::pids(&lab.mon().ns).unwrap();
    assert!(
        mon_pids.contains(&(pid as i32)),
        "{pid} not in {mon_pids:?}"
    );
    wait_until("log line", Duration::from_secs(5), || {
        Ok(p.log().contains("hello from mon").then_some(()))
    })
    .unwrap();
    p.pause().unwrap();
    assert_eq!(lab.process_states("mon").unwrap(), vec![(pid as i32, 'T')]);
    p.resume().unwrap();
    p.stop().unwrap();
    assert!(!p.is_running());
    assert!(ha_lab::netns::pids(&lab.mon().ns).unwrap().is_empty());
    p.start().unwrap();
    assert_ne!(p.pid().unwrap(), pid);
    assert_eq!(p.pid_history().len(), 2);
    p.kill().unwrap();
    assert!(!p.is_running());
}
