//! The guest-side files embedded into every pxelinux.0 initramfs: the init
//! script, the udhcpc event script, the PXELINUX boot client and its shared
//! sh library and awk config parser, all for busybox (ash, awk), kept as
//! real files under `image/guest/` and embedded at compile time. This module only lists them; it must not generate scripts.

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

/// Every guest file, in no particular order (the initramfs writer sorts):
/// `/init` and the client scripts in `/lib/pxe`, where `init` finds them
/// unless `PXE_LIB` says otherwise.
pub const GUEST_FILES: &[GuestFile] = &[
    GuestFile {
        dest: "/init",
        content: include_str!("../guest/init"),
        mode: 0o755,
    },
    GuestFile {
        dest: "/lib/pxe/common.sh",
        content: include_str!("../guest/common.sh"),
        mode: 0o644,
    },
    GuestFile {
        dest: "/lib/pxe/config.awk",
        content: include_str!("../guest/config.awk"),
        mode: 0o644,
    },
    GuestFile {
        dest: "/lib/pxe/dhcp-event",
        content: include_str!("../guest/dhcp-event"),
        mode: 0o755,
    },
    GuestFile {
        dest: "/lib/pxe/boot",
        content: include_str!("../guest/boot"),
        mode: 0o755,
    },
];

/// Path (inside the initramfs) of the generated module load list: one module
/// file path per line, in dependency order. Written by the builder, read by init.
pub const MODULE_LIST_PATH: &str = "/etc/pxe/modules";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_prints_the_marker_prefix() {
        let common = GUEST_FILES
            .iter()
            .find(|g| g.dest == "/lib/pxe/common.sh")
            .expect("common.sh");
        let say = format!(
            "say() {{ printf '{}%s\\n' \"$*\"; }}",
            crate::pxelinux::MARKER_PREFIX
        );
        assert!(common.content.contains(&say), "no {say:?} in common.sh");
    }
}
