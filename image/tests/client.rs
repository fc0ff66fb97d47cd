//! Client tests: the real guest scripts (busybox ash + awk, with stub tftp,
//! wget, kexec, udhcpc, …) against the host model `pxelinux::resolve`, on the
//! corpus in `tests/client/corpus.toml` and on generated malformed configs.

#[path = "client/support.rs"]
mod support;

use libtest_mimic::{Arguments, Failed, Trial};
use support::{check, corpus, generated};

/// One trial per corpus case (`corpus::<name>`, so one case runs alone
/// with `-- --exact corpus::<name>` and a failure hides no other), one per
/// generated malformed config (`malformed::<name>`), and the transfer and
/// check tests by their function names.
fn main() {
    let args = Arguments::from_args();
    let case_trial = |group: &str, case: support::Case| {
        Trial::test(format!("{group}::{}", case.name), move || {
            match check(&case) {
                r if r.is_empty() => Ok(()),
                r => Err(Failed::from(r)),
            }
        })
    };
    let mut trials: Vec<Trial> = corpus()
        .into_iter()
        .map(|c| case_trial("corpus", c))
        .collect();
    trials.extend(
        malformed_generated_configs()
            .into_iter()
            .map(|c| case_trial("malformed", c)),
    );
    let tests: [(&str, fn()); 14] = [
        (
            "transfers_use_atftp_with_tsize_blksize_and_windowsize",
            transfers_use_atftp_with_tsize_blksize_and_windowsize,
        ),
        (
            "atftp_runs_with_libstdbuf_when_the_image_has_it",
            atftp_runs_with_libstdbuf_when_the_image_has_it,
        ),
        (
            "knobs_choose_busybox_tftp_and_the_window",
            knobs_choose_busybox_tftp_and_the_window,
        ),
        (
            "a_transfer_shorter_than_the_announced_tsize_fails_and_is_retried",
            a_transfer_shorter_than_the_announced_tsize_fails_and_is_retried,
        ),
        (
            "kernels_and_initrds_are_checked_before_kexec",
            kernels_and_initrds_are_checked_before_kexec,
        ),
        (
            "urls_and_host_names_reach_their_server_port_and_path",
            urls_and_host_names_reach_their_server_port_and_path,
        ),
        (
            "a_line_with_a_nul_byte_is_ignored_whole",
            a_line_with_a_nul_byte_is_ignored_whole,
        ),
        (
            "a_config_transfer_failure_is_not_retried_within_a_lookup_round",
            a_config_transfer_failure_is_not_retried_within_a_lookup_round,
        ),
        (
            "the_default_selection_ignores_the_inherited_environment",
            the_default_selection_ignores_the_inherited_environment,
        ),
        (
            "parser_warnings_under_pxe_debug_are_the_models",
            parser_warnings_under_pxe_debug_are_the_models,
        ),
        (
            "a_config_the_parser_dies_on_is_an_error_and_the_rescue_shell",
            a_config_the_parser_dies_on_is_an_error_and_the_rescue_shell,
        ),
        (
            "an_include_the_parser_dies_on_is_an_error_and_the_rescue_shell",
            an_include_the_parser_dies_on_is_an_error_and_the_rescue_shell,
        ),
        (
            "the_info_pass_the_parser_dies_on_is_an_error_and_the_rescue_shell",
            the_info_pass_the_parser_dies_on_is_an_error_and_the_rescue_shell,
        ),
        (
            "a_choice_the_parser_dies_on_fails_that_attempt",
            a_choice_the_parser_dies_on_fails_that_attempt,
        ),
    ];
    trials.extend(tests.into_iter().chain(common_sh_tests()).map(|(name, f)| {
        Trial::test(name, move || {
            f();
            Ok(())
        })
    }));
    libtest_mimic::run(&args, trials).exit();
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

const CFG: &str = "boot/pxelinux.cfg/default";

/// Generated malformed configs (huge, random, deep include chains) and
/// what each must end in.
fn malformed_generated_configs() -> Vec<support::Case> {
    // As long as scenarios/data/10000-labels.cfg (1.1 MB): config.awk
    // writes its output in 64-line blocks, and without them (emit's
    // flush()) the output grows in one string, quadratically: 0.5 s becomes
    // about 2 minutes on the host for a file this size, which the mutation
    // runs' guest time limit catches (a tenth of the size stays under it).
    let mut labels = String::from("DEFAULT l9999\n");
    for i in 0..10_000 {
        labels.push_str(&format!(
            "LABEL l{i}\n  KERNEL k{i}\n  INITRD initrd.gz\n  \
             APPEND console=ttysclp0 quiet panic=-1 picked=label-{i:05}\n"
        ));
    }
    let mut big = String::new();
    while big.len() < 1 << 20 {
        big.push_str("# padding comment line to make the file one megabyte large\nSAY x\n");
    }
    big.push_str("LABEL a\nKERNEL k\n");
    let mut random_then_valid = noise(64 * 1024, 42);
    random_then_valid.extend_from_slice(b"\nLABEL a\nKERNEL k\n");
    let huge_line = format!(
        "LABEL a\nKERNEL k\nAPPEND {}\nAPPEND short\nSAY {}\n",
        "x".repeat(1 << 20),
        "y".repeat(4096 - 4)
    );
    let mut chain: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| {
            (
                format!("boot/inc{i}.cfg"),
                format!("INCLUDE inc{}.cfg\nSAY depth {i}\n", i + 1).into_bytes(),
            )
        })
        .collect();
    chain.push((
        CFG.to_string(),
        b"INCLUDE inc0.cfg\nLABEL a\nKERNEL k\n".to_vec(),
    ));
    let k = ("boot/k", b"K".to_vec());
    let mut cases = vec![
        generated("random_bytes", vec![(CFG, noise(256 * 1024, 7))]),
        generated(
            "random_bytes_then_valid",
            vec![(CFG, random_then_valid), k.clone()],
        ),
        generated(
            "nul_bytes",
            vec![
                (
                    CFG,
                    b"LABEL a\nKERNEL k\0evil\nKERNEL k\nAPPEND \0\n".to_vec(),
                ),
                k.clone(),
            ],
        ),
        generated(
            "ten_thousand_labels",
            vec![
                (CFG, labels.into_bytes()),
                ("boot/k9999", b"K".to_vec()),
                ("boot/initrd.gz", b"I".to_vec()),
            ],
        ),
        generated(
            "one_megabyte_config",
            vec![(CFG, big.into_bytes()), k.clone()],
        ),
        generated("huge_lines", vec![(CFG, huge_line.into_bytes()), k.clone()]),
    ];
    let chain_refs: Vec<(&str, Vec<u8>)> = chain
        .iter()
        .map(|(p, c)| (p.as_str(), c.clone()))
        .chain([k])
        .collect();
    cases.push(generated("include_depth_limit", chain_refs));
    let outcomes = ["rescue", "boot", "boot", "boot", "boot", "boot", "boot"];
    for (c, o) in cases.iter_mut().zip(outcomes) {
        c.expect.outcome = Some(o.to_string());
    }
    cases[3].expect.cmdline =
        Some("console=ttysclp0 quiet panic=-1 picked=label-09999".to_string());
    cases[5].expect.cmdline = Some("short".to_string());
    cases[6].expect.includes = Some(
        (0..17)
            .map(|i| {
                format!(
                    "boot/inc{i}.cfg ... {}",
                    if i < 16 { "found" } else { "too deep" }
                )
            })
            .collect(),
    );
    cases
}

fn transfers_use_atftp_with_tsize_blksize_and_windowsize() {
    let run = support::run_guest(&support::one_label_case(
        "atftp_options",
        "console=ttysclp0 pxe.retries=0",
        &[],
    ));
    assert!(
        run.calls
            .lines()
            .any(|l| l.starts_with(
                "atftp --trace --option tsize 0 --option blksize 1468 --option windowsize 8 -g -l "
            ) && l.ends_with("/tmp/pxe/kernel -r boot/vmlinuz -- 10.0.2.2 69")),
        "no atftp call with the options for the kernel:\n{}",
        run.calls
    );
    // Config names before the last are probed with busybox tftp (a miss is
    // cheap); the last one (default) is fetched by atftp alone, once.
    let calls_for = |run: &support::GuestRun, name: &str| -> Vec<String> {
        run.calls
            .lines()
            .filter(|l| l.contains(&format!("-r boot/pxelinux.cfg/{name} ")))
            .map(str::to_string)
            .collect()
    };
    let default = calls_for(&run, "default");
    assert!(
        default.len() == 1 && default[0].starts_with("atftp --trace"),
        "the last name not fetched by atftp alone, once:\n{}",
        run.calls
    );
    let miss = calls_for(&run, "01-52-54-00-12-34-56");
    assert!(
        miss.len() == 1 && miss[0].starts_with("tftp -g"),
        "a missing name before the last not probed by busybox alone:\n{}",
        run.calls
    );
    assert!(
        !run.calls
            .lines()
            .any(|l| l.starts_with("tftp ") && l.contains("vmlinuz")),
        "kernel fetched by busybox tftp:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);

    // A hit before the last name: busybox's probe, then atftp's fetch with
    // the tsize check; the names after it are never asked for.
    let mut case = support::one_label_case("atftp_mac_hit", "console=ttysclp0 pxe.retries=0", &[]);
    case.files.insert(
        "boot/pxelinux.cfg/01-52-54-00-12-34-56".to_string(),
        "DEFAULT l\nLABEL l\nKERNEL vmlinuz\n".to_string(),
    );
    let run = support::run_guest(&case);
    let hit = calls_for(&run, "01-52-54-00-12-34-56");
    assert!(
        hit.len() == 2 && hit[0].starts_with("tftp -g") && hit[1].starts_with("atftp --trace"),
        "a hit before the last name not probed by busybox, then fetched by atftp:\n{}",
        run.calls
    );
    assert!(
        calls_for(&run, "default").is_empty(),
        "a name after the hit was asked for:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn atftp_runs_with_libstdbuf_when_the_image_has_it() {
    let env_lines = |run: &support::GuestRun| -> Vec<String> {
        run.calls
            .lines()
            .filter(|l| l.starts_with("atftp-env "))
            .map(str::to_string)
            .collect()
    };
    let run = support::run_guest(&support::one_label_case(
        "atftp_no_stdbuf",
        "console=ttysclp0 pxe.retries=0",
        &[],
    ));
    let lines = env_lines(&run);
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l == "atftp-env LD_PRELOAD= _STDBUF_E=65536"),
        "without libstdbuf in the image nothing is preloaded:\n{}",
        run.calls
    );

    // The host's own libstdbuf (Debian coreutils), so that the stub's shell
    // can really preload it; an empty file only makes ld.so complain.
    let lib = std::fs::read("/usr/libexec/coreutils/libstdbuf.so").unwrap_or_default();
    let mut case = support::one_label_case("atftp_stdbuf", "console=ttysclp0 pxe.retries=0", &[]);
    case.root_files
        .insert("usr/libexec/coreutils/libstdbuf.so".into(), lib);
    let run = support::run_guest(&case);
    let lines = env_lines(&run);
    assert!(
        !lines.is_empty()
            && lines.iter().all(|l| l.starts_with("atftp-env LD_PRELOAD=/")
                && l.ends_with("/usr/libexec/coreutils/libstdbuf.so _STDBUF_E=65536")),
        "atftp not run with libstdbuf preloaded:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn knobs_choose_busybox_tftp_and_the_window() {
    let run = support::run_guest(&support::one_label_case(
        "busybox_forced",
        "console=ttysclp0 pxe.retries=0 pxe.tftp=busybox",
        &[],
    ));
    assert!(!run.calls.contains("atftp"), "atftp used:\n{}", run.calls);
    assert!(
        run.calls.contains("tftp -g -l"),
        "no busybox tftp:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);

    let run = support::run_guest(&support::one_label_case(
        "window_16",
        "console=ttysclp0 pxe.retries=0 pxe.window=16 pxe.blksize=1024",
        &[],
    ));
    assert!(
        run.calls
            .contains("--option blksize 1024 --option windowsize 16"),
        "knobs not passed to atftp:\n{}",
        run.calls
    );
}

fn a_transfer_shorter_than_the_announced_tsize_fails_and_is_retried() {
    let run = support::run_guest(&support::one_label_case(
        "tsize_lie",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_TSIZE_LIE", "boot/vmlinuz")],
    ));
    let m = support::markers(&run);
    let expected = [
        "size mismatch for boot/vmlinuz: server announced 7 bytes, received 6",
        "transfer of boot/vmlinuz failed; retry 1/1 in 2s",
        "size mismatch for boot/vmlinuz: server announced 7 bytes, received 6",
        "ERROR cannot fetch kernel boot/vmlinuz",
    ];
    let mut at = m.iter();
    for e in expected {
        assert!(
            at.any(|l| l == e),
            "marker {e:?} missing or out of order in {m:#?}"
        );
    }
    assert!(run.kexec_kernel.is_none(), "kexec ran on a short kernel");
    let kernel_requests = run
        .calls
        .lines()
        .filter(|l| l.contains("-r boot/vmlinuz "))
        .count();
    assert_eq!(kernel_requests, 2, "{}", run.calls);
}

fn kernels_and_initrds_are_checked_before_kexec() {
    let kernel = support::fake_s390_kernel;
    let mut ext2 = vec![0u8; 2048];
    ext2[1080..1082].copy_from_slice(&[0x53, 0xef]);
    for (name, initrd) in [
        ("gzip", b"\x1f\x8b\x08\x00rest".to_vec()),
        ("zstd", b"\x28\xb5\x2f\xfdrest".to_vec()),
        ("xz", b"\xfd7zXZ\x00rest".to_vec()),
        ("newc", b"070701000000".to_vec()),
        ("ext2", ext2),
        ("zero-padded", [&[0u8; 512][..], b"070701000000"].concat()),
        ("newc-crc", b"070702000000".to_vec()),
        ("odc", b"070707000000".to_vec()),
        ("old-gzip", b"\x1f\x9erest".to_vec()),
        ("bzip2", b"BZh91AY".to_vec()),
        ("lzma", b"\x5d\x00\x00\x80\x00rest".to_vec()),
        ("lz4", b"\x02\x21\x4c\x18rest".to_vec()),
        ("lzo", b"\x89LZO\x00rest".to_vec()),
        ("cramfs", b"\x45\x3d\xcd\x28rest".to_vec()),
        ("squashfs", b"hsqsrest".to_vec()),
        ("romfs", b"-rom1fs-rest".to_vec()),
    ] {
        let run = support::run_guest(&support::image_check_case(name, kernel(), initrd));
        assert!(
            run.kexec_kernel.is_some(),
            "{name}: a valid kernel + initrd was not booted:\n{}",
            run.console
        );
    }

    for (name, initrd) in [
        ("near-newc", b"070703000000".to_vec()),
        ("near-gzip", b"\x1f\x8a\x08\x00rest".to_vec()),
        ("near-ext2", {
            let mut e = vec![0xaau8; 2048];
            e[1080..1082].copy_from_slice(&[0x53, 0xee]);
            e
        }),
        ("near-zero", [&[0u8; 7][..], b"\x01"].concat()),
    ] {
        let run = support::run_guest(&support::image_check_case(name, kernel(), initrd));
        assert!(
            run.kexec_kernel.is_none(),
            "{name}: an initrd one byte off a known magic was booted:\n{}",
            run.console
        );
    }

    let run = support::run_guest(&support::image_check_case(
        "text_kernel",
        b"KERNEL".to_vec(),
        b"\x1f\x8b".to_vec(),
    ));
    assert!(run.kexec_kernel.is_none(), "kexec of a text file");
    assert!(
        support::markers(&run).contains(
            &"RESCUE kernel boot/vmlinuz is not an s390 Linux kernel image \
              (no S390EP at 0x10008; starts with 4b45524e454c)"
                .to_string()
        ),
        "{}",
        run.console
    );

    let run = support::run_guest(&support::image_check_case(
        "long_text_kernel",
        b"KERNEL-IS-TEXT!!".to_vec(),
        b"\x1f\x8b".to_vec(),
    ));
    assert!(
        support::markers(&run).contains(
            &"RESCUE kernel boot/vmlinuz is not an s390 Linux kernel image \
              (no S390EP at 0x10008; starts with 4b45524e454c2d49)"
                .to_string()
        ),
        "the first 8 bytes are shown:\n{}",
        run.console
    );

    let run = support::run_guest(&support::image_check_case(
        "noise_initrd",
        kernel(),
        noise(4096, 3),
    ));
    assert!(run.kexec_kernel.is_none(), "kexec with a noise initrd");
    let m = support::markers(&run);
    assert!(
        m.iter()
            .any(|l| l
                .starts_with("ERROR initrd boot/initrd.img is not an initramfs or initrd image")),
        "{m:#?}"
    );
}

fn urls_and_host_names_reach_their_server_port_and_path() {
    let case = support::generated(
        "url_transfers",
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"DEFAULT a\nLABEL a\nKERNEL tftp://u@10.0.2.9:6969/dir/my%20kernel;mode=octet\n\
                  INITRD 10.0.2.7::/i.img,http://10.0.2.2:8080/d/h.img#frag,::/r.img\n"
                    .to_vec(),
            ),
            ("dir/my kernel", b"K".to_vec()),
            ("i.img", b"I".to_vec()),
            ("d/h.img", b"H".to_vec()),
            ("r.img", b"R".to_vec()),
        ],
    );
    let run = support::run_guest(&case);
    let calls: Vec<&str> = run.calls.lines().collect();
    for (want, what) in [
        (
            "-r dir/my kernel -- 10.0.2.9 6969",
            "the tftp:// URL's decoded path, host and port",
        ),
        (
            "-r i.img -- 10.0.2.7 69",
            "host::path on its own server, port 69",
        ),
        ("-r r.img -- 10.0.2.2 69", "::path on the boot server"),
    ] {
        assert!(
            calls
                .iter()
                .any(|l| l.starts_with("atftp ") && l.ends_with(want)),
            "{what}: no atftp call ending in {want:?}:\n{}",
            run.calls
        );
    }
    assert!(
        calls
            .iter()
            .any(|l| l.starts_with("wget ") && l.ends_with(" http://10.0.2.2:8080/d/h.img")),
        "http:// URL not fetched by wget without its #fragment:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn a_line_with_a_nul_byte_is_ignored_whole() {
    // The guest maps NUL to \001 (a control byte: the line is refused), so
    // awk never sees a NUL and cut the line there.
    let mut case = generated(
        "nul_in_append",
        vec![
            (
                CFG,
                b"LABEL a\nKERNEL k\nAPPEND keep\nAPPEND x\0evil\n".to_vec(),
            ),
            ("boot/k", b"K".to_vec()),
        ],
    );
    case.expect.outcome = Some("boot".to_string());
    case.expect.cmdline = Some("keep".to_string());
    let report = check(&case);
    assert!(report.is_empty(), "{report}");

    // the same in an INCLUDEd file, which is normalised on its own
    let mut case = generated(
        "nul_in_included_append",
        vec![
            (CFG, b"LABEL a\nKERNEL k\nINCLUDE more.cfg\n".to_vec()),
            ("boot/more.cfg", b"APPEND keep\nAPPEND x\0evil\n".to_vec()),
            ("boot/k", b"K".to_vec()),
        ],
    );
    case.expect.outcome = Some("boot".to_string());
    case.expect.cmdline = Some("keep".to_string());
    let report = check(&case);
    assert!(report.is_empty(), "{report}");
}

/// The default entry is picked by config.awk's info pass and kept in
/// DEFAULT_SEL (no second pass over the config). init's environment holds
/// every `name=value` word of the kernel command line the kernel did not
/// know, so neither that variable nor select's PXE_KIND/PXE_CHOICE may be
/// taken from it.
fn the_default_selection_ignores_the_inherited_environment() {
    let run = support::run_guest(&support::one_label_case(
        "env_default_sel",
        "console=ttysclp0 pxe.retries=0",
        &[
            ("DEFAULT_SEL", "error\tinjected\n"),
            ("PXE_KIND", "onerror"),
            ("PXE_CHOICE", "nosuch"),
        ],
    ));
    let m = support::markers(&run);
    assert!(
        m.iter()
            .any(|l| l.starts_with("boot label=l kernel=boot/vmlinuz ")),
        "{m:#?}"
    );
    assert!(
        !m.iter()
            .any(|l| l.contains("injected") || l.contains("nosuch")),
        "{m:#?}"
    );
}

fn a_config_transfer_failure_is_not_retried_within_a_lookup_round() {
    let run = support::run_guest(&support::one_label_case(
        "config_tsize_lie",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_TSIZE_LIE", "boot/pxelinux.cfg/default")],
    ));
    let m = support::markers(&run);
    assert!(
        !m.iter().any(|l| l.starts_with("transfer of")),
        "config fetch retried: {m:#?}"
    );
    assert!(
        m.contains(&"try boot/pxelinux.cfg/default ... not found".to_string()),
        "{m:#?}"
    );
}

// ---- the parser dying midway (busybox awk out of memory, say): what it
// wrote is partial and must not choose what boots

/// A copy of the guest scripts whose config.awk kills itself (SIGKILL, as
/// the kernel's OOM killer would) in `mode` when the config's name matches
/// `name` (an awk regex; PXE_CFG_NAME is set in normalize mode only), and is
/// the real parser otherwise.
fn guest_with_dying_parser(mode: &str, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(support::guest_dir()).expect("guest dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
        }
    }
    let real =
        std::fs::read_to_string(support::guest_dir().join("config.awk")).expect("config.awk");
    let dying = format!(
        "BEGIN {{ if (mode == \"{mode}\" && ENVIRON[\"PXE_CFG_NAME\"] ~ /{name}/) {{\n\
         \t\"echo $PPID\" | getline pid\n\tsystem(\"kill -9 \" pid)\n}} }}\n{real}"
    );
    std::fs::write(dir.path().join("config.awk"), dying).expect("write config.awk");
    dir
}

fn assert_parse_error_rescue_and_no_kexec(run: &support::GuestRun, reason: &str) {
    let m = support::markers(run);
    assert!(m.contains(&format!("ERROR {reason}")), "{m:#?}");
    assert!(m.contains(&format!("RESCUE {reason}")), "{m:#?}");
    assert!(!m.iter().any(|l| l.starts_with("boot ")), "{m:#?}");
    assert!(run.kexec_argv.is_empty(), "kexec ran: {:?}", run.kexec_argv);
}

fn a_config_the_parser_dies_on_is_an_error_and_the_rescue_shell() {
    let lib = guest_with_dying_parser("normalize", "default$");
    let lib_path = lib.path().to_string_lossy().into_owned();
    let run = support::run_guest(&support::one_label_case(
        "parser_dies_top",
        "console=ttysclp0 pxe.retries=0",
        &[("PXE_LIB", &lib_path)],
    ));
    assert_parse_error_rescue_and_no_kexec(
        &run,
        "cannot parse boot/pxelinux.cfg/default: config.awk exited 137",
    );
}

/// A config with an INCLUDE (flattened first, then parsed by a separate
/// info pass), run with the guest scripts in `lib`.
fn include_case(name: &str, lib: &tempfile::TempDir) -> support::Case {
    let mut case = support::generated(
        name,
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"INCLUDE pxelinux.cfg/inc.cfg\nDEFAULT l\nLABEL l\nKERNEL vmlinuz\n".to_vec(),
            ),
            (
                "boot/pxelinux.cfg/inc.cfg",
                b"LABEL other\nKERNEL vmlinuz\n".to_vec(),
            ),
            ("boot/vmlinuz", b"KERNEL".to_vec()),
        ],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=0".into());
    case.stub_env
        .insert("PXE_LIB".into(), lib.path().to_string_lossy().into_owned());
    case
}

fn an_include_the_parser_dies_on_is_an_error_and_the_rescue_shell() {
    let lib = guest_with_dying_parser("normalize", "inc[.]cfg$");
    let run = support::run_guest(&include_case("parser_dies_include", &lib));
    assert!(
        support::markers(&run).contains(&"include boot/pxelinux.cfg/inc.cfg ... found".to_string()),
        "{}",
        run.console
    );
    assert_parse_error_rescue_and_no_kexec(
        &run,
        "cannot parse boot/pxelinux.cfg/inc.cfg: config.awk exited 137",
    );
}

fn the_info_pass_the_parser_dies_on_is_an_error_and_the_rescue_shell() {
    let lib = guest_with_dying_parser("info", "");
    let run = support::run_guest(&include_case("parser_dies_info", &lib));
    assert_parse_error_rescue_and_no_kexec(
        &run,
        "cannot parse boot/pxelinux.cfg/default: config.awk exited 137",
    );
}

fn a_choice_the_parser_dies_on_fails_that_attempt() {
    // PROMPT 1 and a typed label: the choice is config.awk's select pass
    let lib = guest_with_dying_parser("select", "");
    let lib_path = lib.path().to_string_lossy().into_owned();
    let mut case = support::generated(
        "parser_dies_select",
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"PROMPT 1\nDEFAULT l\nLABEL l\nKERNEL vmlinuz\nLABEL typed\nKERNEL vmlinuz\n"
                    .to_vec(),
            ),
            ("boot/vmlinuz", b"KERNEL".to_vec()),
        ],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=0".into());
    case.answer = Some("typed".into());
    case.stub_env.insert("PXE_LIB".into(), lib_path);
    let run = support::run_guest(&case);
    assert_parse_error_rescue_and_no_kexec(
        &run,
        "cannot parse boot/pxelinux.cfg/default: config.awk exited 137",
    );
}

// ---- common.sh (ci/mutate-guest): ports, block-size fallback, retries,
// refusals and config probes, seen in the stubs' calls

/// The common.sh transfer tests, run by `main` by name.
fn common_sh_tests() -> Vec<(&'static str, fn())> {
    vec![
        (
            "tftp_url_ports_are_those_syslinux_accepts",
            tftp_url_ports_are_those_syslinux_accepts,
        ),
        (
            "without_an_answer_to_options_tftp_falls_back_to_512_byte_blocks",
            without_an_answer_to_options_tftp_falls_back_to_512_byte_blocks,
        ),
        (
            "a_timeout_is_retried_and_blksize_512_is_asked_once_per_try",
            a_timeout_is_retried_and_blksize_512_is_asked_once_per_try,
        ),
        (
            "an_access_violation_is_not_found_and_not_retried",
            an_access_violation_is_not_found_and_not_retried,
        ),
        (
            "config_misses_cost_one_busybox_probe_each",
            config_misses_cost_one_busybox_probe_each,
        ),
        (
            "without_atftp_busybox_tftp_fetches_everything",
            without_atftp_busybox_tftp_fetches_everything,
        ),
        (
            "paths_over_255_bytes_go_to_busybox_tftp",
            paths_over_255_bytes_go_to_busybox_tftp,
        ),
        (
            "a_tsize_with_a_zero_digit_is_read_whole",
            a_tsize_with_a_zero_digit_is_read_whole,
        ),
        (
            "ext2_with_a_boot_block_is_an_initrd_and_a_gzip_kernel_is_not_a_kernel",
            ext2_with_a_boot_block_is_an_initrd_and_a_gzip_kernel_is_not_a_kernel,
        ),
        (
            "a_failed_tftp_download_leaves_no_file",
            a_failed_tftp_download_leaves_no_file,
        ),
    ]
}

/// A TFTP download that fails leaves no file in the guest: atftp creates
/// its local file before the first packet and keeps it when it gives up
/// (its `tftp_receive_file` only closes it), so the guest removes it; the
/// same after a tsize mismatch. No retry and no ONERROR: the run ends in
/// the rescue shell with the download directory as the failure left it.
fn a_failed_tftp_download_leaves_no_file() {
    for (name, env) in [
        ("left_after_timeout", ("STUB_TFTP_TIMEOUT", "boot/vmlinuz")),
        ("left_after_tsize", ("STUB_TSIZE_LIE", "boot/vmlinuz")),
    ] {
        let run = support::run_guest(&support::one_label_case(
            name,
            "console=ttysclp0 pxe.retries=0",
            &[env],
        ));
        support::assert_failed_kernel_fetch_left_nothing(&run, name, "boot/vmlinuz");
    }
}

/// Stub calls that transfer `path` (either TFTP client).
fn transfers_of<'a>(run: &'a support::GuestRun, path: &str) -> Vec<&'a str> {
    let needle = format!(" -r {path} ");
    run.calls
        .lines()
        .filter(|l| l.contains(&needle) && !l.starts_with("atftp-env "))
        .collect()
}

/// Console lines that are not markers (shell complaints).
fn console_noise(run: &support::GuestRun) -> Vec<&str> {
    run.console
        .lines()
        .filter(|l| !l.contains(pxelinux_marker()) && !l.trim().is_empty())
        .collect()
}

fn pxelinux_marker() -> &'static str {
    "S390-PXELINUX: "
}

fn tftp_url_ports_are_those_syslinux_accepts() {
    // INCLUDE fetches each URL: one atftp call per port form.
    let ports = [
        ("65535", "65535"),
        ("65536", "69"),
        ("0", "69"),
        ("1", "1"),
        ("10", "10"),
        ("0000080", "80"),
        ("12345", "12345"),
        ("123456", "69"),
        ("x1", "69"),
        ("99999999999999999999", "69"),
        ("", "69"),
    ];
    let mut cfg = String::new();
    let mut files = Vec::new();
    for (i, (port, _)) in ports.iter().enumerate() {
        cfg.push_str(&format!("INCLUDE tftp://10.0.2.9:{port}/p/{i}.cfg\n"));
        files.push((format!("p/{i}.cfg"), format!("SAY port {i}\n").into_bytes()));
    }
    cfg.push_str("DEFAULT a\nLABEL a\nKERNEL k\n");
    files.push((CFG.to_string(), cfg.into_bytes()));
    files.push(("boot/k".to_string(), b"K".to_vec()));
    let mut case = generated(
        "tftp_url_ports",
        files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect(),
    );
    case.expect.outcome = Some("boot".to_string());
    let report = check(&case);
    assert!(report.is_empty(), "{report}");
    let run = support::run_guest(&case);
    for (i, (port, want)) in ports.iter().enumerate() {
        let calls = transfers_of(&run, &format!("p/{i}.cfg"));
        let tail = format!(" -- 10.0.2.9 {want}");
        assert!(
            calls.len() == 1 && calls[0].ends_with(&tail),
            "port {port:?}: not one transfer ending in {tail:?}:\n{}",
            run.calls
        );
    }
    assert_eq!(console_noise(&run), Vec::<&str>::new(), "{}", run.console);
}

fn without_an_answer_to_options_tftp_falls_back_to_512_byte_blocks() {
    // atftp: the options go unanswered, the plain request works (and a
    // `_ts` in the environment, from the kernel command line, is no
    // announced size)
    let run = support::run_guest(&support::one_label_case(
        "no_options_atftp",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_TFTP_NO_OPTIONS", "1"), ("_ts", "7")],
    ));
    let k = transfers_of(&run, "boot/vmlinuz");
    assert!(
        k.len() == 2
            && k[0].starts_with("atftp --trace --option tsize 0 --option blksize 1468 ")
            && k[1].starts_with("atftp --trace -g -l ")
            && k[1].ends_with("/tmp/pxe/kernel -r boot/vmlinuz -- 10.0.2.2 69"),
        "no fallback to a plain atftp request:\n{}",
        run.calls
    );
    assert!(
        run.calls
            .lines()
            .filter(|l| l.starts_with("atftp-env "))
            .all(|l| l == "atftp-env LD_PRELOAD= _STDBUF_E=65536"),
        "{}",
        run.calls
    );
    let m = support::markers(&run);
    assert!(
        !m.iter().any(|l| l.starts_with("transfer of")),
        "the fallback is part of one try: {m:#?}"
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
    // busybox tftp: -b, then without it
    let run = support::run_guest(&support::one_label_case(
        "no_options_busybox",
        "console=ttysclp0 pxe.retries=0 pxe.tftp=busybox",
        &[("STUB_TFTP_NO_OPTIONS", "1")],
    ));
    let k = transfers_of(&run, "boot/vmlinuz");
    assert!(
        k.len() == 2
            && k[0].starts_with("tftp -g -l ")
            && k[0].ends_with(" -r boot/vmlinuz -b 1468 -- 10.0.2.2 69")
            && k[1].starts_with("tftp -g -l ")
            && k[1].ends_with("/tmp/pxe/kernel -r boot/vmlinuz -- 10.0.2.2 69"),
        "no fallback to a plain busybox request:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn a_timeout_is_retried_and_blksize_512_is_asked_once_per_try() {
    for (knobs, per_try) in [("", 2), (" pxe.blksize=512", 1), (" pxe.blksize=513", 2)] {
        for client in ["", " pxe.tftp=busybox"] {
            let cmdline = format!("console=ttysclp0 pxe.retries=1{knobs}{client}");
            let run = support::run_guest(&support::one_label_case(
                "tftp_timeout",
                &cmdline,
                &[("STUB_TFTP_TIMEOUT", "boot/vmlinuz")],
            ));
            let k = transfers_of(&run, "boot/vmlinuz");
            assert_eq!(k.len(), 2 * per_try, "{cmdline}:\n{}", run.calls);
            let m = support::markers(&run);
            let mut at = m.iter();
            for e in [
                "transfer of boot/vmlinuz failed; retry 1/1 in 2s",
                "ERROR cannot fetch kernel boot/vmlinuz",
            ] {
                assert!(at.any(|l| l == e), "{cmdline}: {e:?} missing in {m:#?}");
            }
            assert!(
                run.kexec_kernel.is_none(),
                "{cmdline}: kexec without a kernel"
            );
        }
    }
}

fn an_access_violation_is_not_found_and_not_retried() {
    for client in ["", " pxe.tftp=busybox"] {
        let cmdline = format!("console=ttysclp0 pxe.retries=2{client}");
        let run = support::run_guest(&support::one_label_case(
            "tftp_denied",
            &cmdline,
            &[("STUB_TFTP_DENY", "boot/vmlinuz")],
        ));
        let k = transfers_of(&run, "boot/vmlinuz");
        assert_eq!(
            k.len(),
            1,
            "{cmdline}: retried or fell back:\n{}",
            run.calls
        );
        let m = support::markers(&run);
        assert!(
            !m.iter().any(|l| l.starts_with("transfer of")),
            "{cmdline}: {m:#?}"
        );
        assert!(
            m.contains(&"ERROR cannot fetch kernel boot/vmlinuz".to_string()),
            "{cmdline}: {m:#?}"
        );
    }
    // a denied config candidate is a miss of the probe: atftp never asks
    let run = support::run_guest(&support::one_label_case(
        "tftp_denied_config",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_TFTP_DENY", "boot/pxelinux.cfg/0A")],
    ));
    let c = transfers_of(&run, "boot/pxelinux.cfg/0A");
    assert!(
        c.len() == 1 && c[0].starts_with("tftp -g "),
        "{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn config_misses_cost_one_busybox_probe_each() {
    // `_rc=0` from the kernel command line must not make a miss a hit
    let mut case =
        support::one_label_case("probes", "console=ttysclp0 pxe.retries=0", &[("_rc", "0")]);
    case.dhcp
        .insert("pxeconffile".into(), "10.0.2.7::boot/host.cfg".into());
    case.raw_files.insert(
        "boot/host.cfg".into(),
        b"DEFAULT l\nLABEL l\nKERNEL vmlinuz\n".to_vec(),
    );
    let run = support::run_guest(&case);
    let c = transfers_of(&run, "boot/host.cfg");
    assert!(
        c.len() == 2
            && c[0].starts_with("tftp -g -l ")
            && c[0].ends_with(" -r boot/host.cfg -b 1468 -- 10.0.2.7 69")
            && c[1].starts_with("atftp --trace ")
            && c[1].ends_with(" -r boot/host.cfg -- 10.0.2.7 69"),
        "option 209 on its own server: not probed there, then fetched:\n{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
    // misses: one busybox probe each on the boot server, no atftp
    let run = support::run_guest(&support::one_label_case(
        "probe_misses",
        "console=ttysclp0 pxe.retries=0",
        &[("_rc", "0")],
    ));
    for name in ["01-52-54-00-12-34-56", "0A00020F", "0A", "0"] {
        let c = transfers_of(&run, &format!("boot/pxelinux.cfg/{name}"));
        assert!(
            c.len() == 1
                && c[0].starts_with("tftp -g -l ")
                && c[0].ends_with(&format!(
                    " -r boot/pxelinux.cfg/{name} -b 1468 -- 10.0.2.2 69"
                )),
            "{name}: not one busybox probe:\n{}",
            run.calls
        );
    }
    // pxe.tftp=busybox: no probe, one transfer per candidate
    let run = support::run_guest(&support::one_label_case(
        "no_probe_with_busybox",
        "console=ttysclp0 pxe.retries=0 pxe.tftp=busybox",
        &[],
    ));
    for name in ["01-52-54-00-12-34-56", "0A", "default"] {
        let c = transfers_of(&run, &format!("boot/pxelinux.cfg/{name}"));
        assert_eq!(c.len(), 1, "{name}:\n{}", run.calls);
    }
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn without_atftp_busybox_tftp_fetches_everything() {
    let mut case = support::one_label_case("no_atftp", "console=ttysclp0 pxe.retries=0", &[]);
    case.stubs_removed = vec!["atftp".to_string()];
    let run = support::run_guest(&case);
    assert!(!run.calls.contains("atftp"), "{}", run.calls);
    let k = transfers_of(&run, "boot/vmlinuz");
    assert!(
        k.len() == 1 && k[0].ends_with(" -r boot/vmlinuz -b 1468 -- 10.0.2.2 69"),
        "{}",
        run.calls
    );
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}

fn paths_over_255_bytes_go_to_busybox_tftp() {
    // atftp keeps 255 bytes of a file name: 255 is atftp's, 256 busybox's
    for (len, client) in [(255, "atftp "), (256, "tftp ")] {
        let kernel = format!("boot/{}", "k".repeat(len - 5));
        let mut case = support::one_label_case("long_path", "console=ttysclp0 pxe.retries=0", &[]);
        case.raw_files.insert(
            CFG.into(),
            format!("DEFAULT l\nLABEL l\nKERNEL ::{kernel}\n").into_bytes(),
        );
        case.raw_files.insert(kernel.clone(), b"LONG".to_vec());
        let run = support::run_guest(&case);
        let k = transfers_of(&run, &kernel);
        assert!(
            k.len() == 1 && k[0].starts_with(client),
            "{len} bytes: not one {client:?} call:\n{}",
            run.calls
        );
        assert_eq!(run.kexec_kernel.as_deref(), Some(&b"LONG"[..]), "{len}");
    }
}

fn a_tsize_with_a_zero_digit_is_read_whole() {
    // atftp's OACK announces 10 (and 11 for the lie): all digits count
    for (lie, boots) in [("", true), ("boot/vmlinuz", false)] {
        let mut case = support::one_label_case(
            "tsize_ten",
            "console=ttysclp0 pxe.retries=0",
            &[("STUB_TSIZE_LIE", lie)],
        );
        case.raw_files
            .insert("boot/vmlinuz".into(), b"0123456789".to_vec());
        let run = support::run_guest(&case);
        assert_eq!(run.kexec_kernel.is_some(), boots, "{}", run.console);
        if !boots {
            assert!(
                support::markers(&run).contains(
                    &"size mismatch for boot/vmlinuz: server announced 11 bytes, received 10"
                        .to_string()
                ),
                "{}",
                run.console
            );
        }
    }
}

fn ext2_with_a_boot_block_is_an_initrd_and_a_gzip_kernel_is_not_a_kernel() {
    // ext2 whose first bytes are not zero (a boot block): only the
    // superblock magic at 1080 makes it an initrd
    let mut ext2 = vec![0xaau8; 2048];
    ext2[1080..1082].copy_from_slice(&[0x53, 0xef]);
    let run = support::run_guest(&support::image_check_case(
        "ext2_boot_block",
        support::fake_s390_kernel(),
        ext2,
    ));
    assert!(run.kexec_kernel.is_some(), "ext2 refused:\n{}", run.console);
    // a kernel that would pass as an initrd is still no kernel
    let run = support::run_guest(&support::image_check_case(
        "gzip_kernel",
        b"\x1f\x8b\x08\x00rest".to_vec(),
        b"\x1f\x8b".to_vec(),
    ));
    assert!(run.kexec_kernel.is_none(), "kexec of a gzip file as kernel");
    let m = support::markers(&run);
    assert_eq!(
        m.last().map(String::as_str),
        Some(
            "RESCUE kernel boot/vmlinuz is not an s390 Linux kernel image \
             (no S390EP at 0x10008; starts with 1f8b080072657374)"
        ),
        "{}",
        run.console
    );
}

fn parser_warnings_under_pxe_debug_are_the_models() {
    // The guest prints config.awk's warnings only under pxe.debug; they must
    // be the model's (config::normalize), file name and line number included:
    // none for a comment, an empty line or a CR-only (DOS) line; one for a
    // vertical tab, a control byte like any other.
    let cfg = format!(
        "# comment\n\n\r\nLABEL a\nKERNEL k\nFROB x\nAPPEND a\x02b\nSAY a\x0bb\nSAY {}\n  MENU COLOR x\nAPPEND ok\n",
        "z".repeat(4093)
    );
    let mut case = generated(
        "debug_warnings",
        vec![(CFG, cfg.clone().into_bytes()), ("boot/k", b"K".to_vec())],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=0 pxe.debug".to_string());
    let run = support::run_guest(&case);
    let got: Vec<String> = support::markers(&run)
        .iter()
        .filter_map(|m| m.strip_prefix("debug: warning: "))
        .map(str::to_string)
        .collect();
    let mut want = Vec::new();
    s390_pxelinux::pxelinux::config::normalize(CFG, cfg.as_bytes(), &mut want);
    assert_eq!(
        want,
        [
            format!("{CFG}:6: ignoring unknown keyword frob"),
            format!("{CFG}:7: ignoring line with control bytes"),
            format!("{CFG}:8: ignoring line with control bytes"),
            format!("{CFG}:9: ignoring line longer than 4096 bytes"),
        ],
        "the model's warnings"
    );
    assert_eq!(got, want, "console:\n{}", run.console);
    assert!(run.kexec_kernel.is_some(), "no kexec:\n{}", run.console);
}
