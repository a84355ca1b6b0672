//! etcd v3 members in the lab (issue 18, redundant monitors): Debian's `etcd` (package
//! `etcd-server`), one member per lab node, each in its own namespace so that a test can cut a
//! monitor off from etcd without cutting it off from the agents.
//!
//! The cluster speaks plain HTTP inside the lab's bridge (no address leaves the lab subnet), or
//! with [`Lab::start_etcd_tls`] mutual TLS towards its clients (members' certificates from the
//! lab's CA with their IP; clients must show a certificate of that CA; the Raft traffic between
//! members stays plain). Short Raft timers (heartbeat 100 ms, election 1 s) make a member loss
//! seen in seconds.
//! `etcdctl` (package `etcd-client`) is run inside a lab namespace to ask the members.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::{wait_until, Lab, ProcHandle};

/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer (Raft) port.
pub const ETCD_PEER_PORT: u16 = 2380;

/// How long [`Lab::start_etcd`] waits for every member to report healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

/// A running etcd cluster of the lab.
#[derive(Debug, Clone)]
pub struct Etcd {
    /// In the order given to [`Lab::start_etcd`].
    members: Vec<Member>,
    /// Mutual TLS towards clients: the CA and the client certificate etcdctl shows (the
    /// monitor's); `None`: plain HTTP.
    client_tls: Option<crate::tls::CertFiles>,
}

#[derive(Debug, Clone)]
struct Member {
    /// Lab node name (`etcd1`), also the member's etcd name.
    node: String,
    /// `http://<ip>:2379`.
    endpoint: String,
    process: ProcHandle,
}

impl Lab {
    /// Starts one etcd member in each of `nodes` (lab nodes, normally
    /// [`crate::LabOptions::extra_nodes`] such as `etcd1..etcd3`) as a new cluster, and waits
    /// until every member answers `endpoint health`. Members are lab processes: the lab kills
    /// them at teardown.
    pub fn start_etcd(&self, nodes: &[&str]) -> Result<Etcd> {
        self.start_etcd_with(nodes, false)
    }

    /// [`Lab::start_etcd`] with mutual TLS towards clients: `https://` client URLs, each
    /// member's certificate (identity = its node name, with its IP) from the lab's CA, and
    /// `--client-cert-auth` (a client must show a certificate of that CA).
    pub fn start_etcd_tls(&self, nodes: &[&str]) -> Result<Etcd> {
        self.start_etcd_with(nodes, true)
    }

    fn start_etcd_with(&self, nodes: &[&str], tls: bool) -> Result<Etcd> {
        crate::lifecycle::require_tools(&["etcd", "etcdctl"], "etcd-server and etcd-client")?;
        let scheme = if tls { "https" } else { "http" };
        // (node, IP, client URL, peer URL) of every member.
        let urls = nodes
            .iter()
            .map(|n| {
                let ip = self.node(n)?.ip;
                Ok((
                    *n,
                    ip,
                    format!("{scheme}://{ip}:{ETCD_CLIENT_PORT}"),
                    format!("http://{ip}:{ETCD_PEER_PORT}"),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let initial_cluster = urls
            .iter()
            .map(|(n, _, _, peer)| format!("{n}={peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (n, ip, client, peer) in urls {
            let data = self.etcd_data_dir(n);
            std::fs::create_dir_all(&data).map_err(|e| Error::path("create", &data, e))?;
            let args = [
                format!("--name={n}"),
                format!("--data-dir={}", data.display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster={initial_cluster}"),
                "--initial-cluster-state=new".to_string(),
                format!("--initial-cluster-token={}", self.prefix()),
                "--heartbeat-interval=100".to_string(),
                "--election-timeout=1000".to_string(),
                "--logger=zap".to_string(),
            ];
            let mut args = args.to_vec();
            if tls {
                let dir = self.tls_dir()?;
                ha_tls::certs::issue(&dir, n, &[ip.into()], 30)
                    .map_err(|e| Error::Other(format!("etcd certificate for {n}: {e}")))?;
                let f = self.cert_files(n)?;
                args.extend([
                    format!("--cert-file={}", f.cert.display()),
                    format!("--key-file={}", f.key.display()),
                    format!("--trusted-ca-file={}", f.ca.display()),
                    "--client-cert-auth".to_string(),
                ]);
            }
            let process = self.spawn_in(n, "etcd", args, &[])?;
            members.push(Member {
                node: n.to_string(),
                endpoint: client,
                process,
            });
        }
        let client_tls = if tls {
            Some(self.cert_files(crate::tls::MONITOR_IDENTITY)?)
        } else {
            None
        };
        let etcd = Etcd {
            members,
            client_tls,
        };
        for n in nodes {
            wait_until(&format!("etcd member {n} healthy"), HEALTHY_WITHIN, || {
                etcd.healthy(self, n).map(|ok| ok.then_some(()))
            })
            .map_err(|e| {
                Error::Other(format!(
                    "{e}\n--- etcd {n} log (tail)\n{}",
                    etcd.log_tail(n)
                ))
            })?;
        }
        Ok(etcd)
    }

    fn etcd_data_dir(&self, node: &str) -> PathBuf {
        self.dir().join("etcd").join(node)
    }
}

impl Etcd {
    /// Every member's client URL, comma-separated (etcdctl's `--endpoints`, the monitor's
    /// `coordination.etcd.endpoints`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.endpoint.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CA and client certificate of a TLS cluster ([`Lab::start_etcd_tls`]; the monitor's
    /// own files, which `coordination.etcd.tls` can name); `None` for plain HTTP.
    pub fn client_tls(&self) -> Option<&crate::tls::CertFiles> {
        self.client_tls.as_ref()
    }

    /// Member node names, in start order.
    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.node.clone()).collect()
    }

    /// The member process on `node`.
    pub fn member(&self, node: &str) -> Option<&ProcHandle> {
        self.members
            .iter()
            .find(|m| m.node == node)
            .map(|m| &m.process)
    }

    fn endpoint_of(&self, node: &str) -> Result<&str> {
        self.members
            .iter()
            .find(|m| m.node == node)
            .map(|m| m.endpoint.as_str())
            .ok_or_else(|| Error::UnknownNode(format!("{node} (not an etcd member)")))
    }

    /// Runs `etcdctl ARGS…` from inside `node` against `endpoints` (comma-separated), with
    /// short deadlines (1 s dial, 2 s per command) so a lost quorum fails fast.
    pub fn etcdctl(
        &self,
        lab: &Lab,
        node: &str,
        endpoints: &str,
        args: &[&str],
    ) -> Result<crate::Output> {
        let mut cmd = vec![
            "env".to_string(),
            "ETCDCTL_API=3".to_string(),
            "etcdctl".to_string(),
            format!("--endpoints={endpoints}"),
            "--dial-timeout=1s".to_string(),
            "--command-timeout=2s".to_string(),
        ];
        if let Some(t) = &self.client_tls {
            cmd.extend([
                format!("--cacert={}", t.ca.display()),
                format!("--cert={}", t.cert.display()),
                format!("--key={}", t.key.display()),
            ]);
        }
        cmd.extend(args.iter().map(|a| a.to_string()));
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        lab.exec(node, &cmd)
    }

    /// Whether the member on `node` answers `endpoint health` (asked from its own namespace).
    pub fn healthy(&self, lab: &Lab, node: &str) -> Result<bool> {
        let ep = self.endpoint_of(node)?;
        Ok(self
            .etcdctl(lab, node, ep, &["endpoint", "health"])?
            .success())
    }

    /// The member that leads, as the members reachable from `from` see it: the node whose
    /// `endpoint status` says it is the leader. `None` when no reachable member knows a leader.
    pub fn leader(&self, lab: &Lab, from: &str) -> Result<Option<String>> {
        for m in &self.members {
            let n = &m.node;
            let out = self.etcdctl(
                lab,
                from,
                &m.endpoint,
                &["endpoint", "status", "-w", "json"],
            )?;
            if !out.success() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&out.stdout).map_err(|e| {
                Error::Other(format!("etcdctl endpoint status on {n}: bad JSON ({e})"))
            })?;
            let status = &v[0]["Status"];
            let (me, leader) = (
                status["header"]["member_id"].as_u64(),
                status["leader"].as_u64(),
            );
            if me.is_some() && me == leader {
                return Ok(Some(n.clone()));
            }
        }
        Ok(None)
    }

    /// The last 20 lines of the member's log (for failure messages).
    pub fn log_tail(&self, node: &str) -> String {
        self.member(node)
            .map(|p| p.log_tail(20))
            .unwrap_or_else(|| format!("({node} is not an etcd member)"))
    }
}
