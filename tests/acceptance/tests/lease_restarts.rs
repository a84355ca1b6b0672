//! Writer lease v2 end to end: "never two writers" across an agent restart on the old writer,
//! a monitor killed while it waits for the old writer's lease, and an isolated writer with an
//! open transaction and a commit blocked on semi-sync. I1 is sampled every 50 ms throughout,
//! and the timeline is checked too: the old writer is read-only without the writer IP before
//! the new one is writable.

mod net_common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, ClusterOptions, Invariants};
use ha_lab::{creds, ProbeOptions};
use net_common::{assert_converged, others, quick_read_only, rejoin, stop_and_check_i1_i2, T};

/// Cuts the monitor and every other host off the writer `old` (clients still reach it): nobody
/// can renew its lease, neither the monitor nor its peers' promises (ARCHITECTURE.md "Peer
/// promises"), so it is failed over. Cutting the monitor alone no longer fails over (S13).
fn isolate_writer(c: &Cluster, old: &str) {
    for h in others(c, &[old]) {
        c.lab
            .cut(old, &h)
            .expect("cut the writer off the other hosts");
    }
    c.lab
        .cut("mon", old)
        .expect("cut the monitor off the writer");
}

/// Undoes [`isolate_writer`].
fn heal_writer(c: &Cluster, old: &str) {
    for h in others(c, &[old]) {
        c.lab.heal(old, &h).expect("heal");
    }
    c.lab.heal("mon", old).expect("heal");
}

/// Watches the hosts from `since` until another host than `old` is writable. Returns when the
/// old writer was fenced (read_only=1 and no writer IP) and when the new one became writable;
/// panics if the new writer came first. `during` runs once per sample (to inject a fault at
/// the right moment).
fn watch_failover(
    c: &Cluster,
    old: &str,
    since: Instant,
    mut during: impl FnMut(&Cluster, Duration),
) -> (Duration, String, Duration) {
    let vip = c.lab.writer_vip();
    let mut old_fenced: Option<Duration> = None;
    loop {
        assert!(
            since.elapsed() < T,
            "no new writer within {T:?}\n{}",
            c.diagnostics()
        );
        during(c, since.elapsed());
        if old_fenced.is_none() {
            let ro = quick_read_only(&c.lab, old);
            let has_vip = c.lab.ips(old).expect("ips").contains(&vip);
            if ro == Some(true) && !has_vip {
                old_fenced = Some(since.elapsed());
            }
        }
        for h in others(c, &[old]) {
            if quick_read_only(&c.lab, &h) == Some(false) {
                let at = since.elapsed();
                let fenced = old_fenced.unwrap_or_else(|| {
                    panic!(
                        "{h} became writable at +{at:?} while {old} was not fenced\n{}",
                        c.diagnostics()
                    )
                });
                return (fenced, h, at);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// S13b-like (the writer cut off from the monitor and its peers) with the old writer's agent
/// killed (-9) and restarted 2 s after the cut: the restarted
/// agent restores its lease from its state file and fences the host when it ends, before the
/// monitor makes the new writer writable.
#[test]
fn s13_with_an_agent_restart_on_the_old_writer() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    let inv = Invariants::start(&c.lab);
    let probe = c
        .lab
        .start_probe(ProbeOptions::new(c.lab.writer_vip()).interval(Duration::from_millis(50)))
        .expect("probe");
    probe.wait_acked(5, T).expect("writes before the fault");

    isolate_writer(&c, &old);
    let cut = Instant::now();
    let agent = c.agent(&old).expect("agent");
    let mut restarted = false;
    let (fenced, new, writable) = watch_failover(&c, &old, cut, |_, at| {
        if !restarted && at >= Duration::from_secs(2) {
            agent.kill().expect("kill -9 the old writer's agent");
            agent.start().expect("start it again");
            restarted = true;
        }
    });
    eprintln!("{old} fenced at +{fenced:?}, {new} writable at +{writable:?}");
    assert!(
        restarted,
        "the agent was restarted before the failover completed"
    );
    let log = agent.log();
    assert!(
        log.contains("restored the writer lease")
            && log.contains("writer lease restored at start-up expired"),
        "the restarted agent kept its lease and fenced the host when it ended:\n{log}"
    );
    c.wait_writer_ready(&new, T).expect("new writer ready");
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");

    heal_writer(&c, &old);
    rejoin(&c, &old, &new);
    assert_converged(&c, &new);
    stop_and_check_i1_i2(&c, probe, inv, &new);
}

/// The monitor is killed (-9) right after it decided the failover, while it waits for the old
/// writer's lease, and restarted 1 s later: the restarted monitor still waits (its status file
/// records that the old writer may be writable), so I1 holds.
#[test]
fn monitor_killed_while_it_waits_for_the_old_writers_lease() {
    let c =
        Cluster::start(ClusterOptions::fast().set("monitor.writer_lease", "6")).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    let inv = Invariants::start(&c.lab);
    let probe = c
        .lab
        .start_probe(ProbeOptions::new(c.lab.writer_vip()).interval(Duration::from_millis(50)))
        .expect("probe");
    probe.wait_acked(5, T).expect("writes before the fault");

    isolate_writer(&c, &old);
    let cut = Instant::now();
    let monitor = c.monitor().expect("monitor");
    let mut killed_at: Option<Instant> = None;
    let mut restarted = false;
    let (fenced, new, writable) = watch_failover(&c, &old, cut, |c, _| {
        if killed_at.is_none() {
            // The failover is decided (the writer role moved in the table) but the new writer
            // is not writable yet: the monitor waits for the old writer's lease.
            let moved = c
                .show()
                .ok()
                .and_then(|s| s.writer())
                .is_some_and(|w| w != old);
            if moved {
                monitor.kill().expect("kill -9 the monitor");
                killed_at = Some(Instant::now());
            }
        } else if !restarted && killed_at.is_some_and(|t| t.elapsed() >= Duration::from_secs(1)) {
            c.start_monitor().expect("restart the monitor");
            restarted = true;
        }
    });
    eprintln!("{old} fenced at +{fenced:?}, {new} writable at +{writable:?}");
    assert!(
        killed_at.is_some() && restarted,
        "the monitor was killed and restarted mid-failover"
    );
    let log = c.monitor().expect("monitor").log();
    assert!(
        log.contains("Restored states and roles from the status file"),
        "{log}"
    );
    c.wait_writer_ready(&new, T).expect("new writer ready");
    probe
        .wait_acked(probe.acked_so_far() + 5, T)
        .expect("writes resume on the new writer");

    heal_writer(&c, &old);
    rejoin(&c, &old, &new);
    assert_converged(&c, &new);
    stop_and_check_i1_i2(&c, probe, inv, &new);
}

/// A client session in the client namespace, talking to the writer IP, fed statements on
/// stdin (it stays open until dropped).
fn client_session(c: &Cluster) -> Client {
    let cli = c.lab.cli().ns.clone();
    let child = Command::new("ip")
        .args(["netns", "exec", &cli, "mariadb", "--no-defaults"])
        .arg(format!("--host={}", c.lab.writer_vip()))
        .arg(format!("--user={}", creds::APP_USER))
        .arg(format!("--password={}", creds::APP_PASSWORD))
        .arg(creds::APP_SCHEMA)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mariadb client");
    Client(child)
}

/// A `mariadb` client process, killed (by PID) when dropped, also after a panic.
struct Client(Child);

impl Client {
    fn send(&mut self, sql: &[u8]) {
        self.0
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(sql)
            .expect("client stdin");
    }

    /// Waits up to `limit` for the client to exit; `None` if it is still waiting for a reply.
    /// A fenced server's FIN cannot reach a client connected through the writer IP once that
    /// address is gone from the host, so a killed session's client may wait until its own TCP
    /// timeout: still waiting counts as "never acknowledged" too.
    fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The old writer is cut off from the monitor and from both other hosts, but clients still
/// reach it: one client holds an open transaction, another's COMMIT waits for a semi-sync ACK
/// that cannot come. The old writer's fence (writer IP, kill, read_only=1) must complete
/// before the new writer is writable, and the blocked commit is never acknowledged.
#[test]
fn isolated_writer_with_an_open_transaction_and_a_blocked_commit() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let old = c.show().expect("show").writer().expect("a writer");
    c.lab
        .sql(
            &old,
            "CREATE TABLE IF NOT EXISTS hatest.blocked (id INT PRIMARY KEY)",
        )
        .expect("table");
    let inv = Invariants::start(&c.lab);

    let mut open_tx = client_session(&c);
    open_tx.send(b"BEGIN; INSERT INTO blocked VALUES (1);\n");
    isolate_writer(&c, &old);
    let cut = Instant::now();
    let mut blocked = client_session(&c);
    blocked.send(b"INSERT INTO blocked VALUES (2);\n");
    drop(blocked.0.stdin.take()); // the client exits once its statement returns

    let (fenced, new, writable) = watch_failover(&c, &old, cut, |_, _| {});
    eprintln!("{old} fenced at +{fenced:?}, {new} writable at +{writable:?}");
    let exit = blocked.exit_within(Duration::from_secs(5));
    assert!(
        !exit.is_some_and(|st| st.success()),
        "the blocked commit must never be acknowledged (its session is killed): {exit:?}"
    );
    let on_new = c
        .lab
        .sql_value(&new, "SELECT COUNT(*) FROM hatest.blocked")
        .expect("count on the new writer");
    assert_eq!(
        on_new.as_deref(),
        Some("0"),
        "neither the open nor the blocked transaction reached {new}"
    );
    drop(open_tx);
    let log = c.agent(&old).expect("agent").log();
    assert!(
        log.contains("fence (writer lease expired) done in"),
        "{log}"
    );
    assert!(!log.contains("more than fence_budget"), "{log}");

    // A write on the new writer before the old one returns: otherwise the new writer's own
    // replication from its peer could fetch the unacknowledged transaction as the next one in
    // order and apply it (no divergence then, and no refusal for `rejoin` to see).
    c.lab
        .sql(&new, "INSERT INTO hatest.blocked VALUES (3)")
        .expect("a write on the new writer");
    heal_writer(&c, &old);
    c.wait_writer_ready(&new, T).expect("new writer ready");
    rejoin(&c, &old, &new);
    assert_converged(&c, &new);
    inv.assert_clean();
}
