//! The writer lease (product.md F9): an agent holding the writer role demotes itself when the
//! monitor stops renewing the role, so an isolated old master cannot stay writable next to a new
//! one. The deadline is taken on the agent's monotonic clock at *receipt* of each ApplyState, so
//! wall-clock jumps (NTP, a frozen VM resuming) can only shorten the writable window as seen by
//! the monitor, never extend it — after the length was reduced by the request's time in transit
//! ([`left_on_arrival`]): a request delivered late must not start a fresh lease.

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

/// The writer lease left when an ApplyState sent at `sent_unix_ms` arrives at `now_unix_ms`
/// (wall clock, ms): the lease counts from the send, so a request delivered late (retransmitted
/// after a link outage, read by an agent resuming from a freeze) grants only what is left of it.
/// `None`: it expired in transit — the writer role must not be taken. `lease_ms == 0` (no lease)
/// and an unknown send time (`0`) are returned unchanged; a send time in the future (clock skew)
/// counts as no delay.
pub fn left_on_arrival(lease_ms: u64, sent_unix_ms: u64, now_unix_ms: u64) -> Option<u64> {
    if lease_ms == 0 || sent_unix_ms == 0 {
        return Some(lease_ms);
    }
    let late = now_unix_ms.saturating_sub(sent_unix_ms);
    (late < lease_ms).then(|| lease_ms - late)
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_late_request_grants_only_what_is_left() {
        use super::left_on_arrival;
        // On time: the whole lease (minus the transit).
        assert_eq!(left_on_arrival(3000, 10_000, 10_002), Some(2998));
        // Delivered 5 s late (retransmitted after the link came back): expired in transit.
        assert_eq!(left_on_arrival(3000, 10_000, 15_000), None);
        assert_eq!(left_on_arrival(3000, 10_000, 13_000), None);
        // No lease, unknown send time, agent clock behind the monitor's: unchanged.
        assert_eq!(left_on_arrival(0, 10_000, 99_000), Some(0));
        assert_eq!(left_on_arrival(3000, 0, 99_000), Some(3000));
        assert_eq!(left_on_arrival(3000, 10_000, 9_000), Some(3000));
    }

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
