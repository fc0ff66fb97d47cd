//! The segment's packet capture (`network.pcap`): every frame that crosses
//! the virtual wire, in either direction, as it was sent or received, in the
//! classic pcap format (Ethernet link type) through the `pcap-file` crate.
//! Records are written unbuffered so the file is complete whenever the run
//! stops. It must not decide anything about the packets.

use pcap_file::pcap::{PcapPacket, PcapWriter};
use std::fs::File;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// An open capture file.
pub struct Capture {
    writer: Option<PcapWriter<File>>,
}

impl Capture {
    /// Creates (truncates) `path` and writes the pcap header.
    pub fn create(path: &Path) -> std::io::Result<Capture> {
        let f = File::create(path)?;
        let writer = PcapWriter::new(f).map_err(std::io::Error::other)?;
        Ok(Capture {
            writer: Some(writer),
        })
    }

    /// Records `frame`, keeping at most `caplen` bytes of it. A write error
    /// disables the capture (the run goes on) and is returned once.
    pub fn record(&mut self, frame: &[u8], caplen: usize) -> Result<(), String> {
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let kept = &frame[..frame.len().min(caplen)];
        let orig = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        match w.write_packet(&PcapPacket::new(ts, orig, kept)) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.writer = None;
                Err(format!("pcap write failed, capture stopped: {e}"))
            }
        }
    }
}
