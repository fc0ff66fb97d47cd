//! Atomic output files: everything the tool writes goes to a temporary file in
//! the destination directory and is renamed into place only when complete.
//! This module must not decide *what* is written, only that a reader never sees
//! a partial or stale file. A temporary is named after its writer's pid
//! (`.s390-pxelinux-<pid>-XXXXXX.tmp`); a writer killed mid-write (SIGKILL)
//! leaves it behind, and the next write into the same directory removes
//! every such temporary whose writer is gone.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Failure to create or commit an output file.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    /// The output's directory cannot hold a temporary file (missing or not writable).
    #[error("output {path}: cannot create a file in directory {dir}: {source}")]
    CreateTemp {
        path: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
    /// Writing the content failed.
    #[error("output {path}: write failed: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The final rename failed.
    #[error("output {path}: cannot move the finished file into place: {source}")]
    Persist {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Name prefix of this module's temporary files (then `<pid>-`, random, `.tmp`).
pub const TEMP_PREFIX: &str = ".s390-pxelinux-";

/// The writer pid in a temporary's file name, if the name is one of ours.
fn temporary_writer(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(".tmp")?;
    rest.split_once('-')?.0.parse().ok()
}

/// True if `pid` is a live process: `/proc/<pid>/stat` exists and its state
/// is not zombie (Z) or dead (X). The harness uses it too, to prove QEMU is
/// gone.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next()),
            Some("Z" | "X")
        ),
        Err(_) => false,
    }
}

/// Removes the temporaries in `dir` left by writers that are gone (killed
/// mid-write). A live writer's temporary is kept; errors are ignored (a
/// leftover only costs disk space).
pub fn sweep_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temporary_writer) else {
            continue;
        };
        if !process_alive(pid) {
            tracing::info!(file = %e.path().display(), pid, "removing a stale temporary");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `path` atomically: `fill` writes the content into a temporary file in
/// the same directory, which is renamed over `path` only if `fill` succeeds.
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_atomically<E>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<Result<(), E>, AtomicWriteError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    sweep_stale_temporaries(&dir);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|source| AtomicWriteError::CreateTemp {
            path: path.to_path_buf(),
            dir: dir.clone(),
            source,
        })?;
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        if let Err(e) = fill(&mut buffered) {
            return Ok(Err(e));
        }
        buffered.flush().map_err(|source| AtomicWriteError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|source| AtomicWriteError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    // tempfile creates 0600; a boot image is meant to be served, so 0644.
    set_mode_0644(tmp.as_file()).map_err(|source| AtomicWriteError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    tmp.persist(path).map_err(|e| AtomicWriteError::Persist {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(Ok(()))
}

fn set_mode_0644(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporaries_of_dead_writers_are_swept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let dead = child.id();
        child.wait().expect("reap");
        let live = std::process::id();
        let names = [
            format!("{TEMP_PREFIX}{dead}-abc123.tmp"),
            format!("{TEMP_PREFIX}{live}-abc123.tmp"),
            format!("{TEMP_PREFIX}abc123.tmp"),
            "pxelinux.0".to_string(),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), b"x").expect("write");
        }
        sweep_stale_temporaries(dir.path());
        let left: Vec<bool> = names.iter().map(|n| dir.path().join(n).exists()).collect();
        assert_eq!(left, [false, true, true, true], "{names:?}");
    }
}
