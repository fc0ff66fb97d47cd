//! Support layer for the builder's integration tests: the pinned fixtures,
//! running the `s390-pxelinux` binary, scratch directories, and a minimal
//! QEMU netboot runner. Tests read as scripts over these helpers.
#![allow(dead_code)]

use s390_pxelinux::fixtures::{self, lock::Lock, FixtureSet};
use std::io::Read;
use std::path::{Path, PathBuf};
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

/// A QEMU process booting `tftp_root` over slirp; killed on drop.
pub struct NetbootVm {
    child: std::process::Child,
    console: std::sync::mpsc::Receiver<Vec<u8>>,
    /// Everything printed so far.
    pub transcript: String,
}

impl NetbootVm {
    /// Starts `qemu-system-s390x` netbooting `pxelinux.0` from `tftp_root`.
    pub fn start(tftp_root: &Path) -> NetbootVm {
        let mut child = Command::new("qemu-system-s390x")
            .args([
                "-M",
                "s390-ccw-virtio",
                "-nographic",
                "-nodefaults",
                "-m",
                "512",
                "-no-reboot",
            ])
            .args(["-serial", "stdio"])
            .arg("-netdev")
            .arg(format!(
                "user,id=n0,tftp={},bootfile=pxelinux.0",
                tftp_root.display()
            ))
            .args(["-device", "virtio-net-ccw,netdev=n0,bootindex=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu-system-s390x must be installed (ci/install-deps)");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        NetbootVm {
            child,
            console: rx,
            transcript: String::new(),
        }
    }

    /// Waits until the console shows `needle`; returns the elapsed time, or
    /// panics with the transcript tail after `timeout`.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.transcript.contains(needle) {
                return start.elapsed();
            }
            let left = timeout.saturating_sub(start.elapsed());
            match self
                .console
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(bytes) => self.transcript.push_str(&String::from_utf8_lossy(&bytes)),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
                Err(_) => {
                    let tail: Vec<&str> = self.transcript.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    panic!(
                        "console never showed {needle:?} within {timeout:?}; last lines:\n{}",
                        tail.join("\n")
                    );
                }
            }
        }
    }
}

impl Drop for NetbootVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Directory for a test's TFTP root containing `pxelinux.0`.
pub fn tftp_root_with(image: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = scratch();
    let dest = dir.path().join("pxelinux.0");
    std::fs::copy(image, &dest).expect("copy pxelinux.0");
    let root = dir.path().to_path_buf();
    (dir, root)
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
