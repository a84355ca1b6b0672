//! Fencing in the lab: the stand-in for fencing hardware and for `ha-fence.socket`.
//!
//! The lab's `kill_host_bin` ([`ha_lab::Lab::write_fence_script`]) shuts a host's switch port
//! (its veth leaves the bridge). It must run in the root namespace, with privileges the
//! monitor's own process does not keep, which is exactly why the product has a fencing helper
//! (`monitor.kill_host_socket`, `ha-monitor --fence-helper`). [`FenceSocket`] plays
//! `ha-fence.socket` (systemd's `Accept=yes`): it listens on a Unix socket in the root
//! namespace and runs one real `ha-monitor --fence-helper` per connection, with the connection
//! as its stdin and stdout.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Errors are messages for the test's panic (as the fixture's); a type of its own keeps this
/// module free of a dependency back on `cluster`.
type Result<T> = std::result::Result<T, String>;

/// How long one helper run may take (its `kill_host_bin` gets 30 s, like the packaged unit's
/// RuntimeMaxSec=40s).
const HELPER_DEADLINE: Duration = Duration::from_secs(40);

/// How often the accept loop looks at its stop flag.
const POLL: Duration = Duration::from_millis(100);

/// The listening socket and its accept loop; stopped (and the socket removed) on drop.
pub struct FenceSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FenceSocket {
    /// Listens on `path` and serves every connection with `monitor_bin --fence-helper --config
    /// config`.
    pub fn start(path: &Path, monitor_bin: &Path, config: &Path) -> Result<FenceSocket> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("fence socket: create {}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("fence socket {}: bind: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("fence socket {}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, bin, cfg) = (stop.clone(), monitor_bin.to_owned(), config.to_owned());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(&bin, &cfg, stream.into()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(POLL)
                    }
                    Err(e) => {
                        eprintln!("fence socket: accept: {e}");
                        std::thread::sleep(POLL)
                    }
                }
            }
        });
        Ok(FenceSocket {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One connection: the helper with the connection as stdin and stdout, killed at its deadline.
/// Requests are served one at a time, as fencing is rare and each run is short.
fn serve(bin: &Path, cfg: &Path, conn: OwnedFd) {
    let Ok(out) = conn.try_clone() else {
        eprintln!("fence socket: cannot duplicate the connection");
        return;
    };
    let child = Command::new(bin)
        .args(["--fence-helper", "--config"])
        .arg(cfg)
        .stdin(Stdio::from(conn))
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "fence socket: cannot run {} --fence-helper: {e}",
                bin.display()
            );
            return;
        }
    };
    let deadline = Instant::now() + HELPER_DEADLINE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("fence socket: the helper did not finish within {HELPER_DEADLINE:?}");
                return;
            }
        }
    }
}

impl Drop for FenceSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
