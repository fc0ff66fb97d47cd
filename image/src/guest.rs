//! The guest-side files embedded into every pxelinux.0 initramfs: the init
//! script, the udhcpc event script and the PXELINUX boot client, all POSIX sh
//! for busybox ash, kept as real files under `image/guest/` and embedded at
//! compile time. This module only lists them; it must not generate scripts.

/// One embedded guest file.
#[derive(Debug, Clone, Copy)]
pub struct GuestFile {
    /// Absolute path inside the initramfs.
    pub dest: &'static str,
    /// File content.
    pub content: &'static str,
    /// Unix permission bits.
    pub mode: u32,
}

/// Every guest file, in no particular order (the initramfs writer sorts).
pub const GUEST_FILES: &[GuestFile] = &[GuestFile {
    dest: "/init",
    content: include_str!("../guest/init"),
    mode: 0o755,
}];

/// Path (inside the initramfs) of the generated module load list: one module
/// file path per line, in dependency order. Written by the builder, read by init.
pub const MODULE_LIST_PATH: &str = "/etc/pxe/modules";
