//! `s390-pxelinux inspect`: describes an existing s390 boot file — kernel
//! version, command line and its maximum, initrd offset/size/compression
//! (checked to lie inside the file) and the initramfs listing. Read-only; it
//! must not modify or repair the file.

use crate::compress::{self, Compression};
use crate::cpio::{self, Listed};
use crate::kernel::{self, KernelError};

/// Failure to inspect a file.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Not an s390 kernel image, or truncated.
    #[error("{0}")]
    Kernel(#[from] KernelError),
    /// The initrd cannot be decoded.
    #[error("initrd at offset {offset:#x}: {message}")]
    Initrd { offset: u64, message: String },
}

/// The result of inspecting a boot file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    /// File size in bytes.
    pub file_bytes: usize,
    /// Kernel version banner.
    pub kernel_version: Option<String>,
    /// Kernel release.
    pub kernel_release: Option<String>,
    /// Which loader kernel this is: `minimal` (built by `s390-pxelinux
    /// kernel build`, recognised by its release suffix), `other` (a
    /// distribution or user kernel), or `unknown` (no release found).
    pub loader: &'static str,
    /// Kernel modules the initramfs carries (`.ko` files).
    pub modules: usize,
    /// Stored command line.
    pub cmdline: String,
    /// Command-line maximum (bytes, including NUL).
    pub cmdline_max: usize,
    /// Initrd description, if one is recorded.
    pub initrd: Option<InitrdInfo>,
}

/// The appended initrd.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitrdInfo {
    /// Offset in the file.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Detected compression.
    pub compression: Compression,
    /// Uncompressed size.
    pub uncompressed_bytes: usize,
    /// Every archive entry.
    pub entries: Vec<Listed>,
}

/// Inspects the bytes of a boot file.
pub fn inspect(data: &[u8]) -> Result<Inspection, InspectError> {
    let h = kernel::read_header(data)?;
    let initrd = if h.initrd_size == 0 {
        None
    } else {
        let range = kernel::initrd_range(h.initrd_offset, h.initrd_size, data.len())?;
        let bytes = &data[range];
        let err = |message: String| InspectError::Initrd {
            offset: h.initrd_offset,
            message,
        };
        let compression = compress::detect(bytes).map_err(err)?;
        let raw = compress::decompress(bytes)
            .map_err(|e| err(format!("cannot decompress ({compression}): {e}")))?;
        let entries = cpio::list(&raw).map_err(|e| err(e.to_string()))?;
        Some(InitrdInfo {
            offset: h.initrd_offset,
            size: h.initrd_size,
            compression,
            uncompressed_bytes: raw.len(),
            entries,
        })
    };
    let loader = match &h.release {
        Some(r) if r.ends_with(crate::minimal_kernel::RELEASE_SUFFIX) => "minimal",
        Some(_) => "other",
        None => "unknown",
    };
    let modules = initrd.as_ref().map_or(0, |r| {
        r.entries.iter().filter(|e| e.path.ends_with(".ko")).count()
    });
    Ok(Inspection {
        file_bytes: data.len(),
        loader,
        modules,
        kernel_version: h.version,
        kernel_release: h.release,
        cmdline: h.cmdline,
        cmdline_max: h.cmdline_max,
        initrd,
    })
}

/// Renders an inspection as text.
pub fn render(i: &Inspection) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "file size:      {} bytes", i.file_bytes);
    let _ = writeln!(
        s,
        "kernel version: {}",
        i.kernel_version.as_deref().unwrap_or("(unknown)")
    );
    let _ = writeln!(
        s,
        "loader:         {}",
        match i.loader {
            "minimal" => "minimal (s390-pxelinux kernel build: everything built in)",
            "other" => "distribution or user kernel",
            _ => "unknown",
        }
    );
    let _ = writeln!(s, "modules:        {}", i.modules);
    let _ = writeln!(s, "command line:   {:?}", i.cmdline);
    let _ = writeln!(s, "cmdline max:    {} bytes", i.cmdline_max);
    match &i.initrd {
        None => {
            let _ = writeln!(s, "initrd:         none");
        }
        Some(r) => {
            let _ = writeln!(
                s,
                "initrd:         offset {:#x}, {} bytes, {}, {} bytes uncompressed, {} entries (inside the file: yes)",
                r.offset,
                r.size,
                r.compression,
                r.uncompressed_bytes,
                r.entries.len()
            );
            for e in &r.entries {
                let target = e
                    .target
                    .as_deref()
                    .map(|t| format!(" -> {t}"))
                    .unwrap_or_default();
                let _ = writeln!(s, "  {:06o} {:>9} /{}{}", e.mode, e.size, e.path, target);
            }
        }
    }
    s
}
