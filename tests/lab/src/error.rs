//! The lab's error type. Every variant says *what* failed and *where* (command line, host,
//! statement, path), because a lab failure is usually read in a CI log with nothing else.

use std::time::Duration;

/// Result alias used throughout the lab.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, faulting, observing or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external command (ip, nft, tc, mariadb, …) exited unsuccessfully.
    #[error("command `{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A SQL statement run by the lab (as root over the host's unix socket) failed.
    #[error("SQL on {host} failed: `{sql}`: {msg}")]
    Sql {
        host: String,
        sql: String,
        msg: String,
    },
    /// A name that is not a host / node of this lab.
    #[error("unknown lab node `{0}` (expected one of db1..dbN, mon, cli)")]
    UnknownNode(String),
    /// The kernel or machine lacks a feature (e.g. the netem qdisc).
    #[error("unsupported on this machine: {0}")]
    Unsupported(String),
    /// Anything else, with a description.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an I/O error with a description of the operation and the path involved.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Shorthand for an I/O error on a path.
    pub(crate) fn path(op: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::io(format!("{op} {}", path.display()), source)
    }

    /// True when the error is a [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}
