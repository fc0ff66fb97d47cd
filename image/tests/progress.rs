//! `s390-pxelinux build` on a cold fixture cache reports its progress: an
//! updating bar on a terminal (driven through a pseudo-terminal with
//! rexpect, as a person would see it) and one plain line per step when
//! stderr is a pipe. The cold cache is a fresh directory whose apt download
//! directory links to the already downloaded `.deb` files of the usual cache
//! (their sha256 is still checked), so the test needs no network when the
//! machine's cache is warm.

use std::path::{Path, PathBuf};

/// A fresh cache directory with the usual cache's downloaded packages
/// linked in.
fn cold_cache() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let debs = cache.join("apt").join("debs");
    std::fs::create_dir_all(&debs).expect("mkdir");
    let warm = s390_pxelinux::fixtures::default_cache_dir()
        .join("apt")
        .join("debs");
    for e in std::fs::read_dir(&warm).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "deb") {
            std::os::unix::fs::symlink(e.path(), debs.join(e.file_name())).expect("symlink");
        }
    }
    (dir, cache)
}

fn build_command(cache: &Path, out: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_s390-pxelinux"));
    cmd.arg("--cache-dir")
        .arg(cache)
        .arg("build")
        .arg("-o")
        .arg(out)
        .env_remove("S390_PXELINUX_OFFLINE");
    cmd
}

#[test]
fn build_on_a_terminal_shows_a_progress_bar() {
    let (dir, cache) = cold_cache();
    let out = dir.path().join("pxelinux.0");
    let mut session =
        rexpect::session::spawn_command(build_command(&cache, &out), Some(300_000)).expect("pty");
    // indicatif's bar: "{bar} {pos}/{len} {msg}", redrawn in place.
    let (_, bar) = session
        .exp_regex(r"\d+/\d+ unpacking [a-z]")
        .expect("a progress bar line");
    let rest = session.exp_eof().expect("build ends");
    let all = format!("{bar}{rest}");
    assert!(
        rest.contains("wrote ") && out.is_file(),
        "build did not finish:\n{all}"
    );
    assert!(
        !all.contains("s390-pxelinux: unpacking"),
        "plain progress lines on a terminal:\n{all}"
    );
    assert!(
        rest.contains('\u{1b}') || rest.contains('\r'),
        "the bar is not redrawn in place:\n{rest:?}"
    );
}

#[test]
fn build_into_a_pipe_prints_one_plain_line_per_step() {
    let (dir, cache) = cold_cache();
    let out = dir.path().join("pxelinux.0");
    let output = build_command(&cache, &out)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(out.is_file());
    assert!(
        !stderr.contains('\u{1b}'),
        "escape sequences in a pipe:\n{stderr:?}"
    );
    assert!(
        !stderr.contains('\r'),
        "carriage returns in a pipe:\n{stderr:?}"
    );
    let steps: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("s390-pxelinux: "))
        .collect();
    let lock = s390_pxelinux::fixtures::lock::Lock::embedded().expect("lock");
    for p in &lock.packages {
        let want = format!("s390-pxelinux: unpacking {} {}", p.name, p.version);
        // `build` never fetches the on-demand kernel source (only `kernel
        // build` and `build --loader minimal` do).
        assert_eq!(
            steps.contains(&want.as_str()),
            !p.role.on_demand(),
            "line {want:?} in:\n{stderr}"
        );
    }
    assert!(
        steps.contains(&"s390-pxelinux: assembling the kexec sysroot"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("wrote ")),
        "{stderr}"
    );
}
