//! Trap logic per (host, check) (docs/mmm-behaviour.md §3.4) and the recorded check status (§3.5).
//!
//! A single failed sample must not move a host: a failure only counts once it has persisted for
//! `trap_period`. ha keeps mmm's rules (pending failure, reported failure, unknown restarts the
//! timer) and fixes F11:
//! * there is no separate "initial check" that counts UNKNOWN as failure: the very first samples
//!   go through the same trap logic, and a check that never produced OK/ERROR stays *unknown*
//!   (`recorded == None`), which the state machine treats as "no evidence";
//! * an OK sample always records "ok" when the recorded status is not ok, so a check can never
//!   stay stuck "failed" after it recovered within the trap period.

use crate::time::Millis;
use crate::CheckOutcome;
use std::time::Duration;

/// Where the per-check trap automaton is (mmm's checker thread state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Initial,
    Ok,
    Unknown,
    PendingFailure { since: Millis },
    ReportedFailure,
}

/// What the trap logic decided for one sample (the caller logs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TrapEvent {
    /// Nothing worth logging.
    Quiet,
    /// The recorded status became ok after having been failed ("Check … is ok!").
    Recovered,
    /// The failure persisted for the trap period and is now recorded ("has failed for N seconds").
    Failed { for_secs: u64 },
    /// The check entered the unknown state (timer restarted).
    Unknown,
}

/// One check of one host: trap automaton plus the recorded status the state machine reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CheckTrack {
    phase: Phase,
    /// `Some(true)` ok, `Some(false)` failed, `None` never established (F11).
    pub recorded: Option<bool>,
    /// When `recorded` last changed (also when it was first established).
    pub last_change: Option<Millis>,
    /// Message of the last recorded result (what `checks` shows).
    pub message: String,
}

impl CheckTrack {
    pub fn new() -> CheckTrack {
        CheckTrack {
            phase: Phase::Initial,
            recorded: None,
            last_change: None,
            message: String::new(),
        }
    }

    /// Recorded status is ok.
    pub fn ok(&self) -> bool {
        self.recorded == Some(true)
    }

    /// Recorded status is failed (unknown is neither ok nor failed).
    pub fn failed(&self) -> bool {
        self.recorded == Some(false)
    }

    /// Applies one raw sample taken at `now`.
    pub fn observe(
        &mut self,
        outcome: CheckOutcome,
        message: &str,
        now: Millis,
        trap: Duration,
    ) -> TrapEvent {
        match outcome {
            CheckOutcome::Ok => {
                self.phase = Phase::Ok;
                if self.recorded == Some(true) {
                    // pending-failure → ok is silent: the failure was never reported.
                    return TrapEvent::Quiet;
                }
                let was_failed = self.recorded == Some(false);
                self.record(true, message, now);
                if was_failed {
                    TrapEvent::Recovered
                } else {
                    TrapEvent::Quiet
                }
            }
            CheckOutcome::Unknown => {
                if self.recorded.is_none() {
                    // Nothing else to show yet; keep the operator informed.
                    self.message = message.to_string();
                }
                if self.phase == Phase::Unknown {
                    return TrapEvent::Quiet;
                }
                self.phase = Phase::Unknown;
                TrapEvent::Unknown
            }
            CheckOutcome::Error => {
                let since = match self.phase {
                    Phase::ReportedFailure => return TrapEvent::Quiet,
                    Phase::PendingFailure { since } => since,
                    Phase::Initial | Phase::Ok | Phase::Unknown => now,
                };
                self.phase = Phase::PendingFailure { since };
                if !now.reached(since, trap) {
                    if self.recorded.is_none() {
                        self.message = message.to_string();
                    }
                    return TrapEvent::Quiet;
                }
                self.phase = Phase::ReportedFailure;
                self.record(false, message, now);
                TrapEvent::Failed {
                    for_secs: now.since(since).as_secs(),
                }
            }
        }
    }

    fn record(&mut self, ok: bool, message: &str, now: Millis) {
        self.message = message.to_string();
        if self.recorded != Some(ok) {
            self.recorded = Some(ok);
            self.last_change = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckOutcome::{Error as E, Ok as O, Unknown as U};

    const TRAP: Duration = Duration::from_secs(10);

    fn run(track: &mut CheckTrack, samples: &[(CheckOutcome, u64)]) -> Vec<TrapEvent> {
        samples
            .iter()
            .map(|&(o, t)| track.observe(o, "msg", Millis(t * 1000), TRAP))
            .collect()
    }

    #[test]
    fn failure_is_reported_at_first_error_sample_after_trap_period() {
        let mut t = CheckTrack::new();
        let ev = run(&mut t, &[(O, 0), (E, 5), (E, 10), (E, 15)]);
        assert_eq!(ev[2], TrapEvent::Quiet);
        assert_eq!(ev[3], TrapEvent::Failed { for_secs: 10 });
        assert!(t.failed());
        assert_eq!(t.last_change, Some(Millis(15_000)));
    }

    #[test]
    fn ok_during_pending_failure_cancels_silently() {
        let mut t = CheckTrack::new();
        let ev = run(&mut t, &[(O, 0), (E, 5), (O, 10), (E, 12), (E, 21)]);
        assert_eq!(ev, vec![TrapEvent::Quiet; 5]);
        assert!(t.ok());
        assert_eq!(t.last_change, Some(Millis(0)));
    }

    #[test]
    fn unknown_restarts_the_timer_and_keeps_recorded_status() {
        let mut t = CheckTrack::new();
        let ev = run(&mut t, &[(O, 0), (E, 1), (U, 9), (E, 10), (E, 19), (E, 20)]);
        assert_eq!(ev[2], TrapEvent::Unknown);
        assert_eq!(ev[4], TrapEvent::Quiet);
        assert_eq!(ev[5], TrapEvent::Failed { for_secs: 10 });
    }

    #[test]
    fn zero_trap_period_reports_immediately() {
        let mut t = CheckTrack::new();
        assert_eq!(
            t.observe(E, "x", Millis(7), Duration::ZERO),
            TrapEvent::Failed { for_secs: 0 }
        );
    }

    #[test]
    fn f11_unknown_at_start_is_not_a_failure() {
        let mut t = CheckTrack::new();
        run(&mut t, &[(U, 0), (U, 5), (U, 100)]);
        assert_eq!(t.recorded, None);
        assert!(!t.failed());
        run(&mut t, &[(O, 101)]);
        assert!(t.ok());
    }

    #[test]
    fn f11_no_stuck_failure_after_recovery_within_trap_period() {
        // mmm: failed, unknown, error (pending), ok → the OK was swallowed and the check stayed failed.
        let mut t = CheckTrack::new();
        let ev = run(&mut t, &[(E, 0), (E, 10), (U, 11), (E, 12), (O, 13)]);
        assert_eq!(ev[1], TrapEvent::Failed { for_secs: 10 });
        assert_eq!(ev[4], TrapEvent::Recovered);
        assert!(t.ok());
    }

    #[test]
    fn reported_failure_then_ok_is_logged_as_recovered() {
        let mut t = CheckTrack::new();
        let ev = run(&mut t, &[(E, 0), (E, 10), (E, 20), (O, 25)]);
        assert_eq!(ev[2], TrapEvent::Quiet);
        assert_eq!(ev[3], TrapEvent::Recovered);
        assert_eq!(t.last_change, Some(Millis(25_000)));
    }
}
