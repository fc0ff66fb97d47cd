//! `s390-pxelinux build`: turns validated inputs into pxelinux.0. Owns input
//! validation (each error names the input), the choice of default inputs
//! (pinned fixtures on other hosts, the running system on s390x), and the
//! pipeline kernel → modules → kexec closure → initramfs → compression →
//! combined image → atomic write. It must not fetch anything itself (it asks
//! [`crate::fixtures`]) and never leaves a partial output file.

use crate::compress::{self, Compression};
use crate::cpio;
use crate::fixtures::{self, lock::Lock, FixtureError};
use crate::initramfs::{self, PxeContents};
use crate::kernel::{self, KernelError};
use crate::modules::{ModuleError, ModuleTree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The modules pxelinux.0 carries unless `--modules` is given.
pub use crate::modules::DEFAULT_MODULES;

/// The files an executable needs from a sysroot (guest path → host path),
/// as the build adds them for kexec and the TFTP client.
pub use crate::elfdeps::resolve as elf_closure;

/// The command line written into pxelinux.0 unless `--cmdline` is given.
///
/// `cryptomgr.notests` skips the crypto self-tests the loader kernel would
/// run at boot (0.27 s of its 1.0 s init under TCG, `initcall_debug`): they
/// check the kernel's own algorithm implementations, not anything the loader
/// fetches, and FIPS mode runs them regardless.
pub const DEFAULT_CMDLINE: &str = "console=ttysclp0 quiet cryptomgr.notests";

/// coreutils' `libstdbuf.so`, at the same path in the sysroot and in the
/// guest. With an atftp client the build adds it when the sysroot has it,
/// and the guest preloads it into atftp (`_STDBUF_E`): atftp's `--trace`,
/// which the tsize check reads, writes a line per packet to unbuffered
/// stderr, and buffering it saves ~0.4 s per 9 MB fetched under TCG.
pub const STDBUF_LIBRARY: &str = "usr/libexec/coreutils/libstdbuf.so";

/// The kernel id (see the lock) pxelinux.0 uses by default. Debian's 6.12
/// s390x kernel is built without CONFIG_KEXEC/CONFIG_KEXEC_FILE, so the
/// Debian loader is the 6.1 kernel; 6.12 is a *target* kernel. The other
/// loader is [`crate::minimal_kernel::KERNEL_ID`], built from source (it
/// needs a cross compiler, so it is not the default of `build`).
pub const DEFAULT_LOADER_KERNEL: &str = "6.1";

/// Fully specified build inputs.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// s390 kernel image.
    pub kernel: PathBuf,
    /// `lib/modules/<release>` tree (None: no modules at all).
    pub modules: Option<PathBuf>,
    /// Static s390x busybox.
    pub busybox: PathBuf,
    /// s390x kexec binary.
    pub kexec: PathBuf,
    /// Tree in which kexec's (and the TFTP client's) interpreter and
    /// libraries are resolved.
    pub sysroot: PathBuf,
    /// s390x atftp binary, installed as `/usr/bin/atftp` (None: the guest
    /// uses busybox tftp, which cannot check the server's tsize).
    pub tftp_client: Option<PathBuf>,
    /// Modules to include (with dependencies).
    pub module_names: Vec<String>,
    /// True when `module_names` is the default set (missing ones are skipped).
    pub default_modules: bool,
    /// Kernel command line.
    pub cmdline: String,
    /// Initramfs compression.
    pub compression: Compression,
    /// Extra files: (host source, guest destination).
    pub add: Vec<(PathBuf, String)>,
}

/// Every way a build can fail; each names the offending input.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An input file cannot be read.
    #[error("{input} {path}: {source}")]
    Read {
        input: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The kernel is unusable.
    #[error("--kernel {path}: {source}")]
    Kernel { path: PathBuf, source: KernelError },
    /// The kernel cannot run kexec.
    #[error("--kernel {path}: {message}")]
    NoKexec { path: PathBuf, message: String },
    /// The command line does not fit.
    #[error("--cmdline: {0}")]
    Cmdline(KernelError),
    /// The modules are unusable.
    #[error("--modules: {0}")]
    Modules(#[from] ModuleError),
    /// busybox is unusable.
    #[error("--busybox {path}: {source}")]
    Busybox {
        path: PathBuf,
        source: crate::busybox::BusyboxError,
    },
    /// kexec or its libraries are unusable.
    #[error("--kexec/--sysroot: {0}")]
    Kexec(#[from] crate::elfdeps::ElfDepsError),
    /// The TFTP client or its libraries are unusable.
    #[error("--tftp-client {0}/--sysroot: {1}")]
    TftpClient(PathBuf, crate::elfdeps::ElfDepsError),
    /// An `--add` argument is malformed.
    #[error("--add {0:?}: expected SRC:DEST with DEST an absolute path")]
    AddSyntax(String),
    /// The initramfs cannot be assembled.
    #[error("initramfs: {0}")]
    Archive(#[from] cpio::CpioError),
    /// Compression failed.
    #[error("compressing the initramfs ({compression}): {source}")]
    Compress {
        compression: Compression,
        source: std::io::Error,
    },
    /// Default inputs could not be obtained (boxed: it is much larger than the rest).
    #[error(transparent)]
    Fixtures(Box<FixtureError>),
    /// The minimal kernel could not be built.
    #[error(transparent)]
    MinimalKernel(Box<crate::minimal_kernel::MinimalKernelError>),
    /// The minimal loader's static kexec and atftp could not be built.
    #[error(transparent)]
    LoaderTools(Box<crate::loader_tools::LoaderToolsError>),
    /// The output cannot be written.
    #[error(transparent)]
    Output(#[from] crate::atomic::AtomicWriteError),
}

impl From<FixtureError> for BuildError {
    fn from(e: FixtureError) -> Self {
        BuildError::Fixtures(Box::new(e))
    }
}

impl From<crate::loader_tools::LoaderToolsError> for BuildError {
    fn from(e: crate::loader_tools::LoaderToolsError) -> Self {
        BuildError::LoaderTools(Box::new(e))
    }
}

impl From<crate::minimal_kernel::MinimalKernelError> for BuildError {
    fn from(e: crate::minimal_kernel::MinimalKernelError) -> Self {
        BuildError::MinimalKernel(Box::new(e))
    }
}

/// What a build produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildReport {
    /// Kernel release of the first stage.
    pub kernel_release: String,
    /// Modules included, in load order.
    pub modules: Vec<String>,
    /// Initramfs entries.
    pub entries: usize,
    /// Uncompressed initramfs size.
    pub initramfs_raw_bytes: usize,
    /// Compressed initramfs size.
    pub initramfs_bytes: usize,
    /// Final image size.
    pub image_bytes: usize,
    /// Compression used.
    pub compression: Compression,
}

/// Parses `SRC:DEST`.
pub fn parse_add(arg: &str) -> Result<(PathBuf, String), BuildError> {
    match arg.rsplit_once(':') {
        Some((src, dest)) if !src.is_empty() && dest.starts_with('/') => {
            Ok((PathBuf::from(src), dest.to_string()))
        }
        _ => Err(BuildError::AddSyntax(arg.to_string())),
    }
}

fn read(input: &'static str, path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Read {
        input,
        path: path.to_path_buf(),
        source,
    })
}

/// Refuses a kernel whose config (found next to it as `config-<release>`)
/// says it has neither kexec system call: pxelinux.0 could never boot anything.
fn check_kexec_support(kernel: &Path, release: &str) -> Result<(), BuildError> {
    let Some(dir) = kernel.parent() else {
        return Ok(());
    };
    let Ok(config) = std::fs::read_to_string(dir.join(format!("config-{release}"))) else {
        return Ok(());
    };
    let has = |opt: &str| config.lines().any(|l| l == format!("{opt}=y"));
    if !has("CONFIG_KEXEC") && !has("CONFIG_KEXEC_FILE") {
        return Err(BuildError::NoKexec {
            path: kernel.to_path_buf(),
            message: format!(
                "its config (config-{release}) has neither CONFIG_KEXEC nor CONFIG_KEXEC_FILE, \
                 so pxelinux.0 could not kexec into a target kernel; use a kernel with kexec support"
            ),
        });
    }
    Ok(())
}

/// Reads each library of an ELF closure (guest path → sysroot path) that
/// `libraries` does not hold yet.
fn add_libraries(
    libraries: &mut BTreeMap<String, Vec<u8>>,
    closure: BTreeMap<String, PathBuf>,
) -> Result<(), BuildError> {
    for (guest, host) in closure {
        if let std::collections::btree_map::Entry::Vacant(slot) = libraries.entry(guest) {
            slot.insert(read("--sysroot", &host)?);
        }
    }
    Ok(())
}

/// Adds [`STDBUF_LIBRARY`] and its ELF closure when the sysroot has it;
/// without it the guest runs atftp unbuffered (slower, same result).
fn add_stdbuf(libraries: &mut BTreeMap<String, Vec<u8>>, sysroot: &Path) -> Result<(), BuildError> {
    let host = sysroot.join(STDBUF_LIBRARY);
    if !host.is_file() {
        tracing::info!("no {STDBUF_LIBRARY} in the sysroot: atftp's trace stays unbuffered");
        return Ok(());
    }
    let deps = crate::elfdeps::resolve(&host, sysroot)
        .map_err(|e| BuildError::TftpClient(host.clone(), e))?;
    add_libraries(libraries, deps)?;
    libraries.insert(format!("/{STDBUF_LIBRARY}"), read("--sysroot", &host)?);
    Ok(())
}

/// Builds the image bytes (no file written), compressing the initramfs every time.
pub fn build_image(spec: &BuildSpec) -> Result<(Vec<u8>, BuildReport), BuildError> {
    build_image_cached(spec, None)
}

/// Compresses `raw`, reusing an earlier result stored under
/// `cache/initramfs/<sha256 of raw>.<codec>` when `cache` is given: xz of the
/// 4.6 MB initramfs costs ~2.5 s, every other build step together ~0.2 s, and
/// the output is a pure function of the archive bytes and the codec.
fn compress_cached(
    raw: &[u8],
    how: Compression,
    cache: Option<&Path>,
) -> Result<Vec<u8>, BuildError> {
    let compress_err = |source| BuildError::Compress {
        compression: how,
        source,
    };
    let Some(cache) = cache else {
        return compress::compress(raw, how).map_err(compress_err);
    };
    use sha2::Digest;
    let key = hex::encode(sha2::Sha256::digest(raw));
    let path = cache.join("initramfs").join(format!("{key}.{how}"));
    if let Ok(hit) = std::fs::read(&path) {
        if compress::decompressed_len_matches(&hit, raw.len()) {
            return Ok(hit);
        }
    }
    let packed = compress::compress(raw, how).map_err(compress_err)?;
    // A cache that cannot be written only costs time next build.
    if let Some(dir) = path.parent() {
        if std::fs::create_dir_all(dir).is_ok() {
            let _ = crate::atomic::write_atomically(&path, |w| w.write_all(&packed));
        }
    }
    Ok(packed)
}

/// Builds the image bytes (no file written), reusing compressed initramfs
/// results under `cache` when given.
pub fn build_image_cached(
    spec: &BuildSpec,
    cache: Option<&Path>,
) -> Result<(Vec<u8>, BuildReport), BuildError> {
    let started = Instant::now();
    let kernel_bytes = read("--kernel", &spec.kernel)?;
    let header = kernel::read_header(&kernel_bytes).map_err(|source| BuildError::Kernel {
        path: spec.kernel.clone(),
        source,
    })?;
    kernel::check_cmdline(&header, &spec.cmdline).map_err(BuildError::Cmdline)?;
    let release = header.release.clone().unwrap_or_default();
    check_kexec_support(&spec.kernel, &release)?;

    let modules = match &spec.modules {
        Some(dir) => {
            let tree = ModuleTree::open(dir, &release)?;
            let optional: &[&str] = if spec.default_modules {
                DEFAULT_MODULES
            } else {
                &[]
            };
            tree.resolve(&spec.module_names, optional)?
        }
        None => Vec::new(),
    };

    let busybox = read("--busybox", &spec.busybox)?;
    let applets = crate::busybox::applets(&busybox).map_err(|source| BuildError::Busybox {
        path: spec.busybox.clone(),
        source,
    })?;
    if let Some(missing) = crate::busybox::REQUIRED_APPLETS
        .iter()
        .find(|a| !applets.iter().any(|x| x == *a))
    {
        return Err(BuildError::Busybox {
            path: spec.busybox.clone(),
            source: crate::busybox::BusyboxError::NotElf(format!(
                "applet {missing} is missing from this busybox"
            )),
        });
    }

    let kexec = read("--kexec", &spec.kexec)?;
    let mut libraries = BTreeMap::new();
    add_libraries(
        &mut libraries,
        crate::elfdeps::resolve(&spec.kexec, &spec.sysroot)?,
    )?;
    let tftp_client = match &spec.tftp_client {
        Some(path) => {
            let data = read("--tftp-client", path)?;
            let deps = crate::elfdeps::resolve(path, &spec.sysroot)
                .map_err(|e| BuildError::TftpClient(path.clone(), e))?;
            // A static client (the minimal loader's) takes no preload: it
            // buffers its stderr itself (crate::loader_tools).
            if !deps.is_empty() {
                add_libraries(&mut libraries, deps)?;
                add_stdbuf(&mut libraries, &spec.sysroot)?;
            }
            Some(data)
        }
        None => None,
    };

    let mut extra = BTreeMap::new();
    for (src, dest) in &spec.add {
        let data = read("--add", src)?;
        let exec = std::fs::metadata(src)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
            .unwrap_or(false);
        extra.insert(dest.clone(), (data, if exec { 0o755 } else { 0o644 }));
    }

    let mut archive = initramfs::base_with_busybox(&busybox, &applets)?;
    let contents = PxeContents {
        kexec,
        tftp_client,
        libraries,
        modules,
        extra,
    };
    initramfs::add_pxe_contents(&mut archive, &contents)?;
    let raw = archive.write_newc(Vec::new(), cpio::source_date_epoch())?;
    let packed = compress_cached(&raw, spec.compression, cache)?;
    let image = kernel::combine(&kernel_bytes, &packed, Some(&spec.cmdline)).map_err(|source| {
        BuildError::Kernel {
            path: spec.kernel.clone(),
            source,
        }
    })?;
    let report = BuildReport {
        kernel_release: release,
        modules: contents.modules.iter().map(|m| m.name.clone()).collect(),
        entries: archive.len(),
        initramfs_raw_bytes: raw.len(),
        initramfs_bytes: packed.len(),
        image_bytes: image.len(),
        compression: spec.compression,
    };
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        ?report,
        "built image"
    );
    Ok((image, report))
}

/// Builds and writes `output` atomically (the image is built fully in
/// memory first, so nothing is written on an input error). `cache` as for
/// [`build_image_cached`].
pub fn build_to_file(
    spec: &BuildSpec,
    output: &Path,
    cache: Option<&Path>,
) -> Result<BuildReport, BuildError> {
    let (image, report) = build_image_cached(spec, cache)?;
    crate::atomic::write_atomically(output, |w| w.write_all(&image))?.map_err(|source| {
        crate::atomic::AtomicWriteError::Write {
            path: output.to_path_buf(),
            source,
        }
    })?;
    Ok(report)
}

/// Default inputs: the pinned fixtures (fetched if missing) on non-s390x
/// hosts, the running system on s390x.
#[derive(Debug, Clone)]
pub struct DefaultInputs {
    /// Kernel image.
    pub kernel: PathBuf,
    /// Module tree (None: the kernel has everything built in).
    pub modules: Option<PathBuf>,
    /// busybox.
    pub busybox: PathBuf,
    /// kexec.
    pub kexec: PathBuf,
    /// sysroot for kexec's and the TFTP client's libraries.
    pub sysroot: PathBuf,
    /// atftp, when the defaults have one.
    pub tftp_client: Option<PathBuf>,
}

/// The kernel a kernel id names: `6.1` or `6.12` from the fixtures,
/// [`crate::minimal_kernel::KERNEL_ID`] built from the pinned source (or
/// taken from the cache).
pub fn kernel_by_id(
    lock: &Lock,
    set: &fixtures::FixtureSet,
    cache: &Path,
    id: &str,
) -> Result<fixtures::KernelFixture, BuildError> {
    if id == crate::minimal_kernel::KERNEL_ID {
        return Ok(crate::minimal_kernel::ensure(lock, cache)?.kernel);
    }
    Ok(set.kernel(id)?.clone())
}

/// Picks the default inputs for this host with the loader kernel
/// `loader_kernel` (a kernel id; the minimal kernel has no modules).
pub fn default_inputs(cache: &Path, loader_kernel: &str) -> Result<DefaultInputs, BuildError> {
    let minimal = loader_kernel == crate::minimal_kernel::KERNEL_ID;
    let lock = Lock::embedded().map_err(FixtureError::from)?;
    if std::env::consts::ARCH == "s390x" {
        let mut host = host_inputs();
        if minimal {
            host.kernel = crate::minimal_kernel::ensure(&lock, cache)?.kernel.image;
            host.modules = None;
            let tools = crate::loader_tools::ensure(&lock, cache)?;
            host.kexec = tools.kexec;
            host.tftp_client = Some(tools.atftp);
        }
        return Ok(host);
    }
    let set = fixtures::ensure(&lock, cache)?;
    fixture_inputs(&lock, &set, cache, loader_kernel)
}

/// The inputs from the pinned fixtures (on any host) with the loader kernel
/// `loader_kernel` (a kernel id; the minimal kernel has no modules).
pub fn fixture_inputs(
    lock: &Lock,
    set: &fixtures::FixtureSet,
    cache: &Path,
    loader_kernel: &str,
) -> Result<DefaultInputs, BuildError> {
    let k = kernel_by_id(lock, set, cache, loader_kernel)?;
    let minimal = loader_kernel == crate::minimal_kernel::KERNEL_ID;
    // The minimal loader runs its own static kexec and atftp: no libraries
    // to unpack, no dynamic start per run (crate::loader_tools).
    let (kexec, tftp_client) = if minimal {
        let tools = crate::loader_tools::ensure(lock, cache)?;
        (tools.kexec, tools.atftp)
    } else {
        (set.kexec.clone(), set.tftp_client.clone())
    };
    Ok(DefaultInputs {
        kernel: k.image,
        modules: (!minimal).then_some(k.modules),
        busybox: set.busybox.clone(),
        kexec,
        sysroot: set.sysroot.clone(),
        tftp_client: Some(tftp_client),
    })
}

impl DefaultInputs {
    /// What `s390-pxelinux build` builds from these inputs when given no
    /// other option: the default modules, command line and compression.
    pub fn default_spec(&self) -> BuildSpec {
        BuildSpec {
            kernel: self.kernel.clone(),
            modules: self.modules.clone(),
            busybox: self.busybox.clone(),
            kexec: self.kexec.clone(),
            sysroot: self.sysroot.clone(),
            tftp_client: self.tftp_client.clone(),
            module_names: DEFAULT_MODULES.iter().map(|s| s.to_string()).collect(),
            default_modules: true,
            cmdline: DEFAULT_CMDLINE.to_string(),
            compression: Compression::default(),
            add: Vec::new(),
        }
    }
}

/// The running s390x system's kernel, modules, busybox and kexec, as the
/// reference procedure (s390-tools netboot) uses them.
fn host_inputs() -> DefaultInputs {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let kernel = ["vmlinuz", "image", "vmlinux"]
        .iter()
        .map(|n| PathBuf::from(format!("/boot/{n}-{release}")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(format!("/boot/vmlinuz-{release}")));
    let which = |names: &[&str]| {
        names
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(names[0]))
    };
    DefaultInputs {
        kernel,
        modules: Some(PathBuf::from(format!("/lib/modules/{release}"))),
        busybox: which(&["/bin/busybox", "/usr/bin/busybox"]),
        kexec: which(&["/sbin/kexec", "/usr/sbin/kexec"]),
        sysroot: PathBuf::from("/"),
        tftp_client: Some(PathBuf::from("/usr/bin/atftp")).filter(|p| p.is_file()),
    }
}
