//! ha-agent: runs on every MySQL/MariaDB host and is the only component of ha that changes a
//! host. The monitor sends the *whole* desired state of the host (`ApplyState`); the agent
//! compares it with what the host actually looks like and takes only the steps that are missing,
//! in a safe order, with a deadline on every MySQL statement and every `ip` command.
//!
//! Module map:
//!
//! * [`service`] – the gRPC `Agent` service: request validation, host-name and epoch checks,
//!   waiting (bounded) for the converger, building the replies.
//! * [`converge`] – the converger: one task that serialises every change; [`plan`] turns
//!   (desired, held, actual) into ordered steps, the executor runs them and records outcomes.
//! * [`plan`] – the pure planning function and the step type (unit tested).
//! * [`desired`] – a validated `ApplyStateRequest`.
//! * [`allow`] – what `agent.yaml` allows whatever a request says: role IPs within `role_ips`,
//!   replication sources within `cluster_hosts`, request size caps, escaping of request strings.
//! * [`remove`] – the only path that removes an address (checked against `agent.yaml`).
//! * [`gate`] – one state-changing request in flight per caller.
//! * [`mysql`] – every SQL statement the agent issues, each wrapped in a deadline, with one
//!   reused connection per user (converger / status reader) and reconnect on error.
//! * [`sqltext`] – pure helpers: literal escaping, `SHOW SLAVE STATUS` parsing, PROCESSLIST
//!   filtering for the connection kill, GTID position comparison.
//! * [`gtid`] – errant transactions: GTIDs this host has that the master it is about to follow
//!   lacks (pure, unit tested); the agent refuses to replicate into such a divergence.
//! * [`ip`] – role IPs via the `ip` command (why not netlink: see the module docs).
//! * [`arp`] – gratuitous ARP with pnet.
//! * [`lease`] – the writer lease: its state ([`lease::Lease`]), the lease clock
//!   (`CLOCK_BOOTTIME` + boot id), the state file that keeps epoch and lease across restarts,
//!   and the guard that fences the host when the lease runs out (on its own thread and runtime).
//! * [`vouch`] – peer promises, the writer's side: asking every other writer candidate to
//!   promise not to take the role, and extending the lease when all did.
//! * [`uptime`] – host uptime (`/proc/uptime`, or `HA_AGENT_UPTIME_FILE` in the lab).
//! * [`status`] – operation records and the per-kind last errors.

pub mod allow;
pub mod arp;
pub mod converge;
pub mod db_error;
pub mod desired;
pub mod gate;
pub mod gtid;
pub mod ip;
pub mod lease;
pub mod master_ssl;
pub mod mysql;
pub mod plan;
pub mod remove;
pub mod semi_sync;
pub mod service;
pub mod sqltext;
pub mod status;
pub mod uptime;
pub mod vouch;

/// Version reported by `--version`, Ping and the status replies.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use service::{run, AgentService};
