//! State files, stale-lab detection and teardown by prefix.
//!
//! Every lab claims its prefix by creating `/run/ha-lab/<prefix>.json` with `O_EXCL` *before*
//! it creates any namespace or link. The file records the owning process (PID + start time, so
//! a reused PID is not mistaken for the owner) or `kept: true` for labs brought up by
//! `ha-lab up` that outlive their creator. Consequently:
//!
//! * anything named `<prefix>-…` without a state file is a leftover (its owner crashed between
//!   cleanup steps) and can be removed;
//! * a lab whose owner process is gone and that is not kept is stale (its test was SIGKILLed or
//!   aborted) and can be removed;
//! * running labs of parallel tests are never touched.
//!
//! Teardown only ever signals PIDs found *inside the lab's own namespaces* (`ip netns pids`):
//! every such process was started by the lab.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::netns;
use crate::{Host, Node};

/// Directory of the lab state files.
pub const STATE_DIR: &str = "/run/ha-lab";

/// Prefixes look like `hl` + 4 lowercase alphanumerics (`hl3f2a`, `hldemo`): short enough that
/// `<prefix>-db12-h` fits the 15-character interface-name limit, and specific enough that
/// cleanup never matches anything that is not a lab's.
pub fn valid_prefix(p: &str) -> bool {
    p.len() == 6
        && p.starts_with("hl")
        && p[2..]
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

/// The prefix of a lab object name (`hl3f2a-db1` → `hl3f2a`), if it is one.
pub fn prefix_of(name: &str) -> Option<&str> {
    let (p, rest) = name.split_once('-')?;
    (valid_prefix(p) && !rest.is_empty()).then_some(p)
}

/// The owning process of a lab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot).
    pub start_time: u64,
}

impl Owner {
    /// The current process.
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    /// True while that very process is alive.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

fn start_time(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    let after = s.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The persisted description of a lab (also what `ha-lab status` prints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub prefix: String,
    /// `10.a.b.0/24`.
    pub subnet: String,
    pub dir: PathBuf,
    pub bridge: String,
    pub owner: Option<Owner>,
    pub kept: bool,
    pub hosts: Vec<Host>,
    pub mon: Option<Node>,
    pub cli: Option<Node>,
    /// [`crate::LabOptions::extra_nodes`] (absent in state files of older labs).
    #[serde(default)]
    pub extra: Vec<Node>,
    pub writer_vip: Option<Ipv4Addr>,
    pub reader_vips: Vec<Ipv4Addr>,
    /// Daemon processes started by `ha-lab up` (name → PID), informational.
    #[serde(default)]
    pub daemons: Vec<(String, u32)>,
}

/// Path of a lab's state file.
pub fn state_path(prefix: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{prefix}.json"))
}

/// The lab directory used for a prefix.
pub fn lab_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ha-lab-{prefix}"))
}

/// Atomically claims `state.prefix` by creating its state file. False if already taken.
pub fn claim(state: &LabState) -> Result<bool> {
    fs::create_dir_all(STATE_DIR).map_err(|e| Error::path("create", Path::new(STATE_DIR), e))?;
    let path = state_path(&state.prefix);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => {
            let json = serde_json::to_vec_pretty(state)
                .map_err(|e| Error::Other(format!("serialize lab state: {e}")))?;
            f.write_all(&json)
                .map_err(|e| Error::path("write", &path, e))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::path("create", &path, e)),
    }
}

/// Rewrites a claimed lab's state file (atomically, via rename).
pub fn write_state(state: &LabState) -> Result<()> {
    let path = state_path(&state.prefix);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Other(format!("serialize lab state: {e}")))?;
    fs::write(&tmp, json).map_err(|e| Error::path("write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::path("rename into", &path, e))
}

/// Reads a lab's state file, if any.
pub fn read_state(prefix: &str) -> Result<Option<LabState>> {
    let path = state_path(prefix);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Other(format!("parse {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::path("read", &path, e)),
    }
}

/// All prefixes that have a state file, a namespace, a link or a lab directory.
pub fn known_prefixes() -> Result<Vec<String>> {
    let mut v: Vec<String> = Vec::new();
    if let Ok(rd) = fs::read_dir(STATE_DIR) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if let Some(p) = n.strip_suffix(".json") {
                if valid_prefix(p) {
                    v.push(p.to_string());
                }
            }
        }
    }
    for n in netns::list_ns()?.into_iter().chain(netns::list_links()?) {
        if let Some(p) = prefix_of(&n) {
            v.push(p.to_string());
        }
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// Whether a prefix is stale: no state file (leftovers), or owner gone and not kept.
pub fn is_stale(prefix: &str) -> bool {
    match read_state(prefix) {
        Ok(Some(s)) => !s.kept && !s.owner.as_ref().is_some_and(Owner::alive),
        Ok(None) => true,
        // An unreadable state file is being written right now or is garbage; leave it alone
        // unless asked for explicitly.
        Err(_) => false,
    }
}

/// Removes every stale lab (see [`is_stale`]). Returns the prefixes removed.
pub fn remove_stale() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for p in known_prefixes()? {
        if is_stale(&p) {
            teardown(&p)?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// What teardown did, for the CLI.
#[derive(Debug, Default)]
pub struct Teardown {
    pub killed: Vec<i32>,
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
}

/// Tears down everything of `prefix`: kills processes inside its namespaces (by PID), deletes
/// its veths, bridge and namespaces, removes its directory (unless `HA_LAB_KEEP=1`) and its
/// state file. Idempotent; every wait is bounded.
pub fn teardown(prefix: &str) -> Result<Teardown> {
    if !valid_prefix(prefix) {
        return Err(Error::Other(format!(
            "refusing to tear down `{prefix}`: not a lab prefix (hl + 4 of [0-9a-z])"
        )));
    }
    let mut report = Teardown::default();
    let mine = |n: &String| prefix_of(n) == Some(prefix);
    let namespaces: Vec<String> = netns::list_ns()?.into_iter().filter(mine).collect();

    // 1. Processes: SIGCONT (a frozen process cannot be stopped otherwise) then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut any = false;
        for ns in &namespaces {
            for pid in netns::pids(ns)? {
                any = true;
                // SAFETY: kill(2) on a process inside this lab's own namespace.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
                if !report.killed.contains(&pid) {
                    report.killed.push(pid);
                }
            }
        }
        if !any {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("processes in namespaces of lab {prefix} to die"),
                after: Duration::from_secs(15),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Killed processes that are not our children are reaped by init; give it a moment so that
    // `pgrep mariadbd` right after a teardown shows nothing (bounded, not fatal).
    // Those that are our own children (a lab kept by this very process) we reap ourselves;
    // `waitpid` on a PID that is not our child just fails with ECHILD.
    let reap_deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut pending = false;
        for &pid in &report.killed {
            // SAFETY: non-blocking waitpid; only affects our own children.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            if process_exists(pid) {
                pending = true;
            }
        }
        if !pending || Instant::now() >= reap_deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // 2. Links in the root namespace (veth bridge sides, then the bridge). Deleting one veth
    //    end deletes its peer at once; deleting a namespace would do so only asynchronously.
    let mut links: Vec<String> = netns::list_links()?.into_iter().filter(mine).collect();
    links.sort_by_key(|l| l.ends_with("-br"));
    for l in links {
        match netns::del_link(&l) {
            Ok(()) => report.links.push(l),
            Err(e) => {
                if netns::list_links()?.contains(&l) {
                    return Err(e);
                }
            }
        }
    }

    // 3. Namespaces.
    for ns in namespaces {
        netns::del_ns(&ns)?;
        report.namespaces.push(ns);
    }

    // 4. Files.
    let keep = std::env::var("HA_LAB_KEEP").is_ok_and(|v| v == "1");
    let dir = read_state(prefix)
        .ok()
        .flatten()
        .map(|s| s.dir)
        .unwrap_or_else(|| lab_dir(prefix));
    if !keep && dir.starts_with(std::env::temp_dir()) {
        if let Err(e) = fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::path("remove", &dir, e));
            }
        }
    }
    let sp = state_path(prefix);
    if let Err(e) = fs::remove_file(&sp) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(Error::path("remove", &sp, e));
        }
    }
    Ok(report)
}

/// True while `/proc/<pid>` exists (zombies included: `pgrep` lists them too).
fn process_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Everything still present for `prefix` (namespaces, links, state file), for tests asserting
/// a clean teardown.
pub fn leftovers(prefix: &str) -> Result<Vec<String>> {
    let mut v: Vec<String> = netns::list_ns()?
        .into_iter()
        .chain(netns::list_links()?)
        .filter(|n| prefix_of(n) == Some(prefix))
        .collect();
    if state_path(prefix).exists() {
        v.push(state_path(prefix).display().to_string());
    }
    Ok(v)
}
