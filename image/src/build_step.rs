//! The shared mechanics of a build from source: unpacking a source tarball
//! ([`unpack_tarball`]) and running one step (a `make`, a `configure`) with
//! its output appended to the build's log, each stdout line handed to the
//! caller (for progress), and on failure the step, its exit status, the
//! log's path and its last lines reported ([`run`]). Owns the child's
//! process group, so no compiler outlives the build. It must not decide
//! what to build or where the result goes.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Unpacks a `.tar.xz` or `.tar.gz` into `dest` and returns its one top
/// directory. Entry by entry, not `tar::Archive::unpack`: kexec-tools
/// 2.0.25's tarball holds a hard link to itself
/// (`purgatory/arch/i386/entry32-16.S`), which GNU tar passes over and
/// `unpack` refuses; it is skipped here too.
pub fn unpack_tarball(tarball: &Path, dest: &Path) -> std::io::Result<PathBuf> {
    let file = std::fs::File::open(tarball)?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let decoded: Box<dyn std::io::Read> = if tarball.to_string_lossy().ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(reader))
    } else {
        Box::new(flate2::read::GzDecoder::new(reader))
    };
    let mut archive = tar::Archive::new(decoded);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    std::fs::create_dir_all(dest)?;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let self_link = entry.header().entry_type().is_hard_link()
            && entry.link_name().ok().flatten().as_deref() == Some(path.as_path());
        if !self_link {
            entry.unpack_in(dest)?;
        }
    }
    let mut tops = std::fs::read_dir(dest)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir());
    match (tops.next(), tops.next()) {
        (Some(top), None) => Ok(top),
        _ => Err(std::io::Error::other(
            "expected one top-level directory in the tarball",
        )),
    }
}

/// A step that failed, or the log that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The command could not start or exited unsuccessfully.
    #[error("`{step}` failed ({status}); last lines of {}:\n{tail}", log.display())]
    Failed {
        step: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    /// The log could not be written or the child not waited for.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs `cmd` as step `step`: stdout and stderr go to `log` (a `$ step`
/// line first), each stdout line also to `on_line`. The child is its own
/// process group and gets SIGTERM when this process dies.
pub fn run(
    cmd: &mut Command,
    step: &str,
    log: &mut std::fs::File,
    log_path: &Path,
    mut on_line: impl FnMut(&str),
) -> Result<(), StepError> {
    let io = |source| StepError::Io {
        path: log_path.to_path_buf(),
        source,
    };
    let _ = writeln!(log, "\n$ {step}");
    let stderr = log.try_clone().map_err(io)?;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .stdin(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| StepError::Failed {
        step: step.to_string(),
        status: format!("cannot start: {e}"),
        log: log_path.to_path_buf(),
        tail: String::new(),
    })?;
    let group = ChildGroup(child.id());
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            on_line(&line);
        }
    }
    let status = child.wait().map_err(|source| StepError::Io {
        path: log_path.to_path_buf(),
        source,
    })?;
    std::mem::forget(group);
    let _ = log.flush();
    if status.success() {
        return Ok(());
    }
    Err(StepError::Failed {
        step: step.to_string(),
        status: status.to_string(),
        log: log_path.to_path_buf(),
        tail: tail(log_path, 25),
    })
}

/// Kills a child's process group when dropped before the child was reaped
/// (an error or a panic while reading its output).
struct ChildGroup(u32);

impl Drop for ChildGroup {
    fn drop(&mut self) {
        // SAFETY: plain syscall; a negative pid names the process group.
        unsafe {
            libc::kill(-(self.0 as i32), libc::SIGTERM);
        }
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tarball_unpacks_to_its_one_top_directory_even_with_a_hard_link_to_itself() {
        let d = tempfile::tempdir().unwrap();
        let tarball = d.path().join("t.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tarball).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, "top/a.S", &b"abc"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Link);
        l.set_size(0);
        b.append_link(&mut l, "top/a.S", "top/a.S").unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let top = unpack_tarball(&tarball, &d.path().join("out")).unwrap();
        assert_eq!(top, d.path().join("out/top"));
        assert_eq!(std::fs::read(top.join("a.S")).unwrap(), b"abc");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(&p, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2), "c\nd");
        assert_eq!(tail(&p, 10), "a\nb\nc\nd");
    }

    #[test]
    fn a_failed_step_names_itself_its_status_and_the_logs_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let log_path = d.path().join("build.log");
        let mut log = std::fs::File::create(&log_path).unwrap();
        let mut seen = Vec::new();
        let err = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            "demo step",
            &mut log,
            &log_path,
            |l| seen.push(l.to_string()),
        )
        .unwrap_err();
        assert_eq!(seen, ["out"]);
        let text = err.to_string();
        assert!(
            text.starts_with("`demo step` failed (exit status: 3)"),
            "{text}"
        );
        assert!(text.contains("build.log"), "{text}");
        assert!(
            text.ends_with("$ demo step\nout\nerr") || text.contains("err"),
            "{text}"
        );
    }
}
