//! The cluster's epoch (crate `ha-lease`, epoch rules): the monitor's orders carry it, agents
//! refuse older ones. It grows with every change of the writer's owner (`Core::set_owner`),
//! continues above a plausible epoch an agent reports, and never wraps.

use crate::core::Core;
use crate::io::{log, Action, Level};
use ha_lease::{next_epoch, plausible_epoch};

impl Core {
    /// Continues at an epoch an agent reports above ours, unless the value is absurd (a corrupt
    /// or hostile agent must not make every later epoch wrap). Returns whether it was adopted.
    pub(crate) fn adopt_epoch(&mut self, host: &str, reported: u64, out: &mut Vec<Action>) -> bool {
        if reported <= self.epoch {
            return true;
        }
        if !plausible_epoch(self.epoch, reported) {
            if self.refused_epoch != Some(reported) {
                self.refused_epoch = Some(reported);
                log(
                    out,
                    Level::Error,
                    format!(
                        "Agent on host '{host}' reports epoch {reported}, absurdly far above ours ({}); ignored. \
                         If that agent's state file is corrupt, stop the agent and remove it; otherwise find out who else sends it orders.",
                        self.epoch
                    ),
                );
            }
            return false;
        }
        log(
            out,
            Level::Warn,
            format!(
                "Agent on host '{host}' already applied epoch {reported} (ours was {}); continuing above it",
                self.epoch
            ),
        );
        self.epoch = reported;
        self.dirty = true;
        true
    }

    /// Moves to the next epoch (never wraps: at the end of the range it stays and says so).
    pub(crate) fn bump_epoch(&mut self, out: &mut Vec<Action>) {
        match next_epoch(self.epoch) {
            Some(e) => {
                self.epoch = e;
                self.dirty = true;
            }
            None => log(
                out,
                Level::Error,
                "The epoch is at its maximum and cannot grow; agents may refuse new orders. Reset the cluster's epochs (status file and agent state files).".into(),
            ),
        }
    }
}
