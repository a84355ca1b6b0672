//! The network self-check (`ping_ips`, docs/mmm-behaviour.md §3.7): is the monitor itself connected?
//!
//! While no `ping_ips` address answers, the monitor is the one cut off, so its checks say
//! nothing about the hosts: checks pause and the core freezes every decision, roles included.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::checks::ping;

/// True when at least one of `ips` answers one ICMP echo within `deadline` (tried in order,
/// stopping at the first answer).
pub async fn network_reachable(
    client: &surge_ping::Client,
    ips: &[IpAddr],
    seq: u16,
    deadline: Duration,
) -> bool {
    for ip in ips {
        if ping(client, *ip, seq, deadline).await.is_ok() {
            return true;
        }
    }
    false
}

/// Probes every `interval` and reports each result on `tx` until shutdown.
pub async fn run(
    client: Arc<surge_ping::Client>,
    ips: Vec<IpAddr>,
    interval: Duration,
    tx: tokio::sync::mpsc::Sender<bool>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let mut seq: u16 = 0;
    // An echo that takes longer than the interval is as good as lost for this purpose.
    let deadline = interval.clamp(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        seq = seq.wrapping_add(1);
        let up = network_reachable(&client, &ips, seq, deadline).await;
        if tx.send(up).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.recv() => return,
        }
    }
}
