//! Pure decision core of ha-monitor (placeholder docs, final API documented below).

mod commands;
mod core;
mod failover;
pub mod flap;
mod io;
mod machine;
pub mod roles;
mod spec;
mod startup;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_commands;
#[cfg(test)]
mod tests_failover;
#[cfg(test)]
mod tests_machine;
#[cfg(test)]
mod tests_startup;
mod time;
mod traps;
mod views;

pub use crate::core::Core;
pub use failover::PROMOTION_RETRY;
pub use io::*;
pub use machine::{PEER_GRACE, SHORT_OUTAGE_SECS};
pub use spec::*;
pub use time::Millis;
pub use views::{CheckView, HostView};
