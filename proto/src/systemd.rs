//! systemd integration for the daemons (`Type=notify`, `WatchdogSec=`), through `sd_notify(3)`
//! messages. Everything here does nothing when the daemon is not run by systemd
//! (`NOTIFY_SOCKET` / `WATCHDOG_USEC` unset), so tests and hand-started daemons are unaffected.
//!
//! * [`ready`]: READY=1 once the configuration is loaded and the ports are bound, so
//!   `systemctl start` returns only when the daemon can be reached.
//! * [`Watchdog`]: WATCHDOG=1 from the loop whose liveness matters (the monitor's main loop,
//!   the agent's lease guard). If that loop hangs, systemd stops hearing from it and restarts
//!   the daemon (`WatchdogSec=`, then `Restart=`).
//! * [`stopping`]: STOPPING=1 when a shutdown begins.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Tells systemd the daemon is ready, with a one-line status for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A new one-line status for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Still starting, and alive: asks systemd to wait `by` longer before it gives up on the start
/// (`TimeoutStartSec=`). For start-up waits that are legitimate but unbounded, such as the
/// monitor waiting for its network.
pub fn extend_start(by: Duration) {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    send(&[NotifyState::ExtendTimeoutUsec(usec)]);
}

/// Tells systemd the daemon is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(state: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("cannot notify systemd ({e}); is NotifyAccess= set for this unit?");
    }
}

/// Keeps systemd's watchdog fed from one loop: call [`Watchdog::pet`] on every iteration; it
/// sends WATCHDOG=1 at most every half of `WatchdogSec` (systemd's advice).
pub struct Watchdog {
    every: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// The watchdog systemd asked for, if any (read from `WATCHDOG_USEC`/`WATCHDOG_PID`).
    pub fn from_env() -> Watchdog {
        Watchdog::every(sd_notify::watchdog_enabled().map(|t| t / 2))
    }

    /// A watchdog fed every `every` (`None`: disabled).
    pub fn every(every: Option<Duration>) -> Watchdog {
        Watchdog { every, last: None }
    }

    /// How often [`Watchdog::pet`] must at least be called; `None` when no watchdog runs.
    pub fn interval(&self) -> Option<Duration> {
        self.every
    }

    /// Sends WATCHDOG=1 when it is due. Returns true when it sent one.
    pub fn pet(&mut self) -> bool {
        self.pet_at(Instant::now())
    }

    fn pet_at(&mut self, now: Instant) -> bool {
        let Some(every) = self.every else {
            return false;
        };
        if self.last.is_some_and(|l| now.duration_since(l) < every) {
            return false;
        }
        self.last = Some(now);
        send(&[NotifyState::Watchdog]);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pets_at_most_once_per_interval_and_never_when_disabled() {
        let t0 = Instant::now();
        let mut w = Watchdog::every(Some(Duration::from_secs(5)));
        assert!(w.pet_at(t0));
        assert!(!w.pet_at(t0 + Duration::from_secs(4)));
        assert!(w.pet_at(t0 + Duration::from_secs(5)));
        assert!(!w.pet_at(t0 + Duration::from_secs(6)));
        let mut off = Watchdog::every(None);
        assert!(!off.pet_at(t0));
        assert_eq!(off.interval(), None);
    }
}
