//! `kill_host_bin` through the fencing helper (monitor.yaml `kill_host_socket`).
//!
//! The monitor's sandbox (no AF_NETLINK/AF_PACKET, no home directory, NoNewPrivileges) breaks
//! most fencing tools: ssh, ipmitool, cloud CLIs. So the packaged `ha-fence.socket` listens on
//! a Unix socket only the `ha` group can reach, and systemd starts one `ha-fence@.service`
//! (`ha-monitor --fence-helper`, root, a sandbox that suits such tools) per connection, with the
//! connection as its stdin and stdout.
//!
//! The protocol is one line each way:
//! * request: `<host> <ping_ok 0|1>\n`;
//! * reply: `ok <output>\n` or `failed <output>\n` (output on one line).
//!
//! The helper runs the `kill_host_bin` of *its own* copy of monitor.yaml, only for a host that
//! file lists: whoever reaches the socket can ask for a listed host to be fenced, nothing else.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::KillOutcome;

/// Longest request line accepted (a host name and a digit).
const MAX_REQUEST: usize = 512;

/// Asks the helper at `socket` to fence `host`, within `deadline` (connect, request, the hook's
/// run and the reply together).
pub async fn request(socket: &Path, host: &str, ping_ok: bool, deadline: Duration) -> KillOutcome {
    let failed = |output: String| KillOutcome { ok: false, output };
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            format!(
                "cannot reach the fencing helper at {}: {e} (is ha-fence.socket enabled?)",
                socket.display()
            )
        })?;
        let line = format!("{host} {}\n", u8::from(ping_ok));
        stream
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("cannot send the request to {}: {e}", socket.display()))?;
        let mut reply = String::new();
        BufReader::new(stream)
            .read_line(&mut reply)
            .await
            .map_err(|e| {
                format!(
                    "no reply from the fencing helper at {}: {e}",
                    socket.display()
                )
            })?;
        Ok::<_, String>(reply)
    };
    match tokio::time::timeout(deadline, exchange).await {
        Err(_) => failed(format!(
            "the fencing helper at {} did not answer within {deadline:?}",
            socket.display()
        )),
        Ok(Err(e)) => failed(e),
        Ok(Ok(reply)) => parse_reply(&reply),
    }
}

fn parse_reply(reply: &str) -> KillOutcome {
    let reply = reply.trim_end_matches('\n');
    match reply.split_once(' ').unwrap_or((reply, "")) {
        ("ok", out) => KillOutcome {
            ok: true,
            output: out.to_string(),
        },
        ("failed", out) => KillOutcome {
            ok: false,
            output: out.to_string(),
        },
        _ => KillOutcome {
            ok: false,
            output: format!("the fencing helper answered something else: {reply:?}"),
        },
    }
}

/// Serves one request on `input`/`output` (the helper: systemd passes the connection as
/// stdin/stdout). `hosts` are the hosts of the helper's monitor.yaml, `bin` its kill_host_bin.
pub async fn serve<R, W>(input: R, mut output: W, hosts: &[String], bin: &str, deadline: Duration)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut line = String::new();
    let mut reader = BufReader::new(input.take(MAX_REQUEST as u64));
    let outcome =
        match tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await {
            Err(_) => KillOutcome {
                ok: false,
                output: "no request within 5 s".into(),
            },
            Ok(Err(e)) => KillOutcome {
                ok: false,
                output: format!("cannot read the request: {e}"),
            },
            Ok(Ok(_)) => match parse_request(&line, hosts) {
                Ok((host, ping_ok)) => {
                    tracing::warn!(
                        "fencing helper: running kill_host_bin for '{host}' (ping {})",
                        u8::from(ping_ok)
                    );
                    super::run(bin, host, ping_ok, deadline).await
                }
                Err(e) => KillOutcome {
                    ok: false,
                    output: e,
                },
            },
        };
    let text = outcome.output.replace(['\n', '\r'], " ");
    let reply = format!("{} {text}\n", if outcome.ok { "ok" } else { "failed" });
    if let Err(e) = output.write_all(reply.as_bytes()).await {
        tracing::error!("fencing helper: cannot send the reply ({e}): {reply}");
    }
    let _ = output.flush().await;
}

/// `<host> <0|1>` for a host of the configuration.
fn parse_request<'a>(line: &'a str, hosts: &[String]) -> Result<(&'a str, bool), String> {
    let mut words = line.split_whitespace();
    let (Some(host), Some(ping), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "malformed request {:?}: want '<host> <0|1>'",
            line.trim_end()
        ));
    };
    if !hosts.iter().any(|h| h == host) {
        return Err(format!(
            "refused: {host:?} is not a host of this monitor.yaml"
        ));
    }
    match ping {
        "0" => Ok((host, false)),
        "1" => Ok((host, true)),
        _ => Err(format!(
            "malformed request {:?}: ping_ok must be 0 or 1",
            line.trim_end()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn hook(dir: &Path, body: &str) -> String {
        let p = dir.join("kill");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write hook");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p.to_str().expect("utf8").to_string()
    }

    /// A socket served like ha-fence.socket does (one helper per connection).
    async fn helper(dir: &Path, bin: String) -> std::path::PathBuf {
        let sock = dir.join("fence.sock");
        let listener = tokio::net::UnixListener::bind(&sock).expect("bind");
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let bin = bin.clone();
                tokio::spawn(async move {
                    let (r, w) = s.into_split();
                    serve(
                        r,
                        w,
                        &["db1".into(), "db2".into()],
                        &bin,
                        Duration::from_secs(5),
                    )
                    .await;
                });
            }
        });
        sock
    }

    #[tokio::test]
    async fn the_helper_runs_the_hook_for_a_listed_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = helper(dir.path(), hook(dir.path(), "echo fenced $1 $2")).await;
        let out = request(&sock, "db2", true, Duration::from_secs(5)).await;
        assert!(out.ok, "{out:?}");
        assert!(out.output.contains("fenced db2 1"), "{out:?}");
        let failing = helper_failing(dir.path()).await;
        let out = request(&failing, "db1", false, Duration::from_secs(5)).await;
        assert!(!out.ok, "{out:?}");
    }

    async fn helper_failing(dir: &Path) -> std::path::PathBuf {
        let d = dir.join("failing");
        std::fs::create_dir(&d).expect("mkdir");
        let bin = hook(&d, "echo no; exit 3");
        helper(&d, bin).await
    }

    #[tokio::test]
    async fn unknown_hosts_and_malformed_requests_are_refused_without_running_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("ran");
        let sock = helper(
            dir.path(),
            hook(dir.path(), &format!("touch {}", marker.display())),
        )
        .await;
        let out = request(&sock, "db9", false, Duration::from_secs(5)).await;
        assert!(!out.ok && out.output.contains("not a host"), "{out:?}");
        for bad in ["db1", "db1 2", "db1 1 x", "db1;rm 1"] {
            let hosts = ["db1".to_string()];
            assert!(parse_request(bad, &hosts).is_err(), "{bad}");
        }
        assert!(!marker.exists(), "the hook ran for a refused request");
    }

    #[tokio::test]
    async fn no_helper_or_a_silent_one_is_a_failed_kill_within_the_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = request(
            &dir.path().join("none.sock"),
            "db1",
            true,
            Duration::from_secs(1),
        )
        .await;
        assert!(!out.ok && out.output.contains("ha-fence.socket"), "{out:?}");
        let sock = dir.path().join("silent.sock");
        let _listener = tokio::net::UnixListener::bind(&sock).expect("bind");
        let t = std::time::Instant::now();
        let out = request(&sock, "db1", true, Duration::from_millis(300)).await;
        assert!(!out.ok && out.output.contains("did not answer"), "{out:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn replies_parse() {
        assert_eq!(
            parse_reply("ok exit status 0: x\n"),
            KillOutcome {
                ok: true,
                output: "exit status 0: x".into()
            }
        );
        assert!(!parse_reply("failed boom\n").ok);
        assert!(!parse_reply("what\n").ok);
    }
}
