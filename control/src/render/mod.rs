//! Everything ha-control prints. Pure functions from replies to text, so the lab tests can
//! compare a real monitor's output with the same golden strings the unit tests use.
//!
//! Text mode reproduces mmm_control: the functions here return the *reply* as the mysql-mmm
//! monitor would have sent it, and [`terminal`] adds the one newline mmm_control appends when
//! printing a reply. (That is why `show` output ends with an empty line, as it did with mmm.)

pub mod checks;
pub mod explain;
pub mod help;
pub mod history;
pub mod json;
pub mod show;

pub use checks::{render_checks, render_checks_with, ChecksQuery};
pub use explain::render_explain;
pub use show::render_show;

/// What mmm_control writes to stdout for a reply: the reply plus `\n`.
pub fn terminal(reply: &str) -> String {
    format!("{reply}\n")
}
