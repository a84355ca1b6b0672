//! `ha-control`: see the library crate for everything; this only prints the outcome.

use std::io::Write;

fn main() {
    let outcome = ha_control::run(std::env::args_os().collect());
    // Write errors (a closed pipe: `ha-control show | head -1`) are not worth a panic; the
    // exit code still tells the caller what the monitor said.
    let _ = std::io::stdout()
        .lock()
        .write_all(outcome.stdout.as_bytes());
    let _ = std::io::stderr()
        .lock()
        .write_all(outcome.stderr.as_bytes());
    std::process::exit(outcome.code);
}
