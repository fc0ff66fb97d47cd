//! `netboot-harness boot` driven through a real pseudo-terminal with
//! rexpect, as a person would: a shell on the terminal restores the usual
//! interactive settings (echo, line editing, signals), runs the harness,
//! then prints its exit status and `stty -a` again, so each test sees
//! whether the terminal came back as it was (after Enter-less typing,
//! Ctrl-C, a PROMPT timeout and a SIGTERM from outside).

mod support;

use rexpect::session::PtySession;
use support::*;

/// Runs by `sh` on the terminal: interactive settings, their `stty -a`,
/// the harness, its exit status, `stty -a` again.
const WRAPPER: &str = r#"stty sane echo icanon isig
echo "STTY-BEFORE"; stty -a; echo "STTY-END"
"$@"
echo "HARNESS-EXIT=$?"
echo "STTY-AFTER"; stty -a; echo "STTY-END"
"#;

struct Run {
    session: PtySession,
    /// `stty -a` before the harness ran.
    stty_before: String,
    token: String,
    logs: tempfile::TempDir,
    _tree: tempfile::TempDir,
}

/// Starts `netboot-harness boot` on `config` in a pseudo-terminal.
fn start(config: &str) -> Run {
    let tree = user_tree(config);
    let logs = tempfile::tempdir().expect("logs dir");
    let token = unique_token();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", WRAPPER, "sh", env!("CARGO_BIN_EXE_netboot-harness")])
        .args(["boot", "--tftp-root", path_str(tree.path())])
        .args(["--artifacts", path_str(logs.path())])
        .env(TOKEN_ENV, &token)
        .env("RUST_BACKTRACE", "0");
    let limit = netboot_harness::scaled(300.0).as_millis() as u64;
    let mut session = rexpect::session::spawn_command(cmd, Some(limit)).expect("spawning in a pty");
    let before = session.exp_string("STTY-END").expect("stty before");
    Run {
        stty_before: stty_block(&format!("{before}STTY-END"), "STTY-BEFORE"),
        session,
        token,
        logs,
        _tree: tree,
    }
}

/// The `stty -a` block printed after `marker`.
fn stty_block(out: &str, marker: &str) -> String {
    out.split(marker)
        .nth(1)
        .and_then(|rest| rest.split("STTY-END").next())
        .unwrap_or_default()
        .replace('\r', "")
        .trim()
        .to_string()
}

impl Run {
    fn wait(&mut self, needle: &str) -> String {
        self.session
            .exp_string(needle)
            .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}"))
    }

    fn console_log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("console.log")).unwrap_or_default()
    }

    /// Waits for the wrapper's end; returns the harness's exit status and
    /// checks that the terminal settings are those it started with and
    /// that no process of the run is left.
    fn finish(&mut self) -> (i32, String) {
        let seen = self.wait("HARNESS-EXIT=");
        let code = self.session.exp_regex(r"\d+").expect("exit code").1;
        let out = self.session.exp_eof().expect("wrapper ends");
        let after = stty_block(&out, "STTY-AFTER");
        assert!(
            self.stty_before.contains("icanon") && !after.is_empty(),
            "no stty output:\n{}\n{out}",
            self.stty_before
        );
        assert_eq!(after, self.stty_before, "the terminal was not restored");
        assert_no_process_left(&self.token);
        (code.parse().expect("numeric exit code"), seen)
    }
}

#[test]
fn typed_label_with_options_boots_and_each_key_reaches_the_guest_once() {
    let mut run = start(
        "PROMPT 1\nTIMEOUT 3000\nDEFAULT one\n\
         LABEL one\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=one\n\
         LABEL two\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=two\n",
    );
    run.wait("boot: ");
    // Keys reach the guest as they are typed (raw mode, no local echo): what
    // shows up before Enter is the guest's echo.
    run.session.send("two").expect("typing");
    run.session.flush().expect("flush");
    run.wait("two");
    run.session.send(" typed=yes\r").expect("typing");
    run.session.flush().expect("flush");
    let seen = run.wait("TARGET-UP cmdline=console=ttysclp0 quiet panic=-1 picked=two typed=yes");
    // The rest of the line appears once: the guest's echo, not the
    // terminal's on top of it (which would add a second line).
    let echoed: Vec<&str> = seen
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.ends_with("typed=yes") && !l.contains("S390-PXELINUX"))
        .collect();
    assert_eq!(echoed, [" typed=yes"], "typed line echoed twice?\n{seen}");
    let (code, _) = run.finish();
    assert_eq!(code, 0, "the guest powered off cleanly");
}

#[test]
fn ctrl_c_during_the_kernel_fetch_ends_the_run_and_restores_the_terminal() {
    let mut run = start(
        "DEFAULT one\nLABEL one\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1\n",
    );
    // The config is read; the next thing the client does is fetch the
    // 8 MB kernel (seconds under TCG).
    run.wait("S390-PXELINUX: config pxelinux.cfg/default");
    run.session.send_control('c').expect("Ctrl-C");
    let (code, seen) = run.finish();
    assert!(seen.contains("Ctrl-C: stopping QEMU"), "{seen}");
    assert_eq!(code, 130, "{seen}");
    let log = run.console_log();
    assert!(
        !log.contains("S390-PXELINUX: kexec"),
        "the run went on after Ctrl-C:\n{log}"
    );
}

#[test]
fn with_no_input_at_the_prompt_the_timeout_label_boots() {
    let mut run = start(
        "PROMPT 1\nTIMEOUT 10\nDEFAULT one\nONTIMEOUT three\n\
         LABEL one\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=one\n\
         LABEL three\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1 picked=three\n",
    );
    run.wait("boot: ");
    run.wait("TARGET-UP cmdline=console=ttysclp0 quiet panic=-1 picked=three");
    let (code, _) = run.finish();
    assert_eq!(code, 0);
}

#[test]
fn sigterm_while_the_console_is_attached_restores_the_terminal() {
    let mut run = start(
        "DEFAULT one\nLABEL one\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND console=ttysclp0 quiet panic=-1\n",
    );
    // Guest output on the terminal: the console is attached, the terminal raw.
    run.wait("Network boot starting");
    let harness: Vec<u32> = processes_with_token(&run.token)
        .into_iter()
        .filter(|(_, comm)| comm == "netboot-harness")
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(harness.len(), 1, "{:?}", processes_with_token(&run.token));
    // SAFETY: SIGTERM to the harness process this test started.
    unsafe {
        libc::kill(harness[0] as i32, libc::SIGTERM);
    }
    let (code, seen) = run.finish();
    assert_eq!(code, 128 + libc::SIGTERM, "{seen}");
}
