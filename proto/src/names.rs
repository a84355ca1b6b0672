//! The wire enums ↔ the decision core's types. Every name mysql-mmm prints (`ONLINE`,
//! `ACTIVE`, `rep_threads`, `writer(10.0.0.1)`) is spelled once, by `ha_core`; the wire types
//! convert and borrow those spellings. The wire's `Unspecified` (a field an old or foreign peer
//! left unset) reads as the core's `Unknown` where the core has one.

use ha_core::{Check, RoleInstance};

use crate::{CheckName, HostState, Mode, Role};

impl From<ha_core::HostState> for HostState {
    fn from(s: ha_core::HostState) -> HostState {
        use ha_core::HostState as C;
        match s {
            C::Online => HostState::Online,
            C::AdminOffline => HostState::AdminOffline,
            C::HardOffline => HostState::HardOffline,
            C::AwaitingRecovery => HostState::AwaitingRecovery,
            C::ReplicationDelay => HostState::ReplicationDelay,
            C::ReplicationFail => HostState::ReplicationFail,
            C::Unknown => HostState::Unknown,
        }
    }
}

impl From<HostState> for ha_core::HostState {
    fn from(s: HostState) -> ha_core::HostState {
        ha_core::HostState::ALL
            .into_iter()
            .find(|&c| HostState::from(c) == s)
            .unwrap_or(ha_core::HostState::Unknown)
    }
}

impl HostState {
    /// The name mysql-mmm prints (`ONLINE`, `HARD_OFFLINE`, …).
    pub fn mmm_name(self) -> &'static str {
        ha_core::HostState::from(self).name()
    }

    /// Parses a name as printed by [`HostState::mmm_name`].
    pub fn from_mmm_name(s: &str) -> Option<Self> {
        ha_core::HostState::parse(s).map(HostState::from)
    }
}

impl From<ha_core::Mode> for Mode {
    fn from(m: ha_core::Mode) -> Mode {
        match m {
            ha_core::Mode::Active => Mode::Active,
            ha_core::Mode::Manual => Mode::Manual,
            ha_core::Mode::Wait => Mode::Wait,
            ha_core::Mode::Passive => Mode::Passive,
        }
    }
}

impl Mode {
    /// The core's mode (`None` for `Unspecified`).
    pub fn mode(self) -> Option<ha_core::Mode> {
        ha_core::Mode::ALL
            .into_iter()
            .find(|&m| Mode::from(m) == self)
    }

    /// `ACTIVE`, `MANUAL`, `WAIT` or `PASSIVE` (`UNKNOWN` for an unset field).
    pub fn mmm_name(self) -> &'static str {
        self.mode().map_or("UNKNOWN", ha_core::Mode::name)
    }
}

impl From<Check> for CheckName {
    fn from(c: Check) -> CheckName {
        match c {
            Check::Ping => CheckName::Ping,
            Check::Mysql => CheckName::Mysql,
            Check::RepThreads => CheckName::RepThreads,
            Check::RepBacklog => CheckName::RepBacklog,
        }
    }
}

impl CheckName {
    /// The checks in mysql-mmm's display order (the order of [`Check::ALL`]).
    pub const ALL: [CheckName; 4] = [
        CheckName::Ping,
        CheckName::Mysql,
        CheckName::RepThreads,
        CheckName::RepBacklog,
    ];

    /// The check this names (`None` for `Unspecified`).
    pub fn check(self) -> Option<Check> {
        Check::ALL.into_iter().find(|&c| CheckName::from(c) == self)
    }

    /// The name used in configs and by `checks` (`ping`, `mysql`, `rep_threads`,
    /// `rep_backlog`).
    pub fn mmm_name(self) -> &'static str {
        self.check().map_or("unknown", Check::name)
    }

    pub fn from_mmm_name(s: &str) -> Option<Self> {
        Check::parse(s).map(CheckName::from)
    }
}

impl Role {
    pub fn new(name: impl Into<String>, ip: impl Into<String>) -> Self {
        Role {
            name: name.into(),
            ip: ip.into(),
        }
    }
}

impl From<&Role> for RoleInstance {
    fn from(r: &Role) -> RoleInstance {
        RoleInstance::new(&r.name, &r.ip)
    }
}

impl From<&RoleInstance> for Role {
    fn from(r: &RoleInstance) -> Role {
        Role::new(r.name.clone(), r.ip.clone())
    }
}

/// `name(ip)`, as mysql-mmm prints a role.
impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        RoleInstance::from(self).fmt(f)
    }
}

/// Sorts roles the way mysql-mmm does (by name, then by IP string) and joins them with `, `.
pub fn format_roles(roles: &[Role]) -> String {
    let mut sorted: Vec<RoleInstance> = roles.iter().map(RoleInstance::from).collect();
    sorted.sort();
    sorted
        .iter()
        .map(RoleInstance::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_format_sorted() {
        let roles = vec![
            Role::new("writer", "10.0.0.160"),
            Role::new("reader", "10.0.0.163"),
            Role::new("reader", "10.0.0.161"),
        ];
        assert_eq!(roles[0].to_string(), "writer(10.0.0.160)");
        assert_eq!(
            format_roles(&roles),
            "reader(10.0.0.161), reader(10.0.0.163), writer(10.0.0.160)"
        );
    }

    #[test]
    fn names_round_trip_through_the_core() {
        for s in ha_core::HostState::ALL {
            let wire = HostState::from(s);
            assert_eq!(ha_core::HostState::from(wire), s);
            assert_eq!(HostState::from_mmm_name(wire.mmm_name()), Some(wire));
        }
        assert_eq!(HostState::Unspecified.mmm_name(), "UNKNOWN");
        for c in CheckName::ALL {
            assert_eq!(CheckName::from_mmm_name(c.mmm_name()), Some(c));
        }
        assert_eq!(CheckName::Unspecified.mmm_name(), "unknown");
        for m in ha_core::Mode::ALL {
            assert_eq!(Mode::from(m).mode(), Some(m));
            assert_eq!(Mode::from(m).mmm_name(), m.name());
        }
        assert_eq!(Mode::Unspecified.mmm_name(), "UNKNOWN");
    }
}
