//! The virtual Ethernet segment: one task that owns the harness end of
//! QEMU's `-netdev dgram` UNIX socket, records every frame in the pcap,
//! answers ARP for the harness addresses, hands DHCP to the DHCP server,
//! relays TFTP between the guest and the loopback async-tftp server
//! (one loopback socket per guest flow, the server's transfer port reused
//! as the guest-side port) and applies the seeded faults. Everything it
//! spawns lives in its `JoinSet`, so dropping the segment (when the run's
//! guard aborts it) stops it all. It ignores whatever it does not serve.

use super::config::{PacketKind, Resolved};
use super::dhcp::DhcpServer;
use super::faults::FaultInjector;
use super::log::EventLog;
use super::pcap::Capture;
use super::relay::{self, op, Flow};
use super::tcp::TcpRelay;
use super::wire::{self, Frame, UdpAddrs, HARNESS_MAC};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{UdpSocket, UnixDatagram};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Internal events of the segment task.
pub enum Event {
    /// A frame to put on the wire now (faults already decided).
    Send(Vec<u8>),
    /// A guest frame to process now (faults already decided).
    Inbound(Vec<u8>),
    /// A datagram from the TFTP server for the flow of `guest`.
    FromServer {
        /// The flow's guest address and port.
        guest: (Ipv4Addr, u16),
        /// The loopback socket it arrived on (to drop stale flows' data).
        via: SocketAddr,
        /// The server's transfer address.
        from: SocketAddr,
        /// The payload.
        payload: Vec<u8>,
    },
}

/// The segment's state.
pub struct Segment {
    cfg: Resolved,
    sock: Arc<UnixDatagram>,
    qemu_path: PathBuf,
    tftp_addr: SocketAddr,
    guest_mac: Option<[u8; 6]>,
    dhcp: DhcpServer,
    faults: FaultInjector,
    capture: Capture,
    dhcp_log: EventLog,
    tftp_log: EventLog,
    flows: HashMap<(Ipv4Addr, u16), Flow>,
    names: Arc<Mutex<HashMap<SocketAddr, String>>>,
    tx: mpsc::UnboundedSender<Event>,
    rx: Option<mpsc::UnboundedReceiver<Event>>,
    tasks: JoinSet<()>,
    frames_in: u64,
    frames_out: u64,
    ignored: BTreeMap<&'static str, u64>,
    send_errors: u64,
    tcp: Option<TcpRelay>,
    tcp_wake: Option<mpsc::UnboundedReceiver<()>>,
}

/// What the segment needs to start.
pub struct SegmentParts {
    /// Settings.
    pub cfg: Resolved,
    /// The harness socket (bound).
    pub sock: UnixDatagram,
    /// QEMU's socket path.
    pub qemu_path: PathBuf,
    /// The TFTP server's loopback address.
    pub tftp_addr: SocketAddr,
    /// The TFTP server future.
    pub tftp_serve: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    /// Loopback socket → guest flow names, shared with the TFTP handler.
    pub names: Arc<Mutex<HashMap<SocketAddr, String>>>,
    /// The capture.
    pub capture: Capture,
    /// `dhcp.log`.
    pub dhcp_log: EventLog,
    /// `tftp.log`.
    pub tftp_log: EventLog,
    /// The TCP relay to the run's HTTP server (and its wake-up channel),
    /// when the scenario has `[http]`.
    pub tcp: Option<(TcpRelay, mpsc::UnboundedReceiver<()>)>,
}

impl Segment {
    /// Builds the segment; [`Segment::run`] serves it.
    pub fn new(p: SegmentParts) -> Segment {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(p.tftp_serve);
        Segment {
            dhcp: DhcpServer::new(&p.cfg, p.dhcp_log.clone()),
            faults: FaultInjector::new(p.cfg.seed, &p.cfg.faults),
            cfg: p.cfg,
            sock: Arc::new(p.sock),
            qemu_path: p.qemu_path,
            tftp_addr: p.tftp_addr,
            guest_mac: None,
            capture: p.capture,
            dhcp_log: p.dhcp_log,
            tftp_log: p.tftp_log,
            flows: HashMap::new(),
            names: p.names,
            tx,
            rx: Some(rx),
            tasks,
            frames_in: 0,
            frames_out: 0,
            ignored: BTreeMap::new(),
            send_errors: 0,
            tcp_wake: None,
            tcp: None,
        }
        .with_tcp(p.tcp)
    }

    fn with_tcp(mut self, tcp: Option<(TcpRelay, mpsc::UnboundedReceiver<()>)>) -> Segment {
        if let Some((relay, wake)) = tcp {
            self.tcp = Some(relay);
            self.tcp_wake = Some(wake);
        }
        self
    }

    /// Runs the TCP relay and puts its packets on the wire.
    async fn tcp_poll(&mut self, inbound: Option<&[u8]>) {
        let (Some(tcp), Some(mac)) = (self.tcp.as_mut(), self.guest_mac) else {
            return;
        };
        let out = match inbound {
            Some(p) => tcp.inbound(p),
            None => tcp.poll(),
        };
        for ip in out {
            self.put(wire::ipv4_frame(HARNESS_MAC, mac, &ip)).await;
        }
    }

    /// Serves until dropped.
    pub async fn run(mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let sock = Arc::clone(&self.sock);
        let mut buf = vec![0u8; 65536];
        let mut tcp_wake = self.tcp_wake.take();
        loop {
            let tcp_timer = self.tcp.as_mut().and_then(|t| t.delay());
            tokio::select! {
                Some(()) = async { tcp_wake.as_mut()?.recv().await }, if tcp_wake.is_some() => {
                    self.tcp_poll(None).await;
                }
                _ = tokio::time::sleep(tcp_timer.unwrap_or_default()), if tcp_timer.is_some() => {
                    self.tcp_poll(None).await;
                }
                r = sock.recv(&mut buf) => match r {
                    Ok(n) => {
                        let frame = buf[..n].to_vec();
                        self.record(&frame);
                        self.frames_in += 1;
                        self.inbound(frame, true).await;
                    }
                    Err(e) => {
                        self.dhcp_log.line(format!("segment: receive failed, stopping: {e}"));
                        break;
                    }
                },
                Some(ev) = rx.recv() => match ev {
                    Event::Send(f) => self.put(f).await,
                    Event::Inbound(f) => self.inbound(f, false).await,
                    Event::FromServer { guest, via, from, payload } => {
                        self.server_datagram(guest, via, from, payload).await
                    }
                },
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    fn record(&mut self, frame: &[u8]) {
        let mut caplen = usize::MAX;
        if !self.cfg.pcap_full_data {
            if let Frame::Udp { payload, .. } = wire::parse(frame) {
                if relay::opcode(payload) == Some(op::DATA) {
                    // Headers plus the first 64 payload bytes.
                    caplen = frame.len() - payload.len() + 4 + 64;
                }
            }
        }
        if let Err(e) = self.capture.record(frame, caplen) {
            self.dhcp_log.line(e);
        }
    }

    /// Puts a frame on the wire (recorded in the pcap).
    async fn put(&mut self, frame: Vec<u8>) {
        self.record(&frame);
        self.frames_out += 1;
        if let Err(e) = self.sock.send_to(&frame, &self.qemu_path).await {
            self.send_errors += 1;
            if self.send_errors <= 3 {
                self.dhcp_log
                    .line(format!("segment: sending to QEMU failed: {e}"));
            }
        }
    }

    /// Sends a frame of fault class `kind`, applying the faults.
    async fn emit(&mut self, frame: Vec<u8>, kind: Option<PacketKind>) {
        let a = match kind {
            Some(k) => self.faults.decide(k),
            None => Default::default(),
        };
        if a.drop {
            return;
        }
        for _ in 0..a.duplicates {
            self.later(a.delay, Event::Send(frame.clone())).await;
        }
        self.later(a.delay, Event::Send(frame)).await;
    }

    async fn later(&mut self, delay: Duration, ev: Event) {
        if delay.is_zero() {
            match ev {
                Event::Send(f) => self.put(f).await,
                other => {
                    let _ = self.tx.send(other);
                }
            }
            return;
        }
        let tx = self.tx.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(ev);
        });
    }

    fn ignore(&mut self, why: &'static str) {
        *self.ignored.entry(why).or_insert(0) += 1;
    }

    async fn inbound(&mut self, frame: Vec<u8>, fresh: bool) {
        if let Some((mac, dst, port, ip)) = wire::tcp_packet(&frame) {
            if self.tcp.as_ref().is_some_and(|t| t.wants(dst, port)) {
                self.guest_mac = Some(mac);
                let ip = ip.to_vec();
                self.tcp_poll(Some(&ip)).await;
                return;
            }
        }
        let (kind, is_ours) = match wire::parse(&frame) {
            Frame::Udp {
                dst_port, payload, ..
            } => {
                if dst_port == 67 {
                    (Some(PacketKind::Dhcp), true)
                } else {
                    (relay::kind(payload), true)
                }
            }
            _ => (None, false),
        };
        if fresh && is_ours {
            if let Some(k) = kind {
                let a = self.faults.decide(k);
                if a.drop {
                    return;
                }
                for _ in 0..a.duplicates {
                    self.later(a.delay, Event::Inbound(frame.clone())).await;
                }
                if !a.delay.is_zero() {
                    self.later(a.delay, Event::Inbound(frame)).await;
                    return;
                }
            }
        }
        match wire::parse(&frame) {
            Frame::ArpRequest {
                sender_mac,
                sender_ip,
                target_ip,
            } => {
                self.guest_mac = Some(sender_mac);
                if self.cfg.addresses.contains(&target_ip) {
                    match wire::arp_reply(HARNESS_MAC, target_ip, sender_mac, sender_ip) {
                        Ok(f) => self.put(f).await,
                        Err(e) => self.dhcp_log.line(format!("arp: {e}")),
                    }
                } else {
                    self.ignore("arp for another address");
                }
            }
            Frame::Udp {
                src_mac,
                src_ip,
                dst_ip,
                src_port,
                dst_port,
                payload,
            } => {
                self.guest_mac = Some(src_mac);
                if dst_port == 67 {
                    self.dhcp_request(src_mac, payload.to_vec()).await;
                } else if self.cfg.tftp_on.contains(&dst_ip) {
                    let payload = payload.to_vec();
                    self.tftp_from_guest(src_mac, (src_ip, src_port), dst_ip, dst_port, payload)
                        .await;
                } else if self.cfg.addresses.contains(&dst_ip) && dst_port == 69 {
                    self.tftp_log.line(format!(
                        "tftp: {src_ip}:{src_port} asked {dst_ip}, which does not serve TFTP: ignored"
                    ));
                } else {
                    self.ignore("udp not served");
                }
            }
            Frame::Ignored(why) => self.ignore(why),
        }
    }

    async fn dhcp_request(&mut self, src_mac: [u8; 6], payload: Vec<u8>) {
        let Some(r) = self.dhcp.handle(&payload) else {
            return;
        };
        let addrs = UdpAddrs {
            src_mac: HARNESS_MAC,
            dst_mac: src_mac,
            src_ip: self.cfg.server_ip,
            dst_ip: Ipv4Addr::BROADCAST,
            src_port: 67,
            dst_port: 68,
        };
        match wire::udp_frame(&addrs, &r.payload) {
            Ok(f) => {
                if r.delay.is_zero() {
                    self.emit(f, Some(PacketKind::Dhcp)).await;
                } else {
                    // The scenario's delay, then the faults as usual.
                    let a = self.faults.decide(PacketKind::Dhcp);
                    if !a.drop {
                        for _ in 0..=a.duplicates {
                            self.later(r.delay.saturating_add(a.delay), Event::Send(f.clone()))
                                .await;
                        }
                    }
                }
            }
            Err(e) => self.dhcp_log.line(format!("dhcp: cannot frame reply: {e}")),
        }
    }

    async fn tftp_from_guest(
        &mut self,
        mac: [u8; 6],
        guest: (Ipv4Addr, u16),
        server_ip: Ipv4Addr,
        dst_port: u16,
        payload: Vec<u8>,
    ) {
        if dst_port == 69 {
            let opc = relay::opcode(&payload);
            if opc != Some(op::RRQ) && opc != Some(op::WRQ) {
                self.ignore("port 69, not a request");
                return;
            }
            if let Some(f) = self.flows.get(&guest) {
                if f.request == payload && !f.finished && f.server_ip == server_ip {
                    // A retransmitted (or duplicated) request of a running
                    // transfer: pass it on while the server has not answered
                    // (it ignores repeats from one peer); once it has, its
                    // own retransmissions take care of a lost answer.
                    if f.server_tid.is_none() {
                        let sock = Arc::clone(&f.sock);
                        let _ = sock.send_to(&payload, self.tftp_addr).await;
                    }
                    self.ignore("tftp: repeated request");
                    return;
                }
            }
            if let Some(old) = self.flows.remove(&guest) {
                self.finish(old, "replaced by a new request from the same port");
            }
            self.new_flow(mac, guest, server_ip, payload).await;
            return;
        }
        let Some(f) = self.flows.get_mut(&guest) else {
            self.ignore("tftp: no flow");
            return;
        };
        let Some(tid) = f.server_tid else {
            self.ignore("tftp: flow not answered yet");
            return;
        };
        if f.server_ip != server_ip || tid.port() != dst_port {
            self.ignore("tftp: wrong transfer id");
            return;
        }
        let sock = Arc::clone(&f.sock);
        let mut done = false;
        match relay::opcode(&payload) {
            Some(op::ACK) => done = !f.finished && f.completes(&payload),
            Some(op::ERROR) => {
                let (c, m) = relay::error(&payload).unwrap_or((0, String::new()));
                if !f.finished {
                    f.finished = true;
                    let line = format!(
                        "tftp: {}: guest sent error {c} {m:?} after {} bytes",
                        f.label(),
                        f.bytes
                    );
                    self.tftp_log.line(line);
                }
            }
            _ => {}
        }
        if done {
            f.finished = true;
            let line = f.done_line();
            self.tftp_log.line(line);
        }
        let _ = sock.send_to(&payload, tid).await;
    }

    async fn new_flow(
        &mut self,
        mac: [u8; 6],
        guest: (Ipv4Addr, u16),
        server_ip: Ipv4Addr,
        payload: Vec<u8>,
    ) {
        let strs = relay::strings(&payload);
        let file = strs.first().cloned().unwrap_or_default();
        let asked = strs.get(2..).map(|s| s.join(" ")).unwrap_or_default();
        let what = if relay::opcode(&payload) == Some(op::WRQ) {
            "WRQ"
        } else {
            "RRQ"
        };
        let sock = match UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.tftp_log
                    .line(format!("tftp: cannot open a relay socket: {e}"));
                return;
            }
        };
        let Ok(local) = sock.local_addr() else {
            return;
        };
        let mut flow = Flow {
            server_ip,
            guest,
            guest_mac: mac,
            request: payload.clone(),
            sock: Arc::clone(&sock),
            server_tid: None,
            file,
            asked: asked.clone(),
            blksize: 512,
            tsize: None,
            bytes: 0,
            blocks: 0,
            last_data: None,
            resent: 0,
            started: Instant::now(),
            finished: false,
            task: None,
        };
        self.tftp_log
            .line(format!("tftp: {}: {what} options [{asked}]", flow.label()));
        if let Ok(mut n) = self.names.lock() {
            n.insert(local, format!("{}:{}->{}", guest.0, guest.1, server_ip));
        }
        let tx = self.tx.clone();
        let rsock = Arc::clone(&sock);
        let h = self.tasks.spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = rsock.recv_from(&mut buf).await {
                let ev = Event::FromServer {
                    guest,
                    via: local,
                    from,
                    payload: buf[..n].to_vec(),
                };
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
        flow.task = Some(h);
        let _ = sock.send_to(&payload, self.tftp_addr).await;
        self.flows.insert(guest, flow);
    }

    async fn server_datagram(
        &mut self,
        guest: (Ipv4Addr, u16),
        via: SocketAddr,
        from: SocketAddr,
        payload: Vec<u8>,
    ) {
        let Some(f) = self.flows.get_mut(&guest) else {
            return;
        };
        if f.sock.local_addr().ok() != Some(via) {
            return; // a replaced flow's late datagram
        }
        f.server_tid = Some(from);
        let mut line = None;
        match relay::opcode(&payload) {
            Some(op::DATA) => f.on_data(&payload),
            Some(op::OACK) => {
                let o = f.on_oack(&payload);
                line = Some(format!("tftp: {}: OACK [{o}]", f.label()));
            }
            Some(op::ERROR) => {
                let (c, m) = relay::error(&payload).unwrap_or((0, String::new()));
                if !f.finished {
                    f.finished = true;
                    line = Some(format!(
                        "tftp: {}: server error {c} {m:?} after {} bytes",
                        f.label(),
                        f.bytes
                    ));
                }
            }
            _ => {}
        }
        let addrs = UdpAddrs {
            src_mac: HARNESS_MAC,
            dst_mac: f.guest_mac,
            src_ip: f.server_ip,
            dst_ip: guest.0,
            src_port: from.port(),
            dst_port: guest.1,
        };
        if let Some(l) = line {
            self.tftp_log.line(l);
        }
        let kind = relay::kind(&payload);
        match wire::udp_frame(&addrs, &payload) {
            Ok(frame) => self.emit(frame, kind).await,
            Err(e) => self.tftp_log.line(format!("tftp: cannot frame: {e}")),
        }
    }

    fn finish(&self, f: Flow, why: &str) {
        if !f.finished {
            self.tftp_log.line(format!(
                "tftp: {}: incomplete ({why}): {} bytes in {} blocks",
                f.label(),
                f.bytes,
                f.blocks
            ));
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let flows: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        for f in flows {
            self.finish(f, "run ended");
        }
        let s = self.faults.stats;
        let summary = format!(
            "segment: {} frames from the guest, {} to it; ignored {:?}; faults: {} dropped, {} delayed, {} duplicated; {} DHCP ACKs",
            self.frames_in,
            self.frames_out,
            self.ignored,
            s.dropped,
            s.delayed,
            s.duplicated,
            self.dhcp.acks()
        );
        self.dhcp_log.line(&summary);
        self.tftp_log.line(summary);
    }
}
