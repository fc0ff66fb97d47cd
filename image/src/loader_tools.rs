//! The minimal loader's own `kexec` and `atftp`: statically linked s390x
//! programs compiled from the pinned upstream tarballs of Debian's
//! kexec-tools and atftp (`[[source]]` in fixtures/packages.lock) with the
//! same compiler as the minimal kernel. Debian's dynamically linked builds
//! cost the loader their libraries (libc, readline, tinfo: 1.1 MB of its
//! initramfs to unpack) and a dynamic start each time they run under TCG
//! (docs/performance.md, round 22). Owns the recipe (configure options,
//! `-static`, the stderr buffer linked into atftp), reproducibility, and the
//! cache entry `<cache>/loader-tools/<key>/` (key = hash of the recipe, the
//! sources and the toolchain with its static libc), which appears whole or
//! not at all. It must not fetch (it asks [`crate::fixtures`]) nor build
//! pxelinux.0 (that is [`crate::build`]).

use crate::build_cache;
use crate::build_step::StepError;
use crate::fixtures::lock::Lock;
use crate::fixtures::FixtureError;
use crate::minimal_kernel::toolchain::{MissingTools, Toolchain};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The source packages the loader tools are built from; the lock must pin
/// each as a `[[source]]`.
pub const SOURCE_PACKAGES: &[&str] = &[KEXEC_SOURCE, ATFTP_SOURCE];

const KEXEC_SOURCE: &str = "kexec-tools";
const ATFTP_SOURCE: &str = "atftp";

/// The C file linked into atftp: `_STDBUF_E` makes its stderr fully
/// buffered, as libstdbuf.so does for a dynamic atftp.
pub const STDERR_BUFFER_C: &str = include_str!("../loader-tools/stderr-buffer.c");

/// Bump when the recipe changes in a way the key inputs miss.
const RECIPE: &str = "loader-tools recipe 1: kexec-tools configure --without-zlib \
     --without-lzma --without-xen; atftp autogen.sh, configure --disable-libreadline \
     --disable-libwrap --disable-libpcre, LIBS=stderr-buffer.o; CFLAGS=-O2 \
     -ffile-prefix-map, LDFLAGS=-static; stripped";

/// Fixed build environment, so two builds are byte-identical.
const BUILD_ENV: &[(&str, &str)] = &[("LC_ALL", "C"), ("TZ", "UTC"), ("SOURCE_DATE_EPOCH", "0")];

/// Environment that would change what configure and make build.
const SCRUBBED_ENV: &[&str] = &[
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "CC",
    "CPP",
    "LD",
    "CFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "LIBS",
    "CONFIG_SITE",
];

/// The built programs in the cache.
#[derive(Debug, Clone)]
pub struct LoaderTools {
    /// The cache entry (`<cache>/loader-tools/<key>`).
    pub dir: PathBuf,
    /// Static s390x kexec.
    pub kexec: PathBuf,
    /// Static s390x atftp.
    pub atftp: PathBuf,
}

/// Every way the loader tools build can fail.
#[derive(Debug, thiserror::Error)]
pub enum LoaderToolsError {
    /// A source tarball could not be had.
    #[error(transparent)]
    Fixtures(#[from] Box<FixtureError>),
    /// Build tools are missing.
    #[error(transparent)]
    Tools(#[from] MissingTools),
    /// A build step failed.
    #[error("loader tools build: {0}")]
    Step(#[from] StepError),
    /// Filesystem trouble in the cache or the build tree.
    #[error("loader tools build: {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<build_cache::CacheIoError> for LoaderToolsError {
    fn from(e: build_cache::CacheIoError) -> Self {
        LoaderToolsError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl From<FixtureError> for LoaderToolsError {
    fn from(e: FixtureError) -> Self {
        LoaderToolsError::Fixtures(Box::new(e))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LoaderToolsError + '_ {
    move |source| LoaderToolsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the loader tools live in the fixture cache.
pub fn cache_root(cache: &Path) -> PathBuf {
    cache.join("loader-tools")
}

/// What the sources contribute to the key (also written as the entry's
/// `inputs`, so a host without a compiler can still use a built entry).
fn sources_digest(lock: &Lock) -> String {
    let mut h = Sha256::new();
    h.update(RECIPE.as_bytes());
    h.update(STDERR_BUFFER_C.as_bytes());
    for name in SOURCE_PACKAGES {
        if let Some(s) = lock.source(name) {
            h.update(format!("\0{}\0{}\0", s.name, s.sha256).as_bytes());
        }
    }
    hex::encode(h.finalize())
}

fn key(sources: &str, toolchain: &Toolchain) -> String {
    let mut h = Sha256::new();
    h.update(sources.as_bytes());
    h.update(b"\0");
    h.update(toolchain.version.as_bytes());
    for (k, v) in BUILD_ENV {
        h.update(format!("{k}={v}\0").as_bytes());
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// The entry at `dir`, if complete.
fn load(dir: &Path) -> Option<LoaderTools> {
    let t = LoaderTools {
        dir: dir.to_path_buf(),
        kexec: dir.join("kexec"),
        atftp: dir.join("atftp"),
    };
    (t.kexec.is_file() && t.atftp.is_file() && dir.join("inputs").is_file()).then_some(t)
}

/// An entry built from these sources, whatever the compiler (for hosts
/// that have a cache but no compiler).
fn find_any(root: &Path, sources: &str) -> Option<LoaderTools> {
    build_cache::find_by_inputs(root, sources, load)
}

/// The loader tools from the cache, built first if they are not there.
/// Several processes may ask at once: one builds (under a file lock), the
/// others wait and then find it. A build killed midway leaves only a
/// `.build-<pid>-*` directory, which the next build removes.
pub fn ensure(lock: &Lock, cache: &Path) -> Result<LoaderTools, LoaderToolsError> {
    let root = cache_root(cache);
    let sources = sources_digest(lock);
    let toolchain = match Toolchain::detect_for_loader_tools() {
        Ok(c) => c,
        Err(missing) => return find_any(&root, &sources).ok_or(missing.into()),
    };
    let key = key(&sources, &toolchain);
    build_cache::load_or_build(&root, &key, load, || {
        let kexec_tarball = crate::fixtures::ensure_source(lock, cache, KEXEC_SOURCE)?;
        let atftp_tarball = crate::fixtures::ensure_source(lock, cache, ATFTP_SOURCE)?;
        build(
            &kexec_tarball,
            &atftp_tarball,
            &toolchain,
            &sources,
            &root,
            &key,
        )
    })
}

/// Unpacks a source tarball into `work/<sub>`; returns its top directory.
fn unpack(tarball: &Path, work: &Path, sub: &str) -> Result<PathBuf, LoaderToolsError> {
    crate::build_step::unpack_tarball(tarball, &work.join(sub)).map_err(io_err(tarball))
}

/// One build into `root/<key>`: unpack, configure, make, strip, collect.
fn build(
    kexec_tarball: &Path,
    atftp_tarball: &Path,
    toolchain: &Toolchain,
    sources: &str,
    root: &Path,
    key: &str,
) -> Result<(), LoaderToolsError> {
    let started = Instant::now();
    let step = |what: &str| {
        eprintln!(
            "s390-pxelinux: loader tools: {what} ({} s)",
            started.elapsed().as_secs()
        )
    };
    let work = build_cache::work_dir(root)?;
    let log_path = root.join(format!("build-{key}.log"));
    let mut log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
    let _ = writeln!(
        log,
        "# loader tools {key}: {} and {}\n# toolchain:\n{}",
        kexec_tarball.display(),
        atftp_tarball.display(),
        toolchain.version
    );
    let cross = &toolchain.cross_compile;
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cflags = |src: &Path| format!("-O2 -ffile-prefix-map={}=.", src.display());
    let host_args: Vec<String> = if cross.is_empty() {
        Vec::new()
    } else {
        vec![format!("--host={}", cross.trim_end_matches('-'))]
    };
    let command = |program: &str, dir: &Path| -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir);
        for v in SCRUBBED_ENV {
            c.env_remove(v);
        }
        c.envs(BUILD_ENV.iter().copied());
        c
    };
    let mut run = |cmd: &mut Command, what: &str| -> Result<(), LoaderToolsError> {
        crate::build_step::run(cmd, what, &mut log, &log_path, |_| {})?;
        Ok(())
    };

    step("unpacking kexec-tools and atftp");
    let kexec_src = unpack(kexec_tarball, work.path(), "kexec-tools")?;
    let atftp_src = unpack(atftp_tarball, work.path(), "atftp")?;
    let buffer_c = work.path().join("stderr-buffer.c");
    std::fs::write(&buffer_c, STDERR_BUFFER_C).map_err(io_err(&buffer_c))?;
    let buffer_o = work.path().join("stderr-buffer.o");

    step("configuring kexec-tools");
    run(
        command("./configure", &kexec_src)
            .args(&host_args)
            .args(["--without-zlib", "--without-lzma", "--without-xen"])
            .env("CFLAGS", cflags(&kexec_src))
            .env("LDFLAGS", "-static"),
        "kexec-tools: ./configure",
    )?;
    step(&format!("compiling kexec-tools with {jobs} jobs"));
    run(
        command("make", &kexec_src).arg(format!("-j{jobs}")),
        "kexec-tools: make",
    )?;

    step("configuring atftp");
    run(
        command(&format!("{cross}gcc"), work.path()).args([
            "-O2",
            "-c",
            "stderr-buffer.c",
            "-o",
            "stderr-buffer.o",
        ]),
        "atftp: compiling stderr-buffer.c",
    )?;
    run(
        command("sh", &atftp_src).arg("autogen.sh"),
        "atftp: autogen.sh",
    )?;
    run(
        command("./configure", &atftp_src)
            .args(&host_args)
            .args([
                "--disable-libreadline",
                "--disable-libwrap",
                "--disable-libpcre",
            ])
            .env("CFLAGS", cflags(&atftp_src))
            .env("LDFLAGS", "-static")
            .env("LIBS", &buffer_o),
        "atftp: ./configure",
    )?;
    step(&format!("compiling atftp with {jobs} jobs"));
    run(
        command("make", &atftp_src).args([format!("-j{jobs}"), "atftp".into()]),
        "atftp: make atftp",
    )?;

    step("stripping and collecting kexec and atftp");
    let out = work.path().join("out");
    std::fs::create_dir_all(&out).map_err(io_err(&out))?;
    for (built, name) in [
        (kexec_src.join("build/sbin/kexec"), "kexec"),
        (atftp_src.join("atftp"), "atftp"),
    ] {
        run(
            command(&format!("{cross}strip"), work.path())
                .arg("-o")
                .arg(out.join(name))
                .arg(&built),
            &format!("strip {name}"),
        )?;
    }
    let inputs = out.join("inputs");
    std::fs::write(&inputs, format!("{sources}\n")).map_err(io_err(&inputs))?;
    let dest = root.join(key);
    std::fs::rename(&out, &dest).map_err(io_err(&dest))?;
    eprintln!(
        "s390-pxelinux: loader tools (static kexec, atftp) built in {} s: {}",
        started.elapsed().as_secs(),
        dest.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toolchain(version: &str) -> Toolchain {
        Toolchain {
            cross_compile: crate::minimal_kernel::toolchain::CROSS_PREFIX.into(),
            version: version.into(),
        }
    }

    #[test]
    fn the_key_changes_with_sources_and_toolchain() {
        let base = key("s1", &toolchain("gcc 12\nlibc.a aa\n"));
        assert_eq!(base, key("s1", &toolchain("gcc 12\nlibc.a aa\n")));
        assert_ne!(base, key("s2", &toolchain("gcc 12\nlibc.a aa\n")));
        assert_ne!(base, key("s1", &toolchain("gcc 13\nlibc.a aa\n")));
        assert_ne!(base, key("s1", &toolchain("gcc 12\nlibc.a ab\n")));
    }

    #[test]
    fn the_sources_digest_follows_each_pinned_tarball() {
        let lock = Lock::embedded().unwrap();
        let base = sources_digest(&lock);
        for name in SOURCE_PACKAGES {
            let mut other = lock.clone();
            let s = other.sources.iter_mut().find(|s| s.name == *name).unwrap();
            s.sha256 = "0".repeat(64);
            assert_ne!(base, sources_digest(&other), "{name}");
        }
    }

    #[test]
    fn an_entry_counts_only_when_complete() {
        let d = tempfile::tempdir().unwrap();
        let e = d.path().join("k");
        std::fs::create_dir_all(&e).unwrap();
        std::fs::write(e.join("kexec"), "x").unwrap();
        assert!(load(&e).is_none());
        std::fs::write(e.join("atftp"), "x").unwrap();
        assert!(load(&e).is_none(), "no inputs file yet");
        std::fs::write(e.join("inputs"), "digest\n").unwrap();
        assert!(load(&e).is_some());
        assert!(find_any(d.path(), "digest").is_some());
        assert!(find_any(d.path(), "other").is_none());
    }

    #[test]
    fn the_stderr_buffer_is_keyed_on_the_variable_the_guest_sets() {
        // The guest runs atftp with `_STDBUF_E=65536` (common.sh).
        assert!(STDERR_BUFFER_C.contains("getenv(\"_STDBUF_E\")"));
        let common = crate::guest::GUEST_FILES
            .iter()
            .find(|g| g.dest == "/lib/pxe/common.sh")
            .unwrap();
        assert!(common.content.contains("_STDBUF_E=65536"));
    }
}
