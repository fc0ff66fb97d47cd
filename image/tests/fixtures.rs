//! The fixture fetcher against the real mirror (read from this machine's apt
//! configuration): a vanished pinned version and a checksum mismatch each end
//! in a clear error naming the package and the command that re-pins.

mod support;

use s390_pxelinux::fixtures::lock::{Lock, Role};
use support::*;

/// The embedded lock with busybox first (so it is fetched first) after `edit`.
fn lock_with_busybox(edit: impl FnOnce(&mut s390_pxelinux::fixtures::lock::PinnedPackage)) -> Lock {
    let mut lock = Lock::embedded().expect("embedded lock");
    lock.packages.sort_by_key(|p| p.role != Role::Busybox);
    edit(&mut lock.packages[0]);
    lock
}

fn fetch_with(lock: &Lock) -> (Run, tempfile::TempDir) {
    let dir = scratch();
    let lock_path = dir.path().join("packages.lock");
    lock.save(&lock_path).expect("save lock");
    let cache = dir.path().join("cache");
    let run = s390_pxelinux(&[
        "fixtures",
        "fetch",
        "--lock",
        s(&lock_path),
        "--cache-dir",
        s(&cache),
    ]);
    (run, dir)
}

#[test]
fn vanished_version_names_the_package_and_the_fix() {
    let lock = lock_with_busybox(|p| p.version = "1:0.0.0-vanished".into());
    let (run, _dir) = fetch_with(&lock);
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("package busybox-static version 1:0.0.0-vanished"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("s390-pxelinux fixtures update"),
        "{}",
        run.stderr
    );
}

#[test]
fn checksum_mismatch_names_the_package_and_both_sums() {
    let lock = lock_with_busybox(|p| p.sha256 = "0".repeat(64));
    let (run, dir) = fetch_with(&lock);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("package busybox-static") && run.stderr.contains(&"0".repeat(64)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("SHA-256"), "{}", run.stderr);
    let unpacked = dir.path().join("cache/unpacked");
    let n = std::fs::read_dir(&unpacked).map(|d| d.count()).unwrap_or(0);
    assert_eq!(n, 0, "nothing may be unpacked from a bad download");
}

#[test]
fn warm_cache_needs_no_apt() {
    fixtures();
    // PATH without apt: a warm cache must not run it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"))
        .args(["fixtures", "fetch"])
        .env("PATH", "/nonexistent")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kernel 6.12:"));
}

#[test]
fn the_target_tools_base_holds_klibcs_programs_and_their_interpreter() {
    use s390_pxelinux::cpio::Node;
    let tools = &fixtures().target_tools;
    let a = s390_pxelinux::initramfs::base_with_target_tools(tools).expect("target tools base");
    for p in s390_pxelinux::fixtures::TARGET_TOOL_PROGRAMS {
        assert!(
            matches!(a.get(&format!("/bin/{p}")), Some((Node::File(d), 0o755)) if !d.is_empty()),
            "/bin/{p} missing"
        );
    }
    let lib = tools
        .library
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    assert!(lib.starts_with("klibc-") && lib.ends_with(".so"), "{lib}");
    assert!(a.contains(&format!("/lib/{lib}")), "/lib/{lib} missing");
    assert!(matches!(
        a.get("/dev/console"),
        Some((Node::CharDev(5, 1), _))
    ));
    assert!(!a.contains("/bin/busybox"));
    // The point of klibc here: the whole base is a fraction of busybox-static.
    let raw = a.write_newc(Vec::new(), 0).expect("newc").len() as u64;
    let busybox = std::fs::metadata(&fixtures().busybox)
        .expect("busybox")
        .len();
    assert!(
        raw * 4 < busybox,
        "target tools base {raw} bytes, busybox {busybox}"
    );
}

#[test]
fn a_target_tool_that_asks_for_another_interpreter_is_an_error_naming_both() {
    let real = &fixtures().target_tools;
    let dir = scratch();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for p in s390_pxelinux::fixtures::TARGET_TOOL_PROGRAMS {
        std::fs::copy(real.bin.join(p), bin.join(p)).expect("copy tool");
    }
    let library = dir.path().join("klibc-other.so");
    std::fs::copy(&real.library, &library).expect("copy library");
    let tools = s390_pxelinux::fixtures::TargetTools { bin, library };
    let err = s390_pxelinux::initramfs::base_with_target_tools(&tools)
        .expect_err("a renamed library must not pass")
        .to_string();
    let wanted = format!(
        "/lib/{}",
        real.library
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
    );
    for needle in ["bin/sh", wanted.as_str(), "/lib/klibc-other.so"] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

#[test]
fn a_source_tarball_with_another_checksum_is_refused_and_not_kept() {
    let mut lock = Lock::embedded().expect("embedded lock");
    let atftp = lock
        .sources
        .iter_mut()
        .find(|s| s.name == "atftp")
        .expect("atftp source");
    atftp.sha256 = "0".repeat(64);
    let file = atftp.file.clone();
    let cache = scratch();
    let err = s390_pxelinux::fixtures::ensure_source(&lock, cache.path(), "atftp")
        .expect_err("a wrong pin must not pass")
        .to_string();
    assert!(
        err.contains("package atftp version 0.8.0-3") && err.contains(&"0".repeat(64)),
        "{err}"
    );
    assert!(err.contains("SHA-256"), "{err}");
    let sources = cache.path().join("sources");
    let left: Vec<String> = std::fs::read_dir(&sources)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{file}: a bad download was kept: {left:?}");
}
