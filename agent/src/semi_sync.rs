//! Semi-sync replication on the master (source) side, as the agent reports it to the monitor
//! (which warns when the active master fell back to asynchronous replication).

use crate::sqltext::TextRow;

/// The master (source) side of semi-sync replication as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemiSync {
    /// `rpl_semi_sync_master_enabled` (MySQL 8.0.26+: `rpl_semi_sync_source_enabled`).
    pub enabled: bool,
    /// Commits wait for a replica's acknowledgement now. False when `Rpl_semi_sync_master_status`
    /// is OFF (an acknowledgement timed out: the master switched to asynchronous replication)
    /// and also when no semi-sync replica is connected while `rpl_semi_sync_master_wait_no_slave`
    /// is OFF: commits then return at once and the status still says ON (seen on MariaDB 10.11).
    pub active: bool,
}

/// The statements [`SemiSync::from_rows`] reads, under MariaDB's and MySQL's older names and
/// MySQL 8.0.26+'s.
pub const SEMI_SYNC_VARIABLES: &str = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('rpl_semi_sync_master_enabled', 'rpl_semi_sync_source_enabled', 'rpl_semi_sync_master_wait_no_slave', 'rpl_semi_sync_source_wait_no_replica')";
pub const SEMI_SYNC_STATUS: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_source_status', 'Rpl_semi_sync_master_clients', 'Rpl_semi_sync_source_clients')";

impl SemiSync {
    /// From the rows (`Variable_name`, `Value`) of [`SEMI_SYNC_VARIABLES`] and
    /// [`SEMI_SYNC_STATUS`]; `None` when the server has no semi-sync master support loaded.
    pub fn from_rows(variables: &[TextRow], status: &[TextRow]) -> Option<SemiSync> {
        let value = |rows: &[TextRow], suffixes: &[&str]| -> Option<String> {
            rows.iter().find_map(|r| {
                let name = r
                    .get("Variable_name")
                    .cloned()
                    .flatten()?
                    .to_ascii_lowercase();
                suffixes
                    .iter()
                    .any(|s| name.ends_with(s))
                    .then(|| r.get("Value").cloned().flatten())
                    .flatten()
            })
        };
        let on = |v: Option<String>| {
            v.is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_uppercase().as_str(),
                    "ON" | "1" | "YES" | "TRUE"
                )
            })
        };
        let enabled = on(Some(value(variables, &["_enabled"])?));
        let wait_no_replica = on(value(variables, &["_wait_no_slave", "_wait_no_replica"]));
        let status_on = on(value(status, &["_status"]));
        let clients: u64 = value(status, &["_clients"])
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Some(SemiSync {
            enabled,
            active: status_on && (clients > 0 || wait_no_replica),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, value: &str) -> TextRow {
        [
            ("Variable_name".to_string(), Some(name.to_string())),
            ("Value".to_string(), Some(value.to_string())),
        ]
        .into_iter()
        .collect()
    }

    fn maria(wait_no_slave: &str, status: &str, clients: &str) -> Option<SemiSync> {
        SemiSync::from_rows(
            &[
                row("rpl_semi_sync_master_enabled", "ON"),
                row("rpl_semi_sync_master_wait_no_slave", wait_no_slave),
            ],
            &[
                row("Rpl_semi_sync_master_clients", clients),
                row("Rpl_semi_sync_master_status", status),
            ],
        )
    }

    #[test]
    fn semi_sync_master_side() {
        let active = |a| {
            Some(SemiSync {
                enabled: true,
                active: a,
            })
        };
        assert_eq!(maria("OFF", "ON", "1"), active(true));
        // An acknowledgement timed out: switched to asynchronous replication.
        assert_eq!(maria("ON", "OFF", "0"), active(false));
        // No semi-sync replica and wait_no_slave=OFF: asynchronous, though the status says ON.
        assert_eq!(maria("OFF", "ON", "0"), active(false));
        // wait_no_slave=ON: the next commit waits (and then shows OFF if nobody acknowledges).
        assert_eq!(maria("ON", "ON", "0"), active(true));
        assert_eq!(
            SemiSync::from_rows(
                &[row("rpl_semi_sync_source_enabled", "ON")],
                &[
                    row("Rpl_semi_sync_source_status", "ON"),
                    row("Rpl_semi_sync_source_clients", "2")
                ]
            ),
            active(true)
        );
        assert_eq!(
            SemiSync::from_rows(&[row("rpl_semi_sync_master_enabled", "OFF")], &[]),
            Some(SemiSync {
                enabled: false,
                active: false
            })
        );
        assert_eq!(SemiSync::from_rows(&[], &[]), None, "no plugin loaded");
    }
}
