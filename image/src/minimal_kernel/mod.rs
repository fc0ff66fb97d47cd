//! `s390-pxelinux kernel build`: the minimal s390x kernel, built from the
//! pinned Debian `linux-source-6.12` with `make tinyconfig` plus the committed
//! fragment ([`fragment::FRAGMENT`]), settled by the kernel's own
//! `merge_config.sh` and `make olddefconfig`. Owns the build steps, the check
//! that every fragment option survived, reproducibility (fixed
//! `KBUILD_BUILD_*`), progress, and the cache entry under
//! `<cache>/minimal-kernel/<key>/` (key = hash of the source package, the
//! fragment and the toolchain), which appears whole or not at all. It must not
//! build pxelinux.0 (that is [`crate::build`]) nor fetch (it asks
//! [`crate::fixtures`]).

pub mod fragment;
pub mod toolchain;

use crate::build_cache;
use crate::fixtures::lock::Lock;
use crate::fixtures::{FixtureError, KernelFixture};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use toolchain::Toolchain;

/// The kernel id of the minimal kernel (beside the fixtures' "6.1", "6.12").
pub const KERNEL_ID: &str = "minimal";

/// The suffix of the minimal kernel's release (`CONFIG_LOCALVERSION`), by
/// which `inspect` recognises it.
pub const RELEASE_SUFFIX: &str = "-s390-pxelinux-minimal";

/// Bump when the build recipe changes in a way the key inputs miss.
const RECIPE: &str =
    "minimal-kernel recipe 1: tinyconfig + merge_config.sh -m + olddefconfig; make bzImage";

/// Fixed build identity, so two builds are byte-identical.
const BUILD_ENV: &[(&str, &str)] = &[
    ("KBUILD_BUILD_TIMESTAMP", "Thu Jan  1 00:00:00 UTC 1970"),
    ("KBUILD_BUILD_USER", "s390-pxelinux"),
    ("KBUILD_BUILD_HOST", "s390-pxelinux"),
    ("KBUILD_BUILD_VERSION", "1"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
];

/// Environment that would change what make builds; removed for the build.
const SCRUBBED_ENV: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "KBUILD_OUTPUT",
    "O",
    "KCFLAGS",
    "KCPPFLAGS",
    "KAFLAGS",
    "LOCALVERSION",
    "CC",
    "LD",
    "CFLAGS",
    "LDFLAGS",
];

/// A built minimal kernel in the cache.
#[derive(Debug, Clone)]
pub struct MinimalKernel {
    /// The cache entry (`<cache>/minimal-kernel/<key>`).
    pub dir: PathBuf,
    /// Image, module directory (only `modules.builtin`) and release, in the
    /// shape of a fixture kernel.
    pub kernel: KernelFixture,
    /// The final `.config` (`boot/config-<release>`, where `build` looks for it).
    pub config: PathBuf,
    /// `boot/System.map-<release>`.
    pub system_map: PathBuf,
    /// `lib/modules/<release>/modules.builtin`.
    pub modules_builtin: PathBuf,
}

/// Every way the minimal kernel build can fail.
#[derive(Debug, thiserror::Error)]
pub enum MinimalKernelError {
    /// The source package could not be had.
    #[error(transparent)]
    Fixtures(#[from] Box<FixtureError>),
    /// Build tools are missing.
    #[error(transparent)]
    Tools(#[from] toolchain::MissingTools),
    /// The fragment is not valid Kconfig.
    #[error("{path}:{line}: {message}")]
    Fragment {
        path: String,
        line: usize,
        message: String,
    },
    /// Kconfig dropped options of the fragment.
    #[error("kernel config: {} option(s) of {path} did not survive `make olddefconfig` \
             (unmet dependencies?):\n  {}", .dropped.len(),
             .dropped.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n  "))]
    Dropped {
        path: String,
        dropped: Vec<fragment::Dropped>,
    },
    /// A build step failed.
    #[error("kernel build: {0}")]
    Step(#[from] crate::build_step::StepError),
    /// Filesystem trouble in the cache or the build tree.
    #[error("kernel build: {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<build_cache::CacheIoError> for MinimalKernelError {
    fn from(e: build_cache::CacheIoError) -> Self {
        MinimalKernelError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl From<FixtureError> for MinimalKernelError {
    fn from(e: FixtureError) -> Self {
        MinimalKernelError::Fixtures(Box::new(e))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MinimalKernelError + '_ {
    move |source| MinimalKernelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the minimal kernels live in the fixture cache.
pub fn cache_root(cache: &Path) -> PathBuf {
    cache.join("minimal-kernel")
}

/// The cache key: the source package's pin, the fragment, the toolchain's
/// versions and the recipe.
fn key(source_sha256: &str, fragment: &str, toolchain: &Toolchain) -> String {
    let mut h = Sha256::new();
    for part in [RECIPE, source_sha256, fragment, &toolchain.version] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for (k, v) in BUILD_ENV {
        h.update(format!("{k}={v}\0").as_bytes());
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The entry at `dir`, if complete.
fn load(dir: &Path) -> Option<MinimalKernel> {
    let release = std::fs::read_to_string(dir.join("release")).ok()?;
    let release = release.trim().to_string();
    let boot = dir.join("boot");
    let modules = dir.join("lib/modules").join(&release);
    let m = MinimalKernel {
        dir: dir.to_path_buf(),
        kernel: KernelFixture {
            image: boot.join(format!("vmlinuz-{release}")),
            modules: modules.clone(),
            release: release.clone(),
        },
        config: boot.join(format!("config-{release}")),
        system_map: boot.join(format!("System.map-{release}")),
        modules_builtin: modules.join("modules.builtin"),
    };
    [
        &m.kernel.image,
        &m.config,
        &m.system_map,
        &m.modules_builtin,
    ]
    .iter()
    .all(|p| p.is_file())
    .then_some(m)
}

/// Progress of a kernel build: a spinner with the object count and elapsed
/// time on a terminal, a plain line per step (and every 200 objects) otherwise.
struct BuildProgress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    objects: u64,
}

impl BuildProgress {
    fn new() -> BuildProgress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} minimal kernel: {msg} ({pos} objects built, {elapsed})",
            ) {
                b.set_style(style);
            }
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        });
        BuildProgress {
            bar,
            started: Instant::now(),
            objects: 0,
        }
    }

    fn step(&self, what: &str) {
        match &self.bar {
            Some(b) => b.set_message(what.to_string()),
            None => eprintln!(
                "s390-pxelinux: minimal kernel: {what} ({} objects built, {} s)",
                self.objects,
                self.started.elapsed().as_secs()
            ),
        }
    }

    fn object(&mut self) {
        self.objects += 1;
        match &self.bar {
            Some(b) => b.set_position(self.objects),
            None if self.objects.is_multiple_of(200) => eprintln!(
                "s390-pxelinux: minimal kernel: {} objects built, {} s",
                self.objects,
                self.started.elapsed().as_secs()
            ),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The minimal kernel from the cache, built first if it is not there.
/// Several processes may ask at once: one builds (under a file lock), the
/// others wait and then find it. A build killed midway leaves only a
/// `.build-<pid>-*` directory, which the next build removes.
pub fn ensure(lock: &Lock, cache: &Path) -> Result<MinimalKernel, MinimalKernelError> {
    let source_pin = lock.kernel_source()?;
    ensure_in(&cache_root(cache), &source_pin.sha256, || {
        Ok(crate::fixtures::ensure_kernel_source(lock, cache)?.0)
    })
}

/// [`ensure`] with the entries under `root` and the source tarball (whose
/// package has `source_sha256`) asked for only when a build is needed.
pub fn ensure_in(
    root: &Path,
    source_sha256: &str,
    tarball: impl FnOnce() -> Result<PathBuf, MinimalKernelError>,
) -> Result<MinimalKernel, MinimalKernelError> {
    // Without tools no key can be computed, but a cached kernel may still be
    // usable: take an entry built from this source and fragment, if any.
    let toolchain = match Toolchain::detect() {
        Ok(t) => t,
        Err(missing) => return find_any(root, source_sha256).ok_or(missing.into()),
    };
    let key = key(source_sha256, fragment::FRAGMENT, &toolchain);
    build_cache::load_or_build(root, &key, load, || {
        build(&tarball()?, source_sha256, &toolchain, root, &key)
    })
}

/// An entry built from `source_sha256` with the current fragment, whatever
/// the toolchain (for hosts that have a cache but no compiler).
fn find_any(root: &Path, source_sha256: &str) -> Option<MinimalKernel> {
    let inputs = format!("{source_sha256}\n{}", fragment_digest());
    build_cache::find_by_inputs(root, &inputs, load)
}

fn fragment_digest() -> String {
    hex::encode(Sha256::digest(fragment::FRAGMENT.as_bytes()))
}

/// One build into `root/<key>`: unpack, configure, check, make, collect.
fn build(
    tarball: &Path,
    source_sha256: &str,
    toolchain: &Toolchain,
    root: &Path,
    key: &str,
) -> Result<(), MinimalKernelError> {
    let mut progress = BuildProgress::new();
    let work = build_cache::work_dir(root)?;
    let log_path = root.join(format!("build-{key}.log"));
    let mut log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
    let _ = writeln!(
        log,
        "# minimal kernel {key}: source {} ({source_sha256})\n# toolchain: {}",
        tarball.display(),
        toolchain.version.replace('\n', " / ")
    );

    progress.step("unpacking the kernel source");
    let src = unpack_source(tarball, work.path())?;

    let fragment_path = work.path().join("fragment.config");
    std::fs::write(&fragment_path, fragment::FRAGMENT).map_err(io_err(&fragment_path))?;
    let settings = fragment::parse(fragment::FRAGMENT).map_err(|(line, message)| {
        MinimalKernelError::Fragment {
            path: "image/minimal-kernel/fragment.config".into(),
            line,
            message,
        }
    })?;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let make = |args: &[&str]| -> Command {
        let mut c = Command::new("make");
        c.current_dir(&src)
            .arg("ARCH=s390")
            .arg(format!("CROSS_COMPILE={}", toolchain.cross_compile))
            .args(args);
        for v in SCRUBBED_ENV {
            c.env_remove(v);
        }
        c.envs(BUILD_ENV.iter().copied());
        c
    };

    progress.step("configuring (tinyconfig + fragment)");
    run(
        &mut make(&["tinyconfig"]),
        "make tinyconfig",
        &mut log,
        &log_path,
        None,
    )?;
    let mut merge = Command::new("scripts/kconfig/merge_config.sh");
    merge
        .current_dir(&src)
        .env("ARCH", "s390")
        .env("CROSS_COMPILE", &toolchain.cross_compile)
        .envs(BUILD_ENV.iter().copied())
        .args(["-m", ".config"])
        .arg(&fragment_path);
    for v in SCRUBBED_ENV {
        merge.env_remove(v);
    }
    run(
        &mut merge,
        "merge_config.sh -m .config fragment.config",
        &mut log,
        &log_path,
        None,
    )?;
    run(
        &mut make(&["olddefconfig"]),
        "make olddefconfig",
        &mut log,
        &log_path,
        None,
    )?;
    let config_path = src.join(".config");
    let config = std::fs::read_to_string(&config_path).map_err(io_err(&config_path))?;
    let dropped = fragment::dropped(&settings, &config);
    if !dropped.is_empty() {
        return Err(MinimalKernelError::Dropped {
            path: "image/minimal-kernel/fragment.config".into(),
            dropped,
        });
    }

    progress.step(&format!("compiling with {jobs} jobs"));
    let j = format!("-j{jobs}");
    run(
        &mut make(&[&j, "bzImage", "modules.builtin"]),
        &format!("make {j} bzImage modules.builtin"),
        &mut log,
        &log_path,
        Some(&mut progress),
    )?;

    progress.step("collecting the image, .config, System.map and modules.builtin");
    let release_path = src.join("include/config/kernel.release");
    let release = std::fs::read_to_string(&release_path)
        .map_err(io_err(&release_path))?
        .trim()
        .to_string();
    let out = work.path().join("out");
    let boot = out.join("boot");
    let modules = out.join("lib/modules").join(&release);
    for d in [&boot, &modules] {
        std::fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let copy = |from: &Path, to: &Path| -> Result<(), MinimalKernelError> {
        std::fs::copy(from, to).map(|_| ()).map_err(io_err(from))
    };
    copy(
        &src.join("arch/s390/boot/bzImage"),
        &boot.join(format!("vmlinuz-{release}")),
    )?;
    copy(&config_path, &boot.join(format!("config-{release}")))?;
    copy(
        &src.join("System.map"),
        &boot.join(format!("System.map-{release}")),
    )?;
    let builtin = src.join("modules.builtin");
    if builtin.is_file() {
        copy(&builtin, &modules.join("modules.builtin"))?;
    } else {
        let p = modules.join("modules.builtin");
        std::fs::write(&p, "").map_err(io_err(&p))?;
    }
    let write = |name: &str, text: String| -> Result<(), MinimalKernelError> {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(io_err(&p))
    };
    write("release", format!("{release}\n"))?;
    write(
        "inputs",
        format!("{source_sha256}\n{}\n", fragment_digest()),
    )?;
    let dest = root.join(key);
    std::fs::rename(&out, &dest).map_err(io_err(&dest))?;
    progress.finish();
    eprintln!(
        "s390-pxelinux: minimal kernel {release} built in {} s ({} objects): {}",
        progress.started.elapsed().as_secs(),
        progress.objects,
        dest.display()
    );
    Ok(())
}

/// Unpacks the `linux-source-*.tar.xz` into `work` and returns its top directory.
fn unpack_source(tarball: &Path, work: &Path) -> Result<PathBuf, MinimalKernelError> {
    crate::build_step::unpack_tarball(tarball, &work.join("tree")).map_err(io_err(tarball))
}

/// [`crate::build_step::run`] for a kernel build step, counting each
/// compiled object (kbuild's `CC`/`AS`/`LD`/`AR` lines) when given `progress`.
fn run(
    cmd: &mut Command,
    step: &str,
    log: &mut std::fs::File,
    log_path: &Path,
    mut progress: Option<&mut BuildProgress>,
) -> Result<(), MinimalKernelError> {
    crate::build_step::run(cmd, step, log, log_path, |line| {
        if let Some(p) = progress.as_deref_mut() {
            let t = line.trim_start();
            if ["CC ", "AS ", "LD ", "AR "]
                .iter()
                .any(|k| t.starts_with(k))
            {
                p.object();
            }
        }
    })
    .map_err(MinimalKernelError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolchain(v: &str) -> Toolchain {
        Toolchain {
            cross_compile: CROSS.into(),
            version: v.into(),
        }
    }
    const CROSS: &str = toolchain::CROSS_PREFIX;

    #[test]
    fn the_key_changes_with_source_fragment_and_toolchain() {
        let base = key("aa", "CONFIG_A=y\n", &toolchain("gcc 12"));
        assert_eq!(base, key("aa", "CONFIG_A=y\n", &toolchain("gcc 12")));
        assert_ne!(base, key("ab", "CONFIG_A=y\n", &toolchain("gcc 12")));
        assert_ne!(base, key("aa", "CONFIG_A=m\n", &toolchain("gcc 12")));
        assert_ne!(base, key("aa", "CONFIG_A=y\n", &toolchain("gcc 13")));
    }

    #[test]
    fn an_incomplete_entry_is_not_loaded() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("release"), "6.12.95-x\n").unwrap();
        assert!(load(d.path()).is_none());
        let boot = d.path().join("boot");
        let mods = d.path().join("lib/modules/6.12.95-x");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::create_dir_all(&mods).unwrap();
        for f in [
            "vmlinuz-6.12.95-x",
            "config-6.12.95-x",
            "System.map-6.12.95-x",
        ] {
            std::fs::write(boot.join(f), "x").unwrap();
        }
        assert!(load(d.path()).is_none(), "modules.builtin missing");
        std::fs::write(mods.join("modules.builtin"), "").unwrap();
        let m = load(d.path()).expect("complete entry");
        assert_eq!(m.kernel.release, "6.12.95-x");
        assert_eq!(m.kernel.modules, mods);
    }
}
