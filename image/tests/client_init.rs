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
