//! End to end: the default pxelinux.0 netboots in qemu-system-s390x over
//! QEMU's user-mode network (`tftp=DIR,bootfile=pxelinux.0`) and its init
//! prints the lease marker. Real firmware, real Debian kernel, no mocks.

mod support;

use std::time::Duration;
use support::*;

#[test]
fn default_pxelinux_0_netboots_and_gets_a_lease() {
    fixtures();
    let dir = scratch();
    let image = dir.path().join("pxelinux.0");
    let built = s390_pxelinux(&["build", "-o", s(&image)]);
    assert!(built.ok, "{}", built.stderr);
    let (_tftp, root) = tftp_root_with(&image);

    let mut vm = NetbootVm::start(&root);
    vm.expect("Network loading done", Duration::from_secs(120));
    vm.expect("S390-PXELINUX: init", Duration::from_secs(120));
    vm.expect("S390-PXELINUX: lease", Duration::from_secs(120));
    let lease = vm
        .transcript
        .lines()
        .find(|l| l.contains("S390-PXELINUX: lease"))
        .unwrap_or_default()
        .to_string();
    // QEMU's slirp: guest 10.0.2.15, router and TFTP server 10.0.2.2.
    assert!(lease.contains("ip=10.0.2.15"), "{lease}");
    assert!(lease.contains("router=10.0.2.2"), "{lease}");
    assert!(lease.contains("bootfile=pxelinux.0"), "{lease}");
}
