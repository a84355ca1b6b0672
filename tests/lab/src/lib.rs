//! # ha-lab: a real MariaDB cluster in Linux network namespaces
//!
//! The lab gives integration tests (agent, monitor, acceptance) and the demo real hosts on a
//! real network, on one machine, as root:
//!
//! * one network namespace per MariaDB host (`<prefix>-db1` … `<prefix>-dbN`), one for the
//!   monitor (`<prefix>-mon`) and one for clients (`<prefix>-cli`), joined by one bridge
//!   (`<prefix>-br`, no address) through veth pairs; inside each namespace the interface is
//!   `eth0`;
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

pub mod cleanup;
pub mod cmd;
mod config;
pub mod creds;
mod error;
mod faults;
pub mod mariadb;
pub mod netns;
mod observe;
mod probe;
mod process;
mod rebuild;
pub mod tls;

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use cmd::{Cmd, Output};
pub use error::{Error, Result};
pub use faults::{LagGuard, Netem, NetemBackend};
pub use observe::ReplicaStatus;
pub use probe::{Attempt, Probe, ProbeOptions, ProbeReport};
pub use process::ProcHandle;
pub use rebuild::{binlog_state_at, dump_gtid_position, Rebuilt};

use cleanup::{LabState, Owner};

/// MySQL port of every lab host.
pub const MYSQL_PORT: u16 = 3306;
/// Port ha-agent listens on (on the host's own IP).
pub const AGENT_PORT: u16 = 9989;
/// Port of the monitor's control service (on 127.0.0.1 inside the monitor namespace).
pub const MONITOR_PORT: u16 = 9988;

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Number of MariaDB hosts, named `db1..dbN` (1–50). Default 3.
    pub db_hosts: usize,
    /// Enable semi-synchronous replication (AFTER_SYNC, no async fallback). Default true.
    pub semi_sync: bool,
    /// Set up the field-notes topology (db1 ⇄ db2, db3… ← db1) and wait until every replica's
    /// IO and SQL threads run. Default true.
    pub replication: bool,
    /// A fixed prefix (`hl` + 4 of `[0-9a-z]`, e.g. `hldemo`); default: a random free one.
    pub prefix: Option<String>,
    /// A fixed subnet `10.a.b.0/24` as `(a, b)`; default: derived from the prefix and checked
    /// against the root namespace's routes.
    pub subnet: Option<(u8, u8)>,
    /// Extra `my.cnf` lines for every host's `[mysqld]` section (later lines win).
    pub mysqld_extra: Vec<String>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            db_hosts: 3,
            semi_sync: true,
            replication: true,
            prefix: None,
            subnet: None,
            mysqld_extra: Vec::new(),
        }
    }
}

impl LabOptions {
    /// Default options with `n` DB hosts.
    pub fn hosts(n: usize) -> Self {
        LabOptions {
            db_hosts: n,
            ..Default::default()
        }
    }
}

/// A MariaDB host of the lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Host {
    /// `db1`, `db2`, …
    pub name: String,
    /// Its network namespace, `<prefix>-db1`.
    pub ns: String,
    /// Its own address on `eth0`.
    pub ip: Ipv4Addr,
    /// MAC of its `eth0`.
    pub mac: String,
    /// Root-namespace (bridge) end of its veth pair; down = cable pulled.
    pub veth: String,
    /// `server_id` (1 for db1, …).
    pub server_id: u32,
    /// MySQL port (3306).
    pub port: u16,
    /// Unix socket (root admin, usable from the root namespace).
    pub socket: PathBuf,
    /// Datadir.
    pub datadir: PathBuf,
    /// The host's directory in the lab directory (config, logs).
    pub dir: PathBuf,
    /// Its `my.cnf`.
    pub config_file: PathBuf,
    /// The server's error log.
    pub error_log: PathBuf,
}

/// A non-database namespace of the lab (`mon`, `cli`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Node {
    /// `mon` or `cli` (or a host name when obtained through [`Lab::node`]).
    pub name: String,
    /// Network namespace.
    pub ns: String,
    /// Address on `eth0`.
    pub ip: Ipv4Addr,
    /// MAC of `eth0`.
    pub mac: String,
    /// Bridge end of its veth pair.
    pub veth: String,
}

/// A running lab. See the crate documentation.
pub struct Lab {
    prefix: String,
    subnet: (u8, u8),
    dir: PathBuf,
    bridge: String,
    hosts: Vec<Host>,
    mon: Node,
    cli: Node,
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

static PREFIX_COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u16() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u16
}

fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::Other(
            "the lab needs root (network namespaces, bridges, nftables); run the tests with sudo"
                .into(),
        ));
    }
    for tool in [
        "ip",
        "nft",
        "tc",
        "mariadbd",
        "mariadb",
        "mariadb-install-db",
        "ping",
    ] {
        if Cmd::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.success())
            .unwrap_or(true)
        {
            return Err(Error::Other(format!(
                "`{tool}` not found on PATH: run `sudo bash tests/install-deps.sh`"
            )));
        }
    }
    Ok(())
}

impl Lab {
    /// Builds and starts a lab: namespaces, bridge, addresses, one mariadbd per host,
    /// replication (unless disabled), and waits until replication runs. On any error everything
    /// created so far is torn down before the error is returned.
    pub fn start(opts: LabOptions) -> Result<Lab> {
        let t0 = Instant::now();
        require_root()?;
        if opts.db_hosts == 0 || opts.db_hosts > 50 {
            return Err(Error::Other(format!(
                "db_hosts must be 1..=50, got {}",
                opts.db_hosts
            )));
        }
        if let Err(e) = cleanup::remove_stale() {
            eprintln!("ha-lab: removing stale labs failed (continuing): {e}");
        }
        // Build the template in parallel with the network.
        let template = std::thread::spawn(mariadb::template);

        let (prefix, subnet) = Self::claim(&opts)?;
        let dir = cleanup::lab_dir(&prefix);
        let mut lab = Lab::describe(prefix, subnet, dir, opts);
        // From here on, `lab` owns whatever exists: an early return drops it = teardown.
        lab.build_network()?;
        let template = template
            .join()
            .map_err(|_| Error::Other("template builder panicked".into()))??;
        lab.start_servers(&template)?;
        if lab.opts.replication {
            lab.setup_replication()?;
        }
        lab.save_state(None)?;
        if std::env::var("HA_LAB_VERBOSE").is_ok() {
            eprintln!(
                "ha-lab: lab {} ({}) ready in {:?}",
                lab.prefix,
                lab.subnet_cidr(),
                t0.elapsed()
            );
        }
        Ok(lab)
    }

    fn claim(opts: &LabOptions) -> Result<(String, (u8, u8))> {
        let skeleton = |prefix: &str, subnet: (u8, u8)| LabState {
            prefix: prefix.to_string(),
            subnet: format!("10.{}.{}.0/24", subnet.0, subnet.1),
            dir: cleanup::lab_dir(prefix),
            bridge: format!("{prefix}-br"),
            owner: Some(Owner::me()),
            kept: false,
            hosts: Vec::new(),
            mon: None,
            cli: None,
            writer_vip: None,
            reader_vips: Vec::new(),
            daemons: Vec::new(),
        };
        if let Some(p) = &opts.prefix {
            if !cleanup::valid_prefix(p) {
                return Err(Error::Other(format!(
                    "invalid lab prefix `{p}`: must be `hl` followed by 4 of [0-9a-z]"
                )));
            }
            let subnet = match opts.subnet {
                Some(s) => s,
                None => {
                    let mut s = (
                        200u8,
                        p.bytes()
                            .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b)),
                    );
                    while netns::root_uses_subnet(s.0, s.1)? {
                        s.1 = s.1.wrapping_add(1);
                    }
                    s
                }
            };
            if !cleanup::claim(&skeleton(p, subnet))? {
                return Err(Error::Other(format!(
                    "lab prefix {p} is in use (state file {}); `ha-lab down --prefix {p}` first",
                    cleanup::state_path(p).display()
                )));
            }
            return Ok((p.clone(), subnet));
        }
        for _ in 0..200 {
            let id = random_u16();
            let prefix = format!("hl{id:04x}");
            let subnet = opts.subnet.unwrap_or(((id >> 8) as u8, id as u8));
            if netns::root_uses_subnet(subnet.0, subnet.1)? {
                continue;
            }
            if cleanup::claim(&skeleton(&prefix, subnet))? {
                return Ok((prefix, subnet));
            }
        }
        Err(Error::Other(
            "could not find a free lab prefix/subnet".into(),
        ))
    }

    fn describe(prefix: String, subnet: (u8, u8), dir: PathBuf, opts: LabOptions) -> Lab {
        let ip = |last: u8| Ipv4Addr::new(10, subnet.0, subnet.1, last);
        let hosts = (1..=opts.db_hosts)
            .map(|i| {
                let name = format!("db{i}");
                let hdir = dir.join(&name);
                Host {
                    ns: format!("{prefix}-{name}"),
                    veth: format!("{prefix}-{name}-h"),
                    ip: ip(10 + i as u8),
                    mac: String::new(),
                    server_id: i as u32,
                    port: MYSQL_PORT,
                    socket: hdir.join("mysql.sock"),
                    datadir: hdir.join("data"),
                    config_file: hdir.join("my.cnf"),
                    error_log: hdir.join("error.log"),
                    dir: hdir,
                    name,
                }
            })
            .collect::<Vec<_>>();
        let node = |name: &str, last: u8| Node {
            name: name.to_string(),
            ns: format!("{prefix}-{name}"),
            ip: ip(last),
            mac: String::new(),
            veth: format!("{prefix}-{name}-h"),
        };
        Lab {
            mysqld: hosts.iter().map(|_| Mutex::new(None)).collect(),
            mon: node("mon", 2),
            cli: node("cli", 3),
            bridge: format!("{prefix}-br"),
            hosts,
            prefix,
            subnet,
            dir,
            opts,
            procs: Mutex::new(Vec::new()),
            kept: AtomicBool::new(false),
            torn_down: AtomicBool::new(false),
            counter: AtomicU64::new(0),
        }
    }

    fn build_network(&mut self) -> Result<()> {
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir).map_err(|e| Error::path("remove stale", &self.dir, e))?;
        }
        fs::create_dir_all(self.dir.join("logs"))
            .map_err(|e| Error::path("create", &self.dir, e))?;
        netns::add_bridge(&self.bridge)?;
        let bridge = self.bridge.clone();
        for h in &mut self.hosts {
            netns::add_ns(&h.ns)?;
            h.mac = netns::add_port(&bridge, &h.veth, &h.ns, h.ip)?;
        }
        for n in [&mut self.mon, &mut self.cli] {
            netns::add_ns(&n.ns)?;
            n.mac = netns::add_port(&bridge, &n.veth, &n.ns, n.ip)?;
        }
        Ok(())
    }

    fn server_config(&self, h: &Host) -> mariadb::ServerConfig {
        mariadb::ServerConfig {
            server_id: h.server_id,
            datadir: h.datadir.clone(),
            socket: h.socket.clone(),
            dir: h.dir.clone(),
            port: h.port,
            semi_sync: self.opts.semi_sync,
            // db1 and db2 are the master candidates of the field-notes topology.
            semi_sync_slave: h.server_id <= 2,
            extra: self.opts.mysqld_extra.clone(),
        }
    }

    fn start_servers(&self, template: &Path) -> Result<()> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    s.spawn(move || -> Result<()> {
                        fs::create_dir_all(h.dir.join("tmp"))
                            .map_err(|e| Error::path("create", &h.dir, e))?;
                        Cmd::new("cp")
                            .args(["-a", "--reflink=auto"])
                            .arg(template.display().to_string())
                            .arg(h.datadir.display().to_string())
                            .timeout(Duration::from_secs(60))
                            .run()?;
                        fs::write(&h.config_file, self.server_config(h).render())
                            .map_err(|e| Error::path("write", &h.config_file, e))?;
                        let child =
                            mariadb::spawn(&h.name, &h.ns, &h.config_file, &h.dir, &h.socket)?;
                        *self.mysqld_slot(i) = Some(child);
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| Error::Other("server start thread panicked".into()))??;
            }
            Ok(())
        })
    }

    fn setup_replication(&self) -> Result<()> {
        let n = self.hosts.len();
        if n < 2 {
            return Ok(());
        }
        self.change_master("db1", "db2")?;
        for i in 2..=n {
            self.change_master(&format!("db{i}"), "db1")?;
        }
        self.wait_replication_running(Duration::from_secs(30))
    }

    /// Points `replica` at `source` by GTID (`MASTER_USE_GTID=slave_pos`,
    /// `MASTER_CONNECT_RETRY=1`, the lab's replication account) and starts both threads.
    pub fn change_master(&self, replica: &str, source: &str) -> Result<()> {
        let src = self.host(source)?.ip;
        self.sql(
            replica,
            &format!(
                "STOP SLAVE; CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={MYSQL_PORT}, \
                 MASTER_USER={}, MASTER_PASSWORD={}, MASTER_CONNECT_RETRY=1, \
                 MASTER_USE_GTID=slave_pos; START SLAVE;",
                mariadb::quote(&src.to_string()),
                mariadb::quote(creds::REPL_USER),
                mariadb::quote(creds::REPL_PASSWORD),
            ),
        )?;
        Ok(())
    }

    /// Waits until every configured replica has IO and SQL threads running.
    pub fn wait_replication_running(&self, timeout: Duration) -> Result<()> {
        wait_until(
            "replication threads running on all replicas",
            timeout,
            || {
                for h in &self.hosts {
                    if let Some(st) = self.replication(&h.name)? {
                        if !st.running() {
                            return Err(Error::Other(format!(
                                "{}: IO {} SQL {} ({} {})",
                                h.name,
                                st.io_running,
                                st.sql_running,
                                st.last_io_error,
                                st.last_sql_error
                            )));
                        }
                    }
                }
                Ok(Some(()))
            },
        )
    }

    pub(crate) fn mysqld_slot(&self, i: usize) -> MutexGuard<'_, Option<Child>> {
        self.mysqld[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self, daemons: Option<Vec<(String, u32)>>) -> LabState {
        LabState {
            prefix: self.prefix.clone(),
            subnet: self.subnet_cidr(),
            dir: self.dir.clone(),
            bridge: self.bridge.clone(),
            owner: if self.kept.load(Ordering::SeqCst) {
                None
            } else {
                Some(Owner::me())
            },
            kept: self.kept.load(Ordering::SeqCst),
            hosts: self.hosts.clone(),
            mon: Some(self.mon.clone()),
            cli: Some(self.cli.clone()),
            writer_vip: Some(self.writer_vip()),
            reader_vips: self.reader_vips(),
            daemons: daemons.unwrap_or_default(),
        }
    }

    fn save_state(&self, daemons: Option<Vec<(String, u32)>>) -> Result<()> {
        cleanup::write_state(&self.state(daemons))
    }

    /// Detaches the lab from this process: it is **not** torn down on drop and stays up (with
    /// every process started so far) until `ha-lab down --prefix P` or `ha-lab cleanup`. Used by
    /// `ha-lab up`. Returns the persisted description.
    pub fn keep(self) -> Result<LabState> {
        self.kept.store(true, Ordering::SeqCst);
        let daemons = self
            .processes()
            .iter()
            .filter_map(|p| p.pid().map(|pid| (p.name(), pid)))
            .collect();
        let st = self.state(Some(daemons));
        cleanup::write_state(&st)?;
        Ok(st)
    }

    /// Tears the lab down now and reports errors (Drop does the same but can only print them).
    pub fn teardown(self) -> Result<()> {
        self.teardown_inner()
    }

    fn teardown_inner(&self) -> Result<()> {
        if self.kept.load(Ordering::SeqCst) || self.torn_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Our own children first (so they are reaped, not left as zombies), by PID.
        for p in self.processes() {
            let _ = p.resume();
            let _ = p.kill();
        }
        for i in 0..self.mysqld.len() {
            if let Some(mut c) = self.mysqld_slot(i).take() {
                // SAFETY: kill(2) on our own unreaped child.
                unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
                let _ = c.kill();
                let _ = mariadb::wait_exit(&mut c, Duration::from_secs(10), "mariadbd to die");
            }
        }
        cleanup::teardown(&self.prefix).map(|_| ())
    }

    // ----- description -------------------------------------------------------------------

    /// The lab's unique prefix (`hl3f2a`): namespaces, links and the state file start with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `10.a.b.0/24`.
    pub fn subnet_cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.subnet.0, self.subnet.1)
    }

    /// An address of the lab subnet: `10.a.b.<last>`.
    pub fn ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet.0, self.subnet.1, last)
    }

    /// Suggested writer role IP (`.160`). Nobody holds it until an agent (or
    /// [`Lab::add_ip`]) adds it.
    pub fn writer_vip(&self) -> Ipv4Addr {
        self.ip(160)
    }

    /// Suggested reader role IPs (`.161 …`, one per host).
    pub fn reader_vips(&self) -> Vec<Ipv4Addr> {
        (0..self.hosts.len())
            .map(|i| self.ip(161 + i as u8))
            .collect()
    }

    /// The lab directory (configs, logs, datadirs); removed at teardown unless `HA_LAB_KEEP=1`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bridge (root namespace, no address).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// All MariaDB hosts, in order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Names of all MariaDB hosts (`db1`, …).
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// A MariaDB host by name (`db1`) or namespace name.
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name || h.ns == name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    fn host_index(&self, name: &str) -> Result<usize> {
        self.hosts
            .iter()
            .position(|h| h.name == name || h.ns == name)
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// The monitor namespace.
    pub fn mon(&self) -> &Node {
        &self.mon
    }

    /// The client namespace.
    pub fn cli(&self) -> &Node {
        &self.cli
    }

    /// Any namespace of the lab by short name (`db1`, `mon`, `cli`) or namespace name.
    pub fn node(&self, name: &str) -> Result<Node> {
        if let Ok(h) = self.host(name) {
            return Ok(Node {
                name: h.name.clone(),
                ns: h.ns.clone(),
                ip: h.ip,
                mac: h.mac.clone(),
                veth: h.veth.clone(),
            });
        }
        [&self.mon, &self.cli]
            .into_iter()
            .find(|n| n.name == name || n.ns == name)
            .cloned()
            .ok_or_else(|| Error::UnknownNode(name.to_string()))
    }

    /// All namespaces: hosts, then mon, then cli.
    pub fn nodes(&self) -> Vec<Node> {
        self.hosts
            .iter()
            .map(|h| h.name.as_str())
            .chain(["mon", "cli"])
            .filter_map(|n| self.node(n).ok())
            .collect()
    }

    /// The lab node whose `eth0` has `mac`.
    pub fn node_with_mac(&self, mac: &str) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| n.mac.eq_ignore_ascii_case(mac))
            .map(|n| n.name)
    }

    /// The lab host whose own (not role) IP is `ip`.
    pub fn host_with_ip(&self, ip: Ipv4Addr) -> Option<String> {
        self.nodes()
            .into_iter()
            .find(|n| n.ip == ip)
            .map(|n| n.name)
    }

    // ----- processes and files ----------------------------------------------------------

    /// Starts `program args…` inside the namespace of `node` (`db1`, `mon`, `cli`) with extra
    /// environment `env`. stdout and stderr go to `<lab dir>/logs/<name>-<n>.log`. The lab kills
    /// it at teardown; stop/start/pause it through the handle.
    pub fn spawn_in<I, S>(
        &self,
        node: &str,
        program: impl AsRef<Path>,
        args: I,
        env: &[(&str, &str)],
    ) -> Result<ProcHandle>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let n = self.node(node)?;
        let program = program.as_ref().display().to_string();
        let base = Path::new(&program)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "proc".into());
        let name = format!("{base}-{}", n.name);
        let k = self.counter.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.join("logs").join(format!("{name}-{k}.log"));
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = ProcHandle::spawn(&name, &n.ns, &program, &args, &env, log)?;
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(p.clone());
        Ok(p)
    }

    /// Every process started with [`Lab::spawn_in`].
    pub fn processes(&self) -> Vec<ProcHandle> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes `contents` to `<lab dir>/files/<name>` (creating directories) and returns the
    /// path. For daemon configs and scripts.
    pub fn write_file(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        let p = self.dir.join("files").join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| Error::path("create", d, e))?;
        }
        fs::write(&p, contents).map_err(|e| Error::path("write", &p, e))?;
        Ok(p)
    }

    /// Like [`Lab::write_file`], readable by its owner only (0600): configuration files hold
    /// passwords, and the daemons refuse one that others can read.
    pub fn write_private_file(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.dir.join("files").join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| Error::path("create", d, e))?;
        }
        let _ = fs::remove_file(&p);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .and_then(|mut f| f.write_all(contents.as_ref()))
            .map_err(|e| Error::path("write", &p, e))?;
        Ok(p)
    }

    /// Runs a one-shot command inside `node`'s namespace (bounded by 20 s) and returns its
    /// output whatever the exit status. `cmd[0]` is the program.
    pub fn exec(&self, node: &str, cmd: &[&str]) -> Result<Output> {
        let n = self.node(node)?;
        let (prog, args) = cmd
            .split_first()
            .ok_or_else(|| Error::Other("exec: empty command".into()))?;
        Cmd::in_ns(&n.ns, *prog).args(args.iter().copied()).output()
    }

    /// Like [`Lab::exec`] but fails (with the command line and stderr) on a non-zero exit.
    pub fn exec_ok(&self, node: &str, cmd: &[&str]) -> Result<Output> {
        let n = self.node(node)?;
        let (prog, args) = cmd
            .split_first()
            .ok_or_else(|| Error::Other("exec: empty command".into()))?;
        Cmd::in_ns(&n.ns, *prog).args(args.iter().copied()).run()
    }

    // ----- SQL as root ------------------------------------------------------------------

    /// Runs SQL as root over `host`'s unix socket (bounded by 15 s) and returns the rows,
    /// columns as strings (`NULL` → "NULL"). Root writes on a replica create errant GTIDs: use
    /// this for admin and for reading.
    pub fn sql(&self, host: &str, sql: &str) -> Result<Vec<Vec<String>>> {
        let h = self.host(host)?;
        mariadb::sql(&h.socket, &h.name, sql)
    }

    /// The first column of the first row of a query, if any.
    pub fn sql_value(&self, host: &str, sql: &str) -> Result<Option<String>> {
        Ok(self
            .sql(host, sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next()))
    }

    /// `SET GLOBAL read_only=0` (lab-only tests; in ha tests the agent decides).
    pub fn make_writable(&self, host: &str) -> Result<()> {
        self.sql(host, "SET GLOBAL read_only=0").map(|_| ())
    }

    /// `SET GLOBAL read_only=1`.
    pub fn make_read_only(&self, host: &str) -> Result<()> {
        self.sql(host, "SET GLOBAL read_only=1").map(|_| ())
    }

    /// Adds a (role) IP to `node`'s `eth0` and sends gratuitous ARP (lab-only tests; in ha
    /// tests the agent does this). Idempotent.
    pub fn add_ip(&self, node: &str, ip: Ipv4Addr) -> Result<()> {
        let n = self.node(node)?;
        let out = Cmd::new("ip")
            .args([
                "-n",
                &n.ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ])
            .output()?;
        if !out.success()
            && !out.stderr.contains("File exists")
            && !out.stderr.contains("already assigned")
        {
            return Err(Error::Command {
                cmd: format!("ip -n {} addr add {ip}/24 dev eth0", n.ns),
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_string(),
            });
        }
        // Unsolicited ARP so neighbours update their caches (best effort).
        // Debian's `arping` is Thomas Habets' (`-i`, `-S`), not iputils'.
        let _ = Cmd::in_ns(&n.ns, "arping")
            .args(["-q", "-U", "-c", "1", "-w", "1", "-i", "eth0", "-S"])
            .arg(ip.to_string())
            .arg(ip.to_string())
            .timeout(Duration::from_secs(5))
            .output();
        Ok(())
    }

    /// Removes a (role) IP from `node`'s `eth0`. Idempotent.
    pub fn del_ip(&self, node: &str, ip: Ipv4Addr) -> Result<()> {
        let n = self.node(node)?;
        let out = Cmd::new("ip")
            .args([
                "-n",
                &n.ns,
                "addr",
                "del",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ])
            .output()?;
        if !out.success()
            && !out.stderr.contains("Cannot assign")
            && !out.stderr.contains("not found")
        {
            return Err(Error::Command {
                cmd: format!("ip -n {} addr del {ip}/24 dev eth0", n.ns),
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_string(),
            });
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown_inner() {
            eprintln!(
                "ha-lab: teardown of lab {} failed: {e}; run `ha-lab cleanup --prefix {}`",
                self.prefix, self.prefix
            );
        }
    }
}

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
