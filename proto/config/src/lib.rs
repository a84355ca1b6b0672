//! ha's configuration files: `monitor.yaml` (monitor section, hosts, roles, checks, credentials)
//! and `agent.yaml` (one MySQL host's agent).
//!
//! Parsing is strict: unknown keys, missing keys and malformed values are errors, and every
//! semantic problem is reported on its own line naming the file, the field path and what is
//! wrong, e.g. `etc/monitor.yaml: roles.writer.ips: an exclusive role needs exactly one IP, found 2`.
//! Parsing never touches the network; reading the file is the only I/O ([`load_monitor`],
//! [`load_agent`]), so the same code validates `--check-config` runs and daemon start-up.
//!
//! Defaults are mysql-mmm's (docs/product.md §2). Durations are seconds and accept fractions
//! (`0.1` = 100 ms) so sub-second checks are possible.

mod agent;
mod control;
mod duration;
mod error;
mod monitor;
mod mysql_tls;
mod ordered;
mod tls;

pub use agent::{AgentConfig, MysqlEndpoint, ReplicationCredentials, MAX_KILL_RETRIES};
pub use control::ControlConfig;
pub use duration::Seconds;
pub use error::{ConfigError, ConfigErrors};
pub use monitor::{
    CheckConfig, Checks, Coordination, Credentials, EtcdCoordination, EtcdTls, HistoryConfig, Hook,
    Host, HostMode, MonitorConfig, MonitorMode, MonitorSection, Role, RoleMode, HOOK_QUEUE,
};
pub use mysql_tls::{MysqlTls, MysqlTlsMode};
pub use ordered::OrderedMap;
pub use tls::{valid_identity, AgentTls, ControlTls, MonitorTls, TlsMaterial, TlsSetting};

use std::path::Path;

/// Reads and validates a monitor configuration file.
pub fn load_monitor(path: &Path) -> Result<MonitorConfig, ConfigErrors> {
    let text = read(path)?;
    let cfg = MonitorConfig::parse(&text, &path.display().to_string())?;
    private_if_secret(path, !cfg.credentials.monitor_password.is_empty())?;
    Ok(cfg)
}

/// Reads and validates an ha-control configuration file (`control.yaml`).
pub fn load_control(path: &Path) -> Result<ControlConfig, ConfigErrors> {
    let text = read(path)?;
    ControlConfig::parse(&text, &path.display().to_string())
}

/// Reads and validates an agent configuration file.
pub fn load_agent(path: &Path) -> Result<AgentConfig, ConfigErrors> {
    let text = read(path)?;
    let cfg = AgentConfig::parse(&text, &path.display().to_string())?;
    private_if_secret(
        path,
        !cfg.mysql.password.is_empty() || !cfg.replication.password.is_empty(),
    )?;
    Ok(cfg)
}

/// A file that holds a password must not be readable by every user of the machine: the
/// daemons refuse it (as `--check-config` does) with the commands that fix it.
fn private_if_secret(path: &Path, holds_password: bool) -> Result<(), ConfigErrors> {
    use std::os::unix::fs::PermissionsExt;
    if !holds_password {
        return Ok(());
    }
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) => {
            return Err(ConfigErrors::single(
                path.display().to_string(),
                "",
                format!("cannot read its permissions: {e}"),
            ))
        }
    };
    if mode & 0o004 != 0 {
        return Err(ConfigErrors::single(
            path.display().to_string(),
            "",
            format!(
                "holds a password but every user can read it (mode {mode:04o}): run `chown root:ha {p} && chmod 0640 {p}`",
                p = path.display()
            ),
        ));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            path.display().to_string(),
            "",
            format!("cannot read the file: {e}"),
        )
    })
}

/// Deserializes `text` as YAML into `T`, turning the first syntax or type error into a
/// [`ConfigError`] that names the field path (`hosts.db1.ip`) where serde stopped.
fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigErrors> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let inner = err.into_inner().to_string();
        // serde_yaml prefixes its own (shorter) path, e.g. `hosts.db3: unknown field`; the
        // path above is the precise one, so drop the duplicate.
        let inner = match inner.split_once(": ") {
            Some((prefix, rest))
                if !prefix.contains(' ') && (path.starts_with(prefix) || prefix == ".") =>
            {
                rest.to_string()
            }
            _ => inner,
        };
        ConfigErrors::single(file, path, inner)
    })
}
