//! The writer lease (product.md F9): an agent holding the writer role demotes itself when the
//! monitor stops renewing the role, so an isolated old master cannot stay writable next to a new
//! one. The deadline is taken on the agent's monotonic clock at *receipt* of each ApplyState, so
//! wall-clock jumps (NTP, a frozen VM resuming) can only shorten the writable window as seen by
//! the monitor, never extend it.

use std::time::Duration;

use tokio::time::Instant;

/// The lease state: `None` = no lease running (lease 0, or not the writer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    deadline: Option<Instant>,
    length_ms: u64,
}

impl Lease {
    /// Renews (or starts) the lease at `now` for `ms` milliseconds; `ms == 0` disables it.
    pub fn renew(&mut self, now: Instant, ms: u64) {
        if ms == 0 {
            *self = Lease::default();
        } else {
            self.deadline = Some(now + Duration::from_millis(ms));
            self.length_ms = ms;
        }
    }

    /// Stops the lease (the writer role is no longer wanted, or it expired).
    pub fn clear(&mut self) {
        *self = Lease::default();
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Length of the last renewal in milliseconds (for the log line on expiry).
    pub fn length_ms(&self) -> u64 {
        self.length_ms
    }

    /// Milliseconds left at `now`; 0 once expired, -1 when no lease runs.
    pub fn remaining_ms(&self, now: Instant) -> i64 {
        match self.deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(now).as_millis();
                i64::try_from(left).unwrap_or(i64::MAX)
            }
        }
    }

    pub fn expired(&self, now: Instant) -> bool {
        matches!(self.deadline, Some(d) if now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_arithmetic() {
        let t0 = Instant::now();
        let mut l = Lease::default();
        assert_eq!(l.remaining_ms(t0), -1);
        assert!(!l.expired(t0));
        l.renew(t0, 3000);
        assert_eq!(l.remaining_ms(t0), 3000);
        assert_eq!(l.remaining_ms(t0 + Duration::from_millis(1000)), 2000);
        assert!(!l.expired(t0 + Duration::from_millis(2999)));
        assert!(l.expired(t0 + Duration::from_millis(3000)));
        assert_eq!(l.remaining_ms(t0 + Duration::from_secs(10)), 0);
        // A renewal extends from the renewal instant.
        l.renew(t0 + Duration::from_millis(2500), 3000);
        assert!(!l.expired(t0 + Duration::from_millis(5000)));
        assert_eq!(l.length_ms(), 3000);
        // Lease 0 disables.
        l.renew(t0, 0);
        assert_eq!(l.deadline(), None);
        assert!(!l.expired(t0 + Duration::from_secs(100)));
        // Huge leases do not overflow the remaining time.
        l.renew(t0, u64::MAX / 4);
        assert!(l.remaining_ms(t0) > 0);
    }
}
