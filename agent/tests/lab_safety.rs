//! Safety behaviour on real MariaDB: the writer lease, the relay-log sync gate, and garbage
//! input / a stopped mysqld (clear errors, the agent keeps running).

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_lab::{wait_until, Lab, LabOptions, ProcHandle};
use ha_proto::{AgentStatusRequest, ClearBadRolesRequest, HostState, Role};

/// A writer whose lease is not renewed demotes itself; renewals keep it writable.
#[test]
fn writer_lease_expiry_demotes() {
    let t0 = Instant::now();
    let lab = Lab::start(LabOptions::hosts(1)).expect("lab");
    // The lab's simulated uptime (all namespaces share one kernel).
    let uptime = lab.write_file("uptime-db1", "42.50 10.00\n").unwrap();
    let opts = AgentOpts {
        uptime_file: Some(uptime),
        ..AgentOpts::default()
    };
    let a1 = start_agent(&lab, "db1", &opts);
    let _logs = LogsOnPanic(vec![a1.clone()]);
    let c = Cluster::of(&lab);
    let st = status(&lab, "db1").expect("status");
    assert_eq!(st.uptime_seconds, 42.5, "HA_AGENT_UPTIME_FILE is honoured");
    assert_eq!(st.state, HostState::Unknown as i32, "no desired state yet");
    let req = |epoch: u64| {
        let mut r = c.req("db1", vec![c.writer_role()], Some("db1"), epoch);
        r.writer_lease_ms = 3000;
        r
    };
    let st = apply(&lab, "db1", req(1)).expect("apply");
    assert!(st.converged && !st.read_only, "{st:#?}");
    assert!(st.writer_lease_remaining_ms > 0 && st.writer_lease_remaining_ms <= 3000);
    // Renew every second for 4 s (longer than one lease): still the writer.
    for e in 2..=5 {
        std::thread::sleep(Duration::from_secs(1));
        let st = apply(&lab, "db1", req(e)).expect("renew");
        assert!(
            st.operations.is_empty(),
            "a renewal changes nothing: {:?}",
            op_names(&st)
        );
    }
    assert!(!lab.read_only("db1").unwrap());
    assert!(has_ip(&lab, "db1", c.writer));
    // Stop renewing: demotion within lease + a margin.
    wait_until("db1 demotes itself", Duration::from_secs(15), || {
        Ok((lab.read_only("db1")? && !has_ip(&lab, "db1", c.writer)).then_some(()))
    })
    .unwrap();
    let st = wait_status(
        &lab,
        "db1",
        "demotion recorded",
        Duration::from_secs(10),
        |s| s.converged && s.roles.is_empty(),
    );
    assert!(st.read_only);
    assert_eq!(st.writer_lease_remaining_ms, -1);
    assert!(
        a1.log()
            .contains("writer lease expired: no renewal from the monitor within 3000 ms"),
        "log must say why:\n{}",
        a1.log_tail(20)
    );
    assert!(a1.is_running());
    eprintln!("lease test took {:?}", t0.elapsed());
}

/// A 2-host lab: db1 the writer with a 3 s lease (its agent started with `opts`), table
/// `hatest.lease_t` created while db2 still acknowledges.
fn writer_with_lease(opts: &AgentOpts) -> (Lab, ProcHandle, Cluster) {
    let lab = Lab::start(LabOptions::hosts(2)).expect("lab");
    let a1 = start_agent(&lab, "db1", opts);
    let c = Cluster::of(&lab);
    lab.sql(
        "db1",
        "CREATE TABLE IF NOT EXISTS hatest.lease_t (id INT PRIMARY KEY)",
    )
    .expect("create table (acknowledged by db2)");
    let mut r = c.req("db1", vec![c.writer_role()], Some("db1"), 1);
    r.writer_lease_ms = 3000;
    let st = apply(&lab, "db1", r).expect("apply");
    assert!(st.converged && !st.read_only, "{st:#?}");
    (lab, a1, c)
}

/// Waits until an `INSERT INTO hatest.lease_t` is running on db1 (waiting for its ACK).
fn wait_insert_in_flight(lab: &Lab) {
    wait_until(
        "the INSERT waits for a semi-sync ACK",
        Duration::from_secs(10),
        || {
            let n = lab.sql_value(
                "db1",
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'INSERT INTO hatest.lease_t%'",
            )?;
            Ok((n.as_deref() == Some("1")).then_some(()))
        },
    )
    .expect("the commit is in flight");
}

/// An isolated writer whose last commit waits for a semi-sync ACK that never comes (the only
/// replica's cable is out). `SET GLOBAL read_only = 1` waits behind such a commit, so a demotion
/// that starts with it takes mysql_timeout at least — longer than the monitor's margin
/// (agent_timeout) after the lease. On expiry the agent drops the writer IP first and kills the
/// waiting client while read_only=1 runs: read_only=1 succeeds at its first try, the client
/// gets an error (its write was never acknowledged).
#[test]
fn lease_expiry_demotes_past_a_commit_waiting_for_semi_sync() {
    let (lab, a1, c) = writer_with_lease(&AgentOpts::default());
    let _logs = LogsOnPanic(vec![a1.clone()]);
    let granted = Instant::now();

    lab.link_down("db2").expect("link down");
    std::thread::scope(|scope| {
        let insert = scope.spawn(|| lab.sql("db1", "INSERT INTO hatest.lease_t VALUES (1)"));
        wait_insert_in_flight(&lab);
        assert!(
            !insert.is_finished(),
            "the commit must be waiting for db2's ACK"
        );

        wait_until("db1 demotes itself", Duration::from_secs(20), || {
            Ok((lab.read_only("db1")? && !has_ip(&lab, "db1", c.writer)).then_some(()))
        })
        .unwrap();
        eprintln!(
            "demoted {:?} after the grant (lease 3 s)",
            granted.elapsed()
        );
        let res = insert.join().expect("insert thread");
        assert!(
            res.is_err(),
            "the waiting client was killed, its write never acknowledged: {res:?}"
        );
    });
    let log = a1.log();
    let line = |needle: &str| {
        log.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("agent log has no {needle:?}:\n{log}"))
    };
    let expired = line("writer lease expired");
    let ip_gone = line(&format!("ip -4 addr del {}", c.writer));
    let ro = line("SET GLOBAL read_only = 1");
    assert!(
        expired < ip_gone && ip_gone < ro,
        "expiry, then the writer IP, then read_only=1:\n{log}"
    );
    assert!(
        !log.contains("retry after kill") && !log.contains("read_only=1\" failed"),
        "read_only=1 did not wait behind the commit:\n{log}"
    );
    assert!(
        log.lines().any(
            |l| l.contains("operation=\"fence: kill connections\"") && !l.contains("killed 0 ")
        ),
        "the waiting client was killed:\n{log}"
    );
    lab.link_up("db2").expect("link up");
}

/// The monitor asks an isolated-from-its-replica writer to demote (planned demotion), but
/// `read_only = 1` waits behind a commit that waits for a semi-sync ACK: the planned pass would
/// hold the writer IP until mysql_timeout (8 s here). The lease the monitor granted keeps
/// running through the demotion and its expiry forces it (writer IP, kill, read_only=1) —
/// the monitor may give the role to another host from then on.
#[test]
fn lease_expiry_forces_a_demotion_stuck_behind_a_commit() {
    let (lab, a1, c) = writer_with_lease(&AgentOpts {
        mysql_timeout: 8.0,
        ..AgentOpts::default()
    });
    let _logs = LogsOnPanic(vec![a1.clone()]);

    lab.link_down("db2").expect("link down");
    std::thread::scope(|scope| {
        let insert = scope.spawn(|| lab.sql("db1", "INSERT INTO hatest.lease_t VALUES (2)"));
        wait_insert_in_flight(&lab);
        // The planned demotion: same epoch, no writer role. The reply comes back before the
        // pass ends (it is stuck on read_only=1).
        let _ = apply(&lab, "db1", c.req("db1", vec![], Some("db1"), 1));
        wait_until("db1 demoted", Duration::from_secs(20), || {
            Ok((lab.read_only("db1")? && !has_ip(&lab, "db1", c.writer)).then_some(()))
        })
        .unwrap();
        let log = a1.log();
        assert!(
            log.contains(
                "writer lease expired while the demotion the monitor asked for is still under way"
            ),
            "the expiry says it forces the demotion:\n{log}"
        );
        assert!(
            !log.contains("did not finish within 8.0 s"),
            "demoted by the lease expiry, before the planned read_only=1 timed out:\n{log}"
        );
        let res = insert.join().expect("insert thread");
        assert!(res.is_err(), "the waiting client was killed: {res:?}");
    });
    // The planned pass finishes too (its read_only=1 got through once the commit was killed).
    let st = wait_status(
        &lab,
        "db1",
        "demotion converged",
        Duration::from_secs(20),
        |s| s.converged && s.roles.is_empty(),
    );
    assert!(st.read_only, "{st:#?}");
    lab.link_up("db2").expect("link up");
}

/// A promotion whose relay log cannot be applied (SQL thread stopped with unapplied events)
/// leaves the host read-only and says why; once the SQL thread runs again the retry promotes.
#[test]
fn unfinished_sync_keeps_the_host_read_only() {
    let t0 = Instant::now();
    let lab = Lab::start(LabOptions {
        semi_sync: false,
        ..LabOptions::hosts(2)
    })
    .expect("lab");
    let opts = AgentOpts {
        sync_timeout: 2.0,
        ..AgentOpts::default()
    };
    let a2 = start_agent(&lab, "db2", &opts);
    let _logs = LogsOnPanic(vec![a2.clone()]);
    let c = Cluster::of(&lab);

    // db2 receives transactions from db1 but does not apply them.
    lab.stop_sql_thread("db2").unwrap();
    for i in 0..5 {
        lab.sql(
            "db1",
            &format!("INSERT INTO hatest.t (v) VALUES ('unapplied-{i}')"),
        )
        .unwrap();
    }
    wait_until(
        "db2 has unapplied relay log",
        Duration::from_secs(15),
        || {
            let r = lab
                .replication("db2")?
                .ok_or_else(|| ha_lab::Error::Other("no replica".into()))?;
            let read: u64 = r
                .raw
                .get("Read_Master_Log_Pos")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let exec: u64 = r
                .raw
                .get("Exec_Master_Log_Pos")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Ok((read > exec).then_some(()))
        },
    )
    .unwrap();

    let st = apply(
        &lab,
        "db2",
        c.req("db2", vec![c.writer_role()], Some("db2"), 1),
    )
    .expect("apply");
    assert!(!st.converged, "{st:#?}");
    assert!(!st.writer_synced, "{st:#?}");
    assert!(st.read_only, "{st:#?}");
    let sync = st
        .operations
        .iter()
        .find(|o| o.operation == "relay-log sync")
        .unwrap_or_else(|| panic!("no relay-log sync step: {:?}", op_names(&st)));
    assert!(!sync.ok);
    assert!(
        sync.message.contains("SQL thread is stopped"),
        "{}",
        sync.message
    );
    assert!(
        st.last_error.contains("relay-log sync"),
        "{}",
        st.last_error
    );
    assert!(
        st.promotion_error.starts_with("relay-log sync: ")
            && st.promotion_error.contains("SQL thread is stopped"),
        "the contract says why the promotion failed: {:?}",
        st.promotion_error
    );
    assert!(
        st.operations
            .iter()
            .any(|o| o.operation == "read_only=0" && !o.ok && o.message.starts_with("skipped")),
        "{:?}",
        op_names(&st)
    );
    assert!(lab.read_only("db2").unwrap());
    assert!(!has_ip(&lab, "db2", c.writer));
    assert_eq!(lab.row_count("db2", "hatest.t").unwrap(), 0);

    // Several retries later: still read-only.
    std::thread::sleep(Duration::from_secs(3));
    assert!(lab.read_only("db2").unwrap());
    assert!(!has_ip(&lab, "db2", c.writer));

    // Repair: the retry applies everything first, then promotes.
    lab.start_sql_thread("db2").unwrap();
    let st = wait_status(
        &lab,
        "db2",
        "promotion after repair",
        Duration::from_secs(60),
        |s| s.converged && s.writer_synced && !s.read_only,
    );
    assert!(st.roles.iter().any(|r| r.name == "writer"));
    assert!(st.promotion_error.is_empty(), "{:?}", st.promotion_error);
    assert!(has_ip(&lab, "db2", c.writer));
    assert_eq!(lab.row_count("db2", "hatest.t").unwrap(), 5);
    eprintln!("sync-gate test took {:?}", t0.elapsed());
}

/// Garbage requests get clear errors; a stopped mysqld gives a clear status; the agent keeps
/// running and converges when MySQL is back. ClearBadRoles removes roles it does not hold.
#[test]
fn garbage_and_mysql_down_get_clear_errors() {
    let t0 = Instant::now();
    let lab = Lab::start(LabOptions::hosts(1)).expect("lab");
    let a1 = start_agent(&lab, "db1", &AgentOpts::default());
    let _logs = LogsOnPanic(vec![a1.clone()]);
    let c = Cluster::of(&lab);
    let addr = agent_addr(&lab, "db1");

    // Wrong host name.
    let e = apply(&lab, "db1", c.req("db2", vec![], None, 1)).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message()
            .contains("request for host 'db2' but this agent is 'db1'"),
        "{e}"
    );
    let e = call(&lab, addr, |mut cl| async move {
        cl.get_status(AgentStatusRequest {
            host: "nope".into(),
        })
        .await
    })
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // Unknown role, invalid IP, empty role name, unspecified state.
    let mut r = c.req("db1", vec![Role::new("bogus", "10.9.9.9")], None, 1);
    let e = apply(&lab, "db1", r.clone()).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("unknown role bogus(10.9.9.9)"), "{e}");
    r.roles = vec![Role::new("reader", "not-an-ip")];
    let e = apply(&lab, "db1", r.clone()).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("invalid IP"), "{e}");
    r.roles = vec![Role::new("", c.readers[0].to_string())];
    assert_eq!(
        apply(&lab, "db1", r.clone()).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    r.roles = vec![];
    r.state = HostState::Unspecified as i32;
    assert_eq!(
        apply(&lab, "db1", r.clone()).unwrap_err().code(),
        tonic::Code::InvalidArgument
    );

    // Stale epoch.
    let st = apply(&lab, "db1", c.req("db1", vec![c.reader_role(0)], None, 10)).expect("epoch 10");
    assert!(st.converged, "{st:#?}");
    assert_eq!(st.epoch, 10);
    let e = apply(&lab, "db1", c.req("db1", vec![], None, 9)).unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message()
            .contains("stale epoch 9 < 10: a stale monitor must not win"),
        "{e}"
    );
    assert!(
        has_ip(&lab, "db1", c.readers[0]),
        "a refused request must change nothing"
    );

    // ClearBadRoles: an IP of the cluster on this host that the agent does not hold.
    lab.add_ip("db1", c.readers[1]).unwrap();
    let all = c.all_roles();
    let reply = call(&lab, addr, move |mut cl| async move {
        cl.clear_bad_roles(ClearBadRolesRequest {
            leader_term: 0,
            host: "db1".into(),
            all_roles: all,
            writer_role: "writer".into(),
        })
        .await
    })
    .expect("clear bad roles");
    assert_eq!(reply.message, "OK: Removed 1 roles");
    assert!(!has_ip(&lab, "db1", c.readers[1]));
    assert!(has_ip(&lab, "db1", c.readers[0]), "held roles stay");

    // MySQL stopped: clear error, no crash, still answering; retries converge when it is back.
    lab.stop_mysqld("db1").unwrap();
    let st = status(&lab, "db1").expect("status while mysqld is down");
    assert!(!st.mysql_reachable);
    assert!(
        st.last_error
            .contains("cannot connect to MySQL at 127.0.0.1:3306 as ha_agent"),
        "{}",
        st.last_error
    );
    let st = apply(
        &lab,
        "db1",
        c.req(
            "db1",
            vec![c.writer_role(), c.reader_role(0)],
            Some("db1"),
            11,
        ),
    )
    .expect("apply while mysqld is down");
    assert!(!st.converged && !st.writer_synced, "{st:#?}");
    assert!(
        !st.promotion_error.is_empty(),
        "a writer that cannot be granted (mysqld down) is a promotion error: {st:#?}"
    );
    assert!(
        st.roles.iter().all(|r| r.name != "writer"),
        "{:?}",
        st.roles
    );
    assert!(
        !has_ip(&lab, "db1", c.writer),
        "no writer IP without a writable, synced server"
    );
    let sys = call(&lab, addr, |mut cl| async move {
        cl.get_system_status(AgentStatusRequest { host: "db1".into() })
            .await
    })
    .expect("system status");
    assert!(!sys.mysql_reachable);
    assert!(
        sys.error.contains("could not check if MySQL is writable"),
        "{}",
        sys.error
    );
    assert!(
        sys.ips_present.contains(&c.readers[0].to_string()),
        "{:?}",
        sys.ips_present
    );
    assert!(a1.is_running(), "agent died:\n{}", a1.log_tail(30));

    lab.start_mysqld("db1").unwrap();
    let st = wait_status(
        &lab,
        "db1",
        "converged after mysqld came back",
        Duration::from_secs(90),
        |s| s.converged && !s.read_only && s.mysql_reachable,
    );
    assert!(st.writer_synced);
    assert!(has_ip(&lab, "db1", c.writer));
    assert!(a1.is_running());

    // Leadership terms (issue 18): once a coordinated leader's term is obeyed, an older term —
    // a deposed monitor's — is refused whatever its epoch, and so is a monitor without one;
    // across a restart of the agent too.
    let mut r = c.req("db1", vec![c.reader_role(0)], None, 12);
    r.leader_term = 7;
    assert_eq!(apply(&lab, "db1", r).expect("term 7").epoch, 12);
    let deposed = |stage: &str| {
        for (term, epoch) in [(6, 13), (0, 14)] {
            let mut r = c.req("db1", vec![], None, epoch);
            r.leader_term = term;
            let e = apply(&lab, "db1", r).unwrap_err();
            assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{stage}: {e}");
            assert!(
                e.message().contains(&format!(
                    "leader term {term} < 7: this request comes from a deposed monitor"
                )),
                "{stage}: {e}"
            );
        }
        assert!(
            has_ip(&lab, "db1", c.readers[0]),
            "{stage}: a deposed monitor's request must change nothing"
        );
    };
    deposed("running agent");
    lab.add_ip("db1", c.readers[1]).unwrap();
    let all = c.all_roles();
    let e = call(&lab, addr, move |mut cl| async move {
        cl.clear_bad_roles(ClearBadRolesRequest {
            host: "db1".into(),
            all_roles: all,
            writer_role: "writer".into(),
            leader_term: 6,
        })
        .await
    })
    .unwrap_err();
    assert!(e.message().contains("deposed monitor"), "{e}");
    assert!(
        has_ip(&lab, "db1", c.readers[1]),
        "nothing removed for a deposed monitor"
    );
    a1.restart().expect("restart the agent");
    wait_status(&lab, "db1", "agent back", Duration::from_secs(30), |_| true);
    deposed("restarted agent (the term is in its state file)");
    eprintln!("garbage test took {:?}", t0.elapsed());
}

/// The relay-log wait itself times out (SQL thread running but blocked: lag): the host stays
/// read-only; `force` overrides it (move_role --force) and says so; the lab's lag is then
/// released and replication catches up.
#[test]
fn lagging_sync_times_out_and_only_force_promotes() {
    let t0 = Instant::now();
    let lab = Lab::start(LabOptions::hosts(2)).expect("lab");
    let opts = AgentOpts {
        sync_timeout: 1.5,
        ..AgentOpts::default()
    };
    let a2 = start_agent(&lab, "db2", &opts);
    let _logs = LogsOnPanic(vec![a2.clone()]);
    let c = Cluster::of(&lab);
    let lag = lab.induce_lag("db2", 1).expect("lag on db2");

    let st = apply(
        &lab,
        "db2",
        c.req("db2", vec![c.writer_role()], Some("db2"), 1),
    )
    .expect("apply");
    let sync = st
        .operations
        .iter()
        .find(|o| o.operation == "relay-log sync")
        .unwrap_or_else(|| panic!("no relay-log sync step: {:?}", op_names(&st)));
    assert!(!sync.ok, "{sync:?}");
    assert!(
        sync.message.contains("not applied within sync_timeout"),
        "{}",
        sync.message
    );
    assert!(
        st.read_only && !st.writer_synced && !st.converged,
        "{st:#?}"
    );
    assert!(lab.read_only("db2").unwrap());
    assert!(!has_ip(&lab, "db2", c.writer));

    let mut forced = c.req("db2", vec![c.writer_role()], Some("db2"), 2);
    forced.force = true;
    let st = apply(&lab, "db2", forced).expect("forced apply");
    let st = if st.read_only {
        wait_status(
            &lab,
            "db2",
            "forced promotion",
            Duration::from_secs(30),
            |s| !s.read_only,
        )
    } else {
        st
    };
    assert!(!st.read_only);
    assert!(
        st.operations
            .iter()
            .any(|o| o.operation == "relay-log sync" && o.message.contains("FORCED")),
        "{:?}",
        st.operations
    );
    assert!(has_ip(&lab, "db2", c.writer));
    lag.release().expect("release lag");
    assert!(a2.is_running());
    eprintln!("lag test took {:?}", t0.elapsed());
}
