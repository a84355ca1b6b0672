//! Judging what a probe saw: SHOW SLAVE STATUS facts and MySQL errors into outcomes, with
//! mysql-mmm's message texts.

use std::time::Duration;

use sqlx::mysql::MySqlDatabaseError;

use super::Observation;

/// The fields of SHOW SLAVE STATUS the checks judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaveFacts {
    pub io_running: String,
    pub sql_running: String,
    pub seconds_behind: Option<u64>,
}

/// Both threads must not be the literal `No` (so `Connecting` counts as running, as in mmm).
pub fn judge_threads(f: &SlaveFacts) -> Observation {
    if f.io_running == "No" || f.sql_running == "No" {
        Observation::error(format!(
            "ERROR: Replication is broken (Slave_IO_Running: {}, Slave_SQL_Running: {})",
            f.io_running, f.sql_running
        ))
    } else {
        Observation::ok("OK")
    }
}

/// Seconds_Behind_Master against max_backlog; NULL counts as no backlog (docs/mmm-behaviour.md §3.1).
pub fn judge_backlog(f: &SlaveFacts, max_backlog: Duration) -> Observation {
    let mut o = match f.seconds_behind {
        None | Some(0) => Observation::ok("OK: Backlog is null"),
        Some(s) if Duration::from_secs(s) <= max_backlog => {
            Observation::ok(format!("OK: Backlog {s} s"))
        }
        Some(s) => Observation::error(format!(
            "ERROR: Backlog is too big ({s} s > max_backlog {} s)",
            max_backlog.as_secs_f64()
        )),
    };
    o.lag_secs = Some(f.seconds_behind.unwrap_or(0));
    o
}

/// The MySQL error number of a server error, if `e` is one.
pub fn mysql_error_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// MySQL error 1040 (`ER_CON_COUNT_ERROR`, SQLSTATE 08004): the server is alive, just full.
/// Told by the error code, not its text. The number is checked first: an error sent during the
/// handshake carries no SQLSTATE.
pub(super) fn is_too_many_connections(e: &sqlx::Error) -> bool {
    const ER_CON_COUNT_ERROR: u16 = 1040;
    const SQLSTATE_REJECTED: &str = "08004";
    match e {
        sqlx::Error::Database(db) => {
            mysql_error_number(e) == Some(ER_CON_COUNT_ERROR)
                || (db.try_downcast_ref::<MySqlDatabaseError>().is_none()
                    && db.code().as_deref() == Some(SQLSTATE_REJECTED))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_core::CheckOutcome;
    use std::borrow::Cow;

    /// A database error with just a message and a SQLSTATE (a `MySqlDatabaseError` cannot be
    /// built outside sqlx).
    #[derive(Debug)]
    struct FakeDbError {
        message: &'static str,
        sqlstate: Option<&'static str>,
    }

    impl std::fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for FakeDbError {}

    impl sqlx::error::DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            self.message
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            self.sqlstate.map(Cow::Borrowed)
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db_error(message: &'static str, sqlstate: Option<&'static str>) -> sqlx::Error {
        sqlx::Error::Database(Box::new(FakeDbError { message, sqlstate }))
    }

    #[test]
    fn too_many_connections_is_told_by_the_error_code_not_the_text() {
        assert!(is_too_many_connections(&db_error("busy", Some("08004"))));
        assert!(!is_too_many_connections(&db_error(
            "Too many connections",
            Some("HY000")
        )));
        assert!(!is_too_many_connections(&db_error(
            "Too many connections",
            None
        )));
        assert!(!is_too_many_connections(&sqlx::Error::Protocol(
            "Too many connections".into()
        )));
    }

    fn facts(io: &str, sql: &str, behind: Option<u64>) -> SlaveFacts {
        SlaveFacts {
            io_running: io.into(),
            sql_running: sql.into(),
            seconds_behind: behind,
        }
    }

    #[test]
    fn threads_connecting_counts_as_running() {
        assert!(matches!(
            judge_threads(&facts("Connecting", "Yes", None)),
            Observation {
                outcome: CheckOutcome::Ok,
                ..
            }
        ));
        assert!(matches!(
            judge_threads(&facts("Yes", "Yes", None)),
            Observation {
                outcome: CheckOutcome::Ok,
                ..
            }
        ));
        assert!(matches!(
            judge_threads(&facts("No", "Yes", None)),
            Observation {
                outcome: CheckOutcome::Error,
                ..
            }
        ));
        assert!(matches!(
            judge_threads(&facts("Yes", "No", None)),
            Observation {
                outcome: CheckOutcome::Error,
                ..
            }
        ));
    }

    #[test]
    fn backlog_null_is_ok_and_threshold_is_inclusive() {
        let max = Duration::from_secs(60);
        let null = judge_backlog(&facts("Yes", "Yes", None), max);
        assert_eq!(null.outcome, CheckOutcome::Ok);
        assert_eq!(null.message, "OK: Backlog is null");
        assert_eq!(
            null.lag_secs,
            Some(0),
            "NULL counts as no lag in the metrics too"
        );
        assert_eq!(
            judge_backlog(&facts("Yes", "Yes", Some(61)), max).lag_secs,
            Some(61)
        );
        assert!(matches!(
            judge_backlog(&facts("Yes", "Yes", Some(60)), max),
            Observation {
                outcome: CheckOutcome::Ok,
                ..
            }
        ));
        assert!(matches!(
            judge_backlog(&facts("Yes", "Yes", Some(61)), max),
            Observation {
                outcome: CheckOutcome::Error,
                ..
            }
        ));
    }
}
