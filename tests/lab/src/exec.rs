//! Processes and files in the lab's namespaces: daemons started by the lab (killed at
//! teardown), one-shot commands, files in the lab directory.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::{Cmd, Lab, Output, ProcHandle};

impl Lab {
    /// Starts `program args…` inside the namespace of `node` (`db1`, `mon`, `cli`) with extra
    /// environment `env`. stdout and stderr go to `<lab dir>/logs/<name>-<n>.log`. The lab kills
    /// it at teardown; stop/start/pause it through the handle.
    pub fn spawn_in<I, S>(
        &self,
        node: &str,
        program: impl AsRef<Path>,
        args: I,
        env: &[(&str, &str)],
    ) -> Result<ProcHandle>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let n = self.node(node)?;
        let program = program.as_ref().display().to_string();
        let base = Path::new(&program)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "proc".into());
        let name = format!("{base}-{}", n.name);
        let k = self.counter.fetch_add(1, Ordering::Relaxed);
        let log = self.dir.join("logs").join(format!("{name}-{k}.log"));
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = ProcHandle::spawn(&name, &n.ns, &program, &args, &env, log)?;
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(p.clone());
        Ok(p)
    }

    /// Every process started with [`Lab::spawn_in`].
    pub fn processes(&self) -> Vec<ProcHandle> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes `contents` to `<lab dir>/files/<name>` (creating directories) and returns the
    /// path. For daemon configs and scripts.
    pub fn write_file(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        let p = self.dir.join("files").join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| Error::path("create", d, e))?;
        }
        fs::write(&p, contents).map_err(|e| Error::path("write", &p, e))?;
        Ok(p)
    }

    /// Where [`Lab::write_private_file`] puts the file `name`.
    pub fn private_file_path(&self, name: &str) -> PathBuf {
        self.dir.join("files").join(name)
    }

    /// Like [`Lab::write_file`], readable by its owner only (0600): configuration files hold
    /// passwords, and the daemons refuse one that others can read.
    pub fn write_private_file(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.private_file_path(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| Error::path("create", d, e))?;
        }
        let _ = fs::remove_file(&p);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .and_then(|mut f| f.write_all(contents.as_ref()))
            .map_err(|e| Error::path("write", &p, e))?;
        Ok(p)
    }

    /// Runs a one-shot command inside `node`'s namespace (bounded by 20 s) and returns its
    /// output whatever the exit status. `cmd[0]` is the program.
    pub fn exec(&self, node: &str, cmd: &[&str]) -> Result<Output> {
        let n = self.node(node)?;
        let (prog, args) = cmd
            .split_first()
            .ok_or_else(|| Error::Other("exec: empty command".into()))?;
        Cmd::in_ns(&n.ns, *prog).args(args.iter().copied()).output()
    }

    /// Like [`Lab::exec`] but fails (with the command line and stderr) on a non-zero exit.
    pub fn exec_ok(&self, node: &str, cmd: &[&str]) -> Result<Output> {
        let n = self.node(node)?;
        let (prog, args) = cmd
            .split_first()
            .ok_or_else(|| Error::Other("exec: empty command".into()))?;
        Cmd::in_ns(&n.ns, *prog).args(args.iter().copied()).run()
    }
}
