//! s390-pxelinux: builds a PXELINUX-style network boot image (`pxelinux.0`) for
//! s390x KVM guests.
//!
//! The crate owns everything between pinned Debian s390x inputs and the finished
//! boot file. It never starts a VM: that is the harness's job.
//!
//! # API boundary
//!
//! What the library offers (the `s390-pxelinux` binary is built on it alone):
//! fetching and caching the pinned fixtures ([`fixtures`]), building the
//! minimal kernel from Debian's kernel source ([`minimal_kernel`]), building
//! the image ([`build`]), describing an existing image ([`inspect`]) and
//! modelling the guest's PXELINUX client on the host ([`pxelinux`]).
//!
//! The toolkit the harness packs its own guest payloads with, public for
//! that reason and free to change with it: the deterministic newc archive
//! ([`cpio`]), compression ([`compress`]), what goes into an initramfs
//! ([`initramfs`], which also re-exports busybox's applet table, the module
//! tree and the guest scripts) and atomic file writes ([`atomic`]).
//!
//! Everything else is internal and may change freely: the s390 kernel header
//! (`kernel`), module resolution (`modules`), the cross-architecture ELF
//! closure (`elfdeps`), busybox checks (`busybox`), the embedded guest
//! scripts (`guest`) and the cache entries of things built from source
//! (`build_cache`). The few of their types that public signatures carry
//! are re-exported here so they can be named.

pub mod atomic;
pub mod build;
pub mod build_step;
pub mod compress;
pub mod cpio;
pub mod fixtures;
pub mod initramfs;
pub mod inspect;
pub mod loader_tools;
pub mod minimal_kernel;
pub mod pxelinux;

mod build_cache;
mod busybox;
mod elfdeps;
mod guest;
mod kernel;
mod modules;

pub use busybox::BusyboxError;
pub use elfdeps::ElfDepsError;
pub use kernel::KernelError;
pub use modules::ModuleError;
