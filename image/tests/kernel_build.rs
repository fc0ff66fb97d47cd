//! The minimal kernel (`s390-pxelinux kernel build`, `build --loader
//! minimal`) on the real pinned kernel source and the host's cross
//! toolchain: what it produces, what pxelinux.0 made from it carries, the
//! error without a compiler, and (slow, nightly) a build killed midway and
//! two builds compared byte for byte.

mod support;

use s390_pxelinux::fixtures::{self, lock::Lock};
use s390_pxelinux::minimal_kernel;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// What `kernel build --json` names: the kernel's four files and the
/// loader's static kexec and atftp.
const SIX_FILES: [&str; 6] = [
    "image",
    "config",
    "system_map",
    "modules_builtin",
    "kexec",
    "atftp",
];

/// The minimal kernel in the default cache (built on first use; `ci/test`
/// builds it before the tests).
fn minimal() -> minimal_kernel::MinimalKernel {
    let lock = Lock::embedded().expect("lock");
    minimal_kernel::ensure(&lock, &fixtures::default_cache_dir()).expect("minimal kernel")
}

#[test]
fn the_minimal_kernel_has_every_fragment_option_and_kexec_without_modules() {
    let k = minimal();
    assert!(
        k.kernel.release.ends_with(minimal_kernel::RELEASE_SUFFIX),
        "{}",
        k.kernel.release
    );
    let config = std::fs::read_to_string(&k.config).expect("config");
    let fragment = minimal_kernel::fragment::parse(minimal_kernel::fragment::FRAGMENT).unwrap();
    let dropped = minimal_kernel::fragment::dropped(&fragment, &config);
    assert!(dropped.is_empty(), "{dropped:?}");
    assert!(config.lines().any(|l| l == "CONFIG_KEXEC=y"));
    assert!(config.lines().any(|l| l == "# CONFIG_MODULES is not set"));
    // The image is an s390 kernel the builder accepts, with its release.
    let bytes = std::fs::read(&k.kernel.image).expect("image");
    let i = s390_pxelinux::inspect::inspect(&bytes).expect("s390 header");
    assert_eq!(i.kernel_release.as_deref(), Some(k.kernel.release.as_str()));
    // System.map names the kexec system call; modules.builtin lists the
    // virtio drivers the initramfs no longer carries.
    let map = std::fs::read_to_string(&k.system_map).expect("System.map");
    assert!(
        map.contains(" __s390x_sys_kexec_load"),
        "no kexec_load in System.map"
    );
    let builtin = std::fs::read_to_string(&k.modules_builtin).expect("modules.builtin");
    assert!(builtin.contains("virtio_net.ko"), "{builtin}");
    assert!(builtin.contains("virtio_blk.ko"), "{builtin}");
}

#[test]
fn a_second_kernel_build_is_a_cache_hit_that_prints_the_six_files() {
    let k = minimal();
    let t = Instant::now();
    let out = scratch();
    let r = s390_pxelinux(&[
        "kernel",
        "build",
        "--json",
        "--output-dir",
        out.path().to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    assert!(t.elapsed() < Duration::from_secs(30), "a cache hit rebuilt");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["release"], k.kernel.release.as_str());
    for key in SIX_FILES {
        let p = PathBuf::from(v[key].as_str().expect(key));
        assert!(p.starts_with(out.path()), "{key}: {}", p.display());
        assert!(p.is_file(), "{key}: {}", p.display());
    }
    assert_eq!(
        std::fs::read(out.path().join(k.kernel.image.file_name().unwrap())).unwrap(),
        std::fs::read(&k.kernel.image).unwrap()
    );
}

#[test]
fn build_with_the_minimal_loader_carries_no_modules_and_inspect_says_minimal() {
    let k = minimal();
    let d = scratch();
    let out = d.path().join("pxelinux.0");
    let r = s390_pxelinux(&[
        "build",
        "--loader",
        "minimal",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.ok, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(report["kernel_release"], k.kernel.release.as_str());
    assert_eq!(report["modules"], serde_json::json!([]));
    let i = s390_pxelinux(&["inspect", out.to_str().unwrap(), "--json"]);
    assert!(i.ok, "{}", i.stderr);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("json");
    assert_eq!(v["loader"], "minimal");
    assert_eq!(v["modules"], 0);
    let paths = initrd_paths(&v);
    assert!(!paths.iter().any(|p| p.ends_with(".ko")), "{paths:?}");
    assert!(paths.contains(&"init"), "{paths:?}");
    // Its kexec and atftp are the static loader tools: no ELF interpreter,
    // no shared library, no libstdbuf to preload.
    assert!(paths.contains(&"sbin/kexec"), "{paths:?}");
    assert!(paths.contains(&"usr/bin/atftp"), "{paths:?}");
    let shared = |p: &&str| p.ends_with(".so") || p.contains(".so.");
    assert!(!paths.iter().any(shared), "{paths:?}");
    let text = s390_pxelinux(&["inspect", out.to_str().unwrap()]);
    assert!(
        text.stdout
            .contains("loader:         minimal (s390-pxelinux kernel build"),
        "{}",
        text.stdout
    );
    // The Debian loader, for contrast, carries its modules.
    let deb = d.path().join("debian.0");
    let r = s390_pxelinux(&["build", "-o", deb.to_str().unwrap()]);
    assert!(r.ok, "{}", r.stderr);
    let i = s390_pxelinux(&["inspect", deb.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).expect("json");
    assert_eq!(v["loader"], "other");
    assert!(v["modules"].as_u64().unwrap_or(0) >= 2, "{}", v["modules"]);
    let paths = initrd_paths(&v);
    assert!(paths.iter().any(|p| p.ends_with("libc.so.6")), "{paths:?}");
}

#[test]
fn the_loader_tools_are_static_s390x_programs() {
    use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
    let lock = Lock::embedded().expect("lock");
    let tools = s390_pxelinux::loader_tools::ensure(&lock, &fixtures::default_cache_dir())
        .expect("loader tools");
    for path in [&tools.kexec, &tools.atftp] {
        let data = std::fs::read(path).expect("read");
        let elf = ElfFile64::<object::BigEndian>::parse(&*data)
            .unwrap_or_else(|e| panic!("{}: not a 64-bit big-endian ELF: {e}", path.display()));
        let header = elf.elf_header();
        let endian = elf.endian();
        assert_eq!(
            header.e_machine(endian),
            object::elf::EM_S390,
            "{}",
            path.display()
        );
        let segments = header
            .program_headers(endian, &*data)
            .expect("program headers");
        assert!(
            !segments
                .iter()
                .any(|s| s.p_type(endian) == object::elf::PT_INTERP
                    || s.p_type(endian) == object::elf::PT_DYNAMIC),
            "{} is dynamically linked",
            path.display()
        );
    }
    // The stderr buffer is linked into atftp: its `_STDBUF_E` check is there.
    let atftp = std::fs::read(&tools.atftp).expect("atftp");
    assert!(
        atftp.windows(9).any(|w| w == b"_STDBUF_E"),
        "atftp lacks the stderr buffer"
    );
}

/// Runs `s390-pxelinux args` with no program on PATH and no downloads:
/// it must fail, and its stderr must hold every text of `wants`.
fn fails_without_tools_naming(args: &[&str], wants: &[&str]) {
    let r = s390_pxelinux_env(
        args,
        &[("PATH", "/nonexistent"), ("S390_PXELINUX_OFFLINE", "1")],
    );
    assert!(!r.ok, "succeeded without tools: {}", r.stdout);
    for want in wants {
        assert!(r.stderr.contains(want), "missing {want:?} in: {}", r.stderr);
    }
}

#[test]
fn without_a_cross_compiler_the_error_names_the_packages_and_the_install_command() {
    let cache = scratch();
    fails_without_tools_naming(
        &[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "kernel",
            "build",
        ],
        &[
            "s390x-linux-gnu-gcc (package gcc-s390x-linux-gnu)",
            "flex (package flex)",
            "apt-get install",
            "ci/install-deps",
        ],
    );
    assert!(
        !cache.path().join("minimal-kernel").exists()
            || std::fs::read_dir(cache.path().join("minimal-kernel"))
                .unwrap()
                .flatten()
                .all(|e| e.file_name().to_string_lossy().starts_with('.')),
        "a failed build left a cache entry"
    );
}

/// A cache directory for a from-scratch build: the pinned source package
/// and the loader tools' source tarballs are shared with the default cache
/// (read-only use), nothing else is there.
fn cache_with_source() -> tempfile::TempDir {
    let lock = Lock::embedded().expect("lock");
    let main = fixtures::default_cache_dir();
    fixtures::ensure_kernel_source(&lock, &main).expect("kernel source");
    for s in &lock.sources {
        fixtures::ensure_source(&lock, &main, &s.name).expect("source tarball");
    }
    let d = scratch();
    for shared in ["unpacked", "sources"] {
        std::os::unix::fs::symlink(main.join(shared), d.path().join(shared)).unwrap();
    }
    d
}

/// Processes whose working directory lies under `dir`.
fn processes_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(dir) {
            let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{} {}",
                e.file_name().to_string_lossy(),
                cmd.replace('\0', " ")
            ));
        }
    }
    found
}

/// Starts `kernel build` on `cache` and waits for a stderr line containing `until`.
fn start_build_until(cache: &Path, until: &str) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"))
        .args(["--cache-dir", cache.to_str().unwrap(), "kernel", "build"])
        .env("S390_PXELINUX_OFFLINE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(Instant::now() < deadline, "no {until:?} within 600 s");
        match lines.next() {
            Some(Ok(l)) if l.contains(until) => break,
            Some(Ok(_)) => {}
            _ => panic!("kernel build ended before {until:?}: {:?}", child.wait()),
        }
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn wait_no_processes_under(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = processes_under(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived the build: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "slow (~2 min): run by ci/nightly and before changing the build"]
fn a_build_killed_midway_leaves_no_entry_no_process_and_is_swept_by_the_next() {
    let cache = cache_with_source();
    let root = cache.path().join("minimal-kernel");
    let mut first = start_build_until(cache.path(), "compiling with");
    std::thread::sleep(Duration::from_secs(3));
    first.kill().expect("kill");
    let _ = first.wait();
    wait_no_processes_under(cache.path());
    let names = || -> Vec<String> {
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let left = names();
    let stale: Vec<&String> = left.iter().filter(|n| n.starts_with(".build-")).collect();
    assert_eq!(stale.len(), 1, "{left:?}");
    assert!(
        left.iter()
            .all(|n| n.starts_with('.') || n.ends_with(".log")),
        "a killed build left an entry: {left:?}"
    );
    // The next build removes the dead one's tree before it starts its own.
    let mut second = start_build_until(cache.path(), "unpacking the kernel source");
    assert!(!root.join(stale[0]).exists(), "{:?}", names());
    second.kill().expect("kill");
    let _ = second.wait();
    wait_no_processes_under(cache.path());
}

#[test]
#[ignore = "slow (two full kernel builds): run by ci/nightly kernel-reproducible"]
fn two_builds_are_byte_identical() {
    let a = cache_with_source();
    let b = cache_with_source();
    let build = |c: &Path| {
        let r = s390_pxelinux_env(
            &[
                "--cache-dir",
                c.to_str().unwrap(),
                "kernel",
                "build",
                "--json",
            ],
            &[("S390_PXELINUX_OFFLINE", "1")],
        );
        assert!(r.ok, "{}", r.stderr);
        serde_json::from_str::<serde_json::Value>(&r.stdout).expect("json")
    };
    let (x, y) = (build(a.path()), build(b.path()));
    for key in SIX_FILES {
        let read = |v: &serde_json::Value| std::fs::read(v[key].as_str().unwrap()).unwrap();
        assert!(read(&x) == read(&y), "{key} differs between two builds");
    }
}

/// A cache sharing the default cache's packages, kernel source, source
/// tarballs, sysroot and minimal kernel (read-only use), with no loader
/// tools: `kernel build` on it finds the kernel and builds only the tools.
fn cache_without_loader_tools() -> tempfile::TempDir {
    minimal();
    let d = cache_with_source();
    let main = fixtures::default_cache_dir();
    for e in std::fs::read_dir(&main).expect("cache").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "minimal-kernel" || name.starts_with("sysroot-") {
            std::os::unix::fs::symlink(e.path(), d.path().join(&name)).unwrap();
        }
    }
    d
}

#[test]
fn without_autotools_the_loader_tools_error_names_the_packages_and_nothing_is_written() {
    let cache = cache_without_loader_tools();
    let out = cache.path().join("pxelinux.0");
    // No compiler and no autotools on PATH: the kernel is found in the cache
    // (an entry of this source and fragment), the loader tools are not.
    fails_without_tools_naming(
        &[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "build",
            "--loader",
            "minimal",
            "-o",
            out.to_str().unwrap(),
        ],
        &[
            "the build of the minimal loader's static kexec and atftp needs",
            "autoconf (package autoconf)",
            "automake (package automake)",
            "s390x-linux-gnu-gcc (package gcc-s390x-linux-gnu)",
            "`apt-get install make autoconf automake gcc-s390x-linux-gnu binutils-s390x-linux-gnu`",
            "ci/install-deps",
        ],
    );
    assert!(!out.exists(), "a failed build wrote {}", out.display());
}

#[test]
#[ignore = "slow (~30 s, two loader tools builds): run by ci/nightly kernel-reproducible"]
fn a_loader_tools_build_killed_midway_leaves_no_entry_and_the_next_completes() {
    let cache = cache_without_loader_tools();
    let root = cache.path().join("loader-tools");
    let mut first = start_build_until(cache.path(), "loader tools: compiling kexec-tools");
    std::thread::sleep(Duration::from_secs(1));
    first.kill().expect("kill");
    let _ = first.wait();
    wait_no_processes_under(cache.path());
    let left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter()
            .all(|n| n.starts_with('.') || n.ends_with(".log")),
        "a killed build left an entry: {left:?}"
    );
    assert!(left.iter().any(|n| n.starts_with(".build-")), "{left:?}");
    // The next run sweeps the dead build and completes.
    let r = s390_pxelinux_env(
        &[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "kernel",
            "build",
            "--json",
        ],
        &[("S390_PXELINUX_OFFLINE", "1")],
    );
    assert!(r.ok, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    for key in ["kexec", "atftp"] {
        let p = PathBuf::from(v[key].as_str().expect(key));
        assert!(p.starts_with(&root), "{key}: {}", p.display());
    }
    let stale: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".build-"))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
}
