//! Peer promises, the promising side (issue 14), on real MariaDB: only another cluster host's
//! agent may ask, for itself; a stale epoch or a writer gets no promise; a promised host
//! refuses the monitor's writer grant — forced or not, across an agent restart — until the
//! promise ends, and then takes it.

mod common;

use std::time::Duration;

use common::*;
use ha_lab::{wait_until, Lab, LabOptions};
use ha_proto::{LeaseToken, PromiseReply, PromiseRequest};

const LEASE_MS: u64 = 6_000;

fn ask(
    lab: &Lab,
    caller: Caller,
    writer: &'static str,
    epoch: u64,
) -> Result<PromiseReply, tonic::Status> {
    let addr = agent_addr(lab, "db2");
    call_as(lab, addr, caller, move |mut c| async move {
        c.promise(PromiseRequest {
            writer: writer.into(),
            host: "db2".into(),
            epoch,
            token: Some(LeaseToken {
                boot_id: "db1-boot".into(),
                at_ms: 42,
            }),
            lease_ms: LEASE_MS,
            fence_budget_ms: 250,
            release: false,
        })
        .await
    })
}

#[test]
fn a_promised_host_refuses_the_writer_role_until_the_promise_ends() {
    let lab = Lab::start(LabOptions::hosts(2)).expect("lab");
    let mut a2 = start_agent(&lab, "db2", &AgentOpts::default());
    let c = Cluster::of(&lab);
    apply(&lab, "db2", c.req("db2", vec![], Some("db1"), 1)).expect("db2 as a replica");

    // Who may ask: another cluster host's agent, for itself.
    let denied = |r: Result<PromiseReply, tonic::Status>, what: &str| match r {
        Err(s) => assert_eq!(s.code(), tonic::Code::PermissionDenied, "{what}: {s:?}"),
        Ok(r) => panic!("{what}: promised {r:?}"),
    };
    denied(
        ask(&lab, Caller::Monitor, "db1", 1),
        "the monitor's identity",
    );
    denied(
        ask(&lab, Caller::Identity("db1"), "db2", 1),
        "a promise to itself",
    );
    denied(
        ask(&lab, Caller::Identity("db1"), "db9", 1),
        "for another writer",
    );

    // A writer of an older epoch gets no promise.
    let r = ask(&lab, Caller::Identity("db1"), "db1", 0).expect("answer");
    assert!(!r.promised && r.refusal.contains("epoch"), "{r:?}");
    assert_eq!(r.remaining_ms, 0);

    let r = ask(&lab, Caller::Identity("db1"), "db1", 1).expect("answer");
    assert!(r.promised, "{r:?}");
    assert!(
        (LEASE_MS - 100..=LEASE_MS + 250).contains(&r.remaining_ms),
        "{r:?}"
    );
    assert_eq!(r.token.as_ref().map(|t| t.at_ms), Some(42), "token echoed");

    // The monitor's writer grant, even forced, is refused while the promise holds, and the
    // agent says why.
    let mut grant = c.req("db2", vec![c.writer_role()], Some("db2"), 2);
    grant.writer_lease_ms = 3_000;
    grant.force = true;
    let st = apply(&lab, "db2", grant.clone()).expect("apply");
    assert!(st.read_only, "{st:#?}");
    assert!(!has_ip(&lab, "db2", c.writer), "writer IP taken");
    assert!(
        st.promotion_error.contains("promised db1"),
        "{}",
        st.promotion_error
    );

    // A restarted agent keeps its promise (same boot).
    a2.stop().expect("stop db2's agent");
    a2 = start_agent(&lab, "db2", &AgentOpts::default());
    grant.lease_token = None; // a fresh token from the new process
    let st = apply(&lab, "db2", grant.clone()).expect("apply after restart");
    assert!(
        st.read_only && st.promotion_error.contains("promised db1"),
        "{st:#?}"
    );

    // Once the promise ended, the same grant is taken.
    wait_until(
        "db2 writable once the promise ended",
        Duration::from_secs(30),
        || {
            grant.lease_token = None;
            let st = apply(&lab, "db2", grant.clone())
                .map_err(|e| ha_lab::Error::Other(e.to_string()))?;
            Ok((!st.read_only).then_some(()))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\nagent log:\n{}", a2.log_tail(40)));

    // A writer promises nothing.
    let r = ask(&lab, Caller::Identity("db1"), "db1", 2).expect("answer");
    assert!(!r.promised && r.refusal.contains("writer"), "{r:?}");
}
