//! MariaDB instances of the lab: the cached template datadir, per-host configuration,
//! starting/stopping `mariadbd` inside a namespace, and admin SQL as root over the unix socket.
//!
//! Admin SQL goes through the `mariadb` command-line client over the host's unix socket. Unix
//! sockets are file-system objects, so this works from the root namespace without any network
//! traffic, keeps the lab free of async plumbing, and [`Cmd`]'s deadline protects against a
//! frozen server.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::creds;
use crate::error::{Error, Result};

/// Bump when the template's content changes so stale caches are not reused.
const TEMPLATE_VERSION: u32 = 1;

/// Where cached template datadirs live (shared by all labs on the machine).
pub const TEMPLATE_CACHE: &str = "/var/cache/ha-lab";

/// Deadline of a lab admin statement.
pub const SQL_TIMEOUT: Duration = Duration::from_secs(15);

/// Deadline for a starting mariadbd to accept connections (crash recovery included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The SQL run once on the template: drops the installer's anonymous and networked root
/// accounts, creates the four lab accounts with their exact grants, and the `hatest` schema.
/// Nothing here is written to a binary log (the template runs without one), so no host starts
/// with a GTID of its own.
pub fn bootstrap_sql() -> String {
    format!(
        "DELETE FROM mysql.global_priv WHERE User='' OR (User='root' AND Host<>'localhost');
FLUSH PRIVILEGES;
CREATE USER '{ru}'@'%' IDENTIFIED BY '{rp}';
GRANT {rg} ON *.* TO '{ru}'@'%';
CREATE USER '{au}'@'%' IDENTIFIED BY '{ap}';
GRANT {ag} ON *.* TO '{au}'@'%';
CREATE USER '{mu}'@'%' IDENTIFIED BY '{mp}';
GRANT {mg} ON *.* TO '{mu}'@'%';
CREATE DATABASE hatest;
CREATE USER '{pu}'@'%' IDENTIFIED BY '{pp}';
GRANT {pg} ON hatest.* TO '{pu}'@'%';
CREATE TABLE hatest.probe (run VARCHAR(40) NOT NULL, seq BIGINT UNSIGNED NOT NULL,
  at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (run, seq)) ENGINE=InnoDB;
CREATE TABLE hatest.lag (id INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB;
INSERT INTO hatest.lag VALUES (1, 0);
CREATE TABLE hatest.t (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(255)) ENGINE=InnoDB;
",
        ru = creds::REPL_USER,
        rp = creds::REPL_PASSWORD,
        rg = creds::REPL_GRANTS,
        au = creds::AGENT_USER,
        ap = creds::AGENT_PASSWORD,
        ag = creds::AGENT_GRANTS,
        mu = creds::MONITOR_USER,
        mp = creds::MONITOR_PASSWORD,
        mg = creds::MONITOR_GRANTS,
        pu = creds::APP_USER,
        pp = creds::APP_PASSWORD,
        pg = creds::APP_GRANTS,
    )
}

static TEMPLATE_LOCK: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The template datadir, built on first use and cached under [`TEMPLATE_CACHE`] keyed by the
/// server version and the bootstrap SQL. Concurrent builders (threads or test binaries) each
/// build into a private directory and `rename` it into place; the loser discards its copy, so
/// no file lock is needed across processes. Within a process a mutex avoids duplicate work.
pub fn template() -> Result<PathBuf> {
    let mut guard = TEMPLATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = guard.as_ref() {
        if p.join("mysql").is_dir() {
            return Ok(p.clone());
        }
    }
    let version = Cmd::new("mariadbd").arg("--version").run()?.stdout;
    let mut h = DefaultHasher::new();
    (TEMPLATE_VERSION, version.trim(), bootstrap_sql()).hash(&mut h);
    let cache = Path::new(TEMPLATE_CACHE);
    let final_dir = cache.join(format!("template-{:016x}", h.finish()));
    if !final_dir.join("mysql").is_dir() {
        fs::create_dir_all(cache).map_err(|e| Error::path("create", cache, e))?;
        let work = cache.join(format!(
            "build-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let res = build_template(&work);
        if let Err(e) = res {
            let _ = fs::remove_dir_all(&work);
            return Err(e);
        }
        if fs::rename(work.join("data"), &final_dir).is_err() {
            // Someone else won the race; theirs is identical.
            if !final_dir.join("mysql").is_dir() {
                let _ = fs::remove_dir_all(&work);
                return Err(Error::Other(format!(
                    "could not move template into {}",
                    final_dir.display()
                )));
            }
        }
        let _ = fs::remove_dir_all(&work);
    }
    *guard = Some(final_dir.clone());
    Ok(final_dir)
}

fn build_template(work: &Path) -> Result<()> {
    let data = work.join("data");
    fs::create_dir_all(work).map_err(|e| Error::path("create", work, e))?;
    Cmd::new("mariadb-install-db")
        .args([
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            "--user=root".into(),
            "--auth-root-authentication-method=normal".into(),
            "--skip-test-db".into(),
            "--innodb-log-file-size=8M".into(),
        ])
        .timeout(Duration::from_secs(120))
        .run()?;
    // Run the bootstrap SQL on a private, network-less server.
    let sock = work.join("s.sock");
    let log = work.join("bootstrap.err");
    let mut child = Command::new("mariadbd")
        .args([
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--socket={}", sock.display()),
            format!("--pid-file={}", work.join("s.pid").display()),
            format!("--log-error={}", log.display()),
            "--user=root".into(),
            "--skip-networking".into(),
            "--innodb-log-file-size=8M".into(),
            "--innodb-buffer-pool-size=32M".into(),
            "--performance-schema=0".into(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io("spawn template mariadbd", e))?;
    let res = (|| {
        wait_ready("template", &sock, &mut child, &log)?;
        sql(&sock, "template", &bootstrap_sql())?;
        sql(&sock, "template", "SHUTDOWN")?;
        wait_exit(
            &mut child,
            Duration::from_secs(60),
            "template mariadbd shutdown",
        )
    })();
    if res.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    res
}

/// Everything needed to write one host's `my.cnf`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub server_id: u32,
    pub datadir: PathBuf,
    pub socket: PathBuf,
    pub dir: PathBuf,
    pub port: u16,
    pub semi_sync: bool,
    /// Whether this host acknowledges semi-sync commits. Only hosts that can become the
    /// writer (db1, db2) do: MariaDB waits for one ACK from *any* semi-sync replica, so an ACK
    /// from db3 could cover a write the promoted master never received (docs/product.md I2).
    pub semi_sync_slave: bool,
    /// Extra `key=value` lines appended to `[mysqld]` (later lines win).
    pub extra: Vec<String>,
}

impl ServerConfig {
    /// The option file content.
    pub fn render(&self) -> String {
        let d = self.dir.display();
        let mut s = format!(
            "# written by ha-lab
[mysqld]
user=root
datadir={datadir}
socket={socket}
pid-file={d}/mariadbd.pid
log-error={d}/error.log
tmpdir={d}/tmp
port={port}
bind-address=0.0.0.0
skip-name-resolve=1
server-id={id}
log-bin=mysql-bin
relay-log=relay-bin
log-slave-updates=1
binlog-format=ROW
gtid-strict-mode=1
read-only=1
slave-net-timeout=4
sync-binlog=1
innodb-flush-log-at-trx-commit=1
innodb-buffer-pool-size=64M
innodb-log-file-size=8M
performance-schema=0
max-connections=300
",
            datadir = self.datadir.display(),
            socket = self.socket.display(),
            port = self.port,
            id = self.server_id,
        );
        if self.semi_sync {
            // AFTER_SYNC and a huge timeout: while a semi-sync replica is connected, a commit
            // is acknowledged only once a replica has it; the master never falls back to
            // asynchronous replication because a replica is slow.
            //
            // wait_no_slave=OFF: with log_slave_updates, MariaDB makes a *replica's SQL thread*
            // wait for a semi-sync ACK too when it logs replicated events. With the default ON,
            // db3 (which has no replicas) would block forever on the first event, and a
            // promoted master whose peer just died would hang applying its relay log. OFF means
            // "asynchronous only while zero semi-sync replicas are connected" (a double
            // failure). Rpl_semi_sync_master_status stays ON then (seen on 10.11);
            // Rpl_semi_sync_master_clients=0 shows it, and ha-agent reports it as a fallback.
            s.push_str(&format!(
                "rpl-semi-sync-master-enabled=1
rpl-semi-sync-slave-enabled={}
rpl-semi-sync-master-wait-point=AFTER_SYNC
rpl-semi-sync-master-timeout=30000000
rpl-semi-sync-master-wait-no-slave=OFF
",
                u8::from(self.semi_sync_slave)
            ));
        }
        for l in &self.extra {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Starts `mariadbd --defaults-file=<cnf>` inside `ns` and waits until it answers over its
/// socket. stdout/stderr go to `<dir>/mariadbd.out` (the real log is `<dir>/error.log`).
pub fn spawn(host: &str, ns: &str, cnf: &Path, dir: &Path, socket: &Path) -> Result<Child> {
    let out_path = dir.join("mariadbd.out");
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .map_err(|e| Error::path("open", &out_path, e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::path("dup", &out_path, e))?;
    // A stale socket file from a SIGKILLed server is harmless (mariadbd replaces it) but would
    // let `wait_ready` connect-fail noisily; remove it.
    let _ = fs::remove_file(socket);
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "mariadbd"])
        .arg(format!("--defaults-file={}", cnf.display()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Own process group: a Ctrl-C on `cargo test` must not half-kill the lab; teardown and
        // `ha-lab cleanup` stop it by PID.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(format!("spawn mariadbd for {host} in {ns}"), e))?;
    if let Err(e) = wait_ready(host, socket, &mut child, &dir.join("error.log")) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// Waits (bounded by [`START_TIMEOUT`]) until the server answers `SELECT 1` over `socket`,
/// failing early with the error log's tail if the process exits.
pub fn wait_ready(host: &str, socket: &Path, child: &mut Child, log: &Path) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(Error::Other(format!(
                "mariadbd for {host} exited during startup ({st}); error log {}:\n{}",
                log.display(),
                tail(log, 15)
            )));
        }
        if std::os::unix::net::UnixStream::connect(socket).is_ok()
            && sql(socket, host, "SELECT 1").is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "mariadbd for {host} to accept connections on {}; error log:\n{}",
                    socket.display(),
                    tail(log, 15)
                ),
                after: START_TIMEOUT,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child to exit, bounded.
pub fn wait_exit(child: &mut Child, timeout: Duration, what: &str) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if Instant::now() >= deadline => {
                return Err(Error::Timeout {
                    what: what.to_string(),
                    after: timeout,
                })
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(Error::io(format!("wait for {what}"), e)),
        }
    }
}

/// The last `n` lines of a log file (for error messages).
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn client(socket: &Path) -> Cmd {
    Cmd::new("mariadb").args([
        "--no-defaults".to_string(),
        format!("--socket={}", socket.display()),
        "--user=root".into(),
        "--connect-timeout=5".into(),
    ])
}

/// Runs statements as root over `socket` and returns the batch-mode rows (tab-separated
/// columns; `NULL` as the string "NULL").
pub fn sql(socket: &Path, host: &str, statements: &str) -> Result<Vec<Vec<String>>> {
    let out = client(socket)
        .args(["--batch", "--raw", "--skip-column-names"])
        .stdin(statements.as_bytes().to_vec())
        .timeout(SQL_TIMEOUT)
        .output()
        .map_err(|e| match e {
            Error::Timeout { after, .. } => Error::Sql {
                host: host.to_string(),
                sql: statements.to_string(),
                msg: format!("no answer within {after:?} (server frozen or overloaded?)"),
            },
            e => e,
        })?;
    if !out.success() {
        return Err(Error::Sql {
            host: host.to_string(),
            sql: statements.trim().to_string(),
            msg: out.stderr.trim().to_string(),
        });
    }
    Ok(out
        .stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

/// Runs one statement with `--vertical` and returns each row as a column → value map
/// (used for `SHOW SLAVE STATUS`, whose column set varies between versions).
pub fn sql_vertical(
    socket: &Path,
    host: &str,
    statement: &str,
) -> Result<Vec<BTreeMap<String, String>>> {
    let out = client(socket)
        .args(["--vertical", "-e", statement])
        .timeout(SQL_TIMEOUT)
        .output()
        .map_err(|e| match e {
            Error::Timeout { after, .. } => Error::Sql {
                host: host.to_string(),
                sql: statement.to_string(),
                msg: format!("no answer within {after:?} (server frozen or overloaded?)"),
            },
            e => e,
        })?;
    if !out.success() {
        return Err(Error::Sql {
            host: host.to_string(),
            sql: statement.to_string(),
            msg: out.stderr.trim().to_string(),
        });
    }
    let mut rows = Vec::new();
    let mut cur: Option<BTreeMap<String, String>> = None;
    let mut last_key: Option<String> = None;
    for line in out.stdout.lines() {
        if line.starts_with("***") {
            if let Some(r) = cur.take() {
                rows.push(r);
            }
            cur = Some(BTreeMap::new());
            last_key = None;
            continue;
        }
        let Some(row) = cur.as_mut() else { continue };
        match line.split_once(": ") {
            Some((k, v)) if !k.trim().contains(' ') && !k.trim().is_empty() => {
                let k = k.trim().to_string();
                row.insert(k.clone(), v.to_string());
                last_key = Some(k);
            }
            _ => {
                // Continuation of a multi-line value (error texts can contain newlines).
                let trimmed = line.trim_end();
                if let Some(k) = &last_key {
                    if let Some(v) = row.get_mut(k) {
                        v.push('\n');
                        v.push_str(trimmed);
                    }
                } else if let Some(k) = trimmed.trim().strip_suffix(':') {
                    row.insert(k.to_string(), String::new());
                    last_key = Some(k.to_string());
                }
            }
        }
    }
    if let Some(r) = cur.take() {
        rows.push(r);
    }
    Ok(rows)
}

/// Quotes a string literal for inlining into SQL (placeholders are not allowed in
/// `CHANGE MASTER TO`).
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        match c {
            '\'' => q.push_str("''"),
            '\\' => q.push_str("\\\\"),
            '\0' => q.push_str("\\0"),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}
