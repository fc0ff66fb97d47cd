//! The `dnsmasq` network mode: the guest boots from the host's real
//! `dnsmasq` (Debian's `dnsmasq-base`), the DHCP+TFTP server most users
//! deploy, configured with the file `docs/deploy.md` shows (the template
//! [`TEMPLATE`], `dnsmasq.conf` next to this file; a test keeps the two
//! equal). Per run it creates a network namespace `s390pxe-<pid>-<n>` with
//! `lo` and a tap device holding the server address, starts dnsmasq inside
//! it in the foreground (config, log with `--log-dhcp`, leases and pid file
//! in the run's artifact directory; QEMU adds `net.pcap` as in slirp mode)
//! and hands QEMU `-netdev tap` plus the
//! namespace to enter ([`NetAttachment::netns`]). The guard kills and reaps
//! dnsmasq and deletes the namespace; namespaces left by a dead harness
//! process (the pid in the name) are removed, with anything still running
//! in them, at the next setup. Needs root, `ip`, `dnsmasq` and
//! `/dev/net/tun` ([`prerequisites`]). It must not touch namespaces or
//! processes that are not its own, nor know about consoles or steps.

use crate::network::{
    nic_device, qemu_opt_value, NetAttachment, NetContext, Network, PcapMode, HEADER_SNAPLEN,
};
use crate::HarnessError;
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The dnsmasq configuration this mode runs, with `@NAME@` placeholders
/// (see [`ConfValues`]); `docs/deploy.md` shows it with example values.
pub const TEMPLATE: &str = include_str!("dnsmasq.conf");
/// Every namespace this mode creates is named `s390pxe-<pid>-<n>`.
pub const NETNS_PREFIX: &str = "s390pxe-";
/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";
/// The tap device's name inside the namespace (the namespace isolates it).
pub const TAP: &str = "nbh0";

/// `[network.dnsmasq]`: the PXELINUX options dnsmasq sends (each one a
/// `dhcp-option-force=tag:s390x,<code>,<value>` line after the template).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsmasqConfig {
    /// Option 209 (PXELINUX configuration file).
    pub opt209: Option<String>,
    /// Option 210 (PXELINUX path prefix).
    pub opt210: Option<String>,
}

/// The settings of one dnsmasq network, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Boot file (`dhcp-boot`).
    pub bootfile: String,
    /// The tap's (server's) address: `net` + 2, as in slirp.
    pub server_ip: Ipv4Addr,
    /// Network prefix length.
    pub prefix: u8,
    /// The one address of the DHCP pool: `dhcpstart`, else `net` + 15 (so
    /// a scenario sees the same lease as under slirp).
    pub client_ip: Ipv4Addr,
    /// Option 209.
    pub opt209: Option<String>,
    /// Option 210.
    pub opt210: Option<String>,
}

/// A value dnsmasq takes as a plain string in `dhcp-option-force` (it
/// would read digits as a number and a dotted quad as an address).
fn option_string(key: &str, v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && v.chars().any(|c| c.is_ascii_alphabetic() || c == '/');
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{key} {v:?}: expected a path of letters, digits and . _ / - (with a letter or /)"
        ))
    }
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("net {s:?}: expected ADDRESS/PREFIX"))?;
    let a: Ipv4Addr = a.parse().map_err(|e| format!("net {s:?}: {e}"))?;
    let p: u8 = p.parse().map_err(|e| format!("net {s:?}: {e}"))?;
    if !(1..=27).contains(&p) {
        return Err(format!("net {s:?}: prefix must be 1..=27"));
    }
    Ok((a, p))
}

impl DnsmasqConfig {
    /// Fills in the defaults from the shared `[network]` keys and
    /// validates; errors name the key.
    pub fn resolve(
        &self,
        bootfile: &str,
        net: Option<&str>,
        dhcpstart: Option<&str>,
    ) -> Result<Settings, String> {
        let (addr, prefix) = match net {
            Some(n) => parse_cidr(n)?,
            None => (Ipv4Addr::new(10, 0, 2, 0), 24),
        };
        let mask = u32::MAX << (32 - prefix);
        let base = u32::from(addr) & mask;
        let client_ip = match dhcpstart {
            Some(d) => d
                .parse::<Ipv4Addr>()
                .map_err(|e| format!("dhcpstart {d:?}: {e}"))?,
            None => Ipv4Addr::from(base + 15),
        };
        let server_ip = Ipv4Addr::from(base + 2);
        if u32::from(client_ip) & mask != base || client_ip == server_ip {
            return Err(format!(
                "dhcpstart {client_ip}: must lie in {}/{prefix} and differ from the server address {server_ip}",
                Ipv4Addr::from(base)
            ));
        }
        if bootfile.is_empty() || bootfile.contains([',', '\n']) {
            return Err(format!(
                "bootfile {bootfile:?}: empty or contains , or a newline"
            ));
        }
        Ok(Settings {
            bootfile: bootfile.to_string(),
            server_ip,
            prefix,
            client_ip,
            opt209: self
                .opt209
                .as_deref()
                .map(|v| option_string("opt209", v))
                .transpose()?,
            opt210: self
                .opt210
                .as_deref()
                .map(|v| option_string("opt210", v))
                .transpose()?,
        })
    }
}

/// The values substituted into [`TEMPLATE`].
#[derive(Debug, Clone)]
pub struct ConfValues<'a> {
    /// `@INTERFACE@`.
    pub interface: &'a str,
    /// `@RANGE_START@`.
    pub range_start: Ipv4Addr,
    /// `@RANGE_END@`.
    pub range_end: Ipv4Addr,
    /// `@NETMASK@`.
    pub netmask: Ipv4Addr,
    /// `@TFTP_ROOT@`.
    pub tftp_root: &'a Path,
    /// `@BOOTFILE@`.
    pub bootfile: &'a str,
}

/// [`TEMPLATE`] with `v` filled in.
pub fn render(v: &ConfValues<'_>) -> String {
    TEMPLATE
        .replace("@INTERFACE@", v.interface)
        .replace("@RANGE_START@", &v.range_start.to_string())
        .replace("@RANGE_END@", &v.range_end.to_string())
        .replace("@NETMASK@", &v.netmask.to_string())
        .replace("@TFTP_ROOT@", &v.tftp_root.display().to_string())
        .replace("@BOOTFILE@", v.bootfile)
}

/// The line sending PXELINUX option `code` (as `docs/deploy.md` shows it).
pub fn option_line(code: u8, value: &str) -> String {
    format!("dhcp-option-force=tag:s390x,{code},{value}")
}

impl Settings {
    /// The netmask of `prefix`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - self.prefix))
    }

    /// The whole configuration file for one run: the template for the tap
    /// and `tftp_root` (a one-address pool: one guest per run, and a fixed
    /// lease keeps the IP-hex config names of the scenarios), then the
    /// options asked for.
    pub fn config_file(&self, tftp_root: &Path) -> String {
        let mut s = render(&ConfValues {
            interface: TAP,
            range_start: self.client_ip,
            range_end: self.client_ip,
            netmask: self.netmask(),
            tftp_root,
            bootfile: &self.bootfile,
        });
        for (code, v) in [(209, &self.opt209), (210, &self.opt210)] {
            if let Some(v) = v {
                s.push_str(&option_line(code, v));
                s.push('\n');
            }
        }
        s
    }
}

/// The host tools this mode runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `dnsmasq`.
    pub dnsmasq: PathBuf,
    /// `ip` (iproute2).
    pub ip: PathBuf,
}

fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Checks what this mode needs: root, `dnsmasq`, `ip` and `/dev/net/tun`.
/// The error says what is missing and how to get it.
pub fn prerequisites() -> Result<Tools, String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Err(format!(
            "dnsmasq mode needs root (network namespace, tap device): running as uid {uid}"
        ));
    }
    let dnsmasq = find_tool("dnsmasq").ok_or_else(|| {
        "dnsmasq mode needs the dnsmasq binary: not found on PATH or in /usr/sbin (install dnsmasq-base, ci/install-deps)"
            .to_string()
    })?;
    let ip = find_tool("ip").ok_or_else(|| {
        "dnsmasq mode needs `ip`: not found on PATH or in /usr/sbin (install iproute2, ci/install-deps)"
            .to_string()
    })?;
    if !Path::new("/dev/net/tun").exists() {
        return Err("dnsmasq mode needs /dev/net/tun for the tap device: it does not exist".into());
    }
    Ok(Tools { dnsmasq, ip })
}

/// Runs `ip ARGS`; the error carries its stderr.
fn ip(tools: &Tools, args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new(&tools.ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::Tool {
            tool: "ip",
            message: format!("running {} {}: {e}", tools.ip.display(), args.join(" ")),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Tool {
            tool: "ip",
            message: format!(
                "ip {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// The path of namespace `name` (what QEMU and dnsmasq `setns` into).
pub fn namespace_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// The names of this mode's namespaces that exist now (`s390pxe-*`).
pub fn our_namespaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .collect();
    v.sort();
    v
}

/// The pid a namespace name carries (`s390pxe-<pid>-<n>`).
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(NETNS_PREFIX)?
        .split_once('-')?
        .0
        .parse()
        .ok()
}

/// Pids of the processes whose network namespace is `ns` (same nsfs inode).
fn processes_in(ns: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(ns) else {
        return Vec::new();
    };
    let want = format!("net:[{}]", meta.ino());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|l| l.to_string_lossy() == want)
        })
        .collect()
}

/// Removes the namespaces of harness processes that no longer exist,
/// killing whatever still runs in them (only processes of a dead harness
/// can be there).
pub fn remove_stale_namespaces(tools: &Tools) {
    for name in our_namespaces() {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = namespace_path(&name);
        for p in processes_in(&path) {
            tracing::warn!(namespace = %name, pid = p, "killing a process left in a stale namespace");
            // SAFETY: kill(2) on a process inside our own stale namespace.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        match ip(tools, &["netns", "del", &name]) {
            Ok(()) => tracing::info!(namespace = %name, "removed a stale namespace of pid {pid}"),
            Err(e) => tracing::warn!(namespace = %name, "removing a stale namespace: {e}"),
        }
    }
}

/// A namespace this process created; deleted on drop.
struct Namespace {
    name: String,
    tools: Tools,
}

impl Namespace {
    fn create(tools: &Tools) -> Result<Namespace, HarnessError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{NETNS_PREFIX}{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        ip(tools, &["netns", "add", &name])?;
        Ok(Namespace {
            name,
            tools: tools.clone(),
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = ip(&self.tools, &["netns", "del", &self.name]) {
            tracing::warn!(namespace = %self.name, "deleting the namespace: {e}");
        }
    }
}

/// Sets up `cmd` to enter the network namespace open as `ns` and to die
/// with the harness thread that starts it.
fn enter_namespace(cmd: &mut Command, ns: std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: setns and prctl are async-signal-safe; the closure allocates
    // nothing. `ns` moves into the closure and stays open until exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Keeps dnsmasq and the namespace alive; drop kills and reaps dnsmasq,
/// then deletes the namespace (fields drop in order).
struct Guard {
    child: Child,
    _ns: Namespace,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dnsmasq network of one scenario.
#[derive(Debug, Clone)]
pub struct Dnsmasq {
    /// Settings with every default filled in.
    pub settings: Settings,
}

impl Dnsmasq {
    /// The network for `settings`.
    pub fn new(settings: Settings) -> Dnsmasq {
        Dnsmasq { settings }
    }
}

/// How long dnsmasq may take to report its DHCP range (before scaling).
const READY_TIMEOUT: f64 = 10.0;

impl Network for Dnsmasq {
    fn mode(&self) -> &'static str {
        "dnsmasq"
    }

    fn attach(&self, ctx: &NetContext<'_>) -> Result<NetAttachment, HarnessError> {
        let tools = prerequisites().map_err(|message| HarnessError::Tool {
            tool: "dnsmasq",
            message,
        })?;
        remove_stale_namespaces(&tools);
        let tftp_root = std::fs::canonicalize(ctx.tftp_root)
            .map_err(|e| HarnessError::io("resolving the TFTP root", ctx.tftp_root, e))?;
        let ns = Namespace::create(&tools)?;
        let s = &self.settings;
        let server = format!("{}/{}", s.server_ip, s.prefix);
        for args in [
            vec!["-n", &ns.name, "link", "set", "lo", "up"],
            vec!["-n", &ns.name, "tuntap", "add", "dev", TAP, "mode", "tap"],
            vec!["-n", &ns.name, "addr", "add", &server, "dev", TAP],
            vec!["-n", &ns.name, "link", "set", TAP, "up"],
        ] {
            ip(&tools, &args)?;
        }

        let conf = ctx.artifacts.join("dnsmasq.conf");
        let log = ctx.artifacts.join("dnsmasq.log");
        let text = format!(
            "# netboot-harness: namespace {} tap {TAP} {server}\n{}",
            ns.name,
            s.config_file(&tftp_root)
        );
        std::fs::write(&conf, text).map_err(|e| HarnessError::io("writing", &conf, e))?;
        // dnsmasq appends its log to this file; its stderr (errors before
        // logging starts) goes there too.
        let _ = std::fs::remove_file(&log);
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| HarnessError::io("creating", &log, e))?;
        let ns_path = namespace_path(&ns.name);
        let ns_file = std::fs::File::open(&ns_path)
            .map_err(|e| HarnessError::io("opening the network namespace", &ns_path, e))?;
        let mut cmd = Command::new(&tools.dnsmasq);
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!("--log-facility={}", log.display()))
            .arg("--log-dhcp")
            .arg(format!(
                "--dhcp-leasefile={}",
                ctx.artifacts.join("dnsmasq.leases").display()
            ))
            .arg(format!(
                "--pid-file={}",
                ctx.artifacts.join("dnsmasq.pid").display()
            ))
            // No DNS; stay root so a tree under any checkout (e.g. /root)
            // is readable and PR_SET_PDEATHSIG survives (a uid change
            // clears it).
            .args(["--port=0", "--user=root", "--group=root"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        enter_namespace(&mut cmd, ns_file);
        let child = cmd.spawn().map_err(|e| HarnessError::Tool {
            tool: "dnsmasq",
            message: format!("starting {}: {e}", tools.dnsmasq.display()),
        })?;
        tracing::debug!(pid = child.id(), namespace = %ns.name, "dnsmasq started");
        let mut guard = Guard { child, _ns: ns };

        // Ready once it logs its DHCP range (sockets are bound by then).
        let deadline = Instant::now() + crate::scaled(READY_TIMEOUT);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("DHCP, IP range") {
                break;
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                return Err(HarnessError::Tool {
                    tool: "dnsmasq",
                    message: format!(
                        "exited ({status}) at start with config {}: {}",
                        conf.display(),
                        text.trim()
                    ),
                });
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Tool {
                    tool: "dnsmasq",
                    message: format!(
                        "no \"DHCP, IP range\" in {} within {:?}",
                        log.display(),
                        crate::scaled(READY_TIMEOUT)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let netdev = format!("tap,id=n0,ifname={TAP},script=no,downscript=no");
        let mut qemu_args = vec![
            "-netdev".into(),
            netdev,
            "-device".into(),
            // event_idx=off, as in the inprocess mode: with it on, a guest
            // on this tap stopped receiving for good in the middle of the
            // kernel's TFTP transfer (4 boots at once on 2 cores; the pcap
            // shows dnsmasq retransmitting and answering ARP, the guest
            // re-ACKing the previous block): QEMU's virtio-net event-index
            // RX stall, not a dgram or dnsmasq matter.
            format!("{},event_idx=off", nic_device("n0", ctx.mac)),
        ];
        // The guest's traffic as QEMU sees it (as in slirp mode).
        let pcap_mode = PcapMode::from_env();
        let pcap = (pcap_mode != PcapMode::Off).then(|| ctx.artifacts.join("net.pcap"));
        if let Some(p) = &pcap {
            let mut obj = format!(
                "filter-dump,id=dump0,netdev=n0,file={}",
                qemu_opt_value(&p.display().to_string())
            );
            if pcap_mode == PcapMode::Headers {
                obj.push_str(&format!(",maxlen={HEADER_SNAPLEN}"));
            }
            qemu_args.extend(["-object".into(), obj]);
        }
        Ok(NetAttachment {
            qemu_args,
            pcap,
            netns: Some(ns_path),
            guard: Some(Box::new(guard)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/deploy.md shows the template with these values.
    fn doc_example() -> String {
        render(&ConfValues {
            interface: "br-netboot",
            range_start: Ipv4Addr::new(192, 168, 100, 10),
            range_end: Ipv4Addr::new(192, 168, 100, 50),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            tftp_root: Path::new("/srv/tftp"),
            bootfile: "pxelinux.0",
        })
    }

    #[test]
    fn deploy_doc_shows_the_tested_config() {
        let doc = include_str!("../../docs/deploy.md");
        let example = doc_example();
        assert!(
            doc.contains(&example),
            "docs/deploy.md must contain the dnsmasq config the harness tests \
             (harness/src/dnsmasq.conf rendered with the doc's values):\n{example}"
        );
        for code in [209, 210] {
            let line = option_line(code, "");
            assert!(
                doc.contains(&line),
                "docs/deploy.md must show {line:?} (the form the harness sends)"
            );
        }
    }

    #[test]
    fn defaults_are_slirps_addresses() {
        let s = DnsmasqConfig::default()
            .resolve("pxelinux.0", None, None)
            .expect("defaults");
        assert_eq!(s.server_ip, Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(s.client_ip, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        let conf = s.config_file(Path::new("/t"));
        assert!(conf.contains("dhcp-range=10.0.2.15,10.0.2.15,255.255.255.0,1h\n"));
        assert!(conf.contains("interface=nbh0\n"));
        assert!(conf.contains("tftp-root=/t\n"));
        assert!(!conf.contains("209"));
    }

    #[test]
    fn options_and_errors() {
        let c = DnsmasqConfig {
            opt209: Some("configs/a.cfg".into()),
            opt210: Some("s390x".into()),
        };
        let s = c
            .resolve("pxelinux.0", Some("192.168.76.0/24"), Some("192.168.76.50"))
            .expect("valid");
        assert_eq!(s.server_ip, Ipv4Addr::new(192, 168, 76, 2));
        let conf = s.config_file(Path::new("/t"));
        assert!(conf.contains("dhcp-option-force=tag:s390x,209,configs/a.cfg\n"));
        assert!(conf.contains("dhcp-option-force=tag:s390x,210,s390x\n"));
        let bad = DnsmasqConfig {
            opt209: Some("30".into()),
            opt210: None,
        };
        let e = bad.resolve("pxelinux.0", None, None).unwrap_err();
        assert!(e.contains("opt209 \"30\""), "{e}");
        let e = DnsmasqConfig::default()
            .resolve("pxelinux.0", None, Some("10.0.3.15"))
            .unwrap_err();
        assert!(e.contains("dhcpstart 10.0.3.15"), "{e}");
    }

    #[test]
    fn owner_pid_from_name() {
        assert_eq!(owner_pid("s390pxe-1234-7"), Some(1234));
        assert_eq!(owner_pid("s390pxe-x-7"), None);
        assert_eq!(owner_pid("other-1-2"), None);
    }
}
