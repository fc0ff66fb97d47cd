//! The per-scenario artifact directory `target/boot-artifacts/<scenario>/`:
//! created empty for every run, it holds the TFTP tree QEMU serves (`tftp/`),
//! its listing (`tftp-tree.txt`), the console transcript (`console.log`),
//! QEMU's command line (`qemu-cmdline.sh`), output (`qemu.log`) and QMP
//! transcript (`qmp.log`), an optional `net.pcap` and the verdict
//! (`result.txt`). It only lays out files; it must not start QEMU.

use crate::payload::Payloads;
use crate::scenario::{Scenario, Source};
use crate::HarnessError;
use std::path::{Path, PathBuf};

/// The root of all artifact directories: `target/boot-artifacts`.
pub fn artifacts_root() -> PathBuf {
    crate::payload::target_dir().join("boot-artifacts")
}

/// One run's artifact directory, and the one place its file names are
/// spelled (the network modes name the captures and server logs they write
/// into it: `net.pcap`, `network.pcap`, `dhcp.log`, `tftp.log`,
/// `dnsmasq.*`). A run's directory ([`ArtifactDir::fresh`]) holds an
/// exclusive lock on `root/.<name>.lock` while it lives, so two processes
/// running the same scenario (two engineers, `cargo test` beside `cargo
/// nextest`) take turns instead of deleting each other's TFTP tree.
#[derive(Debug)]
pub struct ArtifactDir {
    /// The directory.
    pub dir: PathBuf,
    _lock: Option<std::fs::File>,
}

impl ArtifactDir {
    /// The files worth opening first after a failed run, as a failure
    /// report lists them.
    pub const FIRST_LOOK: &'static str =
        "console.log, qemu-cmdline.sh, tftp-tree.txt, qemu.log, qmp.log";

    /// Creates `root/<name>`, removing what a previous run left there
    /// (after waiting for any other run of the same scenario to finish).
    pub fn fresh(root: &Path, name: &str) -> Result<ArtifactDir, HarnessError> {
        std::fs::create_dir_all(root).map_err(|e| HarnessError::io("creating", root, e))?;
        let lock_path = root.join(format!(".{name}.lock"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| HarnessError::io("opening", &lock_path, e))?;
        if lock.try_lock().is_err() {
            tracing::warn!(
                scenario = name,
                "another process is running this scenario; waiting"
            );
            lock.lock()
                .map_err(|e| HarnessError::io("locking", &lock_path, e))?;
        }
        let dir = root.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| HarnessError::io("removing", &dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("creating", &dir, e))?;
        Ok(ArtifactDir {
            dir,
            _lock: Some(lock),
        })
    }

    /// `dir` as a run directory, created if missing and kept as it is
    /// otherwise (`boot --artifacts DIR`, a temporary directory): no lock,
    /// nothing removed.
    pub fn existing(dir: &Path) -> Result<ArtifactDir, HarnessError> {
        std::fs::create_dir_all(dir).map_err(|e| HarnessError::io("creating", dir, e))?;
        Ok(ArtifactDir {
            dir: dir.to_path_buf(),
            _lock: None,
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The TFTP root.
    pub fn tftp_root(&self) -> PathBuf {
        self.file("tftp")
    }

    /// The TFTP tree's listing.
    pub fn tftp_listing(&self) -> PathBuf {
        self.file("tftp-tree.txt")
    }

    /// The console transcript.
    pub fn console_log(&self) -> PathBuf {
        self.file("console.log")
    }

    /// QEMU's console, output, QMP transcript and command line.
    pub fn machine_logs(&self) -> crate::qemu::MachineLogs {
        crate::qemu::MachineLogs {
            console: Some(self.console_log()),
            qemu_output: Some(self.file("qemu.log")),
            qmp: Some(self.file("qmp.log")),
            cmdline: Some(self.file("qemu-cmdline.sh")),
        }
    }

    /// The verdict.
    pub fn result(&self) -> PathBuf {
        self.file("result.txt")
    }

    /// The run's HTTP server's log.
    pub fn http_log(&self) -> PathBuf {
        self.file("http.log")
    }

    /// The run's FTP server's log.
    pub fn ftp_log(&self) -> PathBuf {
        self.file("ftp.log")
    }

    /// Disk `i` (0-based) when it is inline text.
    pub fn disk(&self, i: usize) -> PathBuf {
        self.file(&format!("disk{i}.img"))
    }

    /// The direct-boot kernel when it is inline text.
    pub fn direct_kernel(&self) -> PathBuf {
        self.file("direct-kernel")
    }

    /// Direct-boot initrd `i` (0-based) when it is inline text.
    pub fn direct_initrd_part(&self, i: usize) -> PathBuf {
        self.file(&format!("direct-initrd-{i}"))
    }

    /// The direct-boot initrds, concatenated.
    pub fn direct_initrd(&self) -> PathBuf {
        self.file("direct-initrd.img")
    }
}

/// Resolves a source to a host file (artifacts are built/cached; inline
/// text is written to `scratch`).
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
