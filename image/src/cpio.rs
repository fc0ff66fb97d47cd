//! A deterministic newc cpio archive: an in-memory tree of entries (files,
//! directories, symlinks, device nodes) that is written sorted by path, with
//! uid/gid 0, one fixed mtime, sequential inode numbers and implicit parent
//! directories, so equal inputs give byte-identical archives; and a reader
//! that lists an archive back. Serialisation uses the `cpio` crate. This
//! module must not know what goes into a boot initramfs.

use std::collections::BTreeMap;
use std::io::{Read, Write};

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file with its content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to the given target.
    Symlink(String),
    /// A character device (major, minor).
    CharDev(u32, u32),
}

/// Failure to add to or write an archive.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// A path is not absolute, contains `..` or empty components.
    #[error("initramfs path {0:?} is not a clean absolute path")]
    BadPath(String),
    /// Two different entries were added at one path.
    #[error("initramfs path {0} added twice with different content")]
    Conflict(String),
    /// A file is larger than newc's 4 GiB limit.
    #[error("initramfs file {0} is larger than 4 GiB")]
    TooLarge(String),
    /// Writing failed.
    #[error("writing the cpio archive: {0}")]
    Io(#[from] std::io::Error),
    /// Reading back failed.
    #[error("not a newc cpio archive: {0}")]
    Read(String),
}

/// An archive under construction: path → (node, permission bits).
#[derive(Debug, Clone, Default)]
pub struct Archive {
    entries: BTreeMap<String, (Node, u32)>,
}

/// One listed entry of an existing archive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// Path as stored (no leading `/`).
    pub path: String,
    /// Full mode (type and permission bits).
    pub mode: u32,
    /// File size in bytes.
    pub size: u32,
    /// Symlink target, for symlinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn clean(path: &str) -> Result<String, CpioError> {
    let rel = path
        .strip_prefix('/')
        .ok_or_else(|| CpioError::BadPath(path.to_string()))?;
    // newc stores names NUL-terminated: a NUL inside a name would truncate it
    // on read-back (found by the newc_roundtrip fuzz target).
    // "TRAILER!!!" is the end-of-archive name: an entry so named would end
    // the archive early (also found by that fuzz target), and so would the
    // parent directory `add` creates for "TRAILER!!!/x" (a later, longer
    // fuzz run).
    if rel.is_empty()
        || rel.split('/').next() == Some("TRAILER!!!")
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(CpioError::BadPath(path.to_string()));
    }
    Ok(rel.to_string())
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Archive {
        Archive::default()
    }

    /// Adds `node` at absolute `path` with permission bits `perm`, creating
    /// parent directories (0755). Re-adding an identical entry is a no-op.
    pub fn add(&mut self, path: &str, node: Node, perm: u32) -> Result<(), CpioError> {
        let rel = clean(path)?;
        let mut parent = String::new();
        for comp in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            match self.entries.get(&parent) {
                Some((Node::Dir, _)) => {}
                Some(_) => return Err(CpioError::Conflict(format!("/{parent}"))),
                None => {
                    self.entries.insert(parent.clone(), (Node::Dir, 0o755));
                }
            }
        }
        match self.entries.get(&rel) {
            Some(existing) if existing == &(node.clone(), perm) => Ok(()),
            Some((Node::Dir, _)) if node == Node::Dir => {
                self.entries.insert(rel, (node, perm));
                Ok(())
            }
            Some(_) => Err(CpioError::Conflict(path.to_string())),
            None => {
                self.entries.insert(rel, (node, perm));
                Ok(())
            }
        }
    }

    /// Adds a regular file.
    pub fn add_file(&mut self, path: &str, content: Vec<u8>, perm: u32) -> Result<(), CpioError> {
        self.add(path, Node::File(content), perm)
    }

    /// Adds a directory.
    pub fn add_dir(&mut self, path: &str) -> Result<(), CpioError> {
        self.add(path, Node::Dir, 0o755)
    }

    /// Adds a symlink.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        self.add(path, Node::Symlink(target.to_string()), 0o777)
    }

    /// The node at `path` and its permission bits, if any.
    pub fn get(&self, path: &str) -> Option<(&Node, u32)> {
        let p = clean(path).ok()?;
        self.entries.get(&p).map(|(n, perm)| (n, *perm))
    }

    /// True if something exists at `path`.
    pub fn contains(&self, path: &str) -> bool {
        clean(path).is_ok_and(|p| self.entries.contains_key(&p))
    }

    /// Number of entries (including implicit directories).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the archive in newc format with every mtime set to `mtime`.
    pub fn write_newc<W: Write>(&self, mut w: W, mtime: u32) -> Result<W, CpioError> {
        for (ino, (path, (node, perm))) in self.entries.iter().enumerate() {
            let (kind, data): (u32, &[u8]) = match node {
                Node::File(d) => (0o100000, d),
                Node::Dir => (0o040000, &[]),
                Node::Symlink(t) => (0o120000, t.as_bytes()),
                Node::CharDev(..) => (0o020000, &[]),
            };
            let size =
                u32::try_from(data.len()).map_err(|_| CpioError::TooLarge(format!("/{path}")))?;
            let mut b = cpio::newc::Builder::new(path)
                .ino(ino as u32 + 1)
                .mode(kind | (perm & 0o7777))
                .uid(0)
                .gid(0)
                .nlink(if *node == Node::Dir { 2 } else { 1 })
                .mtime(mtime);
            if let Node::CharDev(maj, min) = node {
                b = b.rdev_major(*maj).rdev_minor(*min);
            }
            let mut writer = b.write(w, size);
            writer.write_all(data)?;
            w = writer.finish()?;
        }
        Ok(cpio::newc::trailer(w)?)
    }
}

/// Lists every entry of an uncompressed newc archive (stops at the trailer).
pub fn list(data: &[u8]) -> Result<Vec<Listed>, CpioError> {
    let mut out = Vec::new();
    let mut rest: &[u8] = data;
    loop {
        let reader = cpio::NewcReader::new(rest).map_err(|e| CpioError::Read(e.to_string()))?;
        if reader.entry().is_trailer() {
            break;
        }
        let e = reader.entry();
        let (path, mode, size) = (e.name().to_string(), e.mode(), e.file_size());
        let mut reader = reader;
        let target = if mode & 0o170000 == 0o120000 {
            let mut t = String::new();
            reader
                .read_to_string(&mut t)
                .map_err(|e| CpioError::Read(format!("{path}: {e}")))?;
            Some(t)
        } else {
            None
        };
        rest = reader
            .finish()
            .map_err(|e| CpioError::Read(format!("{path}: {e}")))?;
        out.push(Listed {
            path,
            mode,
            size,
            target,
        });
    }
    Ok(out)
}

/// The fixed timestamp for archive entries: `SOURCE_DATE_EPOCH`, else 0.
pub fn source_date_epoch() -> u32 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of [`sample`] as an archive lists it: sorted, parents implied.
    const SAMPLE_PATHS: [&str; 8] = [
        "bin",
        "bin/busybox",
        "bin/sh",
        "dev",
        "dev/console",
        "etc",
        "etc/pxe",
        "etc/pxe/modules",
    ];

    fn sample() -> Archive {
        let mut a = Archive::new();
        a.add_file("/bin/busybox", b"BB".to_vec(), 0o755)
            .expect("add");
        a.add_symlink("/bin/sh", "busybox").expect("add");
        a.add_file("/etc/pxe/modules", b"".to_vec(), 0o644)
            .expect("add");
        a.add("/dev/console", Node::CharDev(5, 1), 0o600)
            .expect("add");
        a
    }

    #[test]
    fn round_trip_lists_sorted_entries_with_parents() {
        let bytes = sample().write_newc(Vec::new(), 7).expect("write");
        let l = list(&bytes).expect("list");
        let paths: Vec<&str> = l.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, SAMPLE_PATHS);
        assert_eq!(l[1].mode, 0o100755);
        assert_eq!(l[1].size, 2);
        assert_eq!(l[2].target.as_deref(), Some("busybox"));
        assert_eq!(l[4].mode, 0o020600);
    }

    #[test]
    fn output_is_deterministic_regardless_of_insertion_order() {
        let mut b = Archive::new();
        b.add("/dev/console", Node::CharDev(5, 1), 0o600)
            .expect("add");
        b.add_file("/etc/pxe/modules", b"".to_vec(), 0o644)
            .expect("add");
        b.add_symlink("/bin/sh", "busybox").expect("add");
        b.add_file("/bin/busybox", b"BB".to_vec(), 0o755)
            .expect("add");
        assert_eq!(
            sample().write_newc(Vec::new(), 0).expect("w"),
            b.write_newc(Vec::new(), 0).expect("w")
        );
    }

    #[test]
    fn rejects_bad_paths_and_conflicts() {
        let mut a = sample();
        assert!(matches!(a.add_dir("relative"), Err(CpioError::BadPath(_))));
        assert!(matches!(a.add_dir("/a/../b"), Err(CpioError::BadPath(_))));
        // Regression (fuzz crash-80854011): a NUL in a name is refused.
        assert!(matches!(
            a.add_symlink("/\0\0", "x"),
            Err(CpioError::BadPath(_))
        ));
        // Regression (fuzz crash-764edefd): the end-of-archive name is refused.
        assert!(matches!(
            a.add_file("/TRAILER!!!", vec![], 0o644),
            Err(CpioError::BadPath(_))
        ));
        // Regression (fuzz crash-1710b531): nor as an implicit parent.
        assert!(matches!(
            a.add_dir("/TRAILER!!!/b"),
            Err(CpioError::BadPath(_))
        ));
        assert!(a.add_dir("/x/TRAILER!!!").is_ok());
        assert!(matches!(
            a.add_file("/bin/sh", vec![], 0o755),
            Err(CpioError::Conflict(_))
        ));
        assert!(a.add_symlink("/bin/sh", "busybox").is_ok());
        assert!(matches!(
            a.add_file("/bin/busybox/x", vec![], 0o644),
            Err(CpioError::Conflict(_))
        ));
    }

    #[test]
    fn system_cpio_reads_the_archive() {
        let bytes = sample().write_newc(Vec::new(), 0).expect("write");
        let out = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(&bytes)?;
                }
                child.wait_with_output()
            })
            .expect("the system `cpio` must be installed (the test command installs it)");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = text.lines().collect();
        assert_eq!(names, SAMPLE_PATHS);
    }
}
