//! Network namespaces, the bridge and the veth pairs, plus running code inside a namespace.
//!
//! Layout of one lab with prefix `P` (interface names must stay ≤ 15 characters, so prefixes
//! are 6 characters, e.g. `hl3f2a`):
//!
//! ```text
//!   root namespace:  bridge P-br (no address!)  ── P-db1-h, P-db2-h, …, P-mon-h, P-cli-h
//!   namespace P-db1: eth0 10.a.b.11/24, lo      (eth0 is the peer of P-db1-h)
//!   namespace P-mon: eth0 10.a.b.2/24,  lo
//!   namespace P-cli: eth0 10.a.b.3/24,  lo
//! ```
//!
//! No namespace gets a default route and the bridge has no address, so nothing in the lab can
//! reach anything outside the lab's /24, and the root namespace cannot reach the lab either.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::cmd::Cmd;
use crate::error::{Error, Result};

/// Turns IPv6 off for a root-namespace device before it goes up, so it never gets a
/// link-local address nor sends router solicitations / MLD / DAD: the lab is IPv4 only and
/// the bridge must carry no address at all.
fn no_ipv6_root(dev: &str) -> Result<()> {
    let p = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
    if std::path::Path::new(&p).exists() {
        std::fs::write(&p, "1").map_err(|e| Error::io(format!("write 1 to {p}"), e))?;
    }
    Ok(())
}

/// Creates a namespace with `lo` up and IPv6 off (for every interface created in it later).
pub fn add_ns(ns: &str) -> Result<()> {
    Cmd::new("ip").args(["netns", "add", ns]).run()?;
    if std::path::Path::new("/proc/sys/net/ipv6").exists() {
        Cmd::in_ns(ns, "sh")
            .args([
                "-c",
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && \
                 echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
            ])
            .run()?;
    }
    Cmd::new("ip")
        .args(["-n", ns, "link", "set", "lo", "up"])
        .run()?;
    Ok(())
}

/// Creates the lab bridge in the root namespace, without an address.
pub fn add_bridge(bridge: &str) -> Result<()> {
    Cmd::new("ip")
        .args(["link", "add", bridge, "type", "bridge"])
        .run()?;
    no_ipv6_root(bridge)?;
    // No STP delays: ports forward at once.
    Cmd::new("ip")
        .args([
            "link",
            "set",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ])
        .run()?;
    Cmd::new("ip").args(["link", "set", bridge, "up"]).run()?;
    Ok(())
}

/// Creates the veth pair `veth` (root side, enslaved to `bridge`) / `eth0` (inside `ns`),
/// addresses the inside end with `ip/24` and brings both ends up. Returns the MAC of `eth0`.
pub fn add_port(bridge: &str, veth: &str, ns: &str, ip: Ipv4Addr) -> Result<String> {
    Cmd::new("ip")
        .args([
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ])
        .run()?;
    no_ipv6_root(veth)?;
    Cmd::new("ip")
        .args(["link", "set", veth, "master", bridge, "up"])
        .run()?;
    Cmd::new("ip")
        .args(["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])
        .run()?;
    Cmd::new("ip")
        .args(["-n", ns, "link", "set", "eth0", "up"])
        .run()?;
    mac_of(ns, "eth0")
}

/// The MAC address of `dev` inside `ns`.
pub fn mac_of(ns: &str, dev: &str) -> Result<String> {
    let out = Cmd::new("ip")
        .args(["-n", ns, "-o", "link", "show", dev])
        .run()?;
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Other(format!(
                "no MAC in `ip -n {ns} link show {dev}`: {}",
                out.stdout
            ))
        })
}

/// Sets a root-namespace link (a lab veth's bridge side) up or down. Taking the bridge side
/// down is "pulling the cable": the namespace keeps its addresses but sees NO-CARRIER.
pub fn set_link(dev: &str, up: bool) -> Result<()> {
    Cmd::new("ip")
        .args(["link", "set", dev, if up { "up" } else { "down" }])
        .run()?;
    Ok(())
}

/// Attaches a lab veth's bridge side to `bridge`, or detaches it (`None`): a switch port
/// shut down by a fencing device. Unlike [`set_link`], the link stays up, so a schedule that
/// plugs cables back in cannot undo a fence by accident.
pub fn set_port(dev: &str, bridge: Option<&str>) -> Result<()> {
    let args: Vec<&str> = match bridge {
        Some(b) => vec!["link", "set", dev, "master", b],
        None => vec!["link", "set", dev, "nomaster"],
    };
    Cmd::new("ip").args(args).run()?;
    Ok(())
}

/// IPv4 addresses present on `dev` inside `ns`.
pub fn addrs(ns: &str, dev: &str) -> Result<Vec<Ipv4Addr>> {
    let out = Cmd::new("ip")
        .args(["-n", ns, "-4", "-o", "addr", "show", "dev", dev])
        .run()?;
    let mut v = Vec::new();
    for line in out.stdout.lines() {
        let mut it = line.split_whitespace();
        while let Some(w) = it.next() {
            if w == "inet" {
                if let Some(cidr) = it.next() {
                    let ip = cidr.split('/').next().unwrap_or(cidr);
                    if let Ok(ip) = ip.parse() {
                        v.push(ip);
                    }
                }
            }
        }
    }
    Ok(v)
}

/// PIDs of all processes whose network namespace is `ns` (`ip netns pids`).
pub fn pids(ns: &str) -> Result<Vec<i32>> {
    let out = Cmd::new("ip").args(["netns", "pids", ns]).output()?;
    if !out.success() {
        // A namespace that no longer exists has no processes.
        return Ok(Vec::new());
    }
    Ok(out
        .stdout
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Names of all namespaces (`ip netns list`).
pub fn list_ns() -> Result<Vec<String>> {
    let out = Cmd::new("ip").args(["netns", "list"]).run()?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Names of all links in the root namespace.
pub fn list_links() -> Result<Vec<String>> {
    let out = Cmd::new("ip").args(["-o", "link", "show"]).run()?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect())
}

/// Deletes a namespace (its `eth0`, and with it the veth pair, disappears too).
pub fn del_ns(ns: &str) -> Result<()> {
    Cmd::new("ip").args(["netns", "del", ns]).run()?;
    Ok(())
}

/// Deletes a root-namespace link.
pub fn del_link(dev: &str) -> Result<()> {
    Cmd::new("ip").args(["link", "del", dev]).run()?;
    Ok(())
}

/// True when some root-namespace route or address overlaps `10.a.b.0/24`. Used to avoid
/// picking a lab subnet the machine itself uses.
pub fn root_uses_subnet(a: u8, b: u8) -> Result<bool> {
    let out = Cmd::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .run()?;
    let lab = u32::from(Ipv4Addr::new(10, a, b, 0));
    for line in out.stdout.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        let first = if matches!(first, "local" | "broadcast" | "unicast") {
            line.split_whitespace().nth(1).unwrap_or("")
        } else {
            first
        };
        if first == "default" {
            continue;
        }
        let (net, len) = match first.split_once('/') {
            Some((n, l)) => (n, l.parse::<u32>().unwrap_or(32)),
            None => (first, 32),
        };
        let Ok(net) = net.parse::<Ipv4Addr>() else {
            continue;
        };
        let net = u32::from(net);
        // Two prefixes overlap when they agree on the shorter one's bits.
        let common = len.min(24);
        let mask = if common == 0 {
            0
        } else {
            u32::MAX << (32 - common)
        };
        if net & mask == lab & mask {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs `f` on a fresh thread whose network namespace is `ns` (via `setns(2)` on
/// `/run/netns/<ns>`). Only that thread moves, so sockets created by `f` really live in the
/// lab namespace while the rest of the test process stays in the root namespace. Threads that
/// `f` spawns inherit the namespace (which is what a tokio runtime built inside `f` needs).
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = spawn_in_netns(ns, f)?;
    handle
        .join()
        .map_err(|_| Error::Other(format!("thread inside namespace {ns} panicked")))?
}

/// Like [`in_netns`] but returns the thread's join handle at once.
pub fn spawn_in_netns<T, F>(ns: &str, f: F) -> Result<std::thread::JoinHandle<Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).map_err(|e| Error::io(format!("open {path}"), e))?;
    std::thread::Builder::new()
        .name(format!("netns-{ns}"))
        .spawn(move || {
            // SAFETY: setns on a valid, open namespace fd affects only the calling thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(Error::io(
                    format!("setns({path})"),
                    std::io::Error::last_os_error(),
                ));
            }
            drop(file);
            Ok(f())
        })
        .map_err(|e| Error::io("spawn namespace thread", e))
}

/// A TCP connect from inside `ns` to `ip:port`, bounded by `timeout`. True when the
/// three-way handshake completed.
pub fn tcp_connects(ns: &str, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<bool> {
    in_netns(ns, move || {
        std::net::TcpStream::connect_timeout(&(ip, port).into(), timeout).is_ok()
    })
}
