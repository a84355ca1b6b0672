//! Semi-sync awareness: the active master's fallback to asynchronous replication is recorded,
//! shown and, with `refuse_failover_after_async`, stops the automatic writer failover.

use crate::testkit::*;
use crate::*;

const ASYNC: SemiSyncFacts = SemiSyncFacts {
    enabled: true,
    active: false,
};
const SYNC: SemiSyncFacts = SemiSyncFacts {
    enabled: true,
    active: true,
};

fn online(refuse: bool) -> Kit {
    let mut spec = spec3();
    spec.refuse_failover_after_async = refuse;
    let mut k = Kit::online(spec);
    k.at(120);
    k.step();
    assert_eq!(k.core.active_master(), Some("db1"));
    k
}

fn set(k: &mut Kit, h: &str, s: SemiSyncFacts) {
    k.semi_sync.retain(|(n, _)| n != h);
    k.semi_sync.push((h.to_string(), s));
    k.obey_rounds(1);
}

/// db1 dies; returns whether any step logged `needle`.
fn kill_db1(k: &mut Kit, needle: &str) -> bool {
    let mut said = false;
    for _ in 0..2 {
        k.checks("db1", [false, false, false, false]);
        k.unreachable("db1");
        k.step();
        said |= k.has_log(needle);
        k.at(10);
    }
    for _ in 0..2 {
        k.send_all();
        k.step();
        said |= k.has_log(needle);
    }
    said
}

#[test]
fn the_fallback_is_recorded_logged_and_ends_when_semi_sync_is_back() {
    let mut k = online(false);
    set(&mut k, "db1", SYNC);
    assert_eq!(k.core.async_fallback(), None);
    set(&mut k, "db1", ASYNC);
    let (host, _) = k.core.async_fallback().expect("recorded");
    assert_eq!(host, "db1");
    assert!(k.has_log("fell back to asynchronous replication"));
    // A replica that is not the active master reporting OFF means nothing.
    set(&mut k, "db2", ASYNC);
    assert_eq!(k.core.async_fallback().map(|x| x.0), Some("db1"));
    set(&mut k, "db1", SYNC);
    assert_eq!(k.core.async_fallback(), None);
    assert!(k.has_log("is active again"));
}

#[test]
fn without_the_setting_the_writer_still_fails_over() {
    let mut k = online(false);
    set(&mut k, "db1", ASYNC);
    kill_db1(&mut k, "");
    assert_eq!(k.core.role_owner("writer", W), Some("db2"));
    // Once db2 is confirmed, db1's fallback no longer matters.
    k.obey_rounds(2);
    assert_eq!(k.core.active_master(), Some("db2"));
    assert_eq!(k.core.async_fallback(), None);
}

#[test]
fn with_the_setting_the_writer_waits_for_an_operator() {
    let mut k = online(true);
    set(&mut k, "db1", ASYNC);
    let x = k
        .core
        .explain(k.now())
        .into_iter()
        .find(|x| x.role.name == "writer")
        .expect("writer");
    assert!(x.successors.is_empty(), "{x:?}");
    let db2 = x.passed_over.iter().find(|p| p.host == "db2").expect("db2");
    assert!(db2.why.contains("asynchronous"), "{db2:?}");

    const REFUSED: &str = "Not failing the writer role over";
    assert!(kill_db1(&mut k, REFUSED), "the refusal is logged");
    assert_eq!(k.core.role_owner("writer", W), None, "not failed over");
    for _ in 0..3 {
        k.send_all();
        k.step();
        assert!(!k.has_log(REFUSED), "said once");
    }
    assert_eq!(
        k.core.role_owner("writer", W),
        None,
        "still not failed over"
    );
    // The operator decides.
    let r = k.cmd(AdminCommand::MoveRole {
        role: "writer".into(),
        host: "db2".into(),
        force: false,
    });
    assert!(r.starts_with("OK"), "{r}");
    k.obey_rounds(3);
    assert_eq!(k.core.active_master(), Some("db2"));
    assert_eq!(k.core.async_fallback(), None);
}
