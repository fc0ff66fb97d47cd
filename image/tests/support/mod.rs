//! Support layer for the builder's integration tests: the pinned fixtures,
//! running the `s390-pxelinux` binary and scratch directories. Tests read as
//! scripts over these helpers. Booting is the harness's job (one QEMU
//! driver, with its reaper): the end-to-end netboot of the default
//! pxelinux.0 is the `ip-hex-8` scenario's lease step.
#![allow(dead_code)]

use s390_pxelinux::fixtures::{self, lock::Lock, FixtureSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pinned fixtures, fetched once per test process.
pub fn fixtures() -> &'static FixtureSet {
    static SET: OnceLock<FixtureSet> = OnceLock::new();
    SET.get_or_init(|| {
        let lock = Lock::embedded().expect("embedded lock");
        fixtures::ensure(&lock, &fixtures::default_cache_dir())
            .expect("fixtures (run `s390-pxelinux fixtures fetch`)")
    })
}

/// Result of one run of the binary.
pub struct Run {
    /// Exit status success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `s390-pxelinux` with `args`.
pub fn s390_pxelinux(args: &[&str]) -> Run {
    s390_pxelinux_env(args, &[])
}

/// Runs `s390-pxelinux` with `args` and extra environment variables.
pub fn s390_pxelinux_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run s390-pxelinux");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A scratch directory removed at drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s390-pxelinux-test-")
        .tempdir()
        .expect("tempdir")
}

/// Path as &str.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Arguments naming every fixture input explicitly for the 6.1 loader kernel.
pub fn explicit_inputs() -> Vec<String> {
    let f = fixtures();
    let k = f.kernel("6.1").expect("6.1");
    vec![
        "--kernel".into(),
        s(&k.image).into(),
        "--modules".into(),
        s(&k.modules).into(),
        "--busybox".into(),
        s(&f.busybox).into(),
        "--kexec".into(),
        s(&f.kexec).into(),
        "--sysroot".into(),
        s(&f.sysroot).into(),
    ]
}

/// Runs `build -o out` with every fixture input named explicitly, except
/// that the input `flag` (e.g. `--kernel`) gets `value`.
pub fn build_with_input(out: &Path, flag: &str, value: &str) -> Run {
    let mut args = explicit_inputs();
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is not an explicit input"));
    args[at + 1] = value.to_string();
    let mut argv: Vec<&str> = vec!["build", "-o", s(out)];
    argv.extend(args.iter().map(String::as_str));
    s390_pxelinux(&argv)
}

/// Asserts a failed run: non-zero exit, stderr containing every `needles`, no `output` file.
pub fn assert_clear_error(run: &Run, needles: &[&str], output: &Path) {
    assert!(
        !run.ok,
        "expected failure, got success; stderr:\n{}",
        run.stderr
    );
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "stderr does not mention {n:?}:\n{}",
            run.stderr
        );
    }
    assert!(
        !output.exists(),
        "output {} exists after a failed build",
        output.display()
    );
    if let Some(dir) = output.parent() {
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    .filter(|n| n.to_string_lossy().ends_with(".tmp"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "temporary files left behind: {leftovers:?}"
        );
    }
}

/// Names of the builder's temporary files (`.s390-pxelinux-<pid>-*.tmp`) in `dir`.
pub fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.starts_with(s390_pxelinux::atomic::TEMP_PREFIX) && n.ends_with(".tmp")
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A fixture cache sharing the real cache's unpacked packages (symlinks) but
/// not its compressed-initramfs cache, so a build through it is cold (seconds).
pub fn cold_cache() -> tempfile::TempDir {
    fixtures();
    let real = fixtures::default_cache_dir();
    let dir = scratch();
    for e in std::fs::read_dir(&real).expect("fixture cache").flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == "unpacked" || n.starts_with("sysroot-") {
            std::os::unix::fs::symlink(e.path(), dir.path().join(&name)).expect("symlink");
        }
    }
    dir
}

/// When a test kills a running build.
#[derive(Debug, Clone, Copy)]
pub enum KillAt {
    /// This long after it started.
    After(Duration),
    /// As soon as a new temporary file appears beside the output (mid-write).
    TemporaryAppears,
}

/// Runs `s390-pxelinux build -o out` with `extra` arguments and SIGKILLs it
/// at `at` (unless it has exited by then); returns true if it was killed.
pub fn build_killed(out: &Path, extra: &[&str], at: KillAt) -> bool {
    let dir = out.parent().expect("output directory");
    let before = temporaries(dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"))
        .args(["build", "-o", s(out)])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run s390-pxelinux");
    let started = Instant::now();
    let due = |now: Instant| match at {
        KillAt::After(d) => now - started >= d,
        KillAt::TemporaryAppears => temporaries(dir).iter().any(|t| !before.contains(t)),
    };
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        if due(Instant::now()) {
            child.kill().expect("SIGKILL the build");
            child.wait().expect("reap the build");
            return true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "build never finished"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Builds `out` to completion with `extra` arguments; returns the image,
/// checked by `inspect`.
pub fn complete_build(out: &Path, extra: &[&str]) -> Vec<u8> {
    let mut argv = vec!["build", "-o", s(out)];
    argv.extend_from_slice(extra);
    let r = s390_pxelinux(&argv);
    assert!(r.ok, "{}", r.stderr);
    let data = std::fs::read(out).expect("read the built image");
    s390_pxelinux::inspect::inspect(&data).expect("a complete build inspects");
    data
}

/// Asserts `out` is byte-identical to one of the complete images `whole`,
/// or absent when `may_be_absent`: never a partial file.
pub fn assert_whole_or_absent(out: &Path, whole: &[&[u8]], may_be_absent: bool, context: &str) {
    match std::fs::read(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(may_be_absent, "{context}: {} vanished", out.display())
        }
        Err(e) => panic!("{context}: reading {}: {e}", out.display()),
        Ok(data) => assert!(
            whole.contains(&data.as_slice()),
            "{context}: {} is {} bytes, none of the complete images ({:?} bytes)",
            out.display(),
            data.len(),
            whole.iter().map(|w| w.len()).collect::<Vec<_>>()
        ),
    }
}

/// The initramfs paths of `inspect --json` output `v`.
pub fn initrd_paths(v: &serde_json::Value) -> Vec<&str> {
    v["initrd"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect()
}
