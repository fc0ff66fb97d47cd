//! The run's TFTP tree and the host files of a scenario's sources: each
//! `[tftp]` entry placed under [`ArtifactDir::tftp_root`] (payloads and
//! files as hard links, else symlinks, into the cache; inline text
//! written), the tree's listing, and a disk's or direct-boot file's source
//! as a host path. It must not start QEMU or attach networks.

use crate::artifacts::ArtifactDir;
use crate::payload::Payloads;
use crate::scenario::{Scenario, Source};
use crate::HarnessError;
use std::path::{Path, PathBuf};

/// Resolves a source to a host file (payloads are built or taken from the
/// cache, files are used where they are, inline text is written to
/// `scratch`).
pub fn source_file(
    src: &Source,
    scenario: &Scenario,
    payloads: &Payloads,
    scratch: &Path,
) -> Result<PathBuf, HarnessError> {
    match src {
        Source::Payload(a) => payloads.get(a, &scenario.payload_params()),
        Source::File(p) => Ok(p.clone()),
        Source::Text(t) => {
            std::fs::write(scratch, t).map_err(|e| HarnessError::io("writing", scratch, e))?;
            Ok(scratch.to_path_buf())
        }
    }
}

/// Places `from` at `to`: a hard link when possible (same file system),
/// else an absolute symlink (QEMU's TFTP server follows symlinks).
fn place(from: &Path, to: &Path) -> Result<(), HarnessError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let abs = std::fs::canonicalize(from).map_err(|e| HarnessError::io("resolving", from, e))?;
    std::os::unix::fs::symlink(&abs, to)
        .map_err(|e| HarnessError::io("linking into the TFTP tree", to, e))
}

/// Writes the scenario's TFTP tree under `dir.tftp_root()` and its listing
/// to `tftp-tree.txt`; returns the listing.
pub fn write_tftp_tree(
    dir: &ArtifactDir,
    scenario: &Scenario,
    payloads: &Payloads,
) -> Result<String, HarnessError> {
    let root = dir.tftp_root();
    std::fs::create_dir_all(&root).map_err(|e| HarnessError::io("creating", &root, e))?;
    let mut listing = String::new();
    for (rel, src) in &scenario.tftp {
        let dest = root.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HarnessError::io("creating", parent, e))?;
        }
        let origin = match src {
            Source::Text(t) => {
                std::fs::write(&dest, t).map_err(|e| HarnessError::io("writing", &dest, e))?;
                "inline text".to_string()
            }
            Source::File(p) => {
                place(p, &dest)?;
                format!("file {}", p.display())
            }
            Source::Payload(a) => {
                let p = payloads.get(a, &scenario.payload_params())?;
                place(&p, &dest)?;
                format!("{a} = {}", p.display())
            }
        };
        let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        listing.push_str(&format!("{rel:<40} {size:>10}  {origin}\n"));
    }
    let list_path = dir.tftp_listing();
    std::fs::write(&list_path, &listing).map_err(|e| HarnessError::io("writing", &list_path, e))?;
    Ok(listing)
}
