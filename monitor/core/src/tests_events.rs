//! The structured events (history, hooks, metrics): every decision of a failover and a
//! switchover is recorded once, in order, with the facts it used.

use crate::testkit::*;
use crate::*;

/// Runs `rounds` obedient rounds `secs` apart and collects their events into `all`.
fn collect(k: &mut Kit, rounds: usize, secs: u64, all: &mut Vec<Event>) {
    for _ in 0..rounds {
        k.at(secs);
        k.send_all();
        k.step();
        all.extend(k.events());
    }
}

fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

#[test]
fn a_failover_records_the_state_change_the_role_moves_and_the_promotion() {
    let mut k = Kit::online(spec3());
    k.at(120);
    k.step();
    let mut all = Vec::new();
    k.checks("db1", [false, false, true, true]);
    k.step();
    all.extend(k.events());
    collect(&mut k, 20, 1, &mut all);

    let state = all
        .iter()
        .find(|e| e.kind == EventKind::StateChange && e.host.as_deref() == Some("db1"))
        .expect("db1's state change");
    assert_eq!(state.from.as_deref(), Some("ONLINE"));
    assert_eq!(state.to.as_deref(), Some("HARD_OFFLINE"));
    assert!(
        state.rule.as_deref().is_some_and(|r| r.starts_with('O')),
        "{state:?}"
    );
    assert!(state.message.contains("mysql: not OK"), "{state:?}");

    let started = all
        .iter()
        .find(|e| e.kind == EventKind::PromotionStarted)
        .expect("a promotion");
    assert_eq!(started.host.as_deref(), Some("db2"));
    assert_eq!(started.cause.as_deref(), Some("failover"));
    assert_eq!(
        started.role.as_deref(),
        Some(format!("writer({W})").as_str())
    );

    let done: Vec<&Event> = all
        .iter()
        .filter(|e| e.kind == EventKind::PromotionDone)
        .collect();
    assert_eq!(done.len(), 1, "{:?}", kinds(&all));
    assert_eq!(done[0].host.as_deref(), Some("db2"));
    assert!(done[0].duration_ms.is_some());
    assert_eq!(done[0].cause.as_deref(), Some("failover"));

    let order: Vec<EventKind> = kinds(&all)
        .into_iter()
        .filter(|k| {
            matches!(
                k,
                EventKind::StateChange | EventKind::PromotionStarted | EventKind::PromotionDone
            )
        })
        .collect();
    let pos = |kind| order.iter().position(|k| *k == kind).unwrap_or(usize::MAX);
    assert!(pos(EventKind::StateChange) < pos(EventKind::PromotionStarted));
    assert!(pos(EventKind::PromotionStarted) < pos(EventKind::PromotionDone));
    // The writer's move is recorded as a role move too, from db1 to nobody or db2.
    assert!(all.iter().any(|e| e.kind == EventKind::RoleMove
        && e.role.as_deref() == Some(format!("writer({W})").as_str())
        && e.from.as_deref() == Some("db1")));
}

#[test]
fn a_switchover_is_recorded_as_one_with_its_duration() {
    let mut k = Kit::online(spec3());
    k.at(120);
    k.step();
    let mut all = Vec::new();
    k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    all.extend(k.events());
    collect(&mut k, 5, 1, &mut all);
    let started: Vec<&Event> = all
        .iter()
        .filter(|e| e.kind == EventKind::PromotionStarted)
        .collect();
    assert_eq!(started.len(), 1, "{:?}", kinds(&all));
    assert_eq!(started[0].cause.as_deref(), Some("switchover"));
    assert_eq!(started[0].from.as_deref(), Some("db1"));
    let done = all
        .iter()
        .find(|e| e.kind == EventKind::PromotionDone)
        .expect("done");
    assert!(done.duration_ms.is_some_and(|d| d >= 1000), "{done:?}");
    assert_eq!(done.cause.as_deref(), Some("switchover"));
    // No state changed: nobody failed.
    assert!(!all.iter().any(|e| e.kind == EventKind::StateChange));
}

#[test]
fn mode_changes_and_admin_state_changes_are_recorded() {
    let mut k = Kit::online(spec3());
    k.cmd(AdminCommand::SetMode(Mode::Manual));
    let e = k.events();
    assert!(e.iter().any(|e| e.kind == EventKind::ModeChange
        && e.from.as_deref() == Some("ACTIVE")
        && e.to.as_deref() == Some("MANUAL")));
    k.cmd(AdminCommand::SetOffline("db3".into()));
    let e = k.events();
    let s = e
        .iter()
        .find(|e| e.kind == EventKind::StateChange)
        .expect("state change");
    assert_eq!(s.rule.as_deref(), Some("admin"));
    assert_eq!(s.to.as_deref(), Some("ADMIN_OFFLINE"));
    // Reader IPs held by db3 moved away: recorded as role moves.
    assert!(e
        .iter()
        .any(|e| e.kind == EventKind::RoleMove && e.from.as_deref() == Some("db3")));
}

#[test]
fn event_kinds_have_one_spelling() {
    for k in EventKind::ALL {
        assert_eq!(EventKind::parse(k.name()), Some(k));
    }
}
