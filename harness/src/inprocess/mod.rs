//! The `inprocess` network mode: the harness owns the guest's wire. QEMU
//! joins a virtual Ethernet segment through `-netdev dgram` over two UNIX
//! sockets in a short temporary directory (no root, no tap); the harness
//! end ([`segment`]) answers ARP for its addresses, serves DHCP/BOOTP
//! ([`dhcp`], dhcproto) with every PXELINUX option and misbehaviour a
//! scenario asks for, relays TFTP ([`relay`]) to a real async-tftp server
//! on loopback ([`tftp`]) that serves the run's tree read-only and
//! sandboxed, relays the guest's TCP connections to port 80 of the server
//! address to the run's HTTP server through a smoltcp stack ([`tcp`],
//! when the scenario has `[http]`), injects seeded faults ([`faults`]) and
//! writes `network.pcap`,
//! `tftp.log` and `dhcp.log` into the artifact directory. Settings come from
//! the scenario ([`config`]). Everything it starts is owned by the guard of
//! [`NetAttachment`] and stops when the run drops it; it never touches
//! consoles, QEMU processes or scenario steps.

pub mod config;
pub mod dhcp;
pub mod faults;
pub mod log;
pub mod pcap;
pub mod relay;
pub mod segment;
pub mod tcp;
pub mod tftp;
pub mod wire;

use crate::network::{
    nic_device, qemu_opt_value, HttpSite, NetAttachment, NetContext, Network, SectionError, Shared,
    UrlValues,
};
use crate::HarnessError;
use config::{Common, Resolved};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use config::InProcessConfig;

/// The in-process network of one scenario.
#[derive(Debug, Clone)]
pub struct InProcess {
    /// Settings with every default filled in.
    pub config: Resolved,
}

impl<'a> From<&'a Shared> for Common<'a> {
    fn from(s: &'a Shared) -> Common<'a> {
        Common {
            bootfile: Some(&s.bootfile),
            tftp_server_name: s.tftp_server_name.as_deref(),
            net: s.net.as_deref(),
            dhcpstart: s.dhcpstart.as_deref(),
        }
    }
}

/// Keeps the segment task (and through it the TFTP server, relay sockets
/// and timers) and the socket directory alive; dropping it aborts them all.
struct Guard {
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl InProcess {
    /// The network for `config`, whose defaults `resolve` filled in.
    pub fn new(config: Resolved) -> InProcess {
        InProcess { config }
    }

    /// The network a scenario's `[network.inprocess]` section (absent: every
    /// default) and shared `[network]` keys describe.
    pub fn from_section(
        shared: &Shared,
        section: Option<&InProcessConfig>,
    ) -> Result<InProcess, SectionError> {
        section
            .cloned()
            .unwrap_or_default()
            .resolve(&Common::from(shared))
            .map(InProcess::new)
            .map_err(|e| SectionError {
                key: Some("inprocess"),
                message: format!("network.inprocess: {e}"),
            })
    }
}

/// Options 209 and 210 of every reply, and of the replies after the first
/// ACK when `client` replaces them (the guest's udhcpc reads those).
impl UrlValues for InProcess {
    fn url_values(&mut self) -> Vec<(&'static str, &mut Option<String>)> {
        let c = &mut self.config;
        let mut v = vec![
            ("opt209", &mut c.strings.opt209),
            ("opt210", &mut c.strings.opt210),
        ];
        if let Some(client) = &mut c.client {
            v.push(("client.opt209", &mut client.opt209));
            v.push(("client.opt210", &mut client.opt210));
        }
        v
    }
}

impl Network for InProcess {
    fn name(&self) -> &'static str {
        "inprocess"
    }

    fn http_site(&self) -> Result<HttpSite, String> {
        Ok(HttpSite::Relayed {
            guest_addr: self.config.server_ip,
        })
    }

    fn http_options(&self) -> Vec<(&'static str, String)> {
        crate::network::http_options(self)
    }

    fn with_http_url(&self, base: &str) -> Arc<dyn Network> {
        Arc::new(crate::network::with_http_url(self, base))
    }

    fn attach(&self, ctx: &NetContext<'_>) -> Result<NetAttachment, HarnessError> {
        let start = std::time::Instant::now();
        let io = |what: &'static str, path: &std::path::Path, e: std::io::Error| {
            HarnessError::io(what, path, e)
        };
        // sun_path holds 108 bytes: keep the sockets in a short /tmp dir.
        let dir = tempfile::Builder::new()
            .prefix("nbh-net-")
            .tempdir_in("/tmp")
            .map_err(|e| io("creating the socket directory in", "/tmp".as_ref(), e))?;
        let ours = dir.path().join("h.sock");
        let qemu_end = dir.path().join("q.sock");
        let sock = tokio::net::UnixDatagram::bind(&ours)
            .map_err(|e| io("binding the segment socket", &ours, e))?;

        let pcap_path = ctx.artifacts.network_pcap();
        let capture =
            pcap::Capture::create(&pcap_path).map_err(|e| io("creating", &pcap_path, e))?;
        let tftp_log_path = ctx.artifacts.tftp_log();
        let tftp_log = log::EventLog::create(&tftp_log_path, start)
            .map_err(|e| io("creating", &tftp_log_path, e))?;
        let dhcp_log_path = ctx.artifacts.dhcp_log();
        let dhcp_log = log::EventLog::create(&dhcp_log_path, start)
            .map_err(|e| io("creating", &dhcp_log_path, e))?;
        dhcp_log.line(format!("segment: {:?}", self.config));

        let names = Arc::new(Mutex::new(HashMap::new()));
        let handler = tftp::SandboxHandler::new(
            ctx.tftp_root,
            tftp::TftpFaults::from_faults(&self.config.faults)
                .with_zero_files(&self.config.zero_files),
            tftp_log.clone(),
            Arc::clone(&names),
        )
        .map_err(|e| io("opening the TFTP root", ctx.tftp_root, e))?
        .trust(&crate::payload::target_dir().join("boot-payloads"));
        // build() only binds a socket: run it to completion here.
        let service = futures_lite::future::block_on(tftp::start(
            handler,
            self.config.tftp_timeout,
            self.config.tftp_max_blksize,
            tftp_log.clone(),
        ))
        .map_err(|m| HarnessError::Tool {
            tool: "async-tftp",
            message: m,
        })?;
        tftp_log.line(format!(
            "tftp: server on {} for {} (addresses {:?})",
            service.addr,
            ctx.tftp_root.display(),
            self.config.tftp_on
        ));
        let tcp = ctx.http_backend.map(|backend| {
            let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
            let prefix = u32::from(self.config.netmask).count_ones() as u8;
            let relay = tcp::TcpRelay::new(
                self.config.server_ip,
                prefix,
                backend,
                wake,
                tftp_log.clone(),
            );
            (relay, woken)
        });
        let seg = segment::Segment::new(segment::SegmentParts {
            cfg: self.config.clone(),
            sock,
            qemu_path: qemu_end.clone(),
            tftp_addr: service.addr,
            tftp_serve: service.serve,
            names,
            capture,
            dhcp_log,
            tftp_log,
            tcp,
        });
        let task = tokio::spawn(seg.run());
        let netdev = format!(
            "dgram,id=n0,local.type=unix,local.path={},remote.type=unix,remote.path={}",
            qemu_opt_value(&qemu_end.display().to_string()),
            qemu_opt_value(&ours.display().to_string())
        );
        Ok(NetAttachment {
            qemu_args: vec![
                "-netdev".into(),
                netdev,
                "-device".into(),
                // event_idx=off unless NETBOOT_VIRTIO_EVENT_IDX=on: a
                // precaution kept after the soak of issue #16 could not
                // reproduce the RX stall it was added for (evidence and
                // source lines: docs/performance.md, "The event_idx=off
                // workaround").
                format!(
                    "{}{}",
                    nic_device("n0", ctx.mac),
                    crate::network::event_idx_property()
                ),
            ],
            netns: None,
            guard: Some(Box::new(Guard { task, _dir: dir })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_url_fills_options_209_and_210_and_their_client_values() {
        let section: InProcessConfig = toml::from_str(
            "opt209 = \"${http}/c.cfg\"\nhostname = \"${http}\"\n\
             [client]\nopt209 = \"${http}/late.cfg\"\nopt210 = \"${http}/s390x/\"\n\
             file = \"${http}/f\"\n",
        )
        .expect("parses");
        let n = InProcess::from_section(&Shared::default(), Some(&section)).expect("resolves");
        let keys: Vec<&str> = n.http_options().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["opt209", "client.opt209", "client.opt210"]);
        let filled = n.with_http_url("http://10.0.2.2");
        assert_eq!(
            filled.http_options(),
            [
                ("opt209", "http://10.0.2.2/c.cfg".to_string()),
                ("client.opt209", "http://10.0.2.2/late.cfg".to_string()),
                ("client.opt210", "http://10.0.2.2/s390x/".to_string()),
            ]
        );
        // Only the URL options are filled: a host name or boot file
        // served as `${http}` stays as written.
        let mut expected = n.clone();
        expected.config.strings.opt209 = Some("http://10.0.2.2/c.cfg".into());
        let client = expected.config.client.as_mut().expect("client");
        client.opt209 = Some("http://10.0.2.2/late.cfg".into());
        client.opt210 = Some("http://10.0.2.2/s390x/".into());
        assert_eq!(format!("{filled:?}"), format!("{expected:?}"));
    }
}
