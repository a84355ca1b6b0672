//! The lines `import-mmm` prints about what it did not (or not literally) carry over:
//!
//! * `FILE:LINE: KEY: not mapped: WHY` — a setting ha has no equivalent for;
//! * `FILE:LINE: KEY: changed: WHAT` — converted, but the value or its meaning changes;
//! * `OUTFILE: KEY: added: WHY` — a setting ha needs that mysql-mmm did not have;
//! * `FILE:LINE: TAG: warning: WHAT` — accepted, but worth a look.
//!
//! A line is printed once even when the same source line is seen through several files (the
//! mmm_common.conf included by mmm_mon.conf and by every mmm_agent.conf).

use std::fmt;

use serde::Serialize;

use super::parse::{Loc, MmmConfig, Section};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    NotMapped,
    Changed,
    Added,
    Warning,
}

impl NoteKind {
    fn text(self) -> &'static str {
        match self {
            NoteKind::NotMapped => "not mapped",
            NoteKind::Changed => "changed",
            NoteKind::Added => "added",
            NoteKind::Warning => "warning",
        }
    }
}

/// One finding; `line` is `None` for lines about a written file (`added`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Note {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub kind: NoteKind,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        write!(f, "{}: {}: {}", self.key, self.kind.text(), self.message)
    }
}

/// The findings of one run, without duplicates, in the order found.
#[derive(Debug, Default)]
pub struct Notes(pub Vec<Note>);

impl Notes {
    pub fn at(&mut self, loc: &Loc, key: &str, kind: NoteKind, message: impl Into<String>) {
        self.push(Note {
            file: loc.file.clone(),
            line: Some(loc.line),
            key: key.to_string(),
            kind,
            message: message.into(),
        });
    }

    pub fn added(&mut self, file: &str, key: &str, message: impl Into<String>) {
        self.push(Note {
            file: file.to_string(),
            line: None,
            key: key.to_string(),
            kind: NoteKind::Added,
            message: message.into(),
        });
    }

    fn push(&mut self, note: Note) {
        if !self.0.contains(&note) {
            self.0.push(note);
        }
    }
}

const NO_HELPERS: &str =
    "ha has no helper programs: the checks and the agent's actions are built in";
const NO_PID_FILE: &str =
    "ha-monitor and ha-agent run under systemd (Type=notify) and write no PID file";
const TOOLS: &str = "used only by mmm_backup, mmm_clone and mmm_restore, which ha does not replace";
const SOCKET: &str = "mysql-mmm's <socket> settings are not carried over: ha's mutual TLS uses \
     certificates whose identity (subject alternative name) is the host name or `monitor`, made \
     with `ha-control certs` (see the tls: sections written)";

/// Reports every setting of `cfg` that ha has no equivalent for, and the parser's warnings.
pub fn not_mapped(cfg: &MmmConfig, notes: &mut Notes) {
    for (key, v) in &cfg.globals.vars {
        let why = match key.as_str() {
            "debug" => "ha logs to stderr/journald; for debug logging set HA_LOG=debug in the unit's environment (ha runs in the foreground under systemd)",
            "default_copy_method" | "clone_dirs" => TOOLS,
            "blocking_type" | "iptables_block_cmd" | "iptables_unblock_cmd" => {
                "(mysql-mmm after 2.2.1) ha never blocks the MySQL port with iptables: a demoted writer gets read_only=1 and its client connections are killed, in-flight writes get up to max_kill_retries seconds"
            }
            _ => continue,
        };
        notes.at(&v.loc, key, NoteKind::NotMapped, why);
    }
    if let Some(m) = &cfg.monitor {
        for (key, v) in &m.vars {
            let why = match key.as_str() {
                "pid_path" => NO_PID_FILE,
                "bin_path" => NO_HELPERS,
                _ => continue,
            };
            notes.at(&v.loc, key, NoteKind::NotMapped, why);
        }
    }
    if let Some(s) = &cfg.socket {
        all_of(s, "<socket>", SOCKET, notes);
    }
    for h in &cfg.hosts {
        for (key, v) in &h.section.vars {
            let why = match key.as_str() {
                "pid_path" => NO_PID_FILE,
                "bin_path" => NO_HELPERS,
                "mysql_pidfile" | "mysql_rcscript" | "mysql_cnf" | "ssh_user" | "ssh_port"
                | "ssh_parameters" | "tools_user" | "tools_password" | "backup_dir"
                | "restore_dir" => TOOLS,
                k if k.starts_with("lvm_") => TOOLS,
                _ => continue,
            };
            notes.at(&v.loc, key, NoteKind::NotMapped, why);
        }
    }
    for c in &cfg.checks {
        if let Some(v) = c.section.get("restart_after") {
            notes.at(
                &v.loc,
                "restart_after",
                NoteKind::NotMapped,
                "it had no effect in mysql-mmm 2.2.1 (its counter never advanced, mmm-behaviour.md §10.19) and ha has no checker processes to recycle",
            );
        }
    }
    for c in &cfg.copy_methods {
        all_of(
            &c.section,
            &format!("<copy_method {}>", c.name),
            TOOLS,
            notes,
        );
    }
    for (loc, tag, what) in &cfg.warnings {
        notes.at(loc, tag, NoteKind::Warning, what.clone());
    }
}

/// Every variable of a section ha ignores as a whole; the tag itself when it is empty.
fn all_of(s: &Section, tag: &str, why: &str, notes: &mut Notes) {
    if s.vars.is_empty() {
        if let Some(loc) = &s.loc {
            notes.at(loc, tag, NoteKind::NotMapped, why);
        }
    }
    for (key, v) in &s.vars {
        notes.at(&v.loc, key, NoteKind::NotMapped, why);
    }
}
