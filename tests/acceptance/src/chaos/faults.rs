//! Carrying out a schedule's faults on the lab, and healing them all as an operator would.
//!
//! Faults on the same resource overlap by counting: the first start injects, the last end
//! undoes (two overlapping "link down db2" keep the cable out until both ended). Every process
//! the schedule kills or restarts is remembered, so any other daemon exit is a crash (I4).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use ha_lab::Netem;

use super::run::Violation;
use super::schedule::{Fault, CLIENT, MONITOR};
use crate::cluster::{Cluster, Result};

/// How long healing waits for a fenced host's agent to make it harmless before giving its
/// switch port back anyway.
const FENCED_SETTLE: Duration = Duration::from_secs(20);

pub struct Applier<'a> {
    c: &'a Cluster,
    /// Active faults per resource (`link:db2`, `agent:db1`, …).
    active: BTreeMap<String, usize>,
    /// Processes the schedule stopped on purpose (`agent:db1`, `monitor`) and not yet
    /// restarted.
    down_on_purpose: BTreeSet<String>,
    /// Partitions ever made, so healing removes every one.
    partitions: BTreeSet<(String, String)>,
    /// Nodes that had packet loss.
    lossy: BTreeSet<String>,
    /// I4 violations already reported (each once).
    reported: BTreeSet<String>,
}

fn resource(f: &Fault) -> Option<String> {
    Some(match f {
        Fault::MysqldStop { host } | Fault::MysqldKill { host } => format!("mysqld:{host}"),
        Fault::Freeze { node } => format!("freeze:{node}"),
        Fault::LinkDown { node } => format!("link:{node}"),
        Fault::Loss { node, .. } => format!("loss:{node}"),
        Fault::Partition { a, b, one_way } => format!("partition:{a}:{b}:{one_way}"),
        Fault::AgentKill { host } | Fault::ClockStep { host, .. } => format!("agent:{host}"),
        Fault::MonitorKill => "monitor".to_string(),
        Fault::SetOffline { host } => format!("offline:{host}"),
        Fault::MoveWriter { .. } => return None,
    })
}

impl<'a> Applier<'a> {
    pub fn new(c: &'a Cluster) -> Applier<'a> {
        Applier {
            c,
            active: BTreeMap::new(),
            down_on_purpose: BTreeSet::new(),
            partitions: BTreeSet::new(),
            lossy: BTreeSet::new(),
            reported: BTreeSet::new(),
        }
    }

    fn is_active(&self, r: &str) -> bool {
        self.active.get(r).is_some_and(|n| *n > 0)
    }

    /// Starts `f`; a note for the timeline (empty, or why nothing was done).
    pub fn start(&mut self, f: &Fault) -> Result<String> {
        if let Some(r) = resource(f) {
            let n = self.active.entry(r).or_default();
            *n += 1;
            if *n > 1 {
                return Ok(" (already in effect)".into());
            }
        }
        let lab = &self.c.lab;
        let e = |e: ha_lab::Error| e.to_string();
        match f {
            Fault::MysqldStop { host } => lab.stop_mysqld(host).map_err(e)?,
            Fault::MysqldKill { host } => lab.kill_mysqld(host).map_err(e)?,
            Fault::Freeze { node } => lab.freeze(node).map_err(e)?,
            Fault::LinkDown { node } => lab.link_down(node).map_err(e)?,
            Fault::Loss { node, percent } => {
                self.lossy.insert(node.clone());
                lab.netem(node, Netem::loss(f64::from(*percent)))
                    .map_err(e)?;
            }
            Fault::Partition { a, b, one_way } => {
                self.partitions.insert((a.clone(), b.clone()));
                if *one_way {
                    lab.deafen(b, a).map_err(e)?
                } else {
                    lab.cut(a, b).map_err(e)?
                }
            }
            Fault::AgentKill { host } => {
                self.down_on_purpose.insert(format!("agent:{host}"));
                if let Some(p) = self.c.agent(host) {
                    p.kill().map_err(e)?;
                }
            }
            Fault::MonitorKill => {
                self.down_on_purpose.insert("monitor".into());
                if let Some(p) = self.c.monitor() {
                    p.kill().map_err(e)?;
                }
            }
            Fault::ClockStep { host, secs } => {
                let lib = libfaketime().ok_or(
                    "libfaketime is not installed (apt-get install faketime): not stepped",
                )?;
                self.down_on_purpose.insert(format!("agent:{host}"));
                self.c.stop_agent(host)?;
                let offset = format!("{secs:+}s");
                let lib = lib.display().to_string();
                self.c.start_agent_with(
                    host,
                    &[
                        ("LD_PRELOAD", lib.as_str()),
                        ("FAKETIME", offset.as_str()),
                        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                    ],
                )?;
                self.down_on_purpose.remove(&format!("agent:{host}"));
            }
            Fault::MoveWriter { host } => return self.command(&["move_role", "writer", host]),
            Fault::SetOffline { host } => return self.command(&["set_offline", host]),
        }
        Ok(String::new())
    }

    /// Ends `f` (the last overlapping fault on its resource undoes it).
    pub fn end(&mut self, f: &Fault) -> Result<String> {
        let Some(r) = resource(f) else {
            return Ok(String::new());
        };
        let n = self.active.entry(r.clone()).or_default();
        *n = n.saturating_sub(1);
        if *n > 0 {
            return Ok(" (another fault keeps it)".into());
        }
        self.undo(f)
    }

    fn undo(&mut self, f: &Fault) -> Result<String> {
        let lab = &self.c.lab;
        let e = |e: ha_lab::Error| e.to_string();
        match f {
            Fault::MysqldStop { host } | Fault::MysqldKill { host } => {
                lab.start_mysqld(host).map_err(e)?
            }
            Fault::Freeze { node } => {
                lab.thaw(node).map_err(e)?;
                if self.is_active(&format!("link:{node}")) {
                    lab.link_down(node).map_err(e)?;
                }
            }
            Fault::LinkDown { node } => {
                if self.is_active(&format!("freeze:{node}")) {
                    return Ok(" (still frozen: cable stays out)".into());
                }
                lab.link_up(node).map_err(e)?
            }
            Fault::Loss { node, .. } => lab.clear_netem(node).map_err(e)?,
            Fault::Partition { a, b, .. } => lab.heal(a, b).map_err(e)?,
            Fault::AgentKill { host } | Fault::ClockStep { host, .. } => {
                self.c.stop_agent(host)?;
                self.c.start_agent(host)?;
                self.down_on_purpose.remove(&format!("agent:{host}"));
            }
            Fault::MonitorKill => {
                self.c.start_monitor()?;
                self.down_on_purpose.remove("monitor");
            }
            Fault::SetOffline { host } => return self.command(&["set_online", host]),
            Fault::MoveWriter { .. } => {}
        }
        Ok(String::new())
    }

    fn command(&self, args: &[&str]) -> Result<String> {
        let out = self.c.control(args)?;
        Ok(format!(" -> {}", out.stdout.trim()))
    }

    /// Ends every fault still in effect and makes sure nothing is left broken: every cable in,
    /// every partition and packet loss gone, every server and daemon running. One line per
    /// repair.
    pub fn heal_all(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        let lab = &self.c.lab;
        let nodes: Vec<String> = lab
            .host_names()
            .into_iter()
            .chain([MONITOR.to_string(), CLIENT.to_string()])
            .collect();
        for n in &nodes {
            if self.is_active(&format!("freeze:{n}")) {
                let r = lab.thaw(n);
                done.push(format!("thaw {n}: {r:?}"));
            }
            let _ = lab.link_up(n);
        }
        for n in std::mem::take(&mut self.lossy) {
            let r = lab.clear_netem(&n);
            done.push(format!("packet loss on {n} cleared: {r:?}"));
        }
        for (a, b) in std::mem::take(&mut self.partitions) {
            let r = lab.heal(&a, &b);
            done.push(format!("partition {a}/{b} healed: {r:?}"));
        }
        for h in lab.host_names() {
            if self.is_active(&format!("mysqld:{h}")) {
                let r = lab.start_mysqld(&h);
                done.push(format!("mysqld on {h} started: {r:?}"));
            }
            let agent_down = !self.c.agent(&h).is_some_and(|p| p.is_running());
            if agent_down || self.is_active(&format!("agent:{h}")) {
                let _ = self.c.stop_agent(&h);
                let r = self.c.start_agent(&h);
                done.push(format!("ha-agent on {h} (re)started: {r:?}"));
                self.down_on_purpose.remove(&format!("agent:{h}"));
            }
            if self.is_active(&format!("offline:{h}")) {
                done.push(format!("set_online {h} left to the operator"));
            }
        }
        done.extend(reenable_fenced_ports(self.c));
        if !self.c.monitor().is_some_and(|p| p.is_running()) {
            let r = self.c.start_monitor();
            done.push(format!("ha-monitor started: {r:?}"));
            self.down_on_purpose.remove("monitor");
        }
        self.active.clear();
        done
    }

    /// Daemons that are not running although the schedule did not stop them (I4), each
    /// reported once, with its exit status and log tail.
    pub fn unexpected_exits(&mut self) -> Vec<Violation> {
        let mut found = Vec::new();
        let mut procs: Vec<(String, Option<ha_lab::ProcHandle>)> = self
            .c
            .lab
            .host_names()
            .into_iter()
            .map(|h| (format!("agent:{h}"), self.c.agent(&h)))
            .collect();
        procs.push(("monitor".into(), self.c.monitor()));
        for (name, p) in procs {
            let Some(p) = p else { continue };
            if p.is_running() || self.down_on_purpose.contains(&name) {
                continue;
            }
            // A frozen node's processes are stopped, not gone; is_running covers that.
            let key = format!("{name}:{:?}", p.pid());
            if self.reported.insert(key) {
                found.push(Violation {
                    invariant: "I4",
                    detail: format!(
                        "{name} exited ({:?}) without the schedule stopping it; log tail:\n{}",
                        p.exit_status(),
                        p.log_tail(20)
                    ),
                });
            }
        }
        found
    }
}

/// The DBA procedure for a host holding never-acknowledged transactions: stop its agent,
/// rebuild it from the writer, start the agent again.
pub fn rebuild(c: &Cluster, host: &str, writer: &str) -> Result<()> {
    c.stop_agent(host)?;
    c.lab
        .rebuild_from(host, writer)
        .map_err(|e| format!("rebuild {host} from {writer}: {e}"))?;
    c.start_agent(host)
}

/// Debian's libfaketime (package `faketime`), if installed: the variant for multi-threaded
/// programs (ha-agent runs tokio), else the plain one.
fn libfaketime() -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime"))
        .collect();
    ["libfaketimeMT.so.1", "libfaketime.so.1"]
        .iter()
        .flat_map(|lib| dirs.iter().map(move |d| d.join(lib)))
        .find(|p| p.exists())
}

/// Hosts the monitor fenced (`kill_host_bin` shut their switch port) get their port back
/// as an operator would: once the host's restarted agent has made it harmless (read-only,
/// writer IP released), or after [`FENCED_SETTLE`] regardless, so that I1 judges what
/// happens then. Also called while the operator waits for convergence: the monitor may fence
/// a host after healing started.
pub(super) fn reenable_fenced_ports(c: &Cluster) -> Vec<String> {
    let lab = &c.lab;
    let mut done = Vec::new();
    for h in lab.host_names() {
        let Ok(node) = lab.node(&h) else { continue };
        if crate::invariants::plugged_in(&node.veth) != Some(false) {
            continue;
        }
        let harmless = ha_lab::wait_until("fenced host harmless", FENCED_SETTLE, || {
            let s = crate::invariants::host_sample(lab, &h);
            Ok(
                s.is_some_and(|s| s.writable == Some(false) && s.has_vip == Some(false))
                    .then_some(()),
            )
        })
        .is_ok();
        let r = lab.plug_port(&h);
        done.push(format!(
            "switch port of {h} (fenced by the monitor) re-enabled {}: {r:?}",
            if harmless {
                "once read-only without the writer IP"
            } else {
                "although still writable or holding the writer IP"
            }
        ));
    }
    done
}
