//! `ha-lab`: thin command-line front of the lab (used by `tests/demo.sh`).
//!
//! * `ha-lab up [--hosts N] [--prefix P] [--agent-bin B] [--monitor-bin B]` brings a lab up and
//!   leaves it running (state in `/run/ha-lab/<prefix>.json`), optionally with ha-agent in
//!   every DB namespace and ha-monitor in the monitor namespace.
//! * `ha-lab down --prefix P` tears one lab down; `ha-lab down --all` every kept lab.
//! * `ha-lab cleanup [--prefix P] [--all]` removes stale leftovers (labs whose owner process is
//!   gone and that were not kept); `--prefix` removes that lab whatever its state; `--all`
//!   removes every lab, running ones included.
//! * `ha-lab status [--prefix P]` prints the state of one or all labs as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ha_lab::{cleanup, Cmd, Lab, LabOptions};

#[derive(Parser)]
#[command(
    name = "ha-lab",
    version,
    about = "MariaDB lab in network namespaces for ha"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring a lab up and keep it running.
    Up {
        /// Number of MariaDB hosts.
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        /// Lab prefix (`hl` + 4 of [0-9a-z]).
        #[arg(long, default_value = "hldemo")]
        prefix: String,
        /// Subnet `10.A.B.0/24` as `A.B`.
        #[arg(long)]
        subnet: Option<String>,
        /// Start this ha-agent binary in every DB namespace.
        #[arg(long)]
        agent_bin: Option<PathBuf>,
        /// Start this ha-monitor binary in the monitor namespace.
        #[arg(long)]
        monitor_bin: Option<PathBuf>,
        /// Only write the daemon configs (to the lab directory), start no daemon.
        #[arg(long)]
        configs_only: bool,
    },
    /// Tear a kept lab down.
    Down {
        #[arg(long, default_value = "hldemo")]
        prefix: String,
        /// Every kept lab.
        #[arg(long)]
        all: bool,
    },
    /// Remove stale leftovers of earlier runs.
    Cleanup {
        /// This lab, whatever its state.
        #[arg(long)]
        prefix: Option<String>,
        /// Every lab, including running and kept ones.
        #[arg(long)]
        all: bool,
    },
    /// Print lab state as JSON.
    Status {
        #[arg(long)]
        prefix: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ha-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A daemon binary is usable when `--version` prints a version and `--check-config` accepts
/// the lab's generated configuration (both bounded). The reason otherwise.
fn daemon_usable(bin: &Path, cfg: &Path) -> Result<(), String> {
    let bin_s = bin.display().to_string();
    if !bin.is_file() {
        return Err(format!("{bin_s} does not exist (not built?)"));
    }
    let v = Cmd::new(&bin_s)
        .arg("--version")
        .timeout(Duration::from_secs(10))
        .output()
        .map_err(|e| e.to_string())?;
    if !v.success() || !v.stdout.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{bin_s} --version` prints no version (still a stub?): {}{}",
            v.stdout.trim(),
            v.stderr.trim()
        ));
    }
    let c = Cmd::new(&bin_s)
        .arg("--check-config")
        .arg(cfg.display().to_string())
        .timeout(Duration::from_secs(10))
        .output()
        .map_err(|e| e.to_string())?;
    if !c.success() {
        return Err(format!(
            "`{bin_s} --check-config {}` rejects the lab configuration: {}{}",
            cfg.display(),
            c.stdout.trim(),
            c.stderr.trim()
        ));
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Command::Up {
            hosts,
            prefix,
            subnet,
            agent_bin,
            monitor_bin,
            configs_only,
        } => {
            let subnet = match subnet {
                Some(s) => {
                    let (a, b) = s
                        .split_once('.')
                        .ok_or_else(|| anyhow::anyhow!("--subnet wants A.B, got {s}"))?;
                    Some((a.parse()?, b.parse()?))
                }
                None => None,
            };
            let t0 = std::time::Instant::now();
            let lab = Lab::start(LabOptions {
                db_hosts: hosts,
                prefix: Some(prefix),
                subnet,
                ..Default::default()
            })?;
            eprintln!(
                "ha-lab: lab {} ({}) up in {:.1?}",
                lab.prefix(),
                lab.subnet_cidr(),
                t0.elapsed()
            );
            for h in lab.hosts() {
                let p = lab.write_agent_config(&h.name)?;
                eprintln!("ha-lab: agent config for {}: {}", h.name, p.display());
            }
            let p = lab.write_monitor_config(&[])?;
            eprintln!("ha-lab: monitor config: {}", p.display());
            let p = lab.control_config(ha_lab::tls::OPERATOR, false)?;
            eprintln!(
                "ha-lab: ha-control config (operator certificate, TLS): {}",
                p.display()
            );
            if !configs_only {
                if let Some(bin) = &agent_bin {
                    for h in lab.hosts() {
                        let cfg = lab.write_agent_config(&h.name)?;
                        match daemon_usable(bin, &cfg) {
                            Ok(()) => {
                                let p = lab.start_agent(&h.name, bin)?;
                                eprintln!(
                                    "ha-lab: ha-agent on {} pid {:?}, log {}",
                                    h.name,
                                    p.pid(),
                                    p.log_path().display()
                                );
                            }
                            Err(why) => {
                                eprintln!("ha-lab: NOT starting ha-agent on {}: {why}", h.name)
                            }
                        }
                    }
                }
                if let Some(bin) = &monitor_bin {
                    let cfg = lab.write_monitor_config(&[])?;
                    match daemon_usable(bin, &cfg) {
                        Ok(()) => {
                            let p = lab.start_monitor(bin, &[])?;
                            eprintln!(
                                "ha-lab: ha-monitor pid {:?}, log {}",
                                p.pid(),
                                p.log_path().display()
                            );
                        }
                        Err(why) => eprintln!("ha-lab: NOT starting ha-monitor: {why}"),
                    }
                }
            }
            let st = lab.keep()?;
            println!("{}", serde_json::to_string_pretty(&st)?);
        }
        Command::Down { prefix, all } => {
            let prefixes = if all {
                cleanup::known_prefixes()?
                    .into_iter()
                    .filter(|p| {
                        cleanup::read_state(p)
                            .ok()
                            .flatten()
                            .is_some_and(|s| s.kept)
                    })
                    .collect()
            } else {
                vec![prefix]
            };
            for p in prefixes {
                let r = cleanup::teardown(&p)?;
                eprintln!(
                    "ha-lab: {p} down ({} processes killed, {} namespaces, {} links removed)",
                    r.killed.len(),
                    r.namespaces.len(),
                    r.links.len()
                );
            }
        }
        Command::Cleanup { prefix, all } => {
            let removed = match (prefix, all) {
                (Some(p), _) => {
                    cleanup::teardown(&p)?;
                    vec![p]
                }
                (None, true) => {
                    let ps = cleanup::known_prefixes()?;
                    for p in &ps {
                        cleanup::teardown(p)?;
                    }
                    ps
                }
                (None, false) => cleanup::remove_stale()?,
            };
            if removed.is_empty() {
                eprintln!("ha-lab: nothing to clean up");
            } else {
                eprintln!("ha-lab: removed {}", removed.join(", "));
            }
        }
        Command::Status { prefix } => {
            let prefixes = match prefix {
                Some(p) => vec![p],
                None => cleanup::known_prefixes()?,
            };
            let mut all = Vec::new();
            for p in prefixes {
                match cleanup::read_state(&p)? {
                    Some(s) => all.push(serde_json::to_value(&s)?),
                    None => all.push(
                        serde_json::json!({ "prefix": p, "state": "leftover without state file" }),
                    ),
                }
            }
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
    }
    Ok(())
}
