//! s390 Linux kernel images: recognising one (libmagic bytes 8..31, "S390EP"
//! at 0x10008), reading the parameter area (version string pointer at
//! 0x10428, initrd offset/size at 0x10408/0x10410, command-line maximum at
//! 0x10430, command line at 0x10480) and patching it. Pure functions over
//! byte slices; this module must not do I/O.

use std::ops::Range;

/// Offset of the 8-byte big-endian initrd start in the parameter area.
pub const INITRD_START: usize = 0x10408;
/// Offset of the 8-byte big-endian initrd size.
pub const INITRD_SIZE: usize = 0x10410;
/// Offset of the 8-byte big-endian pointer to the version string.
pub const VERSION_PTR: usize = 0x10428;
/// Offset of the 8-byte big-endian maximum command-line size (0 = legacy).
pub const CMDLINE_MAX: usize = 0x10430;
/// Offset of the command line.
pub const CMDLINE: usize = 0x10480;
/// The command-line limit of kernels that predate the 0x10430 field.
pub const LEGACY_CMDLINE_MAX: usize = 896;
/// Initrd alignment: the kernel is zero-padded to this before the initrd.
pub const PAGE: usize = 4096;

/// Bytes 8..32 of every s390 Linux image (the libmagic / QEMU bootmap.c check).
pub const LINUX_S390_MAGIC: [u8; 24] = [
    0x02, 0x00, 0x00, 0x18, 0x60, 0x00, 0x00, 0x50, 0x02, 0x00, 0x00, 0x68, 0x60, 0x00, 0x00, 0x50,
    0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40,
];
const S390EP: &[u8] = b"S390EP";
const S390EP_AT: usize = 0x10008;

/// Why bytes are not a usable s390 kernel image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// Too short to hold the parameter area.
    #[error("truncated: {len} bytes, an s390 kernel image is at least {need} bytes (it ends before the parameter area)")]
    Truncated { len: usize, need: usize },
    /// Wrong magic bytes.
    #[error("not an s390 Linux kernel image (bytes 8..31 are not the s390 IPL magic)")]
    NotS390,
    /// Magic present but no S390EP entry marker.
    #[error("not an s390 Linux kernel image (no \"S390EP\" at 0x10008)")]
    NoEntryMarker,
    /// Command line does not fit.
    #[error("command line is {len} bytes, the kernel accepts at most {max} (including the terminating NUL)")]
    CmdlineTooLong { len: usize, max: usize },
    /// The recorded initrd lies outside the file.
    #[error("initrd offset {offset:#x} + size {size:#x} lies outside the file ({len:#x} bytes)")]
    InitrdOutside { offset: u64, size: u64, len: usize },
}

/// The facts read from a kernel image's header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelHeader {
    /// The version banner (`6.1.0-50-s390x (debian-kernel@…) #1 SMP …`), if the pointer is valid.
    pub version: Option<String>,
    /// The release (first word of the version string), e.g. `6.1.0-50-s390x`.
    pub release: Option<String>,
    /// The maximum command-line size in bytes (legacy 896 where the field is 0).
    pub cmdline_max: usize,
    /// The command line currently stored at 0x10480.
    pub cmdline: String,
    /// Initrd offset recorded at 0x10408.
    pub initrd_offset: u64,
    /// Initrd size recorded at 0x10410.
    pub initrd_size: u64,
}

fn be_u64(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[at..at + 8]);
    u64::from_be_bytes(b)
}

/// Checks that `data` is an s390 kernel image large enough to patch.
pub fn validate(data: &[u8]) -> Result<(), KernelError> {
    if data.len() < 32 {
        return Err(KernelError::Truncated {
            len: data.len(),
            need: CMDLINE + LEGACY_CMDLINE_MAX,
        });
    }
    if data[8..32] != LINUX_S390_MAGIC {
        return Err(KernelError::NotS390);
    }
    if data.len() < CMDLINE + LEGACY_CMDLINE_MAX {
        return Err(KernelError::Truncated {
            len: data.len(),
            need: CMDLINE + LEGACY_CMDLINE_MAX,
        });
    }
    if &data[S390EP_AT..S390EP_AT + S390EP.len()] != S390EP {
        return Err(KernelError::NoEntryMarker);
    }
    Ok(())
}

/// Reads the header of a validated image.
pub fn read_header(data: &[u8]) -> Result<KernelHeader, KernelError> {
    validate(data)?;
    let max_field = be_u64(data, CMDLINE_MAX);
    let cmdline_max = if max_field == 0 {
        LEGACY_CMDLINE_MAX
    } else {
        usize::try_from(max_field).unwrap_or(usize::MAX)
    };
    let cmd_end = CMDLINE.saturating_add(cmdline_max).min(data.len());
    let cmd = &data[CMDLINE..cmd_end];
    let cmd_len = cmd.iter().position(|&b| b == 0).unwrap_or(cmd.len());
    let version = version_string(data);
    let release = version
        .as_deref()
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_string);
    Ok(KernelHeader {
        version,
        release,
        cmdline_max,
        cmdline: String::from_utf8_lossy(&cmd[..cmd_len])
            .trim_end()
            .to_string(),
        initrd_offset: be_u64(data, INITRD_START),
        initrd_size: be_u64(data, INITRD_SIZE),
    })
}

/// The NUL-terminated string the pointer at 0x10428 designates (file offset ==
/// load address: the image is loaded at 0).
fn version_string(data: &[u8]) -> Option<String> {
    let ptr = usize::try_from(be_u64(data, VERSION_PTR)).ok()?;
    if ptr == 0 || ptr >= data.len() {
        return None;
    }
    let tail = &data[ptr..data.len().min(ptr + 512)];
    let end = tail.iter().position(|&b| b == 0)?;
    let s = std::str::from_utf8(&tail[..end]).ok()?;
    (!s.is_empty()).then(|| s.to_string())
}

/// Checks that `cmdline` fits the kernel's limit (the limit includes the NUL).
pub fn check_cmdline(header: &KernelHeader, cmdline: &str) -> Result<(), KernelError> {
    if cmdline.len() + 1 > header.cmdline_max {
        return Err(KernelError::CmdlineTooLong {
            len: cmdline.len(),
            max: header.cmdline_max,
        });
    }
    Ok(())
}

/// The byte range an initrd occupies given offset and size, checked against `len`.
pub fn initrd_range(offset: u64, size: u64, len: usize) -> Result<Range<usize>, KernelError> {
    let outside = || KernelError::InitrdOutside { offset, size, len };
    let start = usize::try_from(offset).map_err(|_| outside())?;
    let end = start
        .checked_add(usize::try_from(size).map_err(|_| outside())?)
        .ok_or_else(outside)?;
    if end > len || start < CMDLINE {
        return Err(outside());
    }
    Ok(start..end)
}

/// Builds the combined boot file: `kernel` zero-padded to [`PAGE`], `initrd`
/// appended, offset/size written big-endian at 0x10408/0x10410, and the
/// command-line area zeroed and `cmdline` written at 0x10480 (when given).
pub fn combine(
    kernel: &[u8],
    initrd: &[u8],
    cmdline: Option<&str>,
) -> Result<Vec<u8>, KernelError> {
    let header = read_header(kernel)?;
    if let Some(c) = cmdline {
        check_cmdline(&header, c)?;
    }
    let offset = kernel.len().div_ceil(PAGE) * PAGE;
    let mut out = Vec::with_capacity(offset + initrd.len());
    out.extend_from_slice(kernel);
    out.resize(offset, 0);
    out.extend_from_slice(initrd);
    out[INITRD_START..INITRD_START + 8].copy_from_slice(&(offset as u64).to_be_bytes());
    out[INITRD_SIZE..INITRD_SIZE + 8].copy_from_slice(&(initrd.len() as u64).to_be_bytes());
    if let Some(c) = cmdline {
        let area_end = (CMDLINE + header.cmdline_max).min(kernel.len());
        out[CMDLINE..area_end].fill(0);
        out[CMDLINE..CMDLINE + c.len()].copy_from_slice(c.as_bytes());
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal synthetic s390 image (like QEMU's boot-sector.c test kernel).
    pub fn fake_kernel(len: usize, cmdline_max: u64, version: &str) -> Vec<u8> {
        let mut k = vec![0u8; len];
        k[0..8].copy_from_slice(&[0, 8, 0, 0, 0x80, 1, 0, 0]);
        k[8..32].copy_from_slice(&LINUX_S390_MAGIC);
        k[S390EP_AT..S390EP_AT + 6].copy_from_slice(S390EP);
        k[CMDLINE_MAX..CMDLINE_MAX + 8].copy_from_slice(&cmdline_max.to_be_bytes());
        let vat = 0x11000;
        k[vat..vat + version.len()].copy_from_slice(version.as_bytes());
        k[VERSION_PTR..VERSION_PTR + 8].copy_from_slice(&(vat as u64).to_be_bytes());
        k[CMDLINE..CMDLINE + 4].copy_from_slice(b"old ");
        k
    }

    #[test]
    fn combine_pads_patches_and_writes_cmdline() {
        let k = fake_kernel(0x12345, 0, "6.1.0-test-s390x (x) #1");
        let out = combine(&k, b"INITRD", Some("console=ttysclp0")).expect("combine");
        assert_eq!(out.len(), 0x13000 + 6);
        assert_eq!(&out[0x13000..], b"INITRD");
        assert_eq!(be_u64(&out, INITRD_START), 0x13000);
        assert_eq!(be_u64(&out, INITRD_SIZE), 6);
        assert!(out[k.len()..0x13000].iter().all(|&b| b == 0));
        let h = read_header(&out).expect("header");
        assert_eq!(h.cmdline, "console=ttysclp0");
        assert_eq!(h.release.as_deref(), Some("6.1.0-test-s390x"));
        assert_eq!(h.cmdline_max, LEGACY_CMDLINE_MAX);
        assert!(out[CMDLINE + 16..CMDLINE + LEGACY_CMDLINE_MAX]
            .iter()
            .all(|&b| b == 0));
    }

    #[test]
    fn page_aligned_kernel_gets_no_padding() {
        let k = fake_kernel(0x20000, 4096, "v");
        let out = combine(&k, b"x", None).expect("combine");
        assert_eq!(be_u64(&out, INITRD_START), 0x20000);
        assert_eq!(read_header(&out).expect("h").cmdline, "old");
    }

    #[test]
    fn cmdline_limit_uses_field_or_legacy() {
        let k = fake_kernel(0x20000, 4096, "v");
        let h = read_header(&k).expect("h");
        assert_eq!(h.cmdline_max, 4096);
        assert!(check_cmdline(&h, &"a".repeat(4095)).is_ok());
        assert_eq!(
            check_cmdline(&h, &"a".repeat(4096)),
            Err(KernelError::CmdlineTooLong {
                len: 4096,
                max: 4096
            })
        );
        let legacy = read_header(&fake_kernel(0x20000, 0, "v")).expect("h");
        assert!(check_cmdline(&legacy, &"a".repeat(896)).is_err());
    }

    #[test]
    fn rejects_non_s390_and_truncated() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        assert_eq!(validate(&elf), Err(KernelError::NotS390));
        let k = fake_kernel(0x20000, 0, "v");
        assert!(matches!(
            validate(&k[..0x10100]),
            Err(KernelError::Truncated { .. })
        ));
        let mut no_ep = k.clone();
        no_ep[S390EP_AT] = b'X';
        assert_eq!(validate(&no_ep), Err(KernelError::NoEntryMarker));
        assert!(matches!(validate(&[]), Err(KernelError::Truncated { .. })));
    }

    #[test]
    fn initrd_range_is_checked() {
        assert!(initrd_range(0x20000, 10, 0x20010).is_ok());
        assert!(initrd_range(0x20000, 0x20, 0x20010).is_err());
        assert!(initrd_range(u64::MAX, 2, 10).is_err());
    }
}
