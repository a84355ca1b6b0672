//! Command line: clap definitions (also the source of the completions and the man page) and
//! the translation of clap's errors into mmm_control's conventions.
//!
//! Commands keep mysql-mmm's names with underscores (`set_online`, `move_role`) and positional
//! arguments, so `ha-control checks db1 mysql` and `ha-control move_role --force writer db2`
//! work as operators type them for mmm_control. The global options may appear before or after
//! the command.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{error::ErrorKind, CommandFactory, Parser, Subcommand};

/// Where ha-control looks for the monitor address without `--config`/`--monitor`.
pub const DEFAULT_CONFIG: &str = "/etc/ha/monitor.yaml";

/// The system-wide ha-control configuration (operator certificate, monitor identity).
pub const DEFAULT_CONTROL_CONFIG: &str = "/etc/ha/control.yaml";

/// Default deadline of a whole call (connect + request): mmm_control's 10 s.
pub const DEFAULT_TIMEOUT_SECS: f64 = 10.0;

/// Operator CLI of ha: the commands of mysql-mmm's mmm_control, spoken over gRPC to ha-monitor.
#[derive(Debug, Parser)]
#[command(
    name = "ha-control",
    version,
    disable_help_subcommand = true,
    after_help = "Exit status: 0 ok, 1 ERROR reply, 2 usage error, 3 monitor unreachable."
)]
pub struct Cli {
    /// Monitor configuration to read the control address (monitor.ip, monitor.port) from
    /// [default: /etc/ha/monitor.yaml].
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Monitor control address (HOST[:PORT], default port 9988); the configuration is then
    /// not read. With redundant monitors any of them: a standby names the leader, and the
    /// command goes there.
    #[arg(
        short,
        long,
        global = true,
        value_name = "ADDR",
        conflicts_with = "config"
    )]
    pub monitor: Option<String>,

    /// ha-control's own configuration: the operator's TLS certificate and the monitor's
    /// identity [default: $HA_CONTROL_CONFIG, ~/.config/ha/control.yaml, /etc/ha/control.yaml,
    /// the first that exists].
    #[arg(long, global = true, value_name = "FILE")]
    pub control_config: Option<PathBuf>,

    /// Print a machine-readable JSON document instead of mmm's text (see JSON.md).
    #[arg(long, global = true)]
    pub json: bool,

    /// Deadline for connecting and getting the reply, in seconds (fractions allowed).
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        default_value_t = DEFAULT_TIMEOUT_SECS,
        value_parser = parse_timeout_secs
    )]
    pub timeout: f64,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    pub fn timeout(&self) -> Duration {
        // parse_timeout_secs already rejected anything Duration cannot hold.
        Duration::try_from_secs_f64(self.timeout)
            .unwrap_or(Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS))
    }
}

/// Accepts a finite positive number of seconds up to one day.
fn parse_timeout_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!("'{s}' must be more than 0 and at most 86400"))
    }
}

/// The mmm_control commands, plus two hidden helpers for packaging.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Show this message (mmm's command list).
    #[command(name = "help")]
    Help,
    /// Ping monitor.
    #[command(name = "ping")]
    Ping,
    /// Show status.
    #[command(name = "show")]
    Show,
    /// Show checks status: checks [<host>|all [<check>|all]].
    #[command(name = "checks")]
    Checks {
        /// Host name, or `all`.
        #[arg(value_name = "HOST")]
        host: Option<String>,
        /// ping, mysql, rep_threads, rep_backlog or `all`.
        #[arg(value_name = "CHECK")]
        check: Option<String>,
    },
    /// Set host <host> online.
    #[command(name = "set_online")]
    SetOnline {
        #[arg(value_name = "HOST")]
        host: String,
    },
    /// Set host <host> offline.
    #[command(name = "set_offline")]
    SetOffline {
        #[arg(value_name = "HOST")]
        host: String,
    },
    /// Print current mode.
    #[command(name = "mode")]
    Mode,
    /// Switch into active mode.
    #[command(name = "set_active")]
    SetActive,
    /// Switch into manual mode.
    #[command(name = "set_manual")]
    SetManual,
    /// Switch into passive mode.
    #[command(name = "set_passive")]
    SetPassive,
    /// Move exclusive role <role> to host <host>.
    #[command(name = "move_role")]
    MoveRole {
        /// Move the active-master role to a host in REPLICATION_FAIL/REPLICATION_DELAY, even
        /// when its relay-log sync fails (only use --force if you know what you are doing!).
        #[arg(long)]
        force: bool,
        #[arg(value_name = "ROLE")]
        role: String,
        #[arg(value_name = "HOST")]
        host: String,
    },
    /// Set role with ip <ip> to host <host> (PASSIVE mode only).
    #[command(name = "set_ip")]
    SetIp {
        #[arg(value_name = "IP")]
        ip: String,
        #[arg(value_name = "HOST")]
        host: String,
    },
    /// If a role's owner failed now: who would get the role, in order, and why every other
    /// host would not (all roles, or <role>'s).
    #[command(name = "explain")]
    Explain {
        /// Role name (for example writer); all roles when omitted.
        #[arg(value_name = "ROLE")]
        role: Option<String>,
    },
    /// The monitor's decision history, oldest first: state changes with their rule, role
    /// moves, promotions, fencing, mode changes, admin commands with the operator.
    #[command(name = "history")]
    History {
        /// Only events since a duration ago (90s, 10m, 2h, 7d) or a UTC time
        /// (2026-12-01T13:40:00Z).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only events about this host.
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Only events of this kind (state_change, role_move, promotion_started,
        /// promotion_done, promotion_failed, promotion_refused, fence_started, fence_done,
        /// fence_failed, mode_change, network_change, async_fallback_started,
        /// async_fallback_ended, admin_command).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// The newest N events.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: u32,
    },
    /// Create the cluster CA or issue certificates for mutual TLS (local, no monitor needed).
    #[command(
        name = "certs",
        subcommand_required = true,
        arg_required_else_help = true
    )]
    Certs {
        #[command(subcommand)]
        action: crate::certs::CertsCommand,
    },
    /// Convert mysql-mmm configuration files (mmm_common.conf, mmm_mon.conf, mmm_agent.conf)
    /// into monitor.yaml and agent-HOST.yaml (local, no monitor needed).
    #[command(name = "import-mmm")]
    ImportMmm(crate::mmm::ImportArgs),
    /// Print a shell completion script to stdout.
    #[command(name = "generate-completions", hide = true)]
    GenerateCompletions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    #[command(name = "generate-man", hide = true)]
    GenerateMan,
}

/// The clap command tree (for completions and the man page).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Why the command line did not produce a [`Cli`]: something to print and an exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Early {
    /// `--help` / `--version`: print to stdout, exit 0.
    Info(String),
    /// A usage error: the text (without JSON) and the offending command words.
    Usage { message: String },
}

/// Options that take a value, so the command words of a bad line can be recovered for
/// mmm's `Invalid command '<line>'`.
const VALUE_OPTIONS: [&str; 6] = [
    "--config",
    "-c",
    "--monitor",
    "-m",
    "--timeout",
    "--control-config",
];

/// The words of the command line minus ha-control's own options: what mmm_control would have
/// sent to the monitor.
pub fn command_words(args: &[OsString]) -> String {
    let mut words = Vec::new();
    let mut iter = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = iter.next() {
        if a == "--json"
            || VALUE_OPTIONS
                .iter()
                .any(|o| a.starts_with(&format!("{o}=")))
        {
            continue;
        }
        if VALUE_OPTIONS.contains(&a.as_ref()) {
            iter.next();
            continue;
        }
        words.push(a.into_owned());
    }
    words.join(" ")
}

/// True when `--json` is on the command line (looked up by hand for errors clap raises before
/// it could tell us).
pub fn wants_json(args: &[OsString]) -> bool {
    args.iter().skip(1).any(|a| a == "--json")
}

/// mmm's reply to a malformed command line: `Invalid command '<line>'`, a blank line, help.
pub fn invalid_command(line: &str) -> String {
    format!("Invalid command '{line}'\n\n{}", crate::render::help::HELP)
}

/// What mmm_control says when called without a command.
pub fn no_command() -> String {
    "See 'ha-control help' for usage information\n".to_string()
}

/// Parses the command line. Errors about the command and its arguments use mmm's wording;
/// errors about an option's value (`--timeout abc`) keep clap's more precise message.
pub fn parse(args: &[OsString]) -> Result<Cli, Early> {
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(cli),
        Err(e) => Err(match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                let mut text = e.render().to_string();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                Early::Info(text)
            }
            ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                if command_words(args).is_empty() =>
            {
                Early::Usage {
                    message: no_command(),
                }
            }
            ErrorKind::InvalidValue
            | ErrorKind::ValueValidation
            | ErrorKind::ArgumentConflict
            | ErrorKind::NoEquals
            | ErrorKind::InvalidUtf8 => Early::Usage {
                message: e.render().to_string(),
            },
            // `certs` and `import-mmm` are ours, not mmm's: clap's message says what is missing.
            _ if matches!(
                command_words(args).split_whitespace().next(),
                Some("certs" | "import-mmm")
            ) =>
            {
                Early::Usage {
                    message: e.render().to_string(),
                }
            }
            _ => Early::Usage {
                message: invalid_command(&command_words(args)),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        std::iter::once("ha-control")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn ok(line: &str) -> Cli {
        match parse(&args(line)) {
            Ok(c) => c,
            Err(e) => panic!("{line}: {e:?}"),
        }
    }

    fn usage(line: &str) -> String {
        match parse(&args(line)) {
            Err(Early::Usage { message }) => message,
            other => panic!("{line}: expected usage error, got {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn mmm_style_positionals() {
        assert_eq!(ok("help").command, Command::Help);
        assert_eq!(
            ok("checks db1 mysql").command,
            Command::Checks {
                host: Some("db1".into()),
                check: Some("mysql".into())
            }
        );
        assert_eq!(
            ok("checks").command,
            Command::Checks {
                host: None,
                check: None
            }
        );
        assert_eq!(
            ok("move_role --force writer db2").command,
            Command::MoveRole {
                force: true,
                role: "writer".into(),
                host: "db2".into()
            }
        );
        assert_eq!(
            ok("move_role writer db2").command,
            Command::MoveRole {
                force: false,
                role: "writer".into(),
                host: "db2".into()
            }
        );
        assert_eq!(
            ok("set_ip 10.0.0.160 db1").command,
            Command::SetIp {
                ip: "10.0.0.160".into(),
                host: "db1".into()
            }
        );
    }

    #[test]
    fn global_options_before_or_after_the_command() {
        let c = ok("--json --monitor 127.0.0.1:1 show");
        assert!(c.json);
        assert_eq!(c.monitor.as_deref(), Some("127.0.0.1:1"));
        let c = ok("show --json --timeout 0.5 -c /tmp/m.yaml");
        assert!(c.json);
        assert_eq!(c.timeout(), Duration::from_millis(500));
        assert_eq!(c.config, Some(PathBuf::from("/tmp/m.yaml")));
        assert_eq!(ok("ping").timeout(), Duration::from_secs(10));
    }

    #[test]
    fn wrong_arity_is_mmm_invalid_command() {
        for (line, words) in [
            ("set_online", "set_online"),
            ("set_online db1 db2", "set_online db1 db2"),
            ("--json checks a b c", "checks a b c"),
            ("move_role --force writer", "move_role --force writer"),
            ("frobnicate db1", "frobnicate db1"),
            ("--timeout 3 ping now", "ping now"),
        ] {
            let m = usage(line);
            assert!(
                m.starts_with(&format!(
                    "Invalid command '{words}'\n\nValid commands are:\n"
                )),
                "{line}: {m}"
            );
        }
    }

    #[test]
    fn no_command_is_mmm_see_help() {
        assert_eq!(usage(""), "See 'ha-control help' for usage information\n");
        assert_eq!(
            usage("--json"),
            "See 'ha-control help' for usage information\n"
        );
    }

    #[test]
    fn bad_option_values_keep_clap_messages() {
        assert!(usage("--timeout abc ping").contains("'abc' is not a number of seconds"));
        assert!(usage("--timeout 0 ping").contains("must be more than 0"));
        assert!(usage("--config a --monitor b ping").contains("cannot be used with"));
    }

    #[test]
    fn version_and_help_are_info() {
        match parse(&args("--version")) {
            Err(Early::Info(s)) => {
                assert_eq!(s, format!("ha-control {}\n", env!("CARGO_PKG_VERSION")))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(&args("--help")), Err(Early::Info(_))));
    }

    #[test]
    fn hidden_helpers_parse() {
        assert_eq!(
            ok("generate-completions bash").command,
            Command::GenerateCompletions {
                shell: clap_complete::Shell::Bash
            }
        );
        assert_eq!(ok("generate-man").command, Command::GenerateMan);
    }

    #[test]
    fn certs_parse() {
        use crate::certs::CertsCommand;
        assert_eq!(
            ok("certs ca --dir /etc/ha/tls").command,
            Command::Certs {
                action: CertsCommand::Ca {
                    dir: "/etc/ha/tls".into(),
                    name: ha_tls::certs::DEFAULT_CA_NAME.into(),
                    days: 3650
                }
            }
        );
        assert_eq!(
            ok("certs issue --dir d db1 db2 --ip 10.0.0.1 --ip ::1 --days 30").command,
            Command::Certs {
                action: CertsCommand::Issue {
                    dir: "d".into(),
                    identities: vec!["db1".into(), "db2".into()],
                    ips: vec![
                        std::net::Ipv4Addr::new(10, 0, 0, 1).into(),
                        std::net::Ipv6Addr::LOCALHOST.into()
                    ],
                    days: 30
                }
            }
        );
        let m = usage("certs issue --dir d");
        assert!(!m.starts_with("Invalid command"), "{m}");
        assert!(m.contains("<IDENTITY>"), "{m}");
    }

    #[test]
    fn command_words_strip_our_options() {
        assert_eq!(
            command_words(&args(
                "--config=/x --json -m h:1 set_online db1 --timeout 2"
            )),
            "set_online db1"
        );
    }
}
