//! The `resolve` command as a user runs it: its text report on a small tree,
//! and a quiet end when its output is closed early (`| head`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

fn resolve(root: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"));
    c.args(["resolve", "--root"])
        .arg(root)
        .args(["--mac", "52:54:00:12:34:56", "--ip", "10.0.2.15"])
        .args(["--server", "10.0.2.2", "--bootfile", "boot/pxelinux.0"])
        .args(extra);
    c
}

/// Runs `cmd` like `cmd | head -c 16`: the reader takes a few bytes, then
/// closes the pipe. Returns (exit success, stderr).
pub fn into_closed_pipe(mut cmd: Command) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 16];
    let _ = out.read(&mut buf);
    drop(out);
    let o = child.wait_with_output().expect("wait");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn resolve_reports_the_lookup_and_the_entry() {
    let t = tempfile::tempdir().expect("tempdir");
    write(
        t.path(),
        "boot/pxelinux.cfg/default",
        "UI menu.c32\nTIMEOUT 15\nDEFAULT a\nLABEL a\nKERNEL /vmlinuz\nAPPEND x\nLABEL b\nMENU DEFAULT\n",
    );
    write(t.path(), "boot/vmlinuz", "K");
    let o = resolve(t.path(), &[]).output().expect("run");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "prefix: boot/",
        "try boot/pxelinux.cfg/default ... found",
        "prompt: labels a b",
        "prompt: wait 1.5s",
        "boot label: a",
        "kernel: boot//vmlinuz",
        "cmdline: x",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "no line {want:?} in:\n{text}"
        );
    }
}

#[test]
fn resolve_ends_quietly_when_its_output_is_closed() {
    let t = tempfile::tempdir().expect("tempdir");
    // 20 000 labels listed at the prompt: far more than a pipe buffer.
    let mut cfg = String::from("PROMPT 1\nTIMEOUT 1\nDEFAULT l0\n");
    for i in 0..20_000 {
        cfg.push_str(&format!("LABEL label-number-{i}\nKERNEL k\n"));
    }
    write(t.path(), "boot/pxelinux.cfg/default", &cfg);
    for extra in [&[][..], &["--json"][..]] {
        let (ok, stderr) = into_closed_pipe(resolve(t.path(), extra));
        assert!(
            ok && stderr.is_empty(),
            "resolve {extra:?}: ok={ok}, stderr:\n{stderr}"
        );
    }
}
