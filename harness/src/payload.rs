//! Guest payloads built from the pinned fixtures and cached on disk:
//! pxelinux.0 per loader kernel (through `s390_pxelinux::build`), the target
//! initrd and its fragments, the root-disk initrd (modules of the target
//! kernel) and the ext4 root disk (`mke2fs -d`). Each file is named by a hash
//! of everything it is made from, written atomically into
//! `target/boot-payloads/`, and reused by later runs and other processes.
//! This module defines the target markers (`TARGET-UP`, `TARGET-INITRDS`,
//! `ROOTFS-UP`) by packing the scripts that print them (`harness/payload/`,
//! checked by shellcheck in `ci/test`); it must not start VMs.

use crate::HarnessError;
use s390_pxelinux::compress::{compress, Compression};
use s390_pxelinux::cpio::Archive;
use s390_pxelinux::fixtures::FixtureSet;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bump when a payload recipe changes in a way the hash inputs miss.
const RECIPE_VERSION: &str = "1";

/// Directory holding target-initrd marker files: one file per initrd piece.
pub const MARKER_DIR: &str = "/etc/target-initrds";

/// Where both target initrds keep [`TARGET_REPORT`].
pub const TARGET_REPORT_PATH: &str = "/lib/target-report.sh";

/// Sourced first by the /init of `@target-initrd` and `@rootfs-initrd`:
/// mounts, then `TARGET-UP` (the command line) and `TARGET-INITRDS` (the
/// marker files of every initrd piece that was unpacked, and the last one).
pub const TARGET_REPORT: &str = include_str!("../payload/target-report.sh");

/// /init of `@target-initrd`.
pub const TARGET_INIT: &str = include_str!("../payload/target-init");

/// Modules `@rootfs-initrd` loads (with their dependencies), in order.
/// ext4 asks the crypto API for crc32c at mount time (not a modinfo
/// dependency), so crc32c_generic is listed explicitly.
pub const ROOTFS_MODULES: &[&str] = &["virtio_blk", "crc32c_generic", "ext4"];

/// /init of `@rootfs-initrd`.
pub const ROOTFS_INITRD_INIT: &str = include_str!("../payload/rootfs-initrd-init");

/// /sbin/init on `@rootfs-disk`.
pub const ROOTFS_INIT: &str = include_str!("../payload/rootfs-init");

/// A built payload a scenario can refer to with `@name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Payload {
    /// `@pxelinux`: pxelinux.0 built with the scenario's pxelinux kernel.
    Pxelinux,
    /// `@target-kernel`: the scenario's target kernel image.
    TargetKernel,
    /// `@target-initrd`: klibc initrd (its `sh` and four tools, ~90 KB
    /// compressed) whose /init prints the target markers.
    TargetInitrd,
    /// `@target-initrd:NAME`: an initrd fragment adding marker NAME.
    TargetFragment(String),
    /// `@rootfs-initrd`: initrd that mounts the virtio-blk root disk and
    /// switch_roots into it (modules of the target kernel).
    RootfsInitrd,
    /// `@rootfs-disk`: ext4 disk image whose /sbin/init prints `ROOTFS-UP`.
    RootfsDisk,
}

impl Payload {
    /// Parses `@name[:arg]`; `None` if `s` does not start with `@`.
    pub fn parse(s: &str) -> Option<Result<Payload, String>> {
        let name = s.strip_prefix('@')?;
        Some(match name.split_once(':') {
            None => match name {
                "pxelinux" => Ok(Payload::Pxelinux),
                "target-kernel" => Ok(Payload::TargetKernel),
                "target-initrd" => Ok(Payload::TargetInitrd),
                "rootfs-initrd" => Ok(Payload::RootfsInitrd),
                "rootfs-disk" => Ok(Payload::RootfsDisk),
                other => Err(format!(
                    "unknown payload @{other} (known: @pxelinux, @target-kernel, @target-initrd, \
                     @target-initrd:NAME, @rootfs-initrd, @rootfs-disk)"
                )),
            },
            Some(("target-initrd", frag)) => {
                if !frag.is_empty()
                    && frag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && frag != "target"
                {
                    Ok(Payload::TargetFragment(frag.to_string()))
                } else {
                    Err(format!(
                        "@target-initrd:{frag}: the fragment name must be letters, digits, - or _ (and not `target`)"
                    ))
                }
            }
            Some((other, _)) => Err(format!("unknown payload @{other}:…")),
        })
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Pxelinux => write!(f, "@pxelinux"),
            Payload::TargetKernel => write!(f, "@target-kernel"),
            Payload::TargetInitrd => write!(f, "@target-initrd"),
            Payload::TargetFragment(n) => write!(f, "@target-initrd:{n}"),
            Payload::RootfsInitrd => write!(f, "@rootfs-initrd"),
            Payload::RootfsDisk => write!(f, "@rootfs-disk"),
        }
    }
}

/// The scenario settings payloads depend on.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    /// Kernel id of pxelinux.0 ("6.1").
    pub pxelinux_kernel: &'a str,
    /// Command line built into pxelinux.0.
    pub pxelinux_cmdline: &'a str,
    /// Kernel id of `@target-kernel` and `@rootfs-initrd` ("6.12", "6.1").
    pub target_kernel: &'a str,
}

/// Builds and caches payloads. Cheap to share between threads.
pub struct Payloads {
    fixtures: FixtureSet,
    lock: s390_pxelinux::fixtures::lock::Lock,
    cache: PathBuf,
    dir: PathBuf,
    building: Mutex<()>,
    /// What each kernel id and each loader's build resolved to, once per
    /// process: on a hit the minimal kernel and the loader tools still
    /// detect their toolchain (gcc, make, autoconf, automake: ~10
    /// processes) to compute their keys, which every trial paid before.
    kernels: Mutex<HashMap<String, s390_pxelinux::fixtures::KernelFixture>>,
    loader_inputs: Mutex<HashMap<String, s390_pxelinux::build::DefaultInputs>>,
}

/// The value `memo` holds for `id`, made by `make` the first time (under
/// the lock, so a build runs once while other threads wait); a failure is
/// not kept.
fn once_per_id<T: Clone>(
    memo: &Mutex<HashMap<String, T>>,
    id: &str,
    make: impl FnOnce() -> Result<T, HarnessError>,
) -> Result<T, HarnessError> {
    let mut memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = memo.get(id) {
        return Ok(v.clone());
    }
    let v = make()?;
    memo.insert(id.to_string(), v.clone());
    Ok(v)
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join("target")
        })
}

fn perr(a: &Payload, message: impl std::fmt::Display) -> HarnessError {
    HarnessError::Payload {
        name: a.to_string(),
        message: message.to_string(),
    }
}

/// Unused cache entries older than this are deleted when a sibling is built.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Marks a cache entry as used (its mtime is its last use).
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Deletes other versions of `name` (same name up to the `-<key>` suffix)
/// not used for [`STALE_AFTER`]: every rebuild of the harness makes a new
/// pxelinux.0, and the cache must not grow without bound. A TFTP tree that
/// hard-linked an old version keeps its data.
fn prune_stale(dir: &Path, name: &str) {
    let Some((stem, _)) = name.rsplit_once('-') else {
        return;
    };
    let prefix = format!("{stem}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        // Only `<stem>-<16 hex>.<ext>`: never a longer stem sharing the prefix.
        let key = rest.split('.').next().unwrap_or("");
        if file == name || key.len() != 16 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale {
            tracing::info!(file = %file, "pruning stale payload");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Identity of a file for cache keys: path, size and modification time.
fn file_identity(p: &Path) -> String {
    let meta = std::fs::metadata(p).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}:{}:{}",
        p.display(),
        meta.map(|m| m.len()).unwrap_or(0),
        mtime
    )
}

fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize()).chars().take(16).collect()
}

/// Adds `init` as /init and the [`TARGET_REPORT`] it sources.
fn add_target_init(a: &mut Archive, init: &str) -> Result<(), s390_pxelinux::cpio::CpioError> {
    a.add_file(TARGET_REPORT_PATH, TARGET_REPORT.as_bytes().to_vec(), 0o644)?;
    a.add_file("/init", init.as_bytes().to_vec(), 0o755)
}

fn marker_fragment(a: &mut Archive, name: &str) -> Result<(), s390_pxelinux::cpio::CpioError> {
    a.add_dir("/etc")?;
    a.add_dir(MARKER_DIR)?;
    a.add_file(&format!("{MARKER_DIR}/{name}"), Vec::new(), 0o644)?;
    a.add_file(
        "/etc/target-initrds.last",
        format!("{name}\n").into_bytes(),
        0o644,
    )?;
    Ok(())
}

impl Payloads {
    /// Makes sure the fixtures are present (fetching them on a cold cache)
    /// and caches payloads under `target/boot-payloads`.
    pub fn new() -> Result<Payloads, HarnessError> {
        let lock = s390_pxelinux::fixtures::lock::Lock::embedded()
            .map_err(s390_pxelinux::fixtures::FixtureError::from)?;
        let cache = s390_pxelinux::fixtures::default_cache_dir();
        let fixtures = s390_pxelinux::fixtures::ensure(&lock, &cache)?;
        Ok(Payloads {
            fixtures,
            lock,
            cache,
            dir: target_dir().join("boot-payloads"),
            building: Mutex::new(()),
            kernels: Mutex::new(HashMap::new()),
            loader_inputs: Mutex::new(HashMap::new()),
        })
    }

    /// The fixture set in use.
    pub fn fixtures(&self) -> &FixtureSet {
        &self.fixtures
    }

    /// The kernel a kernel id names (`6.1`, `6.12`, or `minimal`, which is
    /// built from source on first use and cached), looked up once per
    /// process.
    pub fn kernel(
        &self,
        id: &str,
        payload: &Payload,
    ) -> Result<s390_pxelinux::fixtures::KernelFixture, HarnessError> {
        once_per_id(&self.kernels, id, || {
            s390_pxelinux::build::kernel_by_id(&self.lock, &self.fixtures, &self.cache, id)
                .map_err(|e| perr(payload, e))
        })
    }

    /// The file for `payload`, built for `params`.
    pub fn get(&self, payload: &Payload, params: &Params<'_>) -> Result<PathBuf, HarnessError> {
        let target_kernel = params.target_kernel;
        match payload {
            Payload::TargetKernel => Ok(self.kernel(target_kernel, payload)?.image),
            Payload::Pxelinux => self.pxelinux(params.pxelinux_kernel, params.pxelinux_cmdline),
            Payload::TargetInitrd => {
                let tools = &self.fixtures.target_tools;
                let mut parts = vec![
                    RECIPE_VERSION.to_string(),
                    "target (klibc)".to_string(),
                    TARGET_REPORT.to_string(),
                    TARGET_INIT.to_string(),
                    file_identity(&tools.library),
                ];
                parts.extend(
                    s390_pxelinux::fixtures::TARGET_TOOL_PROGRAMS
                        .iter()
                        .map(|p| file_identity(&tools.bin.join(p))),
                );
                let k = key(&parts.iter().map(String::as_str).collect::<Vec<_>>());
                self.cached(&format!("target-initrd-{k}.gz"), payload, || {
                    // klibc's shell and four tools, not busybox: this initrd
                    // is fetched in every chain trial (docs/performance.md).
                    let mut a = s390_pxelinux::initramfs::base_with_target_tools(tools)
                        .map_err(|e| perr(payload, e))?;
                    add_target_init(&mut a, TARGET_INIT).map_err(|e| perr(payload, e))?;
                    marker_fragment(&mut a, "target").map_err(|e| perr(payload, e))?;
                    self.pack(a, payload)
                })
            }
            Payload::TargetFragment(name) => {
                let k = key(&[RECIPE_VERSION, "fragment", name]);
                self.cached(&format!("fragment-{name}-{k}.gz"), payload, || {
                    let mut a = Archive::new();
                    marker_fragment(&mut a, name).map_err(|e| perr(payload, e))?;
                    self.pack(a, payload)
                })
            }
            Payload::RootfsInitrd => {
                let kf = self.kernel(target_kernel, payload)?;
                let k = key(&[
                    RECIPE_VERSION,
                    "rootfs-initrd",
                    TARGET_REPORT,
                    ROOTFS_INITRD_INIT,
                    &ROOTFS_MODULES.join(","),
                    &file_identity(&self.fixtures.busybox),
                    &file_identity(&kf.modules),
                    &kf.release,
                ]);
                self.cached(
                    &format!("rootfs-initrd-{target_kernel}-{k}.gz"),
                    payload,
                    || {
                        let tree =
                            s390_pxelinux::initramfs::ModuleTree::open(&kf.modules, &kf.release)
                                .map_err(|e| perr(payload, e))?;
                        // A kernel with everything built in (the minimal
                        // one) needs no module: its tree holds none.
                        let mods = if tree.is_empty() {
                            Vec::new()
                        } else {
                            let names: Vec<String> =
                                ROOTFS_MODULES.iter().map(|s| s.to_string()).collect();
                            tree.resolve(&names, &["crc32c_generic"])
                                .map_err(|e| perr(payload, e))?
                        };
                        let mut a = self.busybox_base(payload)?;
                        let mut list = String::new();
                        for m in mods {
                            list.push_str(&m.guest_path);
                            list.push('\n');
                            a.add_file(&m.guest_path, m.data, 0o644)
                                .map_err(|e| perr(payload, e))?;
                        }
                        a.add_file("/etc/rootfs-modules", list.into_bytes(), 0o644)
                            .map_err(|e| perr(payload, e))?;
                        add_target_init(&mut a, ROOTFS_INITRD_INIT)
                            .map_err(|e| perr(payload, e))?;
                        marker_fragment(&mut a, "rootfs").map_err(|e| perr(payload, e))?;
                        self.pack(a, payload)
                    },
                )
            }
            Payload::RootfsDisk => {
                let k = key(&[
                    RECIPE_VERSION,
                    "rootfs-disk",
                    ROOTFS_INIT,
                    &file_identity(&self.fixtures.busybox),
                ]);
                let name = format!("rootfs-{k}.ext4");
                let path = self.dir.join(&name);
                if path.is_file() {
                    return Ok(path);
                }
                let _g = self.building.lock().unwrap_or_else(|p| p.into_inner());
                if path.is_file() {
                    return Ok(path);
                }
                self.make_rootfs_disk(&path)?;
                Ok(path)
            }
        }
    }

    fn busybox_base(&self, payload: &Payload) -> Result<Archive, HarnessError> {
        let bb = std::fs::read(&self.fixtures.busybox)
            .map_err(|e| HarnessError::io("reading busybox", &self.fixtures.busybox, e))?;
        let applets =
            s390_pxelinux::initramfs::busybox_applets(&bb).map_err(|e| perr(payload, e))?;
        s390_pxelinux::initramfs::base_with_busybox(&bb, &applets).map_err(|e| perr(payload, e))
    }

    fn pack(&self, a: Archive, payload: &Payload) -> Result<Vec<u8>, HarnessError> {
        let raw = a
            .write_newc(Vec::new(), s390_pxelinux::cpio::source_date_epoch())
            .map_err(|e| perr(payload, e))?;
        compress(&raw, Compression::Gzip).map_err(|e| perr(payload, e))
    }

    /// Returns `dir/name`, building it with `make` (under the build lock,
    /// written atomically) if it does not exist yet.
    fn cached(
        &self,
        name: &str,
        payload: &Payload,
        make: impl FnOnce() -> Result<Vec<u8>, HarnessError>,
    ) -> Result<PathBuf, HarnessError> {
        let path = self.dir.join(name);
        if path.is_file() {
            touch(&path);
            return Ok(path);
        }
        let _g = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if path.is_file() {
            touch(&path);
            return Ok(path);
        }
        let started = std::time::Instant::now();
        let data = make()?;
        self.write_atomic(&path, &data)?;
        tracing::info!(payload = %payload, path = %path.display(), bytes = data.len(),
            ms = started.elapsed().as_millis() as u64, "built payload");
        prune_stale(&self.dir, name);
        Ok(path)
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), HarnessError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| HarnessError::io("creating", &self.dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| HarnessError::io("creating a temporary file in", &self.dir, e))?;
        std::io::Write::write_all(&mut tmp, data)
            .map_err(|e| HarnessError::io("writing", tmp.path().to_path_buf(), e))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
        tmp.persist(path)
            .map_err(|e| HarnessError::io("renaming into", path, e.error))?;
        Ok(())
    }

    fn pxelinux(&self, kernel_id: &str, cmdline: &str) -> Result<PathBuf, HarnessError> {
        let payload = Payload::Pxelinux;
        // What `s390-pxelinux build --loader <id>` builds from (for the
        // minimal loader: its kernel and its static kexec and atftp, built
        // first if the cache lacks them).
        let inputs = once_per_id(&self.loader_inputs, kernel_id, || {
            s390_pxelinux::build::fixture_inputs(&self.lock, &self.fixtures, &self.cache, kernel_id)
                .map_err(|e| perr(&payload, e))
        })?;
        // The image depends on the s390_pxelinux code linked into this
        // executable: its identity is part of the key.
        let exe = std::env::current_exe()
            .map(|p| file_identity(&p))
            .unwrap_or_default();
        let guest: String = s390_pxelinux::initramfs::GUEST_FILES
            .iter()
            .map(|g| format!("{}\n{}\n", g.dest, g.content))
            .collect();
        let tftp_client = inputs
            .tftp_client
            .as_deref()
            .map(file_identity)
            .unwrap_or_default();
        let k = key(&[
            RECIPE_VERSION,
            "pxelinux",
            &exe,
            &guest,
            cmdline,
            &file_identity(&inputs.kernel),
            &file_identity(&inputs.busybox),
            &file_identity(&inputs.kexec),
            &tftp_client,
        ]);
        self.cached(&format!("pxelinux-{kernel_id}-{k}.0"), &payload, || {
            let mut spec = inputs.default_spec();
            spec.cmdline = cmdline.to_string();
            // The compressed initramfs is reused from the fixture cache, as
            // `s390-pxelinux build` does: scenarios that differ only in the
            // command line (9 of the suite's 10 loader images) share one
            // initramfs, whose zstd -19 was ~3-4 s of each build.
            let (image, _report) =
                s390_pxelinux::build::build_image_cached(&spec, Some(&self.cache))
                    .map_err(|e| perr(&payload, e))?;
            Ok(image)
        })
    }

    fn make_rootfs_disk(&self, path: &Path) -> Result<(), HarnessError> {
        let payload = Payload::RootfsDisk;
        let stage = tempfile::tempdir().map_err(|e| HarnessError::io("creating", "/tmp", e))?;
        let root = stage.path();
        let io = |what: &'static str, p: &Path, e: std::io::Error| HarnessError::io(what, p, e);
        for d in ["bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| io("creating", &p, e))?;
        }
        let bb = std::fs::read(&self.fixtures.busybox)
            .map_err(|e| io("reading busybox", &self.fixtures.busybox, e))?;
        let applets =
            s390_pxelinux::initramfs::busybox_applets(&bb).map_err(|e| perr(&payload, e))?;
        let bb_path = root.join("bin/busybox");
        std::fs::write(&bb_path, &bb).map_err(|e| io("writing", &bb_path, e))?;
        let init = root.join("sbin/init");
        std::fs::write(&init, ROOTFS_INIT).map_err(|e| io("writing", &init, e))?;
        use std::os::unix::fs::PermissionsExt;
        for p in [&bb_path, &init] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| io("chmod", p, e))?;
        }
        for a in applets.iter().filter(|a| !a.is_empty() && !a.contains('/')) {
            let link = root.join("bin").join(a);
            if link.exists() || a == "init" {
                continue;
            }
            std::os::unix::fs::symlink("busybox", &link).map_err(|e| io("symlink", &link, e))?;
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", &self.dir, e))?;
        let tmp = self.dir.join(format!(".rootfs-{}.tmp", std::process::id()));
        let mke2fs = ["/sbin/mke2fs", "/usr/sbin/mke2fs"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("mke2fs"));
        let out = std::process::Command::new(&mke2fs)
            .args([
                "-t",
                "ext4",
                "-O",
                "^metadata_csum",
                "-F",
                "-q",
                "-L",
                "rootfs",
            ])
            .args(["-U", "6c6f6f6b-2d61-7420-6d65-2d726f6f7466"])
            .args(["-E", "root_owner=0:0"])
            .arg("-d")
            .arg(root)
            .arg(&tmp)
            .arg("32M")
            .env("E2FSPROGS_FAKE_TIME", "1700000000")
            .output()
            .map_err(|e| HarnessError::Tool {
                tool: "mke2fs",
                message: format!(
                    "{}: {e} (install e2fsprogs: ci/install-deps)",
                    mke2fs.display()
                ),
            })?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(HarnessError::Tool {
                tool: "mke2fs",
                message: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        std::fs::rename(&tmp, path).map_err(|e| io("renaming into", path, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_id_is_resolved_once_and_a_failure_is_not_kept() {
        let memo = Mutex::new(HashMap::new());
        let fail = || Err(perr(&Payload::Pxelinux, "no compiler"));
        assert!(once_per_id::<u32>(&memo, "minimal", fail).is_err());
        let mut calls = 0;
        for _ in 0..3 {
            let v = once_per_id(&memo, "minimal", || {
                calls += 1;
                Ok(7)
            });
            assert_eq!(v.unwrap(), 7);
        }
        assert_eq!(calls, 1);
        assert_eq!(once_per_id(&memo, "6.1", || Ok(1)).unwrap(), 1);
    }

    fn aged(dir: &Path, name: &str, age_secs: u64) {
        let p = dir.join(name);
        std::fs::write(&p, b"x").expect("write");
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
        std::fs::File::options()
            .append(true)
            .open(&p)
            .and_then(|f| f.set_modified(t))
            .expect("set mtime");
    }

    #[test]
    fn pruning_removes_only_stale_versions_of_the_same_payload() {
        let d = tempfile::tempdir().expect("tempdir");
        let day = 24 * 3600;
        aged(d.path(), "pxelinux-6.1-00000000000000aa.0", 2 * day); // stale sibling
        aged(d.path(), "pxelinux-6.1-00000000000000bb.0", 60); // recently used sibling
        aged(d.path(), "pxelinux-6.12-00000000000000cc.0", 2 * day); // other kernel
        aged(d.path(), "pxelinux-6.1-00000000000000dd.0", 0); // the new one
        prune_stale(d.path(), "pxelinux-6.1-00000000000000dd.0");
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(d.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!left.contains("pxelinux-6.1-00000000000000aa.0"));
        for kept in [
            "pxelinux-6.1-00000000000000bb.0",
            "pxelinux-6.12-00000000000000cc.0",
            "pxelinux-6.1-00000000000000dd.0",
        ] {
            assert!(left.contains(kept), "{kept} was pruned");
        }
    }
}
