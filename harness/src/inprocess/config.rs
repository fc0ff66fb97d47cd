//! The `[network.inprocess]` settings of a scenario: addresses of the
//! virtual segment, what the DHCP server puts in its replies, how it
//! misbehaves, and the seeded fault list. This module only describes and
//! validates; it must not open sockets or touch files.

use crate::network::Addressing;
use serde::Deserialize;
use std::net::Ipv4Addr;

/// Everything the in-process network can be told by a scenario. Every field
/// is optional; the defaults reproduce slirp's addressing (guest
/// 10.0.2.15/24, server and router 10.0.2.2) so one scenario runs the same in
/// both modes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InProcessConfig {
    /// Address leased to the guest (`yiaddr`).
    pub client_ip: Option<Ipv4Addr>,
    /// Option 1.
    pub netmask: Option<Ipv4Addr>,
    /// Option 3; `0.0.0.0` omits the option.
    pub router: Option<Ipv4Addr>,
    /// The DHCP server's address (option 54, IP source of its replies).
    pub server_ip: Option<Ipv4Addr>,
    /// `siaddr` of the replies (next server); defaults to `server_ip`.
    pub siaddr: Option<Ipv4Addr>,
    /// More addresses the harness owns on the segment (ARP, TFTP), e.g. a
    /// second TFTP server named by option 66.
    #[serde(default)]
    pub extra_servers: Vec<Ipv4Addr>,
    /// Addresses that answer TFTP; default: every harness address.
    pub tftp_on: Option<Vec<Ipv4Addr>>,
    // The seven strings below (not opt211) repeat `DhcpStrings`' fields
    // (`resolve` builds one from them): serde's `deny_unknown_fields` does
    // not work with `#[serde(flatten)]`.
    /// `sname` header field (at most 63 bytes).
    pub sname: Option<String>,
    /// `file` header field (at most 127 bytes); default: the network's
    /// `bootfile`.
    pub file: Option<String>,
    /// Option 66 (TFTP server name); default: the network's
    /// `tftp_server_name`.
    pub opt66: Option<String>,
    /// Option 67 (boot file name).
    pub opt67: Option<String>,
    /// Option 209 (PXELINUX configuration file).
    pub opt209: Option<String>,
    /// Option 210 (PXELINUX path prefix).
    pub opt210: Option<String>,
    /// Option 211 (PXELINUX reboot time, seconds).
    pub opt211: Option<u32>,
    /// Option 12 (host name).
    pub hostname: Option<String>,
    /// Values that replace the ones above in every reply sent once the
    /// first ACK (the firmware's) is out, i.e. what the guest client's
    /// udhcpc gets while the firmware still loads pxelinux.0 with the plain
    /// ones (e.g. hostile strings that name no file the firmware could load).
    pub client: Option<DhcpStrings>,
    /// Lease time in seconds (option 51); default 86400.
    pub lease_time: Option<u32>,
    /// Only answer requests whose option 93 (client architecture) has this
    /// value (`0x1f` = s390x); others are logged and ignored.
    pub require_arch: Option<u16>,
    /// DHCP server behaviour.
    #[serde(default)]
    pub dhcp: DhcpBehaviour,
    /// TFTP server retransmission timeout in milliseconds; default 1000.
    pub tftp_timeout_ms: Option<u64>,
    /// Largest TFTP block size granted; default 1468 (fits a 1500-byte MTU).
    pub tftp_max_blksize: Option<u16>,
    /// Seed of every random fault decision; default 1.
    pub seed: Option<u64>,
    /// Faults to inject.
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    /// Capture TFTP DATA payloads in full in the pcap (default: the first
    /// 64 bytes of each, to keep a 60 MB transfer's capture small).
    #[serde(default)]
    pub pcap_full_data: bool,
    /// Files served by the TFTP server without existing on disk: path →
    /// size in bytes, all zeros (e.g. a 60 MB initrd part; the kernel skips
    /// zeros between initramfs archives).
    #[serde(default)]
    pub zero_files: std::collections::BTreeMap<String, u64>,
}

/// The string values of a DHCP reply that `client` may replace; an absent
/// one keeps the value of `[network.inprocess]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpStrings {
    /// `sname` header field (at most 63 bytes).
    pub sname: Option<String>,
    /// `file` header field (at most 127 bytes).
    pub file: Option<String>,
    /// Option 66.
    pub opt66: Option<String>,
    /// Option 67.
    pub opt67: Option<String>,
    /// Option 209.
    pub opt209: Option<String>,
    /// Option 210.
    pub opt210: Option<String>,
    /// Option 12.
    pub hostname: Option<String>,
}

impl DhcpStrings {
    /// Checks the lengths a reply can carry; errors name the key under
    /// `section` (e.g. `client.opt209`).
    fn validate(&self, section: &str) -> Result<(), String> {
        if self.sname.as_ref().is_some_and(|s| s.len() > 63) {
            return Err(format!("{section}sname: at most 63 bytes"));
        }
        if self.file.as_ref().is_some_and(|s| s.len() > 127) {
            return Err(format!("{section}file: at most 127 bytes"));
        }
        for (k, v) in [
            ("opt66", &self.opt66),
            ("opt67", &self.opt67),
            ("opt209", &self.opt209),
            ("opt210", &self.opt210),
            ("hostname", &self.hostname),
        ] {
            if v.as_ref().is_some_and(|s| s.is_empty() || s.len() > 255) {
                return Err(format!("{section}{k}: 1 to 255 bytes"));
            }
        }
        Ok(())
    }

    /// `self`'s values, each absent one taken from `base`.
    pub fn over(&self, base: &DhcpStrings) -> DhcpStrings {
        let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
        DhcpStrings {
            sname: pick(&self.sname, &base.sname),
            file: pick(&self.file, &base.file),
            opt66: pick(&self.opt66, &base.opt66),
            opt67: pick(&self.opt67, &base.opt67),
            opt209: pick(&self.opt209, &base.opt209),
            opt210: pick(&self.opt210, &base.opt210),
            hostname: pick(&self.hostname, &base.hostname),
        }
    }
}

/// How the DHCP server misbehaves. Counters are 1-based and count the
/// messages of that type received in the run (the firmware's come first,
/// then the first kernel's udhcpc).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpBehaviour {
    /// Never answer.
    #[serde(default)]
    pub silent: bool,
    /// Stop answering after this many ACKs (1: the firmware gets its lease,
    /// the guest client does not).
    pub silent_after_acks: Option<u32>,
    /// DISCOVERs to ignore.
    #[serde(default)]
    pub ignore_discovers: Vec<u32>,
    /// REQUESTs answered with a NAK.
    #[serde(default)]
    pub nak_requests: Vec<u32>,
    /// Delay every reply by this many milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// Only delay once this many ACKs were sent (1: the firmware is answered
    /// at once, the first kernel late; QEMU's firmware gives up on a DHCP
    /// exchange whose replies come 1.5 s late).
    #[serde(default)]
    pub delay_after_acks: u32,
}

/// Which packets a probabilistic fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacketKind {
    /// DHCP/BOOTP, both directions.
    Dhcp,
    /// TFTP DATA (server to guest).
    TftpData,
    /// TFTP ACK (guest to server).
    TftpAck,
    /// TFTP read/write requests (guest to server).
    TftpRequest,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Drop `percent` % of the packets of kind `packets`.
    Drop {
        /// Packet kind.
        packets: PacketKind,
        /// Probability in percent (0–100).
        percent: f64,
    },
    /// Delay `percent` % of the packets of kind `packets` by `delay_ms`.
    Delay {
        /// Packet kind.
        packets: PacketKind,
        /// Probability in percent (0–100).
        percent: f64,
        /// Delay in milliseconds.
        delay_ms: u64,
    },
    /// Send `percent` % of the packets of kind `packets` twice.
    Duplicate {
        /// Packet kind.
        packets: PacketKind,
        /// Probability in percent (0–100).
        percent: f64,
    },
    /// Answer TFTP read requests with an error: the `nth` request (1-based,
    /// counting only requests for `path` when given), or every request for
    /// `path` when `nth` is absent.
    TftpError {
        /// Request number.
        nth: Option<u32>,
        /// Path (as requested, leading `/` removed).
        path: Option<String>,
        /// TFTP error code (0–7, default 0 = "not defined", which the
        /// client treats as transient; 1 = file not found).
        #[serde(default)]
        code: u16,
        /// Error message; default "injected error".
        message: Option<String>,
    },
    /// Serve only the first `bytes` bytes of `path`.
    Truncate {
        /// Path (as requested, leading `/` removed).
        path: String,
        /// Bytes kept.
        bytes: u64,
        /// Announce the full size in tsize all the same (a file cut short
        /// while it is served); default: tsize is the truncated size.
        #[serde(default)]
        announce_full: bool,
    },
}

/// The settings a scenario's `[network]` shares with slirp.
#[derive(Debug, Clone, Default)]
pub struct Common<'a> {
    /// Boot file (the `file` header field).
    pub bootfile: Option<&'a str>,
    /// Option 66.
    pub tftp_server_name: Option<&'a str>,
    /// Guest network in CIDR form.
    pub net: Option<&'a str>,
    /// Leased address.
    pub dhcpstart: Option<&'a str>,
}

/// The settings with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Leased address.
    pub client_ip: Ipv4Addr,
    /// Subnet mask.
    pub netmask: Ipv4Addr,
    /// Router (option 3), if any.
    pub router: Option<Ipv4Addr>,
    /// DHCP server address.
    pub server_ip: Ipv4Addr,
    /// `siaddr`.
    pub siaddr: Ipv4Addr,
    /// Every address the harness owns (server first).
    pub addresses: Vec<Ipv4Addr>,
    /// Addresses that serve TFTP.
    pub tftp_on: Vec<Ipv4Addr>,
    /// The DHCP strings of every reply (`client` replaces them after the
    /// first ACK).
    pub strings: DhcpStrings,
    /// Option 211.
    pub opt211: Option<u32>,
    /// Replacements for replies after the first ACK.
    pub client: Option<DhcpStrings>,
    /// Option 51.
    pub lease_time: u32,
    /// Required option 93.
    pub require_arch: Option<u16>,
    /// DHCP behaviour.
    pub dhcp: DhcpBehaviour,
    /// TFTP retransmission timeout.
    pub tftp_timeout: std::time::Duration,
    /// Largest block size.
    pub tftp_max_blksize: u16,
    /// Fault seed.
    pub seed: u64,
    /// Faults.
    pub faults: Vec<Fault>,
    /// Capture DATA payloads in full.
    pub pcap_full_data: bool,
    /// Generated all-zero files.
    pub zero_files: std::collections::BTreeMap<String, u64>,
}

impl InProcessConfig {
    /// Fills in the defaults (slirp's addressing, or the one derived from
    /// `net`/`dhcpstart`) and validates. Errors name the key.
    pub fn resolve(&self, common: &Common<'_>) -> Result<Resolved, String> {
        let a = Addressing::resolve(common.net, common.dhcpstart, 30)?;
        let client_ip = self.client_ip.unwrap_or(a.client);
        let server_ip = self.server_ip.unwrap_or(a.server);
        let router = match self.router {
            Some(r) if r.is_unspecified() => None,
            Some(r) => Some(r),
            None => Some(server_ip),
        };
        let mut addresses = vec![server_ip];
        for a in self.extra_servers.iter().chain(router.iter()) {
            if !addresses.contains(a) {
                addresses.push(*a);
            }
        }
        if addresses.contains(&client_ip) {
            return Err(format!(
                "client_ip {client_ip} is also a harness address ({addresses:?})"
            ));
        }
        let tftp_on = self.tftp_on.clone().unwrap_or_else(|| addresses.clone());
        for a in &tftp_on {
            if !addresses.contains(a) {
                return Err(format!(
                    "tftp_on: {a} is not a harness address (server_ip, router, extra_servers)"
                ));
            }
        }
        // The values every reply carries until `client` takes over; built
        // once here (the DHCP server reads them for each reply). Option 66
        // falls back to `tftp_server_name` after the length checks, as the
        // bootfile does for `file` before them.
        let mut strings = DhcpStrings {
            sname: self.sname.clone(),
            file: self
                .file
                .clone()
                .or_else(|| common.bootfile.map(str::to_string)),
            opt66: self.opt66.clone(),
            opt67: self.opt67.clone(),
            opt209: self.opt209.clone(),
            opt210: self.opt210.clone(),
            hostname: self.hostname.clone(),
        };
        strings.validate("")?;
        strings.opt66 = strings
            .opt66
            .or_else(|| common.tftp_server_name.map(str::to_string));
        if let Some(c) = &self.client {
            c.validate("client.")?;
        }
        for (i, f) in self.faults.iter().enumerate() {
            match f {
                Fault::Drop { percent, .. }
                | Fault::Delay { percent, .. }
                | Fault::Duplicate { percent, .. } => {
                    if !(0.0..=100.0).contains(percent) {
                        return Err(format!("fault[{i}].percent: must be within 0..=100"));
                    }
                }
                Fault::TftpError {
                    nth, path, code, ..
                } => {
                    if nth.is_none() && path.is_none() {
                        return Err(format!("fault[{i}]: tftp-error needs `nth` or `path`"));
                    }
                    if *code > 7 {
                        return Err(format!("fault[{i}].code: TFTP error codes are 0..=7"));
                    }
                }
                Fault::Truncate { .. } => {}
            }
        }
        let blk = self.tftp_max_blksize.unwrap_or(1468);
        if !(8..=65464).contains(&blk) {
            return Err("tftp_max_blksize: must be within 8..=65464".into());
        }
        Ok(Resolved {
            client_ip,
            netmask: self.netmask.unwrap_or(a.mask),
            router,
            server_ip,
            siaddr: self.siaddr.unwrap_or(server_ip),
            addresses,
            tftp_on,
            strings,
            opt211: self.opt211,
            client: self.client.clone(),
            lease_time: self.lease_time.unwrap_or(86400),
            require_arch: self.require_arch,
            dhcp: self.dhcp.clone(),
            tftp_timeout: std::time::Duration::from_millis(self.tftp_timeout_ms.unwrap_or(1000)),
            tftp_max_blksize: blk,
            seed: self.seed.unwrap_or(1),
            faults: self.faults.clone(),
            pcap_full_data: self.pcap_full_data,
            zero_files: self
                .zero_files
                .iter()
                .map(|(k, v)| (k.trim_start_matches('/').to_string(), *v))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_slirps_addresses() {
        let r = InProcessConfig::default()
            .resolve(&Common {
                bootfile: Some("pxelinux.0"),
                ..Common::default()
            })
            .expect("resolves");
        assert_eq!(r.client_ip, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(r.server_ip, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(r.router, Some(r.server_ip));
        assert_eq!(r.netmask, Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(r.strings.file.as_deref(), Some("pxelinux.0"));
    }

    #[test]
    fn net_and_dhcpstart_move_the_addresses() {
        let r = InProcessConfig::default()
            .resolve(&Common {
                net: Some("192.168.76.0/24"),
                dhcpstart: Some("192.168.76.9"),
                ..Common::default()
            })
            .expect("resolves");
        assert_eq!(r.client_ip, Ipv4Addr::new(192, 168, 76, 9));
        assert_eq!(r.server_ip, Ipv4Addr::new(192, 168, 76, 2));
    }

    #[test]
    fn client_strings_validate_and_fill_in() {
        let c: InProcessConfig = toml::from_str(
            "opt209 = \"plain\"\nhostname = \"h\"\n[client]\nfile = \"$(x)\"\nopt209 = \"a;b\"\n",
        )
        .expect("parses");
        let r = c.resolve(&Common::default()).expect("resolves");
        let late = r.client.expect("client").over(&r.strings);
        assert_eq!(late.opt209.as_deref(), Some("a;b"));
        assert_eq!(late.file.as_deref(), Some("$(x)"));
        assert_eq!(late.hostname.as_deref(), Some("h"));
        let long: InProcessConfig =
            toml::from_str(&format!("[client]\nsname = \"{}\"\n", "s".repeat(64))).expect("parses");
        assert_eq!(
            long.resolve(&Common::default()).unwrap_err(),
            "client.sname: at most 63 bytes"
        );
        let long: InProcessConfig =
            toml::from_str(&format!("hostname = \"{}\"\n", "h".repeat(256))).expect("parses");
        assert_eq!(
            long.resolve(&Common::default()).unwrap_err(),
            "hostname: 1 to 255 bytes"
        );
    }

    #[test]
    fn faults_parse_and_validate() {
        let c: InProcessConfig = toml::from_str(
            r#"
            seed = 7
            [[fault]]
            kind = "drop"
            packets = "tftp-data"
            percent = 10
            [[fault]]
            kind = "tftp-error"
            path = "vmlinuz"
            code = 2
            [[fault]]
            kind = "truncate"
            path = "initrd.gz"
            bytes = 100
            "#,
        )
        .expect("parses");
        assert_eq!(c.faults.len(), 3);
        assert!(c.resolve(&Common::default()).is_ok());
        let bad: InProcessConfig = toml::from_str(
            r#"
            [[fault]]
            kind = "drop"
            packets = "dhcp"
            percent = 120
            "#,
        )
        .expect("parses");
        assert!(bad
            .resolve(&Common::default())
            .unwrap_err()
            .contains("percent"));
        assert!(toml::from_str::<InProcessConfig>(
            "[[fault]]\nkind = \"drop\"\npackets = \"dhcp\"\npercent = 1\nbogus = 2\n"
        )
        .is_err());
    }
}
