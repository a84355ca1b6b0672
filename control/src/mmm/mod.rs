//! `ha-control import-mmm`: converts mysql-mmm 2.2.1 configuration files into ha's
//! `monitor.yaml` and one `agent-<host>.yaml` per host (docs/migrating-from-mmm.md). Local: no
//! monitor is contacted.
//!
//! * [`parse`] reads mmm's format (includes, sections, templates) keeping file and line;
//! * `monitor` and `agent` map the settings, `values` reads typed values, `yaml` writes the text;
//! * `notes` collects the `not mapped` / `changed` / `added` lines.
//!
//! Everything is converted and checked with ha's own validation (`MonitorConfig::parse`,
//! `AgentConfig::parse`) before the first file is written, so either every file is written or
//! none. Files are written with mode 0640 (they hold passwords).
//!
//! Output: the notes on stdout, sorted by file and line, then `wrote FILE (mode 0640)` per file,
//! exit 0. A problem (malformed file, a value ha cannot take) prints `ERROR: FILE:LINE: WHAT` on
//! stderr per problem and exits 1; `--json` puts all of it in one document on stdout.

pub mod agent;
pub mod monitor;
pub mod notes;
pub mod parse;
mod rules;
pub mod values;
pub mod yaml;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::render::json;
use crate::{Outcome, EXIT_ERROR_REPLY, EXIT_OK};
use notes::{Note, NoteKind, Notes};
use parse::{MmmConfig, Problem, Reader};
use values::Problems;

/// Mode of the files written: they hold passwords (ha refuses world-readable ones).
pub const FILE_MODE: u32 = 0o640;

/// `--agent [HOST=]FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFile {
    /// The host; `None`: the file's `this` names it.
    pub host: Option<String>,
    pub path: PathBuf,
}

fn parse_agent_file(s: &str) -> Result<AgentFile, String> {
    let named = s.split_once('=').filter(|(h, _)| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    let (host, path) = match named {
        Some((h, p)) => (Some(h.to_string()), p),
        None => (None, s),
    };
    if path.is_empty() {
        return Err("expected HOST=FILE or FILE".into());
    }
    Ok(AgentFile {
        host,
        path: PathBuf::from(path),
    })
}

fn parse_identity(s: &str) -> Result<String, String> {
    if ha_config::valid_identity(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "'{s}' is not a certificate identity (a DNS name: letters, digits, '-' and '.')"
        ))
    }
}

/// The arguments of `import-mmm`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ImportArgs {
    /// mmm_common.conf, read before --mon as if included at its top (not needed when
    /// mmm_mon.conf includes it; reading it twice changes nothing).
    #[arg(long, value_name = "FILE")]
    pub common: Option<PathBuf>,
    /// mmm_mon.conf, the monitor's configuration (its includes are followed, relative to it).
    #[arg(long, value_name = "FILE")]
    pub mon: PathBuf,
    /// A host's mmm_agent.conf (repeatable): HOST=FILE, or FILE whose `this` names the host.
    /// Hosts without one take their agent settings from the monitor's files.
    #[arg(long = "agent", value_name = "[HOST=]FILE", value_parser = parse_agent_file)]
    pub agents: Vec<AgentFile>,
    /// Directory for monitor.yaml and agent-HOST.yaml (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Operator identity allowed every ha-control command (tls.admins; repeatable).
    #[arg(long = "admin", value_name = "IDENTITY", value_parser = parse_identity)]
    pub admins: Vec<String>,
    /// Replace files already in DIR.
    #[arg(long)]
    pub force: bool,
}

/// A converted file, ready to be written.
struct Output {
    path: PathBuf,
    text: String,
}

/// Reads one program's view: `common` first (if given), then `file`, then mmm's templates.
fn read_view(common: Option<&Path>, file: &Path) -> Result<MmmConfig, Problem> {
    let mut r = Reader::new();
    if let Some(c) = common {
        r.read(c)?;
    }
    r.read(file)?;
    r.config.finish();
    Ok(r.config)
}

/// Converts everything in memory; the files to write and the notes, or every problem found.
fn convert(args: &ImportArgs) -> Result<(Vec<Output>, Vec<Note>), Vec<Problem>> {
    let common = args.common.as_deref();
    let mon_file = args.mon.display().to_string();
    let mon = read_view(common, &args.mon).map_err(|p| vec![p])?;
    let mut views: Vec<(String, MmmConfig, String)> = Vec::new();
    let mut problems = Problems::default();
    for a in &args.agents {
        let file = a.path.display().to_string();
        let cfg = read_view(common, &a.path).map_err(|p| vec![p])?;
        let host = match (&a.host, cfg.globals.get("this")) {
            (Some(h), _) => h.clone(),
            (None, Some(v)) => v.text.clone(),
            (None, None) => {
                problems.push(Problem::in_file(
                    &file,
                    "this: missing: give --agent HOST=FILE or set `this` in the file",
                ));
                continue;
            }
        };
        if mon.host(&host).is_none() {
            problems.push(Problem::in_file(
                &file,
                format!("host '{host}' is not a host of {mon_file}"),
            ));
        } else if views.iter().any(|(h, _, _)| *h == host) {
            problems.push(Problem::in_file(
                &file,
                format!("a second mmm_agent.conf for host '{host}'"),
            ));
        }
        views.push((host, cfg, file));
    }

    let mut notes = Notes::default();
    notes::not_mapped(&mon, &mut notes);
    for (_, cfg, _) in &views {
        notes::not_mapped(cfg, &mut notes);
    }
    let out_name = |name: &str| args.out.join(name).display().to_string();
    let monitor_out = out_name("monitor.yaml");
    let converted = monitor::convert(
        &mon,
        &mon_file,
        &monitor_out,
        &args.admins,
        &mut notes,
        &mut problems,
    );
    let Some((cluster, monitor_text)) = converted else {
        return Err(problems.0);
    };
    let mut outputs = vec![Output {
        path: args.out.join("monitor.yaml"),
        text: monitor_text,
    }];
    let mut accounts = agent::Accounts::default();
    for h in &cluster.hosts {
        let own = views.iter().find(|(host, _, _)| *host == h.name);
        let view = match own {
            Some((host, cfg, file)) => agent::AgentView {
                host,
                config: cfg,
                file,
                own: true,
            },
            None => agent::AgentView {
                host: &h.name,
                config: &mon,
                file: &mon_file,
                own: false,
            },
        };
        let name = format!("agent-{}.yaml", h.name);
        let out = out_name(&name);
        if let Some(text) = agent::convert(
            &view,
            &cluster,
            &out,
            &mut accounts,
            &mut notes,
            &mut problems,
        ) {
            outputs.push(Output {
                path: args.out.join(&name),
                text,
            });
            let roles: Vec<&str> = cluster
                .roles
                .iter()
                .filter(|r| r.hosts.contains(&h.name))
                .map(|r| r.name.as_str())
                .collect();
            let roles = if roles.is_empty() {
                "none".to_string()
            } else {
                roles.join(", ")
            };
            notes.added(
                &out,
                "role_ips, cluster_hosts",
                format!("derived from the roles listing {} ({roles}) and from the hosts' ip and mysql_port; keep them in step with monitor.yaml", h.name),
            );
        }
    }
    agent::differing_accounts(&accounts, &mut notes);
    let agents = out_name("agent-*.yaml");
    notes.added(
        &agents,
        "tls",
        format!("mutual TLS: each agent presents {}/HOST.crt (identity: its host name) and obeys only the identity `monitor`", monitor::TLS_DIR),
    );
    notes.added(
        &agents,
        "spare_users",
        "monitor_user, so that demoting a writer never kills the checks' connections (the account must not be able to write)",
    );
    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    if !args.force {
        let existing: Vec<Problem> = outputs
            .iter()
            .filter(|o| o.path.exists())
            .map(|o| {
                Problem::in_file(
                    &o.path.display().to_string(),
                    "exists already (give --force to replace it)",
                )
            })
            .collect();
        if !existing.is_empty() {
            return Err(existing);
        }
    }
    let mut notes = notes.0;
    notes.sort_by(|a, b| {
        (a.kind == NoteKind::Added, &a.file, a.line).cmp(&(
            b.kind == NoteKind::Added,
            &b.file,
            b.line,
        ))
    });
    Ok((outputs, notes))
}

fn write_all(dir: &Path, outputs: &[Output], written: &mut Vec<String>) -> Result<(), Problem> {
    let dir_name = dir.display().to_string();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|e| Problem::in_file(&dir_name, format!("cannot create the directory: {e}")))?;
    for o in outputs {
        let name = o.path.display().to_string();
        ha_tls::certs::write_atomic(&o.path, o.text.as_bytes(), FILE_MODE)
            .map_err(|e| Problem::in_file(&name, format!("cannot write: {e}")))?;
        written.push(name);
    }
    Ok(())
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct ImportJson {
    ok: bool,
    error: Option<String>,
    notes: Vec<Note>,
    files: Vec<FileJson>,
}

#[derive(Debug, Serialize)]
struct FileJson {
    path: String,
    mode: String,
}

/// Runs `import-mmm`.
pub fn run(args: &ImportArgs, as_json: bool) -> Outcome {
    let mut written = Vec::new();
    let (notes, problems) = match convert(args) {
        Ok((outputs, notes)) => match write_all(&args.out, &outputs, &mut written) {
            Ok(()) => (notes, Vec::new()),
            Err(p) => (notes, vec![p]),
        },
        Err(problems) => (Vec::new(), problems),
    };
    let code = if problems.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR_REPLY
    };
    if as_json {
        let doc = ImportJson {
            ok: problems.is_empty(),
            error: (!problems.is_empty()).then(|| {
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            notes,
            files: written
                .iter()
                .map(|p| FileJson {
                    path: p.clone(),
                    mode: format!("{FILE_MODE:04o}"),
                })
                .collect(),
        };
        return Outcome {
            stdout: json::to_text(&doc),
            stderr: String::new(),
            code,
        };
    }
    let mut stdout: String = notes.iter().map(|n| format!("{n}\n")).collect();
    for w in &written {
        stdout.push_str(&format!("wrote {w} (mode {FILE_MODE:04o})\n"));
    }
    Outcome {
        stdout,
        stderr: problems.iter().map(|p| format!("ERROR: {p}\n")).collect(),
        code,
    }
}

#[cfg(test)]
mod tests;
