//! Startup voting (§7.4) and status-file persistence (§7.2, §9.3).

use crate::testkit::*;
use crate::*;

fn ri(n: &str, ip: &str) -> RoleInstance {
    RoleInstance::new(n, ip)
}

fn info(
    host: &str,
    agent: Option<(HostState, Vec<RoleInstance>)>,
    system: Option<SystemFacts>,
) -> StartupHostInfo {
    StartupHostInfo {
        host: host.into(),
        agent,
        agent_epoch: Some(7),
        system,
        facts: None,
    }
}

fn sys(writable: bool, ips: &[&str], master: Option<&str>) -> SystemFacts {
    SystemFacts {
        writable,
        ips_present: ips.iter().map(|s| s.to_string()).collect(),
        master: master.map(Into::into),
    }
}

#[test]
fn startup_vote_gives_writer_to_the_writable_host_and_continues_the_epoch() {
    let infos = vec![
        info(
            "db1",
            Some((HostState::Online, vec![])),
            Some(sys(false, &[], Some("db2"))),
        ),
        info(
            "db2",
            Some((HostState::Online, vec![ri("writer", W)])),
            Some(sys(true, &[W, "10.0.0.101"], None)),
        ),
        info(
            "db3",
            Some((HostState::Online, vec![ri("reader", "10.0.0.102")])),
            Some(sys(false, &["10.0.0.102"], Some("db2"))),
        ),
    ];
    let (core, actions) = Core::startup(spec3(), None, infos, Millis(5));
    assert_eq!(core.active_master(), Some("db2"));
    assert_eq!(core.role_owner("reader", "10.0.0.101"), Some("db2"));
    assert_eq!(core.role_owner("reader", "10.0.0.102"), Some("db3"));
    assert_eq!(core.mode(), Mode::Active);
    assert_eq!(core.epoch(), 8, "above every epoch an agent applied");
    assert!(actions.contains(&Action::SaveStatus));
    assert!(actions.iter().any(
        |a| matches!(a, Action::Log { message, .. } if message.starts_with("Startup status:"))
    ));
}

#[test]
fn startup_conflict_with_careful_startup_goes_passive_with_the_table_as_cause() {
    let infos = vec![
        info(
            "db1",
            Some((HostState::Online, vec![ri("writer", W)])),
            Some(sys(true, &[W], None)),
        ),
        info(
            "db2",
            Some((HostState::Online, vec![])),
            Some(sys(true, &[W], None)),
        ),
        info("db3", None, None),
    ];
    let (core, actions) = Core::startup(spec3(), None, infos, Millis(5));
    assert_eq!(core.mode(), Mode::Passive);
    assert!(core
        .passive_cause()
        .starts_with("Conflicting roles during startup:\n\nStartup status:\n\nRoles:"));
    assert!(core.passive_cause().contains("writer(10.0.0.100)"));
    assert!(core
        .show_text()
        .contains("# Cause: Conflicting roles during startup:"));
    assert!(!actions.contains(&Action::SaveStatus));
    assert!(core.agent_down("db3"));
    assert_eq!(
        core.active_master(),
        Some("db1"),
        "db1 has more votes (agent)"
    );
}

#[test]
fn startup_conflict_without_careful_startup_keeps_the_configured_mode() {
    let mut spec = spec3();
    spec.careful_startup = false;
    let infos = vec![
        info("db1", None, Some(sys(true, &[W], None))),
        info("db2", None, Some(sys(true, &[W], None))),
    ];
    let (core, _) = Core::startup(spec, None, infos, Millis(5));
    assert_eq!(core.mode(), Mode::Active);
    assert_eq!(
        core.active_master(),
        Some("db1"),
        "vote tie goes to config order (F1)"
    );
}

#[test]
fn startup_state_is_the_worst_of_stored_and_agent_and_hard_offline_loses_the_writer_vote() {
    let stored = PersistedState {
        confirmed_writer: None,
        epoch: 3,
        hosts: vec![PersistedHost {
            name: "db1".into(),
            state: HostState::HardOffline,
            roles: vec![ri("writer", W), ri("bogus", "1.1.1.1")],
            flap: Default::default(),
            last_state_change: None,
            last_uptime: 0.0,
            promotion_failed_at: None,
            exposure: None,
        }],
    };
    let infos = vec![
        info("db1", Some((HostState::Online, vec![])), None),
        info("db2", Some((HostState::AwaitingRecovery, vec![])), None),
    ];
    let (core, actions) = Core::startup(spec3(), Some(&stored), infos, Millis(5));
    assert_eq!(core.state("db1"), Some(HostState::HardOffline));
    assert_eq!(core.state("db2"), Some(HostState::AwaitingRecovery));
    assert_eq!(core.active_master(), None);
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Log { message, .. } if message.contains("Detected change in role definitions"))));
}

#[test]
fn status_round_trips_through_persist_and_restore() {
    let k = Kit::online(spec3());
    let p = k.core.persisted();
    let restored = Core::restore(spec3(), &p, Millis(k.now));
    let mut p2 = restored.persisted();
    assert_eq!(p2.epoch, p.epoch + 1);
    p2.epoch = p.epoch;
    assert_eq!(p2, p, "states and roles round-trip (mmm Agents.t case 2)");
}
