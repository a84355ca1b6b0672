//! Scraping the monitor's Prometheus endpoint from inside the monitor's namespace (no curl
//! needed: bash's /dev/tcp).

use std::time::Duration;

use ha_lab::Cmd;

use crate::cluster::{Cluster, Result};

/// The port the scenarios configure for `metrics` (`127.0.0.1:9104` in the monitor's
/// namespace).
pub const METRICS_ADDR: &str = "127.0.0.1:9104";

impl Cluster {
    /// One `GET /metrics` of the monitor at [`METRICS_ADDR`]: the whole response, headers
    /// included; an error unless it is `200 OK`.
    pub fn scrape_metrics(&self) -> Result<String> {
        let script = "exec 3<>/dev/tcp/127.0.0.1/9104 && printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3";
        let out = Cmd::in_ns(&self.lab.mon().ns, "bash")
            .args(["-c", script])
            .timeout(Duration::from_secs(10))
            .output()
            .map_err(|e| format!("scrape /metrics: {e}"))?;
        if !out.stdout.starts_with("HTTP/1.1 200 OK") {
            return Err(format!("scrape /metrics: {}{}", out.stdout, out.stderr));
        }
        Ok(out.stdout)
    }
}

/// The value of the series whose line starts with `series` (its name and labels, exactly).
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
