//! Builder integration tests on the real pinned Debian s390x inputs: output
//! properties, determinism, module and ELF resolution, every bad input, and
//! a build killed (SIGKILL) at any moment, which never leaves a partial output.

mod support;

use s390_pxelinux::initramfs::ModuleTree;
use std::time::Duration;
use support::*;

#[test]
fn default_build_is_bootable_shape_and_byte_identical_twice() {
    fixtures();
    let dir = scratch();
    let a = dir.path().join("a.0");
    let b = dir.path().join("b.0");
    let r1 = s390_pxelinux(&["build", "-o", s(&a)]);
    assert!(r1.ok, "{}", r1.stderr);
    let r2 = s390_pxelinux(&["build", "-o", s(&b)]);
    assert!(r2.ok, "{}", r2.stderr);
    let (da, db) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert!(da == db, "two builds from the same inputs differ");

    let i = s390_pxelinux(&["inspect", "--json", s(&a)]);
    assert!(i.ok, "{}", i.stderr);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("json");
    assert_eq!(v["cmdline"], "console=ttysclp0 quiet cryptomgr.notests");
    assert_eq!(
        v["kernel_release"],
        fixtures().kernel("6.1").expect("6.1").release.as_str()
    );
    let initrd = &v["initrd"];
    assert_eq!(initrd["compression"], "zstd");
    let offset = initrd["offset"].as_u64().expect("offset");
    assert_eq!(offset % 4096, 0, "initrd must be page aligned");
    assert_eq!(
        offset + initrd["size"].as_u64().expect("size"),
        da.len() as u64
    );
    let paths: Vec<String> = initrd["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or_default().to_string())
        .collect();
    for must in [
        "init",
        "bin/busybox",
        "bin/sh",
        "bin/udhcpc",
        "sbin/kexec",
        "usr/bin/atftp",
        "usr/libexec/coreutils/libstdbuf.so",
        "lib/ld64.so.1",
        "lib/s390x-linux-gnu/libc.so.6",
        "lib/s390x-linux-gnu/libreadline.so.8",
        "lib/s390x-linux-gnu/libtinfo.so.6",
        "etc/pxe/modules",
        "dev/console",
    ] {
        assert!(
            paths.iter().any(|p| p == must),
            "initramfs lacks {must}: {paths:?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.ends_with("/virtio_net.ko")),
        "virtio_net missing"
    );
}

#[test]
fn source_date_epoch_changes_only_mtimes() {
    let dir = scratch();
    let out = dir.path().join("p.0");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"))
        .args(["build", "--compression", "gzip", "-o", s(&out)])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("run");
    assert!(run.status.success());
    let data = std::fs::read(&out).expect("read");
    let insp = s390_pxelinux::inspect::inspect(&data).expect("inspect");
    let initrd = insp.initrd.expect("initrd");
    let raw = s390_pxelinux::compress::decompress(&data[initrd.offset as usize..]).expect("gunzip");
    // newc header: mtime is the 6th 8-hex-digit field after the magic.
    assert_eq!(&raw[0..6], b"070701");
    assert_eq!(
        &raw[6 + 8 * 5..6 + 8 * 6],
        format!("{:08x}", 1_700_000_000u32).as_bytes()
    );
}

#[test]
fn modules_resolve_with_dependencies_first_on_both_real_kernels() {
    for id in ["6.1", "6.12"] {
        let k = fixtures().kernel(id).expect("kernel");
        let tree = ModuleTree::open(&k.modules, &k.release).expect("tree");
        let names = ["virtio_net".to_string(), "ext4".to_string()];
        let order: Vec<String> = tree
            .resolve(&names, &[])
            .expect("resolve")
            .into_iter()
            .map(|m| m.name)
            .collect();
        let pos = |n: &str| {
            order
                .iter()
                .position(|m| m == n)
                .unwrap_or_else(|| panic!("{id}: {n} missing from {order:?}"))
        };
        assert!(
            pos("failover") < pos("net_failover") && pos("net_failover") < pos("virtio_net"),
            "{id}: {order:?}"
        );
        assert!(
            pos("jbd2") < pos("ext4") && pos("mbcache") < pos("ext4"),
            "{id}: {order:?}"
        );
        let m = tree
            .resolve(&["virtio_blk".to_string()], &[])
            .expect("virtio_blk");
        assert!(
            m[0].guest_path.ends_with("/virtio_blk.ko"),
            "{}",
            m[0].guest_path
        );
        assert_eq!(
            &m[0].data[..4],
            b"\x7fELF",
            "{id}: module stored decompressed"
        );
        assert!(
            tree.is_builtin("af_packet"),
            "{id}: af_packet is built in on Debian"
        );
    }
}

#[test]
fn kexec_closure_is_found_inside_the_sysroot() {
    let f = fixtures();
    let files = s390_pxelinux::build::elf_closure(&f.kexec, &f.sysroot).expect("resolve");
    let guest: Vec<&str> = files.keys().map(String::as_str).collect();
    // libc itself needs the loader by its soname, found in the multiarch dir.
    assert_eq!(
        guest,
        [
            "/lib/ld64.so.1",
            "/lib/s390x-linux-gnu/ld64.so.1",
            "/lib/s390x-linux-gnu/libc.so.6"
        ]
    );
    for host in files.values() {
        assert!(
            host.starts_with(&f.sysroot),
            "{} escapes the sysroot",
            host.display()
        );
    }
}

#[test]
fn without_a_tftp_client_there_is_no_libstdbuf_either() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let r = s390_pxelinux(&["build", "--no-tftp-client", "-o", s(&out)]);
    assert!(r.ok, "{}", r.stderr);
    let i = s390_pxelinux(&["inspect", "--json", s(&out)]);
    assert!(i.ok, "{}", i.stderr);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("json");
    let paths = initrd_paths(&v);
    assert!(paths.contains(&"sbin/kexec"), "{paths:?}");
    for absent in ["usr/bin/atftp", "usr/libexec/coreutils/libstdbuf.so"] {
        assert!(!paths.contains(&absent), "{absent} in {paths:?}");
    }
}

#[test]
fn tftp_client_closure_is_found_inside_the_sysroot() {
    let f = fixtures();
    let files = s390_pxelinux::build::elf_closure(&f.tftp_client, &f.sysroot).expect("resolve");
    let guest: Vec<&str> = files.keys().map(String::as_str).collect();
    for lib in [
        "/lib/s390x-linux-gnu/libc.so.6",
        "/lib/s390x-linux-gnu/libreadline.so.8",
        "/lib/s390x-linux-gnu/libtinfo.so.6",
    ] {
        assert!(guest.contains(&lib), "atftp closure lacks {lib}: {guest:?}");
    }
}

#[test]
fn tftp_client_with_a_library_missing_is_refused_by_name() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let f = fixtures();
    // A sysroot with kexec's closure but without libreadline.
    let sysroot = dir.path().join("sysroot");
    for (guest, host) in s390_pxelinux::build::elf_closure(&f.kexec, &f.sysroot).expect("resolve") {
        let dest = sysroot.join(guest.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&host, &dest).expect("copy");
    }
    let run = s390_pxelinux(&[
        "build",
        "-o",
        s(&out),
        "--kexec",
        s(&f.kexec),
        "--sysroot",
        s(&sysroot),
        "--tftp-client",
        s(&f.tftp_client),
    ]);
    assert_clear_error(&run, &["--tftp-client", "libreadline.so.8"], &out);
}

#[test]
fn not_an_s390_kernel_is_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let run = build_with_input(&out, "--kernel", "/bin/sh");
    assert_clear_error(
        &run,
        &["--kernel /bin/sh", "not an s390 Linux kernel"],
        &out,
    );
}

#[test]
fn truncated_kernel_is_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let k = std::fs::read(&fixtures().kernel("6.1").expect("k").image).expect("read");
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &k[..0x10100]).expect("write");
    let run = build_with_input(&out, "--kernel", s(&cut));
    assert_clear_error(&run, &["--kernel", "truncated"], &out);
}

#[test]
fn too_long_cmdline_is_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let long = "x".repeat(5000);
    assert_clear_error(
        &s390_pxelinux(&["build", "-o", s(&out), "--cmdline", &long]),
        &["--cmdline", "5000 bytes", "at most 4096"],
        &out,
    );
}

#[test]
fn unknown_module_is_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    assert_clear_error(
        &s390_pxelinux(&["build", "-o", s(&out), "--module", "no_such_mod"]),
        &["module no_such_mod not found"],
        &out,
    );
}

#[test]
fn modules_of_another_kernel_are_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let run = build_with_input(
        &out,
        "--modules",
        s(&fixtures().kernel("6.12").expect("k").modules),
    );
    assert_clear_error(&run, &["--modules", "6.12", "but the kernel is 6.1"], &out);
}

#[test]
fn busybox_must_be_static_s390x() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    for (bad, why) in [
        ("/bin/sh", "not an s390x binary"),
        (s(&fixtures().kexec), "not statically linked"),
    ] {
        let run = build_with_input(&out, "--busybox", bad);
        assert_clear_error(&run, &["--busybox", why], &out);
    }
}

#[test]
fn library_missing_from_sysroot_is_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let empty = dir.path().join("empty-sysroot");
    std::fs::create_dir(&empty).expect("mkdir");
    let run = build_with_input(&out, "--sysroot", s(&empty));
    assert_clear_error(&run, &["/lib/ld64.so.1", "not found in sysroot"], &out);
}

#[test]
fn unwritable_output_directory_is_refused() {
    let dir = scratch();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").expect("write");
    let out = not_a_dir.join("pxelinux.0");
    let r = s390_pxelinux(&["build", "-o", s(&out)]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains(&format!("output {}", out.display()))
            && r.stderr.contains("cannot create"),
        "{}",
        r.stderr
    );
}

#[test]
fn unknown_compression_is_refused() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    assert_clear_error(
        &s390_pxelinux(&["build", "-o", s(&out), "--compression", "lzo"]),
        &["--compression", "lzo"],
        &out,
    );
}

#[test]
fn a_failed_build_keeps_the_previous_output() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    std::fs::write(&out, b"previous").expect("write");
    let r = s390_pxelinux(&["build", "-o", s(&out), "--module", "no_such_mod"]);
    assert!(!r.ok);
    assert_eq!(std::fs::read(&out).expect("read"), b"previous");
}

#[test]
fn inspect_refuses_non_s390_and_truncated_files() {
    let r = s390_pxelinux(&["inspect", "/bin/sh"]);
    assert!(
        !r.ok && r.stderr.contains("/bin/sh") && r.stderr.contains("not an s390"),
        "{}",
        r.stderr
    );
    let dir = scratch();
    let built = dir.path().join("p.0");
    assert!(s390_pxelinux(&["build", "--compression", "zstd", "-o", s(&built)]).ok);
    let data = std::fs::read(&built).expect("read");
    let cut = dir.path().join("cut.0");
    std::fs::write(&cut, &data[..data.len() - 100]).expect("write");
    let r = s390_pxelinux(&["inspect", s(&cut)]);
    assert!(
        !r.ok && r.stderr.contains("outside the file"),
        "{}",
        r.stderr
    );
    let ok = s390_pxelinux(&["inspect", s(&built)]);
    assert!(
        ok.ok && ok.stdout.contains("zstd") && ok.stdout.contains("/sbin/kexec"),
        "{}",
        ok.stdout
    );
    // `inspect … | head`: the closed pipe ends it quietly, with success.
    for json in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"));
        cmd.arg("inspect").arg(&built);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait");
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "inspect (json {json}) into a closed pipe: {:?}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_old_or_the_new_image_and_its_temporaries_are_swept() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let old = complete_build(&out, &["--cmdline", "console=ttysclp0 previous"]);
    let new = complete_build(&out, &[]);
    let cold = cold_cache();
    let cold_args = ["--cache-dir", s(cold.path())];
    // Warm builds take ~0.1 s: these moments cover start, build and write;
    // the cold ones (compression, seconds) land before the write.
    let mut moments: Vec<(KillAt, &[&str])> = (0..12)
        .map(|i| (KillAt::After(Duration::from_millis(i * 10)), &[][..]))
        .collect();
    moments.extend([(KillAt::TemporaryAppears, &[][..]); 3]);
    moments.extend([300, 900].map(|ms| (KillAt::After(Duration::from_millis(ms)), &cold_args[..])));
    for previous in [Some(&old), None] {
        let mut kills_mid_write = 0;
        for (at, extra) in &moments {
            match previous {
                Some(bytes) => std::fs::write(&out, bytes).expect("previous output"),
                None => drop(std::fs::remove_file(&out)),
            }
            let killed = build_killed(&out, extra, *at);
            let context = format!("previous {}, killed {killed} at {at:?}", previous.is_some());
            assert_whole_or_absent(&out, &[&old, &new], previous.is_none(), &context);
            if killed && matches!(at, KillAt::TemporaryAppears) {
                kills_mid_write += !temporaries(dir.path()).is_empty() as usize;
            }
        }
        assert!(kills_mid_write > 0, "no kill landed during the write");
        assert_eq!(complete_build(&out, &[]), new);
        assert_eq!(
            temporaries(dir.path()),
            Vec::<String>::new(),
            "stale temporaries kept"
        );
    }
}

#[test]
fn missing_fixtures_name_the_packages_and_the_fetch_command() {
    let dir = scratch();
    let out = dir.path().join("pxelinux.0");
    let empty = dir.path().join("empty-cache");
    let build = ["build", "-o", s(&out), "--cache-dir", s(&empty)];
    let needles = [
        "fixtures missing from the cache",
        s(&empty),
        "busybox-static",
        "linux-image-6.1",
        "cargo run -p s390-pxelinux -- fixtures fetch",
    ];
    // Fetching forbidden by the knob: nothing runs, nothing is created.
    let offline = s390_pxelinux_env(&build, &[("S390_PXELINUX_OFFLINE", "1")]);
    assert_clear_error(&offline, &needles, &out);
    assert!(
        offline.stderr.contains("S390_PXELINUX_OFFLINE is set"),
        "{}",
        offline.stderr
    );
    assert!(!empty.exists(), "an offline build created the cache");
    // Fetching impossible: no apt on PATH (never reaches the network).
    let no_apt = s390_pxelinux_env(&build, &[("PATH", "/nonexistent")]);
    assert_clear_error(&no_apt, &needles, &out);
    assert!(
        no_apt.stderr.contains("cannot run apt-get"),
        "{}",
        no_apt.stderr
    );
}
