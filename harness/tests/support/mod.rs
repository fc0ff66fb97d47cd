//! Support layer for the harness's own tests: a paused QEMU (no guest code
//! runs, so these tests are fast), a runtime per test, scenario parsing from
//! text, and process checks. Tests read as scripts over these helpers.

#![allow(dead_code)]

use netboot_harness::qemu::{Machine, MachineLogs, MachineSpec, QemuBinary};
use netboot_harness::scenario::Scenario;
use netboot_harness::HarnessError;
use std::path::Path;

/// A current-thread tokio runtime, as the runner uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The QEMU under test.
pub fn qemu() -> QemuBinary {
    QemuBinary::find().expect("qemu-system-s390x (run ci/install-deps)")
}

/// Launches QEMU stopped before the first instruction (`-S`): it runs until
/// killed or told to quit.
pub async fn paused_machine() -> Machine {
    let spec = MachineSpec {
        extra: vec!["-S".into()],
        ..MachineSpec::default()
    };
    let logs = MachineLogs {
        console: None,
        qemu_output: None,
        qmp: None,
        cmdline: None,
    };
    Machine::launch(&qemu(), &spec, &logs)
        .await
        .expect("launching a paused QEMU")
}

/// True if `pid` is a live (non-zombie) process.
pub fn alive(pid: u32) -> bool {
    netboot_harness::reaper::process_alive(pid)
}

/// Waits up to 5 s for `pid` to disappear.
pub fn gone_within_5s(pid: u32) -> bool {
    for _ in 0..500 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// Parses scenario text as if read from `scenarios/<name>.toml`.
pub fn scenario(name: &str, text: &str) -> Result<Scenario, HarnessError> {
    Scenario::parse(
        text,
        &Path::new("/nonexistent/scenarios").join(format!("{name}.toml")),
    )
}

/// The error message of a scenario that must not parse.
pub fn scenario_error(text: &str) -> String {
    match scenario("bad", text) {
        Ok(_) => panic!("scenario unexpectedly valid:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A minimal valid scenario body to extend.
pub const MINIMAL: &str = r#"
description = "minimal"
[network]
mode = "slirp"
[tftp]
"pxelinux.0" = "@pxelinux"
[[step]]
expect = "TARGET-UP"
"#;

/// Runs a scenario given as text (a direct boot of the target payloads is
/// fast) and returns its failure; panics if it passed.
pub fn run_expecting_failure(name: &str, text: &str) -> netboot_harness::runner::ScenarioFailure {
    let sc = scenario(name, text).unwrap_or_else(|e| panic!("{e}"));
    let h = netboot_harness::runner::Harness::new().unwrap_or_else(|e| panic!("{e}"));
    match netboot_harness::runner::run_blocking(&h, &sc, &Default::default()) {
        Ok(r) => panic!("scenario {name} passed unexpectedly: {r:?}"),
        Err(f) => *f,
    }
}

/// A direct boot of `@target-kernel` with `@target-initrd`, followed by `steps`.
pub fn direct_boot(top: &str, steps: &str) -> String {
    format!(
        "description = \"self-test\"\n{top}\n[direct]\nkernel = \"@target-kernel\"\ninitrd = [\"@target-initrd\"]\nappend = \"console=ttysclp0 quiet panic=-1 selftest=1\"\n{steps}"
    )
}

/// Builds a small user-style TFTP tree (kernel, initrd, `pxelinux.cfg/default`
/// with `config`) in a temporary directory, without pxelinux.0.
pub fn user_tree(config: &str) -> tempfile::TempDir {
    use netboot_harness::payload::{Params, Payloads};
    let payloads = Payloads::new().unwrap_or_else(|e| panic!("{e}"));
    let params = Params {
        pxelinux_kernel: "6.1",
        pxelinux_cmdline: s390_pxelinux::build::DEFAULT_CMDLINE,
        target_kernel: "6.12",
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for (artifact, name) in [
        (netboot_harness::scenario::Payload::TargetKernel, "vmlinuz"),
        (
            netboot_harness::scenario::Payload::TargetInitrd,
            "initrd.gz",
        ),
    ] {
        let src = payloads
            .get(&artifact, &params)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(&src, dir.path().join(name)).expect("copy payload");
    }
    std::fs::create_dir(dir.path().join("pxelinux.cfg")).expect("mkdir");
    std::fs::write(dir.path().join("pxelinux.cfg/default"), config).expect("config");
    dir
}

/// A child process's stdout read until patterns appear, with a watchdog
/// that kills the child after `limit`.
pub struct Interactive {
    /// The child.
    pub child: std::process::Child,
    out: std::process::ChildStdout,
    /// Everything read so far.
    pub seen: String,
}

impl Interactive {
    /// Spawns `cmd` with piped stdin/stdout; kills it after `limit`.
    pub fn spawn(mut cmd: std::process::Command, limit: std::time::Duration) -> Interactive {
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().expect("stdout");
        let pid = child.id() as i32;
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            // SAFETY: SIGTERM to our child (its handler kills its QEMU).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        });
        Interactive {
            child,
            out,
            seen: String::new(),
        }
    }

    /// Reads until `needle` has been seen (carriage returns dropped);
    /// panics with the output on EOF.
    pub fn wait_for(&mut self, needle: &str) {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            let n = self.out.read(&mut buf).expect("read stdout");
            assert!(n > 0, "EOF before {needle:?}; output:\n{}", self.seen);
            // The guest console ends lines with \r\n; keep plain \n.
            self.seen
                .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
        }
    }

    /// Types a line.
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write stdin");
        stdin.flush().expect("flush");
    }
}

/// Scenario text from its lines (line numbers in errors are then obvious).
pub fn lines(ls: &[&str]) -> String {
    ls.iter().map(|l| format!("{l}\n")).collect()
}

/// Environment variable carrying a test's token into the processes it
/// starts; QEMU and any server inherit it, so they can be found later.
pub const TOKEN_ENV: &str = "NBH_TEST_TOKEN";

/// A token unique to this call (pid, time, counter).
pub fn unique_token() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// Live processes whose environment carries `TOKEN_ENV=token`: everything
/// started, directly or not, by a process given that token. Returns
/// (pid, command name).
pub fn processes_with_token(token: &str) -> Vec<(u32, String)> {
    let needle = format!("{TOKEN_ENV}={token}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .filter(|&pid| alive(pid))
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            (pid, comm.trim().to_string())
        })
        .collect()
}

/// The command line of `pid`, arguments separated by spaces.
pub fn cmdline_of(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// The pid of the QEMU carrying `token` whose command line names `dir`
/// (a run's artifact directory: not a `--version` probe).
pub fn qemu_serving(token: &str, dir: &Path) -> Option<u32> {
    let dir = dir.to_string_lossy();
    processes_with_token(token)
        .into_iter()
        .find(|(pid, comm)| comm.starts_with("qemu-system") && cmdline_of(*pid).contains(&*dir))
        .map(|(pid, _)| pid)
}

/// True if the file at `path` exists and contains one of `needles`.
pub fn file_contains(path: &Path, needles: &[&str]) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| needles.iter().any(|n| t.contains(n)))
}

/// Asserts that no process carrying `token` is left, allowing 5 s for
/// killed ones to be reaped.
pub fn assert_no_process_left(token: &str) {
    let left = wait_until(std::time::Duration::from_secs(5), || {
        processes_with_token(token).is_empty()
    });
    assert!(
        left,
        "processes left behind: {:?}",
        processes_with_token(token)
    );
}

/// Polls `cond` every 20 ms for up to `limit`; returns whether it held.
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The `netboot-harness` binary with `args`, carrying `token`, output piped.
pub fn harness_command(token: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netboot-harness"));
    cmd.args(args)
        .env(TOKEN_ENV, token)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Output of a finished command: success, stdout + stderr together.
pub fn finished(child: std::process::Child) -> (bool, String) {
    let out = child.wait_with_output().expect("waiting for the command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes `text` as `<dir>/<name>.toml`; returns its path.
pub fn scenario_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("writing the scenario file");
    path
}

/// SIGKILLs `pid` (a process this test found, e.g. a QEMU).
pub fn sigkill(pid: u32) {
    // SAFETY: plain kill(2) on a process of this test's own making.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// A path as `&str` for a command line (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}
