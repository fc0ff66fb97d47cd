//! The guest's `init` on the host (busybox, stubs of `tests/client/stubs`):
//! what it asks of the machine (mounts, modules, links), the DHCP request
//! udhcpc makes and the interface setup of `dhcp-event`, the lease it hands
//! to `boot`, and the DHCP rounds when no lease comes. The config lookup and
//! parsing are `client.rs`'s.

#[path = "client/support.rs"]
mod support;

use support::{markers, one_label_case, run_guest, GuestRun};

/// The stub calls with the run's temporary paths replaced: `ROOT/…` for the
/// fake root, `LIB/…` for the guest scripts.
fn calls(run: &GuestRun) -> Vec<String> {
    run.calls
        .lines()
        .filter(|l| !l.starts_with("atftp-env "))
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    if let Some((_, rest)) = w.split_once("/root/") {
                        format!("ROOT/{rest}")
                    } else if w.ends_with("/dhcp-event") {
                        "LIB/dhcp-event".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// `want` appears in `have` in this order (other lines may come between).
fn assert_in_order(have: &[String], want: &[&str], what: &str) {
    let mut at = have.iter();
    for w in want {
        assert!(
            at.any(|h| h == w),
            "{what}: {w:?} missing or out of order in {have:#?}"
        );
    }
}

#[test]
fn init_mounts_loads_modules_and_asks_dhcp_as_a_pxe_client() {
    let run = run_guest(&one_label_case(
        "init_calls",
        "console=ttysclp0 pxe.retries=0",
        &[],
    ));
    assert_in_order(
        &calls(&run),
        &[
            "mount -a -T ROOT/etc/fstab",
            "fstab proc ROOT/proc proc defaults 0 0",
            "fstab sysfs ROOT/sys sysfs defaults 0 0",
            "fstab devtmpfs ROOT/dev devtmpfs defaults 0 0",
            "fstab tmpfs ROOT/run tmpfs defaults 0 0",
            "insmod /lib/modules/virtio_net.ko",
            "ip link set lo up",
            "udhcpc -i eth0 -s LIB/dhcp-event -f -q -n -t 10 -T 1 \
             -V PXEClient:Arch:00031:UNDI:002001 -x 0x5d:001f \
             -O tftp -O bootfile -O pxeconffile -O pxepathprefix -O reboottime",
            "ip addr flush dev eth0",
            "ip link set eth0 up",
            "ip addr add 10.0.2.15/24 dev eth0",
            "ip route add default via 10.0.2.2 dev eth0",
        ],
        "init's calls",
    );
    // An ip process is tens of milliseconds under TCG: the link comes up
    // once (in deconfig), and bound adds the address without a flush
    // (deconfig flushed it).
    let ip: Vec<String> = calls(&run)
        .into_iter()
        .filter(|c| c.starts_with("ip "))
        .collect();
    assert_eq!(
        ip,
        [
            "ip link set lo up",
            "ip addr flush dev eth0",
            "ip link set eth0 up",
            "ip addr add 10.0.2.15/24 dev eth0",
            "ip route add default via 10.0.2.2 dev eth0",
        ],
        "init's ip calls"
    );
    let m = markers(&run);
    assert_eq!(m.first().map(String::as_str), Some("init"), "{m:#?}");
    assert!(
        m.contains(
            &"lease iface=eth0 ip=10.0.2.15 mask=255.255.255.0 router=10.0.2.2 \
              server=10.0.2.2 bootfile=boot/pxelinux.0"
                .to_string()
        ),
        "{m:#?}"
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

#[test]
fn a_zero_timeout_asks_udhcpc_for_one_second() {
    let run = run_guest(&one_label_case(
        "timeout_zero",
        "console=ttysclp0 pxe.retries=0 pxe.timeout=0",
        &[],
    ));
    assert!(
        calls(&run)
            .iter()
            .any(|l| l.starts_with("udhcpc -i eth0 ") && l.contains(" -t 1 -T 1 ")),
        "{}",
        run.calls
    );
}

#[test]
fn modules_load_in_list_order_and_a_failed_one_is_only_a_warning() {
    let mut case = one_label_case(
        "modules",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_INSMOD_FAIL", "/lib/modules/a.ko")],
    );
    case.root_files.insert(
        "etc/pxe/modules".into(),
        b"# comment\n\n/lib/modules/a.ko\n/lib/modules/b.ko\n".to_vec(),
    );
    let run = run_guest(&case);
    let insmods: Vec<String> = calls(&run)
        .into_iter()
        .filter(|l| l.starts_with("insmod"))
        .collect();
    assert_eq!(
        insmods,
        ["insmod /lib/modules/a.ko", "insmod /lib/modules/b.ko"],
        "{}",
        run.calls
    );
    let m = markers(&run);
    assert_eq!(
        m.iter()
            .filter(|l| l.starts_with("warning: insmod"))
            .collect::<Vec<_>>(),
        ["warning: insmod /lib/modules/a.ko failed"],
        "{m:#?}"
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

#[test]
fn no_lease_means_rounds_with_backoff_then_the_rescue_shell() {
    // pxe.iface names a NIC without a DHCP server (the stub answers on eth0);
    // `round=9` on the kernel command line lands in init's environment
    let run = run_guest(&one_label_case(
        "no_lease",
        "console=ttysclp0 pxe.iface=eth1 pxe.retries=2",
        &[("round", "9")],
    ));
    let m = markers(&run);
    let dhcp: Vec<&str> = m
        .iter()
        .map(String::as_str)
        .filter(|l| {
            ["no DHCP", "retrying DHCP", "ERROR", "RESCUE", "lease "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert_eq!(
        dhcp,
        [
            "no DHCP lease on eth1",
            "retrying DHCP in 2s (round 1 of 2)",
            "no DHCP lease on eth1",
            "retrying DHCP in 4s (round 2 of 2)",
            "no DHCP lease on eth1",
            "ERROR no DHCP lease",
            "RESCUE no DHCP lease",
        ],
        "{m:#?}"
    );
    let c = calls(&run);
    let sleeps: Vec<&String> = c.iter().filter(|l| l.starts_with("sleep ")).collect();
    assert_eq!(sleeps, ["sleep 2", "sleep 4"], "{}", run.calls);
    let udhcpc: Vec<&String> = c.iter().filter(|l| l.starts_with("udhcpc ")).collect();
    assert!(
        udhcpc.len() == 3 && udhcpc.iter().all(|l| l.starts_with("udhcpc -i eth1 ")),
        "{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_none(), "kexec without a lease");
}

#[test]
fn nics_are_tried_in_name_order_and_the_lease_mac_is_lower_case() {
    let mut case = one_label_case("second_nic", "console=ttysclp0 pxe.retries=0", &[]);
    // a0 sorts before eth0 and gets no lease, f0 after it is never asked;
    // eth0's MAC is upper case
    for nic in ["a0", "f0"] {
        case.root_files.insert(
            format!("sys/class/net/{nic}/address"),
            b"02:00:00:00:00:01\n".to_vec(),
        );
    }
    case.root_files.insert(
        "sys/class/net/eth0/address".into(),
        b"52:54:00:AB:CD:EF\n".to_vec(),
    );
    let run = run_guest(&case);
    let m = markers(&run);
    assert_in_order(
        &m,
        &[
            "no DHCP lease on a0",
            "lease iface=eth0 ip=10.0.2.15 mask=255.255.255.0 router=10.0.2.2 \
             server=10.0.2.2 bootfile=boot/pxelinux.0",
            "try boot/pxelinux.cfg/01-52-54-00-ab-cd-ef ... not found",
        ],
        "markers",
    );
    assert!(
        !m.iter().any(|l| l.starts_with("retrying DHCP")),
        "a lease on the second NIC is not a failed round: {m:#?}"
    );
    let udhcpc: Vec<String> = calls(&run)
        .into_iter()
        .filter(|l| l.starts_with("udhcpc "))
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(udhcpc, ["udhcpc -i a0", "udhcpc -i eth0"], "{}", run.calls);
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

#[test]
fn without_a_nic_init_waits_pxe_timeout_seconds_then_rescues() {
    // lo alone, and no interface at all (an unmatched glob)
    for removed in [&["eth0"][..], &["eth0", "lo"]] {
        let mut case = one_label_case("no_nic", "console=ttysclp0 pxe.timeout=3", &[]);
        case.root_removed = removed
            .iter()
            .map(|i| format!("sys/class/net/{i}"))
            .collect();
        no_nic_run(&run_guest(&case));
    }
}

#[test]
fn a_nic_that_appears_while_init_waits_gets_the_dhcp_request() {
    // no NIC at the first look; the first one-second wait brings eth0
    let mut case = one_label_case(
        "late_nic",
        "console=ttysclp0 pxe.timeout=3 pxe.retries=0",
        &[("STUB_SLEEP_MKDIR", "sys/class/net/eth0")],
    );
    case.root_removed = vec!["sys/class/net/eth0".to_string()];
    let run = run_guest(&case);
    let c = calls(&run);
    let sleeps = c.iter().filter(|l| l.starts_with("sleep ")).count();
    assert_eq!(sleeps, 1, "{}", run.calls);
    assert!(
        c.iter().any(|l| l.starts_with("udhcpc -i eth0 ")),
        "no DHCP on the NIC that appeared:\n{}",
        run.calls
    );
    assert!(
        !markers(&run)
            .iter()
            .any(|m| m.contains("no network interface")),
        "{}",
        run.console
    );
}

fn no_nic_run(run: &GuestRun) {
    let m = markers(run);
    assert_in_order(
        &m,
        &[
            "ERROR no network interface found",
            "RESCUE no network interface found",
        ],
        "markers",
    );
    let c = calls(run);
    let sleeps: Vec<&String> = c.iter().filter(|l| l.starts_with("sleep ")).collect();
    assert_eq!(sleeps, ["sleep 1", "sleep 1", "sleep 1"], "{}", run.calls);
    assert!(
        !c.iter().any(|l| l.starts_with("udhcpc ")),
        "DHCP without an interface:\n{}",
        run.calls
    );
}

#[test]
fn kernel_parameters_in_inits_environment_change_nothing() {
    // Linux passes unknown `name=value` command-line words to init as
    // environment variables; init's own variables must not start from them.
    let run = run_guest(&one_label_case(
        "env_from_cmdline",
        "console=ttysclp0 pxe.retries=0",
        &[
            ("round", "9"),
            ("lease", "bogus"),
            ("n", "99"),
            ("all", "x"),
            ("mac", "0a-0b"),
            ("addr", "de:ad:be:ef:00:01"),
            ("CANDS", "evil/"),
            ("hex", "FF"),
        ],
    ));
    let m = markers(&run);
    assert!(
        m.iter().any(|l| l.starts_with("lease iface=eth0 ")),
        "{m:#?}"
    );
    // the MAC is the interface's, built in the shell from its address, and
    // the candidate names are built from nothing but the lease
    assert!(
        m.contains(&"try boot/pxelinux.cfg/01-52-54-00-12-34-56 ... not found".to_string()),
        "{m:#?}"
    );
    assert!(
        m.contains(&"try boot/pxelinux.cfg/0A00020F ... not found".to_string()),
        "{m:#?}"
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);

    // An interface without an address file gives an empty MAC, never the
    // environment's `addr` or `mac`.
    let mut case = one_label_case(
        "env_mac_without_address",
        "console=ttysclp0 pxe.retries=0",
        &[("mac", "0a-0b"), ("addr", "de:ad:be:ef:00:01")],
    );
    case.root_removed.push("sys/class/net/eth0/address".into());
    case.root_files
        .insert("sys/class/net/eth0/mtu".into(), b"1500\n".to_vec());
    let m = markers(&run_guest(&case));
    assert!(
        m.contains(&"try boot/pxelinux.cfg/01- ... not found".to_string()),
        "{m:#?}"
    );
    assert!(
        !m.iter().any(|l| l.contains("0a-0b") || l.contains("de-ad")),
        "{m:#?}"
    );
}

/// One run of `dhcp-event` alone (no init, no udhcpc stub): `udhcpc -s`'s
/// view of it. `root` is the fake root it writes under (`run/pxe/lease.*`,
/// `etc/resolv.conf`); the `ip` calls are read back from the stub's log.
struct EventRun {
    status: Option<i32>,
    calls: Vec<String>,
    root: std::path::PathBuf,
}

impl EventRun {
    fn file(&self, rel: &str) -> Option<String> {
        std::fs::read(self.root.join(rel))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// Runs `dhcp-event EVENT` with exactly the environment `env` (udhcpc's
/// variables) plus the test hooks, on the fake root `root` (which may not
/// exist yet).
fn dhcp_event(root: &std::path::Path, event: &str, env: &[(&str, &str)]) -> EventRun {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .expect("busybox-static is required for the client tests");
    let stubs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client/stubs");
    let out = root.with_extension("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let guest = support::guest_dir();
    let status = std::process::Command::new(&busybox)
        .arg("sh")
        .arg(guest.join("dhcp-event"))
        .arg(event)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .env("PXE_ROOT", root)
        .env("PXE_LIB", &guest)
        .env("PXE_BIN", format!("{}/", stubs.display()))
        .env("STUB_OUT", &out)
        .envs(env.iter().copied())
        .current_dir(out.as_path())
        .status()
        .expect("run busybox sh dhcp-event");
    let calls = std::fs::read_to_string(out.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let _ = std::fs::remove_file(out.join("calls"));
    EventRun {
        status: status.code(),
        calls,
        root: root.to_path_buf(),
    }
}

/// A bound lease as busybox udhcpc hands it to the script: named options,
/// options it does not know as hex (`optNNN`, here in upper case), several
/// routers and name servers, and a `gw` inherited from the kernel command
/// line (init's environment) that must not win over the lease's router.
const BOUND: &[(&str, &str)] = &[
    ("interface", "eth7"),
    ("ip", "10.1.2.3"),
    ("mask", "16"),
    ("subnet", "255.255.0.0"),
    ("broadcast", "10.1.255.255"),
    ("router", "10.1.0.1 10.1.0.9"),
    ("dns", "10.1.0.53 10.1.0.54"),
    ("siaddr", "10.1.0.2"),
    ("serverid", "10.1.0.3"),
    ("sname", "boot-server"),
    ("boot_file", "s390x/pxelinux.0"),
    ("tftp", "tftp-host"),
    ("bootfile", "s390x/pxelinux-2.0"),
    // "my.cfg", "Other/" and 500 (0x1F4)
    ("opt209", "6D792E636667"),
    ("opt210", "4f746865722F"),
    ("opt211", "1F4"),
    ("gw", "9.9.9.9"),
];

#[test]
fn dhcp_event_bound_configures_the_nic_and_writes_lease_and_resolv_conf() {
    // a fresh root: no run/pxe and no etc yet (dhcp-event makes both)
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let run = dhcp_event(&root, "bound", BOUND);
    assert_eq!(run.status, Some(0));
    assert_eq!(
        run.calls,
        [
            "ip addr add 10.1.2.3/16 broadcast 10.1.255.255 dev eth7",
            "ip route add default via 10.1.0.1 dev eth7",
        ]
    );
    assert_eq!(
        run.file("run/pxe/lease.eth7").as_deref(),
        Some(
            "interface=eth7\nip=10.1.2.3\nsubnet=255.255.0.0\nrouter=10.1.0.1\n\
             dns=10.1.0.53 10.1.0.54\nsiaddr=10.1.0.2\nserverid=10.1.0.3\n\
             sname=boot-server\nboot_file=s390x/pxelinux.0\ntftp=tftp-host\n\
             bootfile=s390x/pxelinux-2.0\npxeconffile=my.cfg\npxepathprefix=Other/\n\
             reboottime=500\nignored=\n"
        )
    );
    assert_eq!(run.file("run/pxe/lease.eth7.new"), None);
    assert_eq!(
        run.file("etc/resolv.conf").as_deref(),
        Some("nameserver 10.1.0.53\nnameserver 10.1.0.54\n")
    );
}

#[test]
fn dhcp_event_names_options_by_name_first_and_leaves_out_control_bytes() {
    // an option both by name and as hex: the name wins (udhcpc never sends
    // both, but the lease must not depend on which one awk looks at first);
    // DEL (0x7f) is a control byte, a byte above it is not
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let run = dhcp_event(
        &root,
        "bound",
        &[
            ("interface", "eth0"),
            ("ip", "10.0.2.15"),
            ("pxeconffile", "by-name.cfg"),
            ("opt209", "6865782e636667"),
            ("reboottime", "30"),
            ("opt211", "1e1e"),
            ("sname", "a\u{7f}b"),
            ("boot_file", "caf\u{e9}"),
        ],
    );
    assert_eq!(run.status, Some(0));
    let lease = run.file("run/pxe/lease.eth0").unwrap_or_default();
    for want in [
        "\npxeconffile=by-name.cfg\n",
        "\nreboottime=30\n",
        "\nsname=\n",
        "\nboot_file=caf\u{e9}\n",
        "\nignored=sname\n",
    ] {
        assert!(lease.contains(want), "{want:?} not in the lease:\n{lease}");
    }
}

#[test]
fn dhcp_event_renew_replaces_lease_and_name_servers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let first = dhcp_event(
        &root,
        "bound",
        &[
            ("interface", "eth0"),
            ("ip", "10.0.2.15"),
            ("dns", "1.1.1.1"),
        ],
    );
    assert_eq!(first.status, Some(0));
    let again = dhcp_event(
        &root,
        "renew",
        &[
            ("interface", "eth0"),
            ("ip", "10.0.2.16"),
            ("dns", "2.2.2.2"),
        ],
    );
    assert_eq!(again.status, Some(0));
    // no router: no route; no mask: /24; no broadcast: none
    assert_eq!(
        again.calls,
        [
            "ip addr flush dev eth0",
            "ip addr add 10.0.2.16/24 dev eth0"
        ]
    );
    assert_eq!(
        again.file("etc/resolv.conf").as_deref(),
        Some("nameserver 2.2.2.2\n")
    );
    let lease = again.file("run/pxe/lease.eth0").unwrap_or_default();
    assert!(
        lease.starts_with("interface=eth0\nip=10.0.2.16\n"),
        "{lease}"
    );
}

#[test]
fn dhcp_event_deconfig_drops_the_address_and_the_lease() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let bound = dhcp_event(
        &root,
        "bound",
        &[("interface", "eth0"), ("ip", "10.0.2.15")],
    );
    assert!(bound.file("run/pxe/lease.eth0").is_some());
    let run = dhcp_event(&root, "deconfig", &[("interface", "eth0")]);
    assert_eq!(run.status, Some(0));
    assert_eq!(run.calls, ["ip addr flush dev eth0", "ip link set eth0 up"]);
    assert_eq!(run.file("run/pxe/lease.eth0"), None);
}

#[test]
fn dhcp_event_leasefail_nak_and_unknown_events_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    for event in ["leasefail", "nak", "other"] {
        let run = dhcp_event(&root, event, &[("interface", "eth0"), ("ip", "10.0.2.15")]);
        assert_eq!(run.status, Some(0), "{event}");
        assert!(run.calls.is_empty(), "{event}: {:?}", run.calls);
        assert_eq!(run.file("run/pxe/lease.eth0"), None, "{event}");
        assert_eq!(run.file("etc/resolv.conf"), None, "{event}");
    }
}

#[test]
fn dhcp_event_without_an_interface_fails_and_touches_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    for event in ["bound", "deconfig"] {
        let run = dhcp_event(&root, event, &[("ip", "10.0.2.15"), ("dns", "1.1.1.1")]);
        assert_eq!(run.status, Some(1), "{event}");
        assert!(run.calls.is_empty(), "{event}: {:?}", run.calls);
        assert!(!root.exists(), "{event}: wrote under the root");
    }
}

/// A case whose TFTP tree has no config file at all.
fn no_config_case(name: &str, cmdline: &str, dhcp: &[(&str, &str)]) -> support::Case {
    let mut case = support::generated(name, Vec::new());
    case.cmdline = Some(cmdline.to_string());
    case.dhcp = dhcp
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    case
}

fn sleeps(run: &GuestRun) -> Vec<String> {
    calls(run)
        .into_iter()
        .filter(|l| l.starts_with("sleep "))
        .collect()
}

#[test]
fn config_lookup_rounds_back_off_then_the_rescue_shell() {
    let run = run_guest(&no_config_case(
        "lookup_rounds",
        "console=ttysclp0 pxe.retries=2",
        &[],
    ));
    let m = markers(&run);
    assert_in_order(
        &m,
        &[
            "try boot/pxelinux.cfg/default ... not found",
            "no config file found; retrying in 2s (round 1 of 2)",
            "try boot/pxelinux.cfg/default ... not found",
            "no config file found; retrying in 4s (round 2 of 2)",
            "try boot/pxelinux.cfg/default ... not found",
            "ERROR no config file found",
            "RESCUE no config file found",
        ],
        "markers",
    );
    let rounds = m
        .iter()
        .filter(|l| *l == "try boot/pxelinux.cfg/default ... not found")
        .count();
    assert_eq!(rounds, 3, "{m:#?}");
    assert_eq!(sleeps(&run), ["sleep 2", "sleep 4"], "{}", run.calls);
    assert!(!m.iter().any(|l| l.starts_with("REBOOT")), "{m:#?}");
}

#[test]
fn no_config_with_a_reboot_time_waits_it_then_reboots() {
    let run = run_guest(&no_config_case(
        "lookup_reboot",
        "console=ttysclp0 pxe.retries=1",
        &[("reboottime", "30")],
    ));
    let m = markers(&run);
    assert_in_order(
        &m,
        &[
            "no config file found; retrying in 2s (round 1 of 1)",
            "ERROR no config file found",
            "REBOOT in 30s",
        ],
        "markers",
    );
    assert!(!m.iter().any(|l| l.starts_with("RESCUE")), "{m:#?}");
    assert_eq!(sleeps(&run), ["sleep 2", "sleep 30"], "{}", run.calls);
    assert_eq!(
        calls(&run).last().map(String::as_str),
        Some("reboot -f"),
        "{}",
        run.calls
    );
}

#[test]
fn a_kexec_e_that_returns_is_an_error_and_the_rescue_shell() {
    let run = run_guest(&one_label_case(
        "kexec_e_returns",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_KEXEC_E_RETURNS", "1")],
    ));
    let m = markers(&run);
    assert_in_order(
        &m,
        &[
            "boot label=l kernel=boot/vmlinuz initrd=boot/initrd.img cmdline=",
            "kexec -e",
            "ERROR kexec -e returned",
            "RESCUE kexec -e returned",
        ],
        "markers",
    );
    assert!(calls(&run).iter().any(|l| l == "kexec -e"), "{}", run.calls);
}

#[test]
fn the_prompt_prints_boot_colon_and_ends_the_line_on_timeout() {
    let mut case = support::generated(
        "prompt_line",
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"PROMPT 1\nTIMEOUT 10\nDEFAULT a\nLABEL a\nKERNEL ka\n".to_vec(),
            ),
            ("boot/ka", b"KA".to_vec()),
        ],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=0".into());
    let run = run_guest(&case);
    assert!(
        run.console
            .contains("S390-PXELINUX: prompt wait 1.0s\nboot: \nS390-PXELINUX: "),
        "{}",
        run.console
    );
}

#[test]
fn dhcp_event_leaves_out_hex_options_that_are_not_two_digits_per_byte() {
    // udhcpc writes two hex digits per byte; an odd count or a non-hex
    // digit is no value at all (as in support.rs's request), while a
    // well-formed value with a control byte is left out and named
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let run = dhcp_event(
        &root,
        "bound",
        &[
            ("interface", "eth0"),
            ("ip", "10.0.2.15"),
            ("opt209", "6d792e63666"),
            ("opt210", "300a"),
            ("opt211", "zz"),
        ],
    );
    assert_eq!(run.status, Some(0));
    let lease = run.file("run/pxe/lease.eth0").unwrap_or_default();
    assert!(
        lease.ends_with("\npxeconffile=\npxepathprefix=\nreboottime=\nignored=opt210\n"),
        "{lease}"
    );
}

#[test]
fn inits_dhcp_round_count_does_not_leak_into_boots_config_rounds() {
    // `round=7` on the kernel command line reaches init's environment, so
    // init's DHCP round counter is exported to boot (here 1: the first DHCP
    // round fails); boot counts its config rounds from 0 all the same
    let run = run_guest(&no_config_case_with_env(
        "round_leak",
        "console=ttysclp0 pxe.retries=1",
        &[("round", "7"), ("STUB_DHCP_FAIL", "1")],
    ));
    let m = markers(&run);
    assert_in_order(
        &m,
        &[
            "no DHCP lease on eth0",
            "retrying DHCP in 2s (round 1 of 1)",
            "try boot/pxelinux.cfg/default ... not found",
            "no config file found; retrying in 2s (round 1 of 1)",
            "try boot/pxelinux.cfg/default ... not found",
            "ERROR no config file found",
            "RESCUE no config file found",
        ],
        "markers",
    );
}

fn no_config_case_with_env(name: &str, cmdline: &str, env: &[(&str, &str)]) -> support::Case {
    let mut case = no_config_case(name, cmdline, &[]);
    case.stub_env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    case
}

// ---- common.sh (ci/mutate-guest): knobs, kernel words, the rescue shell

/// The transfers of `boot/vmlinuz` (atftp or busybox tftp calls).
fn kernel_calls(run: &GuestRun) -> Vec<String> {
    calls(run)
        .into_iter()
        .filter(|l| l.contains(" -r boot/vmlinuz "))
        .collect()
}

/// Console lines that are not `S390-PXELINUX:` markers (shell complaints).
fn noise(run: &GuestRun) -> Vec<String> {
    run.console
        .lines()
        .filter(|l| !l.contains("S390-PXELINUX: ") && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn knob_defaults_hold_without_pxe_words_and_for_invalid_values() {
    // The kernel's announced tsize is a lie on every try: the retries show
    // pxe.retries, the atftp options blksize and window.
    for cmdline in [
        "console=ttysclp0",
        "console=ttysclp0 pxe.retries=x pxe.timeout=1s pxe.blksize= pxe.window=-3",
    ] {
        let run = run_guest(&one_label_case(
            "knob_defaults",
            cmdline,
            &[("STUB_TSIZE_LIE", "boot/vmlinuz")],
        ));
        let c = calls(&run);
        assert!(
            c.iter()
                .any(|l| l.starts_with("udhcpc -i eth0 ") && l.contains(" -t 10 -T 1 ")),
            "{cmdline}: udhcpc not asked for 10 s:\n{}",
            run.calls
        );
        let k = kernel_calls(&run);
        assert!(
            k.len() == 4
                && k.iter().all(|l| l.starts_with(
                    "atftp --trace --option tsize 0 --option blksize 1468 --option windowsize 8 "
                )),
            "{cmdline}: not 1 + 3 kernel tries with the default options:\n{}",
            run.calls
        );
        assert_in_order(
            &markers(&run),
            &[
                "transfer of boot/vmlinuz failed; retry 1/3 in 2s",
                "transfer of boot/vmlinuz failed; retry 2/3 in 4s",
                "transfer of boot/vmlinuz failed; retry 3/3 in 8s",
                "ERROR cannot fetch kernel boot/vmlinuz",
            ],
            cmdline,
        );
        let sleeps: Vec<String> = calls(&run)
            .into_iter()
            .filter(|l| l.starts_with("sleep "))
            .collect();
        assert_eq!(sleeps, ["sleep 2", "sleep 4", "sleep 8"], "{}", run.calls);
        assert!(run.kexec_kernel.is_none(), "kexec of a short kernel");
    }
}

#[test]
fn a_zero_window_asks_for_one_block_per_window() {
    let run = run_guest(&one_label_case(
        "window_zero",
        "console=ttysclp0 pxe.retries=0 pxe.window=0",
        &[],
    ));
    let k = kernel_calls(&run);
    assert!(
        k.len() == 1 && k[0].contains(" --option windowsize 1 -g "),
        "{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

#[test]
fn pxe_debug_turns_on_the_debug_lines() {
    for (cmdline, on) in [
        ("console=ttysclp0 pxe.retries=0 pxe.debug=1", true),
        ("console=ttysclp0 pxe.retries=0 pxe.debug", true),
        ("console=ttysclp0 pxe.retries=0 pxe.debug=0", false),
        ("console=ttysclp0 pxe.retries=0", false),
    ] {
        let run = run_guest(&one_label_case("debug", cmdline, &[]));
        let m = markers(&run);
        let knobs = "debug: knobs iface= retries=0 timeout=10 blksize=1468";
        assert_eq!(
            m.iter().any(|l| l == knobs),
            on,
            "{cmdline}: {knobs:?} printed: {m:#?}"
        );
        assert_eq!(
            m.iter().any(|l| l.starts_with("debug: ")),
            on,
            "{cmdline}: {m:#?}"
        );
        assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
    }
}

#[test]
fn retry_waits_double_up_to_sixty_seconds() {
    let mut case = support::generated("backoff", Vec::new());
    case.cmdline = Some("console=ttysclp0 pxe.retries=7".to_string());
    let run = run_guest(&case);
    let waits = [2, 4, 8, 16, 32, 60, 60];
    let want: Vec<String> = waits
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!(
                "no config file found; retrying in {w}s (round {} of 7)",
                i + 1
            )
        })
        .collect();
    let m = markers(&run);
    let got: Vec<&String> = m
        .iter()
        .filter(|l| l.starts_with("no config file found; retrying"))
        .collect();
    assert_eq!(got, want.iter().collect::<Vec<_>>(), "{m:#?}");
    let sleeps: Vec<String> = calls(&run)
        .into_iter()
        .filter(|l| l.starts_with("sleep "))
        .collect();
    let want: Vec<String> = waits.iter().map(|w| format!("sleep {w}")).collect();
    assert_eq!(sleeps, want, "{}", run.calls);
    assert_eq!(
        m.last().map(String::as_str),
        Some("RESCUE no config file found")
    );
}

#[test]
fn without_proc_cmdline_the_defaults_hold_quietly() {
    let mut case = one_label_case("no_cmdline", "", &[]);
    case.root_removed = vec!["proc/cmdline".to_string()];
    let run = run_guest(&case);
    let k = kernel_calls(&run);
    assert!(
        k.len() == 1
            && k[0].starts_with(
                "atftp --trace --option tsize 0 --option blksize 1468 --option windowsize 8 "
            ),
        "{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
    assert_eq!(noise(&run), Vec::<String>::new(), "{}", run.console);
}

#[test]
fn kernel_words_named_like_the_clients_variables_change_nothing() {
    // Linux hands unknown `name=value` words to init as environment
    // variables: the client's own settings must not start from them (an
    // empty PXE_SH is the default shell, as an unset one).
    let leak = tempfile::tempdir().expect("tempdir");
    let run_dir = leak.path().join("run");
    let run_dir_text = run_dir.to_string_lossy().into_owned();
    let run = run_guest(&one_label_case(
        "env_words",
        "console=ttysclp0 pxe.retries=0",
        &[
            ("PXE_SH", ""),
            ("PXE_RUN", &run_dir_text),
            ("PXE_STDBUF", "/nonexistent/libstdbuf.so"),
            ("PXE_IFACE", "eth9"),
            ("PXE_TFTP", "busybox"),
        ],
    ));
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
    assert!(
        !run_dir.exists(),
        "the lease went to PXE_RUN from the environment"
    );
    let env: Vec<&str> = run
        .calls
        .lines()
        .filter(|l| l.starts_with("atftp-env "))
        .collect();
    assert!(
        !env.is_empty()
            && env
                .iter()
                .all(|l| *l == "atftp-env LD_PRELOAD= _STDBUF_E=65536"),
        "{}",
        run.calls
    );
    // a boot file without a directory: the prefix is empty, not PREFIX
    let mut case = support::generated(
        "env_prefix",
        vec![
            (
                "pxelinux.cfg/default",
                b"DEFAULT l\nLABEL l\nKERNEL k\n".to_vec(),
            ),
            ("k", b"K".to_vec()),
        ],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=0".to_string());
    case.dhcp.insert("boot_file".into(), "pxelinux.0".into());
    case.stub_env.insert("PREFIX".into(), "evil/".into());
    let run = run_guest(&case);
    assert_eq!(
        run.kexec_kernel.as_deref(),
        Some(&b"K"[..]),
        "{}",
        run.console
    );
}

#[test]
fn as_pid_1_the_rescue_shell_is_started_again_when_it_exits() {
    // PID 1 must never exit (the kernel would panic): pxe_rescue restarts
    // the shell forever. A PID namespace (unshare, as root) makes the shell
    // PID 1; the setsid stub returns twice, then holds until killed.
    let t = tempfile::tempdir().expect("tempdir");
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let setsid = bin.join("setsid");
    std::fs::write(
        &setsid,
        "#!/bin/sh\necho \"setsid $*\" >>\"$STUB_OUT/calls\"\n\
         [ \"$(wc -l <\"$STUB_OUT/calls\")\" -ge 3 ] && exec sleep 600\nexit 0\n",
    )
    .expect("write");
    let mut perm = std::fs::metadata(&setsid).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&setsid, perm).expect("chmod");
    let console = t.path().join("console");
    let out = std::fs::File::create(&console).expect("console");
    let guest = support::guest_dir();
    let mut child = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "busybox", "sh", "-c"])
        .arg(". \"$0/common.sh\"; pxe_rescue 'no luck'")
        .arg(&guest)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PXE_BIN", format!("{}/", bin.display()))
        .env("PXE_ROOT", t.path())
        .env("STUB_OUT", t.path())
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("unshare (util-linux) is needed for this test");
    let calls_file = t.path().join("calls");
    let start = std::time::Instant::now();
    let mut exited = None;
    while start.elapsed() < std::time::Duration::from_secs(60) {
        let n = std::fs::read_to_string(&calls_file)
            .unwrap_or_default()
            .lines()
            .count();
        if n >= 3 {
            break;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&console).unwrap_or_default();
    let calls = std::fs::read_to_string(&calls_file).unwrap_or_default();
    assert!(
        exited.is_none(),
        "the rescue shell's PID 1 ended ({exited:?}):\n{text}\n{calls}"
    );
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        ["setsid cttyhack sh"; 3],
        "console:\n{text}"
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "S390-PXELINUX: RESCUE no luck",
            "S390-PXELINUX: rescue shell exited; starting a new one",
            "S390-PXELINUX: rescue shell exited; starting a new one",
        ]
    );
}
