//! `ha-control certs`: the cluster CA and the certificates of mutual TLS, made locally with
//! [`ha_tls::certs`] (no monitor is contacted, no configuration is read).
//!
//! Prints one line per file written on stdout. A failure prints `ERROR: <what failed>` on
//! stderr and exits 1; files written before it (other identities) are still listed. With
//! `--json` both go into one document on stdout (see JSON.md).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Subcommand;
use ha_tls::certs::{self, Written};
use ha_tls::TlsError;
use serde::Serialize;

use crate::render::json;
use crate::{Outcome, EXIT_ERROR_REPLY, EXIT_OK};

/// Longest validity accepted on the command line (100 years).
const MAX_DAYS: i64 = 36_500;

/// `certs ca` and `certs issue`.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum CertsCommand {
    /// Create the cluster CA: DIR/ca.crt (0644) and DIR/ca.key (0600). Refuses to overwrite an
    /// existing ca.key. Keep ca.key off the servers once the certificates are issued.
    #[command(name = "ca")]
    Ca {
        /// Directory to write into (created with mode 0755 if missing).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The CA's name (its certificate's common name).
        #[arg(long, value_name = "NAME", default_value = certs::DEFAULT_CA_NAME)]
        name: String,
        /// Validity in days.
        #[arg(
            long,
            value_name = "DAYS",
            default_value_t = certs::DEFAULT_CA_DAYS,
            value_parser = clap::value_parser!(u32).range(1..=MAX_DAYS)
        )]
        days: u32,
    },
    /// Issue a certificate per IDENTITY from the CA in DIR: DIR/IDENTITY.crt (0644) and
    /// DIR/IDENTITY.key (0600). An existing certificate is replaced (rotation). Each one
    /// serves both as server and as client certificate.
    #[command(name = "issue")]
    Issue {
        /// Directory holding ca.crt and ca.key; the new files are written there too.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Identities (DNS names: letters, digits, '-', '.'), e.g. monitor db1 db2 alice.
        #[arg(value_name = "IDENTITY", required = true)]
        identities: Vec<String>,
        /// Also valid for this IP address (repeatable; added to every certificate issued).
        #[arg(long = "ip", value_name = "IP")]
        ips: Vec<IpAddr>,
        /// Validity in days.
        #[arg(
            long,
            value_name = "DAYS",
            default_value_t = certs::DEFAULT_LEAF_DAYS,
            value_parser = clap::value_parser!(u32).range(1..=MAX_DAYS)
        )]
        days: u32,
    },
}

/// The `--json` document of `certs`.
#[derive(Debug, Serialize)]
struct CertsJson {
    ok: bool,
    error: Option<String>,
    files: Vec<FileJson>,
}

#[derive(Debug, Serialize)]
struct FileJson {
    path: String,
    /// Octal permission bits, e.g. "0600".
    mode: String,
    /// An existing file was replaced (rotation).
    replaced: bool,
}

/// Runs a `certs` command.
pub fn run(command: &CertsCommand, as_json: bool) -> Outcome {
    let mut written = Vec::new();
    let result = match command {
        CertsCommand::Ca { dir, name, days } => {
            certs::create_ca(dir, name, *days).map(|w| written.extend(w))
        }
        CertsCommand::Issue {
            dir,
            identities,
            ips,
            days,
        } => match identities.iter().find(|i| !ha_tls::valid_identity(i)) {
            // All identities are checked before anything is written.
            Some(bad) => Err(TlsError::InvalidIdentity {
                identity: bad.clone(),
            }),
            None => identities.iter().try_for_each(|identity| {
                certs::issue(dir, identity, ips, *days).map(|w| written.extend(w))
            }),
        },
    };
    outcome(&written, result.err(), as_json)
}

fn outcome(written: &[Written], error: Option<TlsError>, as_json: bool) -> Outcome {
    let code = if error.is_none() {
        EXIT_OK
    } else {
        EXIT_ERROR_REPLY
    };
    if as_json {
        let doc = CertsJson {
            ok: error.is_none(),
            error: error.map(|e| e.to_string()),
            files: written
                .iter()
                .map(|w| FileJson {
                    path: w.path.display().to_string(),
                    mode: format!("{:04o}", w.mode),
                    replaced: w.replaced,
                })
                .collect(),
        };
        return Outcome {
            stdout: json::to_text(&doc),
            stderr: String::new(),
            code,
        };
    }
    Outcome {
        stdout: written.iter().map(|w| format!("{w}\n")).collect(),
        stderr: error.map(|e| format!("ERROR: {e}\n")).unwrap_or_default(),
        code,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt;

    use crate::{run, EXIT_ERROR_REPLY, EXIT_OK, EXIT_USAGE};

    fn run_args(args: &[&str]) -> crate::Outcome {
        run(std::iter::once("ha-control")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect())
    }

    #[test]
    fn ca_then_issue_writes_private_keys() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("tls");
        let d = dir.to_string_lossy().into_owned();

        let o = run_args(&["certs", "ca", "--dir", &d, "--name", "test CA"]);
        assert_eq!(o.code, EXIT_OK, "{o:?}");
        assert_eq!(
            o.stdout,
            format!("wrote {d}/ca.key (mode 0600)\nwrote {d}/ca.crt (mode 0644)\n")
        );
        assert!(o.stderr.is_empty());

        let o = run_args(&[
            "certs",
            "issue",
            "--dir",
            &d,
            "monitor",
            "db1",
            "--ip",
            "10.0.0.11",
        ]);
        assert_eq!(o.code, EXIT_OK, "{o:?}");
        assert_eq!(o.stdout.lines().count(), 4, "{}", o.stdout);
        for id in ["monitor", "db1"] {
            let key = dir.join(format!("{id}.key"));
            assert_eq!(std::fs::metadata(&key)?.permissions().mode() & 0o777, 0o600);
            ha_tls::load(&ha_tls::TlsFiles::in_dir(&dir, id))?;
        }

        // Rotation says so.
        let o = run_args(&["certs", "issue", "--dir", &d, "db1"]);
        assert_eq!(o.code, EXIT_OK, "{o:?}");
        assert!(
            o.stdout
                .lines()
                .all(|l| l.ends_with(", replaced the previous file)")),
            "{}",
            o.stdout
        );
        Ok(())
    }

    #[test]
    fn failures_go_to_stderr_with_exit_1() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let d = tmp.path().to_string_lossy().into_owned();

        // No CA yet.
        let o = run_args(&["certs", "issue", "--dir", &d, "db1"]);
        assert_eq!(o.code, EXIT_ERROR_REPLY, "{o:?}");
        assert!(o.stdout.is_empty());
        assert_eq!(
            o.stderr,
            format!("ERROR: {d}/ca.crt: cannot read: No such file or directory\n")
        );

        assert_eq!(run_args(&["certs", "ca", "--dir", &d]).code, EXIT_OK);
        let o = run_args(&["certs", "ca", "--dir", &d]);
        assert_eq!(o.code, EXIT_ERROR_REPLY, "{o:?}");
        assert!(
            o.stderr
                .starts_with(&format!("ERROR: {d}/ca.key: already exists")),
            "{}",
            o.stderr
        );

        // A bad identity anywhere in the list: nothing is written.
        let o = run_args(&["certs", "issue", "--dir", &d, "db1", "db_2"]);
        assert_eq!(o.code, EXIT_ERROR_REPLY, "{o:?}");
        assert!(o.stderr.starts_with("ERROR: invalid identity 'db_2'"));
        assert!(!tmp.path().join("db1.crt").exists());
        Ok(())
    }

    #[test]
    fn json_lists_the_files() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let d = tmp.path().to_string_lossy().into_owned();
        let o = run_args(&["--json", "certs", "ca", "--dir", &d]);
        assert_eq!(o.code, EXIT_OK, "{o:?}");
        let v: serde_json::Value = serde_json::from_str(&o.stdout)?;
        assert_eq!(v["ok"], true);
        assert_eq!(v["files"][0]["path"], format!("{d}/ca.key"));
        assert_eq!(v["files"][0]["mode"], "0600");
        assert_eq!(v["files"][0]["replaced"], false);

        let o = run_args(&["certs", "ca", "--json", "--dir", &d]);
        assert_eq!(o.code, EXIT_ERROR_REPLY);
        let v: serde_json::Value = serde_json::from_str(&o.stdout)?;
        assert_eq!(v["ok"], false);
        assert!(v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("already exists"));
        Ok(())
    }

    #[test]
    fn usage_errors_keep_clap_messages() {
        let o = run_args(&["certs", "issue", "--dir", "/tmp/x"]);
        assert_eq!(o.code, EXIT_USAGE);
        assert!(o.stderr.contains("IDENTITY"), "{}", o.stderr);
        let o = run_args(&["certs", "issue", "--dir", "/tmp/x", "db1", "--ip", "nope"]);
        assert_eq!(o.code, EXIT_USAGE);
        assert!(o.stderr.contains("nope"), "{}", o.stderr);
        let o = run_args(&["certs", "ca", "--dir", "/tmp/x", "--days", "0"]);
        assert_eq!(o.code, EXIT_USAGE);
        assert!(o.stderr.contains("--days"), "{}", o.stderr);
        let o = run_args(&["certs"]);
        assert_eq!(o.code, EXIT_USAGE);
        assert!(o.stderr.contains("issue"), "{}", o.stderr);
    }
}
