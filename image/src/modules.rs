//! Kernel modules for the guest: indexes a `lib/modules/<release>` tree
//! (modules as `.ko`, `.ko.xz`, `.ko.zst` or `.ko.gz`), reads each module's
//! `.modinfo` `depends=` field, resolves the requested set transitively and
//! returns it decompressed in load order (dependencies first), so the guest
//! loads them with plain `insmod` and needs no depmod. Built-in modules
//! (`modules.builtin`) are satisfied without a file. It must not write the
//! initramfs.

use object::read::{Object, ObjectSection};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The modules the pxelinux.0 initramfs loads by default (those that are
/// built into the kernel are skipped).
pub const DEFAULT_MODULES: &[&str] = &["virtio_net", "virtio_blk", "af_packet"];

/// Failure to resolve modules.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The tree cannot be read.
    #[error("modules tree {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The directory's version does not match the kernel.
    #[error("modules tree {path} is for kernel release {found}, but the kernel is {kernel}")]
    VersionMismatch {
        path: PathBuf,
        found: String,
        kernel: String,
    },
    /// A module is neither a file nor built in.
    #[error("module {name} not found in {tree} (neither a module file nor listed in modules.builtin){needed_by}")]
    NotFound {
        name: String,
        tree: PathBuf,
        needed_by: String,
    },
    /// The module file cannot be decompressed or parsed.
    #[error("module file {path}: {message}")]
    Bad { path: PathBuf, message: String },
}

/// An indexed module tree.
#[derive(Debug, Clone)]
pub struct ModuleTree {
    root: PathBuf,
    release: String,
    files: BTreeMap<String, PathBuf>,
    builtin: BTreeSet<String>,
}

/// One module to put in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModule {
    /// Canonical name (underscores).
    pub name: String,
    /// Path inside the initramfs (`/lib/modules/<release>/kernel/…/x.ko`).
    pub guest_path: String,
    /// Decompressed module bytes.
    pub data: Vec<u8>,
}

/// Normalises a module name: `-` and `_` are equivalent.
pub fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

fn module_stem(file_name: &str) -> Option<&str> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
}

impl ModuleTree {
    /// Indexes `root` (a `lib/modules/<release>` directory) and checks that its
    /// release equals `kernel_release`.
    pub fn open(root: &Path, kernel_release: &str) -> Result<ModuleTree, ModuleError> {
        let found = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if found != kernel_release {
            return Err(ModuleError::VersionMismatch {
                path: root.to_path_buf(),
                found,
                kernel: kernel_release.to_string(),
            });
        }
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| ModuleError::Io {
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(path);
                } else if let Some(stem) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(module_stem)
                {
                    files.entry(canonical(stem)).or_insert(path);
                }
            }
        }
        let builtin = std::fs::read_to_string(root.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.rsplit('/').next().and_then(module_stem).map(canonical))
            .collect();
        Ok(ModuleTree {
            root: root.to_path_buf(),
            release: kernel_release.to_string(),
            files,
            builtin,
        })
    }

    /// True if the module is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&canonical(name))
    }

    /// True if the tree holds no module file at all (a kernel with
    /// everything built in).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// True if a module file exists for `name`.
    pub fn has_file(&self, name: &str) -> bool {
        self.files.contains_key(&canonical(name))
    }

    /// Resolves `names` and their dependencies; returns modules in load order.
    /// `optional` names that are missing are skipped instead of failing.
    pub fn resolve(
        &self,
        names: &[String],
        optional: &[&str],
    ) -> Result<Vec<ResolvedModule>, ModuleError> {
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for name in names {
            let name = canonical(name);
            if !self.has_file(&name)
                && (self.is_builtin(&name) || optional.iter().any(|o| canonical(o) == name))
            {
                tracing::info!(module = %name, "built in or absent (optional); nothing to load");
                continue;
            }
            self.visit(&name, "", &mut done, &mut Vec::new(), &mut order)?;
        }
        Ok(order)
    }

    fn visit(
        &self,
        name: &str,
        needed_by: &str,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
        order: &mut Vec<ResolvedModule>,
    ) -> Result<(), ModuleError> {
        if done.contains(name) || path.iter().any(|p| p == name) {
            return Ok(());
        }
        let Some(file) = self.files.get(name) else {
            if self.is_builtin(name) {
                done.insert(name.to_string());
                return Ok(());
            }
            return Err(ModuleError::NotFound {
                name: name.to_string(),
                tree: self.root.clone(),
                needed_by: if needed_by.is_empty() {
                    String::new()
                } else {
                    format!(", needed by {needed_by}")
                },
            });
        };
        let data = read_module(file)?;
        path.push(name.to_string());
        for dep in modinfo_depends(&data, file)? {
            self.visit(&canonical(&dep), name, done, path, order)?;
        }
        path.pop();
        done.insert(name.to_string());
        let rel = file.strip_prefix(&self.root).unwrap_or(file);
        let rel = rel.to_string_lossy();
        let rel = module_stem(&rel)
            .map(|s| format!("{s}.ko"))
            .unwrap_or_else(|| rel.to_string());
        order.push(ResolvedModule {
            name: name.to_string(),
            guest_path: format!("/lib/modules/{}/{rel}", self.release),
            data,
        });
        Ok(())
    }
}

/// Reads and decompresses a module file.
pub fn read_module(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let raw = std::fs::read(path).map_err(|source| ModuleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.to_string_lossy();
    let mut out = Vec::new();
    let result = if name.ends_with(".xz") {
        liblzma::read::XzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(&raw[..]).and_then(|mut d| d.read_to_end(&mut out))
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)
    } else {
        return Ok(raw);
    };
    result.map_err(|e| ModuleError::Bad {
        path: path.to_path_buf(),
        message: format!("cannot decompress: {e}"),
    })?;
    Ok(out)
}

/// The `depends=` list from a module's `.modinfo` section.
pub fn modinfo_depends(data: &[u8], path: &Path) -> Result<Vec<String>, ModuleError> {
    let bad = |message: String| ModuleError::Bad {
        path: path.to_path_buf(),
        message,
    };
    let file = object::File::parse(data).map_err(|e| bad(format!("not an ELF module: {e}")))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| bad("no .modinfo section".into()))?;
    let info = section.data().map_err(|e| bad(e.to_string()))?;
    Ok(info
        .split(|&b| b == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| v.split(|&b| b == b','))
        .filter(|d| !d.is_empty())
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect())
}
