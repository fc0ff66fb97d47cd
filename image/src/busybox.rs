//! The guest's busybox: checks that a binary is a static s390x ELF and reads
//! its applet table (the sorted, NUL-separated name list busybox embeds,
//! starting `[`, `[[`), so applet symlinks can be made at build time on a
//! host that cannot run the binary. It must not execute the binary.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

/// Why a file is not a usable guest busybox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusyboxError {
    /// Not an ELF file at all.
    #[error("not an ELF executable: {0}")]
    NotElf(String),
    /// Built for another machine.
    #[error("not an s390x binary (ELF machine {machine}, class {class}); the guest needs an s390x busybox")]
    WrongArch { machine: u16, class: &'static str },
    /// Dynamically linked.
    #[error("not statically linked (it has a program interpreter or dynamic section); use busybox-static")]
    NotStatic,
    /// No applet table found.
    #[error("no busybox applet table found (is this busybox?)")]
    NoApplets,
}

/// Applets the guest scripts cannot work without.
pub const REQUIRED_APPLETS: &[&str] = &[
    "sh", "mount", "insmod", "ip", "udhcpc", "tftp", "sleep", "cat", "stat",
];

/// Checks an ELF is 64-bit big-endian s390x (EM_S390); returns the parsed header.
pub fn check_s390x_elf(data: &[u8]) -> Result<(), BusyboxError> {
    let header =
        elf::FileHeader64::<object::BigEndian>::parse(data).map_err(|e| match data.get(..4) {
            Some(b"\x7fELF") => wrong_arch(data),
            _ => BusyboxError::NotElf(e.to_string()),
        })?;
    let e = object::BigEndian;
    if header.e_machine(e) != elf::EM_S390 || header.e_ident().data != elf::ELFDATA2MSB {
        return Err(wrong_arch(data));
    }
    Ok(())
}

fn wrong_arch(data: &[u8]) -> BusyboxError {
    let class = match data.get(4) {
        Some(1) => "32-bit",
        Some(2) => "64-bit",
        _ => "unknown",
    };
    let machine = match (data.get(5), data.get(18..20)) {
        (Some(1), Some(m)) => u16::from_le_bytes([m[0], m[1]]),
        (_, Some(m)) => u16::from_be_bytes([m[0], m[1]]),
        _ => 0,
    };
    BusyboxError::WrongArch { machine, class }
}

/// Validates a busybox binary (static s390x ELF) and returns its applet names
/// (without `busybox` itself).
pub fn applets(data: &[u8]) -> Result<Vec<String>, BusyboxError> {
    check_s390x_elf(data)?;
    let e = object::BigEndian;
    let header = elf::FileHeader64::<object::BigEndian>::parse(data)
        .map_err(|err| BusyboxError::NotElf(err.to_string()))?;
    let phdrs = header
        .program_headers(e, data)
        .map_err(|err| BusyboxError::NotElf(err.to_string()))?;
    if phdrs
        .iter()
        .any(|p| matches!(p.p_type(e), elf::PT_INTERP | elf::PT_DYNAMIC))
    {
        return Err(BusyboxError::NotStatic);
    }
    let start = find(data, b"\0[\0[[\0").ok_or(BusyboxError::NoApplets)? + 1;
    let names: Vec<String> = data[start..]
        .split(|&b| b == 0)
        .take_while(|n| !n.is_empty() && n.iter().all(|b| b.is_ascii_graphic()))
        .filter(|n| *n != b"busybox")
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    if names.len() < REQUIRED_APPLETS.len() {
        return Err(BusyboxError::NoApplets);
    }
    Ok(names)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_binary_is_rejected_as_wrong_arch() {
        let data = std::fs::read("/bin/sh").expect("/bin/sh");
        assert!(matches!(
            applets(&data),
            Err(BusyboxError::WrongArch { machine: 62, .. })
        ));
    }

    #[test]
    fn non_elf_is_rejected() {
        assert!(matches!(
            applets(b"#!/bin/sh\necho hi\n"),
            Err(BusyboxError::NotElf(_))
        ));
    }
}
