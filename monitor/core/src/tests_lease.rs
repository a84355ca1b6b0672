//! Writer lease v2 in the core: monitor restarts, the status file as write-ahead record of
//! grants, replies during a promotion, and epochs (no wrap, no absurd jumps, resync).

use crate::testkit::*;
use crate::*;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(10);

fn online_with_lease() -> Kit {
    Kit::online_with_lease(LEASE)
}

fn inputs_db1_down_others_ok(k: &Kit) -> Vec<Input> {
    let mut v = Vec::new();
    for c in [Check::Ping, Check::Mysql] {
        v.push(Input::CheckResult {
            host: "db1".into(),
            check: c,
            outcome: CheckOutcome::Error,
            message: "down".into(),
        });
    }
    for h in ["db2", "db3"] {
        for c in Check::ALL {
            v.push(Input::CheckResult {
                host: h.into(),
                check: c,
                outcome: CheckOutcome::Ok,
                message: "OK".into(),
            });
        }
        v.push(Input::AgentReport {
            host: h.into(),
            report: AgentReport::Status(AgentFacts {
                read_only: true,
                lease_token: Some(k.token()),
                ..Default::default()
            }),
        });
    }
    v
}

fn grants_writer(core: &Core, host: &str, at: u64) -> bool {
    core.desired_state(host, Millis(at))
        .is_some_and(|d| d.roles.iter().any(|r| r.name == "writer"))
}

/// S3/S13 with a monitor restart while it waits for the old writer's lease: the restarted
/// monitor still waits (restart time + lease + budget), whatever the file's role table says.
#[test]
fn monitor_restart_while_waiting_for_the_old_writers_lease_keeps_waiting() {
    let mut k = online_with_lease();
    let inputs = inputs_db1_down_others_ok(&k);
    k.queue.extend(inputs);
    k.step();
    assert_eq!(k.core.active_master(), Some("db2"), "failover decided");
    assert!(!k.desired_has_writer("db2"), "waiting for db1's lease");
    let file = k.core.persisted();
    let db1 = file.hosts.iter().find(|h| h.name == "db1").expect("db1");
    assert_eq!(
        db1.exposure.as_ref().and_then(|x| x.may_write),
        Some(true),
        "the file records that db1 may still write"
    );
    // kill -9 and restart 1 s later.
    let t = k.now + 1_000;
    let mut core = Core::restore(k.core.spec().clone(), &file, Millis(t));
    assert_eq!(core.active_master(), Some("db2"), "S10: no role changes");
    let mut ok = inputs_db1_down_others_ok(&k);
    ok.retain(|i| !matches!(i, Input::CheckResult { host, .. } if host == "db1"));
    let actions = core.step(ok, Millis(t));
    assert!(actions.contains(&Action::SaveStatus));
    let saved = core.persisted();
    core.saved(&saved);
    // The kit's agents declare a fence budget of 0.
    assert!(!grants_writer(&core, "db2", t + 9_999));
    assert!(grants_writer(&core, "db2", t + 10_000));
}

#[test]
fn a_status_file_from_before_exposure_records_exposes_every_writer_candidate() {
    let k = online_with_lease();
    let mut file = k.core.persisted();
    for h in &mut file.hosts {
        h.exposure = None;
    }
    let t = k.now;
    let core = Core::restore(k.core.spec().clone(), &file, Millis(t));
    // db2 may have been granted by the previous monitor for all we know; db3 cannot be writer.
    let views = core.hosts();
    assert_eq!(views.len(), 3);
    let e = |h: HostId| core.hosts[h].exposure.may_write(Millis(t));
    assert!(e(DB1) && e(DB2) && !e(DB3));
    assert!(core.hosts[DB2].exposure.may_write(Millis(
        t + LEASE.as_millis() as u64 + ha_lease::MAX_FENCE_BUDGET_MS - 1
    )));
}

#[test]
fn no_writer_grant_before_the_status_file_records_it() {
    let mut k = online_with_lease();
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", true);
    // The step that sees db1's confirmation wants to save; the save fails.
    k.queue.clear();
    k.send("db1", true);
    let inputs = std::mem::take(&mut k.queue);
    let actions = k.core.step(inputs, k.now());
    let _ = actions;
    k.core.save_failed();
    // db2 was recorded when the move happened (the kit saved then); take that record away to
    // model a monitor whose every save since failed.
    k.core.on_record[DB2] = false;
    assert!(!k.desired_has_writer("db2"));
    // The next step retries the save; once it succeeds the grant goes out.
    let actions = k.core.step(Vec::new(), k.now());
    assert!(
        actions.contains(&Action::SaveStatus),
        "a failed save is retried"
    );
    let saved = k.core.persisted();
    k.core.saved(&saved);
    assert!(k.desired_has_writer("db2"));
}

/// A promotion's own replies (converged=false, read_only=1 so far) never clear the flag: if the
/// writer moves on, the half-promoted host has to confirm its demotion first.
#[test]
fn replies_during_a_promotion_never_clear_the_may_write_flag() {
    let mut k = online_with_lease();
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", true);
    k.step();
    let d = k.send("db2", false).expect("grant");
    assert!(d.roles.iter().any(|r| r.name == "writer"));
    // Still syncing: no writer role yet, read_only=1, not converged.
    k.report(
        "db2",
        AgentFacts {
            epoch: d.epoch,
            read_only: true,
            lease_token: Some(k.token()),
            ..Default::default()
        },
    );
    k.step();
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db1".into(),
        force: false,
    });
    assert!(
        !k.desired_has_writer("db1"),
        "db2 may become writable any moment: db1 waits for its demotion"
    );
    k.send("db2", true); // a request without the writer role, answered with no lease
    k.step();
    assert!(k.desired_has_writer("db1"));
}

/// A restart loses nothing the core knew: a host that went down shortly before the restart and
/// comes back without a reboot is ONLINE again by rule A3, as without the restart.
#[test]
fn a_restart_keeps_what_rule_a3_needs() {
    let mut k = Kit::online(spec3());
    k.send_all(); // db3 reports its uptime while ONLINE
    k.step();
    k.checks("db3", [true, false, true, true]);
    k.step();
    assert_eq!(k.state("db3"), HostState::HardOffline);
    let file = k.core.persisted();
    let mut core = Core::restore(k.core.spec().clone(), &file, Millis(k.now + 2_000));
    let back = k.now + 20_000;
    let mut inputs = Vec::new();
    for c in Check::ALL {
        inputs.push(Input::CheckResult {
            host: "db3".into(),
            check: c,
            outcome: CheckOutcome::Ok,
            message: "OK".into(),
        });
    }
    inputs.push(Input::AgentReport {
        host: "db3".into(),
        report: AgentReport::Status(AgentFacts {
            uptime_secs: 1000.0 + back as f64 / 1000.0,
            read_only: true,
            ..Default::default()
        }),
    });
    core.step(inputs, Millis(back));
    core.step(Vec::new(), Millis(back));
    assert_eq!(core.state("db3"), Some(HostState::Online));
}

#[test]
fn an_absurd_epoch_from_an_agent_is_refused_and_nothing_wraps() {
    let mut k = online_with_lease();
    let before = k.core.epoch();
    k.report(
        "db3",
        AgentFacts {
            epoch: u64::MAX,
            read_only: true,
            ..Default::default()
        },
    );
    k.step();
    assert_eq!(k.core.epoch(), before);
    assert!(k.has_log("reports epoch 18446744073709551615, absurdly far above ours"));
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    assert_eq!(k.core.epoch(), before + 1);
    // A status file at the end of the range: restoring does not wrap.
    let mut file = k.core.persisted();
    file.epoch = u64::MAX;
    let core = Core::restore(k.core.spec().clone(), &file, k.now());
    assert_eq!(core.epoch(), u64::MAX);
}

#[test]
fn a_stale_epoch_refusal_resynchronises_above_the_agents_epoch() {
    let mut k = online_with_lease();
    let before = k.core.epoch();
    k.queue.push(Input::AgentReport {
        host: "db2".into(),
        report: AgentReport::StaleEpoch { held: before + 5 },
    });
    k.step();
    assert_eq!(k.core.epoch(), before + 6);
    assert!(k.has_log("already applied epoch"));
    let d = k.core.desired_state("db2", k.now()).expect("desired");
    assert_eq!(d.epoch, before + 6);
    // An absurd one is refused.
    k.queue.push(Input::AgentReport {
        host: "db2".into(),
        report: AgentReport::StaleEpoch {
            held: before + 7 + ha_lease::EPOCH_JUMP_LIMIT,
        },
    });
    k.step();
    assert_eq!(k.core.epoch(), before + 6);
}

/// Chaos seed 109: the confirmed writer fenced itself while the monitor was away; its relay
/// log then held a diverged peer's transactions it can never apply. Renewing its role is the
/// same tenure (nobody else had the role), so the grant is forced: the relay-log gate must not
/// take the only writer down. A new owner is never forced, and the tenure survives a restart
/// only while the file still names the same owner.
#[test]
fn the_confirmed_writers_renewed_grant_does_not_depend_on_its_relay_log() {
    let mut k = online_with_lease();
    k.obey_rounds(2);
    assert_eq!(k.core.confirmed_writer(), Some("db1"));
    let d = k.core.desired_state("db1", k.now()).expect("desired");
    assert!(
        d.force,
        "renewals within the confirmed tenure are forced: {d:?}"
    );
    for h in ["db2", "db3"] {
        let d = k.core.desired_state(h, k.now()).expect("desired");
        assert!(!d.force, "{h}: {d:?}");
    }
    // A monitor restart continues the tenure.
    let saved = k.core.persisted();
    assert_eq!(saved.confirmed_writer.as_deref(), Some("db1"));
    let restored = Core::restore(k.core.spec().clone(), &saved, k.now());
    assert_eq!(restored.confirmed_writer(), Some("db1"));
    // A file whose writer is someone else does not carry the tenure over.
    let mut other = saved.clone();
    other.confirmed_writer = Some("db2".into());
    let restored = Core::restore(k.core.spec().clone(), &other, k.now());
    assert_eq!(restored.confirmed_writer(), None);
    // A switchover: the new owner's promotion runs the gate (not forced).
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    k.send("db1", true);
    k.step();
    let d = k.core.desired_state("db2", k.now()).expect("desired");
    assert!(d.roles.iter().any(|r| r.name == "writer"), "{d:?}");
    assert!(!d.force, "a new writer waits for its relay log: {d:?}");
}

/// Peer promises (issue 14): the writer is told every other host eligible for the writer role,
/// reachable or not; nobody else is told any.
#[test]
fn the_writer_is_told_every_other_writer_candidate() {
    let mut k = online_with_lease();
    let now = k.now();
    let peers = |k: &Kit, h: &str| {
        k.core
            .desired_state(h, now)
            .map(|d| d.writer_peers)
            .unwrap_or_default()
    };
    assert_eq!(peers(&k, "db1"), ["db2"]);
    assert!(peers(&k, "db2").is_empty() && peers(&k, "db3").is_empty());
    k.unreachable("db2");
    k.step();
    assert_eq!(
        peers(&k, "db1"),
        ["db2"],
        "an unreachable candidate is still a peer"
    );
}
