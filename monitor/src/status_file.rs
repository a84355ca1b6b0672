//! The status file: what the monitor must remember across restarts (states, roles, flapping
//! data, epoch), written atomically.
//!
//! Write: temp file in the same directory → write → fsync → rename over the target → fsync
//! the directory, so a crash at any point leaves either the old or the new file, never a torn
//! one. Read: a missing file is normal on first start; a corrupt or foreign file is reported
//! clearly and the caller falls back to startup voting — never a crash (docs/mmm-behaviour.md §10.23).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Marks our files so that a file of another program at the same path is not misread.
const FORMAT: &str = "ha-monitor-status";
/// Version 2 added what a restart must not lose: per host the state timers, the uptime rule A3
/// needs, failed promotions and writer exposure. Version 1 files still load (those fields take
/// their defaults; an unknown exposure is treated as "may be writable").
const VERSION: u32 = 2;
const OLDEST_READABLE: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    format: String,
    version: u32,
    saved_at_unix_ms: u64,
    state: T,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusFileError {
    #[error("cannot read status file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("status file {path} is corrupt ({reason}); starting without stored status")]
    Corrupt { path: PathBuf, reason: String },
    #[error("status file {path} is not an ha-monitor status file (format {found:?}); starting without stored status")]
    Foreign { path: PathBuf, found: String },
    #[error("status file {path} has version {found}, this monitor reads versions {OLDEST_READABLE} to {VERSION}; starting without stored status")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write status file {path}: {step}: {source}")]
    Write {
        path: PathBuf,
        step: &'static str,
        source: std::io::Error,
    },
}

/// Loads the stored state. `Ok(None)` when there is no file yet.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StatusFileError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StatusFileError::Read {
                path: path.into(),
                source,
            })
        }
    };
    decode(&text, path).map(Some)
}

/// Decodes a stored state (the status file's text, or the same document kept in etcd, named
/// by `path` in errors).
pub fn decode<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, StatusFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StatusFileError::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        })?;
    let format = value
        .get("format")
        .and_then(|f| f.as_str())
        .unwrap_or_default()
        .to_string();
    if format != FORMAT {
        return Err(StatusFileError::Foreign {
            path: path.into(),
            found: format,
        });
    }
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if !(OLDEST_READABLE..=VERSION).contains(&version) {
        return Err(StatusFileError::Version {
            path: path.into(),
            found: version,
        });
    }
    let env: Envelope<T> = serde_json::from_value(value).map_err(|e| StatusFileError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })?;
    Ok(env.state)
}

/// The stored document for `state`: the status file's contents, also what etcd keeps.
pub fn encode<T: Serialize>(state: &T, now_unix_ms: u64) -> Result<Vec<u8>, std::io::Error> {
    let env = Envelope {
        format: FORMAT.to_string(),
        version: VERSION,
        saved_at_unix_ms: now_unix_ms,
        state,
    };
    serde_json::to_vec_pretty(&env).map_err(std::io::Error::other)
}

/// Writes `state` atomically (temp file, fsync, rename, fsync of the directory).
pub fn save<T: Serialize>(path: &Path, state: &T, now_unix_ms: u64) -> Result<(), StatusFileError> {
    let err = |step: &'static str| {
        move |source: std::io::Error| StatusFileError::Write {
            path: path.into(),
            step,
            source,
        }
    };
    let body = encode(state, now_unix_ms).map_err(|e| err("serialise")(e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "status".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(err("create temporary file"))?;
        f.write_all(&body).map_err(err("write temporary file"))?;
        f.write_all(b"\n").map_err(err("write temporary file"))?;
        f.sync_all().map_err(err("fsync temporary file"))?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err("rename over the status file")(e));
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(err("fsync the directory"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct S {
        epoch: u64,
        hosts: Vec<String>,
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("status.json");
        assert!(load::<S>(&p).expect("missing is fine").is_none());
        let s = S {
            epoch: 7,
            hosts: vec!["db1".into()],
        };
        save(&p, &s, 1).expect("save");
        assert_eq!(load::<S>(&p).expect("load"), Some(s));
        // no temporary file left behind
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn corrupt_and_foreign_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("status.json");
        fs::write(&p, "{ truncated").expect("write");
        let e = load::<S>(&p).expect_err("corrupt");
        assert!(e.to_string().contains("is corrupt"), "{e}");
        fs::write(&p, "db1|ONLINE|writer(10.0.0.1)\n").expect("write");
        assert!(matches!(
            load::<S>(&p),
            Err(StatusFileError::Corrupt { .. })
        ));
        fs::write(&p, r#"{"format":"something-else","version":1}"#).expect("write");
        let e = load::<S>(&p).expect_err("foreign");
        assert!(
            e.to_string().contains("not an ha-monitor status file"),
            "{e}"
        );
        fs::write(&p, r#"{"format":"ha-monitor-status","version":1,"saved_at_unix_ms":1,"state":{"epoch":"x"}}"#)
            .expect("write");
        assert!(matches!(
            load::<S>(&p),
            Err(StatusFileError::Corrupt { .. })
        ));
    }
}
