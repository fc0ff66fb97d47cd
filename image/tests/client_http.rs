//! The guest client's HTTP and FTP transfers (busybox wget, stubbed: see
//! `tests/client/stubs/wget`): headers or FTP replies asked for with `-S`,
//! the size checked against `Content-Length` or the FTP `SIZE` reply, 4xx
//! and FTP 550 = not found (never retried), 5xx and cut connections
//! retried with backoff and then ONERROR, a stalled connection given up
//! after `pxe.timeout` seconds, the `fetch` marker's byte count. Path
//! resolution itself is the corpus's business (`client.rs`).

#[path = "client/support.rs"]
mod support;

/// A tree whose default label fetches its kernel and initrd over HTTP and
/// whose ONERROR label boots a TFTP kernel.
fn http_case(name: &str, cmdline: &str, stub_env: &[(&str, &str)]) -> support::Case {
    url_case("http", name, cmdline, stub_env)
}

/// [`http_case`] with `scheme://` URLs.
fn url_case(scheme: &str, name: &str, cmdline: &str, stub_env: &[(&str, &str)]) -> support::Case {
    let config = format!(
        "DEFAULT web\nONERROR local\n\
         LABEL web\nKERNEL {scheme}://10.0.2.2/web/vmlinuz\nINITRD {scheme}://10.0.2.2/web/initrd.img\n\
         LABEL local\nKERNEL tftp-kernel\n"
    );
    let mut c = support::generated(
        name,
        vec![
            ("boot/pxelinux.cfg/default", config.into_bytes()),
            ("web/vmlinuz", b"KERNEL".to_vec()),
            ("web/initrd.img", b"INITRD".to_vec()),
            ("boot/tftp-kernel", b"TFTPK".to_vec()),
        ],
    );
    c.cmdline = Some(cmdline.to_string());
    c.stub_env = stub_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c
}

/// Asserts that `expected` markers appear in this order.
fn in_order(m: &[String], expected: &[&str]) {
    let mut at = m.iter();
    for e in expected {
        assert!(
            at.any(|l| l == e),
            "marker {e:?} missing or out of order in {m:#?}"
        );
    }
}

fn kernel_requests(run: &support::GuestRun) -> usize {
    run.calls
        .lines()
        .filter(|l| l.starts_with("wget ") && l.ends_with("/web/vmlinuz"))
        .count()
}

#[test]
fn kernel_and_initrd_over_http_with_headers_and_byte_counts() {
    let run = support::run_guest(&http_case("http_ok", "console=ttysclp0", &[]));
    let m = support::markers(&run);
    in_order(
        &m,
        &[
            "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
            "fetch http://10.0.2.2/web/initrd.img 6 bytes",
            "boot label=web kernel=http://10.0.2.2/web/vmlinuz initrd=http://10.0.2.2/web/initrd.img cmdline=",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    assert!(
        run.calls.lines().any(|l| l.starts_with("wget -q -S -O ")
            && l.ends_with("/tmp/pxe/kernel http://10.0.2.2/web/vmlinuz")),
        "wget not asked for the headers (-S):\n{}",
        run.calls
    );
}

#[test]
fn a_redirects_content_length_is_not_the_final_answers() {
    // wget -S shows the 302 (with its own Content-Length) and then the
    // final 200, chunked: the size check must not use the redirect's length
    let run = support::run_guest(&http_case(
        "http_redirect",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_REDIRECT", "web/vmlinuz 999")],
    ));
    let m = support::markers(&run);
    in_order(
        &m,
        &[
            "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
            "boot label=web kernel=http://10.0.2.2/web/vmlinuz initrd=http://10.0.2.2/web/initrd.img cmdline=",
        ],
    );
    assert_eq!(kernel_requests(&run), 1, "{}", run.calls);
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    // The final answer cut short: a failure, reported without a length
    // (the final answer announced none), never with the redirect's.
    let run = support::run_guest(&http_case(
        "http_redirect_cut",
        "console=ttysclp0 pxe.retries=0",
        &[
            ("STUB_WGET_REDIRECT", "web/vmlinuz 999"),
            ("STUB_WGET_CUT", "web/vmlinuz 3"),
        ],
    ));
    let m = support::markers(&run);
    in_order(
        &m,
        &[
            "ERROR cannot fetch kernel http://10.0.2.2/web/vmlinuz",
            "onerror local",
        ],
    );
    assert!(
        !m.iter().any(|l| l.starts_with("size mismatch")),
        "a length the final answer did not announce: {m:#?}"
    );
}

#[test]
fn not_found_is_not_retried_and_onerror_boots() {
    for status in ["404", "410", "403"] {
        let fault = format!("web/vmlinuz {status}");
        let run = support::run_guest(&http_case(
            "http_404",
            "console=ttysclp0 pxe.retries=2",
            &[("STUB_WGET_STATUS", &fault)],
        ));
        let m = support::markers(&run);
        in_order(
            &m,
            &[
                "ERROR cannot fetch kernel http://10.0.2.2/web/vmlinuz",
                "onerror local",
                "fetch boot/tftp-kernel 5 bytes",
            ],
        );
        assert_eq!(kernel_requests(&run), 1, "{status}: {}", run.calls);
        assert_eq!(run.kexec_kernel.as_deref(), Some(&b"TFTPK"[..]));
    }
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let run = support::run_guest(&http_case(
        "http_500",
        "console=ttysclp0 pxe.retries=2",
        &[("STUB_WGET_STATUS", "web/vmlinuz 500 2")],
    ));
    let m = support::markers(&run);
    in_order(
        &m,
        &[
            "transfer of http://10.0.2.2/web/vmlinuz failed; retry 1/2 in 2s",
            "transfer of http://10.0.2.2/web/vmlinuz failed; retry 2/2 in 4s",
            "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
        ],
    );
    assert_eq!(kernel_requests(&run), 3, "{}", run.calls);
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    // More 5xx than retries: ONERROR.
    let run = support::run_guest(&http_case(
        "http_503",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_STATUS", "web/vmlinuz 503")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "ERROR cannot fetch kernel http://10.0.2.2/web/vmlinuz",
            "onerror local",
        ],
    );
    assert_eq!(kernel_requests(&run), 2, "{}", run.calls);
}

#[test]
fn a_cut_connection_is_a_size_mismatch_and_retried() {
    let run = support::run_guest(&http_case(
        "http_cut",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_CUT", "web/vmlinuz 3 1")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for http://10.0.2.2/web/vmlinuz: server announced 6 bytes, received 3",
            "transfer of http://10.0.2.2/web/vmlinuz failed; retry 1/1 in 2s",
            "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    // Cut on every try: no kexec of the HTTP kernel.
    let run = support::run_guest(&http_case(
        "http_cut_always",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_CUT", "web/vmlinuz 3")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for http://10.0.2.2/web/vmlinuz: server announced 6 bytes, received 3",
            "size mismatch for http://10.0.2.2/web/vmlinuz: server announced 6 bytes, received 3",
            "ERROR cannot fetch kernel http://10.0.2.2/web/vmlinuz",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"TFTPK"[..]));
}

#[test]
fn a_stalled_connection_is_given_up_after_pxe_timeout() {
    let t = std::time::Instant::now();
    let run = support::run_guest(&http_case(
        "http_stall",
        "console=ttysclp0 pxe.retries=0 pxe.timeout=1",
        &[("STUB_WGET_STALL", "web/vmlinuz")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "no data from http://10.0.2.2/web/vmlinuz for 1s; giving up this try",
            "ERROR cannot fetch kernel http://10.0.2.2/web/vmlinuz",
            "onerror local",
        ],
    );
    let secs = t.elapsed().as_secs_f64();
    assert!(secs < 20.0, "the stalled wget was not killed ({secs} s)");
}

#[test]
fn kernel_and_initrd_over_ftp_with_the_size_reply_checked() {
    let run = support::run_guest(&url_case("ftp", "ftp_ok", "console=ttysclp0", &[]));
    in_order(
        &support::markers(&run),
        &[
            "fetch ftp://10.0.2.2/web/vmlinuz 6 bytes",
            "fetch ftp://10.0.2.2/web/initrd.img 6 bytes",
            "boot label=web kernel=ftp://10.0.2.2/web/vmlinuz initrd=ftp://10.0.2.2/web/initrd.img cmdline=",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
}

#[test]
fn ftp_550_is_not_found_and_not_retried() {
    let run = support::run_guest(&url_case(
        "ftp",
        "ftp_550",
        "console=ttysclp0 pxe.retries=2",
        &[("STUB_WGET_STATUS", "web/vmlinuz 550")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "ERROR cannot fetch kernel ftp://10.0.2.2/web/vmlinuz",
            "onerror local",
            "fetch boot/tftp-kernel 5 bytes",
        ],
    );
    assert_eq!(kernel_requests(&run), 1, "{}", run.calls);
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"TFTPK"[..]));
}

/// Data shorter than the `SIZE` reply (busybox wget: "connection closed
/// prematurely", exit 1; pinned against a scripted server in the harness's
/// `ftp` tests): the size mismatch, a retry, then the file; shorter on
/// every try: ERROR and ONERROR.
#[test]
fn ftp_data_shorter_than_size_is_a_mismatch_and_retried() {
    let run = support::run_guest(&url_case(
        "ftp",
        "ftp_cut",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_CUT", "web/vmlinuz 3 1")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for ftp://10.0.2.2/web/vmlinuz: server announced 6 bytes, received 3",
            "transfer of ftp://10.0.2.2/web/vmlinuz failed; retry 1/1 in 2s",
            "fetch ftp://10.0.2.2/web/vmlinuz 6 bytes",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    let run = support::run_guest(&url_case(
        "ftp",
        "ftp_cut_always",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_CUT", "web/vmlinuz 3")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for ftp://10.0.2.2/web/vmlinuz: server announced 6 bytes, received 3",
            "ERROR cannot fetch kernel ftp://10.0.2.2/web/vmlinuz",
            "onerror local",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"TFTPK"[..]));
}

// ---- common.sh (ci/mutate-guest): statuses, retry counts, size headers
// with a zero digit, and the watchdog's lifetime

/// Markers equal to `m`.
fn count(m: &[String], text: &str) -> usize {
    m.iter().filter(|l| *l == text).count()
}

#[test]
fn request_timeouts_and_rate_limits_are_retried_and_http_1_0_is_understood() {
    for status in ["408", "429"] {
        let fault = format!("web/vmlinuz {status} 1");
        let run = support::run_guest(&http_case(
            "http_retry_status",
            "console=ttysclp0 pxe.retries=1",
            &[("STUB_WGET_STATUS", &fault)],
        ));
        in_order(
            &support::markers(&run),
            &[
                "transfer of http://10.0.2.2/web/vmlinuz failed; retry 1/1 in 2s",
                "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
            ],
        );
        assert_eq!(kernel_requests(&run), 2, "{status}: {}", run.calls);
        assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    }
    // An HTTP/1.0 server's 404 is as final as HTTP/1.1's.
    let run = support::run_guest(&http_case(
        "http_1_0_404",
        "console=ttysclp0 pxe.retries=2",
        &[
            ("STUB_WGET_STATUS", "web/vmlinuz 404"),
            ("STUB_WGET_PROTOCOL", "HTTP/1.0"),
        ],
    ));
    assert_eq!(kernel_requests(&run), 1, "{}", run.calls);
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"TFTPK"[..]));
}

#[test]
fn a_size_mismatch_is_reported_once_per_try_also_for_sizes_with_a_zero() {
    for scheme in ["http", "ftp"] {
        let mut case = url_case(
            scheme,
            "size_ten",
            "console=ttysclp0 pxe.retries=1",
            &[("STUB_WGET_CUT", "web/vmlinuz 3 1")],
        );
        case.raw_files
            .insert("web/vmlinuz".into(), b"0123456789".to_vec());
        let run = support::run_guest(&case);
        let m = support::markers(&run);
        let mismatch = format!(
            "size mismatch for {scheme}://10.0.2.2/web/vmlinuz: server announced 10 bytes, received 3"
        );
        assert_eq!(count(&m, &mismatch), 1, "{m:#?}");
        in_order(
            &m,
            &[
                &mismatch,
                &format!("transfer of {scheme}://10.0.2.2/web/vmlinuz failed; retry 1/1 in 2s"),
                &format!("fetch {scheme}://10.0.2.2/web/vmlinuz 10 bytes"),
            ],
        );
        assert_eq!(run.kexec_kernel.as_deref(), Some(&b"0123456789"[..]));
    }
}

#[test]
fn every_fetch_has_its_own_retries() {
    // The first fetch of the path uses up its try and its retry; the ONERROR
    // label's fetch of the same path fails once more and still has a retry.
    let config = "DEFAULT a\nONERROR b\nLABEL a\nKERNEL http://10.0.2.2/web/vmlinuz\n\
                  LABEL b\nKERNEL http://10.0.2.2/web/vmlinuz\nAPPEND second\n";
    let mut case = support::generated(
        "own_retries",
        vec![
            ("boot/pxelinux.cfg/default", config.as_bytes().to_vec()),
            ("web/vmlinuz", b"KERNEL".to_vec()),
        ],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=1".to_string());
    case.stub_env
        .insert("STUB_WGET_STATUS".into(), "web/vmlinuz 500 3".into());
    let run = support::run_guest(&case);
    let m = support::markers(&run);
    assert_eq!(
        count(
            &m,
            "transfer of http://10.0.2.2/web/vmlinuz failed; retry 1/1 in 2s"
        ),
        2,
        "{m:#?}"
    );
    assert_eq!(kernel_requests(&run), 4, "{}", run.calls);
    let sleeps: Vec<&str> = run
        .calls
        .lines()
        .filter(|l| l.starts_with("sleep "))
        .collect();
    assert_eq!(sleeps, ["sleep 2", "sleep 2"], "{}", run.calls);
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    assert!(
        m.iter()
            .any(|l| l.starts_with("boot label=b ") && l.ends_with(" cmdline=second")),
        "{m:#?}"
    );
}

/// Seconds the stalled stub wget lived (its "wget-stall start|end" lines).
fn stall_seconds(run: &support::GuestRun) -> Option<f64> {
    let at = |what: &str| -> Option<f64> {
        run.calls
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|t| t.trim().parse().ok())
    };
    Some(at("wget-stall end ")? - at("wget-stall start ")?)
}

#[test]
fn the_watchdog_of_a_finished_download_is_gone_and_a_stall_waits_pxe_timeout() {
    // The kernel arrives; the initrd stalls. Only the initrd's watchdog
    // gives up, and only after pxe.timeout seconds without a byte: its
    // first tick sees the file appear, so 2 idle seconds take 3 ticks.
    // `_last` and `_idle` from the kernel command line change nothing.
    let run = support::run_guest(&http_case(
        "http_stall_initrd",
        "console=ttysclp0 pxe.retries=0 pxe.timeout=2",
        &[
            ("STUB_WGET_STALL", "web/initrd.img"),
            ("_last", "0"),
            ("_idle", "5"),
        ],
    ));
    let m = support::markers(&run);
    in_order(
        &m,
        &[
            "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
            "no data from http://10.0.2.2/web/initrd.img for 2s; giving up this try",
            "ERROR cannot fetch initrd http://10.0.2.2/web/initrd.img",
        ],
    );
    assert!(
        !m.iter()
            .any(|l| l.starts_with("no data from http://10.0.2.2/web/vmlinuz")),
        "the kernel's watchdog outlived its download: {m:#?}"
    );
    let secs = stall_seconds(&run);
    // 3 ticks of `sleep 1` from the watchdog's start; the stub starts a
    // little after it
    assert!(
        secs.is_some_and(|s| s >= 2.5),
        "gave up after {secs:?} s:\n{}",
        run.calls
    );
}

/// `pxe.debug` shows each watchdog tick: with pxe.timeout=2 a stalled
/// download is given up at the tick that counts its second idle second,
/// not a tick later (the ticks are counted, not timed, so load cannot
/// change the result).
#[test]
fn the_watchdog_gives_up_at_the_tick_that_reaches_pxe_timeout() {
    let run = support::run_guest(&http_case(
        "http_stall_ticks",
        "console=ttysclp0 pxe.retries=0 pxe.timeout=2 pxe.debug",
        &[("STUB_WGET_STALL", "web/initrd.img")],
    ));
    let m = support::markers(&run);
    let ticks: Vec<&str> = m
        .iter()
        .filter_map(|l| l.strip_prefix("debug: watchdog: http://10.0.2.2/web/initrd.img "))
        .collect();
    assert_eq!(
        ticks,
        ["0, idle 0s", "0, idle 1s", "0, idle 2s"],
        "watchdog ticks of the stalled initrd: {m:#?}"
    );
    in_order(
        &m,
        &[
            "debug: watchdog: http://10.0.2.2/web/initrd.img 0, idle 2s",
            "no data from http://10.0.2.2/web/initrd.img for 2s; giving up this try",
            "ERROR cannot fetch initrd http://10.0.2.2/web/initrd.img",
        ],
    );
}

/// A tree whose one label fetches its kernel and initrd over `scheme`,
/// with no ONERROR: a failed fetch ends in the rescue shell, and the
/// guest's download directory is as the failure left it.
fn no_onerror_case(scheme: &str, name: &str, stub_env: &[(&str, &str)]) -> support::Case {
    let config = format!(
        "DEFAULT web\nLABEL web\nKERNEL {scheme}://10.0.2.2/web/vmlinuz\n\
         INITRD {scheme}://10.0.2.2/web/initrd.img\n"
    );
    let mut c = support::generated(
        name,
        vec![
            ("boot/pxelinux.cfg/default", config.into_bytes()),
            ("web/vmlinuz", b"KERNEL".to_vec()),
            ("web/initrd.img", b"INITRD".to_vec()),
        ],
    );
    c.cmdline = Some("console=ttysclp0 pxe.retries=0".to_string());
    c.stub_env = stub_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    c
}

/// A download that fails leaves no file in the guest (a partial kernel or
/// initrd would sit in tmpfs, in RAM): a connection cut after 3 bytes, an
/// FTP file longer than its SIZE reply (wget exits 0), and an earlier
/// label's kernel when the ONERROR label's kernel is not found.
#[test]
fn a_failed_download_leaves_no_file() {
    for (scheme, name, env) in [
        ("http", "left_after_cut", ("STUB_WGET_CUT", "web/vmlinuz 3")),
        (
            "ftp",
            "left_after_ftp_cut",
            ("STUB_WGET_CUT", "web/vmlinuz 3"),
        ),
        (
            "ftp",
            "left_after_size",
            ("STUB_WGET_SIZE", "web/vmlinuz 9"),
        ),
    ] {
        let run = support::run_guest(&no_onerror_case(scheme, name, &[env]));
        let display = format!("{scheme}://10.0.2.2/web/vmlinuz");
        support::assert_failed_kernel_fetch_left_nothing(&run, name, &display);
    }
    // The first label's kernel arrives, its initrd is missing; ONERROR's
    // kernel is not found (404: nothing written). The first kernel must
    // not stay behind under the name the failed fetch was writing.
    let mut case = support::generated(
        "left_by_an_earlier_label",
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"DEFAULT a\nONERROR b\nLABEL a\nKERNEL vmlinuz\nINITRD missing.img\n\
                  LABEL b\nKERNEL http://10.0.2.2/web/missing\n"
                    .to_vec(),
            ),
            ("boot/vmlinuz", b"KERNEL".to_vec()),
        ],
    );
    case.cmdline = Some("console=ttysclp0 pxe.retries=0".to_string());
    let run = support::run_guest(&case);
    in_order(
        &support::markers(&run),
        &[
            "fetch boot/vmlinuz 6 bytes",
            "ERROR cannot fetch initrd boot/missing.img",
            "onerror b",
            "ERROR cannot fetch kernel http://10.0.2.2/web/missing",
        ],
    );
    assert!(
        !run.tmp_left.iter().any(|f| f == "kernel"),
        "an earlier label's kernel stayed behind: {:?}",
        run.tmp_left
    );
}

/// busybox wget reads an FTP file up to its SIZE reply: a reply larger
/// than the file is a short read (exit 1): the size mismatch, retried; a
/// smaller one gives a file cut at that size with exit 0, which no size
/// check can see (the image check is what is left: README.md).
#[test]
fn wget_reads_an_ftp_file_up_to_its_size_reply() {
    let run = support::run_guest(&url_case(
        "ftp",
        "ftp_size_once",
        "console=ttysclp0 pxe.retries=1",
        &[("STUB_WGET_SIZE", "web/vmlinuz 9 1")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for ftp://10.0.2.2/web/vmlinuz: server announced 9 bytes, received 6",
            "transfer of ftp://10.0.2.2/web/vmlinuz failed; retry 1/1 in 2s",
            "fetch ftp://10.0.2.2/web/vmlinuz 6 bytes",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    let run = support::run_guest(&url_case(
        "ftp",
        "ftp_size_small",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_WGET_SIZE", "web/vmlinuz 3")],
    ));
    in_order(
        &support::markers(&run),
        &["fetch ftp://10.0.2.2/web/vmlinuz 3 bytes"],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KER"[..]));
}

/// A Content-Length with leading zeros is the same number (busybox wget
/// reads `0000006` as 6): the files arrive and boot. Cut short, the
/// mismatch is reported with the length as the server wrote it, for a
/// `Content-Length` header in title case and an FTP SIZE reply too.
#[test]
fn a_content_length_with_leading_zeros_is_the_same_number() {
    let run = support::run_guest(&http_case(
        "http_zeros",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_WGET_ZEROS", "0000")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "fetch http://10.0.2.2/web/vmlinuz 6 bytes",
            "fetch http://10.0.2.2/web/initrd.img 6 bytes",
            "boot label=web kernel=http://10.0.2.2/web/vmlinuz initrd=http://10.0.2.2/web/initrd.img cmdline=",
        ],
    );
    assert_eq!(run.kexec_kernel.as_deref(), Some(&b"KERNEL"[..]));
    let run = support::run_guest(&http_case(
        "http_zeros_cut",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_WGET_ZEROS", "0"), ("STUB_WGET_CUT", "web/vmlinuz 3")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for http://10.0.2.2/web/vmlinuz: server announced 06 bytes, received 3",
            "ERROR cannot fetch kernel http://10.0.2.2/web/vmlinuz",
            "onerror local",
        ],
    );
    // Header names are case-insensitive: a server's "Content-Length".
    let run = support::run_guest(&http_case(
        "http_title_case_cut",
        "console=ttysclp0 pxe.retries=0",
        &[
            ("STUB_WGET_LENGTH_NAME", "Content-Length"),
            ("STUB_WGET_CUT", "web/vmlinuz 3"),
        ],
    ));
    in_order(
        &support::markers(&run),
        &["size mismatch for http://10.0.2.2/web/vmlinuz: server announced 6 bytes, received 3"],
    );
    let run = support::run_guest(&url_case(
        "ftp",
        "ftp_zeros_cut",
        "console=ttysclp0 pxe.retries=0",
        &[("STUB_WGET_ZEROS", "0"), ("STUB_WGET_CUT", "web/vmlinuz 3")],
    ));
    in_order(
        &support::markers(&run),
        &[
            "size mismatch for ftp://10.0.2.2/web/vmlinuz: server announced 06 bytes, received 3",
            "ERROR cannot fetch kernel ftp://10.0.2.2/web/vmlinuz",
        ],
    );
}
