//! Processes the lab starts inside namespaces (ha-agent, ha-monitor, anything a test needs).
//!
//! A [`ProcHandle`] owns the `std::process::Child`, so its PID cannot be reused while the
//! handle believes the process is alive (an exited child stays a zombie until we reap it).
//! Signals are only sent after `try_wait` confirmed the child has not been reaped: the lab never
//! signals a PID it does not own. Output goes to a log file in the lab directory and is kept for
//! failure diagnostics ([`ProcHandle::log`]).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::mariadb::{tail, wait_exit};

/// How long [`ProcHandle::stop`] waits after SIGTERM before it SIGKILLs.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    ns: String,
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    log: PathBuf,
}

#[derive(Debug)]
struct Inner {
    spec: Spec,
    child: Option<Child>,
    /// PIDs of every incarnation, for diagnostics.
    history: Vec<u32>,
}

/// A process started by the lab inside a namespace. Cheap to clone (shared state); the lab
/// keeps a clone too and kills the process at teardown if it is still running.
#[derive(Debug, Clone)]
pub struct ProcHandle {
    inner: Arc<Mutex<Inner>>,
}

impl ProcHandle {
    pub(crate) fn spawn(
        name: &str,
        ns: &str,
        program: &str,
        args: &[String],
        env: &BTreeMap<String, String>,
        log: PathBuf,
    ) -> Result<ProcHandle> {
        let spec = Spec {
            name: name.to_string(),
            ns: ns.to_string(),
            program: program.to_string(),
            args: args.to_vec(),
            env: env.clone(),
            log,
        };
        let child = start(&spec)?;
        let pid = child.id();
        Ok(ProcHandle {
            inner: Arc::new(Mutex::new(Inner {
                spec,
                child: Some(child),
                history: vec![pid],
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The name given at spawn time (e.g. `agent-db1`).
    pub fn name(&self) -> String {
        self.lock().spec.name.clone()
    }

    /// The namespace the process runs in.
    pub fn namespace(&self) -> String {
        self.lock().spec.ns.clone()
    }

    /// PID of the running incarnation, or `None` if it is not running.
    pub fn pid(&self) -> Option<u32> {
        let mut g = self.lock();
        running_pid(&mut g)
    }

    /// True while the process runs (a SIGSTOPped process counts as running).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Exit status if the process has exited (and was not restarted since).
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut g = self.lock();
        g.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Path of the stdout+stderr log (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.lock().spec.log.clone()
    }

    /// The whole log (for assertions and failure messages).
    pub fn log(&self) -> String {
        let p = self.log_path();
        fs::read_to_string(&p).unwrap_or_else(|e| format!("(cannot read {}: {e})", p.display()))
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_path(), n)
    }

    /// Sends `sig` to the process if it is running. Returns false if it was not running.
    pub fn signal(&self, sig: i32) -> Result<bool> {
        let mut g = self.lock();
        signal_locked(&mut g, sig)
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL. Ok if it was not running.
    pub fn stop(&self) -> Result<()> {
        let mut g = self.lock();
        if !signal_locked(&mut g, libc::SIGCONT)? {
            return Ok(());
        }
        signal_locked(&mut g, libc::SIGTERM)?;
        let what = format!("{} to exit after SIGTERM", g.spec.name);
        let child = g
            .child
            .as_mut()
            .ok_or_else(|| Error::Other("no child".into()))?;
        if wait_exit(child, STOP_GRACE, &what).is_err() {
            let _ = child.kill();
            wait_exit(child, Duration::from_secs(10), &what)?;
        }
        Ok(())
    }

    /// SIGKILL and reap. Ok if it was not running.
    pub fn kill(&self) -> Result<()> {
        let mut g = self.lock();
        let name = g.spec.name.clone();
        if let Some(child) = g.child.as_mut() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                wait_exit(child, Duration::from_secs(10), &format!("{name} to die"))?;
            }
        }
        Ok(())
    }

    /// SIGSTOP (the process freezes; its sockets stay open and unanswered).
    pub fn pause(&self) -> Result<()> {
        self.signal(libc::SIGSTOP).map(|_| ())
    }

    /// SIGCONT.
    pub fn resume(&self) -> Result<()> {
        self.signal(libc::SIGCONT).map(|_| ())
    }

    /// Starts the process again with the same program, arguments, environment and namespace
    /// (new PID; the log is appended). No-op if it is still running.
    pub fn start(&self) -> Result<()> {
        let mut g = self.lock();
        if running_pid(&mut g).is_some() {
            return Ok(());
        }
        let child = start(&g.spec)?;
        g.history.push(child.id());
        g.child = Some(child);
        Ok(())
    }

    /// `stop()` then `start()`.
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start()
    }

    /// PIDs of all incarnations so far.
    pub fn pid_history(&self) -> Vec<u32> {
        self.lock().history.clone()
    }
}

fn running_pid(g: &mut Inner) -> Option<u32> {
    let child = g.child.as_mut()?;
    match child.try_wait() {
        Ok(None) => Some(child.id()),
        _ => None,
    }
}

fn signal_locked(g: &mut Inner, sig: i32) -> Result<bool> {
    let Some(pid) = running_pid(g) else {
        return Ok(false);
    };
    // SAFETY: plain kill(2) on a PID we own and have not reaped.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    if rc != 0 {
        return Err(Error::io(
            format!("kill({pid}, {sig}) for {}", g.spec.name),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(true)
}

fn start(spec: &Spec) -> Result<Child> {
    if let Some(dir) = spec.log.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::path("create", dir, e))?;
    }
    let log = open_log(&spec.log)?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::path("dup", &spec.log, e))?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &spec.ns, &spec.program])
        .args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Own process group: Ctrl-C on the test runner does not reach it; teardown does.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Error::io(
                format!(
                    "spawn `{} {}` in namespace {}",
                    spec.program,
                    spec.args.join(" "),
                    spec.ns
                ),
                e,
            )
        })?;
    // `ip netns exec` joins the namespace right after the fork; wait for that (bounded) so
    // callers can rely on the PID being in `ip netns pids` once spawn returns.
    let want = fs::metadata(format!("/run/netns/{}", spec.ns)).map(|m| m.ino());
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while let Ok(want) = want {
        let have = fs::metadata(format!("/proc/{}/ns/net", child.id())).map(|m| m.ino());
        if have.ok() == Some(want)
            || std::time::Instant::now() >= deadline
            || child.try_wait().ok().flatten().is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(child)
}

fn open_log(p: &Path) -> Result<fs::File> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| Error::path("open", p, e))
}
