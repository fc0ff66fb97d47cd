//! The per-scenario artifact directory `target/boot-artifacts/<scenario>/`:
//! created empty for every run, it holds the TFTP tree QEMU serves (`tftp/`,
//! written by [`crate::tree`]), its listing (`tftp-tree.txt`), the console
//! transcript (`console.log`), QEMU's command line (`qemu-cmdline.sh`),
//! output (`qemu.log`) and QMP transcript (`qmp.log`), the verdict
//! (`result.txt`), and what the network and HTTP server write (`net.pcap`,
//! `network.pcap`, `dhcp.log`, `tftp.log`, `dnsmasq.*`, `http.log`). It
//! only names and creates the directory (no other part of a run is its
//! concern, so every part may use it); it must not write a run's files nor
//! start QEMU.

use crate::HarnessError;
use std::path::{Path, PathBuf};

/// The root of all artifact directories: `target/boot-artifacts`.
pub fn artifacts_root() -> PathBuf {
    crate::payload::target_dir().join("boot-artifacts")
}

/// One run's artifact directory, and the one place its file names are
/// spelled (the network modes' captures and server files included: they
/// get their paths from here through [`crate::network::NetContext`]). A
/// run's directory ([`ArtifactDir::fresh`]) holds an
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

    /// The same directory without the lock, which stays with `self`: for
    /// a value that names the run's files but does not own the run
    /// ([`crate::runner::Prepared`]).
    pub fn unlocked(&self) -> ArtifactDir {
        ArtifactDir {
            dir: self.dir.clone(),
            _lock: None,
        }
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

    /// QEMU's output.
    pub fn qemu_log(&self) -> PathBuf {
        self.file("qemu.log")
    }

    /// The QMP transcript.
    pub fn qmp_log(&self) -> PathBuf {
        self.file("qmp.log")
    }

    /// QEMU's command line, as a shell script.
    pub fn qemu_cmdline(&self) -> PathBuf {
        self.file("qemu-cmdline.sh")
    }

    /// The verdict.
    pub fn result(&self) -> PathBuf {
        self.file("result.txt")
    }

    /// The run's HTTP server's log.
    pub fn http_log(&self) -> PathBuf {
        self.file("http.log")
    }

    /// The guest's traffic as QEMU's `filter-dump` sees it (slirp,
    /// dnsmasq).
    pub fn net_pcap(&self) -> PathBuf {
        self.file("net.pcap")
    }

    /// The in-process segment's capture.
    pub fn network_pcap(&self) -> PathBuf {
        self.file("network.pcap")
    }

    /// The in-process TFTP server's (and TCP relay's) log.
    pub fn tftp_log(&self) -> PathBuf {
        self.file("tftp.log")
    }

    /// The in-process DHCP server's log.
    pub fn dhcp_log(&self) -> PathBuf {
        self.file("dhcp.log")
    }

    /// The configuration the dnsmasq mode starts dnsmasq with.
    pub fn dnsmasq_conf(&self) -> PathBuf {
        self.file("dnsmasq.conf")
    }

    /// dnsmasq's log (`--log-dhcp`) and stderr.
    pub fn dnsmasq_log(&self) -> PathBuf {
        self.file("dnsmasq.log")
    }

    /// dnsmasq's lease file.
    pub fn dnsmasq_leases(&self) -> PathBuf {
        self.file("dnsmasq.leases")
    }

    /// dnsmasq's pid file.
    pub fn dnsmasq_pid(&self) -> PathBuf {
        self.file("dnsmasq.pid")
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
