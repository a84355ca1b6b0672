//! The record of the active master's fallback from semi-sync to asynchronous replication (the
//! rules that start and end it are in `semisync.rs`).

use crate::ids::HostId;
use crate::time::Millis;

/// The active master's semi-sync fell back to asynchronous replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AsyncFallback {
    pub host: HostId,
    pub since: Millis,
    /// The refusal to fail over was logged (once per fallback).
    pub refusal_logged: bool,
}
