//! Teardown leaves nothing behind: not on drop, not on panic, not after a crashed owner.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ha_lab::{cleanup, Lab, LabOptions};

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

#[test]
fn panic_inside_a_test_tears_everything_down() {
    let mut seen: Option<(String, Vec<u32>, std::path::PathBuf)> = None;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let lab = Lab::start(LabOptions::default()).unwrap();
        let agent = lab.spawn_in("db2", "sleep", ["600"], &[]).unwrap();
        lab.freeze("db3").unwrap(); // even a frozen host must go away
        let mut pids: Vec<u32> = lab
            .host_names()
            .iter()
            .map(|h| lab.mysqld_pid(h).unwrap().unwrap())
            .collect();
        pids.push(agent.pid().unwrap());
        seen = Some((lab.prefix().to_string(), pids, lab.dir().to_path_buf()));
        panic!("test failure with a lab alive");
    }));
    assert!(r.is_err());
    let (prefix, pids, dir) = seen.unwrap();
    assert!(
        cleanup::leftovers(&prefix).unwrap().is_empty(),
        "{:?}",
        cleanup::leftovers(&prefix)
    );
    for p in pids {
        assert!(!alive(p), "process {p} survived");
    }
    assert!(!dir.exists() || std::env::var("HA_LAB_KEEP").is_ok());
}

#[test]
fn kept_lab_is_removed_by_prefix_and_stale_lab_by_cleanup() {
    let lab = Lab::start(LabOptions::hosts(1)).unwrap();
    let prefix = lab.prefix().to_string();
    let pid = lab.mysqld_pid("db1").unwrap().unwrap();
    let state = lab.keep().unwrap();
    assert!(state.kept);
    // A kept lab survives its handle and is not "stale".
    assert!(alive(pid));
    assert!(!cleanup::is_stale(&prefix));
    assert!(!cleanup::remove_stale().unwrap().contains(&prefix));
    let r = cleanup::teardown(&prefix).unwrap();
    assert!(r.killed.contains(&(pid as i32)));
    assert!(cleanup::leftovers(&prefix).unwrap().is_empty());
    assert!(!alive(pid));

    // A lab whose owner died (simulated by rewriting its owner) is stale and gets removed.
    let lab = Lab::start(LabOptions::hosts(1)).unwrap();
    let prefix = lab.prefix().to_string();
    let pid = lab.mysqld_pid("db1").unwrap().unwrap();
    let mut st = lab.keep().unwrap();
    st.kept = false;
    st.owner = Some(cleanup::Owner {
        pid: std::process::id(),
        start_time: 1,
    });
    cleanup::write_state(&st).unwrap();
    assert!(cleanup::is_stale(&prefix));
    assert!(cleanup::remove_stale().unwrap().contains(&prefix));
    assert!(cleanup::leftovers(&prefix).unwrap().is_empty());
    assert!(!alive(pid));
}

#[test]
fn prefixes_are_strict() {
    assert!(cleanup::valid_prefix("hl3f2a"));
    assert!(cleanup::valid_prefix("hldemo"));
    assert!(!cleanup::valid_prefix("hl3f2"));
    assert!(!cleanup::valid_prefix("eth0"));
    assert!(!cleanup::valid_prefix("HL3F2A"));
    assert_eq!(cleanup::prefix_of("hl3f2a-db12-h"), Some("hl3f2a"));
    assert_eq!(cleanup::prefix_of("docker0"), None);
    assert_eq!(cleanup::prefix_of("veth-abc"), None);
    assert!(cleanup::teardown("docker").is_err());
}
