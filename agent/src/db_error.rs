//! What went wrong talking to MySQL, typed where a caller branches on it: a timeout (never
//! retried: the server may be frozen), a dead connection (retried once on a fresh one), a
//! server error with its error number (e.g. 1094 "Unknown thread id" is not a failure of a
//! KILL). Every variant renders as the full message operators see, with the statement's
//! password redacted and the endpoint named.

use std::fmt;
use std::time::Duration;

use sqlx::mysql::MySqlDatabaseError;

/// `ER_NO_SUCH_THREAD`: the thread a KILL named has already ended.
pub const ER_NO_SUCH_THREAD: u16 = 1094;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// No connection could be made or set up. `cause` says why.
    Connect { endpoint: String, cause: String },
    /// The statement did not finish in time; the connection was dropped.
    Timeout {
        sql: String,
        endpoint: String,
        after: Duration,
    },
    /// The server refused the statement (the connection is still usable).
    Server {
        sql: String,
        endpoint: String,
        number: Option<u16>,
        message: String,
    },
    /// The connection broke during the statement (the server restarted, a network blip).
    Broken {
        sql: String,
        endpoint: String,
        message: String,
    },
    /// The server answered, but not what the agent expected.
    Unexpected(String),
}

impl DbError {
    /// Builds the error of a failed statement from sqlx's (`sql` already redacted, `message`
    /// already scrubbed of the password).
    pub(crate) fn of_statement(
        e: &sqlx::Error,
        sql: String,
        endpoint: &str,
        message: String,
    ) -> Self {
        match e {
            sqlx::Error::Database(db) => DbError::Server {
                sql,
                endpoint: endpoint.to_string(),
                number: db
                    .try_downcast_ref::<MySqlDatabaseError>()
                    .map(|m| m.number()),
                message,
            },
            _ => DbError::Broken {
                sql,
                endpoint: endpoint.to_string(),
                message,
            },
        }
    }

    /// The server's error number, for a server error.
    pub fn number(&self) -> Option<u16> {
        match self {
            DbError::Server { number, .. } => *number,
            _ => None,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Connect { endpoint, cause } => {
                write!(f, "cannot connect to MySQL at {endpoint}: {cause}")
            }
            DbError::Timeout {
                sql,
                endpoint,
                after,
            } => write!(
                f,
                "`{sql}` did not finish within {:.1} s on {endpoint}",
                after.as_secs_f64()
            ),
            DbError::Server {
                sql,
                endpoint,
                message,
                ..
            }
            | DbError::Broken {
                sql,
                endpoint,
                message,
            } => write!(f, "`{sql}` failed on {endpoint}: {message}"),
            DbError::Unexpected(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DbError {}

/// Callers that only show the error keep a plain message.
impl From<DbError> for String {
    fn from(e: DbError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_statement_and_the_endpoint() {
        let t = DbError::Timeout {
            sql: "SHOW SLAVE STATUS".into(),
            endpoint: "db1:3306 as ha_agent".into(),
            after: Duration::from_millis(2500),
        };
        assert_eq!(
            t.to_string(),
            "`SHOW SLAVE STATUS` did not finish within 2.5 s on db1:3306 as ha_agent"
        );
        let s = DbError::Server {
            sql: "KILL 7".into(),
            endpoint: "db1".into(),
            number: Some(ER_NO_SUCH_THREAD),
            message: "Unknown thread id: 7".into(),
        };
        assert_eq!(
            s.to_string(),
            "`KILL 7` failed on db1: Unknown thread id: 7"
        );
        assert_eq!(s.number(), Some(ER_NO_SUCH_THREAD));
        assert_eq!(t.number(), None);
        let c = DbError::Connect {
            endpoint: "db1".into(),
            cause: "refused".into(),
        };
        assert_eq!(String::from(c), "cannot connect to MySQL at db1: refused");
    }
}
