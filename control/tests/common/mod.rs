//! Running the real `ha-control` binary (with `TZ=UTC`) and checking its output; shared by the
//! `cli_*` test files.

#![allow(dead_code)] // each test binary uses a different part

use std::process::Command;

use crate::fake::Running;

pub struct Out {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

pub fn ha(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_ha-control"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run ha-control");
    Out {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Runs ha-control with `--monitor <fake>` followed by `args`.
pub fn at(srv: &Running, args: &[&str]) -> Out {
    let addr = srv.addr.to_string();
    let mut all = vec!["--monitor", addr.as_str()];
    all.extend_from_slice(args);
    ha(&all)
}

pub fn json(out: &Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", out.stdout))
}

#[track_caller]
pub fn expect(out: &Out, code: i32, stdout: &str) {
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (code, stdout),
        "stderr: {}",
        out.stderr
    );
}

/// A port on which nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub const DB3_MYSQL_ERR: &str = "ERROR: Connect error (host 10.77.0.13:3306): Can't connect";
