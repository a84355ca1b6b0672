//! # ha-lab: a real MariaDB cluster in Linux network namespaces
//!
//! The lab gives integration tests (agent, monitor, acceptance) and the demo real hosts on a
//! real network, on one machine, as root:
//!
//! * one network namespace per MariaDB host (`<prefix>-db1` … `<prefix>-dbN`), one for the
//!   monitor (`<prefix>-mon`) and one for clients (`<prefix>-cli`), joined by one bridge
//!   (`<prefix>-br`, no address) through veth pairs; inside each namespace the interface is
//!   `eth0`;
//! * optionally more namespaces ([`LabOptions::extra_nodes`], `.20, .21, …`), for example
//!   etcd members started by [`Lab::start_etcd`];
//! * addresses from a per-lab `10.a.b.0/24`: hosts `.11, .12, …`, monitor `.2`, client `.3`;
//!   suggested role IPs: writer `.160`, readers `.161 …` ([`Lab::writer_vip`],
//!   [`Lab::reader_vips`]). No default route anywhere, so nothing leaves the lab;
//! * `mariadbd` (Debian's 10.11) in each DB namespace with its own datadir/socket/config under
//!   the lab directory: GTID + `gtid_strict_mode`, binlog + `log_slave_updates`, `read_only=1`
//!   everywhere, semi-sync AFTER_SYNC with a 30 000 s master timeout (no silent async fallback),
//!   `slave_net_timeout=4`, `MASTER_CONNECT_RETRY=1`;
//! * the field-notes topology: db1 ⇄ db2 replicate from each other, db3… from db1, all with
//!   `MASTER_USE_GTID=slave_pos`. Nobody is writable: deciding that is ha-agent's job
//!   ([`Lab::make_writable`] exists for lab-only tests);
//! * accounts with exact grants: see [`creds`] and `tests/lab/README.md`.
//!
//! The API is **blocking** (plain `#[test]`s call it directly; from `#[tokio::test]` wrap long
//! calls in `spawn_blocking` or just accept that they block the test's runtime thread — they
//! never need the runtime). Every wait is bounded; every error names the command, host or
//! statement that failed.
//!
//! ```no_run
//! use ha_lab::{Lab, LabOptions, ProbeOptions};
//! use std::time::Duration;
//!
//! let lab = Lab::start(LabOptions::default())?;          // db1..db3, mon, cli: ~5 s
//! lab.make_writable("db1")?;                              // lab-only; normally ha-agent's job
//! lab.add_ip("db1", lab.writer_vip())?;                   // likewise
//! let probe = lab.start_probe(ProbeOptions::new(lab.writer_vip()))?;
//! std::thread::sleep(Duration::from_secs(1));
//! lab.stop_mysqld("db1")?;                                // a fault
//! let report = probe.stop();
//! println!("longest outage {} ms", report.longest_outage_ms());
//! assert!(report.missing_on(&lab, "db2")?.is_empty());    // no acknowledged write lost
//! # Ok::<(), ha_lab::Error>(())
//! ```
//!
//! Cleanup: dropping the [`Lab`] (also while unwinding from a panic) kills every process the
//! lab started (by PID), deletes namespaces, veths and the bridge, and removes the lab
//! directory unless `HA_LAB_KEEP=1`. A test process killed outright leaves a stale lab behind;
//! the next [`Lab::start`] (or `ha-lab cleanup`) removes it, recognising it by its prefix and
//! its dead owner PID (see [`cleanup`]).

//!
//! Modules of the `Lab` API, by concept: `topology` (options, hosts, nodes, addresses),
//! `lifecycle` (start, replication set-up, keep, teardown), `exec` (processes and files in
//! the namespaces), `admin` (SQL as root, read_only, role IPs), `observe`, `faults`, `probe`,
//! `rebuild`, `config`, [`tls`].

mod admin;
pub mod cleanup;
pub mod cmd;
mod config;
pub mod creds;
mod error;
mod etcd;
mod exec;
mod faults;
mod lifecycle;
pub mod mariadb;
pub mod netns;
mod observe;
mod probe;
mod process;
mod rebuild;
pub mod tls;
mod topology;

use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use cmd::{Cmd, Output};
pub use error::{Error, Result};
pub use etcd::{Etcd, ETCD_CLIENT_PORT, ETCD_PEER_PORT};
pub use faults::{LagGuard, Netem, NetemBackend};
pub use observe::ReplicaStatus;
pub use probe::{Attempt, Probe, ProbeOptions, ProbeReport};
pub use process::ProcHandle;
pub use rebuild::{binlog_state_at, dump_gtid_position, Rebuilt};
pub use topology::{Host, LabOptions, Node, MAX_EXTRA_NODES};

/// MySQL port of every lab host.
pub const MYSQL_PORT: u16 = 3306;
/// Port ha-agent listens on (on the host's own IP).
pub const AGENT_PORT: u16 = 9989;
/// Port of the monitor's control service (on 127.0.0.1 inside the monitor namespace).
pub const MONITOR_PORT: u16 = 9988;

/// A running lab. See the crate documentation.
pub struct Lab {
    prefix: String,
    subnet: (u8, u8),
    dir: PathBuf,
    bridge: String,
    hosts: Vec<Host>,
    mon: Node,
    cli: Node,
    extra: Vec<Node>,
    opts: LabOptions,
    mysqld: Vec<Mutex<Option<Child>>>,
    procs: Mutex<Vec<ProcHandle>>,
    kept: AtomicBool,
    torn_down: AtomicBool,
    counter: AtomicU64,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("prefix", &self.prefix)
            .field("subnet", &self.subnet_cidr())
            .field("dir", &self.dir)
            .field(
                "hosts",
                &self.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

// Tests share a `&Lab` with helper threads: keep it Send + Sync.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Lab>();
    assert_send_sync::<ProcHandle>();
    assert_send_sync::<Probe>();
};

/// Polls `f` every 100 ms until it returns `Ok(Some(v))`, at most `timeout`. `Ok(None)` and
/// `Err` both mean "not yet"; on timeout the last error (if any) is part of the message. The
/// building block of every "wait until …" in tests.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<String> = None;
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = Some(e.to_string()),
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: match last {
                    Some(e) => format!("{what} (last: {e})"),
                    None => what.to_string(),
                },
                after: timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
