//! Adopting the running writer: the hand-over from another HA tool (mysql-mmm) without a write
//! pause.
//!
//! An agent that starts without a valid lease fences a writable host at once
//! (`converge::guard`, `startup_fence`): after a restart nobody can tell whether the monitor
//! made another host writable meanwhile. On the day ha takes over from another tool that rule
//! would stop the writes the old tool's writer is serving, until ha's monitor grants the role
//! back. So the operator may give the agent, once, the permission to **adopt** the writer it
//! finds: `ha-agent --adopt-writer` leaves a marker in `state_dir`; the next agent start takes
//! it (deletes it first, so it is used at most once) and, if the host is writable then and
//! the monitor has not granted anything yet, keeps it writable for at most
//! [`ha_lease::ADOPT_WINDOW_MS`] on its own clock, as a lease without a role
//! ([`super::Lease::adopt`]). The adoption ends at the first of:
//!
//! * a writer grant from the monitor: the monitor's lease replaces it (no pause);
//! * a desired state without the writer role: the converger demotes the host as usual;
//! * the end of the window: the lease guard fences the host (read_only=1, client connections
//!   killed).
//!
//! Why no second writer can appear: the agent reports the adoption as a running lease in every
//! reply, so a monitor that heard from it keeps the host exposed until the window surely ended
//! (`Exposure::on_status`); a monitor that starts without a status file and gets no answer
//! from an agent keeps that host exposed for the whole window longer
//! ([`ha_lease::unanswered_bound`]). The permission is refused when the agent has a state file
//! (ha has run here before: its own lease rules apply) and ignored when one appeared since.
//! What remains is the operator's assertion that this host is the only writer, and an agent
//! started *after* the monitor's start-up that the monitor cannot reach: the window is then not
//! covered by the monitor's bound (docs/migrating-from-mmm.md says to start the monitor
//! within the window).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The marker's file name in `state_dir`.
const MARKER: &str = "adopt-writer";

/// Grants the one-time permission: writes the marker into `state_dir`. Refused when the agent
/// state file (`state_file`) exists. Returns the marker's path.
pub fn permit(state_dir: &Path, state_file: &Path) -> Result<PathBuf, String> {
    if state_file.exists() {
        return Err(format!(
            "{} exists: ha-agent has run on this host before, so its writer lease rules apply and a writable host without a valid lease is fenced; --adopt-writer is only for the first start after another HA tool (delete the file only if this host's agent never ran under a monitor of this cluster)",
            state_file.display()
        ));
    }
    fs::create_dir_all(state_dir)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
    let path = state_dir.join(MARKER);
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?
    };
    f.write_all(b"ha-agent: adopt the writable server at the next start, once\n")
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// `ha-agent --adopt-writer`: [`permit`] for the agent configured by `cfg`.
pub fn permit_for(cfg: &ha_config::AgentConfig) -> Result<PathBuf, String> {
    let store = super::store::Store::new(&cfg.state_dir);
    permit(&cfg.state_dir, store.path())
}

/// At agent start: takes the permission if there is one. The marker is deleted before the
/// permission counts, so it is used at most once; `Err` when it exists but cannot be deleted
/// (then it does not count).
pub fn take(state_dir: &Path) -> Result<bool, String> {
    let path = state_dir.join(MARKER);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!(
            "cannot delete the adoption marker {} ({e}); not adopting the writer: a marker that stays could be used again",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_is_used_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_dir = dir.path().join("ha");
        let state_file = state_dir.join("agent-state.json");
        assert_eq!(take(&state_dir), Ok(false));
        let marker = permit(&state_dir, &state_file).expect("permit");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(&marker).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(take(&state_dir), Ok(true));
        assert_eq!(take(&state_dir), Ok(false), "used once");
    }

    #[test]
    fn refused_once_ha_has_run_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_file = dir.path().join("agent-state.json");
        fs::write(&state_file, b"{}").expect("write");
        let e = permit(dir.path(), &state_file).unwrap_err();
        assert!(e.contains("has run on this host before"), "{e}");
        assert_eq!(take(dir.path()), Ok(false));
    }
}
