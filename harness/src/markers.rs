//! The console lines the harness itself matches, named once on the Rust
//! side: the guest client's markers (`S390-PXELINUX: …`, printed by `say`
//! in `image/guest/common.sh`; the prefix is
//! [`s390_pxelinux::pxelinux::MARKER_PREFIX`]), the target payloads'
//! (`TARGET-UP`, `TARGET-INITRDS`, `ROOTFS-UP`, `ROOTFS-INITRD: ERROR`,
//! printed by the scripts in `harness/payload/`), the firmware's and
//! kernel's lines the runner watches for, and the boot phases ([`PHASES`])
//! made of them, which the runner times and the reports and `bench` show
//! (so those depend on this table, not on the runner). The scripts define
//! the markers; this module only names them (a test checks each against
//! its script), and it must not match anything itself. Scenario steps are
//! data and write their own patterns.

/// The guest client's `init` starts.
pub const GUEST_INIT: &str = "S390-PXELINUX: init";
/// The guest client has a DHCP lease.
pub const GUEST_LEASE: &str = "S390-PXELINUX: lease";
/// The guest client chose a configuration file.
pub const GUEST_CONFIG: &str = "S390-PXELINUX: config ";
/// The guest client fetched a kernel or initrd.
pub const GUEST_FETCH: &str = "S390-PXELINUX: fetch ";
/// The guest client is about to `kexec -e`.
pub const GUEST_KEXEC: &str = "S390-PXELINUX: kexec";
/// The guest client gave up and opened its rescue shell.
pub const GUEST_RESCUE: &str = "S390-PXELINUX: RESCUE";

/// The target kernel runs the target initrd's /init (then ` cmdline=…`).
pub const TARGET_UP: &str = "TARGET-UP";
/// The target initrd pieces that were unpacked.
pub const TARGET_INITRDS: &str = "TARGET-INITRDS";
/// `@rootfs-disk`'s init runs on the mounted root disk.
pub const ROOTFS_UP: &str = "ROOTFS-UP";
/// `@rootfs-initrd` could not mount the root disk.
pub const ROOTFS_INITRD_ERROR: &str = "ROOTFS-INITRD: ERROR";

/// QEMU's s390 firmware starts a network boot (a regex: the line differs
/// between firmware versions).
pub const FIRMWARE_START: &str = r"Network boot starting|LOADPARM";
/// The firmware has loaded pxelinux.0 (a regex, as [`FIRMWARE_START`]).
pub const FIRMWARE_LOADED: &str = r"Network loading done|TFTP: Received";
/// The firmware gave up on the network boot.
pub const FIRMWARE_GAVE_UP: &str = "Failed to IPL from this network";
/// A kernel panicked.
pub const KERNEL_PANIC: &str = "Kernel panic - not syncing";

/// Named boot phases, reported by `netboot-harness run`, its reports and
/// `bench`: (name, marker (a regex), use the last occurrence instead of the
/// first). The runner times them on the console.
pub const PHASES: &[(&str, &str, bool)] = &[
    ("firmware loaded", FIRMWARE_START, false),
    ("pxelinux.0 loaded", FIRMWARE_LOADED, false),
    ("first kernel at /init", GUEST_INIT, false),
    ("lease", GUEST_LEASE, false),
    ("config found", GUEST_CONFIG, false),
    ("files fetched", GUEST_FETCH, true),
    ("kexec", GUEST_KEXEC, false),
    ("target up", TARGET_UP, false),
    ("root fs up", ROOTFS_UP, false),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{ROOTFS_INIT, ROOTFS_INITRD_INIT, TARGET_REPORT};

    #[test]
    fn guest_markers_carry_the_clients_prefix_and_are_said_by_it() {
        let prefix = s390_pxelinux::pxelinux::MARKER_PREFIX;
        let scripts: String = s390_pxelinux::initramfs::GUEST_FILES
            .iter()
            .map(|g| g.content)
            .collect();
        for m in [
            GUEST_INIT,
            GUEST_LEASE,
            GUEST_CONFIG,
            GUEST_FETCH,
            GUEST_KEXEC,
            GUEST_RESCUE,
        ] {
            let said = m.strip_prefix(prefix).expect("the client's prefix");
            assert!(
                scripts.contains(&format!("say {said}"))
                    || scripts.contains(&format!("say \"{said}")),
                "no `say {said}` in the guest scripts"
            );
        }
    }

    #[test]
    fn target_markers_are_printed_by_the_payload_scripts() {
        for (m, script) in [
            (TARGET_UP, TARGET_REPORT),
            (TARGET_INITRDS, TARGET_REPORT),
            (ROOTFS_UP, ROOTFS_INIT),
            (ROOTFS_INITRD_ERROR, ROOTFS_INITRD_INIT),
        ] {
            assert!(
                script.contains(&format!("echo \"{m}")),
                "no `echo \"{m}` in its script"
            );
        }
    }
}
