//! Redundant monitors on etcd (issue 18), on the lab: three etcd members from Debian's package
//! and two monitors, `mon` (leading first) and `mon2` (standby).

use std::time::{Duration, Instant};

use ha_acceptance::redundant::{Redundant, ETCD_MEMBERS, LEASE_TTL_SECS};
use ha_acceptance::{ClusterOptions, Invariants, Show};

fn roles_of(s: &Show) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = s
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.state.clone(), h.roles.clone()))
        .collect();
    v.sort();
    v
}

/// kill -9 the leader in steady state: mon2 leads within the takeover target, no host changes
/// state, no role moves; ha-control pointed at the dead leader's standby follows the leader.
#[test]
fn a_standby_takes_over_a_killed_leader_without_changing_anything() {
    let r = Redundant::start(ClusterOptions::fast()).expect("redundant cluster");
    let inv = Invariants::start(&r.cluster.lab);
    let before = r.cluster.show().expect("show");
    let (_, term) = r.leader_key("mon2").expect("etcd").expect("mon leads");

    // A standby answers with the leader's address, and ha-control follows it.
    let via_standby = r
        .cluster
        .control_raw(&["--monitor", &r.addr("mon2"), "--timeout", "5", "show"])
        .expect("ha-control");
    assert_eq!(via_standby.code, 0, "{via_standby:?}");
    assert!(
        via_standby
            .stdout
            .contains(&format!("# Monitor {} leads (term {term})", r.addr("mon"))),
        "{via_standby:?}"
    );

    let killed = Instant::now();
    r.monitor("mon").expect("mon").kill().expect("kill -9 mon");
    let (new_term, took) = r
        .wait_leader("mon2", term, killed, Duration::from_secs(20))
        .expect("mon2 takes over");
    assert!(new_term > term, "terms grow: {term} then {new_term}");
    eprintln!("takeover: leader key after {took:?}");
    r.cluster.set_control_addr(&r.addr("mon2"));
    let after =
        ha_acceptance::ha_lab::wait_until("mon2 answers show", Duration::from_secs(20), || {
            Ok(r.cluster.show().ok())
        })
        .expect("show from mon2");
    assert_eq!(roles_of(&before), roles_of(&after), "{}", r.diagnostics());
    assert_eq!(before.active_master, after.active_master);
    // A takeover is at most the lease TTL plus a little (generous: assert behaviour, the
    // benchmark measures speed).
    assert!(
        took < Duration::from_secs(LEASE_TTL_SECS + 8),
        "takeover took {took:?}"
    );
    let log = r.log_of("mon2");
    assert!(
        log.contains(&format!("Leading in term {new_term}")),
        "{log}"
    );
    // Still no state change after a while under the new leader.
    std::thread::sleep(Duration::from_secs(3));
    let later = r.cluster.show().expect("show");
    assert_eq!(roles_of(&before), roles_of(&later), "{}", r.diagnostics());
    inv.assert_clean();
    let _ = ETCD_MEMBERS;
}
