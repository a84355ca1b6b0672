//! The agent's state file (`<state_dir>/agent-state.json`): what must survive a restart of the
//! agent — the highest epoch applied (a stale monitor must not be obeyed after a restart), the
//! running writer lease (a restarted agent on a healthy writer keeps writing; one whose lease
//! ran out meanwhile fences at once) and the cluster's writer IPs (what to remove when fencing
//! without a word from the monitor).
//!
//! Written after every change, before the change takes effect on the host: temp file + rename,
//! so a crash leaves the old or the new file. Renewals are not fsynced — a process crash keeps
//! the page cache, and after a power loss the boot id differs, so no lease survives anyway;
//! an epoch change is fsynced, since it must survive a reboot too. An unreadable file counts
//! as "no lease", which makes the agent fence if the host is writable: the safe side.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::promise::Promise;
use super::Lease;

const FORMAT: &str = "ha-agent-state";
const VERSION: u32 = 1;
const FILE: &str = "agent-state.json";

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// Boot the lease deadline belongs to.
    pub boot_id: String,
    /// Highest epoch applied.
    pub epoch: u64,
    pub lease: Lease,
    /// The cluster's writer-role IPs, as last told by the monitor.
    pub writer_ips: Vec<Ipv4Addr>,
    /// What this agent promised a peer writer (absent in files of earlier versions: none).
    #[serde(default)]
    pub promise: Promise,
    /// Whom this writer asks for promises (absent in files of earlier versions: nobody).
    #[serde(default)]
    pub writer_peers: Vec<crate::desired::Peer>,
    /// Highest leadership term accepted (absent in files of earlier versions: 0).
    #[serde(default)]
    pub leader_term: u64,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u32,
    state: Persisted,
}

/// The state file, written by one writer at a time; an older snapshot never overwrites a newer.
pub struct Store {
    path: PathBuf,
    /// Sequence number and durable facts of the last snapshot written.
    written: Mutex<(u64, Durable)>,
}

/// What of a snapshot must survive a power loss: an epoch change, a longer promise (after a
/// reboot the agent waits out the longest span it promised) and a new leadership term (it
/// refuses deposed monitors). A snapshot that changes none of them (a renewal) is not fsynced.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Durable {
    epoch: u64,
    promise_span_ms: u64,
    leader_term: u64,
}

impl Durable {
    fn of(state: &Persisted) -> Durable {
        Durable {
            epoch: state.epoch,
            promise_span_ms: state.promise.span_ms(),
            leader_term: state.leader_term,
        }
    }
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store {
            path: dir.join(FILE),
            written: Mutex::new((0, Durable::default())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored state; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<Persisted>, String> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let env: Envelope = serde_json::from_str(&text)
            .map_err(|e| format!("{} is corrupt: {e}", self.path.display()))?;
        if env.format != FORMAT || env.version != VERSION {
            return Err(format!(
                "{} is not an ha-agent state file of version {VERSION} (format {:?}, version {})",
                self.path.display(),
                env.format,
                env.version
            ));
        }
        if let Ok(mut w) = self.written.lock() {
            w.1 = Durable::of(&env.state);
        }
        Ok(Some(env.state))
    }

    /// Writes snapshot number `seq` unless a newer one was written already.
    pub fn save(&self, seq: u64, state: &Persisted) -> Result<(), String> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if seq < written.0 {
            return Ok(());
        }
        let durable = Durable::of(state);
        self.write(state, durable != written.1)?;
        *written = (seq, durable);
        Ok(())
    }

    /// Sets the highest leadership term accepted back to 0 (`ha-agent --reset-leader-term`,
    /// with the agent stopped): after redundant monitors are replaced by a single one, or
    /// etcd's data was recreated (its revisions, the terms, start again). Returns the term the
    /// file held.
    pub fn reset_leader_term(&self) -> Result<u64, String> {
        let Some(mut state) = self.load()? else {
            return Ok(0);
        };
        let was = state.leader_term;
        state.leader_term = 0;
        self.write(&state, true)?;
        Ok(was)
    }

    fn write(&self, state: &Persisted, sync: bool) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let what = |step: &str, e: std::io::Error| {
            format!(
                "cannot write the agent state file {}: {step}: {e} (state_dir must be a writable directory on persistent storage)",
                self.path.display()
            )
        };
        fs::create_dir_all(dir).map_err(|e| what("create the directory", e))?;
        let env = Envelope {
            format: FORMAT.into(),
            version: VERSION,
            state: state.clone(),
        };
        let text =
            serde_json::to_vec(&env).map_err(|e| format!("cannot encode agent state: {e}"))?;
        let tmp = dir.join(format!(".{FILE}.tmp"));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| what("create the temporary file", e))?;
            f.write_all(&text).map_err(|e| what("write", e))?;
            if sync {
                f.sync_all().map_err(|e| what("fsync", e))?;
            }
        }
        fs::rename(&tmp, &self.path).map_err(|e| what("rename", e))?;
        if sync {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::RoleIp;

    #[test]
    fn round_trip_and_no_stale_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(&dir.path().join("sub"));
        assert_eq!(store.load(), Ok(None));
        let mut lease = Lease::default();
        lease.grant(
            &RoleIp {
                name: "writer".into(),
                ip: Ipv4Addr::new(10, 0, 0, 100),
            },
            ha_lease::AgentDeadline::new(1_000, 2_000, 100),
            2_000,
        );
        let st = Persisted {
            leader_term: 0,
            boot_id: "b".into(),
            epoch: 7,
            lease,
            writer_ips: vec![Ipv4Addr::new(10, 0, 0, 100)],
            promise: Promise::default(),
            writer_peers: Vec::new(),
        };
        store.save(2, &st).expect("save");
        let older = Persisted {
            epoch: 6,
            ..st.clone()
        };
        store.save(1, &older).expect("skipped");
        assert_eq!(store.load(), Ok(Some(st)));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(store.path()).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o077, 0, "not readable by others");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        fs::write(store.path(), b"{not json").expect("write");
        assert!(store.load().unwrap_err().contains("corrupt"));
        fs::write(store.path(), br#"{"format":"x","version":1,"state":{"boot_id":"","epoch":1,"lease":{"deadline":null,"role":null,"length_ms":0},"writer_ips":[]}}"#).expect("write");
        assert!(store
            .load()
            .unwrap_err()
            .contains("not an ha-agent state file"));
    }

    #[test]
    fn a_file_of_the_previous_version_loads_with_no_promise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        fs::write(store.path(), br#"{"format":"ha-agent-state","version":1,"state":{"boot_id":"b","epoch":4,"lease":{"deadline":null,"role":null,"length_ms":0},"writer_ips":[]}}"#).expect("write");
        let st = store.load().expect("loads").expect("a state");
        assert_eq!(st.epoch, 4);
        assert_eq!(st.promise, Promise::default());
    }

    #[test]
    fn the_leadership_term_is_reset_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        assert_eq!(
            store.reset_leader_term(),
            Ok(0),
            "no file: nothing to reset"
        );
        let st = Persisted {
            leader_term: 42,
            epoch: 9,
            boot_id: "b".into(),
            ..Default::default()
        };
        store.save(1, &st).expect("save");
        assert_eq!(store.reset_leader_term(), Ok(42));
        let after = store.load().expect("load").expect("state");
        assert_eq!(after.leader_term, 0);
        assert_eq!(after.epoch, 9, "the epoch is kept");
    }
}
