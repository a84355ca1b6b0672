//! Accounts the lab creates on every host, with their exact grants.
//!
//! These are the only accounts besides `root@localhost` (unix socket, lab admin only); the
//! installer's anonymous users and networked root accounts are dropped. The grant lists are
//! the minimum verified against MariaDB 10.11 (see tests/lab/README.md and the `grants` test).

/// Replication account replicas use in `CHANGE MASTER TO`.
pub const REPL_USER: &str = "ha_repl";
/// Password of [`REPL_USER`].
pub const REPL_PASSWORD: &str = "lab-repl-pw";
/// Grants of [`REPL_USER`].
pub const REPL_GRANTS: &str = "REPLICATION SLAVE";

/// Account ha-agent uses on its local server.
pub const AGENT_USER: &str = "ha_agent";
/// Password of [`AGENT_USER`].
pub const AGENT_PASSWORD: &str = "lab-agent-pw";
/// Grants of [`AGENT_USER`]: `SET GLOBAL read_only` (READ_ONLY ADMIN), `KILL` of application
/// connections (CONNECTION ADMIN) which it must first see in the process list (PROCESS),
/// `STOP/START SLAVE` and `CHANGE MASTER` (REPLICATION SLAVE ADMIN), `SHOW SLAVE STATUS`
/// (SLAVE MONITOR), `SHOW MASTER STATUS` / `SHOW BINARY LOGS` (BINLOG MONITOR), `RESET SLAVE
/// 'ha_catchup' ALL` after a promotion's catch-up from a replica ahead of it (RELOAD).
pub const AGENT_GRANTS: &str = "READ_ONLY ADMIN, CONNECTION ADMIN, PROCESS, \
REPLICATION SLAVE ADMIN, SLAVE MONITOR, BINLOG MONITOR, RELOAD";

/// Account ha-monitor uses for its checks over the network.
pub const MONITOR_USER: &str = "ha_monitor";
/// Password of [`MONITOR_USER`].
pub const MONITOR_PASSWORD: &str = "lab-monitor-pw";
/// Grants of [`MONITOR_USER`]: ha-monitor runs `SELECT 1` (needs nothing) and
/// `SHOW SLAVE STATUS` (SLAVE MONITOR) — nothing else.
pub const MONITOR_GRANTS: &str = "SLAVE MONITOR";

/// Application account (the write probe and tests' clients).
pub const APP_USER: &str = "app";
/// Password of [`APP_USER`].
pub const APP_PASSWORD: &str = "lab-app-pw";
/// Grants of [`APP_USER`], on `hatest.*` only.
pub const APP_GRANTS: &str = "SELECT, INSERT, UPDATE, DELETE";

/// The test schema.
pub const APP_SCHEMA: &str = "hatest";
