//! The decision history: an append-only JSON-lines file of [`Record`]s, two generations.
//!
//! Durability follows the status file's rules: every batch is written and `fdatasync`ed before
//! the main loop goes on, a crash can at most tear the last line (the reader skips it), and the
//! file is bounded: when a generation reaches `max_size_kib` it becomes `<path>.1` (replacing
//! the older one) and a new one starts.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ha_core::Event;
use serde::{Deserialize, Serialize};

/// One history entry: an event, when the monitor recorded it, and who asked (admin commands).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Wall-clock time of the recording (for people; decisions never compare it).
    pub time_unix_ms: i64,
    #[serde(flatten)]
    pub event: Event,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// The writer side of the history file.
pub struct History {
    path: PathBuf,
    max_bytes: u64,
    size: u64,
    /// The file ends in a torn line (a crash mid-write): start the next write on a new line.
    torn: bool,
}

impl History {
    pub fn new(path: PathBuf, max_size_kib: u64) -> History {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let torn = size > 0 && !ends_with_newline(&path);
        History {
            path,
            max_bytes: max_size_kib.saturating_mul(1024),
            size,
            torn,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `records` and syncs them to disk.
    pub fn append<R: std::borrow::Borrow<Record>>(&mut self, records: &[R]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        if self.size >= self.max_bytes {
            self.rotate()?;
        }
        let mut text = String::new();
        if std::mem::take(&mut self.torn) {
            text.push('\n');
        }
        for r in records {
            let line = serde_json::to_string(r.borrow())
                .map_err(|e| format!("cannot encode a history record: {e}"))?;
            text.push_str(&line);
            text.push('\n');
        }
        let what = |e: std::io::Error| format!("cannot append to {}: {e}", self.path.display());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&self.path)
            .map_err(what)?;
        f.write_all(text.as_bytes()).map_err(what)?;
        f.sync_data().map_err(what)?;
        self.size += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), String> {
        let old = older_generation(&self.path);
        std::fs::rename(&self.path, &old).map_err(|e| {
            format!(
                "cannot rotate {} to {}: {e}",
                self.path.display(),
                old.display()
            )
        })?;
        if let Some(dir) = self.path.parent() {
            // The rename is only durable once the directory is synced.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.size = 0;
        Ok(())
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)
        })
        .is_ok_and(|()| last[0] == b'\n')
}

fn older_generation(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".1");
    PathBuf::from(s)
}

/// Which records `read` returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub since_unix_ms: Option<i64>,
    pub host: Option<String>,
    pub kind: Option<String>,
    /// The newest `limit` matching records (0: all).
    pub limit: usize,
}

impl Filter {
    fn matches(&self, r: &Record) -> bool {
        self.since_unix_ms.is_none_or(|t| r.time_unix_ms >= t)
            && self.host.as_ref().is_none_or(|h| {
                r.event.host.as_ref() == Some(h)
                    || r.event.from.as_ref() == Some(h)
                    || r.event.to.as_ref() == Some(h)
            })
            && self
                .kind
                .as_ref()
                .is_none_or(|k| r.event.kind.name() == k.as_str())
    }
}

/// The matching records of both generations, oldest first; lines that do not parse (a torn
/// last line after a crash) are skipped and counted.
pub fn read(path: &Path, filter: &Filter) -> Result<(Vec<Record>, usize), String> {
    let mut out = Vec::new();
    let mut skipped = 0;
    for p in [older_generation(path), path.to_path_buf()] {
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
        };
        for line in BufReader::new(f).lines() {
            let line = line.map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            match serde_json::from_str::<Record>(&line) {
                Ok(r) if filter.matches(&r) => out.push(r),
                Ok(_) => {}
                Err(_) => skipped += 1,
            }
        }
    }
    if filter.limit > 0 && out.len() > filter.limit {
        out.drain(..out.len() - filter.limit);
    }
    Ok((out, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_core::EventKind;

    fn rec(t: i64, host: &str) -> Record {
        Record {
            time_unix_ms: t,
            event: Event::new(EventKind::StateChange, format!("event {t}")).host(host),
            operator: None,
        }
    }

    #[test]
    fn appends_rotates_and_reads_both_generations_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let mut h = History::new(path.clone(), 1);
        for t in 0..40 {
            h.append(&[rec(t, if t % 2 == 0 { "db1" } else { "db2" })])
                .expect("append");
        }
        assert!(older_generation(&path).exists(), "rotated at 1 KiB");
        let total = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(older_generation(&path))
                .map(|m| m.len())
                .unwrap_or(0);
        assert!(total < 3 * 1024, "bounded: {total} bytes");
        let (all, skipped) = read(&path, &Filter::default()).expect("read");
        assert_eq!(skipped, 0);
        let times: Vec<i64> = all.iter().map(|r| r.time_unix_ms).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "oldest first");
        assert_eq!(times.last(), Some(&39));
        assert!(times.len() < 40, "the oldest generation was dropped");
        let f = Filter {
            host: Some("db1".into()),
            since_unix_ms: Some(30),
            limit: 2,
            ..Default::default()
        };
        let (some, _) = read(&path, &f).expect("read");
        let times: Vec<i64> = some.iter().map(|r| r.time_unix_ms).collect();
        assert_eq!(times, vec![36, 38]);
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.jsonl");
        let mut h = History::new(path.clone(), 64);
        h.append(&[rec(1, "db1")]).expect("append");
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"time_unix_ms\":2,\"ki").expect("write");
        let (all, skipped) = read(&path, &Filter::default()).expect("read");
        assert_eq!((all.len(), skipped), (1, 1));
        // The next start writes after the torn line, not onto it.
        History::new(path.clone(), 64)
            .append(&[rec(3, "db1")])
            .expect("append");
        let (all, skipped) = read(&path, &Filter::default()).expect("read");
        assert_eq!((all.len(), skipped), (2, 1));
        let json = serde_json::to_string(&all[0]).expect("json");
        assert!(json.contains("\"kind\":\"state_change\""), "{json}");
    }
}
