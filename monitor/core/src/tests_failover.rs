//! The failover / switchover plan (F6, F7, F9, F10): ordering and its safety gates.

use crate::testkit::*;
use crate::*;
use std::time::Duration;

fn online(spec: ClusterSpec) -> Kit {
    let mut k = Kit::online(spec);
    k.at(120);
    k.step();
    k
}

fn writer_count(k: &Kit) -> usize {
    ["db1", "db2", "db3"]
        .iter()
        .filter(|h| k.desired_has_writer(h))
        .count()
}

#[test]
fn switchover_demotes_old_writer_before_promoting_new_one() {
    let mut k = online(spec3());
    let epoch = k.core.epoch();
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    assert!(
        k.core.epoch() > epoch,
        "new writer's epoch is strictly higher"
    );
    assert!(!k.desired_has_writer("db1"), "old writer is demoted first");
    assert!(
        !k.desired_has_writer("db2"),
        "new writer waits for the demotion"
    );
    // Replicas are not re-pointed while nobody is confirmed.
    assert_eq!(
        k.core
            .desired_state("db3", k.now())
            .and_then(|d| d.active_master),
        None
    );
    k.send("db1", true); // db1 confirms: no writer role, read_only
    k.step();
    assert!(k.desired_has_writer("db2"));
    assert_eq!(
        k.core
            .desired_state("db3", k.now())
            .and_then(|d| d.active_master),
        None
    );
    k.send("db2", true); // db2 synced and writable
    k.step();
    assert!(k.has_log("Host 'db2' is the active master now"));
    let d3 = k.core.desired_state("db3", k.now()).expect("desired");
    assert_eq!(
        d3.active_master.as_deref(),
        Some("db2"),
        "re-point only after the sync (F7)"
    );
    assert_eq!(
        k.core
            .desired_state("db1", k.now())
            .and_then(|d| d.active_master)
            .as_deref(),
        Some("db2")
    );
}

#[test]
fn failover_without_lease_or_kill_never_promotes_while_old_writer_may_write_f9() {
    let mut k = online(spec3());
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert_eq!(k.core.active_master(), Some("db2"));
    assert!(k.has_log("Role 'writer(10.0.0.100)' is not given to 'db2' yet"));
    k.at(10_000);
    k.send("db1", false); // dead: no reply
    k.send("db2", true);
    k.send("db3", true);
    k.step();
    assert!(!k.desired_has_writer("db2"));
}

#[test]
fn failover_waits_for_the_writer_lease_counted_from_the_last_acknowledgement() {
    let mut spec = spec3();
    spec.writer_lease = Duration::from_secs(10);
    let mut k = online(spec);
    k.send_all(); // db1 acknowledges at t0 (its token is echoed in the next grant)
    k.step();
    let t0 = k.now;
    k.at(1);
    k.send("db1", false); // a renewal echoing t0's token, never acknowledged
    k.step();
    k.checks("db1", [false, false, true, true]);
    k.step();
    k.now = t0 + 9_999;
    k.send("db1", false);
    k.send("db2", true);
    k.step();
    assert!(
        !k.desired_has_writer("db2"),
        "db1's lease may be valid until its last acknowledgement + lease"
    );
    k.now = t0 + 10_000;
    k.step();
    assert!(
        k.desired_has_writer("db2"),
        "sends db1 never acknowledged do not extend the wait"
    );
    assert_eq!(writer_count(&k), 1);
}

#[test]
fn failover_proceeds_after_successful_kill() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = online(spec);
    k.checks("db1", [false, false, true, true]);
    k.step();
    assert_eq!(k.kills(), [("db1".to_string(), false)]);
    assert!(!k.desired_has_writer("db2"));
    k.queue.push(Input::KillResult {
        host: "db1".into(),
        ok: false,
        output: "exit 1".into(),
    });
    k.step();
    assert!(!k.desired_has_writer("db2"), "a failed kill proves nothing");
    assert!(k.has_log("Could not kill host 'db1'"));
    // A later fence attempt (e.g. new failure report) can succeed:
    k.queue.push(Input::KillResult {
        host: "db1".into(),
        ok: true,
        output: "powered off".into(),
    });
    k.step();
    assert!(k.desired_has_writer("db2"));
}

#[test]
fn failed_promotion_orphans_the_writer_and_tries_the_next_candidate_f6() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = online(spec);
    // Planned switch to db2 whose relay-log sync fails.
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", true);
    k.step();
    let d = k.send("db2", false).expect("desired");
    assert!(d.roles.iter().any(|r| r.name == "writer"));
    k.report(
        "db2",
        AgentFacts {
            epoch: d.epoch,
            read_only: true,
            promotion_error: Some("relay log not applied within 30 s".into()),
            ..Default::default()
        },
    );
    k.step();
    assert!(k.has_log(
        "Promotion of 'db2' to 'writer(10.0.0.100)' failed: relay log not applied within 30 s"
    ));
    // The next eligible candidate (db1) gets it, with a higher epoch, once db2 confirmed that
    // it let go: a reply to the promotion itself never counts as a demotion.
    assert_eq!(k.core.active_master(), Some("db1"));
    assert!(k.core.epoch() > d.epoch);
    assert!(!k.desired_has_writer("db1"));
    assert!(!k.desired_has_writer("db2"));
    k.send("db2", true);
    k.step();
    assert!(k.desired_has_writer("db1"));
    assert!(!k.desired_has_writer("db2"));
}

#[test]
fn failed_promotion_with_no_other_candidate_keeps_role_orphaned_then_retries() {
    let mut spec = spec3();
    spec.kill_host_configured = true;
    let mut k = online(spec);
    k.checks("db1", [false, false, true, true]);
    k.step();
    k.queue.push(Input::KillResult {
        host: "db1".into(),
        ok: true,
        output: String::new(),
    });
    k.step();
    let d = k.send("db2", false).expect("desired");
    k.report(
        "db2",
        AgentFacts {
            epoch: d.epoch,
            read_only: true,
            promotion_error: Some("sync timeout".into()),
            ..Default::default()
        },
    );
    k.step();
    assert_eq!(k.core.active_master(), None, "never promoted unsynced");
    k.at(PROMOTION_RETRY.as_secs());
    k.step();
    assert_eq!(
        k.core.active_master(),
        Some("db2"),
        "retried after PROMOTION_RETRY"
    );
}

#[test]
fn reader_is_removed_before_it_is_added_elsewhere_f10() {
    let mut k = online(spec3());
    let ip = k.roles("db3")[0].clone();
    k.checks("db3", [true, true, false, true]); // REPLICATION_FAIL → reader leaves db3
    k.step();
    let new_owner = ["db1", "db2"]
        .into_iter()
        .find(|h| k.roles(h).contains(&ip))
        .expect("reader re-assigned");
    assert!(
        !k.desired_roles(new_owner).contains(&ip),
        "db3 has not confirmed dropping it"
    );
    k.send("db3", true);
    k.step();
    assert!(k.desired_roles(new_owner).contains(&ip));
}

#[test]
fn reader_of_a_dead_host_is_moved_at_once() {
    let mut k = online(spec3());
    let ip = k.roles("db3")[0].clone();
    k.checks("db3", [false, false, true, true]);
    k.step();
    let holders: Vec<&str> = ["db1", "db2"]
        .into_iter()
        .filter(|h| k.desired_roles(h).contains(&ip))
        .collect();
    assert_eq!(holders.len(), 1);
}

#[test]
fn unreachable_report_does_not_count_as_demotion_confirmation_f12() {
    let mut k = online(spec3());
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", false);
    k.unreachable("db1");
    k.step();
    assert!(!k.desired_has_writer("db2"));
}

#[test]
fn restarted_monitor_assumes_recorded_writer_may_hold_a_lease() {
    let mut spec = spec3();
    spec.writer_lease = Duration::from_secs(10);
    let k = online(spec.clone());
    let persisted = k.core.persisted();
    let t = Millis(k.now + 5_000);
    let mut core = Core::restore(spec, &persisted, t);
    assert_eq!(core.active_master(), Some("db1"), "S10: no role changes");
    assert!(core.epoch() > persisted.epoch);
    // db1 dies right after the restart.
    let down = |h: &str| {
        [Check::Ping, Check::Mysql].map(|c| Input::CheckResult {
            host: h.into(),
            check: c,
            outcome: CheckOutcome::Error,
            message: "x".into(),
        })
    };
    let mut ok_inputs: Vec<Input> = down("db1").into();
    for h in ["db2", "db3"] {
        for c in Check::ALL {
            ok_inputs.push(Input::CheckResult {
                host: h.into(),
                check: c,
                outcome: CheckOutcome::Ok,
                message: "OK".into(),
            });
        }
        ok_inputs.push(Input::AgentReport {
            host: h.into(),
            report: AgentReport::Status(AgentFacts {
                read_only: true,
                ..Default::default()
            }),
        });
    }
    let actions = core.step(ok_inputs, t);
    assert_eq!(core.active_master(), Some("db2"));
    assert!(actions.contains(&Action::SaveStatus));
    let has_writer = |c: &Core, at: u64| {
        c.desired_state("db2", Millis(at))
            .is_some_and(|d| d.roles.iter().any(|r| r.name == "writer"))
    };
    assert!(
        !has_writer(&core, t.0 + 20_000),
        "not before the status file records db2 as possibly writable"
    );
    let saved = core.persisted();
    core.saved(&saved);
    // db1's fence budget was recorded as 0 by the kit's agents.
    assert!(!has_writer(&core, t.0 + 9_999));
    assert!(has_writer(&core, t.0 + 10_000));
}

#[test]
fn switchover_away_from_a_writer_whose_agent_is_dead_waits_for_its_kill_seed_494() {
    // Chaos seed 494: db1's agent is killed (its server stays writable, nothing demotes it),
    // then the operator moves the writer. Waiting out db1's lease is not enough: the lease
    // assumes a live agent. The monitor kills db1 and promotes db2 only once the kill worked.
    let mut k = switchover_kit();
    k.send("db1", false);
    k.unreachable("db1");
    k.step();
    k.at(10); // well past db1's lease bound
    k.checks("db1", [true, true, true, true]);
    k.step();
    assert_eq!(
        k.state("db1"),
        HostState::Online,
        "a dead agent alone fails nothing"
    );
    let r = k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    assert!(r.starts_with("OK"), "{r}");
    assert_eq!(k.kills(), [("db1".to_string(), true)], "{:?}", k.logs());
    for _ in 0..3 {
        k.at(5);
        k.send("db1", false);
        k.unreachable("db1");
        k.send("db2", true);
        k.step();
        assert!(
            !k.desired_has_writer("db2"),
            "db2 waits for db1's kill, whatever db1's lease bound says"
        );
    }
    assert!(k.kills().is_empty(), "one kill at a time");
    kill_db1_then_db2_writes(&mut k);
    assert_eq!(writer_count(&k), 1);
}

#[test]
fn a_switchover_without_kill_host_bin_falls_back_to_the_lease_bound() {
    // No fencing configured: nothing better than the lease bound exists (documented limit).
    let mut spec = spec3();
    spec.writer_lease = Duration::from_secs(3);
    let mut k = online(spec);
    k.send_all();
    k.step();
    k.unreachable("db1");
    k.step();
    k.at(10);
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    assert!(k.has_log("Could not kill host 'db1'"), "{:?}", k.logs());
    k.send("db2", true);
    k.step();
    assert!(k.desired_has_writer("db2"));
}

#[test]
fn a_candidate_bound_by_a_peer_promise_keeps_the_role_and_the_monitor_waits() {
    // db2 promised db1 (the writer until the switchover) not to take the role: its refusal is
    // not a failed promotion (every candidate promised the same), so the role stays on db2
    // and the grant is repeated until the promise ends.
    let mut k = online(spec3());
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", true);
    k.step();
    assert!(k.desired_has_writer("db2"));
    let epoch = k.core.epoch();
    let token = k.token();
    let refusal = |left: u64| AgentFacts {
        epoch,
        read_only: true,
        promotion_error: Some("this host promised db1 not to become the writer".into()),
        refused_for_promise: Some(Duration::from_millis(left)),
        lease_token: Some(token.clone()),
        ..Default::default()
    };
    let first = refusal(2_400);
    k.report("db2", first);
    k.step();
    assert!(k.has_log("is not taken by 'db2' yet"), "{:?}", k.logs());
    assert!(!k.has_log("Promotion of 'db2'"), "not a failed promotion");
    assert_eq!(k.core.active_master(), Some("db2"));
    let again = refusal(1_000);
    k.report("db2", again);
    k.step();
    assert!(!k.has_log("is not taken by"), "logged once per wait");
    k.at(3);
    k.send("db2", true); // the promise ended: the repeated grant is taken
    k.step();
    assert!(k.has_log("Host 'db2' is the active master now"));
}

#[test]
fn an_old_writer_whose_agent_dies_after_hearing_of_its_demotion_is_killed_seed_356() {
    // Chaos seed 356: db1 heard that the writer role left it, but its agent was killed before
    // the demotion finished (the reply still showed read_only=0). Delivery alone ends nothing:
    // once the agent is silent, db1 is killed and db2 waits for that.
    let mut k = switchover_kit();
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", false);
    let token = k.token();
    k.report(
        "db1",
        AgentFacts {
            epoch: k.core.epoch(),
            read_only: false, // the demotion is under way, not done
            lease_token: Some(token),
            lease_remaining: Some(Duration::from_millis(2_000)),
            ..Default::default()
        },
    );
    k.step();
    assert!(k.kills().is_empty(), "the agent answers: no kill yet");
    k.at(10); // db1's lease bound has passed; its agent is dead now
    k.send("db1", false);
    k.unreachable("db1");
    k.send("db2", true);
    k.step();
    assert_eq!(k.kills(), [("db1".to_string(), true)], "{:?}", k.logs());
    assert!(!k.desired_has_writer("db2"), "db2 waits for the kill");
    kill_db1_then_db2_writes(&mut k);
}

/// Three online hosts, db1 the writer, a 3 s lease, `kill_host_bin` configured, every agent
/// answered once: the start of the switchover-fence tests (seeds 494 and 356).
fn switchover_kit() -> Kit {
    let mut spec = spec3();
    spec.writer_lease = Duration::from_secs(3);
    spec.kill_host_configured = true;
    let mut k = online(spec);
    k.send_all();
    k.step();
    k
}

/// db1's kill succeeds: only then does db2's desired state hold the writer role.
fn kill_db1_then_db2_writes(k: &mut Kit) {
    k.queue.push(Input::KillResult {
        host: "db1".into(),
        ok: true,
        output: "port shut".into(),
    });
    k.step();
    assert!(k.desired_has_writer("db2"));
}
