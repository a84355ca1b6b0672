//! The lease clock: `CLOCK_BOOTTIME` (monotonic, and it keeps counting while the system is
//! suspended, so a suspended writer resumes with its lease already over), tagged with the
//! kernel's boot id (a reading means nothing after a reboot).

use std::time::Duration;

/// `CLOCK_BOOTTIME` in milliseconds.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        // CLOCK_BOOTTIME exists on every Linux since 2.6.39; fall back to the monotonic clock's
        // elapsed time rather than panic (the daemon never reads a wall clock for the lease).
        return fallback_ms();
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

fn fallback_ms() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The kernel's boot id (`/proc/sys/kernel/random/boot_id`). An unreadable one becomes a value
/// no token can carry, so no lease is ever granted rather than a wrong one.
pub fn boot_id() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
        Ok(_) | Err(_) => {
            tracing::error!(
                "cannot read /proc/sys/kernel/random/boot_id: no writer lease can be granted on this host"
            );
            format!("unreadable-boot-id-{}", std::process::id())
        }
    }
}

/// How long to sleep towards `deadline_ms`: never more than `cap`, because tokio's timers run
/// on `CLOCK_MONOTONIC`, which stops while the system is suspended; re-reading the lease clock
/// at least this often bounds how late a fence after a suspend can start.
pub fn sleep_towards(deadline_ms: u64, now_ms: u64, cap: Duration) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_moves_forward_and_boot_id_is_stable() {
        let a = now_ms();
        std::thread::sleep(Duration::from_millis(20));
        let b = now_ms();
        assert!(b >= a + 19, "{a} -> {b}");
        assert_eq!(boot_id(), boot_id());
        assert!(!boot_id().is_empty());
    }

    #[test]
    fn sleeps_are_capped() {
        let cap = Duration::from_millis(100);
        assert_eq!(sleep_towards(1_000, 0, cap), cap);
        assert_eq!(sleep_towards(1_050, 1_000, cap), Duration::from_millis(50));
        assert_eq!(sleep_towards(1_000, 2_000, cap), Duration::ZERO);
    }
}
