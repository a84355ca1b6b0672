//! ha's wire contract: the `Agent` service (monitor → agent) and the `Monitor` service
//! (ha-control → monitor), generated from `proto/ha.proto` (package `ha.v1`).
//!
//! Besides re-exporting the generated code this crate holds the few conversions every
//! component needs (role strings `name(ip)`, state names as mysql-mmm prints them), so the
//! texts are written in exactly one place.

#![allow(clippy::derive_partial_eq_without_eq)]

/// Generated code for package `ha.v1`.
pub mod v1 {
    tonic::include_proto!("ha.v1");
}

pub use v1::*;

pub mod runtime;

/// Default port of the monitor's control service (as in mysql-mmm).
pub const DEFAULT_MONITOR_PORT: u16 = 9988;
/// Default port of the agent service (as in mysql-mmm).
pub const DEFAULT_AGENT_PORT: u16 = 9989;

/// Metadata key of an agent's stale-epoch refusal (FAILED_PRECONDITION): the epoch the agent
/// holds, in decimal, so the monitor can continue above it.
pub const HELD_EPOCH_METADATA: &str = "ha-held-epoch";

impl HostState {
    /// The name mysql-mmm prints (`ONLINE`, `HARD_OFFLINE`, …).
    pub fn mmm_name(self) -> &'static str {
        match self {
            HostState::Unspecified | HostState::Unknown => "UNKNOWN",
            HostState::Online => "ONLINE",
            HostState::AdminOffline => "ADMIN_OFFLINE",
            HostState::HardOffline => "HARD_OFFLINE",
            HostState::AwaitingRecovery => "AWAITING_RECOVERY",
            HostState::ReplicationDelay => "REPLICATION_DELAY",
            HostState::ReplicationFail => "REPLICATION_FAIL",
        }
    }

    /// Parses a name as printed by [`HostState::mmm_name`].
    pub fn from_mmm_name(s: &str) -> Option<Self> {
        Some(match s {
            "ONLINE" => HostState::Online,
            "ADMIN_OFFLINE" => HostState::AdminOffline,
            "HARD_OFFLINE" => HostState::HardOffline,
            "AWAITING_RECOVERY" => HostState::AwaitingRecovery,
            "REPLICATION_DELAY" => HostState::ReplicationDelay,
            "REPLICATION_FAIL" => HostState::ReplicationFail,
            "UNKNOWN" => HostState::Unknown,
            _ => return None,
        })
    }
}

impl From<ha_core::Check> for CheckName {
    fn from(c: ha_core::Check) -> CheckName {
        match c {
            ha_core::Check::Ping => CheckName::Ping,
            ha_core::Check::Mysql => CheckName::Mysql,
            ha_core::Check::RepThreads => CheckName::RepThreads,
            ha_core::Check::RepBacklog => CheckName::RepBacklog,
        }
    }
}

impl CheckName {
    /// The checks in mysql-mmm's display order (the order of [`ha_core::Check::ALL`]).
    pub const ALL: [CheckName; 4] = [
        CheckName::Ping,
        CheckName::Mysql,
        CheckName::RepThreads,
        CheckName::RepBacklog,
    ];

    /// The check this names (`None` for `Unspecified`).
    pub fn check(self) -> Option<ha_core::Check> {
        ha_core::Check::ALL
            .into_iter()
            .find(|&c| CheckName::from(c) == self)
    }

    /// The name used in configs and by `checks` (`ping`, `mysql`, `rep_threads`,
    /// `rep_backlog`; spelled once, by [`ha_core::Check::name`]).
    pub fn mmm_name(self) -> &'static str {
        self.check().map_or("unknown", ha_core::Check::name)
    }

    pub fn from_mmm_name(s: &str) -> Option<Self> {
        ha_core::Check::parse(s).map(CheckName::from)
    }
}

impl Mode {
    /// `ACTIVE`, `MANUAL`, `WAIT` or `PASSIVE`.
    pub fn mmm_name(self) -> &'static str {
        match self {
            Mode::Unspecified => "UNKNOWN",
            Mode::Active => "ACTIVE",
            Mode::Manual => "MANUAL",
            Mode::Wait => "WAIT",
            Mode::Passive => "PASSIVE",
        }
    }
}

impl Role {
    pub fn new(name: impl Into<String>, ip: impl Into<String>) -> Self {
        Role {
            name: name.into(),
            ip: ip.into(),
        }
    }

    /// Parses mysql-mmm's role string `name(ip)`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let open = s.find('(')?;
        let inner = s[open + 1..].strip_suffix(')')?;
        let name = &s[..open];
        if name.is_empty() || inner.is_empty() || inner.contains(['(', ')']) {
            return None;
        }
        Some(Role::new(name, inner))
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name, self.ip)
    }
}

/// Sorts roles the way mysql-mmm does (by name, then by IP string) and joins them with `, `.
pub fn format_roles(roles: &[Role]) -> String {
    let mut sorted: Vec<&Role> = roles.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.ip).cmp(&(&b.name, &b.ip)));
    sorted
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_string_round_trips() {
        let r = Role::new("writer", "10.0.0.1");
        assert_eq!(r.to_string(), "writer(10.0.0.1)");
        assert_eq!(Role::parse("writer(10.0.0.1)"), Some(r));
        assert_eq!(Role::parse("writer"), None);
        assert_eq!(Role::parse("(1.2.3.4)"), None);
        assert_eq!(Role::parse("w()"), None);
    }

    #[test]
    fn roles_format_sorted() {
        let roles = vec![
            Role::new("writer", "10.0.0.160"),
            Role::new("reader", "10.0.0.163"),
            Role::new("reader", "10.0.0.161"),
        ];
        assert_eq!(
            format_roles(&roles),
            "reader(10.0.0.161), reader(10.0.0.163), writer(10.0.0.160)"
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in [
            HostState::Online,
            HostState::AdminOffline,
            HostState::HardOffline,
            HostState::AwaitingRecovery,
            HostState::ReplicationDelay,
            HostState::ReplicationFail,
        ] {
            assert_eq!(HostState::from_mmm_name(s.mmm_name()), Some(s));
        }
        for c in CheckName::ALL {
            assert_eq!(CheckName::from_mmm_name(c.mmm_name()), Some(c));
        }
    }
}
