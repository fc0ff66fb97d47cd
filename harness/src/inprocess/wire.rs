//! Ethernet frames on the virtual segment, parsed and built with
//! `etherparse` (no hand-made headers or checksums): classifies a received
//! frame as ARP, IPv4/UDP or something the harness ignores, and builds ARP
//! replies and UDP frames. Frames are untrusted input: nothing here panics
//! on them. It must not hold state or know about DHCP or TFTP.

use etherparse::{
    ArpEthIpv4Packet, ArpHardwareId, ArpOperation, EtherType, NetSlice, PacketBuilder,
    SlicedPacket, TransportSlice,
};
use std::net::Ipv4Addr;

/// The harness's MAC address on the segment (slirp uses the same).
pub const HARNESS_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// A received frame, classified.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// An ARP request (Ethernet/IPv4).
    ArpRequest {
        /// Sender MAC.
        sender_mac: [u8; 6],
        /// Sender IPv4.
        sender_ip: Ipv4Addr,
        /// The address asked for.
        target_ip: Ipv4Addr,
    },
    /// An unfragmented IPv4 UDP datagram.
    Udp {
        /// Source MAC.
        src_mac: [u8; 6],
        /// Source address.
        src_ip: Ipv4Addr,
        /// Destination address.
        dst_ip: Ipv4Addr,
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// UDP payload.
        payload: &'a [u8],
    },
    /// Anything else; the text says what (for the counters).
    Ignored(&'static str),
}

/// Classifies a frame.
pub fn parse(frame: &[u8]) -> Frame<'_> {
    let p = match SlicedPacket::from_ethernet(frame) {
        Ok(p) => p,
        Err(_) => return Frame::Ignored("malformed"),
    };
    let src_mac = match &p.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e.source(),
        _ => return Frame::Ignored("not ethernet"),
    };
    match &p.net {
        Some(NetSlice::Arp(a)) => {
            let Ok(a) = a.to_packet().try_eth_ipv4() else {
                return Frame::Ignored("arp (not ethernet/ipv4)");
            };
            if a.operation != ArpOperation::REQUEST {
                return Frame::Ignored("arp (not a request)");
            }
            Frame::ArpRequest {
                sender_mac: a.sender_mac,
                sender_ip: a.sender_ipv4_addr(),
                target_ip: a.target_ipv4_addr(),
            }
        }
        Some(NetSlice::Ipv4(ip)) => {
            if ip.is_payload_fragmented() {
                return Frame::Ignored("ipv4 fragment");
            }
            match &p.transport {
                Some(TransportSlice::Udp(u)) => Frame::Udp {
                    src_mac,
                    src_ip: ip.header().source_addr(),
                    dst_ip: ip.header().destination_addr(),
                    src_port: u.source_port(),
                    dst_port: u.destination_port(),
                    payload: u.payload(),
                },
                _ => Frame::Ignored("ipv4 (not udp)"),
            }
        }
        Some(NetSlice::Ipv6(_)) => Frame::Ignored("ipv6"),
        None => Frame::Ignored("not ip/arp"),
    }
}

/// The ARP reply saying `ip` is at `mac`, to the requester.
pub fn arp_reply(
    mac: [u8; 6],
    ip: Ipv4Addr,
    to_mac: [u8; 6],
    to_ip: Ipv4Addr,
) -> Result<Vec<u8>, String> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: mac,
        sender_ipv4: ip.octets(),
        target_mac: to_mac,
        target_ipv4: to_ip.octets(),
    };
    debug_assert_eq!(arp.to_arp_packet().hw_addr_type, ArpHardwareId::ETHERNET);
    let b = PacketBuilder::ethernet2(mac, to_mac).arp(arp.to_arp_packet());
    let mut v = Vec::with_capacity(b.size());
    b.write(&mut v).map_err(|e| e.to_string())?;
    Ok(v)
}

/// Addresses of one UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpAddrs {
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source address.
    pub src_ip: Ipv4Addr,
    /// Destination address.
    pub dst_ip: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// An Ethernet/IPv4/UDP frame carrying `payload` (checksums computed by
/// etherparse; TTL 64, don't-fragment not set).
pub fn udp_frame(a: &UdpAddrs, payload: &[u8]) -> Result<Vec<u8>, String> {
    let b = PacketBuilder::ethernet2(a.src_mac, a.dst_mac)
        .ipv4(a.src_ip.octets(), a.dst_ip.octets(), 64)
        .udp(a.src_port, a.dst_port);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).map_err(|e| e.to_string())?;
    Ok(v)
}

/// An unfragmented IPv4 TCP segment: the sender's MAC, the destination
/// address and port, and the IP packet (Ethernet padding cut off), for the
/// TCP relay ([`super::tcp`]).
pub fn tcp_packet(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr, u16, &[u8])> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::LinkSlice::Ethernet2(e)) = &p.link else {
        return None;
    };
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return None;
    };
    if ip.is_payload_fragmented() {
        return None;
    }
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        return None;
    };
    let start = frame.len() - e.payload_slice().len();
    let end = start.checked_add(usize::from(ip.header().total_len()))?;
    let packet = frame.get(start..end)?;
    Some((
        e.source(),
        ip.header().destination_addr(),
        t.destination_port(),
        packet,
    ))
}

/// An Ethernet II frame carrying the IPv4 packet `ip` (the TCP relay's
/// output).
pub fn ipv4_frame(src_mac: [u8; 6], dst_mac: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let h = etherparse::Ethernet2Header {
        source: src_mac,
        destination: dst_mac,
        ether_type: EtherType::IPV4,
    };
    let mut v = Vec::with_capacity(14 + ip.len());
    v.extend_from_slice(&h.to_bytes());
    v.extend_from_slice(ip);
    v
}

/// The EtherType of a frame, if it has an Ethernet II header.
pub fn ether_type(frame: &[u8]) -> Option<EtherType> {
    let b = frame.get(12..14)?;
    Some(EtherType(u16::from_be_bytes([b[0], b[1]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_round_trip() {
        let a = UdpAddrs {
            src_mac: HARNESS_MAC,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_ip: Ipv4Addr::new(10, 0, 2, 2),
            dst_ip: Ipv4Addr::new(10, 0, 2, 15),
            src_port: 69,
            dst_port: 2000,
        };
        let f = udp_frame(&a, b"hello").expect("builds");
        assert_eq!(ether_type(&f), Some(EtherType::IPV4));
        match parse(&f) {
            Frame::Udp {
                src_ip,
                dst_port,
                payload,
                src_mac,
                ..
            } => {
                assert_eq!(src_ip, a.src_ip);
                assert_eq!(dst_port, 2000);
                assert_eq!(payload, b"hello");
                assert_eq!(src_mac, HARNESS_MAC);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arp_request_and_reply() {
        let guest = [2, 0, 0, 0, 0, 1];
        let req = ArpEthIpv4Packet {
            operation: ArpOperation::REQUEST,
            sender_mac: guest,
            sender_ipv4: [10, 0, 2, 15],
            target_mac: [0; 6],
            target_ipv4: [10, 0, 2, 2],
        };
        let b = PacketBuilder::ethernet2(guest, BROADCAST_MAC).arp(req.to_arp_packet());
        let mut f = Vec::new();
        b.write(&mut f).expect("builds");
        assert_eq!(
            parse(&f),
            Frame::ArpRequest {
                sender_mac: guest,
                sender_ip: Ipv4Addr::new(10, 0, 2, 15),
                target_ip: Ipv4Addr::new(10, 0, 2, 2)
            }
        );
        let r = arp_reply(
            HARNESS_MAC,
            Ipv4Addr::new(10, 0, 2, 2),
            guest,
            Ipv4Addr::new(10, 0, 2, 15),
        )
        .expect("builds");
        // A reply is not a request: ignored if it came back.
        assert_eq!(parse(&r), Frame::Ignored("arp (not a request)"));
    }

    #[test]
    fn tcp_packets_are_found_and_framed_back() {
        let guest = [2, 0, 0, 0, 0, 1];
        let b = PacketBuilder::ethernet2(guest, HARNESS_MAC)
            .ipv4([10, 0, 2, 15], [10, 0, 2, 2], 64)
            .tcp(40000, 80, 1, 65535);
        let mut f = Vec::new();
        b.write(&mut f, b"GET / HTTP/1.1\r\n").expect("builds");
        let ip_len = f.len() - 14;
        f.extend_from_slice(&[0; 6]); // Ethernet padding is not IP
        let (mac, dst, port, ip) = tcp_packet(&f).expect("tcp");
        assert_eq!((mac, dst, port), (guest, Ipv4Addr::new(10, 0, 2, 2), 80));
        assert_eq!(ip.len(), ip_len);
        let back = ipv4_frame(HARNESS_MAC, guest, ip);
        assert_eq!(ether_type(&back), Some(EtherType::IPV4));
        assert_eq!(&back[14..], ip);
        let udp = udp_frame(
            &UdpAddrs {
                src_mac: guest,
                dst_mac: HARNESS_MAC,
                src_ip: Ipv4Addr::new(10, 0, 2, 15),
                dst_ip: Ipv4Addr::new(10, 0, 2, 2),
                src_port: 1,
                dst_port: 80,
            },
            b"x",
        )
        .expect("builds");
        assert_eq!(tcp_packet(&udp), None);
        for n in 0..80 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
            let _ = tcp_packet(&junk);
        }
    }

    #[test]
    fn garbage_is_ignored_not_a_panic() {
        for n in 0..80 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse(&junk);
        }
        assert_eq!(parse(&[]), Frame::Ignored("malformed"));
    }
}
