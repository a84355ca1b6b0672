//! Chaos (issue 15): random, overlapping fault schedules on the real lab, with the invariants
//! checked all the time.
//!
//! - `schedule`: a seed's schedule of 2–6 faults (pure, replayable).
//! - `faults`: carrying faults out and healing them as an operator would.
//! - `semisync`: when writes were acknowledged without a semi-sync replica (not covered by I2).
//! - `run`: one schedule on a fresh cluster with the checker (I1–I4) and its outcome.

mod faults;
pub mod run;
pub mod schedule;
mod semisync;

pub use run::{
    options, run, run_seed, run_seed_with, Outcome, Sabotage, Violation, CONVERGE_BOUND,
};
pub use schedule::{generate, Fault, Schedule, Timed};
