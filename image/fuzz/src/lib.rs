//! The fuzz targets' bodies, shared by the cargo-fuzz binaries
//! (`fuzz_targets/`, long coverage-guided runs in the nightly job) and the
//! smoke test (`tests/smoke.rs`, seconds, in the project's test command).
//! Each function must never panic on any input (except the round-trip
//! assertions, which are the property under test).

use netboot_harness::inprocess::config::{Common, InProcessConfig};
use netboot_harness::inprocess::dhcp::DhcpServer;
use netboot_harness::inprocess::log::EventLog;
use netboot_harness::inprocess::{relay, wire};
use s390_pxelinux::cpio::{list, Archive, Node};
use s390_pxelinux::pxelinux::config::{normalize, select, Choice, Config, NetInfo};
use s390_pxelinux::pxelinux::lookup::resolve_path;

/// Fuzz target: the PXELINUX config language on arbitrary bytes — normalise,
/// evaluate, pick the default/timeout/typed choices and select the entry,
/// plus path resolution against a prefix. Must never panic.
pub fn pxelinux_config(data: &[u8]) {
    let mut warnings = Vec::new();
    let directives = normalize("fuzz.cfg", data, &mut warnings);
    let config = Config::evaluate(&directives, &mut warnings);
    let net = NetInfo {
        ip: "10.0.2.15".into(),
        server: "10.0.2.2".into(),
        gateway: "10.0.2.2".into(),
        netmask: "255.255.255.0".into(),
        mac_dashed: "52-54-00-12-34-56".into(),
        uuid: Some("550e8400-e29b-11d4-a716-446655441234".into()),
    };
    for choice in [config.default_choice(), config.timeout_choice()] {
        if let Ok(entry) = select(&config, &choice, &net) {
            let _ = resolve_path(&entry.kernel, "boot/").refused();
            for i in &entry.initrd {
                let _ = resolve_path(i, "").refused();
                let _ = resolve_path(i, "tftp://h:69/d/");
            }
        }
    }
    let typed = String::from_utf8_lossy(&data[..data.len().min(64)]);
    let _ = select(&config, &config.typed_choice(&typed), &net);
    let _ = config.visible_labels().count();
    let _ = config.prompt_tenths();
    let _ = config.prompts();
    if let Some(cmd) = &config.onerror {
        let _ = select(&config, &Choice::OnError(cmd.clone()), &net);
    }
}

/// Fuzz target: `inspect` (kernel header, initrd bounds, decompression, cpio
/// listing) and the cpio reader alone on arbitrary bytes. Must return an
/// error, never panic.
pub fn inspect(data: &[u8]) {
    let _ = s390_pxelinux::inspect::inspect(data);
    let _ = s390_pxelinux::cpio::list(data);
}

/// Fuzz target: the newc writer round trip. Entries derived from the input
/// are added to an archive; whatever is accepted must be written and listed
/// back with the same paths, in sorted order.
pub fn newc_roundtrip(data: &[u8]) {
    let mut archive = Archive::new();
    for chunk in data.split(|&b| b == b'\n').take(64) {
        let (kind, rest) = match chunk.split_first() {
            Some((k, r)) => (*k, r),
            None => continue,
        };
        let text = String::from_utf8_lossy(rest);
        let (path, body) = text.split_once('=').unwrap_or((&text, ""));
        let path = format!("/{path}");
        let node = match kind % 4 {
            0 => Node::File(body.as_bytes().to_vec()),
            1 => Node::Dir,
            2 => Node::Symlink(body.to_string()),
            _ => Node::CharDev(u32::from(kind), 1),
        };
        let _ = archive.add(&path, node, u32::from(kind) & 0o777);
    }
    let bytes = archive
        .write_newc(Vec::new(), 0)
        .expect("writing an accepted archive");
    let listed = list(&bytes).expect("reading back our own archive");
    assert_eq!(listed.len(), archive.len());
    assert!(
        listed.windows(2).all(|w| w[0].path < w[1].path),
        "entries not sorted"
    );
}

/// Fuzz target: the in-process network's packet handling — Ethernet/ARP/IPv4/
/// UDP classification, the DHCP server and the TFTP packet helpers — on
/// arbitrary frames and payloads. Must never panic.
pub fn network_packets(data: &[u8]) {
    let _ = wire::parse(data);
    let _ = wire::ether_type(data);
    let _ = relay::opcode(data);
    let _ = relay::block(data);
    let pairs = relay::strings(data);
    let _ = relay::option(&pairs, "blksize");
    let _ = relay::kind(data);
    let _ = relay::error(data);
    if let Ok(cfg) = InProcessConfig::default().resolve(&Common::default()) {
        let mut server = DhcpServer::new(&cfg, EventLog::discard());
        let _ = server.handle(data);
    }
}
