//! Cross-architecture `ldd`: given an s390x ELF executable and a sysroot (an
//! unpacked Debian tree), finds its program interpreter and DT_NEEDED
//! libraries recursively inside the sysroot, following symlinks without
//! leaving it. Uses the `object` crate. It must not look at the host's own
//! libraries or execute anything.

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Library directories searched inside the sysroot, in order.
pub const LIBRARY_DIRS: &[&str] = &[
    "/lib/s390x-linux-gnu",
    "/usr/lib/s390x-linux-gnu",
    "/lib64",
    "/lib",
    "/usr/lib64",
    "/usr/lib",
];

/// Failure to resolve an executable's run-time dependencies.
#[derive(Debug, thiserror::Error)]
pub enum ElfDepsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not an s390x ELF.
    #[error("{path}: {source}")]
    NotS390x {
        path: PathBuf,
        source: crate::busybox::BusyboxError,
    },
    /// Malformed ELF.
    #[error("{path}: malformed ELF: {message}")]
    Malformed { path: PathBuf, message: String },
    /// A needed library is not in the sysroot.
    #[error(
        "library {name} (needed by {needed_by}) not found in sysroot {sysroot} (searched {dirs})"
    )]
    NotFound {
        name: String,
        needed_by: String,
        sysroot: PathBuf,
        dirs: String,
    },
    /// A symlink chain escapes the sysroot or loops.
    #[error("{path}: symlink leaves the sysroot or loops")]
    BadSymlink { path: PathBuf },
}

/// What one ELF file needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfNeeds {
    /// PT_INTERP, if any.
    pub interpreter: Option<String>,
    /// DT_NEEDED entries.
    pub needed: Vec<String>,
}

/// Reads PT_INTERP and DT_NEEDED of an s390x ELF.
pub fn read_needs(data: &[u8], path: &Path) -> Result<ElfNeeds, ElfDepsError> {
    crate::busybox::check_s390x_elf(data).map_err(|source| ElfDepsError::NotS390x {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |e: object::read::Error| ElfDepsError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let e = object::BigEndian;
    let header = elf::FileHeader64::<object::BigEndian>::parse(data).map_err(malformed)?;
    let mut needs = ElfNeeds::default();
    for ph in header.program_headers(e, data).map_err(malformed)? {
        if let Some(interp) = ph.interpreter(e, data).map_err(malformed)? {
            needs.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let sections = header.sections(e, data).map_err(malformed)?;
    for section in sections.iter() {
        let Some((dynamic, link)) =
            object::read::elf::SectionHeader::dynamic(section, e, data).map_err(malformed)?
        else {
            continue;
        };
        let strings = sections.strings(e, data, link).map_err(malformed)?;
        for d in dynamic {
            if d.tag32(e) == Some(elf::DT_NEEDED) {
                let name = d.string(e, strings).map_err(malformed)?;
                needs
                    .needed
                    .push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    Ok(needs)
}

/// Resolves an absolute guest path inside `sysroot`, following symlinks
/// (absolute ones relative to the sysroot). Returns the host path of the
/// final regular file.
pub fn resolve_in_sysroot(
    sysroot: &Path,
    guest_path: &str,
) -> Result<Option<PathBuf>, ElfDepsError> {
    let mut current = PathBuf::from(guest_path);
    for _ in 0..40 {
        let host = join_inside(sysroot, &current);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        };
        if !meta.file_type().is_symlink() {
            return Ok(meta.is_file().then_some(host));
        }
        let target = std::fs::read_link(&host).map_err(|source| ElfDepsError::Io {
            path: host.clone(),
            source,
        })?;
        current = if target.is_absolute() {
            target
        } else {
            normalize(&current.parent().unwrap_or(Path::new("/")).join(target))
                .ok_or(ElfDepsError::BadSymlink { path: host })?
        };
    }
    Err(ElfDepsError::BadSymlink {
        path: join_inside(sysroot, &current),
    })
}

fn join_inside(sysroot: &Path, guest: &Path) -> PathBuf {
    let mut p = sysroot.to_path_buf();
    for c in guest.components() {
        if let Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}

fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            // `..` above the sysroot's root is refused, not clamped.
            Component::ParentDir => out.pop().then_some(())?,
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Some(out)
}

/// Every file an executable needs at run time: guest path → host path
/// (the interpreter at its PT_INTERP path, libraries under the directory they
/// were found in). Resolved recursively.
pub fn resolve(exe: &Path, sysroot: &Path) -> Result<BTreeMap<String, PathBuf>, ElfDepsError> {
    let mut files = BTreeMap::new();
    let mut queue: Vec<(PathBuf, String)> = vec![(exe.to_path_buf(), exe.display().to_string())];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((host, label)) = queue.pop() {
        let data = std::fs::read(&host).map_err(|source| ElfDepsError::Io {
            path: host.clone(),
            source,
        })?;
        let needs = read_needs(&data, &host)?;
        if let Some(interp) = needs.interpreter {
            let found =
                resolve_in_sysroot(sysroot, &interp)?.ok_or_else(|| ElfDepsError::NotFound {
                    name: interp.clone(),
                    needed_by: label.clone(),
                    sysroot: sysroot.to_path_buf(),
                    dirs: "the PT_INTERP path".into(),
                })?;
            files.insert(interp, found);
        }
        for name in needs.needed {
            if !seen.insert(name.clone()) {
                continue;
            }
            let mut hit = None;
            for dir in LIBRARY_DIRS {
                let guest = format!("{dir}/{name}");
                if let Some(h) = resolve_in_sysroot(sysroot, &guest)? {
                    hit = Some((guest, h));
                    break;
                }
            }
            let (guest, h) = hit.ok_or_else(|| ElfDepsError::NotFound {
                name: name.clone(),
                needed_by: label.clone(),
                sysroot: sysroot.to_path_buf(),
                dirs: LIBRARY_DIRS.join(", "),
            })?;
            files.insert(guest, h.clone());
            queue.push((h, name));
        }
    }
    Ok(files)
}
