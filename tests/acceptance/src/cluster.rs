//! The [`Cluster`] fixture: a lab with an agent on every host and the monitor, the binaries it
//! runs, and `ha-control` invoked as an operator would (text, JSON, raw, other identities).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ha_lab::{Cmd, Lab, LabOptions, ProcHandle};

use crate::fence::FenceSocket;
use crate::show::Show;

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
    /// Configure `kill_host_bin` with the lab's stand-in for fencing hardware
    /// ([`ha_lab::Lab::write_fence_script`]: a fenced host's switch port is shut down).
    pub fence_ports: bool,
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
            fence_ports: false,
        }
    }

    /// Adds or replaces one monitor.yaml override.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.monitor.retain(|(k, _)| k != key);
        self.monitor.push((key.to_string(), value.to_string()));
        self
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
    /// The lab's `ha-fence.socket`, with [`ClusterOptions::fence_ports`].
    fence: Option<FenceSocket>,
    /// Where [`Cluster::control`] sends ha-control (`127.0.0.1:9988`; redundant monitors
    /// listen on their namespace's address instead).
    control_addr: Mutex<String>,
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

    /// The lab only (replicating MariaDB servers, every one read-only): no agent, no monitor
    /// yet. For scenarios that set the cluster up as another tool would have left it.
    pub fn prepare(opts: ClusterOptions) -> Result<Cluster> {
        let bins = Bins::locate()?;
        let lab = Lab::start(opts.lab.clone()).map_err(|e| format!("lab: {e}"))?;
        Ok(Cluster {
            lab,
            bins,
            opts,
            agents: Mutex::new(BTreeMap::new()),
            monitor: Mutex::new(None),
            fence: None,
            control_addr: Mutex::new("127.0.0.1:9988".to_string()),
        })
    }

    /// Lab, an agent on every host, the monitor; nothing waited for.
    fn launch(opts: ClusterOptions) -> Result<Cluster> {
        let mut cluster = Cluster::prepare(opts)?;
        if cluster.opts.fence_ports {
            let script =
                (cluster.lab.write_fence_script()).map_err(|e| format!("fence script: {e}"))?;
            let config = cluster.lab.monitor_config_path();
            let socket = cluster.lab.dir().join("monitor").join("fence.sock");
            let fence = FenceSocket::start(&socket, &cluster.bins.monitor, &config)?;
            cluster.opts = (cluster.opts.clone())
                .set("monitor.kill_host_bin", &script.display().to_string())
                .set(
                    "monitor.kill_host_socket",
                    &fence.path().display().to_string(),
                );
            cluster.fence = Some(fence);
        }
        for h in cluster.lab.host_names() {
            cluster.start_agent(&h)?;
        }
        cluster.start_monitor()?;
        Ok(cluster)
    }

    /// A client writing through the writer IP every 50 ms (the I2 probe), returned once 5
    /// writes were acknowledged.
    pub fn start_writes(&self) -> Result<ha_lab::Probe> {
        let probe = self
            .lab
            .start_probe(
                ha_lab::ProbeOptions::new(self.lab.writer_vip())
                    .interval(Duration::from_millis(50)),
            )
            .map_err(|e| format!("probe: {e}"))?;
        probe
            .wait_acked(5, Duration::from_secs(60))
            .map_err(|e| format!("probe writes through the writer IP: {e}"))?;
        Ok(probe)
    }

    /// Starts (or restarts) the agent of `host`.
    pub fn start_agent(&self, host: &str) -> Result<()> {
        self.start_agent_with(host, &[])
    }

    /// Starts (or restarts) the agent of `host` with `extra` environment on top of the
    /// cluster's (e.g. libfaketime's).
    pub fn start_agent_with(&self, host: &str, extra: &[(&str, &str)]) -> Result<()> {
        let cfg = self
            .lab
            .write_agent_config(host)
            .map_err(|e| format!("agent config for {host}: {e}"))?;
        let env: Vec<(&str, &str)> = self
            .opts
            .agent_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra.iter().copied())
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

    /// Sends [`Cluster::control`] to `addr` from now on.
    pub fn set_control_addr(&self, addr: &str) {
        *lock(&self.control_addr) = addr.to_string();
    }

    pub fn monitor(&self) -> Option<ProcHandle> {
        lock(&self.monitor).clone()
    }

    /// Runs `ha-control --monitor 127.0.0.1:9988 ARGS…` inside the monitor namespace, as the
    /// lab's admin operator (mutual TLS, `ha_lab::tls::OPERATOR`).
    pub fn control(&self, args: &[&str]) -> Result<ControlOutput> {
        let addr = lock(&self.control_addr).clone();
        let mut full = vec!["--monitor", addr.as_str(), "--timeout", "5"];
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
