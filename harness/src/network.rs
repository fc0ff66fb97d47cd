//! The guest's network: the seam between a scenario's `[network]` section and
//! QEMU's `-netdev/-device` arguments. A [`Network`] attaches itself for one
//! run and returns the QEMU arguments plus a guard that keeps any host-side
//! service alive until the run ends. `slirp` (QEMU's built-in DHCP and
//! TFTP) lives here; `inprocess` ([`crate::inprocess`]) and `dnsmasq`
//! ([`crate::dnsmasq`]) are modules of their own. [`child_setup`] is how
//! every process of a run (QEMU, dnsmasq) enters the run's network
//! namespace and dies with the harness. This module must not know about
//! consoles or scenarios' steps.

use crate::HarnessError;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What a network needs to know about the run it joins.
#[derive(Debug, Clone)]
pub struct NetContext<'a> {
    /// The TFTP tree to serve.
    pub tftp_root: &'a Path,
    /// The guest NIC's MAC address, if the scenario sets one.
    pub mac: Option<&'a str>,
    /// The run's artifact directory (for a pcap or a server log).
    pub artifacts: &'a Path,
}

/// A network attached to one run.
pub struct NetAttachment {
    /// `-netdev ... -device ...` arguments for QEMU.
    pub qemu_args: Vec<String>,
    /// Packet capture written during the run, if any.
    pub pcap: Option<PathBuf>,
    /// A network namespace (e.g. `/run/netns/NAME`) QEMU must run in to
    /// see its `-netdev` (the `dnsmasq` mode's tap); `None`: the harness's
    /// own. Passed on as [`crate::qemu::MachineSpec::netns`].
    pub netns: Option<PathBuf>,
    /// Keeps host-side services alive; dropped when the run ends.
    pub guard: Option<Box<dyn Send>>,
}

/// A network mode.
pub trait Network: Send + Sync {
    /// The mode's name as written in scenario files.
    fn mode(&self) -> &'static str;
    /// Attaches the network for one run. Called inside the run's tokio
    /// runtime, so implementations may spawn tasks.
    fn attach(&self, ctx: &NetContext<'_>) -> Result<NetAttachment, HarnessError>;
}

/// QEMU's user-mode network (slirp): its DHCP server hands out 10.0.2.15
/// (by default) with the boot file name, and its TFTP server serves the tree.
#[derive(Debug, Clone, Default)]
pub struct Slirp {
    /// DHCP boot file name (option 67 / `file`); `pxelinux.0` by default.
    pub bootfile: Option<String>,
    /// DHCP option 66 (`tftp-server-name`).
    pub tftp_server_name: Option<String>,
    /// Guest network in CIDR form (`net=`), e.g. `192.168.76.0/24`.
    pub net: Option<String>,
    /// First address handed out by DHCP (`dhcpstart=`).
    pub dhcpstart: Option<String>,
    /// Record a pcap of the guest's traffic (`filter-dump`).
    pub pcap: PcapMode,
}

/// Bytes kept per packet in [`PcapMode::Headers`]: Ethernet, IP, UDP and
/// TFTP headers plus the start of a DHCP message.
pub const HEADER_SNAPLEN: u32 = 160;

/// How much of the guest's traffic goes to `net.pcap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PcapMode {
    /// No capture.
    Off,
    /// The first [`HEADER_SNAPLEN`] bytes of every packet (the default: a
    /// full capture of a kernel download is ~16 MB).
    #[default]
    Headers,
    /// Whole packets.
    Full,
}

impl PcapMode {
    /// From `NETBOOT_PCAP`: `off`/`0`, `full`, anything else = headers.
    pub fn from_env() -> PcapMode {
        match std::env::var("NETBOOT_PCAP").as_deref() {
            Ok("off") | Ok("0") | Ok("no") => PcapMode::Off,
            Ok("full") => PcapMode::Full,
            _ => PcapMode::Headers,
        }
    }

    /// QEMU's `filter-dump` on netdev `n0` into `<artifacts>/net.pcap`, as
    /// this mode asks: the capture's path and the `-object` arguments (both
    /// empty when off). Shared by the modes whose traffic passes through a
    /// QEMU netdev (slirp, dnsmasq's tap).
    pub fn filter_dump(self, artifacts: &Path) -> (Option<PathBuf>, Vec<String>) {
        if self == PcapMode::Off {
            return (None, Vec::new());
        }
        let pcap = artifacts.join("net.pcap");
        let mut obj = format!(
            "filter-dump,id=dump0,netdev=n0,file={}",
            qemu_opt_value(&pcap.display().to_string())
        );
        if self == PcapMode::Headers {
            obj.push_str(&format!(",maxlen={HEADER_SNAPLEN}"));
        }
        (Some(pcap), vec!["-object".into(), obj])
    }
}

/// Parses a scenario's `net = "ADDRESS/PREFIX"`; the prefix must lie in
/// `1..=max_prefix`.
fn parse_cidr(s: &str, max_prefix: u8) -> Result<(Ipv4Addr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("net {s:?}: expected ADDRESS/PREFIX"))?;
    let a: Ipv4Addr = a.parse().map_err(|e| format!("net {s:?}: {e}"))?;
    let p: u8 = p.parse().map_err(|e| format!("net {s:?}: {e}"))?;
    if !(1..=max_prefix).contains(&p) {
        return Err(format!("net {s:?}: prefix must be 1..={max_prefix}"));
    }
    Ok((a, p))
}

/// Slirp's addressing, which the modes that serve DHCP themselves
/// (inprocess, dnsmasq) follow: the network of a scenario's `net` (default
/// 10.0.2.0/24), the server at network + 2, the client at `dhcpstart`, else
/// network + 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    /// The network address (`net` with the host bits cleared).
    pub network: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// Netmask of `prefix`.
    pub mask: Ipv4Addr,
    /// Network + 2.
    pub server: Ipv4Addr,
    /// `dhcpstart`, else network + 15.
    pub client: Ipv4Addr,
}

impl Addressing {
    /// From the scenario's `net` and `dhcpstart` keys; the prefix must lie
    /// in `1..=max_prefix`. Errors name the key.
    pub fn resolve(
        net: Option<&str>,
        dhcpstart: Option<&str>,
        max_prefix: u8,
    ) -> Result<Addressing, String> {
        let (addr, prefix) = match net {
            Some(n) => parse_cidr(n, max_prefix)?,
            None => (Ipv4Addr::new(10, 0, 2, 0), 24),
        };
        let mask = u32::MAX << (32 - u32::from(prefix));
        let network = u32::from(addr) & mask;
        let at = |n: u32| Ipv4Addr::from(network.wrapping_add(n));
        let client = match dhcpstart {
            Some(d) => d
                .parse::<Ipv4Addr>()
                .map_err(|e| format!("dhcpstart {d:?}: {e}"))?,
            None => at(15),
        };
        Ok(Addressing {
            network: Ipv4Addr::from(network),
            prefix,
            mask: Ipv4Addr::from(mask),
            server: at(2),
            client,
        })
    }

    /// True if `a` lies in this network.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & u32::from(self.mask) == u32::from(self.network)
    }
}

/// The child side of starting a process that belongs to a run (QEMU, the
/// dnsmasq server): between fork and exec (`pre_exec`), enter the network
/// namespace open as `netns` if any, and ask for SIGKILL when the harness
/// thread that started it dies. Only async-signal-safe calls, no allocation.
pub fn child_setup(netns: Option<&std::fs::File>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if let Some(ns) = netns {
        // SAFETY: setns(2) on an open namespace file descriptor.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: prctl(2) with PR_SET_PDEATHSIG has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    Ok(())
}

/// Escapes a value for QEMU's comma-separated option syntax.
pub fn qemu_opt_value(v: &str) -> String {
    v.replace(',', ",,")
}

/// The virtio-net-ccw property the inprocess and dnsmasq modes add:
/// `,event_idx=off` (see docs/performance.md, "The event_idx=off
/// workaround"), unless
/// `NETBOOT_VIRTIO_EVENT_IDX=on` asks for QEMU's default (on), to reproduce
/// what the workaround avoids.
pub fn event_idx_property() -> &'static str {
    match std::env::var("NETBOOT_VIRTIO_EVENT_IDX").as_deref() {
        Ok("on") => "",
        _ => ",event_idx=off",
    }
}

/// The virtio-net-ccw device arguments shared by every mode.
pub fn nic_device(netdev_id: &str, mac: Option<&str>) -> String {
    let mut d = format!("virtio-net-ccw,netdev={netdev_id},bootindex=1");
    if let Some(m) = mac {
        d.push_str(&format!(",mac={}", qemu_opt_value(m)));
    }
    d
}

impl Network for Slirp {
    fn mode(&self) -> &'static str {
        "slirp"
    }

    fn attach(&self, ctx: &NetContext<'_>) -> Result<NetAttachment, HarnessError> {
        let mut netdev = format!(
            "user,id=n0,tftp={},bootfile={}",
            qemu_opt_value(&ctx.tftp_root.display().to_string()),
            qemu_opt_value(self.bootfile.as_deref().unwrap_or("pxelinux.0"))
        );
        if let Some(s) = &self.tftp_server_name {
            netdev.push_str(&format!(",tftp-server-name={}", qemu_opt_value(s)));
        }
        if let Some(n) = &self.net {
            netdev.push_str(&format!(",net={}", qemu_opt_value(n)));
        }
        if let Some(d) = &self.dhcpstart {
            netdev.push_str(&format!(",dhcpstart={}", qemu_opt_value(d)));
        }
        let mut args = vec![
            "-netdev".to_string(),
            netdev,
            "-device".to_string(),
            nic_device("n0", ctx.mac),
        ];
        let (pcap, dump) = self.pcap.filter_dump(ctx.artifacts);
        args.extend(dump);
        Ok(NetAttachment {
            qemu_args: args,
            pcap,
            netns: None,
            guard: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_dump_follows_the_pcap_mode() {
        let dir = Path::new("/run/x,y");
        assert_eq!(PcapMode::Off.filter_dump(dir), (None, Vec::new()));
        let (pcap, args) = PcapMode::Headers.filter_dump(dir);
        assert_eq!(pcap.as_deref(), Some(Path::new("/run/x,y/net.pcap")));
        assert_eq!(
            args,
            [
                "-object",
                "filter-dump,id=dump0,netdev=n0,file=/run/x,,y/net.pcap,maxlen=160"
            ]
        );
        let (_, args) = PcapMode::Full.filter_dump(dir);
        assert_eq!(
            args[1],
            "filter-dump,id=dump0,netdev=n0,file=/run/x,,y/net.pcap"
        );
    }
}
