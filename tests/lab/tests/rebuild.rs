//! `Lab::rebuild_from`: an old master with an unacknowledged (errant) transaction is rebuilt
//! from the new writer while the writer keeps writing; afterwards both directions of the
//! master-master pair replicate (IO and SQL running, no error), rows flow both ways, the errant
//! row is gone and the rebuilt host's GTID history is the writer's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ha_lab::{wait_until, Lab, LabOptions};

fn count(lab: &Lab, host: &str, filter: &str) -> u64 {
    lab.sql_value(
        host,
        &format!("SELECT COUNT(*) FROM hatest.t WHERE {filter}"),
    )
    .expect("count")
    .expect("a row")
    .parse()
    .expect("a number")
}

fn wait_row(lab: &Lab, host: &str, v: &str) {
    wait_until(
        &format!("row {v} on {host}"),
        Duration::from_secs(20),
        || Ok((count(lab, host, &format!("v = '{v}'")) == 1).then_some(())),
    )
    .expect("row arrives");
}

fn state(lab: &Lab, host: &str) -> BTreeMap<(u32, u32), u64> {
    let s = lab
        .sql_value(host, "SELECT @@GLOBAL.gtid_binlog_state")
        .expect("state")
        .unwrap_or_default();
    s.split(',')
        .filter(|g| !g.is_empty())
        .map(|g| {
            let v: Vec<u64> = g.split('-').map(|x| x.parse().expect("gtid")).collect();
            ((v[0] as u32, v[1] as u32), v[2])
        })
        .collect()
}

#[test]
fn rebuild_an_old_master_with_an_errant_transaction() {
    let lab = Lab::start(LabOptions::default()).expect("lab");
    lab.make_writable("db1").expect("writable");
    lab.sql("db1", "INSERT INTO hatest.t(v) VALUES ('before')")
        .expect("insert");
    for h in ["db2", "db3"] {
        wait_row(&lab, h, "before");
    }
    // db1 commits a transaction nobody receives, then stops being the writer.
    for h in ["db2", "db3"] {
        lab.sql(h, "STOP SLAVE IO_THREAD").expect("stop io");
    }
    lab.sql(
        "db1",
        "INSERT INTO hatest.t(v) VALUES ('errant'); SET GLOBAL read_only = 1",
    )
    .expect("errant write");
    lab.sql("db2", "STOP SLAVE").expect("stop");
    lab.make_writable("db2").expect("db2 writable");
    lab.change_master("db3", "db2").expect("db3 follows db2");
    // The new writer commits before it hears from db1 again (as when db1 was cut off); db1's
    // transaction then cannot be applied in order on db2, nor db2's on db1.
    lab.sql("db2", "INSERT INTO hatest.t(v) VALUES ('first on db2')")
        .expect("insert on db2");
    lab.sql("db2", "START SLAVE")
        .expect("db2 follows db1 again");

    // The new writer writes all the time.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    /// Stops the writer when the scope ends, also by a panic (the scope joins its threads).
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let _stop_writer = StopOnDrop(stop.clone());
        let (stop2, written2, lab2) = (stop.clone(), written.clone(), &lab);
        s.spawn(move || {
            let mut n = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                n += 1;
                if let Err(e) = lab2.sql("db2", &format!("INSERT INTO hatest.t(v) VALUES ('w{n}')"))
                {
                    panic!("writer insert w{n}: {e}");
                }
                written2.store(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // Both directions now fail with 1950 (out-of-order sequence number).
        wait_until(
            "db1 and db2 stuck on the divergence",
            Duration::from_secs(20),
            || {
                for h in ["db1", "db2"] {
                    let r = lab.replication(h)?;
                    if !r
                        .as_ref()
                        .is_some_and(|r| r.last_sql_error.contains("out-of-order"))
                    {
                        return Err(ha_lab::Error::Other(format!("{h}: {r:?}")));
                    }
                }
                Ok(Some(()))
            },
        )
        .expect("divergence visible");

        let t = std::time::Instant::now();
        let r = lab.rebuild_from("db1", "db2").expect("rebuild");
        eprintln!("rebuilt in {:?}: {r:?}", t.elapsed());
        assert_eq!(r.schemas, vec!["hatest".to_string()]);
        assert!(r.source_repointed);
        std::thread::sleep(Duration::from_secs(1));
    });
    let n = written.load(Ordering::Relaxed);
    assert!(n > 10, "the writer wrote during the rebuild ({n})");

    // Both directions healthy, everything written on db2 is on db1, the errant row is gone.
    for (h, src) in [("db1", "db2"), ("db2", "db1"), ("db3", "db2")] {
        let st = lab.replication(h).expect("status").expect("replica");
        assert!(
            st.healthy() && st.source.as_deref() == Some(src),
            "{h}: {st:?}"
        );
    }
    wait_row(&lab, "db1", &format!("w{n}"));
    assert_eq!(
        count(&lab, "db1", "v LIKE 'w%'"),
        n,
        "every row written on db2 is on db1"
    );
    assert_eq!(count(&lab, "db1", "v = 'errant'"), 0);
    assert_eq!(count(&lab, "db1", "v = 'before'"), 1);
    // db1's history is db2's: nothing db2 lacks.
    let (s1, s2) = (state(&lab, "db1"), state(&lab, "db2"));
    for (k, seq) in &s1 {
        assert!(
            s2.get(k).is_some_and(|m| m >= seq),
            "db1 {s1:?} has GTIDs db2 {s2:?} lacks"
        );
    }
    // And the pair works the other way round: db1 as the writer again.
    lab.make_read_only("db2").expect("db2 read-only");
    lab.make_writable("db1").expect("db1 writable");
    lab.sql("db1", "INSERT INTO hatest.t(v) VALUES ('back on db1')")
        .expect("insert on db1");
    wait_row(&lab, "db2", "back on db1");
    wait_row(&lab, "db3", "back on db1");
    for h in ["db1", "db2", "db3"] {
        let st = lab.replication(h).expect("status").expect("replica");
        assert!(st.healthy(), "{h}: {st:?}");
    }
}
