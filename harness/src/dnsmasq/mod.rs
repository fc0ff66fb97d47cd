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
//! `/dev/net/tun` ([`prerequisites`]). The configuration is [`config`]'s
//! job, namespaces are [`netns`]'s; this module starts dnsmasq and wires
//! QEMU. It must not touch namespaces or processes that are not its own,
//! nor know about consoles or steps.

pub mod config;
pub mod netns;

pub use config::{option_line, render, ConfValues, DnsmasqConfig, Settings, TAP, TEMPLATE};
pub use netns::{
    namespace_path, our_namespaces, prerequisites, prerequisites_required, remove_stale_namespaces,
    Tools, NETNS_DIR, NETNS_PREFIX,
};

use crate::network::{
    nic_device, HttpSite, NetAttachment, NetContext, Network, PcapMode, SectionError, Shared,
    UrlValues,
};
use crate::HarnessError;
use netns::{enter_namespace, ip, Namespace};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    /// The network a scenario's `[network.dnsmasq]` section (absent: every
    /// default) and shared `[network]` keys describe.
    pub fn from_section(
        shared: &Shared,
        section: Option<&DnsmasqConfig>,
    ) -> Result<Dnsmasq, SectionError> {
        if let Some(t) = &shared.tftp_server_name {
            return Err(SectionError {
                key: Some("tftp_server_name"),
                message: format!(
                    "network.tftp_server_name {t:?}: not supported in mode \"dnsmasq\" (its TFTP server is the DHCP server)"
                ),
            });
        }
        section
            .cloned()
            .unwrap_or_default()
            .resolve(
                &shared.bootfile,
                shared.net.as_deref(),
                shared.dhcpstart.as_deref(),
            )
            .map(Dnsmasq::new)
            .map_err(|e| SectionError {
                key: None,
                message: format!("network: {e}"),
            })
    }
}

impl UrlValues for Dnsmasq {
    fn url_values(&mut self) -> Vec<(&'static str, &mut Option<String>)> {
        let s = &mut self.settings;
        vec![("opt209", &mut s.opt209), ("opt210", &mut s.opt210)]
    }
}

/// How long dnsmasq may take to report its DHCP range (before scaling).
const READY_TIMEOUT: f64 = 10.0;

impl Network for Dnsmasq {
    fn name(&self) -> &'static str {
        "dnsmasq"
    }

    fn http_site(&self) -> Result<HttpSite, String> {
        Ok(HttpSite::InNamespace {
            addr: self.settings.server_ip,
        })
    }

    fn http_options(&self) -> Vec<(&'static str, String)> {
        crate::network::http_options(self)
    }

    fn with_http_url(&self, base: &str) -> Arc<dyn Network> {
        Arc::new(crate::network::with_http_url(self, base))
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

        let conf = ctx.artifacts.dnsmasq_conf();
        let log = ctx.artifacts.dnsmasq_log();
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
                ctx.artifacts.dnsmasq_leases().display()
            ))
            .arg(format!(
                "--pid-file={}",
                ctx.artifacts.dnsmasq_pid().display()
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
            // event_idx=off unless NETBOOT_VIRTIO_EVENT_IDX=on, as in the
            // inprocess mode (see docs/performance.md, "The event_idx=off
            // workaround").
            format!(
                "{}{}",
                nic_device("n0", ctx.mac),
                crate::network::event_idx_property()
            ),
        ];
        // The guest's traffic as QEMU sees it (as in slirp mode).
        qemu_args.extend(PcapMode::from_env().filter_dump(&ctx.artifacts.net_pcap()));
        Ok(NetAttachment {
            qemu_args,
            netns: Some(ns_path),
            guard: Some(Box::new(guard)),
        })
    }
}
