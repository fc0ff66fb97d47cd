//! Atomic output files: everything the tool writes goes to a temporary file in
//! the destination directory and is renamed into place only when complete.
//! This module must not decide *what* is written, only that a reader never sees
//! a partial or stale file.

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
    let mut tmp = tempfile::Builder::new()
        .prefix(".s390-pxelinux-")
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
