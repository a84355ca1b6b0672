//! A lab's life: building it (claim a prefix and subnet, network, servers, replication),
//! keeping it for `ha-lab up`, and tearing it down (also on drop).

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cleanup::{self, LabState, Owner};
use crate::error::{Error, Result};
use crate::{creds, mariadb, netns, wait_until, Cmd, Host, Lab, LabOptions, Node, MYSQL_PORT};

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
    require_tools(
        &[
            "ip",
            "nft",
            "tc",
            "mariadbd",
            "mariadb",
            "mariadb-install-db",
            "ping",
        ],
        "",
    )
}

/// Fails, naming the first of `tools` missing on PATH and how to install it (`packages`: the
/// Debian packages to name, if not the lab's usual ones).
pub(crate) fn require_tools(tools: &[&str], packages: &str) -> Result<()> {
    for tool in tools {
        if Cmd::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.success())
            .unwrap_or(true)
        {
            let which = if packages.is_empty() {
                String::new()
            } else {
                format!(" (Debian packages {packages})")
            };
            return Err(Error::Other(format!(
                "`{tool}` not found on PATH: run `sudo bash tests/install-deps.sh`{which}"
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
        crate::topology::check_extra_nodes(&opts.extra_nodes, opts.db_hosts)?;
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
            extra: Vec::new(),
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
            extra: opts
                .extra_nodes
                .iter()
                .enumerate()
                .map(|(i, n)| node(n, 20 + i as u8))
                .collect(),
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
        for n in [&mut self.mon, &mut self.cli]
            .into_iter()
            .chain(self.extra.iter_mut())
        {
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
            extra: self.extra.clone(),
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
