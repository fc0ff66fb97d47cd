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
            "mount -t proc proc ROOT/proc",
            "mount -t sysfs sysfs ROOT/sys",
            "mount -t devtmpfs devtmpfs ROOT/dev",
            "mount -t tmpfs tmpfs ROOT/run",
            "insmod /lib/modules/virtio_net.ko",
            "ip link set lo up",
            "ip link set eth0 up",
            "udhcpc -i eth0 -s LIB/dhcp-event -f -q -n -t 10 -T 1 \
             -V PXEClient:Arch:00031:UNDI:002001 -x 0x5d:001f \
             -O tftp -O bootfile -O pxeconffile -O pxepathprefix -O reboottime",
            "ip addr flush dev eth0",
            "ip link set eth0 up",
            "ip addr flush dev eth0",
            "ip addr add 10.0.2.15/24 dev eth0",
            "ip route add default via 10.0.2.2 dev eth0",
        ],
        "init's calls",
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
        ],
    ));
    let m = markers(&run);
    assert!(
        m.iter().any(|l| l.starts_with("lease iface=eth0 ")),
        "{m:#?}"
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}
