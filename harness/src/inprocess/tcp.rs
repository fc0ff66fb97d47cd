//! TCP on the in-process wire: the guest's connections to port 80 of the
//! server address are terminated by a smoltcp TCP/IP stack (a well-kept
//! userspace stack; hand-written TCP would be a second, untested one) and
//! each is relayed, byte for byte, to the run's HTTP server on loopback
//! ([`crate::http`]) over a real `tokio` TCP connection. The segment hands
//! in the guest's TCP frames and puts on the wire the frames this returns;
//! it owns no HTTP and applies no faults (the HTTP server does). Frames
//! are untrusted: smoltcp drops what it cannot parse.

use super::log::EventLog;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpListenEndpoint};
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The port the guest connects to.
pub const HTTP_PORT: u16 = 80;
/// Sockets kept listening, so that connections opened back to back (the
/// client opens one per file) never meet a closed port.
const LISTENERS: usize = 4;
/// Per-connection receive buffer (the window offered to the guest).
const RX_BUFFER: usize = 64 * 1024;
/// Per-connection send buffer: also the most data in flight towards the
/// guest, since smoltcp keeps unacknowledged data there. A burst larger
/// than the guest takes in at once under TCG is partly dropped. Measured
/// for the 8 MB kernel on a loaded 2-core machine: 256 KB took 24 s;
/// 64 KB ~1000 retransmissions and 2.8–4.7 s; 32 KB with Reno 0–88
/// retransmissions and 0.9–2.7 s (slirp: 0.4–1 s).
const TX_BUFFER: usize = 32 * 1024;

/// IP packets between the segment and smoltcp (`Medium::Ip`: the segment
/// adds and strips the Ethernet header).
#[derive(Default)]
struct Queue {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = vec![0u8; len];
        let r = f(&mut b);
        self.0.push_back(b);
        r
    }
}

impl Device for Queue {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = 1500;
        c
    }
}

/// What a relayed connection's backend task reports.
enum FromServer {
    Data(Vec<u8>),
    Closed(String),
}

/// One guest connection and its loopback twin.
struct Conn {
    peer: String,
    to_server: Option<mpsc::UnboundedSender<Vec<u8>>>,
    from_server: mpsc::UnboundedReceiver<FromServer>,
    pending: Vec<u8>,
    server_closed: bool,
    task: tokio::task::AbortHandle,
    up: u64,
    down: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The TCP side of the segment.
pub struct TcpRelay {
    iface: Interface,
    dev: Queue,
    sockets: SocketSet<'static>,
    listening: Vec<SocketHandle>,
    conns: HashMap<SocketHandle, Conn>,
    server_ip: Ipv4Addr,
    backend: SocketAddr,
    wake: mpsc::UnboundedSender<()>,
    log: EventLog,
    epoch: Instant,
}

impl TcpRelay {
    /// A stack owning `server_ip`/`prefix` that relays port 80 to
    /// `backend`; `wake` is signalled when a backend has data (the
    /// segment then calls [`TcpRelay::poll`]).
    pub fn new(
        server_ip: Ipv4Addr,
        prefix: u8,
        backend: SocketAddr,
        wake: mpsc::UnboundedSender<()>,
        log: EventLog,
    ) -> TcpRelay {
        let mut dev = Queue::default();
        let epoch = Instant::now();
        let mut iface = Interface::new(
            Config::new(HardwareAddress::Ip),
            &mut dev,
            smoltcp::time::Instant::from_millis(0),
        );
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(server_ip), prefix));
        });
        log.line(format!(
            "tcp: {server_ip}:{HTTP_PORT} relayed to the HTTP server on {backend}"
        ));
        let mut r = TcpRelay {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            listening: Vec::new(),
            conns: HashMap::new(),
            server_ip,
            backend,
            wake,
            log,
            epoch,
        };
        r.listen();
        r
    }

    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    /// Keeps [`LISTENERS`] sockets listening.
    fn listen(&mut self) {
        while self.listening.len() < LISTENERS {
            let mut s = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; RX_BUFFER]),
                tcp::SocketBuffer::new(vec![0; TX_BUFFER]),
            );
            // Reno backs off when the guest drops a burst; without
            // congestion control a lost burst is resent whole at each RTO.
            s.set_congestion_control(tcp::CongestionControl::Reno);
            let ep = IpListenEndpoint {
                addr: Some(IpAddress::Ipv4(self.server_ip)),
                port: HTTP_PORT,
            };
            if let Err(e) = s.listen(ep) {
                self.log.line(format!("tcp: cannot listen: {e}"));
                return;
            }
            let h = self.sockets.add(s);
            self.listening.push(h);
        }
    }

    /// Whether an IPv4 packet is for this stack (TCP to port 80 of the
    /// server address).
    pub fn wants(&self, dst: Ipv4Addr, dst_port: u16) -> bool {
        dst == self.server_ip && dst_port == HTTP_PORT
    }

    /// Takes one IP packet from the guest; returns the IP packets to send.
    pub fn inbound(&mut self, ip_packet: &[u8]) -> Vec<Vec<u8>> {
        self.dev.rx.push_back(ip_packet.to_vec());
        self.poll()
    }

    /// How long until smoltcp's next timer (retransmission, delayed ACK).
    pub fn delay(&mut self) -> Option<Duration> {
        let now = self.now();
        self.iface
            .poll_delay(now, &self.sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
    }

    /// Runs the stack: packets in, socket data to and from the backends,
    /// timers; returns the IP packets to send.
    pub fn poll(&mut self) -> Vec<Vec<u8>> {
        for _ in 0..8 {
            let now = self.now();
            let _ = self.iface.poll(now, &mut self.dev, &mut self.sockets);
            // smoltcp's egress sends one segment per socket per call: call
            // it until it stops sending (else the flow is ACK-clocked, two
            // segments per guest ACK).
            for _ in 0..4096 {
                let before = self.dev.tx.len();
                let _ = self
                    .iface
                    .poll_egress(now, &mut self.dev, &mut self.sockets);
                if self.dev.tx.len() == before {
                    break;
                }
            }
            if !self.service() {
                break;
            }
        }
        self.dev.tx.drain(..).collect()
    }

    /// Moves data between sockets and backends; true if anything moved.
    fn service(&mut self) -> bool {
        let mut moved = false;
        // Listeners that got a connection become relayed connections.
        let mut i = 0;
        while i < self.listening.len() {
            let h = self.listening[i];
            let s = self.sockets.get::<tcp::Socket>(h);
            if s.state() == tcp::State::Listen {
                i += 1;
                continue;
            }
            self.listening.swap_remove(i);
            let peer = s
                .remote_endpoint()
                .map_or_else(|| "?".into(), |e| e.to_string());
            self.conns.insert(h, self.connect(peer));
            moved = true;
        }
        self.listen();
        let mut gone = Vec::new();
        for (h, c) in self.conns.iter_mut() {
            let s = self.sockets.get_mut::<tcp::Socket>(*h);
            // guest → server
            while s.can_recv() {
                let mut buf = vec![0u8; 65536];
                match s.recv_slice(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        c.up += n as u64;
                        if let Some(tx) = &c.to_server {
                            let _ = tx.send(buf);
                        }
                        moved = true;
                    }
                }
            }
            // The guest sent its FIN and everything before it was passed
            // on: shut the backend's side too. (Not `!may_recv()`, which is
            // also true while the handshake is still going on.)
            let guest_done = matches!(
                s.state(),
                tcp::State::CloseWait
                    | tcp::State::LastAck
                    | tcp::State::Closing
                    | tcp::State::TimeWait
                    | tcp::State::Closed
            );
            if guest_done && !s.can_recv() && c.to_server.take().is_some() {
                moved = true;
            }
            // server → guest
            while let Ok(m) = c.from_server.try_recv() {
                match m {
                    FromServer::Data(d) => c.pending.extend_from_slice(&d),
                    FromServer::Closed(why) => {
                        if !c.server_closed {
                            self.log.line(format!("tcp: {}: server side {why}", c.peer));
                        }
                        c.server_closed = true;
                    }
                }
            }
            while !c.pending.is_empty() && s.can_send() {
                match s.send_slice(&c.pending) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        c.pending.drain(..n);
                        c.down += n as u64;
                        moved = true;
                    }
                }
            }
            if c.server_closed && c.pending.is_empty() && s.may_send() {
                s.close();
                moved = true;
            }
            // Closed, or back to listening after a reset handshake.
            if matches!(
                s.state(),
                tcp::State::Closed | tcp::State::TimeWait | tcp::State::Listen
            ) {
                gone.push(*h);
            }
        }
        for h in gone {
            if let Some(c) = self.conns.remove(&h) {
                self.log.line(format!(
                    "tcp: {}: closed, {} bytes from the guest, {} to it",
                    c.peer, c.up, c.down
                ));
            }
            self.sockets.remove(h);
            moved = true;
        }
        moved
    }

    /// Starts the loopback twin of a new guest connection.
    fn connect(&self, peer: String) -> Conn {
        let (to_server, mut up_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (down_tx, from_server) = mpsc::unbounded_channel();
        let backend = self.backend;
        let wake = self.wake.clone();
        self.log.line(format!("tcp: {peer}: connected"));
        let task = tokio::spawn(async move {
            let stream = match tokio::net::TcpStream::connect(backend).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = down_tx.send(FromServer::Closed(format!("unreachable: {e}")));
                    let _ = wake.send(());
                    return;
                }
            };
            let (mut rd, mut wr) = stream.into_split();
            let writer = async move {
                while let Some(d) = up_rx.recv().await {
                    if wr.write_all(&d).await.is_err() {
                        return;
                    }
                }
                let _ = wr.shutdown().await;
                // Keep the reader going: the answer may still be coming.
                std::future::pending::<()>().await;
            };
            let reader = async {
                let mut buf = vec![0u8; 65536];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) => break "closed".to_string(),
                        Ok(n) => {
                            let _ = down_tx.send(FromServer::Data(buf[..n].to_vec()));
                            let _ = wake.send(());
                        }
                        Err(e) => break format!("failed: {e}"),
                    }
                }
            };
            let why = tokio::select! {
                w = reader => w,
                _ = writer => "writer ended".into(),
            };
            let _ = down_tx.send(FromServer::Closed(why));
            let _ = wake.send(());
        })
        .abort_handle();
        Conn {
            peer,
            to_server: Some(to_server),
            from_server,
            pending: Vec::new(),
            server_closed: false,
            task,
            up: 0,
            down: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest made of a second smoltcp stack: connects to port 80, sends a
    /// request, reads until the relay closes; the backend answers 200 000
    /// bytes and closes. Everything must arrive, in order, both ways.
    #[test]
    fn relays_a_connection_both_ways_and_closes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let backend = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = backend.local_addr().expect("addr");
            let answer: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let sent = answer.clone();
            let server = tokio::spawn(async move {
                let (mut c, _) = backend.accept().await.expect("accept");
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    let n = c.read(&mut buf).await.expect("read");
                    assert!(n > 0, "request cut short");
                    req.extend_from_slice(&buf[..n]);
                }
                c.write_all(&sent).await.expect("write");
                c.shutdown().await.expect("shutdown");
                req
            });
            let (wake, _woken) = mpsc::unbounded_channel();
            let server_ip = Ipv4Addr::new(10, 0, 2, 2);
            let mut relay = TcpRelay::new(server_ip, 24, addr, wake, EventLog::discard());
            assert!(relay.wants(server_ip, 80) && !relay.wants(server_ip, 81));

            let mut dev = Queue::default();
            let now = || smoltcp::time::Instant::from_millis(0);
            let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut dev, now());
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::v4(10, 0, 2, 15), 24));
            });
            let mut sockets = SocketSet::new(Vec::new());
            let h = sockets.add(tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 65536]),
                tcp::SocketBuffer::new(vec![0; 65536]),
            ));
            sockets
                .get_mut::<tcp::Socket>(h)
                .connect(iface.context(), (IpAddress::v4(10, 0, 2, 2), 80), 40000)
                .expect("connect");
            let request = b"GET /k HTTP/1.0\r\n\r\n";
            let (mut asked, mut got) = (false, Vec::new());
            let start = Instant::now();
            loop {
                assert!(start.elapsed() < Duration::from_secs(20), "stuck");
                let t = smoltcp::time::Instant::from_micros(start.elapsed().as_micros() as i64);
                iface.poll(t, &mut dev, &mut sockets);
                let s = sockets.get_mut::<tcp::Socket>(h);
                if !asked && s.may_send() {
                    assert_eq!(s.send_slice(request).expect("send"), request.len());
                    asked = true;
                }
                while s.can_recv() {
                    s.recv(|b| {
                        got.extend_from_slice(b);
                        (b.len(), ())
                    })
                    .expect("recv");
                }
                if asked && !s.may_recv() && s.state() == tcp::State::CloseWait {
                    s.close();
                }
                if s.state() == tcp::State::Closed || s.state() == tcp::State::TimeWait {
                    break;
                }
                iface.poll(t, &mut dev, &mut sockets);
                let mut back = Vec::new();
                for p in dev.tx.drain(..) {
                    back.extend(relay.inbound(&p));
                }
                back.extend(relay.poll());
                dev.rx.extend(back);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(got.len(), answer.len());
            assert!(got == answer, "bytes changed on the way");
            let req = server.await.expect("server");
            assert_eq!(req, request);
        });
    }
}
