//! What goes into an initramfs: the common base (directories, `/dev/console`,
//! busybox with its applet symlinks, or klibc's few tools for the harness's
//! target initrd) and the pxelinux.0 contents on top of it
//! (kexec, the atftp TFTP client and their libraries, decompressed modules with their load list, the
//! guest scripts, extra files). Produces a [`crate::cpio::Archive`]; it must
//! not compress or write files (see [`crate::compress`], [`crate::build`]).

use crate::cpio::{Archive, CpioError, Node};
use crate::guest::MODULE_LIST_PATH;
use std::collections::BTreeMap;

// The internal pieces a caller packing its own initramfs needs (the harness's
// target initrds): busybox's applet table, the module tree (files in load
// order) and the guest scripts pxelinux.0 carries.
pub use crate::busybox::applets as busybox_applets;
pub use crate::guest::{GuestFile, GUEST_FILES};
pub use crate::modules::{ModuleTree, ResolvedModule};

/// Directories every initramfs of ours has.
pub const BASE_DIRS: &[&str] = &[
    "/bin", "/dev", "/etc", "/mnt", "/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/var",
];

/// The base every initramfs of ours starts from: [`BASE_DIRS`], a
/// sticky `/tmp`, `/dev/console` (the kernel opens it for /init's standard
/// streams) and `/dev/null`.
fn base() -> Result<Archive, CpioError> {
    let mut a = Archive::new();
    for d in BASE_DIRS {
        a.add_dir(d)?;
    }
    a.add("/tmp", Node::Dir, 0o1777)?;
    a.add("/dev/console", Node::CharDev(5, 1), 0o600)?;
    a.add("/dev/null", Node::CharDev(1, 3), 0o666)?;
    Ok(a)
}

/// An archive with the base directories, `/dev/console` and busybox at
/// `/bin/busybox` with one symlink per applet in `/bin` (applets whose name
/// exists already are left alone).
pub fn base_with_busybox(busybox: &[u8], applets: &[String]) -> Result<Archive, CpioError> {
    let mut a = base()?;
    a.add_file("/bin/busybox", busybox.to_vec(), 0o755)?;
    for applet in applets {
        if applet.contains('/') || applet.is_empty() {
            continue;
        }
        let link = format!("/bin/{applet}");
        if !a.contains(&link) {
            a.add_symlink(&link, "busybox")?;
        }
    }
    Ok(a)
}

/// A target-tools base archive could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TargetToolsError {
    /// A program or the library could not be read.
    #[error("target tools: reading {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A program is not an s390x ELF, or is malformed.
    #[error(transparent)]
    Elf(#[from] crate::elfdeps::ElfDepsError),
    /// A program asks for another interpreter than the library at hand.
    #[error(
        "target tools: {path} needs the interpreter {found:?}, but the library is {expected:?}"
    )]
    Interpreter {
        path: std::path::PathBuf,
        found: Option<String>,
        expected: String,
    },
    /// The archive refused an entry.
    #[error(transparent)]
    Cpio(#[from] CpioError),
}

/// An archive with the base directories, `/dev/console`, `/dev/null`,
/// klibc's [`TARGET_TOOL_PROGRAMS`](crate::fixtures::TARGET_TOOL_PROGRAMS)
/// in `/bin` and the shared klibc at `/lib/<its name>`, the interpreter
/// each program names (checked: a program that asks for another one is an
/// error, not a target that cannot start). ~0.2 MB, where busybox-static
/// is 2 MB: the target initrd is fetched in every chain trial.
pub fn base_with_target_tools(
    tools: &crate::fixtures::TargetTools,
) -> Result<Archive, TargetToolsError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| TargetToolsError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let lib_name = tools
        .library
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let interpreter = format!("/lib/{lib_name}");
    let mut a = base()?;
    a.add_dir("/lib")?;
    a.add_file(&interpreter, read(&tools.library)?, 0o755)?;
    for name in crate::fixtures::TARGET_TOOL_PROGRAMS {
        let path = tools.bin.join(name);
        let data = read(&path)?;
        let needs = crate::elfdeps::read_needs(&data, &path)?;
        if needs.interpreter.as_deref() != Some(interpreter.as_str()) {
            return Err(TargetToolsError::Interpreter {
                path,
                found: needs.interpreter,
                expected: interpreter,
            });
        }
        a.add_file(&format!("/bin/{name}"), data, 0o755)?;
    }
    Ok(a)
}

/// Everything the pxelinux.0 initramfs holds beyond the base.
#[derive(Debug, Clone, Default)]
pub struct PxeContents {
    /// kexec binary content (installed as `/sbin/kexec`).
    pub kexec: Vec<u8>,
    /// atftp binary content (installed as `/usr/bin/atftp`), if any.
    pub tftp_client: Option<Vec<u8>>,
    /// Run-time libraries and interpreter: guest path → content.
    pub libraries: BTreeMap<String, Vec<u8>>,
    /// Modules in load order.
    pub modules: Vec<ResolvedModule>,
    /// Extra files: guest path → content (mode 0644, or 0755 when executable on the host).
    pub extra: BTreeMap<String, (Vec<u8>, u32)>,
}

/// Adds the pxelinux.0 contents to a base archive.
pub fn add_pxe_contents(a: &mut Archive, c: &PxeContents) -> Result<(), CpioError> {
    a.add_file("/sbin/kexec", c.kexec.clone(), 0o755)?;
    if let Some(t) = &c.tftp_client {
        a.add_file("/usr/bin/atftp", t.clone(), 0o755)?;
    }
    // A library reached under two guest paths (Debian's /lib/ld64.so.1 is a
    // symlink to /lib/s390x-linux-gnu/ld64.so.1: the interpreter path and
    // libc's DT_NEEDED name both resolve to it) is stored once; the other
    // path becomes a symlink to the first, as on Debian (186 KB less).
    let mut stored: Vec<(&str, &[u8])> = Vec::new();
    for (path, data) in &c.libraries {
        match stored.iter().find(|(_, d)| *d == data.as_slice()) {
            Some((first, _)) => a.add_symlink(path, first)?,
            None => {
                a.add_file(path, data.clone(), 0o755)?;
                stored.push((path, data));
            }
        }
    }
    let mut list = String::new();
    for m in &c.modules {
        a.add_file(&m.guest_path, m.data.clone(), 0o644)?;
        list.push_str(&m.guest_path);
        list.push('\n');
    }
    a.add_file(MODULE_LIST_PATH, list.into_bytes(), 0o644)?;
    for g in GUEST_FILES {
        a.add_file(g.dest, g.content.as_bytes().to_vec(), g.mode)?;
    }
    for (path, (data, mode)) in &c.extra {
        a.add_file(path, data.clone(), *mode)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpio::Node;

    #[test]
    fn a_library_reached_under_two_paths_is_stored_once_and_linked() {
        let ld = b"\x7fELF ld64".to_vec();
        let libc = b"\x7fELF libc".to_vec();
        let c = PxeContents {
            kexec: b"kexec".to_vec(),
            libraries: BTreeMap::from([
                ("/lib/ld64.so.1".to_string(), ld.clone()),
                ("/lib/s390x-linux-gnu/ld64.so.1".to_string(), ld.clone()),
                ("/lib/s390x-linux-gnu/libc.so.6".to_string(), libc.clone()),
            ]),
            ..PxeContents::default()
        };
        let mut a = Archive::new();
        add_pxe_contents(&mut a, &c).expect("contents");
        assert_eq!(a.get("/lib/ld64.so.1"), Some((&Node::File(ld), 0o755)));
        assert_eq!(
            a.get("/lib/s390x-linux-gnu/ld64.so.1"),
            Some((&Node::Symlink("/lib/ld64.so.1".into()), 0o777))
        );
        assert_eq!(
            a.get("/lib/s390x-linux-gnu/libc.so.6"),
            Some((&Node::File(libc), 0o755))
        );
    }
}
