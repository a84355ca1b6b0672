//! At most one mutating request (ApplyState, ClearBadRoles) in flight per caller IP.
//!
//! The monitor never overlaps its own calls to one agent (one in flight per host), so a second
//! concurrent call from the same address is a misbehaving or hostile client: it gets
//! ResourceExhausted instead of queuing without bound behind the first. A short grace
//! ([`GRACE`]) absorbs the one legitimate overlap: the monitor gave up on a call (its deadline
//! passed) and sent the next one before this side noticed the cancellation.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// How long a second call from the same caller waits for the first before it is refused.
pub const GRACE: Duration = Duration::from_millis(100);

/// Callers with a mutating request in flight.
#[derive(Default)]
pub struct CallerGate {
    busy: Mutex<HashSet<IpAddr>>,
    freed: Notify,
}

/// Held while a caller's request runs; frees the caller when dropped (also when the request
/// is cancelled).
pub struct Permit<'a> {
    gate: &'a CallerGate,
    ip: IpAddr,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.gate.set().remove(&self.ip);
        self.gate.freed.notify_waiters();
    }
}

impl CallerGate {
    pub fn new() -> Self {
        Self::default()
    }

    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<IpAddr>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `ip`'s slot, waiting at most `grace` for a request of the same caller to end.
    /// The error is the message for the caller.
    pub async fn enter(&self, ip: IpAddr, grace: Duration) -> Result<Permit<'_>, String> {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check: a release between the check and the wait is seen.
            freed.as_mut().enable();
            if self.set().insert(ip) {
                return Ok(Permit { gate: self, ip });
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(format!(
                    "another request from {ip} is in progress; this agent serves one state change per caller at a time"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[tokio::test]
    async fn one_request_per_caller() {
        let g = CallerGate::new();
        let p = g.enter(A, Duration::ZERO).await.expect("first call");
        let e = match g.enter(A, Duration::from_millis(20)).await {
            Ok(_) => panic!("a second call from the same caller must be refused"),
            Err(e) => e,
        };
        assert!(
            e.contains("another request from 10.0.0.1 is in progress"),
            "{e}"
        );
        // Another caller is not affected.
        let q = g.enter(B, Duration::ZERO).await.expect("other caller");
        drop(p);
        let _again = g.enter(A, Duration::ZERO).await.expect("freed on drop");
        drop(q);
    }

    #[tokio::test]
    async fn waits_within_the_grace_for_the_first_to_end() {
        let g = std::sync::Arc::new(CallerGate::new());
        let p = g.enter(A, Duration::ZERO).await.expect("first call");
        let g2 = std::sync::Arc::clone(&g);
        let second = tokio::spawn(async move { g2.enter(A, Duration::from_secs(5)).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(p);
        assert!(second.await.expect("join"), "released within the grace");
    }
}
