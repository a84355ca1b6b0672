//! # ha-acceptance: the whole system on the lab
//!
//! [`Cluster`] brings up a lab (MariaDB hosts in network namespaces, see `ha-lab`), starts
//! `ha-agent` in every DB namespace and `ha-monitor` in the monitor namespace, and waits until
//! the cluster converged (every host ONLINE, a writer writable on the writer IP). Tests then
//! inject faults through [`Cluster::lab`] and observe the outcome the way an operator would:
//! through `ha-control --json` ([`Cluster::show`]) and on the hosts themselves (read_only, IPs,
//! replication).
//!
//! [`Invariants`] samples the hosts continuously during a scenario (product.md §4):
//! I1 — never two hosts with read_only=0, never two holders of the writer IP.
//!
//! Binaries are taken from the cargo target directory next to the test executable
//! (`target/debug/ha-agent` …); `tests/run.sh` builds them first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ha_lab::{Cmd, Lab, LabOptions, ProcHandle};
use serde::Deserialize;

pub use ha_lab;

pub type Result<T> = std::result::Result<T, String>;

/// Where the ha binaries are.
#[derive(Debug, Clone)]
pub struct Bins {
    pub agent: PathBuf,
    pub monitor: PathBuf,
    pub control: PathBuf,
}

impl Bins {
    /// The binaries of this workspace's target directory (`target/<profile>/`).
    pub fn locate() -> Result<Bins> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        // target/<profile>/deps/<test-binary>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| format!("cannot find the target directory from {}", exe.display()))?;
        let bin = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "{} not found: build the workspace first (cargo build --workspace)",
                    p.display()
                ))
            }
        };
        Ok(Bins {
            agent: bin("ha-agent")?,
            monitor: bin("ha-monitor")?,
            control: bin("ha-control")?,
        })
    }
}

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub lab: LabOptions,
    /// Overrides of the lab's monitor.yaml (`("monitor.writer_lease", "3")`, …). The defaults
    /// used by the scenarios are in [`ClusterOptions::fast`].
    pub monitor: Vec<(String, String)>,
    /// Extra environment for every agent (e.g. `HA_AGENT_UPTIME_FILE`).
    pub agent_env: Vec<(String, String)>,
    /// How long start-up may take before the test fails.
    pub converge_timeout: Duration,
}

impl ClusterOptions {
    /// Sub-second checks so scenarios stay fast: check_period 0.2 s, trap_period 1 s,
    /// agent_period 0.3 s, agent_timeout 0.5 s, writer_lease 3 s.
    pub fn fast() -> ClusterOptions {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        ClusterOptions {
            lab: LabOptions::default(),
            monitor: vec![
                kv("checks.default.check_period", "0.2"),
                kv("checks.default.trap_period", "1"),
                kv("checks.default.timeout", "0.2"),
                kv("checks.default.max_backlog", "5"),
                kv("monitor.ping_interval", "0.2"),
                kv("monitor.agent_period", "0.3"),
                kv("monitor.agent_timeout", "0.5"),
                kv("monitor.writer_lease", "3"),
            ],
            agent_env: Vec::new(),
            converge_timeout: Duration::from_secs(60),
        }
    }

    /// Adds or replaces one monitor.yaml override.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.monitor.retain(|(k, _)| k != key);
        self.monitor.push((key.to_string(), value.to_string()));
        self
    }
}

/// `ha-control --json show`, typed (control/JSON.md).
#[derive(Debug, Clone, Deserialize)]
pub struct Show {
    pub mode: String,
    #[serde(default)]
    pub passive_cause: Option<String>,
    #[serde(default)]
    pub active_master: Option<String>,
    pub epoch: u64,
    pub hosts: Vec<ShowHost>,
    pub roles: Vec<ShowRole>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShowHost {
    pub name: String,
    pub ip: String,
    pub mode: String,
    pub state: String,
    pub roles: Vec<String>,
    pub agent_reachable: bool,
    pub flapping: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShowRole {
    pub name: String,
    pub ips: Vec<String>,
    pub owners: Vec<Option<String>>,
}

impl Show {
    pub fn host(&self, name: &str) -> Option<&ShowHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn state(&self, name: &str) -> &str {
        self.host(name).map(|h| h.state.as_str()).unwrap_or("?")
    }

    /// Owner of the `writer` role.
    pub fn writer(&self) -> Option<String> {
        self.roles
            .iter()
            .find(|r| r.name == "writer")
            .and_then(|r| r.owners.first().cloned().flatten())
    }

    /// Number of reader IPs each host holds.
    pub fn readers(&self) -> BTreeMap<String, usize> {
        let mut m: BTreeMap<String, usize> =
            self.hosts.iter().map(|h| (h.name.clone(), 0)).collect();
        for r in self.roles.iter().filter(|r| r.name == "reader") {
            for o in r.owners.iter().flatten() {
                *m.entry(o.clone()).or_default() += 1;
            }
        }
        m
    }

    pub fn all_online(&self) -> bool {
        self.hosts.iter().all(|h| h.state == "ONLINE")
    }

    /// Every reader IP has an owner.
    pub fn readers_assigned(&self) -> bool {
        self.roles
            .iter()
            .filter(|r| r.name == "reader")
            .all(|r| r.owners.iter().all(Option::is_some))
    }

    /// One line per host, for failure messages.
    pub fn brief(&self) -> String {
        let mut s = format!(
            "mode {} epoch {} writer {:?}",
            self.mode,
            self.epoch,
            self.writer()
        );
        for h in &self.hosts {
            s.push_str(&format!(
                "\n  {} {}{} roles [{}]",
                h.name,
                h.state,
                if h.agent_reachable {
                    ""
                } else {
                    " (agent unreachable)"
                },
                h.roles.join(", ")
            ));
        }
        s
    }
}

/// Output of one `ha-control` run.
#[derive(Debug, Clone)]
pub struct ControlOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A running cluster: lab + agents + monitor.
pub struct Cluster {
    pub lab: Lab,
    pub bins: Bins,
    pub opts: ClusterOptions,
    agents: Mutex<BTreeMap<String, ProcHandle>>,
    monitor: Mutex<Option<ProcHandle>>,
}

impl Cluster {
    /// Lab + agents + monitor, then waits until every host is ONLINE, the writer role is held,
    /// its host is writable and the writer IP answers.
    pub fn start(opts: ClusterOptions) -> Result<Cluster> {
        let cluster = Cluster::launch(opts)?;
        cluster.wait_converged(cluster.opts.converge_timeout)?;
        Ok(cluster)
    }

    /// Like [`Cluster::start`], but converges with [`Cluster::wait_converged_patiently`]: for
    /// slow settings (mysql-mmm's 5 s / 10 s checks) where the first `show` comes before the
    /// monitor has heard from every agent.
    pub fn start_patient(opts: ClusterOptions) -> Result<Cluster> {
        let cluster = Cluster::launch(opts)?;
        cluster.wait_converged_patiently(cluster.opts.converge_timeout)?;
        Ok(cluster)
    }

    /// Lab, an agent on every host, the monitor; nothing waited for.
    fn launch(opts: ClusterOptions) -> Result<Cluster> {
        let bins = Bins::locate()?;
        let lab = Lab::start(opts.lab.clone()).map_err(|e| format!("lab: {e}"))?;
        let cluster = Cluster {
            lab,
            bins,
            opts,
            agents: Mutex::new(BTreeMap::new()),
            monitor: Mutex::new(None),
        };
        for h in cluster.lab.host_names() {
            cluster.start_agent(&h)?;
        }
        cluster.start_monitor()?;
        Ok(cluster)
    }

    /// Every host ONLINE with roles, the writer writable on the writer IP, everyone else
    /// replicating from it; hosts AWAITING_RECOVERY are set online (retried until the monitor
    /// accepts, e.g. once it reached their agents), as an operator would.
    pub fn wait_converged_patiently(&self, timeout: Duration) -> Result<Show> {
        let show = self.wait_show("every host ONLINE with roles", timeout, |s| {
            for h in &s.hosts {
                if h.state == "AWAITING_RECOVERY" && h.agent_reachable {
                    let _ = self.control(&["set_online", &h.name]);
                }
            }
            s.all_online() && s.writer().is_some() && s.readers_assigned()
        })?;
        let writer = show.writer().unwrap_or_default();
        self.wait_writer_ready(&writer, timeout)?;
        self.wait_replicating_from(&writer, timeout)?;
        self.show()
    }

    /// Starts (or restarts) the agent of `host`.
    pub fn start_agent(&self, host: &str) -> Result<()> {
        let cfg = self
            .lab
            .write_agent_config(host)
            .map_err(|e| format!("agent config for {host}: {e}"))?;
        let env: Vec<(&str, &str)> = self
            .opts
            .agent_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = self
            .lab
            .spawn_in(
                host,
                &self.bins.agent,
                ["--config".to_string(), cfg.display().to_string()],
                &env,
            )
            .map_err(|e| format!("start agent on {host}: {e}"))?;
        lock(&self.agents).insert(host.to_string(), p);
        Ok(())
    }

    /// Stops the agent of `host` (SIGTERM, then SIGKILL).
    pub fn stop_agent(&self, host: &str) -> Result<()> {
        if let Some(p) = lock(&self.agents).get(host) {
            p.stop().map_err(|e| format!("stop agent on {host}: {e}"))?;
        }
        Ok(())
    }

    pub fn agent(&self, host: &str) -> Option<ProcHandle> {
        lock(&self.agents).get(host).cloned()
    }

    /// Starts (or restarts) the monitor with the cluster's overrides.
    pub fn start_monitor(&self) -> Result<()> {
        let overrides: Vec<(&str, &str)> = self
            .opts
            .monitor
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = self
            .lab
            .start_monitor(&self.bins.monitor, &overrides)
            .map_err(|e| format!("start monitor: {e}"))?;
        *lock(&self.monitor) = Some(p);
        Ok(())
    }

    pub fn stop_monitor(&self) -> Result<()> {
        if let Some(p) = lock(&self.monitor).as_ref() {
            p.stop().map_err(|e| format!("stop monitor: {e}"))?;
        }
        Ok(())
    }

    pub fn monitor(&self) -> Option<ProcHandle> {
        lock(&self.monitor).clone()
    }

    /// Runs `ha-control --monitor 127.0.0.1:9988 ARGS…` inside the monitor namespace, as the
    /// lab's admin operator (mutual TLS, `ha_lab::tls::OPERATOR`).
    pub fn control(&self, args: &[&str]) -> Result<ControlOutput> {
        let mut full = vec!["--monitor", "127.0.0.1:9988", "--timeout", "5"];
        full.extend_from_slice(args);
        self.control_as(ha_lab::tls::OPERATOR, false, &full)
    }

    /// Runs `ha-control ARGS…` inside the monitor namespace exactly as given: no default
    /// `--monitor`/`--timeout` (for usage errors and an unreachable monitor); the admin
    /// operator's certificate comes from `HA_CONTROL_CONFIG`.
    pub fn control_raw(&self, args: &[&str]) -> Result<ControlOutput> {
        self.control_as(ha_lab::tls::OPERATOR, false, args)
    }

    /// Runs `ha-control ARGS…` inside the monitor namespace with `identity`'s certificate of
    /// the lab's CA, or of a foreign CA with `foreign` (refusal tests).
    pub fn control_as(
        &self,
        identity: &str,
        foreign: bool,
        args: &[&str],
    ) -> Result<ControlOutput> {
        let config = self
            .lab
            .control_config(identity, foreign)
            .map_err(|e| format!("ha-control configuration for {identity}: {e}"))?;
        self.control_with(&config, args)
    }

    /// Runs `ha-control ARGS…` inside the monitor namespace with `HA_CONTROL_CONFIG=config`.
    pub fn control_with(&self, config: &std::path::Path, args: &[&str]) -> Result<ControlOutput> {
        let ns = self.lab.mon().ns.clone();
        let out = Cmd::in_ns(&ns, "env")
            .arg(format!("HA_CONTROL_CONFIG={}", config.display()))
            .arg(self.bins.control.display().to_string())
            .args(args.iter().copied())
            .timeout(Duration::from_secs(15))
            .output()
            .map_err(|e| format!("ha-control {}: {e}", args.join(" ")))?;
        Ok(ControlOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// `ha-control --json show`, parsed.
    pub fn show(&self) -> Result<Show> {
        let out = self.control(&["--json", "show"])?;
        if out.code != 0 {
            return Err(format!(
                "ha-control --json show exited {}: {}{}",
                out.code, out.stdout, out.stderr
            ));
        }
        serde_json::from_str(&out.stdout)
            .map_err(|e| format!("ha-control --json show: bad JSON ({e}): {}", out.stdout))
    }

    /// Polls `show` until `cond` holds (or `timeout`, then an error with the last state and
    /// the daemons' log tails).
    pub fn wait_show(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Show) -> bool,
    ) -> Result<Show> {
        let start = Instant::now();
        let mut last;
        loop {
            match self.show() {
                Ok(s) if cond(&s) => return Ok(s),
                Ok(s) => last = s.brief(),
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "timed out after {timeout:?} waiting for: {what}\nlast show: {last}\n{}",
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Polls an arbitrary condition on the hosts.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Cluster) -> std::result::Result<bool, String>,
    ) -> Result<()> {
        let start = Instant::now();
        let mut last = String::new();
        loop {
            match cond(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last = e,
            }
            if start.elapsed() > timeout {
                let show = self.show().map(|s| s.brief()).unwrap_or_else(|e| e);
                return Err(format!(
                    "timed out after {timeout:?} waiting for: {what} (last error: {last})\nshow: {show}\n{}",
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every host ONLINE, readers assigned, a writer whose host is writable and holds the
    /// writer IP, every other host replicating from it.
    ///
    /// Like mysql-mmm, a monitor starting without history puts hosts in AWAITING_RECOVERY and
    /// waits for the operator; this does what the operator does on first start: `set_online`
    /// every host that is AWAITING_RECOVERY.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Show> {
        // set_online is refused while the monitor has not reached the host's agent yet.
        let first = self.wait_show(
            "the monitor answers and reaches every agent",
            timeout,
            |s| !s.hosts.is_empty() && s.hosts.iter().all(|h| h.agent_reachable),
        )?;
        for h in &first.hosts {
            if h.state == "AWAITING_RECOVERY" {
                let out = self.control(&["set_online", &h.name])?;
                if out.code != 0 {
                    return Err(format!(
                        "set_online {} failed ({}): {}{}",
                        h.name, out.code, out.stdout, out.stderr
                    ));
                }
            }
        }
        let show = self.wait_show("every host ONLINE with roles", timeout, |s| {
            s.all_online() && s.writer().is_some() && s.readers_assigned()
        })?;
        let writer = show.writer().unwrap_or_default();
        self.wait_writer_ready(&writer, timeout)?;
        self.wait_replicating_from(&writer, timeout)?;
        self.show()
    }

    /// `host` is writable, holds the writer IP, and nobody else is writable or holds it.
    pub fn wait_writer_ready(&self, host: &str, timeout: Duration) -> Result<()> {
        let vip = self.lab.writer_vip();
        self.wait_for(&format!("{host} writable on the writer IP"), timeout, |c| {
            let writable = c.lab.writable_hosts();
            let holders = c.lab.holders_of(vip).map_err(|e| e.to_string())?;
            Ok(writable == [host.to_string()] && holders == [host.to_string()])
        })
    }

    /// Every host but `writer` replicates from `writer` with both threads running.
    pub fn wait_replicating_from(&self, writer: &str, timeout: Duration) -> Result<()> {
        let others: Vec<String> = self
            .lab
            .host_names()
            .into_iter()
            .filter(|h| h != writer)
            .collect();
        self.wait_for(
            &format!("every host replicating from {writer}"),
            timeout,
            |c| {
                for h in &others {
                    match c.lab.replication(h).map_err(|e| e.to_string())? {
                        Some(r) if r.source.as_deref() == Some(writer) && r.running() => {}
                        other => return Err(format!("{h}: {other:?}")),
                    }
                }
                Ok(true)
            },
        )
    }

    /// Inserts a marker row on `writer` (as root over the socket) and waits until it exists
    /// on `host`: proof that replication towards `host` works end to end.
    pub fn assert_row_arrives(&self, writer: &str, host: &str, timeout: Duration) -> Result<()> {
        // Unique per call (a fresh `Instant`'s elapsed time is not: two markers collided).
        static MARKERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = MARKERS.fetch_add(1, Ordering::Relaxed);
        let marker = format!("{writer}-{}-{n}", std::process::id());
        self.lab
            .sql(
                writer,
                &format!(
                    "CREATE TABLE IF NOT EXISTS hatest.markers (m VARCHAR(64) PRIMARY KEY); \
                     INSERT INTO hatest.markers VALUES ('{marker}')"
                ),
            )
            .map_err(|e| format!("insert marker on {writer}: {e}"))?;
        self.wait_for(
            &format!("marker row from {writer} on {host}"),
            timeout,
            |c| {
                c.lab
                    .row_exists(host, "hatest.markers", &format!("m = '{marker}'"))
                    .map_err(|e| e.to_string())
            },
        )
    }

    /// I3 (product.md §4): every host ONLINE, exactly one writer (`writer`: writable, the only
    /// holder of the writer IP), every other host replicating from it (IO and SQL running, no
    /// error) and receiving a marker row, every reader IP assigned and on the host the monitor
    /// names (and only there), readers spread (with at least as many reader IPs as hosts, every
    /// host holds one). Panics with diagnostics otherwise.
    pub fn assert_converged(&self, writer: &str) -> Show {
        const T: Duration = Duration::from_secs(60);
        let readers = self.lab.reader_vips().len();
        let hosts = self.lab.host_names();
        let show = self
            .wait_show("I3: every host ONLINE, readers spread", T, |s| {
                s.all_online()
                    && s.writer().as_deref() == Some(writer)
                    && s.readers_assigned()
                    && (readers < hosts.len() || s.readers().values().all(|&n| n >= 1))
            })
            .expect("I3: states and roles");
        self.wait_writer_ready(writer, T)
            .expect("I3: one writable writer on the writer IP");
        self.wait_replicating_from(writer, T)
            .expect("I3: every replica follows the writer");
        for h in hosts.iter().filter(|h| *h != writer) {
            let st = self
                .lab
                .replication(h)
                .expect("replication status")
                .expect("a replica");
            assert!(
                st.healthy(),
                "I3: {h} replicates from {writer} with errors: {st:?}"
            );
            self.assert_row_arrives(writer, h, T)
                .unwrap_or_else(|e| panic!("I3: marker row from {writer} on {h}: {e}"));
        }
        for r in show.roles.iter().filter(|r| r.name == "reader") {
            for (ip, owner) in r.ips.iter().zip(&r.owners) {
                let Ok(ip) = ip.parse() else {
                    panic!("I3: reader IP {ip} does not parse");
                };
                self.wait_for(&format!("reader {ip} on {owner:?} only"), T, |c| {
                    let holders = c.lab.holders_of(ip).map_err(|e| e.to_string())?;
                    Ok(holders == owner.iter().cloned().collect::<Vec<_>>())
                })
                .expect("I3: reader IPs where the monitor says");
            }
        }
        show
    }

    /// Log tails of the monitor and the agents, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        if let Some(m) = self.monitor() {
            s.push_str(&format!("--- monitor log (tail)\n{}\n", m.log_tail(40)));
        }
        for (h, p) in lock(&self.agents).iter() {
            s.push_str(&format!("--- agent {h} log (tail)\n{}\n", p.log_tail(15)));
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("=== cluster diagnostics\n{}", self.diagnostics());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Continuous check of I1 (product.md §4): sampled every 50 ms on every host, in parallel with
/// short per-host deadlines so a frozen host only makes its own sample unknown.
pub struct Invariants {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<u64>>,
    thread: Option<JoinHandle<()>>,
}

/// One host's observable writer facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostSample {
    writable: Option<bool>,
    has_vip: Option<bool>,
}

impl Invariants {
    /// Every host counts, reachable or not.
    pub fn start(lab: &Lab) -> Invariants {
        Invariants::sample(lab, false)
    }

    /// I1 as clients can observe it, for scenarios that freeze a host: a host whose cable is
    /// pulled (bridge-side veth down before or after the sample) does not count. A frozen host
    /// keeps read_only=0 and the writer IP in its stopped kernel for as long as it is frozen —
    /// nothing in it can run and no client can reach it; what matters is that it never serves
    /// as a second writer once it is back on the network.
    pub fn start_reachable_only(lab: &Lab) -> Invariants {
        Invariants::sample(lab, true)
    }

    fn sample(lab: &Lab, reachable_only: bool) -> Invariants {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0u64));
        let hosts: Vec<(String, String, PathBuf, String)> = lab
            .hosts()
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    h.ns.clone(),
                    h.socket.clone(),
                    h.veth.clone(),
                )
            })
            .collect();
        let vip = lab.writer_vip().to_string();
        let (s, v, n) = (stop.clone(), violations.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let handles: Vec<_> = hosts
                    .iter()
                    .map(|(name, ns, sock, veth)| {
                        let (name, ns, sock, veth, vip) = (
                            name.clone(),
                            ns.clone(),
                            sock.clone(),
                            veth.clone(),
                            vip.clone(),
                        );
                        std::thread::spawn(move || {
                            let before = reachable_only.then(|| veth_up(&veth));
                            let mut sample = sample_host(&ns, &sock, &vip);
                            let after = reachable_only.then(|| veth_up(&veth));
                            if before == Some(Some(false)) || after == Some(Some(false)) {
                                sample = HostSample {
                                    writable: None,
                                    has_vip: None,
                                };
                            }
                            (name, sample)
                        })
                    })
                    .collect();
                let results: Vec<(String, HostSample)> =
                    handles.into_iter().filter_map(|h| h.join().ok()).collect();
                let writable: Vec<&str> = results
                    .iter()
                    .filter(|(_, s)| s.writable == Some(true))
                    .map(|(n, _)| n.as_str())
                    .collect();
                let holders: Vec<&str> = results
                    .iter()
                    .filter(|(_, s)| s.has_vip == Some(true))
                    .map(|(n, _)| n.as_str())
                    .collect();
                let at = start.elapsed().as_millis();
                if writable.len() > 1 {
                    lock(&v).push(format!("I1 at +{at} ms: read_only=0 on {writable:?}"));
                }
                if holders.len() > 1 {
                    lock(&v).push(format!("I1 at +{at} ms: writer IP on {holders:?}"));
                }
                *lock(&n) += 1;
                let spent = t0.elapsed();
                if spent < Duration::from_millis(50) {
                    std::thread::sleep(Duration::from_millis(50) - spent);
                }
            }
        });
        Invariants {
            stop,
            violations,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns the number of samples and every violation seen.
    pub fn stop(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let n = *lock(&self.samples);
        (n, lock(&self.violations).clone())
    }

    /// Stops sampling and panics with the violations, if any; asserts it really sampled.
    pub fn assert_clean(self) {
        let (n, v) = self.stop();
        assert!(n >= 5, "the invariant sampler took only {n} samples");
        assert!(
            v.is_empty(),
            "invariant violations ({n} samples):\n{}",
            v.join("\n")
        );
    }
}

impl Drop for Invariants {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sample_host(ns: &str, socket: &Path, vip: &str) -> HostSample {
    HostSample {
        writable: quick_read_only_at(socket).map(|ro| !ro),
        has_vip: has_ip(ns, vip),
    }
}

/// `@@read_only` over the host's socket with a sub-second deadline; `None` when the server does
/// not answer in time (down, frozen).
pub fn quick_read_only(lab: &Lab, host: &str) -> Option<bool> {
    let h = lab.host(host).ok()?;
    quick_read_only_at(&h.socket)
}

fn quick_read_only_at(socket: &Path) -> Option<bool> {
    Cmd::new("mariadb")
        .args([
            "--no-defaults",
            "-uroot",
            &format!("--socket={}", socket.display()),
            "--connect-timeout=1",
            "-N",
            "-B",
            "-e",
            "SELECT @@global.read_only",
        ])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout.trim() != "0")
}

fn has_ip(ns: &str, ip: &str) -> Option<bool> {
    Cmd::new("ip")
        .args(["-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout.contains(&format!("inet {ip}/")))
}

/// Whether the bridge-side end of a node's veth is up (`None`: cannot tell).
pub fn veth_up(veth: &str) -> Option<bool> {
    Cmd::new("ip")
        .args(["-o", "link", "show", "dev", veth])
        .timeout(Duration::from_millis(800))
        .output()
        .ok()
        .filter(|o| o.success())
        .map(|o| {
            let flags = o
                .stdout
                .split(['<', '>'])
                .nth(1)
                .unwrap_or_default()
                .to_string();
            flags.split(',').any(|f| f == "UP")
        })
}
