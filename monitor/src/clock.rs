//! The daemon's only clock: wall-clock milliseconds at start-up plus monotonic time since.
//!
//! The core takes `now` as an input. Feeding it a value derived from `Instant` keeps every
//! duration it measures (trap periods, leases, flap windows) immune to NTP steps, while the
//! absolute value stays close to real time for display (`checks` last change) and for the
//! status file.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_unix_ms: u64,
}

impl Clock {
    pub fn new() -> Self {
        let start_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock {
            start: Instant::now(),
            start_unix_ms,
        }
    }

    /// Milliseconds since the UNIX epoch, never going backwards.
    pub fn now_ms(&self) -> u64 {
        self.start_unix_ms + self.start.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
