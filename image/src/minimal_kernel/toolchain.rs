//! The host tools the builds from source need: the s390x C compiler (the
//! `s390x-linux-gnu-` cross toolchain, or the native gcc on an s390x host),
//! kbuild's helpers (make, flex, bison, bc, lz4) for the minimal kernel, and
//! autotools with the s390x static C library for the loader's static
//! programs ([`crate::loader_tools`]). Owns finding them, naming the Debian
//! packages of the missing ones, and the version text that goes into each
//! build's cache key. It must not run a build.

use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cross prefix used on hosts that are not s390x.
pub const CROSS_PREFIX: &str = "s390x-linux-gnu-";

/// The command `ci/install-deps` and the error message suggest.
pub const INSTALL_HINT: &str = "ci/install-deps";

/// A usable toolchain.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// `CROSS_COMPILE` value (empty on an s390x host).
    pub cross_compile: String,
    /// The tools' `--version` first lines (and, for the loader tools, the
    /// static libc's SHA-256): part of the build's cache key.
    pub version: String,
}

/// Tools are missing: names each with the package that provides it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{build} needs {} (missing); install them with \
     `apt-get install {}` (or run `{INSTALL_HINT}`, which installs them)",
    .missing.iter().map(|(t, p)| format!("{t} (package {p})")).collect::<Vec<_>>().join(", "),
    unique_packages(.missing).join(" ")
)]
pub struct MissingTools {
    /// Which build needs them ("the minimal kernel build").
    pub build: &'static str,
    /// (program or file, Debian package) pairs.
    pub missing: Vec<(String, String)>,
}

/// The Debian packages of `missing`, each once, in the order first named.
fn unique_packages(missing: &[(String, String)]) -> Vec<&str> {
    let mut packages: Vec<&str> = Vec::new();
    for (_, p) in missing {
        if !packages.contains(&p.as_str()) {
            packages.push(p);
        }
    }
    packages
}

/// Finds `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The programs a build runs, with their Debian packages, for this host.
pub fn required(native: bool) -> Vec<(String, String)> {
    let mut tools: Vec<(String, String)> = [
        ("make", "make"),
        ("gcc", "gcc"),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
        ("lz4", "lz4"),
        ("perl", "perl"),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), p.to_string()))
    .collect();
    if !native {
        tools.push((format!("{CROSS_PREFIX}gcc"), "gcc-s390x-linux-gnu".into()));
        tools.push((
            format!("{CROSS_PREFIX}ld"),
            "binutils-s390x-linux-gnu".into(),
        ));
    }
    tools
}

/// The programs the loader tools build runs ([`crate::loader_tools`]),
/// with their Debian packages, for this host.
fn required_for_loader_tools(native: bool) -> Vec<(String, String)> {
    let mut tools: Vec<(String, String)> = [
        ("make", "make"),
        ("autoconf", "autoconf"),
        ("autoheader", "autoconf"),
        ("automake", "automake"),
        ("aclocal", "automake"),
    ]
    .iter()
    .map(|(t, p)| (t.to_string(), p.to_string()))
    .collect();
    if native {
        tools.push(("gcc".into(), "gcc".into()));
        tools.push(("strip".into(), "binutils".into()));
    } else {
        tools.push((format!("{CROSS_PREFIX}gcc"), "gcc-s390x-linux-gnu".into()));
        tools.push((
            format!("{CROSS_PREFIX}strip"),
            "binutils-s390x-linux-gnu".into(),
        ));
    }
    tools
}

/// The s390x static C library the compiler links with `-static`, found
/// through the compiler itself (`-print-file-name=libc.a`).
fn static_libc(cross_compile: &str) -> Option<PathBuf> {
    let out = Command::new(format!("{cross_compile}gcc"))
        .arg("-print-file-name=libc.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // Without the library gcc prints the bare name back.
    (path.is_absolute() && path.is_file()).then_some(path)
}

/// The Debian package holding the s390x static C library.
fn static_libc_package(native: bool) -> &'static str {
    if native {
        "libc6-dev"
    } else {
        "libc6-dev-s390x-cross"
    }
}

/// The first line of `<program> --version` (empty when it cannot run).
fn first_line(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

fn native_host() -> bool {
    std::env::consts::ARCH == "s390x"
}

/// The programs of `required` that are not on `PATH`.
fn missing_programs(required: Vec<(String, String)>) -> Vec<(String, String)> {
    required
        .into_iter()
        .filter(|(t, _)| which(t).is_none())
        .collect()
}

fn cross_compile(native: bool) -> String {
    if native { "" } else { CROSS_PREFIX }.to_string()
}

impl Toolchain {
    /// The minimal kernel's toolchain on this host, or the list of what is
    /// missing.
    pub fn detect() -> Result<Toolchain, MissingTools> {
        let native = native_host();
        let missing = missing_programs(required(native));
        if !missing.is_empty() {
            return Err(MissingTools {
                build: "the minimal kernel build",
                missing,
            });
        }
        let cross_compile = cross_compile(native);
        let version = format!(
            "{}\n{}\n{}",
            first_line(&format!("{cross_compile}gcc")),
            first_line(&format!("{cross_compile}ld")),
            first_line("make")
        );
        Ok(Toolchain {
            cross_compile,
            version,
        })
    }

    /// The toolchain of the loader's static programs on this host (the
    /// compiler, autotools and the static libc), or the list of what is
    /// missing. Its version text ends with the static libc's SHA-256: the
    /// library is linked into the programs.
    pub fn detect_for_loader_tools() -> Result<Toolchain, MissingTools> {
        let native = native_host();
        let mut missing = missing_programs(required_for_loader_tools(native));
        let cross_compile = cross_compile(native);
        let libc = static_libc(&cross_compile);
        if libc.is_none() && missing.iter().all(|(t, _)| !t.ends_with("gcc")) {
            missing.push(("libc.a".into(), static_libc_package(native).into()));
        }
        let Some(libc) = libc.filter(|_| missing.is_empty()) else {
            return Err(MissingTools {
                build: "the build of the minimal loader's static kexec and atftp",
                missing,
            });
        };
        let libc_sha = std::fs::read(&libc)
            .map(|b| hex::encode(sha2::Sha256::digest(&b)))
            .unwrap_or_default();
        let mut version = String::new();
        for program in [
            format!("{cross_compile}gcc"),
            format!("{cross_compile}strip"),
            "make".into(),
            "autoconf".into(),
            "automake".into(),
        ] {
            version.push_str(&first_line(&program));
            version.push('\n');
        }
        version.push_str(&format!("libc.a {libc_sha}\n"));
        Ok(Toolchain {
            cross_compile,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_name_programs_packages_and_the_install_command() {
        let e = MissingTools {
            build: "the minimal kernel build",
            missing: vec![
                ("s390x-linux-gnu-gcc".into(), "gcc-s390x-linux-gnu".into()),
                ("flex".into(), "flex".into()),
            ],
        };
        let text = e.to_string();
        assert!(
            text.contains("s390x-linux-gnu-gcc (package gcc-s390x-linux-gnu), flex (package flex)"),
            "{text}"
        );
        assert!(
            text.contains("`apt-get install gcc-s390x-linux-gnu flex`"),
            "{text}"
        );
        assert!(text.contains("ci/install-deps"), "{text}");
    }

    #[test]
    fn a_package_that_provides_two_missing_programs_is_named_once() {
        let e = MissingTools {
            build: "the build of the minimal loader's static kexec and atftp",
            missing: vec![
                ("autoconf".into(), "autoconf".into()),
                ("autoheader".into(), "autoconf".into()),
                ("libc.a".into(), "libc6-dev-s390x-cross".into()),
            ],
        };
        assert!(
            e.to_string()
                .contains("`apt-get install autoconf libc6-dev-s390x-cross`"),
            "{e}"
        );
    }

    #[test]
    fn a_cross_host_needs_the_cross_compiler_and_a_native_one_does_not() {
        let cross = required(false);
        assert!(cross.iter().any(|(t, _)| t == "s390x-linux-gnu-gcc"));
        let native = required(true);
        assert!(!native.iter().any(|(t, _)| t.starts_with(CROSS_PREFIX)));
        assert!(native.iter().any(|(t, _)| t == "flex"));
    }
}
