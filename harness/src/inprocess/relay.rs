//! The TFTP relay's bookkeeping: which guest flow (guest address and port)
//! talks to which loopback socket and server transfer port, and what each
//! transfer has done (file, negotiated options, bytes, outcome, rate) for
//! `tftp.log`. TFTP packets are decoded here only as far as logging and
//! fault classification need (opcode, block number, options); the protocol
//! itself is async-tftp's. Packets are untrusted: parsing never panics.

use super::config::PacketKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

/// TFTP opcodes.
pub mod op {
    /// Read request.
    pub const RRQ: u16 = 1;
    /// Write request.
    pub const WRQ: u16 = 2;
    /// Data.
    pub const DATA: u16 = 3;
    /// Acknowledgement.
    pub const ACK: u16 = 4;
    /// Error.
    pub const ERROR: u16 = 5;
    /// Option acknowledgement.
    pub const OACK: u16 = 6;
}

/// The opcode of a TFTP packet.
pub fn opcode(p: &[u8]) -> Option<u16> {
    let b = p.get(0..2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The block number of a DATA or ACK packet.
pub fn block(p: &[u8]) -> Option<u16> {
    let b = p.get(2..4)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The NUL-separated strings after the opcode (RRQ/WRQ: file, mode,
/// option, value, …; OACK: option, value, …), lossily decoded.
pub fn strings(p: &[u8]) -> Vec<String> {
    let body = p.get(2..).unwrap_or_default();
    let mut v: Vec<String> = body
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if body.last() == Some(&0) {
        v.pop();
    }
    v
}

/// The value of option `name` (case-insensitive) in `pairs`.
pub fn option(pairs: &[String], name: &str) -> Option<String> {
    pairs
        .chunks(2)
        .find(|c| c.len() == 2 && c[0].eq_ignore_ascii_case(name))
        .map(|c| c[1].clone())
}

/// The fault class of a TFTP packet, by opcode.
pub fn kind(p: &[u8]) -> Option<PacketKind> {
    match opcode(p)? {
        op::RRQ | op::WRQ => Some(PacketKind::TftpRequest),
        op::DATA => Some(PacketKind::TftpData),
        op::ACK => Some(PacketKind::TftpAck),
        _ => None,
    }
}

/// A TFTP error packet's code and message.
pub fn error(p: &[u8]) -> Option<(u16, String)> {
    if opcode(p)? != op::ERROR {
        return None;
    }
    let code = block(p)?;
    let msg = p.get(4..).unwrap_or_default();
    let msg = msg.split(|b| *b == 0).next().unwrap_or_default();
    Some((code, String::from_utf8_lossy(msg).into_owned()))
}

/// One guest transfer being relayed.
pub struct Flow {
    /// The harness address the guest talks to.
    pub server_ip: Ipv4Addr,
    /// The guest's address and port.
    pub guest: (Ipv4Addr, u16),
    /// The guest's MAC.
    pub guest_mac: [u8; 6],
    /// The request as first sent (to tell retransmissions from new ones).
    pub request: Vec<u8>,
    /// The loopback socket carrying it.
    pub sock: std::sync::Arc<tokio::net::UdpSocket>,
    /// The server's transfer port, once it answered.
    pub server_tid: Option<SocketAddr>,
    /// Requested file.
    pub file: String,
    /// Options the guest asked for.
    pub asked: String,
    /// Negotiated block size (512 until an OACK says otherwise).
    pub blksize: usize,
    /// `tsize` from the OACK.
    pub tsize: Option<u64>,
    /// Payload bytes of distinct DATA blocks sent.
    pub bytes: u64,
    /// Distinct DATA blocks sent.
    pub blocks: u64,
    /// Last DATA block number sent, and whether it was short (the last).
    pub last_data: Option<(u16, bool)>,
    /// DATA retransmissions seen.
    pub resent: u64,
    /// When the request arrived.
    pub started: Instant,
    /// Set when the outcome was logged.
    pub finished: bool,
    /// Aborts the socket's receive task when the flow is dropped.
    pub task: Option<tokio::task::AbortHandle>,
}

impl Drop for Flow {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl Flow {
    /// `10.0.2.15:2070->10.0.2.2 "file"` for log lines.
    pub fn label(&self) -> String {
        format!(
            "{}:{}->{} {:?}",
            self.guest.0, self.guest.1, self.server_ip, self.file
        )
    }

    /// Accounts a DATA packet from the server.
    pub fn on_data(&mut self, p: &[u8]) {
        let (Some(b), len) = (block(p), p.len().saturating_sub(4)) else {
            return;
        };
        let short = len < self.blksize;
        let next = match self.last_data {
            None => 1,
            Some((l, _)) => l.wrapping_add(1),
        };
        if b == next {
            self.bytes += len as u64;
            self.blocks += 1;
            self.last_data = Some((b, short));
        } else {
            self.resent += 1;
        }
    }

    /// Accounts an OACK from the server; returns its options for the log.
    pub fn on_oack(&mut self, p: &[u8]) -> String {
        let opts = strings(p);
        if let Some(b) = option(&opts, "blksize").and_then(|s| s.parse().ok()) {
            self.blksize = b;
        }
        self.tsize = option(&opts, "tsize").and_then(|s| s.parse().ok());
        opts.join(" ")
    }

    /// Whether an ACK from the guest completes the transfer.
    pub fn completes(&self, p: &[u8]) -> bool {
        matches!((self.last_data, block(p)), (Some((l, true)), Some(b)) if l == b)
    }

    /// The outcome line for a completed transfer.
    pub fn done_line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.bytes as f64 / secs / 1e6
        } else {
            0.0
        };
        format!(
            "tftp: {}: complete, {} bytes in {} blocks of {} in {:.3} s ({:.2} MB/s), {} retransmitted",
            self.label(),
            self.bytes,
            self.blocks,
            self.blksize,
            secs,
            rate,
            self.resent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_errors_without_panicking() {
        let rrq = b"\x00\x01pxelinux.0\x00octet\x00blksize\x001428\x00tsize\x000\x00";
        assert_eq!(opcode(rrq), Some(op::RRQ));
        let s = strings(rrq);
        assert_eq!(s[0], "pxelinux.0");
        assert_eq!(option(&s[2..], "BLKSIZE").as_deref(), Some("1428"));
        assert_eq!(kind(rrq), Some(PacketKind::TftpRequest));
        let e = b"\x00\x05\x00\x01File not found\x00";
        assert_eq!(error(e), Some((1, "File not found".into())));
        for p in [&b""[..], b"\x00", b"\x00\x05", b"\x00\x03\x00"] {
            let _ = (opcode(p), block(p), strings(p), kind(p), error(p));
        }
    }
}
