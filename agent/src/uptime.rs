//! Host uptime, as mysql-mmm reported it with every reply: the first field of `/proc/uptime`.
//!
//! The monitor uses it to tell "mysqld was down < 60 s" from "the host rebooted". All lab
//! namespaces share one kernel and so one `/proc/uptime`; to simulate a reboot the lab sets
//! `HA_AGENT_UPTIME_FILE` to a file of the same format, which is read instead.

use std::path::PathBuf;

/// Environment variable naming a file read instead of `/proc/uptime` (lab tests only).
pub const UPTIME_FILE_ENV: &str = "HA_AGENT_UPTIME_FILE";

/// The file the uptime is read from.
pub fn source() -> PathBuf {
    std::env::var_os(UPTIME_FILE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/uptime"))
}

/// Parses `/proc/uptime` text (`"12345.67 2345.12"`): the first field, in seconds.
pub fn parse(text: &str) -> Option<f64> {
    let v: f64 = text.split_whitespace().next()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Reads the uptime; the error says which file failed and why.
pub fn read() -> Result<f64, String> {
    let path = source();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read uptime from {}: {e}", path.display()))?;
    parse(&text).ok_or_else(|| {
        format!(
            "cannot parse uptime in {}: expected '<seconds> <idle>', got {:?}",
            path.display(),
            text.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_proc_uptime() {
        assert_eq!(super::parse("350735.47 234388.90\n"), Some(350735.47));
        assert_eq!(super::parse("12"), Some(12.0));
        assert_eq!(super::parse(""), None);
        assert_eq!(super::parse("-1 2"), None);
        assert_eq!(super::parse("abc"), None);
    }
}
