//! The segment's DHCP/BOOTP server (dhcproto): answers DISCOVER with OFFER
//! and REQUEST with ACK (or NAK) for the one lease of the run, fills in the
//! scenario's mask, router, siaddr, sname, file and options 12, 66, 67,
//! 209, 210, 211 (the `client` strings once the firmware's ACK is out),
//! logs what each client sent (message type, option 93, vendor class,
//! requested options) and misbehaves as told (silent, silent after N
//! ACKs, ignored DISCOVERs, NAKed REQUESTs, delayed replies). It works on
//! UDP payloads only; framing, addressing and fault injection are the
//! segment's. Requests are untrusted input: nothing here panics on them.

use super::config::{DhcpStrings, Resolved};
use super::log::EventLog;
use dhcproto::v4::{
    DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use std::net::Ipv4Addr;
use std::time::Duration;

/// RFC 951's minimum BOOTP message size; shorter replies are zero-padded.
pub const MIN_REPLY_LEN: usize = 300;

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Encoded message (padded to [`MIN_REPLY_LEN`]).
    pub payload: Vec<u8>,
    /// Send it after this long.
    pub delay: Duration,
    /// `OFFER`, `ACK`, `NAK` or `BOOTREPLY` (for logs).
    pub kind: &'static str,
}

/// The DHCP server of one run.
pub struct DhcpServer {
    cfg: Resolved,
    log: EventLog,
    discovers: u32,
    requests: u32,
    acks: u32,
    acks_before: u32,
}

fn mac_str(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl DhcpServer {
    /// A server handing out `cfg`'s lease, logging to `log`.
    pub fn new(cfg: &Resolved, log: EventLog) -> DhcpServer {
        DhcpServer {
            cfg: cfg.clone(),
            log,
            discovers: 0,
            requests: 0,
            acks: 0,
            acks_before: 0,
        }
    }

    /// ACKs sent so far.
    pub fn acks(&self) -> u32 {
        self.acks
    }

    /// Handles one request payload (UDP to port 67); `None`: no answer.
    pub fn handle(&mut self, payload: &[u8]) -> Option<Reply> {
        // dhcproto 0.15 asserts (panics) on some malformed options, e.g. an
        // address option whose length is not 4 (found by the network_packets
        // fuzz target); a guest's garbage must never take the server down.
        let decoded = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(payload)));
        let req = match decoded {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                self.log
                    .line(format!("dhcp: undecodable {} bytes: {e}", payload.len()));
                return None;
            }
            Err(_) => {
                self.log.line(format!(
                    "dhcp: malformed {} bytes (decoder panicked)",
                    payload.len()
                ));
                return None;
            }
        };
        if req.opcode() != Opcode::BootRequest {
            self.log.line("dhcp: ignored a BOOTREPLY");
            return None;
        }
        // chaddr() slices by hlen: check it before anything reads chaddr.
        if req.htype() != HType::Eth || req.hlen() != 6 {
            self.log.line(format!(
                "dhcp: ignored htype {:?} hlen {} (only Ethernet)",
                req.htype(),
                req.hlen()
            ));
            return None;
        }
        let mt = req.opts().msg_type();
        let arch = match req.opts().get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => Some(u16::from(*a)),
            _ => None,
        };
        let class = match req.opts().get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => String::from_utf8_lossy(v).into_owned(),
            _ => String::new(),
        };
        let params: Vec<u8> = match req.opts().get(OptionCode::ParameterRequestList) {
            Some(DhcpOption::ParameterRequestList(v)) => v.iter().map(|c| u8::from(*c)).collect(),
            _ => Vec::new(),
        };
        let name = match mt {
            None => "BOOTREQUEST".to_string(),
            Some(t) => format!("{t:?}").to_uppercase(),
        };
        self.log.line(format!(
            "dhcp: {name} xid={:#010x} mac={} arch={} class={:?} params={:?}",
            req.xid(),
            mac_str(req.chaddr()),
            arch.map(|a| format!("{a:#06x}"))
                .unwrap_or_else(|| "none".into()),
            class,
            params
        ));
        if let Some(want) = self.cfg.require_arch {
            if arch != Some(want) {
                self.log
                    .line(format!("dhcp: ignored: option 93 is not {want:#06x}"));
                return None;
            }
        }
        self.acks_before = self.acks;
        let b = &self.cfg.dhcp;
        if b.silent {
            self.log.line("dhcp: silent: no answer");
            return None;
        }
        if b.silent_after_acks.is_some_and(|n| self.acks >= n) {
            self.log.line(format!(
                "dhcp: silent after {} ACK(s): no answer",
                self.acks
            ));
            return None;
        }
        let (kind, reply) = match mt {
            Some(MessageType::Discover) => {
                self.discovers += 1;
                if b.ignore_discovers.contains(&self.discovers) {
                    self.log.line(format!(
                        "dhcp: DISCOVER #{} ignored (scenario)",
                        self.discovers
                    ));
                    return None;
                }
                ("OFFER", self.lease(&req, Some(MessageType::Offer)))
            }
            Some(MessageType::Request) => {
                self.requests += 1;
                let server_id = match req.opts().get(OptionCode::ServerIdentifier) {
                    Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
                    _ => None,
                };
                if server_id.is_some_and(|s| s != self.cfg.server_ip) {
                    self.log.line("dhcp: REQUEST for another server: ignored");
                    return None;
                }
                let asked = match req.opts().get(OptionCode::RequestedIpAddress) {
                    Some(DhcpOption::RequestedIpAddress(a)) => *a,
                    _ => req.ciaddr(),
                };
                if asked != self.cfg.client_ip {
                    self.log.line(format!(
                        "dhcp: REQUEST #{} for {asked}, not the lease {}: NAK",
                        self.requests, self.cfg.client_ip
                    ));
                    ("NAK", self.nak(&req, "address not available"))
                } else if b.nak_requests.contains(&self.requests) {
                    self.log
                        .line(format!("dhcp: REQUEST #{} NAKed (scenario)", self.requests));
                    ("NAK", self.nak(&req, "scenario NAK"))
                } else {
                    self.acks += 1;
                    ("ACK", self.lease(&req, Some(MessageType::Ack)))
                }
            }
            None => {
                self.acks += 1;
                ("BOOTREPLY", self.lease(&req, None))
            }
            Some(other) => {
                self.log.line(format!("dhcp: {other:?} ignored"));
                return None;
            }
        };
        let delay_ms = if self.acks_before >= b.delay_after_acks {
            b.delay_ms
        } else {
            0
        };
        let payload = match reply {
            Ok(p) => p,
            Err(e) => {
                self.log.line(format!("dhcp: cannot encode {kind}: {e}"));
                return None;
            }
        };
        let v = self.strings();
        self.log.line(format!(
            "dhcp: {kind} yiaddr={} siaddr={} file={:?} sname={:?} opt12={:?} opt66={:?} opt67={:?} opt209={:?} opt210={:?} opt211={:?}{}",
            if kind == "NAK" { Ipv4Addr::UNSPECIFIED } else { self.cfg.client_ip },
            if kind == "NAK" { Ipv4Addr::UNSPECIFIED } else { self.cfg.siaddr },
            v.file,
            v.sname,
            v.hostname,
            v.opt66,
            v.opt67,
            v.opt209,
            v.opt210,
            self.cfg.opt211,
            if b.delay_ms > 0 { format!(" after {delay_ms} ms") } else { String::new() }
        ));
        Some(Reply {
            payload,
            delay: Duration::from_millis(delay_ms),
            kind,
        })
    }

    fn base(&self, req: &Message, yiaddr: Ipv4Addr, siaddr: Ipv4Addr) -> Message {
        let mut m = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            siaddr,
            req.giaddr(),
            req.chaddr(),
        );
        m.set_opcode(Opcode::BootReply)
            .set_htype(HType::Eth)
            .set_flags(Flags::new(u16::from(req.flags())));
        m
    }

    /// The string values of this reply: `client`'s once the first ACK (the
    /// firmware's) was sent, else the plain ones.
    fn strings(&self) -> DhcpStrings {
        let c = &self.cfg;
        match &c.client {
            Some(late) if self.acks_before >= 1 => late.over(&c.strings),
            _ => c.strings.clone(),
        }
    }

    fn lease(&self, req: &Message, mt: Option<MessageType>) -> Result<Vec<u8>, String> {
        let c = &self.cfg;
        let v = self.strings();
        let mut m = self.base(req, c.client_ip, c.siaddr);
        if let Some(s) = &v.sname {
            m.set_sname_str(s);
        }
        if let Some(f) = &v.file {
            m.set_fname_str(f);
        }
        let o = m.opts_mut();
        if let Some(t) = mt {
            o.insert(DhcpOption::MessageType(t));
            o.insert(DhcpOption::ServerIdentifier(c.server_ip));
        }
        o.insert(DhcpOption::SubnetMask(c.netmask));
        if let Some(r) = c.router {
            o.insert(DhcpOption::Router(vec![r]));
        }
        o.insert(DhcpOption::AddressLeaseTime(c.lease_time));
        if let Some(h) = &v.hostname {
            o.insert(DhcpOption::Hostname(h.clone()));
        }
        if let Some(s) = &v.opt66 {
            o.insert(DhcpOption::TFTPServerName(s.as_bytes().to_vec()));
        }
        if let Some(s) = &v.opt67 {
            o.insert(DhcpOption::BootfileName(s.as_bytes().to_vec()));
        }
        for (code, v) in [(209u8, &v.opt209), (210u8, &v.opt210)] {
            if let Some(s) = v {
                o.insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::from(code),
                    s.as_bytes().to_vec(),
                )));
            }
        }
        if let Some(n) = c.opt211 {
            o.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::from(211u8),
                n.to_be_bytes().to_vec(),
            )));
        }
        encode(&m)
    }

    fn nak(&self, req: &Message, why: &str) -> Result<Vec<u8>, String> {
        let mut m = self.base(req, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(MessageType::Nak));
        o.insert(DhcpOption::ServerIdentifier(self.cfg.server_ip));
        o.insert(DhcpOption::Message(why.to_string()));
        encode(&m)
    }
}

fn encode(m: &Message) -> Result<Vec<u8>, String> {
    let mut v = Vec::with_capacity(MIN_REPLY_LEN);
    m.encode(&mut Encoder::new(&mut v))
        .map_err(|e| e.to_string())?;
    if v.len() < MIN_REPLY_LEN {
        v.resize(MIN_REPLY_LEN, 0);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::config::{Common, InProcessConfig};
    use super::*;
    use dhcproto::v4::Architecture;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn cfg(extra: &str) -> Resolved {
        let c: InProcessConfig = toml::from_str(&format!(
            r#"
            siaddr = "10.0.2.9"
            extra_servers = ["10.0.2.9"]
            sname = "bootsrv"
            opt66 = "10.0.2.9"
            opt67 = "boot/pxelinux.0"
            opt209 = "cfg/host.cfg"
            opt210 = "s390x/"
            opt211 = 30
            {extra}
            "#
        ))
        .expect("config parses");
        c.resolve(&Common {
            bootfile: Some("pxelinux.0"),
            ..Common::default()
        })
        .expect("config resolves")
    }

    fn request(mt: MessageType, requested: Option<Ipv4Addr>, arch: bool) -> Vec<u8> {
        let mut m = Message::new_with_id(
            0x1234,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        m.opts_mut().insert(DhcpOption::MessageType(mt));
        if arch {
            m.opts_mut()
                .insert(DhcpOption::ClientSystemArchitecture(Architecture::from(
                    0x1fu16,
                )));
        }
        if let Some(r) = requested {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(r));
            m.opts_mut()
                .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)));
        }
        let mut v = Vec::new();
        m.encode(&mut Encoder::new(&mut v)).expect("encodes");
        v
    }

    fn decode(r: &Reply) -> Message {
        Message::decode(&mut Decoder::new(&r.payload)).expect("reply decodes")
    }

    fn unknown(m: &Message, code: u8) -> Option<Vec<u8>> {
        match m.opts().get(OptionCode::from(code)) {
            Some(DhcpOption::Unknown(u)) => Some(u.data().to_vec()),
            _ => None,
        }
    }

    #[test]
    fn discover_gets_an_offer_with_every_option() {
        let mut s = DhcpServer::new(&cfg(""), EventLog::discard());
        let r = s
            .handle(&request(MessageType::Discover, None, true))
            .expect("offer");
        assert_eq!(r.kind, "OFFER");
        assert!(r.payload.len() >= MIN_REPLY_LEN);
        let m = decode(&r);
        assert_eq!(m.opcode(), Opcode::BootReply);
        assert_eq!(m.xid(), 0x1234);
        assert_eq!(m.chaddr(), &MAC);
        assert_eq!(m.yiaddr(), Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(m.siaddr(), Ipv4Addr::new(10, 0, 2, 9));
        assert_eq!(m.opts().msg_type(), Some(MessageType::Offer));
        let f = m.fname_str().expect("file").expect("utf-8");
        assert_eq!(f.trim_end_matches('\0'), "pxelinux.0");
        let sn = m.sname_str().expect("sname").expect("utf-8");
        assert_eq!(sn.trim_end_matches('\0'), "bootsrv");
        assert_eq!(
            m.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 2, 2)))
        );
        assert_eq!(
            m.opts().get(OptionCode::SubnetMask),
            Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(
            m.opts().get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 2, 2)]))
        );
        assert_eq!(
            m.opts().get(OptionCode::TFTPServerName),
            Some(&DhcpOption::TFTPServerName(b"10.0.2.9".to_vec()))
        );
        assert_eq!(
            m.opts().get(OptionCode::BootfileName),
            Some(&DhcpOption::BootfileName(b"boot/pxelinux.0".to_vec()))
        );
        assert_eq!(unknown(&m, 209).as_deref(), Some(&b"cfg/host.cfg"[..]));
        assert_eq!(unknown(&m, 210).as_deref(), Some(&b"s390x/"[..]));
        assert_eq!(unknown(&m, 211), Some(30u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn request_gets_an_ack_and_a_wrong_address_a_nak() {
        let mut s = DhcpServer::new(&cfg(""), EventLog::discard());
        let r = s
            .handle(&request(
                MessageType::Request,
                Some(Ipv4Addr::new(10, 0, 2, 15)),
                true,
            ))
            .expect("ack");
        assert_eq!(r.kind, "ACK");
        assert_eq!(decode(&r).opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(s.acks(), 1);
        let r = s
            .handle(&request(
                MessageType::Request,
                Some(Ipv4Addr::new(10, 0, 2, 77)),
                true,
            ))
            .expect("nak");
        let m = decode(&r);
        assert_eq!(m.opts().msg_type(), Some(MessageType::Nak));
        assert_eq!(m.yiaddr(), Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn nak_behaviour_naks_the_listed_request_only() {
        let mut s = DhcpServer::new(&cfg("dhcp.nak_requests = [2]"), EventLog::discard());
        let lease = Some(Ipv4Addr::new(10, 0, 2, 15));
        let kinds: Vec<&str> = (0..3)
            .map(|_| {
                s.handle(&request(MessageType::Request, lease, true))
                    .map(|r| r.kind)
                    .unwrap_or("none")
            })
            .collect();
        assert_eq!(kinds, ["ACK", "NAK", "ACK"]);
    }

    #[test]
    fn silent_and_silent_after_acks_and_delay() {
        let mut s = DhcpServer::new(&cfg("dhcp.silent = true"), EventLog::discard());
        assert!(s
            .handle(&request(MessageType::Discover, None, true))
            .is_none());

        let mut s = DhcpServer::new(
            &cfg("dhcp.silent_after_acks = 1\ndhcp.delay_ms = 250"),
            EventLog::discard(),
        );
        let offer = s
            .handle(&request(MessageType::Discover, None, true))
            .expect("offer");
        assert_eq!(offer.delay, Duration::from_millis(250));
        let lease = Some(Ipv4Addr::new(10, 0, 2, 15));
        assert!(s
            .handle(&request(MessageType::Request, lease, true))
            .is_some());
        assert!(s
            .handle(&request(MessageType::Discover, None, true))
            .is_none());

        let mut s = DhcpServer::new(
            &cfg("dhcp.delay_ms = 900\ndhcp.delay_after_acks = 1"),
            EventLog::discard(),
        );
        let delays: Vec<u128> = [
            request(MessageType::Discover, None, true),
            request(MessageType::Request, lease, true),
            request(MessageType::Discover, None, true),
            request(MessageType::Request, lease, true),
        ]
        .iter()
        .map(|r| s.handle(r).map_or(u128::MAX, |r| r.delay.as_millis()))
        .collect();
        assert_eq!(delays, [0, 0, 900, 900]);
    }

    #[test]
    fn option_93_filter_and_ignored_discovers() {
        let mut s = DhcpServer::new(
            &cfg("require_arch = 0x1f\ndhcp.ignore_discovers = [1]"),
            EventLog::discard(),
        );
        assert!(s
            .handle(&request(MessageType::Discover, None, false))
            .is_none());
        // First DISCOVER with the right arch is #1: ignored; #2 answered.
        assert!(s
            .handle(&request(MessageType::Discover, None, true))
            .is_none());
        assert!(s
            .handle(&request(MessageType::Discover, None, true))
            .is_some());
    }

    #[test]
    fn client_strings_replace_the_plain_ones_after_the_first_ack() {
        let mut s = DhcpServer::new(
            &cfg("hostname = \"plain\"\n[client]\nfile = \"a;$(b)\"\nopt209 = \"c\\nd\"\nhostname = \"`h`\""),
            EventLog::discard(),
        );
        let lease = Some(Ipv4Addr::new(10, 0, 2, 15));
        let first = decode(
            &s.handle(&request(MessageType::Request, lease, true))
                .expect("ack"),
        );
        assert_eq!(unknown(&first, 209).as_deref(), Some(&b"cfg/host.cfg"[..]));
        assert_eq!(
            first.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("plain".into()))
        );
        let second = decode(
            &s.handle(&request(MessageType::Discover, None, true))
                .expect("offer"),
        );
        let f = second.fname_str().expect("file").expect("utf-8");
        assert_eq!(f.trim_end_matches('\0'), "a;$(b)");
        assert_eq!(unknown(&second, 209).as_deref(), Some(&b"c\nd"[..]));
        assert_eq!(unknown(&second, 210).as_deref(), Some(&b"s390x/"[..]));
        assert_eq!(
            second.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("`h`".into()))
        );
    }

    #[test]
    fn malformed_requests_are_ignored() {
        let mut s = DhcpServer::new(&cfg(""), EventLog::discard());
        assert!(s.handle(&[]).is_none());
        assert!(s.handle(&[1u8; 10]).is_none());
        // hlen 200 would make dhcproto's chaddr() panic: must be refused.
        let mut p = request(MessageType::Discover, None, true);
        p[2] = 200;
        assert!(s.handle(&p).is_none());
        for n in 0..300 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 31 + 7) as u8).collect();
            let _ = s.handle(&junk);
        }
    }
}
