//! s390-pxelinux: builds a PXELINUX-style network boot image (`pxelinux.0`) for
//! s390x KVM guests.
//!
//! The crate owns everything between pinned Debian s390x inputs and the finished
//! boot file: fetching and unpacking the fixtures ([`fixtures`]), reading and
//! patching s390 kernel images ([`kernel`]), building the minimal kernel
//! from Debian's kernel source ([`minimal_kernel`]), resolving modules ([`modules`]) and
//! ELF dependencies ([`elfdeps`]), writing the initramfs ([`cpio`],
//! [`initramfs`], [`compress`]), assembling the image ([`build`]), describing an
//! existing image ([`inspect`]) and modelling the guest's PXELINUX client on the
//! host ([`pxelinux`]). It never starts a VM: that is the harness's job.

pub mod atomic;
pub mod build;
pub mod busybox;
pub mod compress;
pub mod cpio;
pub mod elfdeps;
pub mod fixtures;
pub mod guest;
pub mod initramfs;
pub mod inspect;
pub mod kernel;
pub mod minimal_kernel;
pub mod modules;
pub mod pxelinux;
