//! Redundant monitors on the lab (issue 18): three etcd members (`etcd1..3`, Debian's
//! `etcd-server`, started by the test) and two monitors, `mon` and `mon2`, with the same
//! cluster configuration except their control address.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ha_lab::{Etcd, LabOptions, ProcHandle};

use crate::cluster::{Cluster, ClusterOptions, Result};

pub const ETCD_MEMBERS: [&str; 3] = ["etcd1", "etcd2", "etcd3"];
pub const MONITORS: [&str; 2] = ["mon", "mon2"];
const PREFIX: &str = "/ha/lab";
/// The leadership lease of the lab's monitors (etcd's practical minimum).
pub const LEASE_TTL_SECS: u64 = 2;

/// A converged cluster led by `mon`, with `mon2` as a standby.
pub struct Redundant {
    pub cluster: Cluster,
    pub etcd: Etcd,
    mon2: Mutex<Option<ProcHandle>>,
}

impl Redundant {
    /// Lab with etcd and mon2's namespace; agents; `mon` first (it wins the first term and
    /// converges the cluster), then `mon2`, which must report itself a standby.
    pub fn start(opts: ClusterOptions) -> Result<Redundant> {
        Redundant::start_with(opts, false)
    }

    /// [`Redundant::start`] with mutual TLS between the monitors and etcd (the monitors show
    /// their own certificate; `coordination.etcd.tls` names the lab's files).
    pub fn start_tls(opts: ClusterOptions) -> Result<Redundant> {
        Redundant::start_with(opts, true)
    }

    fn start_with(mut opts: ClusterOptions, tls: bool) -> Result<Redundant> {
        opts.lab = LabOptions {
            extra_nodes: ETCD_MEMBERS
                .iter()
                .chain(&["mon2"])
                .map(|s| s.to_string())
                .collect(),
            ..opts.lab
        };
        let cluster = Cluster::prepare(opts)?;
        let etcd = if tls {
            cluster.lab.start_etcd_tls(&ETCD_MEMBERS)
        } else {
            cluster.lab.start_etcd(&ETCD_MEMBERS)
        }
        .map_err(|e| format!("etcd: {e}"))?;
        let etcd_tls = match etcd.client_tls() {
            Some(f) => format!(
                "{{ca_file: '{}', cert_file: '{}', key_file: '{}'}}",
                f.ca.display(),
                f.cert.display(),
                f.key.display()
            ),
            None => "off".to_string(),
        };
        let endpoints: Vec<String> = etcd
            .endpoints()
            .split(',')
            .map(|e| format!("'{e}'"))
            .collect();
        let mut o = cluster.opts.clone();
        for (k, v) in [
            (
                "coordination.etcd.endpoints",
                format!("[{}]", endpoints.join(", ")),
            ),
            ("coordination.etcd.prefix", PREFIX.to_string()),
            ("coordination.etcd.tls", etcd_tls),
            ("coordination.etcd.lease_ttl", LEASE_TTL_SECS.to_string()),
        ] {
            o = o.set(k, &v);
        }
        let mut cluster = cluster;
        cluster.opts = o.set("monitor.ip", &cluster.lab.mon().ip.to_string());
        cluster.set_control_addr(&format!("{}:9988", cluster.lab.mon().ip));
        for h in cluster.lab.host_names() {
            cluster.start_agent(&h)?;
        }
        cluster.start_monitor()?;
        let r = Redundant {
            cluster,
            etcd,
            mon2: Mutex::new(None),
        };
        r.cluster.wait_converged(r.cluster.opts.converge_timeout)?;
        r.start_mon2()?;
        crate::ha_lab::wait_until(
            "mon2 reports mon as the leader",
            Duration::from_secs(20),
            || Ok(r.log_of("mon2").contains("leads (term").then_some(())),
        )
        .map_err(|e| format!("{e}\n{}", r.diagnostics()))?;
        Ok(r)
    }

    /// The control address of monitor `node` (`mon` or `mon2`).
    pub fn addr(&self, node: &str) -> String {
        let ip = self
            .cluster
            .lab
            .node(node)
            .map(|n| n.ip.to_string())
            .unwrap_or_default();
        format!("{ip}:9988")
    }

    /// Starts (or restarts) mon2 with mon's configuration, its own address and status path.
    pub fn start_mon2(&self) -> Result<()> {
        let ip = self
            .cluster
            .lab
            .node("mon2")
            .map_err(|e| format!("mon2: {e}"))?
            .ip
            .to_string();
        let status = self
            .cluster
            .lab
            .dir()
            .join("monitor")
            .join("status-mon2.json");
        let status = status.display().to_string();
        let mut overrides: Vec<(&str, &str)> = self
            .cluster
            .opts
            .monitor
            .iter()
            .filter(|(k, _)| k != "monitor.ip")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        overrides.push(("monitor.ip", &ip));
        overrides.push(("monitor.status_path", &status));
        let yaml = self
            .cluster
            .lab
            .monitor_config_yaml(&overrides)
            .map_err(|e| format!("mon2 config: {e}"))?;
        let cfg = self
            .cluster
            .lab
            .write_private_file("monitor-mon2.yaml", yaml)
            .map_err(|e| format!("mon2 config: {e}"))?;
        let p = self
            .cluster
            .lab
            .spawn_in(
                "mon2",
                &self.cluster.bins.monitor,
                ["--config".to_string(), cfg.display().to_string()],
                &[],
            )
            .map_err(|e| format!("start mon2: {e}"))?;
        *self.mon2.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
        Ok(())
    }

    /// The monitor process on `node`.
    pub fn monitor(&self, node: &str) -> Option<ProcHandle> {
        match node {
            "mon" => self.cluster.monitor(),
            _ => self.mon2.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub fn log_of(&self, node: &str) -> String {
        self.monitor(node).map(|p| p.log()).unwrap_or_default()
    }

    /// The leadership key's value (the leader's control address) and create revision (its
    /// term), read with etcdctl from `from`'s namespace; `None` when nobody leads.
    pub fn leader_key(&self, from: &str) -> Result<Option<(String, u64)>> {
        let out = self
            .etcd
            .etcdctl(
                &self.cluster.lab,
                from,
                &self.etcd.endpoints(),
                &["get", &format!("{PREFIX}/leader"), "-w", "json"],
            )
            .map_err(|e| format!("etcdctl: {e}"))?;
        if !out.success() {
            return Err(format!("etcdctl get the leader key: {out:?}"));
        }
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).map_err(|e| format!("etcdctl JSON: {e}"))?;
        let Some(kv) = v["kvs"].get(0) else {
            return Ok(None);
        };
        let value = kv["value"].as_str().unwrap_or_default();
        let value = base64_decode(value);
        Ok(Some((value, kv["create_revision"].as_u64().unwrap_or(0))))
    }

    /// Waits until `node` leads a term other than `old_term` (per the leadership key); returns
    /// the new term and how long it took from `since`.
    pub fn wait_leader(
        &self,
        node: &str,
        old_term: u64,
        since: Instant,
        timeout: Duration,
    ) -> Result<(u64, Duration)> {
        let want = self.addr(node);
        // Asked from the new leader's own namespace: the old one may be cut off from etcd.
        let from = node;
        crate::ha_lab::wait_until(&format!("{node} leads"), timeout, || {
            Ok(self
                .leader_key(from)
                .ok()
                .flatten()
                .filter(|(who, term)| *who == want && *term != old_term)
                .map(|(_, t)| (t, since.elapsed())))
        })
        .map_err(|e| format!("{e}\n{}", self.diagnostics()))
    }

    pub fn diagnostics(&self) -> String {
        format!(
            "{}--- mon2 log (tail)\n{}\n",
            self.cluster.diagnostics(),
            self.monitor("mon2")
                .map(|p| p.log_tail(40))
                .unwrap_or_default()
        )
    }
}

/// etcdctl's JSON output encodes keys and values in base64 (standard alphabet).
fn base64_decode(s: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(
            super::base64_decode("MTAuMC4wLjEwOjk5ODg="),
            "10.0.0.10:9988"
        );
    }
}
