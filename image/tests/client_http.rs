//! The guest client's HTTP transfers (busybox wget, stubbed: see
//! `tests/client/stubs/wget`): headers asked for with `-S`, the size checked
//! against `Content-Length`, 4xx = not found (never retried), 5xx and cut
//! connections retried with backoff and then ONERROR, a stalled connection
//! given up after `pxe.timeout` seconds, the `fetch` marker's byte count.
//! Path resolution itself is the corpus's business (`client.rs`).

#[path = "client/support.rs"]
mod support;

/// A tree whose default label fetches its kernel and initrd over HTTP and
/// whose ONERROR label boots a TFTP kernel.
fn http_case(name: &str, cmdline: &str, stub_env: &[(&str, &str)]) -> support::Case {
    let mut c = support::generated(
        name,
        vec![
            (
                "boot/pxelinux.cfg/default",
                b"DEFAULT web\nONERROR local\n\
                  LABEL web\nKERNEL http://10.0.2.2/web/vmlinuz\nINITRD http://10.0.2.2/web/initrd.img\n\
                  LABEL local\nKERNEL tftp-kernel\n"
                    .to_vec(),
            ),
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
