//! Flap detection (docs/mmm-behaviour.md §3A): a host that keeps falling out of ONLINE is parked in
//! AWAITING_RECOVERY instead of being brought back automatically, because every automatic
//! return would move roles (and maybe the writer) back onto an unstable host.

use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-host flap bookkeeping. The window is anchored at its first downtime (not sliding).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flap {
    /// Set when more than `flap_count` downtimes happened within one window; only `set_online`
    /// clears it.
    pub flapping: bool,
    /// Start of the current window, `None` when no window is open.
    pub start: Option<Millis>,
    /// Downtimes counted in the current window.
    pub count: u32,
}

impl Flap {
    /// Records one transition out of ONLINE (to anything but ADMIN_OFFLINE). Returns true when
    /// this downtime marks the host as flapping (the caller logs "Host H is flapping!").
    pub fn left_online(&mut self, now: Millis, duration: Duration, limit: u32) -> bool {
        if limit == 0 {
            return false;
        }
        let window_open = self.start.is_some_and(|start| now <= start.plus(duration));
        if !window_open {
            self.start = Some(now);
            self.count = 1;
            return false;
        }
        self.count += 1;
        if self.count > limit {
            self.flapping = true;
            self.start = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn fourth_downtime_within_the_window_marks_flapping() {
        let mut f = Flap::default();
        for (i, t) in [0u64, 100, 200].iter().enumerate() {
            assert!(!f.left_online(Millis(t * 1000), HOUR, 3), "downtime {i}");
        }
        assert!(f.left_online(Millis(300_000), HOUR, 3));
        assert!(f.flapping);
        assert_eq!(f.start, None);
    }

    #[test]
    fn window_is_anchored_at_its_first_downtime() {
        let mut f = Flap::default();
        f.left_online(Millis(0), HOUR, 3);
        f.left_online(Millis(1_000_000), HOUR, 3);
        f.left_online(Millis(2_000_000), HOUR, 3);
        // 3600 s after the first downtime a new window starts, even though the last was recent.
        assert!(!f.left_online(Millis(3_600_001), HOUR, 3));
        assert_eq!(f.count, 1);
        assert!(!f.flapping);
    }

    #[test]
    fn flap_count_zero_disables_detection() {
        let mut f = Flap::default();
        for t in 0..10 {
            assert!(!f.left_online(Millis(t), HOUR, 0));
        }
        assert!(!f.flapping);
    }
}
