//! Tests of the in-process network against real peers: the sandboxed TFTP
//! handler through a real UDP exchange with the async-tftp server (reads,
//! blksize/tsize negotiation, refusals of `..`, absolute paths, symlinks out
//! of the root and write requests, injected errors and truncation), the
//! pcap read back by `tshark` when it is installed, and a full netboot of
//! pxelinux.0 under QEMU through the in-process segment.

use netboot_harness::artifacts::ArtifactDir;
use netboot_harness::inprocess::config::{Common, InProcessConfig};
use netboot_harness::inprocess::log::EventLog;
use netboot_harness::inprocess::pcap::Capture;
use netboot_harness::inprocess::tftp::{self, SandboxHandler, TftpFaults};
use netboot_harness::inprocess::{wire, InProcess};
use netboot_harness::network::{NetContext, Network};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What a TFTP read ended with.
#[derive(Debug, PartialEq)]
enum Got {
    File { data: Vec<u8>, oack: Vec<String> },
    Error(u16, String),
}

/// A minimal TFTP client: RRQ (or WRQ) with options, ACKs every block.
async fn tftp_get(server: SocketAddr, op: u16, file: &str, opts: &[(&str, &str)]) -> Got {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("client socket");
    let mut req = op.to_be_bytes().to_vec();
    for part in [file, "octet"] {
        req.extend_from_slice(part.as_bytes());
        req.push(0);
    }
    for (k, v) in opts {
        for part in [k, v] {
            req.extend_from_slice(part.as_bytes());
            req.push(0);
        }
    }
    s.send_to(&req, server).await.expect("send request");
    let mut data = Vec::new();
    let mut oack = Vec::new();
    let mut buf = vec![0u8; 70000];
    let mut blksize = 512;
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
            .await
            .expect("server answered within 5 s")
            .expect("recv");
        let p = &buf[..n];
        match u16::from_be_bytes([p[0], p[1]]) {
            3 => {
                data.extend_from_slice(&p[4..]);
                let mut ack = vec![0, 4];
                ack.extend_from_slice(&p[2..4]);
                s.send_to(&ack, from).await.expect("ack");
                if n - 4 < blksize {
                    return Got::File { data, oack };
                }
            }
            5 => {
                let msg = String::from_utf8_lossy(&p[4..n - 1]).into_owned();
                return Got::Error(u16::from_be_bytes([p[2], p[3]]), msg);
            }
            6 => {
                oack = p[2..n - 1]
                    .split(|b| *b == 0)
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect();
                if let Some(i) = oack.iter().position(|k| k == "blksize") {
                    blksize = oack[i + 1].parse().expect("blksize value");
                }
                s.send_to(&[0, 4, 0, 0], from).await.expect("ack 0");
            }
            other => panic!("unexpected opcode {other}"),
        }
    }
}

/// A served tree: `a.txt`, `sub/b.bin` (5000 bytes), a symlink leading out
/// of the root and one staying inside.
fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("root");
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(root.path().join("a.txt"), b"hello\n").expect("write");
    std::fs::create_dir(root.path().join("sub")).expect("mkdir");
    let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.path().join("sub/b.bin"), &big).expect("write");
    std::fs::write(outside.path().join("secret"), b"secret").expect("write");
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("leak"))
        .expect("symlink");
    std::os::unix::fs::symlink("a.txt", root.path().join("alias")).expect("symlink");
    (root, outside)
}

async fn server(root: &Path, faults: TftpFaults, log: EventLog) -> SocketAddr {
    server_trusting(root, None, faults, log).await
}

async fn server_trusting(
    root: &Path,
    trusted: Option<&Path>,
    faults: TftpFaults,
    log: EventLog,
) -> SocketAddr {
    let mut h = SandboxHandler::new(
        root,
        faults,
        log.clone(),
        Arc::new(Mutex::new(HashMap::new())),
    )
    .expect("handler");
    if let Some(t) = trusted {
        h = h.trust(t);
    }
    let svc = tftp::start(h, Duration::from_millis(500), 1468, log)
        .await
        .expect("server");
    tokio::spawn(svc.serve);
    svc.addr
}

#[test]
fn tftp_serves_the_tree_with_blksize_and_tsize() {
    let (root, _out) = tree();
    runtime().block_on(async {
        let addr = server(root.path(), TftpFaults::default(), EventLog::discard()).await;
        assert_eq!(
            tftp_get(addr, 1, "a.txt", &[]).await,
            Got::File {
                data: b"hello\n".to_vec(),
                oack: vec![]
            }
        );
        match tftp_get(addr, 1, "sub/b.bin", &[("blksize", "1428"), ("tsize", "0")]).await {
            Got::File { data, oack } => {
                assert_eq!(data.len(), 5000);
                assert!(
                    oack.windows(2).any(|w| w[0] == "blksize" && w[1] == "1428"),
                    "{oack:?}"
                );
                assert!(
                    oack.windows(2).any(|w| w[0] == "tsize" && w[1] == "5000"),
                    "{oack:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A symlink that stays inside the root is fine.
        assert!(matches!(
            tftp_get(addr, 1, "alias", &[]).await,
            Got::File { .. }
        ));
    });
}

#[test]
fn tftp_refuses_escapes_absolute_paths_and_writes() {
    let (root, out) = tree();
    let log_dir = tempfile::tempdir().expect("log dir");
    let log_path = log_dir.path().join("tftp.log");
    let log = EventLog::create(&log_path, std::time::Instant::now()).expect("log");
    runtime().block_on(async {
        let addr = server(root.path(), TftpFaults::default(), log).await;
        let secret = out.path().join("secret");
        for bad in [
            "../x",
            "sub/../../x",
            "sub/../a.txt",
            "/etc/passwd",
            secret.to_str().expect("utf-8 path"),
            "leak",
        ] {
            match tftp_get(addr, 1, bad, &[]).await {
                Got::Error(2, _) => {}
                other => panic!("{bad:?}: expected an access violation, got {other:?}"),
            }
        }
        assert!(matches!(
            tftp_get(addr, 1, "missing", &[]).await,
            Got::Error(1, _)
        ));
        assert!(matches!(
            tftp_get(addr, 1, "sub", &[]).await,
            Got::Error(1, _)
        ));
        assert!(matches!(
            tftp_get(addr, 2, "a.txt", &[]).await,
            Got::Error(2, _)
        ));
    });
    assert_eq!(
        std::fs::read(root.path().join("a.txt")).expect("read"),
        b"hello\n"
    );
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.contains("WRQ \"a.txt\": refused"), "{log}");
    assert!(log.contains("\"leak\": refused (Escapes)"), "{log}");
    assert!(log.contains("\"../x\": refused (Unsafe)"), "{log}");
}

#[test]
fn tftp_follows_symlinks_into_a_trusted_dir_only() {
    let (root, out) = tree();
    let cache = tempfile::tempdir().expect("cache");
    std::fs::write(cache.path().join("payload"), b"cached").expect("write");
    std::os::unix::fs::symlink(cache.path().join("payload"), root.path().join("p"))
        .expect("symlink");
    let _ = &out;
    runtime().block_on(async {
        let addr = server_trusting(
            root.path(),
            Some(cache.path()),
            TftpFaults::default(),
            EventLog::discard(),
        )
        .await;
        assert_eq!(
            tftp_get(addr, 1, "p", &[]).await,
            Got::File {
                data: b"cached".to_vec(),
                oack: vec![]
            }
        );
        assert!(matches!(
            tftp_get(addr, 1, "leak", &[]).await,
            Got::Error(2, _)
        ));
    });
}

#[test]
fn tftp_faults_error_on_nth_request_and_truncate() {
    let (root, _out) = tree();
    std::fs::copy(root.path().join("sub/b.bin"), root.path().join("c.bin")).expect("copy");
    let cfg: InProcessConfig = toml::from_str(
        r#"
        [[fault]]
        kind = "tftp-error"
        nth = 2
        code = 0
        message = "flaky"
        [[fault]]
        kind = "tftp-error"
        path = "a.txt"
        nth = 2
        code = 1
        [[fault]]
        kind = "truncate"
        path = "sub/b.bin"
        bytes = 1000
        [[fault]]
        kind = "truncate"
        path = "c.bin"
        bytes = 1000
        announce_full = true
        "#,
    )
    .expect("config");
    runtime().block_on(async {
        let mut zeros = std::collections::BTreeMap::new();
        zeros.insert("gen/zeros".to_string(), 70_000u64);
        let addr = server(
            root.path(),
            TftpFaults::from_faults(&cfg.faults).with_zero_files(&zeros),
            EventLog::discard(),
        )
        .await;
        assert!(matches!(
            tftp_get(addr, 1, "a.txt", &[]).await,
            Got::File { .. }
        ));
        assert_eq!(
            tftp_get(addr, 1, "alias", &[]).await,
            Got::Error(0, "flaky".into())
        );
        assert!(matches!(
            tftp_get(addr, 1, "a.txt", &[]).await,
            Got::Error(1, _)
        ));
        match tftp_get(addr, 1, "sub/b.bin", &[("tsize", "0")]).await {
            Got::File { data, oack } => {
                assert_eq!(data.len(), 1000);
                assert!(oack.contains(&"1000".to_string()), "{oack:?}");
            }
            other => panic!("{other:?}"),
        }
        match tftp_get(addr, 1, "c.bin", &[("tsize", "0")]).await {
            Got::File { data, oack } => {
                assert_eq!(data.len(), 1000);
                assert!(
                    oack.contains(&"5000".to_string()),
                    "tsize not the full size: {oack:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        match tftp_get(addr, 1, "gen/zeros", &[("blksize", "1468")]).await {
            Got::File { data, .. } => {
                assert_eq!(data.len(), 70_000);
                assert!(data.iter().all(|b| *b == 0));
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn pcap_is_readable_by_tshark() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("network.pcap");
    let mut cap = Capture::create(&path).expect("create");
    let f = wire::udp_frame(
        &wire::UdpAddrs {
            src_mac: wire::HARNESS_MAC,
            dst_mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            src_ip: Ipv4Addr::new(10, 0, 2, 2),
            dst_ip: Ipv4Addr::new(10, 0, 2, 15),
            src_port: 69,
            dst_port: 2000,
        },
        b"\x00\x05\x00\x01File not found\x00",
    )
    .expect("frame");
    let arp = wire::arp_reply(
        wire::HARNESS_MAC,
        Ipv4Addr::new(10, 0, 2, 2),
        [0x52, 0x54, 0, 0x12, 0x34, 0x56],
        Ipv4Addr::new(10, 0, 2, 15),
    )
    .expect("arp");
    cap.record(&f, usize::MAX).expect("record");
    cap.record(&arp, usize::MAX).expect("record");
    cap.record(&f, 20).expect("record truncated");
    drop(cap);
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian pcap magic"
    );
    let Ok(out) = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .output()
    else {
        eprintln!("tshark not installed: parsed the header only (ci/install-deps installs it)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("TFTP") && text.contains("ARP"), "{text}");
}

/// The QEMU side: attach to a real run's segment with a tiny tree and check
/// the firmware's DHCP and TFTP go through (no payload build needed: the
/// boot file is absent, so the firmware gives up after its lookups).
#[test]
fn firmware_dhcp_and_tftp_through_the_segment() {
    use netboot_harness::qemu::{Machine, MachineLogs, MachineSpec, QemuBinary};
    let Ok(qemu) = QemuBinary::find() else {
        panic!("qemu-system-s390x missing (run ci/install-deps)");
    };
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("tftp");
    std::fs::create_dir(&root).expect("mkdir");
    let cfg = InProcessConfig::default()
        .resolve(&Common {
            bootfile: Some("pxelinux.0"),
            ..Common::default()
        })
        .expect("config");
    let run_dir = ArtifactDir::existing(dir.path()).expect("run dir");
    let rt = runtime();
    rt.block_on(async {
        let att = InProcess::new(cfg)
            .attach(&NetContext {
                tftp_root: &root,
                mac: None,
                artifacts: &run_dir,
                http_backend: None,
            })
            .expect("attach");
        let spec = MachineSpec {
            net_args: att.qemu_args.clone(),
            ..MachineSpec::default()
        };
        let logs = MachineLogs {
            console: Some(dir.path().join("console.log")),
            qemu_output: Some(dir.path().join("qemu.log")),
            qmp: None,
            cmdline: None,
        };
        let mut m = Machine::launch(&qemu, &spec, &logs).await.expect("launch");
        let re = regex::bytes::Regex::new("Failed to load OS from network").expect("regex");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let r = m.console.expect(&re, deadline, &[]).await;
        let _ = m.shutdown().await;
        drop(att);
        let text = m.console.text();
        assert!(r.is_ok(), "firmware did not finish its lookups:\n{text}");
        assert!(text.contains("Using IPv4 address: 10.0.2.15"), "{text}");
        assert!(
            text.contains("TFTP error: file not found: pxelinux.0"),
            "{text}"
        );
    });
    drop(rt);
    let tlog = std::fs::read_to_string(dir.path().join("tftp.log")).expect("tftp.log");
    assert!(
        tlog.contains("RRQ \"pxelinux.0\": refused (NotFound)"),
        "{tlog}"
    );
    assert!(tlog.contains("pxelinux.cfg/default"), "{tlog}");
    let dlog = std::fs::read_to_string(dir.path().join("dhcp.log")).expect("dhcp.log");
    assert!(
        dlog.contains("DISCOVER") && dlog.contains("arch=0x001f"),
        "{dlog}"
    );
    assert!(dlog.contains("ACK yiaddr=10.0.2.15"), "{dlog}");
    let pcap = dir.path().join("network.pcap");
    assert!(std::fs::metadata(&pcap).expect("pcap").len() > 24);
    // The real run's capture parses, with the DHCP and TFTP exchanges in it.
    if let Ok(out) = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("DHCP Discover") && text.contains("DHCP ACK"),
            "{text}"
        );
        assert!(
            text.contains("Read Request") && text.contains("pxelinux.0"),
            "{text}"
        );
    }
}

/// The whole chain through the segment: the firmware's DHCP and TFTP of
/// pxelinux.0, the first kernel's udhcpc, busybox tftp of the config, kernel
/// and initrd, kexec into the target. Prints the timings.
#[test]
fn pxelinux_boots_the_target_through_the_segment() {
    use netboot_harness::payload::{Params, Payloads};
    use netboot_harness::qemu::{Machine, MachineLogs, MachineSpec, QemuBinary};
    use netboot_harness::scenario::{self, Payload};
    let qemu = QemuBinary::find().expect("qemu-system-s390x (run ci/install-deps)");
    let payloads = Payloads::new().expect("fixtures");
    let params = Params {
        pxelinux_kernel: scenario::DEFAULT_PXELINUX_KERNEL,
        pxelinux_cmdline: s390_pxelinux::build::DEFAULT_CMDLINE,
        target_kernel: scenario::DEFAULT_TARGET_KERNEL,
    };
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("tftp");
    std::fs::create_dir_all(root.join("pxelinux.cfg")).expect("mkdir");
    for (name, a) in [
        ("pxelinux.0", Payload::Pxelinux),
        ("vmlinuz", Payload::TargetKernel),
        ("initrd.gz", Payload::TargetInitrd),
    ] {
        let p = payloads.get(&a, &params).expect("payload");
        std::fs::copy(&p, root.join(name)).expect("copy");
    }
    std::fs::write(
        root.join("pxelinux.cfg/default"),
        "DEFAULT t\nLABEL t\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=inproc\n",
    )
    .expect("config");
    let cfg = InProcessConfig::default()
        .resolve(&Common {
            bootfile: Some("pxelinux.0"),
            ..Common::default()
        })
        .expect("config");
    let run_dir = ArtifactDir::existing(dir.path()).expect("run dir");
    let rt = runtime();
    let (text, elapsed) = rt.block_on(async {
        let att = InProcess::new(cfg)
            .attach(&NetContext {
                tftp_root: &root,
                mac: None,
                artifacts: &run_dir,
                http_backend: None,
            })
            .expect("attach");
        let spec = MachineSpec {
            net_args: att.qemu_args.clone(),
            ..MachineSpec::default()
        };
        let logs = MachineLogs {
            console: Some(dir.path().join("console.log")),
            qemu_output: Some(dir.path().join("qemu.log")),
            qmp: None,
            cmdline: None,
        };
        let t0 = std::time::Instant::now();
        let mut m = Machine::launch(&qemu, &spec, &logs).await.expect("launch");
        let re = regex::bytes::Regex::new("TARGET-UP cmdline=.*picked=inproc").expect("regex");
        let deadline = tokio::time::Instant::now() + netboot_harness::scaled(300.0);
        let r = m.console.expect(&re, deadline, &[]).await;
        let elapsed = t0.elapsed();
        let _ = m.shutdown().await;
        drop(att);
        let text = m.console.text();
        assert!(r.is_ok(), "no TARGET-UP:\n{}", m.console.tail(60));
        (text, elapsed)
    });
    drop(rt);
    assert!(
        text.contains("S390-PXELINUX: lease iface=eth0 ip=10.0.2.15"),
        "{text}"
    );
    let tlog = std::fs::read_to_string(dir.path().join("tftp.log")).expect("tftp.log");
    eprintln!(
        "boot through the segment: TARGET-UP after {:.1} s\n{tlog}",
        elapsed.as_secs_f64()
    );
    assert!(tlog.contains("\"vmlinuz\": complete"), "{tlog}");
}
