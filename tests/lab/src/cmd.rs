//! Running external commands with a hard deadline.
//!
//! Every command the lab runs goes through [`Cmd`]: a frozen host (SIGSTOPped mariadbd) would
//! otherwise hang a `mariadb` client or a probe forever, and a test suite that hangs tells
//! nobody anything. On timeout the child is SIGKILLed (by its PID, which we still own because
//! it has not been reaped) and a [`Error::Timeout`] naming the command line is returned.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default deadline of a one-shot command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Output of a finished command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// A command line with a deadline and optional standard input.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    /// A new command running `program` (looked up on PATH).
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `ip netns exec <ns> program …`: the command runs inside the namespace.
    pub fn in_ns(ns: &str, program: impl Into<String>) -> Self {
        Cmd::new("ip")
            .args(["netns", "exec", ns])
            .arg(program.into())
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    /// Feeds `data` on standard input.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Overrides the deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The command line, for messages.
    pub fn line(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            if a.contains(' ') || a.is_empty() {
                s.push('\'');
                s.push_str(a);
                s.push('\'');
            } else {
                s.push_str(a);
            }
        }
        s
    }

    /// Runs the command and returns its output whatever the exit status.
    pub fn output(&self) -> Result<Output> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("spawn `{}`", self.line()), e))?;
        // Feed stdin and drain stdout/stderr on helper threads so a chatty child never blocks
        // on a full pipe while we poll for its exit.
        let stdin_thread = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(data)) => Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let out_thread = child.stdout.take().map(|mut p| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = p.read_to_end(&mut v);
                v
            })
        });
        let err_thread = child.stderr.take().map(|mut p| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = p.read_to_end(&mut v);
                v
            })
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Timeout {
                        what: format!("command `{}`", self.line()),
                        after: self.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(Error::io(format!("wait for `{}`", self.line()), e)),
            }
        };
        if let Some(t) = stdin_thread {
            let _ = t.join();
        }
        // A grandchild that kept the pipes open must not hang us: these joins only happen after
        // the child exited; the lab never starts daemons through `Cmd`.
        let stdout = out_thread
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = err_thread
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Runs the command and fails unless it exits with status 0.
    pub fn run(&self) -> Result<Output> {
        let out = self.output()?;
        if out.success() {
            Ok(out)
        } else {
            Err(Error::Command {
                cmd: self.line(),
                status: out.status.to_string(),
                stderr: out.stderr.trim().to_string(),
            })
        }
    }
}
