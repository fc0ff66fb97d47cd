//! The guest's network: the seam between a scenario's `[network]` section and
//! QEMU's `-netdev/-device` arguments. [`Section`] is the `[network]` table
//! as written; [`Section::networks`] is the one constructor, which hands each
//! mode its own `[network.<mode>]` section and the keys every mode shares
//! ([`Shared`]). A [`Network`] attaches itself for one run and returns the
//! QEMU arguments plus a guard that keeps any host-side service alive until
//! the run ends. `slirp` (QEMU's built-in DHCP and TFTP) lives here;
//! `inprocess` and `dnsmasq` are modules of their own. [`child_setup`] is how every process of a run
//! (QEMU, dnsmasq) enters the run's network namespace and dies with the
//! harness. This module must not know about consoles or scenarios' steps.
//!
//! The seam points one way: the modes depend on this module, and this
//! module names them only in [`Section`] and [`Section::networks`] (and
//! [`crate::artifacts::ArtifactDir`] names the files they write).

use crate::artifacts::ArtifactDir;
use crate::HarnessError;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The text scenarios write for the run's HTTP server (`${http}`), which
/// the modes replace in their DHCP options ([`Network::with_http_url`]) and
/// the scenario in its inline tree text.
pub const HTTP_PLACEHOLDER: &str = "${http}";

/// A mode's served DHCP values that a PXELINUX client may take a URL from,
/// and so may name the run's HTTP server ([`HTTP_PLACEHOLDER`]): options
/// 209 (configuration file) and 210 (path prefix), wherever the mode's
/// settings hold them. A mode lists them once, here; [`http_options`] and
/// [`with_http_url`] answer the two [`Network`] methods from that list.
pub trait UrlValues: Clone {
    /// Each such value with its key path under `[network.<mode>]` (dotted
    /// for a sub-table, e.g. `client.opt209`), absent ones included.
    fn url_values(&mut self) -> Vec<(&'static str, &mut Option<String>)>;
}

/// The given values of `n`'s [`UrlValues`], for [`Network::http_options`]
/// (read from a copy: the one list is written as `&mut` places).
pub fn http_options<T: UrlValues>(n: &T) -> Vec<(&'static str, String)> {
    let mut n = n.clone();
    n.url_values()
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
}

/// `n` with `base` in place of every [`HTTP_PLACEHOLDER`] in its
/// [`UrlValues`], for [`Network::with_http_url`].
pub fn with_http_url<T: UrlValues>(n: &T, base: &str) -> T {
    let mut n = n.clone();
    for (_, v) in n.url_values() {
        if let Some(v) = v {
            *v = v.replace(HTTP_PLACEHOLDER, base);
        }
    }
    n
}

/// What a network needs to know about the run it joins.
#[derive(Debug, Clone)]
pub struct NetContext<'a> {
    /// The TFTP tree to serve.
    pub tftp_root: &'a Path,
    /// The guest NIC's MAC address, if the scenario sets one.
    pub mac: Option<&'a str>,
    /// The run's directory, which names the files a network writes (a
    /// pcap, a server's config and log).
    pub artifacts: &'a ArtifactDir,
    /// The run's HTTP server when it listens on the host's loopback, for a
    /// network that relays the guest's connections to it
    /// ([`HttpSite::Relayed`]).
    pub http_backend: Option<SocketAddr>,
}

/// A network attached to one run.
pub struct NetAttachment {
    /// `-netdev ... -device ...` arguments for QEMU.
    pub qemu_args: Vec<String>,
    /// A network namespace (e.g. `/run/netns/NAME`) QEMU must run in to
    /// see its `-netdev` (the `dnsmasq` mode's tap); `None`: the harness's
    /// own. Passed on as [`crate::qemu::MachineSpec::netns`].
    pub netns: Option<PathBuf>,
    /// Keeps host-side services alive; dropped when the run ends.
    pub guard: Option<Box<dyn Send>>,
}

/// Where a run's HTTP server ([`crate::http`]) listens so that the guest
/// reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSite {
    /// On an ephemeral port of 127.0.0.1, which the guest reaches at
    /// `guest_addr` and the same port (slirp forwards its host address).
    HostLoopback {
        /// The address the guest connects to.
        guest_addr: Ipv4Addr,
    },
    /// On an ephemeral port of 127.0.0.1; the network relays the guest's
    /// connections to port 80 of `guest_addr` to it
    /// ([`NetContext::http_backend`]).
    Relayed {
        /// The address the guest connects to (port 80).
        guest_addr: Ipv4Addr,
    },
    /// On port 80 of `addr` inside the run's network namespace.
    InNamespace {
        /// The address it binds and the guest connects to.
        addr: Ipv4Addr,
    },
}

/// A network mode, its settings resolved.
pub trait Network: std::fmt::Debug + Send + Sync {
    /// The mode's name as written in scenario files (`mode = "…"`).
    fn name(&self) -> &'static str;
    /// Attaches the network for one run. Called inside the run's tokio
    /// runtime, so implementations may spawn tasks.
    fn attach(&self, ctx: &NetContext<'_>) -> Result<NetAttachment, HarnessError>;
    /// Where the run's HTTP server must listen for this network; an error
    /// names the key that makes it impossible.
    fn http_site(&self) -> Result<HttpSite, String>;
    /// The served values that may name the run's HTTP server
    /// ([`HTTP_PLACEHOLDER`]): (key path under `[network.<mode>]`, value);
    /// a mode that serves DHCP answers with [`http_options`] over its
    /// [`UrlValues`].
    fn http_options(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The same network with `base` in place of every
    /// [`HTTP_PLACEHOLDER`] in [`Network::http_options`] ([`with_http_url`]
    /// over its [`UrlValues`]).
    fn with_http_url(&self, base: &str) -> Arc<dyn Network>;
}

/// The `[network]` keys every mode shares, defaults filled in (the names
/// are slirp's, whose addressing the other modes follow: [`Addressing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// DHCP boot file name (option 67 / `file`); `pxelinux.0` by default.
    pub bootfile: String,
    /// DHCP option 66 (`tftp-server-name`).
    pub tftp_server_name: Option<String>,
    /// Guest network in CIDR form (`net=`), e.g. `192.168.76.0/24`.
    pub net: Option<String>,
    /// First address handed out by DHCP (`dhcpstart=`).
    pub dhcpstart: Option<String>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            bootfile: "pxelinux.0".into(),
            tftp_server_name: None,
            net: None,
            dhcpstart: None,
        }
    }
}

/// A scenario's `[network]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    mode: Modes,
    bootfile: Option<String>,
    tftp_server_name: Option<String>,
    net: Option<String>,
    dhcpstart: Option<String>,
    inprocess: Option<crate::inprocess::InProcessConfig>,
    dnsmasq: Option<crate::dnsmasq::DnsmasqConfig>,
}

/// `mode = "slirp"` or `mode = ["slirp", "inprocess"]` (one run per mode).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Modes {
    One(String),
    Many(Vec<String>),
}

/// A `[network]` section that does not resolve: the key inside it to
/// blame (`None`: the section) and the message, which names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionError {
    /// `mode`, `inprocess`, `tftp_server_name`, … (under `network`).
    pub key: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

impl SectionError {
    fn at(key: Option<&'static str>, message: impl Into<String>) -> SectionError {
        SectionError {
            key,
            message: message.into(),
        }
    }
}

impl Section {
    /// The networks this section asks for, one per mode in order: the one
    /// constructor of every mode. Each mode resolves its own
    /// `[network.<mode>]` section against the [`Shared`] keys.
    pub fn networks(&self) -> Result<Vec<Arc<dyn Network>>, SectionError> {
        let modes = match &self.mode {
            Modes::One(m) => vec![m.clone()],
            Modes::Many(v) => v.clone(),
        };
        if modes.is_empty() {
            return Err(SectionError::at(
                Some("mode"),
                "network.mode: an empty list",
            ));
        }
        let shared = Shared {
            bootfile: self.bootfile.clone().unwrap_or_else(|| "pxelinux.0".into()),
            tftp_server_name: self.tftp_server_name.clone(),
            net: self.net.clone(),
            dhcpstart: self.dhcpstart.clone(),
        };
        for (name, given) in [
            ("inprocess", self.inprocess.is_some()),
            ("dnsmasq", self.dnsmasq.is_some()),
        ] {
            if given && !modes.iter().any(|m| m == name) {
                return Err(SectionError::at(
                    Some(name),
                    format!("network.{name}: only meaningful with mode \"{name}\""),
                ));
            }
        }
        let mut networks: Vec<Arc<dyn Network>> = Vec::new();
        for m in &modes {
            let network: Arc<dyn Network> = match m.as_str() {
                "slirp" => Arc::new(Slirp::new(shared.clone(), PcapMode::from_env())),
                "inprocess" => Arc::new(crate::inprocess::InProcess::from_section(
                    &shared,
                    self.inprocess.as_ref(),
                )?),
                "dnsmasq" => Arc::new(crate::dnsmasq::Dnsmasq::from_section(
                    &shared,
                    self.dnsmasq.as_ref(),
                )?),
                other => {
                    return Err(SectionError::at(
                        Some("mode"),
                        format!(
                            "network.mode {other:?}: unknown (supported: \"slirp\", \"inprocess\", \"dnsmasq\")"
                        ),
                    ))
                }
            };
            if networks.iter().any(|n| n.name() == network.name()) {
                return Err(SectionError::at(
                    Some("mode"),
                    format!("network.mode: {m:?} listed twice"),
                ));
            }
            networks.push(network);
        }
        Ok(networks)
    }
}

/// QEMU's user-mode network (slirp): its DHCP server hands out 10.0.2.15
/// (by default) with the boot file name, and its TFTP server serves the tree.
#[derive(Debug, Clone, Default)]
pub struct Slirp {
    /// The `[network]` keys (slirp has no section of its own).
    pub shared: Shared,
    /// Record a pcap of the guest's traffic (`filter-dump`).
    pub pcap: PcapMode,
}

impl Slirp {
    /// Slirp with `shared`'s settings, capturing as `pcap` says.
    pub fn new(shared: Shared, pcap: PcapMode) -> Slirp {
        Slirp { shared, pcap }
    }
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

    /// QEMU's `filter-dump` on netdev `n0` into `pcap`
    /// ([`ArtifactDir::net_pcap`]), as this mode asks: the `-object`
    /// arguments (none when off). Shared by the modes whose traffic passes
    /// through a QEMU netdev (slirp, dnsmasq's tap).
    pub fn filter_dump(self, pcap: &Path) -> Vec<String> {
        if self == PcapMode::Off {
            return Vec::new();
        }
        let mut obj = format!(
            "filter-dump,id=dump0,netdev=n0,file={}",
            qemu_opt_value(&pcap.display().to_string())
        );
        if self == PcapMode::Headers {
            obj.push_str(&format!(",maxlen={HEADER_SNAPLEN}"));
        }
        vec!["-object".into(), obj]
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
    fn name(&self) -> &'static str {
        "slirp"
    }

    fn attach(&self, ctx: &NetContext<'_>) -> Result<NetAttachment, HarnessError> {
        let s = &self.shared;
        let mut netdev = format!(
            "user,id=n0,tftp={},bootfile={}",
            qemu_opt_value(&ctx.tftp_root.display().to_string()),
            qemu_opt_value(&s.bootfile)
        );
        if let Some(t) = &s.tftp_server_name {
            netdev.push_str(&format!(",tftp-server-name={}", qemu_opt_value(t)));
        }
        if let Some(n) = &s.net {
            netdev.push_str(&format!(",net={}", qemu_opt_value(n)));
        }
        if let Some(d) = &s.dhcpstart {
            netdev.push_str(&format!(",dhcpstart={}", qemu_opt_value(d)));
        }
        let mut args = vec![
            "-netdev".to_string(),
            netdev,
            "-device".to_string(),
            nic_device("n0", ctx.mac),
        ];
        args.extend(self.pcap.filter_dump(&ctx.artifacts.net_pcap()));
        Ok(NetAttachment {
            qemu_args: args,
            netns: None,
            guard: None,
        })
    }

    fn http_site(&self) -> Result<HttpSite, String> {
        let a = Addressing::resolve(
            self.shared.net.as_deref(),
            self.shared.dhcpstart.as_deref(),
            30,
        )?;
        Ok(HttpSite::HostLoopback {
            guest_addr: a.server,
        })
    }

    fn with_http_url(&self, _base: &str) -> Arc<dyn Network> {
        Arc::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_dump_follows_the_pcap_mode() {
        let pcap = Path::new("/run/x,y/net.pcap");
        assert!(PcapMode::Off.filter_dump(pcap).is_empty());
        let args = PcapMode::Headers.filter_dump(pcap);
        assert_eq!(
            args,
            [
                "-object",
                "filter-dump,id=dump0,netdev=n0,file=/run/x,,y/net.pcap,maxlen=160"
            ]
        );
        let args = PcapMode::Full.filter_dump(pcap);
        assert_eq!(
            args[1],
            "filter-dump,id=dump0,netdev=n0,file=/run/x,,y/net.pcap"
        );
    }
}
