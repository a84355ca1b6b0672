//! The `kill_host_bin <host> <ping_ok 0|1>` fencing hook (docs/mmm-behaviour.md §5.8).
//!
//! Run when a role removal could not be delivered to a host (never in MANUAL, WAIT or PASSIVE
//! mode: the core decides that). The outcome feeds back into the core, which may treat a
//! successful kill as proof that the old writer is fenced. With `kill_host_socket` the hook runs
//! in the fencing helper instead ([`helper`]).

pub mod helper;

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

/// Result of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillOutcome {
    pub ok: bool,
    pub output: String,
}

/// Wait before running the hook again when it was busy being written (ETXTBSY).
const TEXT_BUSY_RETRY: Duration = Duration::from_millis(50);

/// Runs the hook with a deadline; a hook that hangs is killed and counts as failed.
pub async fn run(bin: &str, host: &str, ping_ok: bool, deadline: Duration) -> KillOutcome {
    if bin.is_empty() {
        return KillOutcome {
            ok: false,
            output: format!(
                "Could not kill host '{host}' - there may be some duplicate ips now! \
                 (There's no binary configured for killing hosts: set monitor.kill_host_bin.)"
            ),
        };
    }
    if !Path::new(bin).exists() {
        return KillOutcome {
            ok: false,
            output: format!("Could not kill host '{host}': kill_host_bin {bin} does not exist"),
        };
    }
    let started = tokio::time::Instant::now();
    let attempt = || {
        let mut cmd = Command::new(bin);
        cmd.arg(host)
            .arg(if ping_ok { "1" } else { "0" })
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        async move { cmd.output().await }
    };
    let result = tokio::time::timeout(deadline, async {
        loop {
            match attempt().await {
                // ETXTBSY: the hook was just written and a file descriptor for writing it is
                // still open somewhere (an operator's deploy, a fork in progress): brief.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    if started.elapsed() + TEXT_BUSY_RETRY >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(TEXT_BUSY_RETRY).await;
                }
                other => return other,
            }
        }
    })
    .await;
    match result {
        Err(_) => KillOutcome {
            ok: false,
            output: format!("kill_host_bin {bin} {host} did not finish within {deadline:?}"),
        },
        Ok(Err(e)) => KillOutcome {
            ok: false,
            output: format!("cannot run kill_host_bin {bin}: {e}"),
        },
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if !err.is_empty() {
                if !text.is_empty() {
                    text.push_str(" | ");
                }
                text.push_str(&err);
            }
            KillOutcome {
                ok: out.status.success(),
                output: format!("{}: {text}", out.status),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hook_gets_host_and_ping_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("kill");
        std::fs::write(&script, "#!/bin/sh\necho killed $1 $2\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let out = run(
            script.to_str().expect("utf8"),
            "db1",
            false,
            Duration::from_secs(5),
        )
        .await;
        assert!(out.ok, "{out:?}");
        assert!(out.output.contains("killed db1 0"), "{out:?}");
    }

    #[tokio::test]
    async fn missing_or_failing_hook_is_a_failure() {
        assert!(!run("", "db1", true, Duration::from_secs(1)).await.ok);
        assert!(
            !run("/nonexistent/kill", "db1", true, Duration::from_secs(1))
                .await
                .ok
        );
        assert!(
            !run("/bin/false", "db1", true, Duration::from_secs(1))
                .await
                .ok
        );
    }
}
