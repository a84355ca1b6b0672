//! Golden checks of `ha-control` output that report every mismatch, not just the first: a
//! table of [`Case`]s (arguments, exit code, expected stdout/stderr) run in order by
//! [`Golden::run`], plus free-form checks ([`Golden::check`], [`Golden::eq`]); each mismatch is
//! recorded under the current step and [`Golden::finish`] fails once, listing all of them.
//! Judging a case ([`Case::judge`]) is pure.

use std::fmt::Debug;

use serde_json::Value;

use crate::cluster::{Cluster, ControlOutput};

/// What one output stream must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// Exactly this.
    Exact(String),
    /// Starts with this.
    Prefix(String),
    /// Parses as JSON equal to this.
    Json(Value),
    /// Not checked.
    Any,
}

impl Text {
    /// Why `got` is not what `self` asks for; `None` when it is.
    pub fn judge(&self, got: &str) -> Option<String> {
        match self {
            Text::Exact(want) if got != want => Some(format!("{got:?}, want {want:?}")),
            Text::Prefix(want) if !got.starts_with(want.as_str()) => {
                Some(format!("{got:?}, want it to start with {want:?}"))
            }
            Text::Json(want) => match serde_json::from_str::<Value>(got) {
                Ok(v) if v == *want => None,
                Ok(v) => Some(format!("{v}, want {want}")),
                Err(e) => Some(format!("bad JSON ({e}): {got:?}, want {want}")),
            },
            _ => None,
        }
    }
}

/// One `ha-control` invocation and what it must produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub args: Vec<String>,
    /// Run through [`Cluster::control_raw`] (no default `--monitor`/`--timeout`) rather than
    /// [`Cluster::control`].
    pub raw: bool,
    pub code: i32,
    pub stdout: Text,
    pub stderr: Text,
}

/// Exit 0 with exactly `line` and a newline on stdout, nothing on stderr.
pub fn ok(args: &[&str], line: &str) -> Case {
    Case::new(args, 0, &format!("{line}\n"))
}

/// Exit 1 (an ERROR reply) with exactly `line` and a newline on stdout, nothing on stderr.
pub fn err(args: &[&str], line: &str) -> Case {
    Case::new(args, 1, &format!("{line}\n"))
}

impl Case {
    /// Exit `code`, exactly `stdout`, nothing on stderr.
    pub fn new(args: &[&str], code: i32, stdout: &str) -> Case {
        Case {
            args: args.iter().map(|a| a.to_string()).collect(),
            raw: false,
            code,
            stdout: Text::Exact(stdout.to_string()),
            stderr: Text::Exact(String::new()),
        }
    }

    /// Exit `code`, stdout parsing as JSON equal to `want`, stderr not checked. `args` are
    /// given whole (including `--json`).
    pub fn json(args: &[&str], code: i32, want: Value) -> Case {
        Case::new(args, code, "")
            .stdout(Text::Json(want))
            .stderr(Text::Any)
    }

    pub fn raw(mut self) -> Case {
        self.raw = true;
        self
    }

    pub fn stdout(mut self, t: Text) -> Case {
        self.stdout = t;
        self
    }

    pub fn stderr(mut self, t: Text) -> Case {
        self.stderr = t;
        self
    }

    /// `ha-control ARGS…` as run.
    pub fn command(&self) -> String {
        format!(
            "ha-control {}{}",
            self.args.join(" "),
            if self.raw { " (raw)" } else { "" }
        )
    }

    /// What differs between `out` and this case (exit code, stdout, stderr); `None` if nothing.
    pub fn judge(&self, out: &ControlOutput) -> Option<String> {
        let mut diff = Vec::new();
        if out.code != self.code {
            diff.push(format!("exit code {}, want {}", out.code, self.code));
        }
        if let Some(d) = self.stdout.judge(&out.stdout) {
            diff.push(format!("stdout {d}"));
        }
        if let Some(d) = self.stderr.judge(&out.stderr) {
            diff.push(format!("stderr {d}"));
        }
        (!diff.is_empty()).then(|| format!("{}: {}", self.command(), diff.join("; ")))
    }
}

/// Collects mismatches; see the module documentation. Dropping it with unreported mismatches
/// fails too (or prints them when the test is already failing for another reason).
#[derive(Debug, Default)]
pub struct Golden {
    step: String,
    mismatches: Vec<String>,
    finished: bool,
}

impl Golden {
    pub fn new() -> Golden {
        Golden::default()
    }

    /// Names the steps that follow, for the report.
    pub fn step(&mut self, name: &str) {
        self.step = name.to_string();
    }

    /// Records a mismatch under the current step.
    pub fn record(&mut self, what: impl Into<String>) {
        self.mismatches
            .push(format!("[{}] {}", self.step, what.into()));
    }

    /// Runs every case in order and records each one that does not match (or cannot run).
    pub fn run(&mut self, c: &Cluster, cases: &[Case]) {
        for case in cases {
            let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
            let out = if case.raw {
                c.control_raw(&args)
            } else {
                c.control(&args)
            };
            match out {
                Ok(o) => self.judge(case, &o),
                Err(e) => self.record(format!("{}: {e}", case.command())),
            }
        }
    }

    /// Records the mismatch between `out` and `case`, if any.
    pub fn judge(&mut self, case: &Case, out: &ControlOutput) {
        if let Some(d) = case.judge(out) {
            self.record(d);
        }
    }

    /// Records `what` unless `ok`; returns `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> bool {
        if !ok {
            self.record(what());
        }
        ok
    }

    /// Records `what` with both values unless `got == want`; returns whether they are equal.
    pub fn eq<A, B>(&mut self, got: &A, want: &B, what: impl FnOnce() -> String) -> bool
    where
        A: PartialEq<B> + Debug + ?Sized,
        B: Debug + ?Sized,
    {
        let same = *got == *want;
        if !same {
            self.record(format!("{}: got {got:?}, want {want:?}", what()));
        }
        same
    }

    pub fn mismatches(&self) -> &[String] {
        &self.mismatches
    }

    /// Fails, listing every mismatch, if there was any.
    pub fn finish(mut self) {
        self.finished = true;
        let m = std::mem::take(&mut self.mismatches);
        assert!(
            m.is_empty(),
            "{} golden mismatch(es):\n{}",
            m.len(),
            m.join("\n")
        );
    }
}

impl Drop for Golden {
    fn drop(&mut self) {
        if self.finished || self.mismatches.is_empty() {
            return;
        }
        let list = self.mismatches.join("\n");
        if std::thread::panicking() {
            eprintln!("=== golden mismatches before the failure:\n{list}");
        } else {
            panic!("golden checks dropped without finish(), mismatches:\n{list}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> ControlOutput {
        ControlOutput {
            code,
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn an_exact_case_matches_only_its_code_stdout_and_empty_stderr() {
        let c = ok(&["ping"], "OK: Pinged successfully!");
        assert_eq!(c.judge(&out(0, "OK: Pinged successfully!\n", "")), None);
        let d = c.judge(&out(1, "OK: Pinged successfully!", "x")).unwrap();
        assert_eq!(
            d,
            "ha-control ping: exit code 1, want 0; \
             stdout \"OK: Pinged successfully!\", want \"OK: Pinged successfully!\\n\"; \
             stderr \"x\", want \"\""
        );
        assert!(err(&["ping"], "E").judge(&out(0, "E\n", "")).is_some());
    }

    #[test]
    fn prefix_json_and_any() {
        let c = Case::new(&["x"], 2, "")
            .raw()
            .stdout(Text::Any)
            .stderr(Text::Prefix("Invalid".into()));
        assert_eq!(c.judge(&out(2, "whatever", "Invalid command")), None);
        assert_eq!(
            c.judge(&out(2, "", "Valid")).unwrap(),
            "ha-control x (raw): stderr \"Valid\", want it to start with \"Invalid\""
        );
        let j = Case::json(
            &["--json", "mode"],
            0,
            serde_json::json!({"mode": "ACTIVE"}),
        );
        assert_eq!(j.judge(&out(0, r#"{ "mode" : "ACTIVE" }"#, "noise")), None);
        assert!(j.judge(&out(0, r#"{"mode":"PASSIVE"}"#, "")).is_some());
        assert!(j
            .judge(&out(0, "not json", ""))
            .unwrap()
            .contains("bad JSON"));
    }

    #[test]
    fn finish_passes_when_nothing_was_recorded() {
        let mut g = Golden::new();
        g.step("a");
        assert!(g.check(true, || "never".into()));
        assert!(g.eq(&1, &1, || "never".into()));
        g.finish();
    }

    #[test]
    #[should_panic(
        expected = "3 golden mismatch(es):\n[one] first\n[one] x: got 1, want 2\n[two] third"
    )]
    fn finish_lists_every_mismatch_by_step() {
        let mut g = Golden::new();
        g.step("one");
        assert!(!g.check(false, || "first".into()));
        assert!(!g.eq(&1, &2, || "x".into()));
        g.step("two");
        g.record("third");
        assert_eq!(g.mismatches().len(), 3);
        g.finish();
    }

    #[test]
    #[should_panic(expected = "dropped without finish()")]
    fn dropping_unreported_mismatches_fails() {
        let mut g = Golden::new();
        g.record("lost");
        drop(g);
    }
}
