//! Peer promises, the writer's side (issue 14), on real MariaDB with no monitor at all: a writer
//! whose only peer keeps promising stays writable long after its last grant, the peer refuses
//! the writer role meanwhile, and once the peer's agent stops the writer fences itself within
//! one lease. And a writer the monitor demotes releases its peer's promise, so a switchover
//! need not wait for it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ha_lab::{wait_until, Lab, LabOptions};
use ha_proto::PeerAgent;

const LEASE_MS: u64 = 3_000;

/// db2 replicates from db1, and db1 gets one writer grant of `lease_ms` naming db2 as its
/// peer (what the monitor sends); db1 is writable afterwards.
fn grant_with_peer(lab: &Lab, c: &Cluster, lease_ms: u64) {
    apply(lab, "db2", c.req("db2", vec![], Some("db1"), 1)).expect("db2 as a replica");
    let mut grant = c.req("db1", vec![c.writer_role()], Some("db1"), 1);
    grant.writer_lease_ms = lease_ms;
    grant.writer_peers = vec![PeerAgent {
        name: "db2".into(),
        address: agent_addr(lab, "db2").to_string(),
    }];
    let st = apply(lab, "db1", grant).expect("grant");
    assert!(st.converged && !st.read_only, "{st:#?}");
}

#[test]
fn a_writer_vouched_for_by_its_peer_outlives_its_grant_and_fences_when_the_peer_is_gone() {
    let lab = Lab::start(LabOptions::hosts(2)).expect("lab");
    let a1 = start_agent(&lab, "db1", &AgentOpts::default());
    let a2 = start_agent(&lab, "db2", &AgentOpts::default());
    let c = Cluster::of(&lab);
    // One grant, naming db2 as the peer; then the "monitor" is gone.
    grant_with_peer(&lab, &c, LEASE_MS);
    let granted = Instant::now();

    // Four leases later db1 is still the writer, on db2's promises alone.
    std::thread::sleep(Duration::from_millis(4 * LEASE_MS));
    let st = status(&lab, "db1").expect("status");
    assert!(
        !st.read_only && st.writer_lease_remaining_ms > 0,
        "db1 fenced although db2 promised ({:?} after the grant): {st:#?}\ndb1:\n{}\ndb2:\n{}",
        granted.elapsed(),
        a1.log_tail(30),
        a2.log_tail(30)
    );
    assert!(has_ip(&lab, "db1", c.writer));

    // Meanwhile db2 refuses the writer role, forced or not.
    let mut steal = c.req("db2", vec![c.writer_role()], Some("db2"), 1);
    steal.writer_lease_ms = LEASE_MS;
    steal.force = true;
    let st = apply(&lab, "db2", steal).expect("apply to db2");
    assert!(
        st.read_only && st.promotion_error.contains("promised db1"),
        "{st:#?}"
    );

    // db2's agent stops: nobody vouches for db1 any more, and it fences within one lease.
    a2.stop().expect("stop db2's agent");
    let stopped = Instant::now();
    wait_until(
        "db1 fenced once db2 stopped promising",
        Duration::from_secs(15),
        || Ok((lab.read_only("db1")? && !has_ip(&lab, "db1", c.writer)).then_some(())),
    )
    .unwrap_or_else(|e| panic!("{e}\ndb1:\n{}", a1.log_tail(40)));
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_millis(LEASE_MS + 5_000),
        "fenced {took:?} after the last promise could be given"
    );
    eprintln!("db1 fenced {took:?} after db2's agent stopped");
}

#[test]
fn a_demoted_writer_releases_its_peers_promise_so_a_switchover_need_not_wait() {
    // A long lease: without the release, db2 would refuse the role for 30 s after db1's demotion.
    const LONG_MS: u64 = 30_000;
    let lab = Lab::start(LabOptions::hosts(2)).expect("lab");
    let a1 = start_agent(&lab, "db1", &AgentOpts::default());
    let a2 = start_agent(&lab, "db2", &AgentOpts::default());
    let c = Cluster::of(&lab);
    grant_with_peer(&lab, &c, LONG_MS);
    wait_status(
        &lab,
        "db2",
        "db2 promised db1",
        Duration::from_secs(15),
        |s| {
            s.promise
                .as_ref()
                .is_some_and(|p| p.writer == "db1" && p.remaining_ms > 0)
        },
    );

    // The switchover: db1 is demoted (epoch 2), then db2 is granted the role.
    let st = apply(&lab, "db1", c.req("db1", vec![], None, 2)).expect("demote db1");
    assert!(st.read_only, "{st:#?}");
    let released = Instant::now();
    wait_status(
        &lab,
        "db2",
        "db2's promise released",
        Duration::from_secs(10),
        |s| s.promise.as_ref().is_some_and(|p| p.remaining_ms == 0),
    );
    let mut grant = c.req("db2", vec![c.writer_role()], Some("db2"), 2);
    grant.writer_lease_ms = LONG_MS;
    let st = apply(&lab, "db2", grant).expect("grant db2");
    assert!(
        st.promotion_error.is_empty() && st.writer_refused_for_ms == 0,
        "{st:#?}\ndb2:\n{}",
        a2.log_tail(30)
    );
    wait_until("db2 writable", Duration::from_secs(10), || {
        Ok((!lab.read_only("db2")?).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\ndb2:\n{}", a2.log_tail(30)));
    assert!(
        released.elapsed() < Duration::from_millis(LONG_MS),
        "db2 became the writer only after the promise would have ended anyway"
    );
    assert!(lab.read_only("db1").expect("db1 read_only"), "one writer");
    assert!(
        a1.log_tail(60)
            .contains("told db2 its promise is no longer needed"),
        "db1 logs the release:\n{}",
        a1.log_tail(60)
    );
}
