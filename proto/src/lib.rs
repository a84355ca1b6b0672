//! ha's wire contract: the `Agent` service (monitor → agent) and the `Monitor` service
//! (ha-control → monitor), generated from `proto/ha.proto` (package `ha.v1`).
//!
//! Besides re-exporting the generated code this crate holds the conversions between the wire
//! enums and the decision core's types (`names`): every text mysql-mmm prints (state, mode,
//! check names, role strings `name(ip)`) is spelled once, in `ha_core`, and the wire types
//! borrow it.

#![allow(clippy::derive_partial_eq_without_eq)]

/// Generated code for package `ha.v1`.
pub mod v1 {
    tonic::include_proto!("ha.v1");
}

pub use v1::*;

pub mod runtime;
pub mod systemd;

/// Default port of the monitor's control service (as in mysql-mmm).
pub const DEFAULT_MONITOR_PORT: u16 = 9988;

/// gRPC metadata key of a standby monitor's refusal (redundant monitors): the leader's control
/// address, `IP:PORT`, which ha-control follows.
pub const LEADER_METADATA: &str = "ha-leader";
/// Default port of the agent service (as in mysql-mmm).
pub const DEFAULT_AGENT_PORT: u16 = 9989;

/// Metadata key of an agent's stale-epoch refusal (FAILED_PRECONDITION): the epoch the agent
/// holds, in decimal, so the monitor can continue above it.
pub const HELD_EPOCH_METADATA: &str = "ha-held-epoch";

mod names;

pub use names::format_roles;
