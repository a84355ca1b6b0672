//! Time as the core sees it: instants supplied by the caller, never read from a clock.
//!
//! Keeping the clock outside makes every decision reproducible: the same inputs at the same
//! instants give the same actions, which is what the property tests and the simulation rely on.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A monotonic instant in milliseconds, supplied by the caller (the daemon passes milliseconds
/// since the UNIX epoch from a monotonic-adjusted source, so it is also usable for display).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + d`, saturating (a huge configured period must not wrap around into the past).
    pub fn plus(self, d: Duration) -> Millis {
        Millis(self.0.saturating_add(ms(d)))
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is in the future.
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Whether at least `d` has passed since `earlier`.
    pub fn reached(self, earlier: Millis, d: Duration) -> bool {
        self.0.saturating_sub(earlier.0) >= ms(d)
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(
            Millis(u64::MAX - 1).plus(Duration::from_secs(5)),
            Millis(u64::MAX)
        );
        assert_eq!(Millis(5).since(Millis(10)), Duration::ZERO);
        assert!(Millis(10_000).reached(Millis(0), Duration::from_secs(10)));
        assert!(!Millis(9_999).reached(Millis(0), Duration::from_secs(10)));
    }
}
