//! ha-monitor: the I/O shell around the pure decision core (`ha-core`).
//!
//! Module map (one concept each):
//! - [`daemon`]: start-up and the main loop (`MainLoop`: collects inputs, steps the core,
//!   executes its actions, publishes the snapshot).
//! - [`driver`]: the agent driver (`AgentDriver`): sends each host its desired state, owns
//!   the agent links, turns finished calls into core inputs.
//! - [`checks`]: the four host checks, one task per host and check: `schedule` (the task
//!   loop, periods, parallel attempts), `probe` (connecting and running a check against a
//!   server), `judge` (raw results into outcomes and mysql-mmm's texts).
//! - [`netcheck`]: the `ping_ips` self-check.
//! - [`agents`]: gRPC links to the agents, every call with a deadline.
//! - [`control`]: the `Monitor` gRPC service for ha-control.
//! - [`status_file`]: atomic persistence of what survives a restart.
//! - [`coord`]: redundant monitors through etcd: election, state in etcd, leadership.
//! - [`kill`]: the `kill_host_bin` fencing hook.
//! - [`tls`]: mutual TLS on the control port and towards the agents; operator authorization.
//! - [`bridge`]: conversions between proto/config/check results and the core's types.
//! - [`clock`], [`spec`]: the daemon's clock and the config → core spec conversion.
//! - [`preflight`]: `--preflight`, one-shot checks of the cluster's setup (docs/preflight.md).
//! - [`observe`]: the decision history, event hooks and Prometheus metrics; [`snapshot`]: what
//!   the main loop publishes for the control service and the metrics.

pub mod agents;
pub mod bridge;
pub mod checks;
pub mod clock;
pub mod control;
pub mod coord;
pub mod daemon;
pub mod driver;
pub mod kill;
pub mod netcheck;
pub mod observe;
pub mod persist;
pub mod preflight;
pub mod shutdown;
pub mod snapshot;
pub mod spec;
pub mod status_file;
pub mod tls;

pub use daemon::run;
