//! Event hooks (monitor.yaml `hooks:`): executables run on events, off the main loop.
//!
//! Each hook has its own queue and worker task, so one hook sees its events in the order they
//! happened and a slow hook delays neither the decisions nor the other hooks. A run gets the
//! event as `HA_*` environment variables and as one JSON object on stdin, and is killed at its
//! deadline. A failing run is logged and counted, never retried; when a hook falls
//! [`ha_config::HOOK_QUEUE`] events behind, newer events are dropped for it (logged, counted).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ha_config::Hook;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::history::Record;
use super::metrics::Metrics;

/// The sending side of one hook's queue.
pub struct HookQueue {
    hook: Hook,
    tx: mpsc::Sender<Arc<Record>>,
}

impl HookQueue {
    /// Starts the worker of `hook`.
    pub fn spawn(hook: Hook, metrics: Arc<Metrics>) -> HookQueue {
        let (tx, mut rx) = mpsc::channel::<Arc<Record>>(ha_config::HOOK_QUEUE);
        let h = hook.clone();
        tokio::spawn(async move {
            while let Some(record) = rx.recv().await {
                let name = h.name.clone();
                let result = run(&h, &record).await;
                match &result {
                    Ok(()) => tracing::debug!("hook {name} ran for {}", record.event.kind.name()),
                    Err(e) => tracing::warn!(
                        "hook {name} failed for event {} ({}): {e}",
                        record.event.kind.name(),
                        record.event.message
                    ),
                }
                metrics.hook_run(&name, if result.is_ok() { "ok" } else { "failed" });
            }
        });
        HookQueue { hook, tx }
    }

    /// Queues `record` if this hook wants its kind; never waits.
    pub fn offer(&self, record: &Arc<Record>, metrics: &Metrics) {
        if !self.hook.wants(record.event.kind) {
            return;
        }
        if self.tx.try_send(record.clone()).is_err() {
            let name = self.hook.name.clone();
            tracing::warn!(
                "hook {name} is {} events behind: event {} dropped for it",
                ha_config::HOOK_QUEUE,
                record.event.kind.name()
            );
            metrics.hook_run(&name, "dropped");
        }
    }
}

/// The environment a hook run gets.
pub fn environment(r: &Record) -> Vec<(&'static str, String)> {
    let e = &r.event;
    let mut env = vec![
        ("HA_EVENT", e.kind.name().to_string()),
        ("HA_TIME_UNIX_MS", r.time_unix_ms.to_string()),
        ("HA_MESSAGE", e.message.clone()),
    ];
    let optional = [
        ("HA_HOST", &e.host),
        ("HA_ROLE", &e.role),
        ("HA_FROM", &e.from),
        ("HA_TO", &e.to),
        ("HA_RULE", &e.rule),
        ("HA_CAUSE", &e.cause),
        ("HA_OPERATOR", &r.operator),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            env.push((k, v.clone()));
        }
    }
    if let Some(d) = e.duration_ms {
        env.push(("HA_DURATION_MS", d.to_string()));
    }
    env
}

/// One run of `hook` for `record`, bounded by the hook's timeout.
async fn run(hook: &Hook, record: &Record) -> Result<(), String> {
    let json =
        serde_json::to_string(record).map_err(|e| format!("cannot encode the event: {e}"))?;
    let mut child = tokio::process::Command::new(&hook.command)
        .envs(environment(record))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let deadline: Duration = hook.timeout.0;
    let stdin = child.stdin.take();
    let finished = tokio::time::timeout(deadline, async move {
        if let Some(mut stdin) = stdin {
            // A hook that does not read stdin is fine: a broken pipe is not its failure.
            let _ = stdin.write_all(json.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        }
        child.wait_with_output().await
    })
    .await;
    match finished {
        Err(_) => Err(format!("killed after its timeout of {deadline:?}")),
        Ok(Err(e)) => Err(format!("cannot wait for it: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr: String = stderr.trim().chars().take(400).collect();
            Err(format!("{}: {stderr}", out.status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_core::{Event, EventKind};

    fn record() -> Record {
        let mut event =
            Event::new(EventKind::PromotionDone, "db2 is the writer".into()).host("db2");
        event.duration_ms = Some(1234);
        Record {
            time_unix_ms: 42,
            event,
            operator: None,
        }
    }

    fn hook(script: &str, timeout_ms: u64) -> (tempfile::TempDir, Hook) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hook.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let hook = Hook {
            name: "test".into(),
            command: path,
            events: vec![],
            timeout: ha_config::Seconds(Duration::from_millis(timeout_ms)),
        };
        (dir, hook)
    }

    #[tokio::test]
    async fn a_hook_gets_the_event_as_environment_and_json() {
        let (dir, h) = hook(
            r#"out="$(dirname "$0")/out"; echo "$HA_EVENT $HA_HOST $HA_DURATION_MS" > "$out"; cat >> "$out""#,
            5000,
        );
        run(&h, &record()).await.expect("the hook ran");
        let out = std::fs::read_to_string(dir.path().join("out")).expect("output");
        assert!(out.starts_with("promotion_done db2 1234\n"), "{out}");
        assert!(out.contains("\"kind\":\"promotion_done\""), "{out}");
    }

    #[tokio::test]
    async fn failing_and_hanging_hooks_are_errors_with_the_reason() {
        let (_d, h) = hook("echo broken >&2; exit 3", 5000);
        let e = run(&h, &record()).await.expect_err("exit 3 fails");
        assert!(e.contains("exit status: 3") && e.contains("broken"), "{e}");
        let (_d, h) = hook("sleep 30", 200);
        let started = std::time::Instant::now();
        let e = run(&h, &record()).await.expect_err("a hanging hook fails");
        assert!(e.contains("timeout"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
