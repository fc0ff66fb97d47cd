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
    let out: Output = Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"))
        .args(args)
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
