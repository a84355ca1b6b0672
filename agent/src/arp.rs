//! Gratuitous ARP: after a role IP is added, tell every host on the segment that the IP now
//! lives at this interface's MAC, so clients and the switch stop sending to the old owner.
//!
//! Both forms are sent because implementations differ in which one updates their cache: an ARP
//! request (op 1, target MAC zero) and an ARP reply (op 2), each a broadcast frame whose sender
//! and target IP are the role IP. The pair is repeated [`ROUNDS`] times over about half a second
//! (mysql-mmm sent one burst, which a single lost frame defeats — docs/product.md F10). The socket is
//! opened without promiscuous mode (pnet's default is on): we only send.
//!
//! Linux only updates an *existing* neighbour entry from a gratuitous ARP (unless `arp_accept=1`);
//! hosts without an entry resolve the IP on first use, which reaches the new owner anyway.

use std::net::Ipv4Addr;
use std::time::Duration;

use pnet_base::MacAddr;
use pnet_datalink::{Channel, Config, DataLinkSender, NetworkInterface};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperation, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};

/// Number of request+reply pairs sent per added IP.
pub const ROUNDS: usize = 3;
/// Pause between rounds (3 rounds → ~0.5 s).
pub const ROUND_GAP: Duration = Duration::from_millis(250);

/// Length of an Ethernet frame carrying an IPv4-over-Ethernet ARP packet (without padding).
pub const FRAME_LEN: usize = 42;

/// Builds one gratuitous ARP frame announcing `ip` at `mac`.
pub fn frame(mac: MacAddr, ip: Ipv4Addr, op: ArpOperation) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    {
        let Some(mut eth) = MutableEthernetPacket::new(&mut buf) else {
            return buf; // unreachable: the buffer is large enough
        };
        eth.set_destination(MacAddr::broadcast());
        eth.set_source(mac);
        eth.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut arp) = MutableArpPacket::new(&mut buf[14..]) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(op);
        arp.set_sender_hw_addr(mac);
        arp.set_sender_proto_addr(ip);
        let target = if op == ArpOperations::Reply {
            MacAddr::broadcast()
        } else {
            MacAddr::zero()
        };
        arp.set_target_hw_addr(target);
        arp.set_target_proto_addr(ip);
    }
    buf
}

/// An open sender on one interface.
pub struct Announcer {
    tx: Box<dyn DataLinkSender>,
    mac: MacAddr,
    dev: String,
}

impl Announcer {
    /// Opens a raw send socket on `dev` (needs CAP_NET_RAW).
    pub fn open(dev: &str) -> Result<Announcer, String> {
        let iface: NetworkInterface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == dev)
            .ok_or_else(|| format!("gratuitous ARP: interface {dev} not found"))?;
        let mac = iface
            .mac
            .filter(|m| *m != MacAddr::zero())
            .ok_or_else(|| format!("gratuitous ARP: interface {dev} has no MAC address"))?;
        let config = Config {
            promiscuous: false,
            write_timeout: Some(Duration::from_millis(500)),
            read_timeout: Some(Duration::from_millis(10)),
            ..Config::default()
        };
        match pnet_datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(tx, _rx)) => Ok(Announcer {
                tx,
                mac,
                dev: dev.to_string(),
            }),
            Ok(_) => Err(format!("gratuitous ARP: {dev} is not an Ethernet interface")),
            Err(e) => Err(format!(
                "gratuitous ARP: cannot open a raw socket on {dev}: {e} (the agent needs root or CAP_NET_RAW)"
            )),
        }
    }

    /// Sends one request and one reply announcing `ip`.
    pub fn announce_once(&mut self, ip: Ipv4Addr) -> Result<(), String> {
        for op in [ArpOperations::Request, ArpOperations::Reply] {
            let f = frame(self.mac, ip, op);
            match self.tx.send_to(&f, None) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    return Err(format!(
                        "gratuitous ARP for {ip} on {}: send failed: {e}",
                        self.dev
                    ))
                }
                None => {
                    return Err(format!(
                        "gratuitous ARP for {ip} on {}: the send buffer was too small",
                        self.dev
                    ))
                }
            }
        }
        Ok(())
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }
}

/// Sends the first round now (blocking, so the caller can report its outcome) and the remaining
/// rounds from a background thread. Returns the interface MAC used.
pub async fn announce(dev: &str, ip: Ipv4Addr) -> Result<MacAddr, String> {
    let dev = dev.to_string();
    let first = tokio::task::spawn_blocking(move || -> Result<Announcer, String> {
        let mut a = Announcer::open(&dev)?;
        a.announce_once(ip)?;
        Ok(a)
    });
    let mut a = match tokio::time::timeout(Duration::from_secs(2), first).await {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) => return Err(format!("gratuitous ARP for {ip}: sender task failed: {e}")),
        Err(_) => {
            return Err(format!(
                "gratuitous ARP for {ip}: sending did not finish within 2 s"
            ))
        }
    };
    let mac = a.mac();
    tokio::spawn(async move {
        for _ in 1..ROUNDS {
            tokio::time::sleep(ROUND_GAP).await;
            let r = tokio::task::spawn_blocking(move || {
                let r = a.announce_once(ip);
                (a, r)
            })
            .await;
            match r {
                Ok((back, Ok(()))) => a = back,
                Ok((_, Err(e))) => {
                    tracing::warn!("{e}");
                    return;
                }
                Err(e) => {
                    tracing::warn!("gratuitous ARP for {ip}: sender task failed: {e}");
                    return;
                }
            }
        }
    });
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_both_forms() {
        let mac = MacAddr(2, 0, 0, 0, 0, 1);
        let ip = Ipv4Addr::new(10, 0, 60, 160);
        let req = frame(mac, ip, ArpOperations::Request);
        assert_eq!(&req[0..6], &[0xff; 6]); // broadcast destination
        assert_eq!(&req[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&req[12..14], &[0x08, 0x06]); // ARP
        assert_eq!(&req[14..16], &[0, 1]); // Ethernet
        assert_eq!(&req[16..18], &[0x08, 0x00]); // IPv4
        assert_eq!(req[18], 6);
        assert_eq!(req[19], 4);
        assert_eq!(&req[20..22], &[0, 1]); // request
        assert_eq!(&req[22..28], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&req[28..32], &[10, 0, 60, 160]);
        assert_eq!(&req[32..38], &[0; 6]); // target MAC zero
        assert_eq!(&req[38..42], &[10, 0, 60, 160]);
        let rep = frame(mac, ip, ArpOperations::Reply);
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[28..32], &rep[38..42]);
    }
}
