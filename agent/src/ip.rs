//! Role IP addresses on `cluster_interface`, managed with the `ip` command (iproute2).
//!
//! Why `ip` and not netlink through a crate (rtnetlink): the agent changes an address a few
//! times per failover, so the cost of a fork/exec (~2 ms) is irrelevant, while `ip` gives us
//! the exact command an operator would type and read in the logs (`ip -4 addr add
//! 10.0.60.160/32 dev eth0`), error texts an operator understands ("Address already assigned")
//! instead of raw errno values, and no extra heavy dependency to build on the 2-core machines
//! (rtnetlink and its async netlink stack is the slowest crate of the lot to compile). iproute2
//! is present on every Linux MySQL host. Every invocation has a deadline and the child is
//! killed if it is exceeded. Addresses are added as /32 like mysql-mmm, so a role IP never adds
//! a connected route of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Deadline of one `ip` invocation.
pub const IP_TIMEOUT: Duration = Duration::from_secs(3);

/// Parses `ip -o addr show dev IF` output: every address (v4 and v6) on the interface.
pub fn parse_addrs(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "inet" || w == "inet6" {
                if let Some(cidr) = words.next() {
                    let addr = cidr.split('/').next().unwrap_or(cidr);
                    if let Ok(ip) = addr.parse::<IpAddr>() {
                        out.push(ip);
                    }
                }
            }
        }
    }
    out
}

/// Result of `ip addr add|del` after interpreting the idempotent "errors".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The command changed the interface.
    Done,
    /// The address was already there (add) / already absent (del).
    AlreadyThere,
}

/// Classifies an `ip addr add|del` failure: `Ok` when it means "nothing to do".
pub fn classify_failure(adding: bool, stderr: &str) -> Result<Change, String> {
    let s = stderr.to_ascii_lowercase();
    if adding && (s.contains("file exists") || s.contains("already assigned")) {
        return Ok(Change::AlreadyThere);
    }
    if !adding && (s.contains("cannot assign requested address") || s.contains("address not found"))
    {
        return Ok(Change::AlreadyThere);
    }
    Err(stderr.trim().to_string())
}

async fn run_ip(args: &[&str]) -> Result<std::process::Output, String> {
    let line = format!("ip {}", args.join(" "));
    let child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `{line}`: {e} (is iproute2 installed and on PATH?)"))?;
    match tokio::time::timeout(IP_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(format!("`{line}` failed: {e}")),
        Err(_) => Err(format!(
            "`{line}` did not finish within {} s and was killed",
            IP_TIMEOUT.as_secs()
        )),
    }
}

/// Every address on `dev` (IPv4 and IPv6).
pub async fn list(dev: &str) -> Result<Vec<IpAddr>, String> {
    let out = run_ip(&["-o", "addr", "show", "dev", dev]).await?;
    if !out.status.success() {
        return Err(format!(
            "`ip -o addr show dev {dev}` failed: {} (does interface {dev} exist? check cluster_interface)",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_addrs(&String::from_utf8_lossy(&out.stdout)))
}

/// IPv4 addresses on `dev`.
pub async fn list_v4(dev: &str) -> Result<Vec<Ipv4Addr>, String> {
    Ok(list(dev)
        .await?
        .into_iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect())
}

/// `ip -4 addr add IP/32 dev DEV`.
pub async fn add(ip: Ipv4Addr, dev: &str) -> Result<Change, String> {
    change(true, ip, dev).await
}

/// `ip -4 addr del IP dev DEV` (any prefix length).
pub async fn del(ip: Ipv4Addr, dev: &str) -> Result<Change, String> {
    change(false, ip, dev).await
}

async fn change(adding: bool, ip: Ipv4Addr, dev: &str) -> Result<Change, String> {
    // Deletion names no prefix length: the kernel then removes the address whatever its prefix
    // (an operator or an older tool may have added it as /24), whereas `del IP/32` of a /24
    // address fails with "Cannot assign requested address" — which would read as "absent".
    let cidr = if adding {
        format!("{ip}/32")
    } else {
        ip.to_string()
    };
    let verb = if adding { "add" } else { "del" };
    let out = run_ip(&["-4", "addr", verb, &cidr, "dev", dev]).await?;
    if out.status.success() {
        return Ok(Change::Done);
    }
    classify_failure(adding, &String::from_utf8_lossy(&out.stderr))
        .map_err(|e| format!("`ip -4 addr {verb} {cidr} dev {dev}` failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_o_addr() {
        let text = "2: eth0    inet 10.0.60.100/24 brd 10.0.60.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet 10.0.60.160/32 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n";
        let v = parse_addrs(text);
        assert_eq!(
            v,
            vec![
                "10.0.60.100".parse::<IpAddr>().unwrap(),
                "10.0.60.160".parse().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert!(parse_addrs("").is_empty());
        assert!(parse_addrs("garbage inet").is_empty());
    }

    #[test]
    fn idempotent_failures() {
        assert_eq!(
            classify_failure(true, "RTNETLINK answers: File exists"),
            Ok(Change::AlreadyThere)
        );
        assert_eq!(
            classify_failure(true, "Error: ipv4: Address already assigned."),
            Ok(Change::AlreadyThere)
        );
        assert_eq!(
            classify_failure(false, "RTNETLINK answers: Cannot assign requested address"),
            Ok(Change::AlreadyThere)
        );
        assert_eq!(
            classify_failure(false, "Error: ipv4: Address not found."),
            Ok(Change::AlreadyThere)
        );
        assert!(classify_failure(true, "Cannot find device \"eth9\"").is_err());
        assert!(classify_failure(false, "RTNETLINK answers: Operation not permitted").is_err());
    }
}
