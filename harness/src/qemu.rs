//! Driving `qemu-system-s390x`: finding the binary and its version, knowing
//! which firmware does the network boot for that version, building the
//! command line, launching QEMU with its console and QMP on UNIX sockets the
//! harness listens on, and stopping it. A [`Machine`] kills its QEMU when it
//! is dropped, and every running QEMU is registered with [`crate::reaper`]
//! so Ctrl-C kills it too; QEMU also gets `PR_SET_PDEATHSIG`, and runs at a
//! lower CPU priority than the harness ([`NICE_ENV`]). This module
//! must not interpret console output (see [`crate::console`]).

use crate::console::Console;
use crate::qmp::Qmp;
use crate::HarnessError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::time::Instant;

/// The QEMU binary in use.
#[derive(Debug, Clone)]
pub struct QemuBinary {
    /// Path of `qemu-system-s390x`.
    pub path: PathBuf,
    /// Version (major, minor, micro).
    pub version: (u32, u32, u32),
    /// Which firmware performs the network boot.
    pub firmware: NetbootFirmware,
}

/// How this QEMU version network-boots an s390x guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetbootFirmware {
    /// QEMU before 9.2: the separate `s390-netboot.img` (loaded by QEMU when
    /// the boot device is a network card).
    Separate(PathBuf),
    /// QEMU 9.2 and later: the netboot code is part of `s390-ccw.img`.
    Merged(PathBuf),
}

impl NetbootFirmware {
    /// The firmware file name QEMU `major.minor` uses for network boot.
    pub fn file_name_for(version: (u32, u32, u32)) -> &'static str {
        if (version.0, version.1) < (9, 2) {
            "s390-netboot.img"
        } else {
            "s390-ccw.img"
        }
    }
}

/// Parses the first line of `qemu-system-s390x --version`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let v = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let major = it.next()??;
    let minor = it.next().flatten().unwrap_or(0);
    let micro = it.next().flatten().unwrap_or(0);
    Some((major, minor, micro))
}

impl QemuBinary {
    /// Finds QEMU: `$NETBOOT_QEMU`, else `qemu-system-s390x` on `PATH`; reads
    /// its version and locates the network-boot firmware in its data
    /// directories (`qemu -L help`).
    pub fn find() -> Result<QemuBinary, HarnessError> {
        let path = match std::env::var_os("NETBOOT_QEMU").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|d| d.join("qemu-system-s390x"))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    HarnessError::Qemu(
                        "qemu-system-s390x not found on PATH (set NETBOOT_QEMU or run ci/install-deps)"
                            .into(),
                    )
                })?,
        };
        let run = |arg: &[&str]| {
            std::process::Command::new(&path)
                .args(arg)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    HarnessError::Qemu(format!("running {} {}: {e}", path.display(), arg.join(" ")))
                })
        };
        let out = run(&["--version"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text).ok_or_else(|| {
            HarnessError::Qemu(format!(
                "cannot read the version of {}: {text:?}",
                path.display()
            ))
        })?;
        let dirs = String::from_utf8_lossy(&run(&["-L", "help"])?.stdout).to_string();
        let name = NetbootFirmware::file_name_for(version);
        let file = dirs
            .lines()
            .map(|d| Path::new(d.trim()).join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                HarnessError::Qemu(format!(
                    "QEMU {}.{}.{} network-boots s390x with {name}, which is in none of its data directories ({})",
                    version.0,
                    version.1,
                    version.2,
                    dirs.lines().collect::<Vec<_>>().join(", ")
                ))
            })?;
        let firmware = if name == "s390-netboot.img" {
            NetbootFirmware::Separate(file)
        } else {
            NetbootFirmware::Merged(file)
        };
        Ok(QemuBinary {
            path,
            version,
            firmware,
        })
    }
}

/// A kernel booted directly with `-kernel/-initrd/-append` (no netboot).
#[derive(Debug, Clone)]
pub struct DirectBoot {
    /// Kernel image.
    pub kernel: PathBuf,
    /// Initrd (already concatenated if several).
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    pub append: String,
}

/// Everything that defines one QEMU run.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// `-uuid`.
    pub uuid: Option<String>,
    /// Network arguments (from [`crate::network`]).
    pub net_args: Vec<String>,
    /// Network namespace to start QEMU in (a path such as
    /// `/run/netns/NAME`, entered with `setns` before exec), for a
    /// `-netdev` that only exists there (the `dnsmasq` mode's tap).
    pub netns: Option<PathBuf>,
    /// Raw disk images attached as virtio-blk-ccw (opened with snapshot=on,
    /// so the image is never modified).
    pub disks: Vec<PathBuf>,
    /// Direct kernel boot instead of firmware netboot.
    pub direct: Option<DirectBoot>,
    /// TCG translation-buffer size in MiB (`-accel tcg,tb-size=N`); None
    /// leaves QEMU's default. A small buffer works around the 6.1 target
    /// kernel's post-kexec stall under TCG (see ARCHITECTURE.md).
    pub tcg_tb_size_mb: Option<u32>,
    /// The accelerator ([`crate::accel`]); `tcg_tb_size_mb` applies only
    /// under TCG.
    pub accel: crate::accel::Accel,
    /// How much nicer than the harness QEMU runs ([`NICE_ENV`]).
    pub nice_increment: i32,
    /// Extra arguments appended verbatim.
    pub extra: Vec<String>,
}

impl Default for MachineSpec {
    fn default() -> Self {
        MachineSpec {
            memory_mb: 512,
            uuid: None,
            net_args: Vec::new(),
            netns: None,
            disks: Vec::new(),
            direct: None,
            tcg_tb_size_mb: None,
            accel: crate::accel::Accel::Tcg,
            nice_increment: DEFAULT_NICE_INCREMENT,
            extra: Vec::new(),
        }
    }
}

/// How the console (and QMP) are wired.
#[derive(Debug, Clone, Copy)]
pub enum Wiring<'a> {
    /// Console and QMP on UNIX sockets the harness listens on.
    Sockets {
        /// Console socket.
        console: &'a Path,
        /// QMP socket.
        qmp: &'a Path,
    },
    /// Console on QEMU's stdio, no QMP: for running a saved command line by hand.
    Terminal,
}

/// Builds the QEMU argument list (without the binary) for `spec`.
pub fn build_args(spec: &MachineSpec, wiring: Wiring<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(OsString::from(s));
    for s in [
        "-M",
        "s390-ccw-virtio",
        "-nographic",
        "-nodefaults",
        "-no-reboot",
        "-action",
        "panic=exit-failure",
        "-smp",
        "1",
    ] {
        push(s);
    }
    push("-m");
    push(&spec.memory_mb.to_string());
    push("-accel");
    push(&spec.accel.qemu_arg(spec.tcg_tb_size_mb));
    match wiring {
        Wiring::Sockets { console, qmp } => {
            push("-chardev");
            push(&format!(
                "socket,id=con,path={},server=off",
                console.display()
            ));
            push("-device");
            push("sclpconsole,chardev=con");
            push("-chardev");
            push(&format!("socket,id=qmp,path={},server=off", qmp.display()));
            push("-mon");
            push("chardev=qmp,mode=control");
        }
        Wiring::Terminal => {
            push("-chardev");
            push("stdio,id=con");
            push("-device");
            push("sclpconsole,chardev=con");
        }
    }
    if let Some(u) = &spec.uuid {
        push("-uuid");
        push(u);
    }
    for n in &spec.net_args {
        push(n);
    }
    for (i, d) in spec.disks.iter().enumerate() {
        push("-drive");
        push(&format!(
            "file={},if=none,id=disk{i},format=raw,snapshot=on",
            d.display()
        ));
        push("-device");
        push(&format!("virtio-blk-ccw,drive=disk{i}"));
    }
    if let Some(d) = &spec.direct {
        push("-kernel");
        push(&d.kernel.display().to_string());
        if let Some(i) = &d.initrd {
            push("-initrd");
            push(&i.display().to_string());
        }
        push("-append");
        push(&d.append);
    }
    for e in &spec.extra {
        push(e);
    }
    a
}

/// Quotes an argument list as a shell command line (for `qemu-cmdline.sh`).
pub fn shell_quote(args: impl IntoIterator<Item = OsString>) -> String {
    args.into_iter()
        .map(|a| {
            let s = a.to_string_lossy().into_owned();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@+%".contains(c))
            {
                s
            } else {
                format!("'{}'", s.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where a launched machine keeps its logs.
#[derive(Debug, Clone)]
pub struct MachineLogs {
    /// Timestamped console transcript.
    pub console: Option<PathBuf>,
    /// QEMU's own stdout and stderr.
    pub qemu_output: Option<PathBuf>,
    /// QMP transcript.
    pub qmp: Option<PathBuf>,
    /// The command line, as a runnable shell script.
    pub cmdline: Option<PathBuf>,
}

/// The variable that sets how much nicer than the harness QEMU runs.
pub const NICE_ENV: &str = "NETBOOT_QEMU_NICE";

/// The default of [`NICE_ENV`]: QEMU runs at the harness's nice value + 10.
///
/// A TCG guest keeps a core busy even while it waits (the s390-ccw
/// firmware polls its NIC), while every packet of the in-process network
/// and every answer of the harness's HTTP and FTP servers comes from one of
/// the harness's own threads. With two guests on two cores those threads
/// queued behind the vCPUs: the firmware's load of pxelinux.0 through the
/// in-process network took ~2.3 s beside a second boot, ~1.5 s with QEMU at
/// nice 10, and the default suite's in-process runs 335 s against 287 s
/// (docs/performance.md, round 21). Between QEMUs nothing changes: all of
/// them get the same increment. 0 runs QEMU at the harness's own priority,
/// for a machine that runs other CPU-heavy work beside the suite (a niced
/// guest gets little CPU there).
pub const DEFAULT_NICE_INCREMENT: i32 = 10;

/// Parses a [`NICE_ENV`] value: a whole number from 0 to 19 (surrounding
/// blanks ignored; empty = the default).
pub fn parse_nice_increment(value: &str) -> Result<i32, HarnessError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(DEFAULT_NICE_INCREMENT);
    }
    match v.parse::<i32>() {
        Ok(n) if (0..=19).contains(&n) => Ok(n),
        _ => Err(HarnessError::Env {
            var: NICE_ENV,
            value: value.to_string(),
            message:
                "expected a whole number from 0 to 19 (how much nicer than the harness QEMU runs)"
                    .into(),
        }),
    }
}

/// Reads [`NICE_ENV`] (unset = [`DEFAULT_NICE_INCREMENT`]).
pub fn nice_increment_from_env() -> Result<i32, HarnessError> {
    crate::env_setting(NICE_ENV, DEFAULT_NICE_INCREMENT, parse_nice_increment)
}

/// Lowers the calling process's CPU priority by `increment` (`nice(2)`).
/// Runs in the forked child before exec, and QEMU's threads inherit it. An
/// unprivileged process may always raise its nice value, and if that failed
/// QEMU would merely run at the harness's own priority, so the result is
/// not checked.
fn lower_priority(increment: i32) {
    if increment > 0 {
        // SAFETY: nice(2) changes only the calling process's scheduling
        // priority; it is async-signal-safe.
        unsafe {
            libc::nice(increment);
        }
    }
}

/// A running QEMU with its console and QMP attached.
pub struct Machine {
    child: tokio::process::Child,
    pid: u32,
    /// The console (always attached).
    pub console: Console,
    qmp: Option<Qmp>,
    _sockets: tempfile::TempDir,
    status: Option<ExitStatus>,
    qemu_output: Option<PathBuf>,
    /// The command line used (for failure reports).
    pub command_line: String,
}

impl Machine {
    /// Launches QEMU. Returns once QEMU has connected its console and QMP
    /// sockets (or fails with QEMU's own error output if it exits first).
    pub async fn launch(
        qemu: &QemuBinary,
        spec: &MachineSpec,
        logs: &MachineLogs,
    ) -> Result<Machine, HarnessError> {
        crate::reaper::install();
        // sun_path is limited to 108 bytes: keep sockets in a short tempdir.
        let sockets = tempfile::Builder::new()
            .prefix("nbh-")
            .tempdir_in("/tmp")
            .map_err(|e| HarnessError::io("creating socket directory in", "/tmp", e))?;
        let con_path = sockets.path().join("con");
        let qmp_path = sockets.path().join("qmp");
        let con_listener = UnixListener::bind(&con_path)
            .map_err(|e| HarnessError::io("binding console socket", &con_path, e))?;
        let qmp_listener = UnixListener::bind(&qmp_path)
            .map_err(|e| HarnessError::io("binding QMP socket", &qmp_path, e))?;
        let args = build_args(
            spec,
            Wiring::Sockets {
                console: &con_path,
                qmp: &qmp_path,
            },
        );
        let binary = || std::iter::once(qemu.path.clone().into_os_string());
        let command_line = shell_quote(binary().chain(args.clone()));
        if let Some(p) = &logs.cmdline {
            let mut by_hand = shell_quote(binary().chain(build_args(spec, Wiring::Terminal)));
            if let Some(ns) = &spec.netns {
                by_hand = format!(
                    "# ran in network namespace {} (removed after the run)\n{by_hand}",
                    ns.display()
                );
            }
            let script = format!(
                "#!/bin/sh\n# Re-runs this boot with the console on your terminal (Ctrl-A x quits).\n\
                 # netboot-harness ran it with the console and QMP on its own (temporary) sockets:\n\
                 # {command_line}\n{by_hand}\n"
            );
            std::fs::write(p, script).map_err(|e| HarnessError::io("writing", p, e))?;
        }
        let (stdout, stderr) = match &logs.qemu_output {
            Some(p) => {
                let f = std::fs::File::create(p).map_err(|e| HarnessError::io("creating", p, e))?;
                let g = f
                    .try_clone()
                    .map_err(|e| HarnessError::io("opening", p, e))?;
                (Stdio::from(f), Stdio::from(g))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = tokio::process::Command::new(&qemu.path);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true);
        let netns = match &spec.netns {
            Some(p) => Some(
                std::fs::File::open(p)
                    .map_err(|e| HarnessError::io("opening the network namespace", p, e))?,
            ),
            None => None,
        };
        let nice_increment = spec.nice_increment;
        // SAFETY: child_setup and lower_priority are async-signal-safe and
        // allocate nothing; the namespace file moves into the closure and
        // stays open until exec.
        unsafe {
            cmd.pre_exec(move || {
                crate::network::child_setup(netns.as_ref())?;
                lower_priority(nice_increment);
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| HarnessError::Qemu(format!("starting {}: {e}", qemu.path.display())))?;
        let pid = child.id().unwrap_or(0);
        crate::reaper::register(pid);
        tracing::debug!(pid, %command_line, "QEMU started");

        let connect = async {
            let (con, _) = con_listener.accept().await?;
            let (qmp, _) = qmp_listener.accept().await?;
            Ok::<_, std::io::Error>((con, qmp))
        };
        let timeout = crate::scaled(30.0);
        let early_exit = |status: Option<ExitStatus>| {
            let output = logs
                .qemu_output
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            HarnessError::Qemu(format!(
                "QEMU exited ({}) before connecting its console:\n{}\ncommand: {command_line}",
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown status".into()),
                output.trim()
            ))
        };
        let (con, qmp) = tokio::select! {
            r = connect => r.map_err(|e| HarnessError::io("accepting QEMU's console/QMP connection on", sockets.path(), e))?,
            status = child.wait() => {
                crate::reaper::unregister(pid);
                return Err(early_exit(status.ok()));
            }
            _ = tokio::time::sleep(timeout) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                crate::reaper::unregister(pid);
                return Err(HarnessError::Qemu(format!("QEMU did not connect its console within {timeout:?}; command: {command_line}")));
            }
        };
        let console = Console::attach(con, logs.console.as_deref(), started).map_err(|e| {
            HarnessError::io(
                "opening console log",
                logs.console.clone().unwrap_or_default(),
                e,
            )
        })?;
        let qmp = Qmp::attach(qmp, logs.qmp.as_deref()).await.ok();
        Ok(Machine {
            child,
            pid,
            console,
            qmp,
            _sockets: sockets,
            status: None,
            qemu_output: logs.qemu_output.clone(),
            command_line,
        })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status if QEMU has exited (non-blocking).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.reaped(s);
            }
        }
        self.status
    }

    fn reaped(&mut self, s: ExitStatus) {
        self.status = Some(s);
        crate::reaper::unregister(self.pid);
    }

    /// Waits up to `timeout` for QEMU to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        if let Ok(Ok(s)) = tokio::time::timeout(timeout, self.child.wait()).await {
            self.reaped(s);
        }
        self.status
    }

    /// True if QEMU reported a guest panic over QMP.
    pub fn guest_panicked(&self) -> bool {
        self.qmp.as_ref().is_some_and(|q| q.guest_panicked())
    }

    /// QEMU's stdout/stderr so far.
    pub fn qemu_output(&self) -> String {
        self.qemu_output
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// Stops QEMU: QMP `quit`, then SIGKILL if it has not exited within 5 s.
    /// Returns the exit status.
    pub async fn shutdown(&mut self) -> Option<ExitStatus> {
        if self.try_status().is_some() {
            return self.status;
        }
        if let Some(q) = self.qmp.as_mut() {
            let _ = q.quit().await;
            if self.wait_exit(Duration::from_secs(5)).await.is_some() {
                return self.status;
            }
        }
        self.kill().await
    }

    /// Kills QEMU with SIGKILL and reaps it.
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        if self.try_status().is_some() {
            return self.status;
        }
        let _ = self.child.start_kill();
        if let Ok(s) = self.child.wait().await {
            self.reaped(s);
        }
        self.status
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let _ = self.child.start_kill();
        // Reap it now (briefly blocking) so the pid is gone when drop returns
        // and the reaper table never holds a recycled pid.
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        crate::reaper::unregister(self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_increment_is_a_whole_number_from_0_to_19() {
        assert_eq!(parse_nice_increment("").unwrap(), DEFAULT_NICE_INCREMENT);
        assert_eq!(parse_nice_increment(" 0 ").unwrap(), 0);
        assert_eq!(parse_nice_increment("19").unwrap(), 19);
        for bad in ["20", "-1", "ten", "1.5", "+"] {
            let e = parse_nice_increment(bad).expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!("NETBOOT_QEMU_NICE={bad}: expected a whole number")),
                "{e}"
            );
        }
    }
}
