//! ha-control: the operator CLI of ha, a drop-in for mysql-mmm's `mmm_control`.
//!
//! The binary is a thin wrapper around [`run`], which turns a command line into an
//! [`Outcome`] (stdout, stderr, exit code). Keeping the whole behaviour behind one pure-ish
//! function lets unit tests cover usage errors without spawning processes, and lets the lab
//! tests reuse the renderers ([`render::render_show`], [`render::render_checks_with`]) as
//! golden expectations against a real monitor.
//!
//! Exit codes: [`EXIT_OK`] 0, [`EXIT_ERROR_REPLY`] 1, [`EXIT_USAGE`] 2,
//! [`EXIT_UNREACHABLE`] 3. mmm_control exited 0 even for `ERROR:` replies; ha-control does not,
//! so scripts can tell success from failure without parsing text.

pub mod certs;
pub mod cli;
pub mod client;
pub mod mmm;
pub mod render;
pub mod timefmt;

use std::ffi::OsString;

use ha_proto::{
    ChecksReply, CommandReply, ExplainReply, ExplainRequest, GetModeRequest, HistoryReply,
    HistoryRequest, HostRequest, Mode, ModeReply, MonitorPingRequest, MoveRoleRequest,
    SetIpRequest, SetModeRequest, ShowReply, ShowRequest,
};

use cli::{Cli, Command, Early};
use client::{CallError, Target};
use render::{json, ChecksQuery};

/// Success (including `OK: …` replies such as "already ONLINE. Skipping command.").
pub const EXIT_OK: i32 = 0;
/// The monitor answered with an `ERROR: …` reply (or refused the request).
pub const EXIT_ERROR_REPLY: i32 = 1;
/// The command line is wrong.
pub const EXIT_USAGE: i32 = 2;
/// The monitor could not be reached (no address, connection failed, no reply in time).
pub const EXIT_UNREACHABLE: i32 = 3;

/// mmm_control's first line when the monitor cannot be reached, kept verbatim.
pub const CANT_CONNECT: &str = "ERROR: Can't connect to monitor daemon!";

/// What one run prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Outcome {
    fn stdout(stdout: String, code: i32) -> Outcome {
        Outcome {
            stdout,
            stderr: String::new(),
            code,
        }
    }
}

/// Runs ha-control with `args` (including the program name, as in `std::env::args_os`).
pub fn run(args: Vec<OsString>) -> Outcome {
    let json_requested = cli::wants_json(&args);
    let cli = match cli::parse(&args) {
        Ok(cli) => cli,
        Err(Early::Info(text)) => return Outcome::stdout(text, EXIT_OK),
        Err(Early::Usage { message }) => {
            return if json_requested {
                let first = message.lines().next().unwrap_or_default();
                Outcome::stdout(json::to_text(&json::error(first)), EXIT_USAGE)
            } else {
                Outcome {
                    stdout: String::new(),
                    stderr: message,
                    code: EXIT_USAGE,
                }
            };
        }
    };
    match &cli.command {
        Command::Help => Outcome::stdout(
            if cli.json {
                json::to_text(&json::help())
            } else {
                render::terminal(render::help::HELP)
            },
            EXIT_OK,
        ),
        Command::GenerateCompletions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), "ha-control", &mut buf);
            Outcome::stdout(String::from_utf8_lossy(&buf).into_owned(), EXIT_OK)
        }
        Command::GenerateMan => match ha_proto::runtime::man_page(cli::command(), "1") {
            Ok(page) => Outcome::stdout(page, EXIT_OK),
            Err(e) => Outcome {
                stdout: String::new(),
                stderr: format!("cannot render the man page: {e}\n"),
                code: EXIT_ERROR_REPLY,
            },
        },
        Command::Certs { action } => certs::run(action, cli.json),
        Command::ImportMmm(args) => mmm::run(args, cli.json),
        _ => execute(&cli),
    }
}

/// A reply of the monitor, tagged with how to print it.
enum Reply {
    Show(ShowReply),
    Checks(ChecksReply, ChecksQuery),
    Explain(ExplainReply),
    History(HistoryReply),
    Command(CommandReply),
    Mode(ModeReply),
}

/// A failure before or instead of a reply.
enum Failure {
    /// An `ERROR: …` decided locally (unknown check) or a failed request: exit 1.
    Error(String),
    /// A usage problem found after parsing (bad `--monitor`): exit 2.
    Usage(String),
    /// No monitor to talk to: exit 3.
    Unreachable {
        address: Option<String>,
        cause: String,
    },
}

fn execute(cli: &Cli) -> Outcome {
    match request(cli) {
        Ok(reply) => print_reply(cli.json, &reply),
        Err(f) => print_failure(cli.json, f),
    }
}

/// ha-control's own configuration: `--control-config`, else `$HA_CONTROL_CONFIG`, else the
/// first of `~/.config/ha/control.yaml` and `/etc/ha/control.yaml` that exists; `None` when
/// there is none (plaintext, as with `tls: off`).
fn load_control_config(cli: &Cli) -> Result<Option<ha_config::ControlConfig>, Failure> {
    let explicit = cli.control_config.clone().or_else(|| {
        std::env::var_os("HA_CONTROL_CONFIG")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    });
    let path = match explicit {
        Some(p) => p,
        None => {
            let mut candidates = Vec::new();
            if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                candidates.push(std::path::PathBuf::from(home).join(".config/ha/control.yaml"));
            }
            candidates.push(std::path::PathBuf::from(cli::DEFAULT_CONTROL_CONFIG));
            match candidates.into_iter().find(|p| p.exists()) {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    ha_config::load_control(&path)
        .map(Some)
        .map_err(|e| Failure::Error(format!("ERROR: {e}")))
}

/// Validates what can be validated locally, finds the monitor, and makes the one call.
fn request(cli: &Cli) -> Result<Reply, Failure> {
    // Local validation first: no point reading config or connecting for an unknown check.
    let checks_query = match &cli.command {
        Command::Checks { host, check } => {
            Some(ChecksQuery::parse(host.as_deref(), check.as_deref()).map_err(Failure::Error)?)
        }
        _ => None,
    };

    let control = load_control_config(cli)?;
    let target = match (
        &cli.monitor,
        &cli.config,
        control.as_ref().and_then(|c| c.monitor.as_deref()),
    ) {
        (Some(addr), _, _) => Target::parse(addr).map_err(Failure::Usage)?,
        (None, None, Some(addr)) => Target::parse(addr).map_err(Failure::Usage)?,
        (None, config, _) => {
            let path = config.clone().unwrap_or_else(|| cli::DEFAULT_CONFIG.into());
            Target::from_config(&path).map_err(|errors| Failure::Unreachable {
                address: None,
                cause: format!(
                    "no monitor address: cannot load {} (give --config FILE or --monitor ADDR):\n{errors}",
                    path.display()
                ),
            })?
        }
    };
    let target = match control.as_ref().and_then(ha_config::ControlConfig::tls_on) {
        Some(t) => {
            let files = ha_tls::TlsFiles::of(t);
            let tls = ha_tls::client_config(&files, &t.monitor_identity)
                .map_err(|e| Failure::Error(format!("ERROR: {e}")))?;
            target.with_tls(tls)
        }
        None => target,
    };

    let timeout = cli.timeout();
    let t = &target;
    let result = match &cli.command {
        Command::Ping => client::call(t, timeout, MonitorPingRequest {}, |mut c, r| async move {
            c.ping(r).await
        })
        .map(Reply::Command),
        Command::Show => client::call(t, timeout, ShowRequest {}, |mut c, r| async move {
            c.show(r).await
        })
        .map(Reply::Show),
        Command::Checks { .. } => {
            let q = checks_query.unwrap_or(ChecksQuery {
                host: None,
                check: None,
            });
            let req = q.request();
            client::call(t, timeout, req, |mut c, r| async move { c.checks(r).await })
                .map(|r| Reply::Checks(r, q))
        }
        Command::Explain { role } => {
            let req = ExplainRequest {
                role: role.clone().unwrap_or_default(),
            };
            client::call(
                t,
                timeout,
                req,
                |mut c, r| async move { c.explain(r).await },
            )
            .map(Reply::Explain)
        }
        Command::History {
            since,
            host,
            kind,
            limit,
        } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let since_unix_ms = match since {
                Some(s) => render::history::parse_since(s, now).map_err(Failure::Error)?,
                None => 0,
            };
            let req = HistoryRequest {
                since_unix_ms,
                host: host.clone().unwrap_or_default(),
                kind: kind.clone().unwrap_or_default(),
                limit: *limit,
            };
            client::call(
                t,
                timeout,
                req,
                |mut c, r| async move { c.history(r).await },
            )
            .map(Reply::History)
        }
        Command::SetOnline { host } => {
            let req = HostRequest { host: host.clone() };
            client::call(
                t,
                timeout,
                req,
                |mut c, r| async move { c.set_online(r).await },
            )
            .map(Reply::Command)
        }
        Command::SetOffline { host } => {
            let req = HostRequest { host: host.clone() };
            client::call(
                t,
                timeout,
                req,
                |mut c, r| async move { c.set_offline(r).await },
            )
            .map(Reply::Command)
        }
        Command::Mode => client::call(t, timeout, GetModeRequest {}, |mut c, r| async move {
            c.get_mode(r).await
        })
        .map(Reply::Mode),
        Command::SetActive | Command::SetManual | Command::SetPassive => {
            let mode = match cli.command {
                Command::SetActive => Mode::Active,
                Command::SetManual => Mode::Manual,
                _ => Mode::Passive,
            };
            let req = SetModeRequest { mode: mode as i32 };
            client::call(
                t,
                timeout,
                req,
                |mut c, r| async move { c.set_mode(r).await },
            )
            .map(Reply::Command)
        }
        Command::MoveRole { force, role, host } => {
            let req = MoveRoleRequest {
                role: role.clone(),
                host: host.clone(),
                force: *force,
            };
            client::call(
                t,
                timeout,
                req,
                |mut c, r| async move { c.move_role(r).await },
            )
            .map(Reply::Command)
        }
        Command::SetIp { ip, host } => {
            let req = SetIpRequest {
                ip: ip.clone(),
                host: host.clone(),
            };
            client::call(t, timeout, req, |mut c, r| async move { c.set_ip(r).await })
                .map(Reply::Command)
        }
        // Handled in `run` without a monitor.
        Command::Help
        | Command::GenerateCompletions { .. }
        | Command::GenerateMan
        | Command::Certs { .. }
        | Command::ImportMmm(_) => {
            return Err(Failure::Usage(
                "internal: local command sent to the monitor".into(),
            ))
        }
    };
    result.map_err(|e| match e {
        CallError::Unreachable { address, cause } => Failure::Unreachable {
            address: Some(address),
            cause,
        },
        CallError::Failed(message) => Failure::Error(message),
    })
}

fn print_reply(as_json: bool, reply: &Reply) -> Outcome {
    let (text, code) = match reply {
        Reply::Show(r) => (
            if as_json {
                json::to_text(&json::show(r))
            } else {
                render::terminal(&render::render_show(r))
            },
            EXIT_OK,
        ),
        Reply::Checks(r, q) => {
            let code = if r.ok { EXIT_OK } else { EXIT_ERROR_REPLY };
            let text = match (as_json, r.ok) {
                (true, true) => json::to_text(&json::checks(r, q)),
                (true, false) => json::to_text(&json::error(r.message.clone())),
                (false, _) => render::terminal(&render::render_checks(r, q)),
            };
            (text, code)
        }
        Reply::Explain(r) => {
            let text = match (as_json, r.ok) {
                (true, true) => json::to_text(&render::explain::explain_json(r)),
                (true, false) => json::to_text(&json::error(r.message.clone())),
                (false, _) => render::terminal(&render::render_explain(r)),
            };
            (text, if r.ok { EXIT_OK } else { EXIT_ERROR_REPLY })
        }
        Reply::History(r) => {
            let text = match (as_json, r.ok) {
                (true, true) => json::to_text(&render::history::history_json(r)),
                (true, false) => json::to_text(&json::error(r.message.clone())),
                (false, true) => render::terminal(&render::history::render_history(r)),
                (false, false) => render::terminal(&r.message),
            };
            (text, if r.ok { EXIT_OK } else { EXIT_ERROR_REPLY })
        }
        Reply::Command(r) => (
            if as_json {
                json::to_text(&json::command(r))
            } else {
                render::terminal(&r.message)
            },
            if r.ok { EXIT_OK } else { EXIT_ERROR_REPLY },
        ),
        Reply::Mode(r) => (
            if as_json {
                json::to_text(&json::mode(r))
            } else {
                render::terminal(r.mode().mmm_name())
            },
            EXIT_OK,
        ),
    };
    Outcome::stdout(text, code)
}

fn print_failure(as_json: bool, failure: Failure) -> Outcome {
    match failure {
        Failure::Error(message) => Outcome::stdout(
            if as_json {
                json::to_text(&json::error(message))
            } else {
                render::terminal(&message)
            },
            EXIT_ERROR_REPLY,
        ),
        Failure::Usage(message) => {
            if as_json {
                Outcome::stdout(json::to_text(&json::error(message)), EXIT_USAGE)
            } else {
                Outcome {
                    stdout: String::new(),
                    stderr: format!("{message}\n"),
                    code: EXIT_USAGE,
                }
            }
        }
        Failure::Unreachable { address, cause } => {
            let text = if as_json {
                let mut e = json::error(CANT_CONNECT);
                e.address = address;
                e.cause = Some(cause);
                json::to_text(&e)
            } else {
                unreachable_text(address.as_deref(), &cause)
            };
            Outcome::stdout(text, EXIT_UNREACHABLE)
        }
    }
}

/// mmm's line, then `  (tried <addr>: <cause>)`; a multi-line cause (configuration errors)
/// continues indented by two spaces.
pub fn unreachable_text(address: Option<&str>, cause: &str) -> String {
    let detail = match address {
        Some(a) => format!("tried {a}: {cause}"),
        None => cause.to_string(),
    };
    let mut lines = detail.lines();
    let mut out = format!("{CANT_CONNECT}\n  ({}", lines.next().unwrap_or_default());
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        out.push_str(")\n");
    } else {
        out.push('\n');
        for l in rest {
            out.push_str(&format!("  {l}\n"));
        }
        // close the parenthesis on the last line
        out.pop();
        out.push_str(")\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_line(line: &str) -> Outcome {
        run(std::iter::once("ha-control")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect())
    }

    #[test]
    fn unreachable_text_forms() {
        assert_eq!(
            unreachable_text(Some("127.0.0.1:9988"), "connection refused"),
            "ERROR: Can't connect to monitor daemon!\n  (tried 127.0.0.1:9988: connection refused)\n"
        );
        assert_eq!(
            unreachable_text(None, "no monitor address: cannot load x:\nx: a\nx: b"),
            "ERROR: Can't connect to monitor daemon!\n  (no monitor address: cannot load x:\n  x: a\n  x: b)\n"
        );
    }

    #[test]
    fn help_needs_no_monitor() {
        let o = run_line("help --monitor 127.0.0.1:1");
        assert_eq!(o.code, EXIT_OK);
        assert_eq!(o.stdout, format!("{}\n", render::help::HELP));
    }

    #[test]
    fn usage_errors_go_to_stderr_or_json() {
        let o = run_line("set_online");
        assert_eq!(o.code, EXIT_USAGE);
        assert!(o.stdout.is_empty());
        assert!(o.stderr.starts_with("Invalid command 'set_online'\n\n"));

        let o = run_line("--json set_online");
        assert_eq!(o.code, EXIT_USAGE);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"], "Invalid command 'set_online'");
    }

    #[test]
    fn bad_monitor_address_is_usage() {
        let o = run_line("ping --monitor a:b:c:notport");
        assert_eq!(o.code, EXIT_USAGE, "{o:?}");
        assert!(o.stderr.contains("invalid monitor address"));
    }

    #[test]
    fn unknown_check_is_an_error_reply_without_network() {
        // port 1 on a TEST-NET address would time out if we tried to connect
        let o = run_line("checks db1 pong --monitor 192.0.2.1:1");
        assert_eq!(o.code, EXIT_ERROR_REPLY);
        assert_eq!(o.stdout, "ERROR: Unknown check 'pong'!\n");
    }

    #[test]
    fn missing_config_is_unreachable() {
        let o = run_line("ping --config /nonexistent/ha/monitor.yaml");
        assert_eq!(o.code, EXIT_UNREACHABLE);
        assert!(
            o.stdout.starts_with(
                "ERROR: Can't connect to monitor daemon!\n  (no monitor address: cannot load /nonexistent/ha/monitor.yaml"
            ),
            "{}",
            o.stdout
        );
    }
}
